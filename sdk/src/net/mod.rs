//! Network policy shared by every HTTP exchange atlex makes (XRPC calls, and the non-XRPC
//! fetches of identity resolution and OAuth): bounded body reads, which URLs may be contacted,
//! and which redirects may be followed.
//!
//! Everything here is generic HTTP (no XRPC knowledge), so that each idea has one
//! implementation:
//!
//! * [`read_limited`] reads a response body into memory, but never more than a limit: a
//!   `Content-Length` over the limit is refused before any of the body is read, and a body
//!   without one (chunked, or a lying header) is read chunk by chunk and abandoned as soon as
//!   the total would pass the limit. [`limit_stream`] applies the same cap to a body that is
//!   streamed rather than collected.
//! * [`check_url`] enforces the transport rule: `https://` anywhere, `http://` only for
//!   loopback hosts (`localhost`, `127.0.0.0/8`, `::1`) unless the caller allows plain HTTP,
//!   nothing else.
//! * [`RedirectPolicy`] is the rule for redirects: by default none is followed; the opt-in
//!   [`RedirectPolicy::SameOrigin`] follows redirects only within the origin (scheme, host and
//!   port) of the request, so credentials (`Authorization`, `DPoP`, `atproto-proxy`, cookies)
//!   and request bodies are never resent to another origin. (reqwest's own policies strip only
//!   a few standard headers, and only when the host changes; custom headers such as `DPoP`
//!   would follow a cross-origin redirect.)
//!
//! * [`ws`] opens WebSocket connections under the same rules (`wss://`, or `ws://` for
//!   loopback), with bounded message sizes and connect and idle timeouts.
//!
//! Errors name the URL as [`redact_url`] shows it: scheme, host, port and path, never the
//! query string, fragment or user info, which may hold secrets.

pub mod fetch;
pub mod ws;

use std::fmt;
use std::net::IpAddr;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use futures::Stream;
use reqwest::header::CONTENT_LENGTH;
use url::{Host, Url};

/// The most [`read_limited`] reserves up front from a `Content-Length` header (the buffer still
/// grows as data arrives, up to the limit): a large declared length costs nothing until the
/// bytes are actually received.
const MAX_PREALLOCATE: u64 = 1024 * 1024;

/// A URL as it may appear in errors and logs: scheme, host, port and path, without user info,
/// query string or fragment (which may carry tokens, codes or passwords).
pub fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    // Both only fail for URLs that cannot have a password or a host; nothing to remove then.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// A response body was not read whole: it was larger than allowed, or reading it failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadError {
    /// The body is (or declared itself) larger than the limit; reading stopped.
    TooLarge(TooLarge),
    /// The connection failed or timed out while the body was read.
    Http(reqwest::Error),
}

impl ReadError {
    /// Whether the read timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ReadError::Http(error) if error.is_timeout())
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::TooLarge(error) => error.fmt(f),
            ReadError::Http(error) => write!(f, "cannot read the response body: {error}"),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::TooLarge(error) => Some(error),
            ReadError::Http(error) => Some(error),
        }
    }
}

impl From<TooLarge> for ReadError {
    fn from(error: TooLarge) -> Self {
        ReadError::TooLarge(error)
    }
}

/// A response body over the size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge {
    url: String,
    limit: u64,
    declared: Option<u64>,
}

