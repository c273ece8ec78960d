//! The XRPC client: a cheap handle on an HTTP client, a service and an auth session.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use atlex_types::{Did, Validate};
use url::Url;

use super::body::XrpcBody;
use super::endpoint::Endpoint;
use super::error::XrpcErrorKind;
use super::failure::{BoxError, DecodeError, Error, RawResponse, RequestPart};
use super::query::{QueryParams, QueryWriter};
use super::retry::RetryPolicy;
use super::session::{Anonymous, AuthError, AuthSession};
use super::transport::{Outgoing, encode_query};
use crate::net::{self, RedirectPolicy};

/// The `User-Agent` sent when the client builds its own HTTP client.
const USER_AGENT: &str = concat!("atlex/", env!("CARGO_PKG_VERSION"));

/// The default limit on a response body read into memory (JSON outputs): 8 MiB.
///
/// The largest answers of the official methods are pages of 100 hydrated items (timelines,
/// notifications, search results; a few hundred KiB) and deep threads (rarely past 2 MiB), so
/// 8 MiB leaves ample room while a hostile server can make the client hold at most that much
/// per call. Change it with [`ClientBuilder::max_response_size`] or
/// [`CallOptions::max_response_size`]; streamed outputs ([`Client::call_streamed`]) are not
/// read into memory and have their own, optional cap ([`ClientBuilder::max_streamed_size`]).
pub const DEFAULT_MAX_RESPONSE_SIZE: u64 = 8 * 1024 * 1024;

/// The default limit on the body of an error answer (non-2xx): 64 KiB. An XRPC error is a small
/// JSON object (`{"error": …, "message": …}`); 64 KiB still holds a proxy's HTML error page.
pub const DEFAULT_MAX_ERROR_SIZE: u64 = 64 * 1024;

/// An XRPC client: where calls go, how they authenticate, and how they are sent.
///
/// A `Client` is a cheap handle (two `Arc`s); clone it freely. All handles made from one
/// session — by `clone`, by the `with_*` methods, or returned alongside a call's output — share
/// that session, so a refresh done through one is seen by all and none is ever stale.
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use atlex::xrpc::Client;
/// let appview = Client::anonymous("https://public.api.bsky.app")?;
/// let (profile, appview) = appview
///     .get("app.bsky.actor.getProfile", serde_json::json!({"actor": "bsky.app"}))
///     .await?;
/// # let _ = (profile, appview); Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
    pub(crate) options: Arc<Options>,
}

/// What every handle of one session shares.
pub(crate) struct Shared {
    pub(crate) http: reqwest::Client,
    pub(crate) base_url: Url,
    pub(crate) auth: Arc<dyn AuthSession>,
}

/// Per-handle settings.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) timeout: Option<Duration>,
    pub(crate) retry: RetryPolicy,
    pub(crate) proxy: Option<String>,
    pub(crate) labelers: Option<String>,
    pub(crate) limits: Limits,
    /// Plain `http://` to hosts that are not loopback is allowed.
    pub(crate) allow_http: bool,
}

/// Size limits on response bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// A body read into memory (2xx).
    pub(crate) response: u64,
    /// The body of an error answer.
    pub(crate) error: u64,
    /// A streamed body (`None`: no cap).
    pub(crate) streamed: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            response: DEFAULT_MAX_RESPONSE_SIZE,
            error: DEFAULT_MAX_ERROR_SIZE,
            streamed: None,
        }
    }
}

impl Client {
    /// An unauthenticated client for `service_url` (e.g. `https://public.api.bsky.app`), with
    /// default settings.
    pub fn anonymous(service_url: impl AsRef<str>) -> Result<Client, BuildError> {
        Client::builder(service_url).build()
    }

    /// A builder for a client of `service_url`.
    pub fn builder(service_url: impl AsRef<str>) -> ClientBuilder {
        ClientBuilder::new(service_url.as_ref())
    }

    /// A client with the same HTTP client, service and settings that authenticates with
    /// `session` (whose own service URL, if it has one, takes precedence).
    #[must_use]
    pub fn with_session(&self, session: Arc<dyn AuthSession>) -> Client {
        let base_url = session
            .service_url()
            .unwrap_or_else(|| self.shared.base_url.clone());
        Client {
            shared: Arc::new(Shared {
                http: self.shared.http.clone(),
                base_url,
                auth: session,
            }),
            options: self.options.clone(),
        }
    }

    /// The same client without authentication.
    #[must_use]
    pub fn without_session(&self) -> Client {
        self.with_session(Anonymous::session())
    }

