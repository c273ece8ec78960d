//! A hardened HTTP client for everything that is not XRPC: DID documents, `.well-known`
//! answers, and (next) OAuth metadata. URLs there come from untrusted documents, so every
//! request is bounded and checked:
//!
//! * one shared `reqwest` client (connection pool), with a total timeout per request and a
//!   connect timeout;
//! * the body is read through [`read_limited`] with a size limit;
//! * redirects follow [`RedirectPolicy`] (none by default: a `3xx` is an error);
//! * the URL passes [`check_url`] (`https`, `http` only for loopback unless `allow_http`);
//! * optionally ([`FetcherBuilder::block_private_addresses`], for server-side apps), hosts that
//!   are or resolve to private, loopback, link-local or otherwise non-public addresses are
//!   refused. The check is done in the client's DNS resolver, so the addresses that are checked
//!   are the ones connected to (no DNS-rebinding gap between check and use);
//! * a `tracing` span per request (`atlex.fetch`, with the redacted URL, status and time);
//! * errors name the (redacted) URL and the reason, never the body.

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HOST, HeaderValue};
use tracing::Instrument as _;
use url::{Host, Url};

use super::{ReadError, RedirectPolicy, UrlError, check_url, read_limited, redact_url};

/// The default total time for one request (connect, headers and body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default body limit (1 MiB).
pub const DEFAULT_MAX_BODY: u64 = 1024 * 1024;

/// Builds a [`Fetcher`].
#[derive(Debug, Clone)]
pub struct FetcherBuilder {
    timeout: Duration,
    connect_timeout: Duration,
    max_body: u64,
    allow_http: bool,
    redirects: RedirectPolicy,
    block_private: bool,
    user_agent: String,
}

impl Default for FetcherBuilder {
    fn default() -> Self {
        FetcherBuilder {
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
            allow_http: false,
            redirects: RedirectPolicy::None,
            block_private: false,
            user_agent: concat!("atlex/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl FetcherBuilder {
    /// The total time one request may take, body included (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The connect timeout (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The default body limit in bytes (default 1 MiB); each request may lower it.
    pub fn max_body(mut self, bytes: u64) -> Self {
        self.max_body = bytes;
        self
    }

    /// Allows plain `http://` to any host (development only; loopback is always allowed).
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Which redirects are followed (default none).
    pub fn redirects(mut self, policy: RedirectPolicy) -> Self {
        self.redirects = policy;
        self
    }

    /// Refuses hosts that are, or resolve to, non-public addresses (private, loopback,
    /// link-local, unique-local, shared, documentation, unspecified, multicast). For
    /// server-side apps that fetch URLs named by untrusted documents (SSRF defence). Off by
    /// default, since development setups run on loopback.
    pub fn block_private_addresses(mut self, block: bool) -> Self {
        self.block_private = block;
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Fetcher, FetchError> {
        let mut builder = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .redirect(self.redirects.to_reqwest())
            .user_agent(self.user_agent.clone())
            .no_proxy();
        if self.block_private {
            builder = builder.dns_resolver(Arc::new(PublicOnlyResolver));
        }
        let client = builder.build().map_err(|error| FetchError {
            url: String::new(),
            kind: FetchErrorKind::Client(error.to_string()),
        })?;
        Ok(Fetcher {
            inner: Arc::new(Inner {
                client,
                config: self,
            }),
        })
    }
}

/// The hardened HTTP client (see the [module docs](self)). Cheap to clone: clones share one
/// connection pool.
#[derive(Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    config: FetcherBuilder,
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetcher")
            .field("timeout", &self.inner.config.timeout)
            .field("max_body", &self.inner.config.max_body)
            .field("allow_http", &self.inner.config.allow_http)
            .field("redirects", &self.inner.config.redirects)
            .field("block_private", &self.inner.config.block_private)
            .finish()
    }
}

/// One GET: what to accept, how much, and an optional `Host` override.
#[derive(Debug, Clone, Default)]
pub struct Get<'a> {
    /// The `Accept` header.
    pub accept: Option<&'a str>,
    /// A body limit below the fetcher's.
    pub max_body: Option<u64>,
    /// A `Host` header to send instead of the URL's (for virtual hosts in development and
    /// tests, e.g. a PDS serving `/.well-known/atproto-did` for many handles).
    pub host: Option<&'a str>,
    /// Skips the `allow_http` check for this request: for URLs the developer configured
    /// (a PLC directory), never for URLs read from documents.
    pub trusted_url: bool,
}

/// A successful (2xx) response, read whole.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The status.
    pub status: u16,
    /// The `Content-Type` header, when there is a readable one.
    pub content_type: Option<String>,
    /// The body (at most the limit).
    pub body: Bytes,
}

