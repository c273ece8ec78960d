//! The resolver: handle → DID (DNS, HTTPS, XRPC), DID → document (did:plc, did:web), and
//! the bidirectional check.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use atlex_types::crypto::PublicKey;
use atlex_types::{AtIdentifier, Did, Handle, Nsid};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use serde::Deserialize;
use url::Url;

use super::cache::{Cache, CacheConfig, Kept};
use super::document::DidDocument;
use super::error::{IdentityError, MethodKind, shorten};
use crate::net::fetch::{FetchErrorKind, Fetcher, Get};
use crate::net::redact_url;
use crate::xrpc::{BuildError, Client};

/// The default PLC directory.
pub const DEFAULT_PLC_URL: &str = "https://plc.directory";
/// The default limit for a DID document (64 KiB; real ones are a few hundred bytes).
pub const DEFAULT_MAX_DOCUMENT: u64 = 64 * 1024;
/// The limit for a `/.well-known/atproto-did` or `resolveHandle` answer (a DID is at most
/// 2 KiB).
const MAX_HANDLE_ANSWER: u64 = 4 * 1024;
/// The default DNS timeout.
pub const DEFAULT_DNS_TIMEOUT: Duration = Duration::from_secs(3);

/// One way of resolving a handle to a DID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandleMethod {
    /// DNS TXT `_atproto.<handle>`: one record `did=<did>`.
    Dns,
    /// `GET https://<handle>/.well-known/atproto-did`: the DID as text.
    WellKnown,
    /// `GET <service>/xrpc/com.atproto.identity.resolveHandle?handle=<handle>` at a service
    /// the app trusts (for example its own PDS or AppView).
    Xrpc(Url),
}

impl HandleMethod {
    /// The kind, for errors and traces.
    pub fn kind(&self) -> MethodKind {
        match self {
            HandleMethod::Dns => MethodKind::Dns,
            HandleMethod::WellKnown => MethodKind::WellKnown,
            HandleMethod::Xrpc(_) => MethodKind::Xrpc,
        }
    }
}

/// Whether a verified handle goes with an identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HandleStatus {
    /// The document's first `at://` alias is this handle, and it resolves back to the DID.
    Verified(Handle),
    /// No handle could be verified (the document names none, names another first, or the
    /// handle does not resolve back to the DID). Shown as `handle.invalid`.
    Invalid,
}

impl HandleStatus {
    /// The verified handle, if any.
    pub fn verified(&self) -> Option<&Handle> {
        match self {
            HandleStatus::Verified(handle) => Some(handle),
            HandleStatus::Invalid => None,
        }
    }
}

impl fmt::Display for HandleStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandleStatus::Verified(handle) => f.write_str(handle.as_str()),
            HandleStatus::Invalid => f.write_str("handle.invalid"),
        }
    }
}

/// A resolved atproto identity.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The DID.
    pub did: Did,
    /// The handle, verified both ways, or [`HandleStatus::Invalid`].
    pub handle: HandleStatus,
    /// The PDS (from the document's `#atproto_pds` service; it passed the transport policy).
    pub pds: Url,
    /// The atproto signing key (`#atproto`), when the document has a readable one.
    pub signing_key: Option<PublicKey>,
    /// The whole document.
    pub document: Arc<DidDocument>,
}

impl Identity {
    /// An anonymous XRPC [`Client`] for this account's PDS (log in with
    /// [`PasswordSession`](crate::auth::PasswordSession), or call public endpoints). The PDS
    /// already passed the resolver's transport policy, so an `http` PDS (allowed there by
    /// `allow_http`) is allowed for this client too.
    pub fn client(&self) -> Result<Client, BuildError> {
        Client::builder(self.pds.as_str())
            .allow_http(self.pds.scheme() == "http")
            .build()
    }
}

/// A fetched document and what it gives (cached together).
struct Resolved {
    document: Arc<DidDocument>,
    pds: Result<Url, IdentityError>,
    signing_key: Option<PublicKey>,
    handle: Option<Handle>,
}

impl Resolved {
    fn identity(&self, did: Did, handle: HandleStatus) -> Result<Identity, IdentityError> {
        Ok(Identity {
            did,
            handle,
            pds: self.pds.clone()?,
            signing_key: self.signing_key.clone(),
            document: self.document.clone(),
        })
    }
}