    /// The same session, with every call proxied by the service to `did`'s service
    /// `service_id` (the `atproto-proxy` header, e.g. `did:web:api.bsky.chat#bsky_chat`).
    #[must_use]
    pub fn with_proxy(&self, did: &Did, service_id: &str) -> Client {
        self.with_options(|options| options.proxy = Some(proxy_value(did, service_id)))
    }

    /// The same session, without an `atproto-proxy` header.
    #[must_use]
    pub fn without_proxy(&self) -> Client {
        self.with_options(|options| options.proxy = None)
    }

    /// The same session, asking for labels from `labelers` (the `atproto-accept-labelers`
    /// header).
    #[must_use]
    pub fn with_labelers<L: Into<Labeler>>(&self, labelers: impl IntoIterator<Item = L>) -> Client {
        let value = labelers_value(labelers);
        self.with_options(|options| options.labelers = value)
    }

    /// The same session, without an `atproto-accept-labelers` header.
    #[must_use]
    pub fn without_labelers(&self) -> Client {
        self.with_options(|options| options.labelers = None)
    }

    /// The same session with another per-call timeout (`None`: no timeout).
    #[must_use]
    pub fn with_timeout(&self, timeout: Option<Duration>) -> Client {
        self.with_options(|options| options.timeout = timeout)
    }

    /// The same session with another retry policy.
    #[must_use]
    pub fn with_retry(&self, retry: RetryPolicy) -> Client {
        self.with_options(|options| options.retry = retry)
    }

    /// The same session with another limit on response bodies read into memory (see
    /// [`ClientBuilder::max_response_size`]).
    #[must_use]
    pub fn with_max_response_size(&self, bytes: u64) -> Client {
        self.with_options(|options| options.limits.response = bytes)
    }

    /// Whether plain `http://` to hosts that are not loopback is allowed (see
    /// [`ClientBuilder::allow_http`]).
    pub fn allows_http(&self) -> bool {
        self.options.allow_http
    }

    fn with_options(&self, change: impl FnOnce(&mut Options)) -> Client {
        let mut options = (*self.options).clone();
        change(&mut options);
        Client {
            shared: self.shared.clone(),
            options: Arc::new(options),
        }
    }

    /// Where calls go: the session's service (a password session's PDS), else the URL the
    /// client was built with.
    pub fn service_url(&self) -> Url {
        self.shared
            .auth
            .service_url()
            .unwrap_or_else(|| self.shared.base_url.clone())
    }

    /// The session's account, if the client is authenticated.
    pub fn did(&self) -> Option<Did> {
        self.shared.auth.did()
    }

    /// The auth session shared by this client's handles.
    pub fn session(&self) -> &Arc<dyn AuthSession> {
        &self.shared.auth
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.options.retry
    }

    /// Calls the XRPC method `E`.
    ///
    /// `params` and `input` are validated against the lexicon first (nothing is sent when they
    /// are invalid); the output comes back together with the client, which carries the session
    /// as it is after the call (it may have been refreshed).
    pub async fn call<E: Endpoint>(
        &self,
        params: E::Params,
        input: E::Input,
    ) -> Result<(E::Output, Client), Error<E::Error>> {
        self.call_with::<E>(params, input, &CallOptions::default())
            .await
    }

    /// [`Client::call`] with per-call options (proxy, labelers, timeout).
    pub async fn call_with<E: Endpoint>(
        &self,
        params: E::Params,
        input: E::Input,
        options: &CallOptions,
    ) -> Result<(E::Output, Client), Error<E::Error>> {
        let output = self.send::<E>(&params, &input, options).await?;
        Ok((output, self.clone()))
    }

    /// The typed call path shared by [`Client::call`] and pagination.
    pub(crate) async fn send<E: Endpoint>(
        &self,
        params: &E::Params,
        input: &E::Input,
        options: &CallOptions,
    ) -> Result<E::Output, Error<E::Error>> {
        let request = outgoing::<E>(params, input)?;
        let response = self
            .execute(request, options)
            .await
            .map_err(|error| error.map_xrpc(E::Error::from_body))?;
        decode_output::<E>(response.status, response.content_type, response.body)
    }

    /// Forces a refresh of the session (under the session's lock, persisting the new tokens
    /// before using them) and returns the client, which carries the new tokens.
    pub async fn refresh(&self) -> Result<Client, AuthError> {
        self.shared.auth.refresh(None).await?;
        Ok(self.clone())
    }

    /// Ends the session at the server and removes it from its store. Every handle of the
    /// session is logged out.
    pub async fn logout(self) -> Result<(), Error> {
        self.shared.auth.logout().await
    }
}