impl Fetcher {
    /// A fetcher with the defaults (10 s, 1 MiB, https only, no redirects, no address guard).
    pub fn new() -> Result<Fetcher, FetchError> {
        FetcherBuilder::default().build()
    }

    /// Starts a [`FetcherBuilder`].
    pub fn builder() -> FetcherBuilder {
        FetcherBuilder::default()
    }

    /// Whether plain `http` to non-loopback hosts is allowed.
    pub fn allows_http(&self) -> bool {
        self.inner.config.allow_http
    }

    /// Checks `url` against this fetcher's transport rule (see [`check_url`]).
    pub fn check(&self, url: &Url) -> Result<(), FetchError> {
        check_url(url, self.inner.config.allow_http).map_err(|error| FetchError {
            url: redact_url(url),
            kind: FetchErrorKind::Url(error),
        })
    }

    /// `GET url`. A non-2xx status is [`FetchErrorKind::Status`] (with the status only; the
    /// body of an error is never read into the error).
    pub async fn get(&self, url: &Url, options: Get<'_>) -> Result<Fetched, FetchError> {
        let shown = redact_url(url);
        let span = tracing::debug_span!("atlex.fetch", url = %shown, status = tracing::field::Empty, elapsed_ms = tracing::field::Empty);
        let started = Instant::now();
        let result = self
            .get_inner(url, &shown, options)
            .instrument(span.clone())
            .await;
        let elapsed = started.elapsed().as_millis();
        span.record("elapsed_ms", u64::try_from(elapsed).unwrap_or(u64::MAX));
        match &result {
            Ok(fetched) => {
                span.record("status", fetched.status);
            }
            Err(error) => {
                if let FetchErrorKind::Status(status) = error.kind {
                    span.record("status", status);
                }
                tracing::debug!(parent: &span, %error, "fetch failed");
            }
        }
        result
    }