/// Whether a lookup may use the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lookup {
    /// Serve cached results (and share concurrent lookups).
    #[default]
    Cached,
    /// Ask the network again, then store the fresh result: for security re-checks (OAuth's
    /// issuer verification after every token response).
    Fresh,
}

/// One method's try in a [`HandleTrace`].
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Which method.
    pub method: MethodKind,
    /// How long it took.
    pub elapsed: Duration,
    /// What it found: `Ok(None)` is "no answer" (NXDOMAIN, no `did=` record, 404).
    pub outcome: Result<Option<Did>, IdentityError>,
}

/// What [`IdentityResolver::trace_handle`] saw: the result and each method's try.
#[derive(Debug, Clone)]
pub struct HandleTrace {
    /// The DID, or why there is none.
    pub result: Result<Did, IdentityError>,
    /// The method whose answer was used.
    pub answered_by: Option<MethodKind>,
    /// Every try, in the order they finished.
    pub attempts: Vec<Attempt>,
}

/// Builds an [`IdentityResolver`].
#[derive(Debug, Clone)]
pub struct IdentityResolverBuilder {
    plc_url: String,
    methods: Vec<HandleMethod>,
    dns_server: Option<SocketAddr>,
    dns_timeout: Duration,
    well_known_base: Option<Url>,
    fetcher: Option<Fetcher>,
    allow_http: bool,
    block_private: bool,
    timeout: Duration,
    max_document: u64,
    cache: CacheConfig,
}

impl Default for IdentityResolverBuilder {
    fn default() -> Self {
        IdentityResolverBuilder {
            plc_url: DEFAULT_PLC_URL.to_owned(),
            methods: vec![HandleMethod::Dns, HandleMethod::WellKnown],
            dns_server: None,
            dns_timeout: DEFAULT_DNS_TIMEOUT,
            well_known_base: None,
            fetcher: None,
            allow_http: false,
            block_private: false,
            timeout: crate::net::fetch::DEFAULT_TIMEOUT,
            max_document: DEFAULT_MAX_DOCUMENT,
            cache: CacheConfig::default(),
        }
    }
}

impl IdentityResolverBuilder {
    /// The PLC directory (default `https://plc.directory`). Configured by the developer, so
    /// `http` is accepted here even without [`allow_http`](Self::allow_http).
    pub fn plc_url(mut self, url: impl Into<String>) -> Self {
        self.plc_url = url.into();
        self
    }

    /// The handle methods, in order (default DNS then HTTPS well-known). DNS and HTTPS
    /// well-known run **concurrently**, as one step at the place of the first of them; each
    /// XRPC service is a step of its own. The first step that finds a DID wins; a step that
    /// finds none passes to the next.
    pub fn handle_methods(mut self, methods: impl IntoIterator<Item = HandleMethod>) -> Self {
        self.methods = methods.into_iter().collect();
        self
    }

    /// The DNS server to ask (UDP, then TCP), instead of the system's (`/etc/resolv.conf`).
    pub fn dns_server(mut self, server: SocketAddr) -> Self {
        self.dns_server = Some(server);
        self
    }

    /// How long one DNS query may take (default 3 s).
    pub fn dns_timeout(mut self, timeout: Duration) -> Self {
        self.dns_timeout = timeout;
        self
    }

    /// Development and tests: fetch `<base>/.well-known/atproto-did` with the handle in the
    /// `Host` header, instead of `https://<handle>/.well-known/atproto-did`.
    pub fn well_known_base(mut self, base: Url) -> Self {
        self.well_known_base = Some(base);
        self
    }