/// Decodes the body of a successful (2xx) response into `E`'s output; a body that does not
/// decode is an [`Error::Decode`] that keeps the raw response.
pub(crate) fn decode_output<E: Endpoint>(
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
) -> Result<E::Output, Error<E::Error>> {
    match E::Output::decode(body, content_type.as_deref()) {
        Ok(output) => Ok(output),
        Err(error) if E::OUTPUT_HAS_SECRETS => Err(Error::Decode(DecodeError::new(
            RawResponse::new(status, content_type, Vec::new()),
            format!(
                "{} (body dropped: it may hold credentials)",
                error.summary()
            ),
        ))),
        Err(mut error) => {
            let body = error.take_body().unwrap_or_default();
            Err(Error::Decode(DecodeError::new(
                RawResponse::new(status, content_type, body),
                error.message(),
            )))
        }
    }
}

/// The request for a call of `E`, after checking `params` and `input` against the lexicon.
pub(crate) fn outgoing<E: Endpoint>(
    params: &E::Params,
    input: &E::Input,
) -> Result<Outgoing<'static>, Error<E::Error>> {
    params.validate().map_err(|errors| Error::Validation {
        part: RequestPart::Params,
        errors,
    })?;
    input.validate().map_err(|errors| Error::Validation {
        part: RequestPart::Input,
        errors,
    })?;
    let mut query = QueryWriter::new();
    params.write_query(&mut query);
    let query = encode_query(
        query
            .pairs()
            .iter()
            .map(|(name, value)| (*name, value.as_str())),
    );
    let body = input.request_body().map_err(Error::Encode)?;
    Ok(Outgoing {
        nsid: E::NSID,
        kind: E::KIND,
        query,
        body,
    })
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("service_url", &self.service_url().as_str())
            .field("session", &self.shared.auth)
            .field("timeout", &self.options.timeout)
            .field("retry", &self.options.retry)
            .field("proxy", &self.options.proxy)
            .field("labelers", &self.options.labelers)
            .field("limits", &self.options.limits)
            .field("allow_http", &self.options.allow_http)
            .finish()
    }
}

/// Options for one call, overriding the client's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallOptions {
    pub(crate) proxy: Option<String>,
    pub(crate) labelers: Option<String>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) max_response_size: Option<u64>,
    pub(crate) max_streamed_size: Option<u64>,
}

impl CallOptions {
    /// No overrides.
    pub fn new() -> CallOptions {
        CallOptions::default()
    }

    /// Proxies this call to `did`'s service `service_id` (`atproto-proxy`).
    #[must_use]
    pub fn proxy(mut self, did: &Did, service_id: &str) -> CallOptions {
        self.proxy = Some(proxy_value(did, service_id));
        self
    }

    /// Asks for labels from `labelers` in this call (`atproto-accept-labelers`).
    #[must_use]
    pub fn labelers<L: Into<Labeler>>(
        mut self,
        labelers: impl IntoIterator<Item = L>,
    ) -> CallOptions {
        self.labelers = labelers_value(labelers);
        self
    }

    /// The timeout of this call.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> CallOptions {
        self.timeout = Some(timeout);
        self
    }

    /// The limit on this call's response body, when it is read into memory (default: the
    /// client's, [`DEFAULT_MAX_RESPONSE_SIZE`] unless changed). A larger body fails the call
    /// with a [`TransportErrorKind::TooLarge`](super::TransportErrorKind::TooLarge) error, and
    /// no more of it is read.
    #[must_use]
    pub fn max_response_size(mut self, bytes: u64) -> CallOptions {
        self.max_response_size = Some(bytes);
        self
    }

    /// A cap on this call's streamed body ([`Client::call_streamed`]): the stream fails with
    /// a [`TransportErrorKind::TooLarge`](super::TransportErrorKind::TooLarge) error once more
    /// arrived (default: the client's, none unless set with
    /// [`ClientBuilder::max_streamed_size`]).
    #[must_use]
    pub fn max_streamed_size(mut self, bytes: u64) -> CallOptions {
        self.max_streamed_size = Some(bytes);
        self
    }
}

/// A labeler whose labels a call accepts, for `atproto-accept-labelers`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Labeler {
    did: Did,
    redact: bool,
}

impl Labeler {
    /// The labeler `did`.
    pub fn new(did: Did) -> Labeler {
        Labeler { did, redact: false }
    }

    /// Asks the AppView to apply this labeler's takedown-like labels by removing content
    /// (`;redact`).
    #[must_use]
    pub fn redact(mut self) -> Labeler {
        self.redact = true;
        self
    }
}