impl TooLarge {
    /// A body from `url` over `limit` bytes (`declared`: its `Content-Length`, when that is
    /// what gave it away).
    pub fn new(url: &Url, limit: u64, declared: Option<u64>) -> TooLarge {
        TooLarge {
            url: redact_url(url),
            limit,
            declared,
        }
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The `Content-Length` the server declared, when it was over the limit (`None`: the body
    /// itself passed the limit as it was read).
    pub fn declared(&self) -> Option<u64> {
        self.declared
    }

    /// The URL (redacted, see [`redact_url`]).
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.declared {
            Some(declared) => write!(
                f,
                "the response from {} is {declared} bytes (Content-Length), over the limit of {} bytes",
                self.url, self.limit
            ),
            None => write!(
                f,
                "the response from {} is over the limit of {} bytes; reading stopped",
                self.url, self.limit
            ),
        }
    }
}

impl std::error::Error for TooLarge {}

/// The `Content-Length` of `response`, when it has a well-formed one.
///
/// A malformed header (not a decimal number, or past `u64`) is treated as absent: the body is
/// then bounded as it is read.
pub fn content_length(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
}

/// Reads `response`'s body into memory, refusing more than `limit` bytes.
///
/// A `Content-Length` over `limit` fails before any of the body is read; otherwise the body is
/// read chunk by chunk and reading stops (the connection is dropped) as soon as the total would
/// pass `limit`, so at most `limit` bytes plus one chunk are ever held.
pub async fn read_limited(mut response: reqwest::Response, limit: u64) -> Result<Bytes, ReadError> {
    let url = response.url().clone();
    let declared = content_length(&response);
    if let Some(declared) = declared.filter(|declared| *declared > limit) {
        return Err(TooLarge::new(&url, limit, Some(declared)).into());
    }
    let reserve = declared.unwrap_or(0).min(limit).min(MAX_PREALLOCATE);
    let mut buffer = BytesMut::with_capacity(usize::try_from(reserve).unwrap_or(0));
    let mut total: u64 = 0;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| ReadError::Http(error.without_url()))?
    {
        total = add_within(total, chunk.len(), limit)
            .ok_or_else(|| TooLarge::new(&url, limit, None))?;
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}

/// `total + len` when it is at most `limit` (no overflow possible).
fn add_within(total: u64, len: usize, limit: u64) -> Option<u64> {
    u64::try_from(len)
        .ok()
        .and_then(|len| total.checked_add(len))
        .filter(|sum| *sum <= limit)
}

/// A response body as a stream of chunks, failing with [`ReadError::TooLarge`] (and ending)
/// once more than `limit` bytes have arrived, or at once when the `Content-Length` is over
/// `limit`. `None` streams without a cap.
pub fn limit_stream(
    response: reqwest::Response,
    limit: Option<u64>,
) -> Pin<Box<dyn Stream<Item = Result<Bytes, ReadError>> + Send>> {
    struct State {
        response: Option<reqwest::Response>,
        url: Url,
        limit: Option<u64>,
        total: u64,
    }
    let url = response.url().clone();
    let declared = content_length(&response);
    if let Some((limit, declared)) = limit
        .zip(declared)
        .filter(|(limit, declared)| declared > limit)
    {
        let error = ReadError::from(TooLarge::new(&url, limit, Some(declared)));
        return Box::pin(futures::stream::once(async move { Err(error) }));
    }
    let state = State {
        response: Some(response),
        url,
        limit,
        total: 0,
    };
    Box::pin(futures::stream::unfold(state, |mut state| async move {
        let response = state.response.as_mut()?;
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if let Some(limit) = state.limit {
                    match add_within(state.total, chunk.len(), limit) {
                        Some(total) => state.total = total,
                        None => {
                            state.response = None;
                            let error = TooLarge::new(&state.url, limit, None);
                            return Some((Err(error.into()), state));
                        }
                    }
                }
                Some((Ok(chunk), state))
            }
            Ok(None) => None,
            Err(error) => {
                state.response = None;
                Some((Err(ReadError::Http(error.without_url())), state))
            }
        }
    }))
}

/// Whether `url`'s host is a loopback address: `localhost`, `127.0.0.0/8` or `::1`.
///
/// Only the literal name `localhost` counts among names (not `*.localhost` or names that
/// happen to resolve to a loopback address: that would depend on the resolver).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Checks that `url` may be contacted: `https://` with a host; `http://` only for a loopback
/// host (see [`is_loopback`]) unless `allow_http`; any other scheme never.
pub fn check_url(url: &Url, allow_http: bool) -> Result<(), UrlError> {
    let refuse = |reason| {
        Err(UrlError {
            url: redact_url(url),
            reason,
        })
    };
    if url.cannot_be_a_base() || url.host().is_none() {
        return refuse(UrlRefusal::NoHost);
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_http || is_loopback(url) => Ok(()),
        "http" => refuse(UrlRefusal::PlainHttp),
        _ => refuse(UrlRefusal::Scheme),
    }
}

/// Why [`check_url`] refused a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UrlRefusal {
    /// Neither `https` nor `http`.
    Scheme,
    /// `http://` to a host that is not loopback, and plain HTTP was not allowed.
    PlainHttp,
    /// No host (`mailto:`, `data:`, …).
    NoHost,
}