    /// Allows plain `http` for documents, well-known answers and PDS URLs (development only;
    /// loopback hosts are always allowed).
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Refuses hosts that are or resolve to non-public addresses (server-side apps; see
    /// [`FetcherBuilder::block_private_addresses`](crate::net::fetch::FetcherBuilder::block_private_addresses)).
    pub fn block_private_addresses(mut self, block: bool) -> Self {
        self.block_private = block;
        self
    }

    /// The time one HTTP request may take (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest DID document accepted (default 64 KiB).
    pub fn max_document_bytes(mut self, bytes: u64) -> Self {
        self.max_document = bytes;
        self
    }

    /// Cache TTLs and size.
    pub fn cache(mut self, config: CacheConfig) -> Self {
        self.cache = config;
        self
    }

    /// Uses `fetcher` for HTTP (its own policy replaces `allow_http`, `timeout` and
    /// `block_private_addresses`).
    pub fn fetcher(mut self, fetcher: Fetcher) -> Self {
        self.fetcher = Some(fetcher);
        self
    }

    /// Builds the resolver.
    pub fn build(self) -> Result<IdentityResolver, IdentityError> {
        let plc_url = Url::parse(&self.plc_url)
            .map_err(|error| IdentityError::Build(format!("PLC URL: {error}")))?;
        let fetcher = match self.fetcher {
            Some(fetcher) => fetcher,
            None => Fetcher::builder()
                .allow_http(self.allow_http)
                .block_private_addresses(self.block_private)
                .timeout(self.timeout)
                .build()
                .map_err(|error| IdentityError::Build(error.to_string()))?,
        };
        let dns = if self.methods.contains(&HandleMethod::Dns) {
            Some(build_dns(self.dns_server, self.dns_timeout)?)
        } else {
            None
        };
        Ok(IdentityResolver {
            inner: Arc::new(Inner {
                plc_url,
                methods: self.methods,
                dns,
                dns_timeout: self.dns_timeout,
                well_known_base: self.well_known_base,
                fetcher,
                max_document: self.max_document,
                handles: Cache::new(self.cache),
                documents: Cache::new(self.cache),
            }),
        })
    }
}

fn build_dns(
    server: Option<SocketAddr>,
    timeout: Duration,
) -> Result<TokioResolver, IdentityError> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = match server {
        Some(server) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = server.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = server.port();
            let config = ResolverConfig::from_parts(
                None,
                vec![],
                vec![NameServerConfig::new(server.ip(), true, vec![udp, tcp])],
            );
            TokioResolver::builder_with_config(config, provider)
        }
        None => TokioResolver::builder(provider)
            .map_err(|error| IdentityError::Build(format!("system DNS configuration: {error}")))?,
    };
    let options = builder.options_mut();
    options.timeout = timeout;
    options.attempts = 1;
    // Our own cache (with single-flight) is in front; hickory's would only hide TTL changes.
    options.cache_size = 0;
    options.use_hosts_file = ResolveHosts::Never;
    builder
        .build()
        .map_err(|error| IdentityError::Build(format!("DNS resolver: {error}")))
}

/// Resolves handles and DIDs (see the [module docs](super)). Build one with
/// [`IdentityResolver::builder`] and share it: clones share the caches, the DNS resolver and
/// the HTTP connection pool.
#[derive(Clone)]
pub struct IdentityResolver {
    inner: Arc<Inner>,
}

struct Inner {
    plc_url: Url,
    methods: Vec<HandleMethod>,
    dns: Option<TokioResolver>,
    dns_timeout: Duration,
    well_known_base: Option<Url>,
    fetcher: Fetcher,
    max_document: u64,
    handles: Cache<Handle, Result<Did, IdentityError>>,
    documents: Cache<Did, Result<Arc<Resolved>, IdentityError>>,
}

impl fmt::Debug for IdentityResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityResolver")
            .field("plc_url", &self.inner.plc_url.as_str())
            .field("methods", &self.inner.methods)
            .field("fetcher", &self.inner.fetcher)
            .finish_non_exhaustive()
    }
}

fn kept<T>(result: &Result<T, IdentityError>) -> Kept {
    match result {
        Ok(_) => Kept::Positive,
        Err(error) if error.is_transient() => Kept::No,
        Err(_) => Kept::Negative,
    }
}

impl IdentityResolver {
    /// Starts a builder (defaults: plc.directory, DNS then HTTPS, https only, 5 min cache).
    pub fn builder() -> IdentityResolverBuilder {
        IdentityResolverBuilder::default()
    }

    /// A resolver with the defaults.
    pub fn new() -> Result<IdentityResolver, IdentityError> {
        IdentityResolver::builder().build()
    }