impl From<Did> for Labeler {
    fn from(did: Did) -> Labeler {
        Labeler::new(did)
    }
}

impl From<&Did> for Labeler {
    fn from(did: &Did) -> Labeler {
        Labeler::new(did.clone())
    }
}

fn proxy_value(did: &Did, service_id: &str) -> String {
    format!("{did}#{}", service_id.trim_start_matches('#'))
}

fn labelers_value<L: Into<Labeler>>(labelers: impl IntoIterator<Item = L>) -> Option<String> {
    let parts: Vec<String> = labelers
        .into_iter()
        .map(|labeler| {
            let labeler = labeler.into();
            if labeler.redact {
                format!("{};redact", labeler.did)
            } else {
                labeler.did.to_string()
            }
        })
        .collect();
    if parts.is_empty() {
        None
    } else {
        Some(parts.join(", "))
    }
}

/// Builds a [`Client`].
#[derive(Debug)]
#[must_use]
pub struct ClientBuilder {
    service_url: String,
    http: Option<reqwest::Client>,
    timeout: Option<Duration>,
    connect_timeout: Duration,
    user_agent: Option<String>,
    retry: RetryPolicy,
    proxy: Option<String>,
    labelers: Option<String>,
    session: Option<Arc<dyn AuthSession>>,
    limits: Limits,
    allow_http: bool,
    redirects: RedirectPolicy,
}

impl ClientBuilder {
    fn new(service_url: &str) -> ClientBuilder {
        ClientBuilder {
            service_url: service_url.to_owned(),
            http: None,
            timeout: Some(Duration::from_secs(30)),
            connect_timeout: Duration::from_secs(10),
            user_agent: None,
            retry: RetryPolicy::default(),
            proxy: None,
            labelers: None,
            session: None,
            limits: Limits::default(),
            allow_http: false,
            redirects: RedirectPolicy::None,
        }
    }

    /// Uses this HTTP client (its connection pool, TLS and proxy settings) instead of building
    /// one; [`connect_timeout`](ClientBuilder::connect_timeout),
    /// [`user_agent`](ClientBuilder::user_agent) and [`redirects`](ClientBuilder::redirects)
    /// then do not apply: **its redirect policy is yours** (reqwest's default follows up to 10
    /// redirects to any origin, and strips only `Authorization` and cookies when the host
    /// changes, not `DPoP` or `atproto-proxy`; build it with
    /// `.redirect(atlex::net::RedirectPolicy::None.to_reqwest())` to keep atlex's default).
    /// The size limits and the `http://` rule still apply.
    pub fn http(mut self, http: reqwest::Client) -> ClientBuilder {
        self.http = Some(http);
        self
    }

    /// The timeout of each HTTP exchange, from connecting to the last byte of the response
    /// (default 30 s; `None`: none). Retries each get the full timeout.
    pub fn timeout(mut self, timeout: Option<Duration>) -> ClientBuilder {
        self.timeout = timeout;
        self
    }