/// A URL that may not be contacted (see [`check_url`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlError {
    url: String,
    reason: UrlRefusal,
}

impl UrlError {
    /// Why it was refused.
    pub fn reason(&self) -> UrlRefusal {
        self.reason
    }

    /// The URL (redacted, see [`redact_url`]).
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            UrlRefusal::Scheme => write!(
                f,
                "refusing {}: only https and http URLs are allowed",
                self.url
            ),
            UrlRefusal::PlainHttp => write!(
                f,
                "refusing {}: plain http is allowed only for loopback hosts (localhost, 127.0.0.0/8, ::1) unless allowed explicitly (allow_http)",
                self.url
            ),
            UrlRefusal::NoHost => write!(f, "refusing {}: the URL has no host", self.url),
        }
    }
}

impl std::error::Error for UrlError {}

/// Which HTTP redirects are followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum RedirectPolicy {
    /// Follow none: a `3xx` answer is returned as it is (the default).
    #[default]
    None,
    /// Follow at most `max` redirects, each to the same origin (scheme, host and port) as the
    /// original request; a redirect to another origin, a loop or one past `max` fails the
    /// request with a [`RedirectRefused`] error. Since nothing leaves the origin, headers
    /// (credentials included) and bodies (resent by `307`/`308`) reach only the server they
    /// were meant for.
    SameOrigin {
        /// The most redirects followed in one request.
        max: usize,
    },
}

impl RedirectPolicy {
    /// [`RedirectPolicy::SameOrigin`] with up to 5 redirects.
    pub fn same_origin() -> RedirectPolicy {
        RedirectPolicy::SameOrigin { max: 5 }
    }

    /// The policy for a `reqwest::ClientBuilder::redirect`.
    pub fn to_reqwest(self) -> reqwest::redirect::Policy {
        match self {
            RedirectPolicy::None => reqwest::redirect::Policy::none(),
            RedirectPolicy::SameOrigin { max } => {
                reqwest::redirect::Policy::custom(move |attempt| {
                    let previous = attempt.previous();
                    let Some(origin) = previous.first() else {
                        return attempt.stop();
                    };
                    let refusal = if !same_origin(origin, attempt.url()) {
                        Some(RedirectRefusal::CrossOrigin)
                    } else if previous.len() > max {
                        Some(RedirectRefusal::TooMany)
                    } else if previous.contains(attempt.url()) {
                        Some(RedirectRefusal::Loop)
                    } else {
                        None
                    };
                    match refusal {
                        None => attempt.follow(),
                        Some(reason) => {
                            let error = RedirectRefused {
                                status: attempt.status().as_u16(),
                                from: previous.last().map(redact_url).unwrap_or_default(),
                                to: redact_url(attempt.url()),
                                reason,
                            };
                            attempt.error(error)
                        }
                    }
                })
            }
        }
    }
}

/// Whether two URLs have the same origin: scheme, host and port (default ports included).
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Why a redirect was not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RedirectRefusal {
    /// To another origin (or another scheme, or not `http(s)` at all).
    CrossOrigin,
    /// Past the policy's maximum.
    TooMany,
    /// Back to a URL already visited.
    Loop,
    /// The policy follows no redirects ([`RedirectPolicy::None`]).
    NotFollowed,
}

/// A redirect [`RedirectPolicy::SameOrigin`] did not follow.
///
/// It is the source of the `reqwest::Error` (whose `is_redirect()` is true) that fails the
/// request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectRefused {
    status: u16,
    from: String,
    to: String,
    reason: RedirectRefusal,
}

impl RedirectRefused {
    /// A `status` answer from `from` pointing to `location` (its `Location` header, relative
    /// or absolute, if any) that was not followed because no redirects are.
    pub fn not_followed(status: u16, from: &Url, location: Option<&str>) -> RedirectRefused {
        let to = match location {
            Some(location) => match from.join(location) {
                Ok(to) => redact_url(&to),
                Err(_) => "an invalid Location".to_owned(),
            },
            None => "nowhere (no Location header)".to_owned(),
        };
        RedirectRefused {
            status,
            from: redact_url(from),
            to,
            reason: RedirectRefusal::NotFollowed,
        }
    }