    /// The HTTP client it uses.
    pub fn fetcher(&self) -> &Fetcher {
        &self.inner.fetcher
    }

    /// Resolves a handle or DID to a verified [`Identity`] (cached).
    ///
    /// * **Handle**: handle → DID, DID → document; the handle is
    ///   [`Verified`](HandleStatus::Verified) only if the document's first `at://` alias is
    ///   that handle, else [`Invalid`](HandleStatus::Invalid).
    /// * **DID**: DID → document; the document's first `at://` alias is verified by resolving
    ///   it back to the DID.
    ///
    /// Fails when the DID or document cannot be had, or the document has no usable PDS.
    pub async fn resolve(&self, identifier: &AtIdentifier) -> Result<Identity, IdentityError> {
        self.resolve_with(identifier, Lookup::Cached).await
    }

    /// [`resolve`](Self::resolve) with a choice of cache use.
    pub async fn resolve_with(
        &self,
        identifier: &AtIdentifier,
        lookup: Lookup,
    ) -> Result<Identity, IdentityError> {
        match identifier {
            AtIdentifier::Handle(handle) => {
                let did = self.resolve_handle_with(handle, lookup).await?;
                let resolved = self.resolved(&did, lookup).await?;
                let status = if resolved.handle.as_ref() == Some(handle) {
                    HandleStatus::Verified(handle.clone())
                } else {
                    HandleStatus::Invalid
                };
                resolved.identity(did, status)
            }
            AtIdentifier::Did(did) => {
                let resolved = self.resolved(did, lookup).await?;
                let status = match &resolved.handle {
                    Some(handle) => match self.resolve_handle_with(handle, lookup).await {
                        Ok(back) if back == *did => HandleStatus::Verified(handle.clone()),
                        Ok(_) | Err(_) => HandleStatus::Invalid,
                    },
                    None => HandleStatus::Invalid,
                };
                resolved.identity(did.clone(), status)
            }
        }
    }

    /// Parses `input` as a handle or DID and resolves it.
    pub async fn resolve_str(&self, input: &str) -> Result<Identity, IdentityError> {
        let identifier =
            AtIdentifier::new(input.trim()).map_err(|error| IdentityError::InvalidIdentifier {
                input: shorten(input, 64),
                reason: error.to_string(),
            })?;
        self.resolve(&identifier).await
    }

    /// What a document gives, derived once per fetched document (parsing the PDS URL and
    /// decompressing the key cost more than the cache lookups).
    fn derive(&self, document: DidDocument) -> Resolved {
        let pds = document
            .pds_endpoint()
            .map_err(IdentityError::from)
            .and_then(|pds| {
                self.inner
                    .fetcher
                    .check(&pds)
                    .map_err(|error| IdentityError::PdsRefused {
                        did: document.id.to_string(),
                        reason: error.to_string(),
                    })?;
                Ok(pds)
            });
        Resolved {
            pds,
            signing_key: document.signing_key().ok(),
            handle: document.handle(),
            document: Arc::new(document),
        }
    }

    async fn resolved(&self, did: &Did, lookup: Lookup) -> Result<Arc<Resolved>, IdentityError> {
        match lookup {
            Lookup::Cached => {
                self.inner
                    .documents
                    .get_or_compute(did, kept, || async {
                        self.fetch_document(did)
                            .await
                            .map(|document| Arc::new(self.derive(document)))
                    })
                    .await
            }
            Lookup::Fresh => {
                let result = self
                    .fetch_document(did)
                    .await
                    .map(|document| Arc::new(self.derive(document)));
                self.inner.documents.put(did, result.clone(), kept(&result));
                result
            }
        }
    }

    /// Handle → DID (cached; concurrent lookups of one handle share one set of requests).
    /// Not verified against the DID document: use [`resolve`](Self::resolve) for that.
    pub async fn resolve_handle(&self, handle: &Handle) -> Result<Did, IdentityError> {
        self.resolve_handle_with(handle, Lookup::Cached).await
    }