    async fn get_inner(
        &self,
        url: &Url,
        shown: &str,
        options: Get<'_>,
    ) -> Result<Fetched, FetchError> {
        let fail = |kind| FetchError {
            url: shown.to_owned(),
            kind,
        };
        let allow_http = self.inner.config.allow_http || options.trusted_url;
        check_url(url, allow_http).map_err(|error| fail(FetchErrorKind::Url(error)))?;
        if self.inner.config.block_private {
            match url.host() {
                Some(Host::Ipv4(ip)) if !is_public(IpAddr::V4(ip)) => {
                    return Err(fail(FetchErrorKind::PrivateAddress(IpAddr::V4(ip))));
                }
                Some(Host::Ipv6(ip)) if !is_public(IpAddr::V6(ip)) => {
                    return Err(fail(FetchErrorKind::PrivateAddress(IpAddr::V6(ip))));
                }
                Some(Host::Domain(name)) if name.eq_ignore_ascii_case("localhost") => {
                    return Err(fail(FetchErrorKind::PrivateAddress(IpAddr::from([
                        127, 0, 0, 1,
                    ]))));
                }
                _ => {}
            }
        }
        let mut request = self.inner.client.get(url.clone());
        if let Some(accept) = options.accept {
            request = request.header(ACCEPT, accept);
        }
        if let Some(host) = options.host {
            let value = HeaderValue::from_str(host)
                .map_err(|_| fail(FetchErrorKind::Client("invalid Host header".to_owned())))?;
            request = request.header(HOST, value);
        }
        let response = request.send().await.map_err(|error| {
            fail(if error.is_timeout() {
                FetchErrorKind::Timeout
            } else if error.is_redirect() {
                FetchErrorKind::Redirect(error_chain(&error))
            } else if let Some(ip) = private_address_in(&error) {
                FetchErrorKind::PrivateAddress(ip)
            } else {
                FetchErrorKind::Connect(error_chain(&error.without_url()))
            })
        })?;
        let status = response.status().as_u16();
        if response.status().is_redirection() {
            return Err(fail(FetchErrorKind::Redirect(format!(
                "HTTP {status}; redirects are not followed"
            ))));
        }
        if !response.status().is_success() {
            return Err(fail(FetchErrorKind::Status(status)));
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let limit = options.max_body.map_or(self.inner.config.max_body, |max| {
            max.min(self.inner.config.max_body)
        });
        let body = read_limited(response, limit).await.map_err(|error| {
            fail(match error {
                ReadError::TooLarge(too_large) => FetchErrorKind::TooLarge {
                    limit: too_large.limit(),
                },
                error if error.is_timeout() => FetchErrorKind::Timeout,
                ReadError::Http(error) => FetchErrorKind::Connect(error_chain(&error)),
            })
        })?;
        Ok(Fetched {
            status,
            content_type,
            body,
        })
    }
}

/// A failed fetch: the (redacted) URL and why.
#[derive(Debug, Clone)]
pub struct FetchError {
    url: String,
    kind: FetchErrorKind,
}

/// Why a fetch failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum FetchErrorKind {
    /// The URL may not be contacted (scheme, plain http, no host).
    Url(UrlError),
    /// The host is or resolves to a non-public address, and the guard is on.
    PrivateAddress(IpAddr),
    /// The request or the body took longer than the timeout.
    Timeout,
    /// Connecting or reading failed.
    Connect(String),
    /// The server redirected, and the policy did not allow following it.
    Redirect(String),
    /// A non-2xx, non-3xx status.
    Status(u16),
    /// The body was over the limit.
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The HTTP client could not be built or the request not formed.
    Client(String),
}

impl FetchError {
    /// The URL (redacted: no query, fragment or user info).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Why.
    pub fn kind(&self) -> &FetchErrorKind {
        &self.kind
    }

    /// The HTTP status, for [`FetchErrorKind::Status`].
    pub fn status(&self) -> Option<u16> {
        match self.kind {
            FetchErrorKind::Status(status) => Some(status),
            _ => None,
        }
    }

    /// Whether trying again later may succeed (timeouts, connection errors, 429 and 5xx).
    pub fn is_transient(&self) -> bool {
        match self.kind {
            FetchErrorKind::Timeout | FetchErrorKind::Connect(_) => true,
            FetchErrorKind::Status(status) => status == 429 || status >= 500,
            _ => false,
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = &self.url;
        match &self.kind {
            FetchErrorKind::Url(error) => error.fmt(f),
            FetchErrorKind::PrivateAddress(ip) => write!(
                f,
                "refusing {url}: its address {ip} is not public (private-address guard)"
            ),
            FetchErrorKind::Timeout => write!(f, "GET {url}: timed out"),
            FetchErrorKind::Connect(reason) => write!(f, "GET {url}: {reason}"),
            FetchErrorKind::Redirect(reason) => {
                write!(f, "GET {url}: redirect refused ({reason})")
            }
            FetchErrorKind::Status(status) => write!(f, "GET {url}: HTTP {status}"),
            FetchErrorKind::TooLarge { limit } => {
                write!(
                    f,
                    "GET {url}: the response is over the limit of {limit} bytes"
                )
            }
            FetchErrorKind::Client(reason) => write!(f, "GET {url}: {reason}"),
        }
    }
}

impl std::error::Error for FetchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            FetchErrorKind::Url(error) => Some(error),
            _ => None,
        }
    }
}