    /// The redirect's status (`301`, `302`, …).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Why it was refused.
    pub fn reason(&self) -> RedirectRefusal {
        self.reason
    }

    /// Where it pointed (redacted, see [`redact_url`]).
    pub fn to(&self) -> &str {
        &self.to
    }
}

impl fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.reason {
            RedirectRefusal::CrossOrigin => "it leaves the origin",
            RedirectRefusal::TooMany => "too many redirects",
            RedirectRefusal::Loop => "it loops",
            RedirectRefusal::NotFollowed => "redirects are not followed",
        };
        write!(
            f,
            "not following the HTTP {} redirect from {} to {}: {why}",
            self.status, self.from, self.to
        )
    }
}

impl std::error::Error for RedirectRefused {}

/// The [`RedirectRefused`] behind a request error, if a redirect is what failed it.
pub fn redirect_refused<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a RedirectRefused> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(refused) = error.downcast_ref::<RedirectRefused>() {
            return Some(refused);
        }
        current = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn redaction_drops_query_fragment_and_user_info() {
        assert_eq!(
            redact_url(&url(
                "https://user:pw@example.com:8443/a/b?token=secret#frag"
            )),
            "https://example.com:8443/a/b"
        );
    }

    #[test]
    fn url_policy() {
        for ok in [
            "https://example.com",
            "http://localhost:2583",
            "http://LOCALHOST/",
            "http://127.0.0.1:1/",
            "http://127.255.0.9/",
            "http://[::1]:80/",
        ] {
            assert_eq!(check_url(&url(ok), false), Ok(()), "{ok}");
        }
        let refused = check_url(&url("http://example.com/x?code=secret"), false).unwrap_err();
        assert_eq!(refused.reason(), UrlRefusal::PlainHttp);
        assert!(!refused.to_string().contains("secret"), "{refused}");
        assert!(
            refused.to_string().contains("http://example.com/x"),
            "{refused}"
        );
        assert_eq!(check_url(&url("http://example.com"), true), Ok(()));
        for (text, reason) in [
            ("http://128.0.0.1/", UrlRefusal::PlainHttp),
            ("http://localhost.example.com/", UrlRefusal::PlainHttp),
            ("http://[::2]/", UrlRefusal::PlainHttp),
            ("ftp://example.com/", UrlRefusal::Scheme),
            ("file:///etc/passwd", UrlRefusal::NoHost),
            ("mailto:a@b", UrlRefusal::NoHost),
        ] {
            assert_eq!(
                check_url(&url(text), true)
                    .err()
                    .or_else(|| check_url(&url(text), false).err())
                    .map(|e| e.reason()),
                Some(reason),
                "{text}"
            );
        }
    }

    #[test]
    fn origins() {
        assert!(same_origin(
            &url("https://a.com/x"),
            &url("https://a.com:443/y?z")
        ));
        assert!(!same_origin(&url("https://a.com/"), &url("http://a.com/")));
        assert!(!same_origin(
            &url("https://a.com/"),
            &url("https://a.com:444/")
        ));
        assert!(!same_origin(
            &url("https://a.com/"),
            &url("https://b.a.com/")
        ));
    }

    #[test]
    fn refused_redirects_name_both_ends_without_queries() {
        let from = url("https://pds.example/xrpc/a.b.c?token=SECRET");
        let shown =
            RedirectRefused::not_followed(302, &from, Some("/elsewhere?code=SECRET")).to_string();
        assert_eq!(
            shown,
            "not following the HTTP 302 redirect from https://pds.example/xrpc/a.b.c to \
             https://pds.example/elsewhere: redirects are not followed"
        );
        let none = RedirectRefused::not_followed(301, &from, None);
        assert!(none.to_string().contains("no Location header"));
        assert_eq!(none.reason(), RedirectRefusal::NotFollowed);
    }

    #[test]
    fn sums_within_the_limit_never_overflow() {
        assert_eq!(add_within(0, 10, 10), Some(10));
        assert_eq!(add_within(5, 6, 10), None);
        assert_eq!(add_within(u64::MAX, 1, u64::MAX), None);
        assert_eq!(add_within(u64::MAX - 1, 1, u64::MAX), Some(u64::MAX));
    }
}