    /// [`resolve_handle`](Self::resolve_handle) with a choice of cache use.
    pub async fn resolve_handle_with(
        &self,
        handle: &Handle,
        lookup: Lookup,
    ) -> Result<Did, IdentityError> {
        match lookup {
            Lookup::Cached => {
                self.inner
                    .handles
                    .get_or_compute(handle, kept, || async {
                        self.trace_handle(handle).await.result
                    })
                    .await
            }
            Lookup::Fresh => {
                let result = self.trace_handle(handle).await.result;
                self.inner
                    .handles
                    .put(handle, result.clone(), kept(&result));
                result
            }
        }
    }

    /// DID → document (cached, single-flight). The document's `id` is the DID.
    pub async fn resolve_did(&self, did: &Did) -> Result<Arc<DidDocument>, IdentityError> {
        self.resolve_did_with(did, Lookup::Cached).await
    }

    /// [`resolve_did`](Self::resolve_did) with a choice of cache use.
    pub async fn resolve_did_with(
        &self,
        did: &Did,
        lookup: Lookup,
    ) -> Result<Arc<DidDocument>, IdentityError> {
        self.resolved(did, lookup)
            .await
            .map(|resolved| resolved.document.clone())
    }

    /// Drops everything cached.
    pub fn clear_cache(&self) {
        self.inner.handles.clear();
        self.inner.documents.clear();
    }

    /// Resolves `handle` through every configured step without the cache, recording each
    /// method's answer and time (for diagnostics, e.g. the `resolve` example).
    pub async fn trace_handle(&self, handle: &Handle) -> HandleTrace {
        let mut attempts = Vec::new();
        let mut concurrent_done = false;
        for method in &self.inner.methods {
            let step: Vec<HandleMethod> = match method {
                HandleMethod::Dns | HandleMethod::WellKnown => {
                    if concurrent_done {
                        continue;
                    }
                    concurrent_done = true;
                    self.inner
                        .methods
                        .iter()
                        .filter(|m| matches!(m, HandleMethod::Dns | HandleMethod::WellKnown))
                        .cloned()
                        .collect()
                }
                HandleMethod::Xrpc(_) => vec![method.clone()],
            };
            let first = attempts.len();
            let tries = step.iter().map(|method| self.attempt(handle, method));
            attempts.extend(futures::future::join_all(tries).await);
            let step_attempts = &attempts[first..];
            match decide(handle, step_attempts) {
                Decision::Found(did, method) => {
                    return HandleTrace {
                        result: Ok(did),
                        answered_by: Some(method),
                        attempts,
                    };
                }
                Decision::Fail(error) => {
                    return HandleTrace {
                        result: Err(error),
                        answered_by: None,
                        attempts,
                    };
                }
                Decision::Next => {}
            }
        }
        let mut detail: Vec<String> = attempts
            .iter()
            .map(|attempt| match &attempt.outcome {
                Ok(_) => format!("{}: no answer", attempt.method),
                Err(error) if error.is_transient() => format!("{error} (transient)"),
                Err(error) => error.to_string(),
            })
            .collect();
        if detail.is_empty() {
            detail.push("no handle methods are configured".to_owned());
        }
        let transient = attempts
            .iter()
            .any(|attempt| matches!(&attempt.outcome, Err(error) if error.is_transient()));
        HandleTrace {
            result: Err(IdentityError::HandleNotFound {
                handle: handle.to_string(),
                detail: detail.join("; "),
                transient,
            }),
            answered_by: None,
            attempts,
        }
    }

    async fn attempt(&self, handle: &Handle, method: &HandleMethod) -> Attempt {
        let started = Instant::now();
        let outcome = match method {
            HandleMethod::Dns => self.dns(handle).await,
            HandleMethod::WellKnown => self.well_known(handle).await,
            HandleMethod::Xrpc(service) => self.xrpc(handle, service).await,
        };
        Attempt {
            method: method.kind(),
            elapsed: started.elapsed(),
            outcome,
        }
    }