/// An error and its causes, joined with `: ` (reqwest's top-level messages say little).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The address refused by [`PublicOnlyResolver`], if that is why `error` happened.
fn private_address_in(error: &reqwest::Error) -> Option<IpAddr> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<PrivateAddressRefused>() {
            return Some(refused.0);
        }
        source = cause.source();
    }
    None
}

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, c, _] = ip.octets();
            !(ip.is_private()
                || ip.is_loopback()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || ip.is_multicast()
                || ip.is_documentation()
                || a == 0
                // 100.64.0.0/10 shared address space (carrier-grade NAT)
                || (a == 100 && (64..128).contains(&b))
                // 192.0.0.0/24 protocol assignments
                || (a == 192 && b == 0 && c == 0)
                // 198.18.0.0/15 benchmarking
                || (a == 198 && (b == 18 || b == 19))
                // 240.0.0.0/4 reserved
                || a >= 240)
        }
        IpAddr::V6(ip) => {
            if let Some(v4) = ip.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = ip.segments()[0];
            !(ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                // fc00::/7 unique local
                || (first & 0xfe00) == 0xfc00
                // fe80::/10 link local
                || (first & 0xffc0) == 0xfe80
                // 2001:db8::/32 documentation
                || (first == 0x2001 && ip.segments()[1] == 0x0db8)
                // 64:ff9b::/96 NAT64 could reach private IPv4 space
                || (first == 0x0064 && ip.segments()[1] == 0xff9b))
        }
    }
}

#[derive(Debug)]
struct PrivateAddressRefused(IpAddr);

impl fmt::Display for PrivateAddressRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the host resolves to the non-public address {}", self.0)
    }
}

impl std::error::Error for PrivateAddressRefused {}

/// The system resolver, refusing names that resolve to any non-public address.
struct PublicOnlyResolver;

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::task::spawn_blocking(move || (host.as_str(), 0).to_socket_addrs())
                    .await
                    .map_err(|error| -> Box<dyn std::error::Error + Send + Sync> {
                        Box::new(error)
                    })?
                    .map_err(|error| -> Box<dyn std::error::Error + Send + Sync> {
                        Box::new(error)
                    })?
                    .collect();
            // Every address must be public: a name with one public and one private address
            // could otherwise be steered to the private one.
            if let Some(bad) = addresses.iter().find(|address| !is_public(address.ip())) {
                return Err(Box::new(PrivateAddressRefused(bad.ip()))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses() {
        for private in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["1.1.1.1", "93.184.216.34", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn guard_refuses_literal_private_hosts() {
        let fetcher = Fetcher::builder()
            .block_private_addresses(true)
            .build()
            .unwrap();
        for url in [
            "https://127.0.0.1/x",
            "https://localhost/x",
            "https://[::1]/x",
            "https://10.0.0.1/",
        ] {
            let error = fetcher
                .get(&Url::parse(url).unwrap(), Get::default())
                .await
                .unwrap_err();
            assert!(
                matches!(error.kind(), FetchErrorKind::PrivateAddress(_)),
                "{url}: {error}"
            );
        }
    }

    #[tokio::test]
    async fn refuses_plain_http_and_other_schemes() {
        let fetcher = Fetcher::new().unwrap();
        let error = fetcher
            .get(
                &Url::parse("http://pds.example.com/?token=secret").unwrap(),
                Get::default(),
            )
            .await
            .unwrap_err();
        assert!(matches!(error.kind(), FetchErrorKind::Url(_)), "{error}");
        assert!(!error.to_string().contains("secret"), "{error}");
        let error = fetcher
            .get(&Url::parse("ftp://x.example/").unwrap(), Get::default())
            .await
            .unwrap_err();
        assert!(matches!(error.kind(), FetchErrorKind::Url(_)), "{error}");
    }
}