    /// The timeout for opening a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.connect_timeout = timeout;
        self
    }

    /// The `User-Agent` header (default `atlex/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> ClientBuilder {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// The retry policy (default [`RetryPolicy::default`]).
    pub fn retry(mut self, retry: RetryPolicy) -> ClientBuilder {
        self.retry = retry;
        self
    }

    /// Proxies every call to `did`'s service `service_id` (`atproto-proxy`).
    pub fn proxy(mut self, did: &Did, service_id: &str) -> ClientBuilder {
        self.proxy = Some(proxy_value(did, service_id));
        self
    }

    /// Asks for labels from `labelers` in every call (`atproto-accept-labelers`).
    pub fn labelers<L: Into<Labeler>>(
        mut self,
        labelers: impl IntoIterator<Item = L>,
    ) -> ClientBuilder {
        self.labelers = labelers_value(labelers);
        self
    }

    /// Authenticates with `session` (default: anonymous).
    pub fn session(mut self, session: Arc<dyn AuthSession>) -> ClientBuilder {
        self.session = Some(session);
        self
    }

    /// The limit on a response body read into memory (default [`DEFAULT_MAX_RESPONSE_SIZE`],
    /// 8 MiB). A `Content-Length` over it fails the call before the body is read; a body
    /// without one is read until it passes the limit, then abandoned. Either way the call
    /// fails with a [`TransportErrorKind::TooLarge`](super::TransportErrorKind::TooLarge)
    /// error naming the limit and the URL.
    pub fn max_response_size(mut self, bytes: u64) -> ClientBuilder {
        self.limits.response = bytes;
        self
    }

    /// The limit on the body of an error answer (default [`DEFAULT_MAX_ERROR_SIZE`], 64 KiB).
    pub fn max_error_size(mut self, bytes: u64) -> ClientBuilder {
        self.limits.error = bytes;
        self
    }

    /// A cap on streamed bodies ([`Client::call_streamed`], [`Client::get_blob`]); default
    /// `None`: they are never held in memory, so they may be as large as the caller reads.
    pub fn max_streamed_size(mut self, bytes: Option<u64>) -> ClientBuilder {
        self.limits.streamed = bytes;
        self
    }

    /// Allows plain `http://` to hosts that are not loopback (default `false`: `https://`
    /// everywhere, `http://` only for `localhost`, `127.0.0.0/8` and `::1`). Checked when the
    /// client is built and for every URL a call goes to, including a PDS taken from a DID
    /// document after login.
    pub fn allow_http(mut self, allow: bool) -> ClientBuilder {
        self.allow_http = allow;
        self
    }

    /// Which redirects the built HTTP client follows (default [`RedirectPolicy::None`]: a
    /// `3xx` answer fails the call with a
    /// [`TransportErrorKind::Redirect`](super::TransportErrorKind::Redirect) error).
    /// [`RedirectPolicy::SameOrigin`] follows redirects within the service's origin only, so
    /// credentials and request bodies never reach another origin. Does not apply to an HTTP
    /// client given with [`http`](ClientBuilder::http).
    pub fn redirects(mut self, policy: RedirectPolicy) -> ClientBuilder {
        self.redirects = policy;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client, BuildError> {
        let base_url = parse_service_url(&self.service_url)?;
        net::check_url(&base_url, self.allow_http)
            .map_err(|error| BuildError::new(error.to_string(), Some(error.into())))?;
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .connect_timeout(self.connect_timeout)
                .redirect(self.redirects.to_reqwest())
                .user_agent(self.user_agent.as_deref().unwrap_or(USER_AGENT))
                .build()
                .map_err(|error| {
                    BuildError::new("cannot build the HTTP client", Some(error.into()))
                })?,
        };
        let auth = self.session.unwrap_or_else(Anonymous::session);
        let base_url = auth.service_url().unwrap_or(base_url);
        Ok(Client {
            shared: Arc::new(Shared {
                http,
                base_url,
                auth,
            }),
            options: Arc::new(Options {
                timeout: self.timeout,
                retry: self.retry,
                proxy: self.proxy,
                labelers: self.labelers,
                limits: self.limits,
                allow_http: self.allow_http,
            }),
        })
    }
}

/// Parses a service URL: absolute `http` or `https`.
pub(crate) fn parse_service_url(text: &str) -> Result<Url, BuildError> {
    let url = Url::parse(text).map_err(|error| {
        BuildError::new(format!("invalid service URL {text:?}"), Some(error.into()))
    })?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(BuildError::new(
            format!("service URL {text:?} is not http or https"),
            None,
        ));
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(BuildError::new(
            format!("service URL {text:?} has no host"),
            None,
        ));
    }
    Ok(url)
}

/// A client could not be built (an invalid service URL, an HTTP client that failed to
/// initialise).
#[derive(Debug)]
pub struct BuildError {
    message: String,
    source: Option<BoxError>,
}

impl BuildError {
    pub(crate) fn new(message: impl Into<String>, source: Option<BoxError>) -> BuildError {
        BuildError {
            message: message.into(),
            source,
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|error| error as &(dyn std::error::Error + 'static))
    }
}

impl<E> From<BuildError> for Error<E> {
    fn from(error: BuildError) -> Self {
        Error::InvalidRequest(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labelers_header() {
        let a = Did::new("did:plc:aaa").unwrap();
        let b = Did::new("did:plc:bbb").unwrap();
        assert_eq!(
            labelers_value([Labeler::new(a.clone()), Labeler::new(b).redact()]),
            Some("did:plc:aaa, did:plc:bbb;redact".to_owned())
        );
        assert_eq!(labelers_value(Vec::<Labeler>::new()), None);
        assert_eq!(proxy_value(&a, "#bsky_chat"), "did:plc:aaa#bsky_chat");
        assert_eq!(proxy_value(&a, "bsky_chat"), "did:plc:aaa#bsky_chat");
    }

    #[test]
    fn service_urls() {
        assert!(parse_service_url("https://bsky.social").is_ok());
        assert!(parse_service_url("http://localhost:2583/").is_ok());
        assert!(parse_service_url("ftp://x").is_err());
        assert!(parse_service_url("not a url").is_err());
        assert!(parse_service_url("mailto:a@b").is_err());
    }
}