    async fn dns(&self, handle: &Handle) -> Result<Option<Did>, IdentityError> {
        let Some(dns) = &self.inner.dns else {
            return Ok(None);
        };
        let name = format!("_atproto.{handle}.");
        let dids = self
            .txt_did_records(dns, &name)
            .await
            .map_err(|(reason, transient)| IdentityError::MethodFailed {
                handle: handle.to_string(),
                method: MethodKind::Dns,
                reason,
                transient,
            })?;
        match dids.as_slice() {
            [] => Ok(None),
            [did] => Did::new(did.as_str())
                .map(Some)
                .map_err(|error| IdentityError::InvalidDid {
                    handle: handle.to_string(),
                    method: MethodKind::Dns,
                    reason: error.to_string(),
                }),
            several => Err(IdentityError::MultipleDids {
                handle: handle.to_string(),
                count: several.len(),
            }),
        }
    }

    /// The values after `did=` of the TXT records at `name` (absent name or no TXT: empty).
    /// A failure is its reason and whether it may pass.
    async fn txt_did_records(
        &self,
        dns: &TokioResolver,
        name: &str,
    ) -> Result<Vec<String>, (String, bool)> {
        // hickory's timeout is per connection attempt (UDP, then TCP); this bounds the whole.
        let lookup = tokio::time::timeout(self.inner.dns_timeout, dns.txt_lookup(name)).await;
        let lookup = match lookup {
            Err(_elapsed) => return Err((format!("{name}: timed out"), true)),
            Ok(Ok(lookup)) => lookup,
            Ok(Err(error)) if error.is_nx_domain() || error.is_no_records_found() => {
                return Ok(Vec::new());
            }
            Ok(Err(error)) => return Err((format!("{name}: {error}"), true)),
        };
        let mut dids = Vec::new();
        for record in lookup.answers() {
            let RData::TXT(txt) = &record.data else {
                continue;
            };
            // A TXT record's character-strings form one value.
            let bytes: Vec<u8> = txt
                .txt_data
                .iter()
                .flat_map(|part| part.iter().copied())
                .collect();
            let Ok(text) = String::from_utf8(bytes) else {
                continue;
            };
            if let Some(did) = text.strip_prefix("did=") {
                dids.push(did.to_owned());
            }
        }
        Ok(dids)
    }

    /// The DID authority of a lexicon: the one `did=<did>` TXT record at
    /// `_lexicon.<authority domain>`, where the authority domain is the NSID's authority
    /// reversed (`com.example.feed.post` → `_lexicon.feed.example.com`). The lookup is not
    /// hierarchical (no parent domains are tried) and not cached; the DNS server is the one
    /// configured with [`dns_server`](IdentityResolverBuilder::dns_server).
    ///
    /// Needs [`HandleMethod::Dns`] among the handle methods (the default), which is what
    /// builds the DNS resolver; without it the answer is [`IdentityError::LexiconAuthority`].
    pub async fn resolve_lexicon_authority(&self, nsid: &Nsid) -> Result<Did, IdentityError> {
        let domain: Vec<&str> = nsid.authority().rsplit('.').collect();
        let name = format!("_lexicon.{}.", domain.join("."));
        let failed = |reason: String, transient: bool| IdentityError::LexiconAuthority {
            nsid: nsid.to_string(),
            name: name.trim_end_matches('.').to_owned(),
            reason,
            transient,
        };
        let Some(dns) = &self.inner.dns else {
            return Err(failed(
                "the resolver has no DNS method configured".to_owned(),
                false,
            ));
        };
        let dids = self
            .txt_did_records(dns, &name)
            .await
            .map_err(|(reason, transient)| failed(reason, transient))?;
        match dids.as_slice() {
            [] => Err(failed("no `did=` TXT record".to_owned(), false)),
            [did] => Did::new(did.as_str())
                .map_err(|error| failed(format!("`did={}`: {error}", shorten(did, 80)), false)),
            several => Err(failed(
                format!(
                    "{} `did=` TXT records; exactly one is allowed",
                    several.len()
                ),
                false,
            )),
        }
    }

    async fn well_known(&self, handle: &Handle) -> Result<Option<Did>, IdentityError> {
        let (url, host) = match &self.inner.well_known_base {
            Some(base) => (
                base.join("/.well-known/atproto-did")
                    .map_err(|error| IdentityError::Build(error.to_string()))?,
                Some(handle.as_str()),
            ),
            None => (
                Url::parse(&format!("https://{handle}/.well-known/atproto-did")).map_err(
                    |error| IdentityError::InvalidIdentifier {
                        input: handle.to_string(),
                        reason: error.to_string(),
                    },
                )?,
                None,
            ),
        };
        let fetched = self
            .inner
            .fetcher
            .get(
                &url,
                Get {
                    accept: Some("text/plain"),
                    max_body: Some(MAX_HANDLE_ANSWER),
                    host,
                    trusted_url: false,
                },
            )
            .await;
        let fetched = match fetched {
            Ok(fetched) => fetched,
            Err(error) if error.status() == Some(404) || error.status() == Some(410) => {
                return Ok(None);
            }
            Err(error) => {
                return Err(IdentityError::MethodFailed {
                    handle: handle.to_string(),
                    method: MethodKind::WellKnown,
                    transient: error.is_transient(),
                    reason: error.to_string(),
                });
            }
        };
        let text = std::str::from_utf8(&fetched.body).map_err(|_| IdentityError::InvalidDid {
            handle: handle.to_string(),
            method: MethodKind::WellKnown,
            reason: "the answer is not UTF-8".to_owned(),
        })?;
        Did::new(text.trim())
            .map(Some)
            .map_err(|_| IdentityError::InvalidDid {
                handle: handle.to_string(),
                method: MethodKind::WellKnown,
                reason: format!(
                    "the {}-byte answer from {} is not a DID",
                    fetched.body.len(),
                    redact_url(&url)
                ),
            })
    }

    async fn xrpc(&self, handle: &Handle, service: &Url) -> Result<Option<Did>, IdentityError> {
        #[derive(Deserialize)]
        struct Output {
            did: String,
        }
        let mut url = service
            .join("/xrpc/com.atproto.identity.resolveHandle")
            .map_err(|error| IdentityError::Build(error.to_string()))?;
        url.query_pairs_mut().append_pair("handle", handle.as_str());
        let failed = |reason: String, transient: bool| IdentityError::MethodFailed {
            handle: handle.to_string(),
            method: MethodKind::Xrpc,
            reason,
            transient,
        };
        let fetched = self
            .inner
            .fetcher
            .get(
                &url,
                Get {
                    accept: Some("application/json"),
                    max_body: Some(MAX_HANDLE_ANSWER),
                    host: None,
                    trusted_url: true,
                },
            )
            .await;
        let fetched = match fetched {
            Ok(fetched) => fetched,
            // `HandleNotFound` is a 400 (older servers) or 404.
            Err(error) if matches!(error.status(), Some(400 | 404)) => return Ok(None),
            Err(error) => return Err(failed(error.to_string(), error.is_transient())),
        };
        let output: Output = serde_json::from_slice(&fetched.body).map_err(|error| {
            failed(
                format!(
                    "{}: not a resolveHandle output ({:?} error at column {})",
                    redact_url(&url),
                    error.classify(),
                    error.column()
                ),
                false,
            )
        })?;
        Did::new(output.did)
            .map(Some)
            .map_err(|error| IdentityError::InvalidDid {
                handle: handle.to_string(),
                method: MethodKind::Xrpc,
                reason: error.to_string(),
            })
    }

    /// The document URL of `did`, and whether it is a developer-configured (trusted) URL.
    fn document_url(&self, did: &Did) -> Result<(Url, bool), IdentityError> {
        let invalid = |reason: &str| IdentityError::InvalidDidSyntax {
            did: did.to_string(),
            reason: reason.to_owned(),
        };
        match did.method() {
            "plc" => {
                let id = did.identifier();
                if id.len() != 24
                    || !id
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
                {
                    return Err(invalid(
                        "a did:plc identifier is 24 characters of base32 (a-z, 2-7)",
                    ));
                }
                let base = self.inner.plc_url.as_str().trim_end_matches('/');
                let url = Url::parse(&format!("{base}/{did}"))
                    .map_err(|error| IdentityError::Build(format!("PLC URL: {error}")))?;
                Ok((url, true))
            }
            "web" => {
                let id = did.identifier();
                if id.contains(':') {
                    return Err(invalid(
                        "did:web with a path is not allowed in atproto (host only)",
                    ));
                }
                let (host, port) = match id.split_once("%3A").or_else(|| id.split_once("%3a")) {
                    Some((host, port)) => (host, Some(port)),
                    None => (id, None),
                };
                if host.contains('%') {
                    return Err(invalid("the host has percent-encoded characters"));
                }
                let localhost = host.eq_ignore_ascii_case("localhost");
                if port.is_some() && !localhost {
                    return Err(invalid("a port is allowed only for localhost"));
                }
                let port = match port {
                    Some(port) => Some(
                        port.parse::<u16>()
                            .map_err(|_| invalid("the port is not a number"))?,
                    ),
                    None => None,
                };
                // Development: did:web:localhost%3A<port> is served over plain http.
                let scheme = if localhost { "http" } else { "https" };
                let authority = match port {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_owned(),
                };
                let url = Url::parse(&format!("{scheme}://{authority}/.well-known/did.json"))
                    .map_err(|error| invalid(&format!("not a host name ({error})")))?;
                if url
                    .host_str()
                    .is_none_or(|parsed| !parsed.eq_ignore_ascii_case(host))
                {
                    return Err(invalid("not a plain host name"));
                }
                Ok((url, false))
            }
            other => Err(IdentityError::UnsupportedMethod {
                did: did.to_string(),
                method: shorten(other, 32),
            }),
        }
    }

    async fn fetch_document(&self, did: &Did) -> Result<DidDocument, IdentityError> {
        let (url, trusted_url) = self.document_url(did)?;
        let shown = redact_url(&url);
        let fetched = self
            .inner
            .fetcher
            .get(
                &url,
                Get {
                    accept: Some("application/did+ld+json, application/json"),
                    max_body: Some(self.inner.max_document),
                    host: None,
                    trusted_url,
                },
            )
            .await
            .map_err(|error| match error.kind() {
                FetchErrorKind::Status(status @ (404 | 410)) => IdentityError::DidNotFound {
                    did: did.to_string(),
                    url: shown.clone(),
                    status: *status,
                },
                _ => IdentityError::Fetch {
                    subject: did.to_string(),
                    error,
                },
            })?;
        let document =
            DidDocument::from_json(&fetched.body).map_err(|error| IdentityError::BadDocument {
                did: did.to_string(),
                url: shown.clone(),
                reason: format!(
                    "{:?} error at line {}, column {}",
                    error.classify(),
                    error.line(),
                    error.column()
                ),
            })?;
        if document.id != *did {
            return Err(IdentityError::WrongDocument {
                expected: did.to_string(),
                found: shorten(document.id.as_str(), 128),
                url: shown,
            });
        }
        Ok(document)
    }
}

enum Decision {
    Found(Did, MethodKind),
    Fail(IdentityError),
    Next,
}

/// Combines the answers of one step (DNS and HTTPS run together).
fn decide(handle: &Handle, attempts: &[Attempt]) -> Decision {
    let mut found: Option<(&Did, MethodKind)> = None;
    for attempt in attempts {
        if let Ok(Some(did)) = &attempt.outcome {
            match found {
                Some((first, first_method)) if first != did => {
                    return Decision::Fail(IdentityError::Conflict {
                        handle: handle.to_string(),
                        first: first.to_string(),
                        first_method,
                        second: did.to_string(),
                        second_method: attempt.method,
                    });
                }
                Some(_) => {}
                None => found = Some((did, attempt.method)),
            }
        }
    }
    // Several `did=` records are an error even when the other method answered.
    if let Some(error) = attempts.iter().find_map(|attempt| match &attempt.outcome {
        Err(error @ IdentityError::MultipleDids { .. }) => Some(error.clone()),
        _ => None,
    }) {
        return Decision::Fail(error);
    }
    if let Some((did, method)) = found {
        return Decision::Found(did.clone(), method);
    }
    // No valid answer: an invalid DID is an error, not a reason to look elsewhere.
    if let Some(error) = attempts.iter().find_map(|attempt| match &attempt.outcome {
        Err(error @ IdentityError::InvalidDid { .. }) => Some(error.clone()),
        _ => None,
    }) {
        return Decision::Fail(error);
    }
    Decision::Next
}
