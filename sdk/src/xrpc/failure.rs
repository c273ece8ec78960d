//! The error of an XRPC call: one type, generic over the method's typed error.

use std::fmt;
use std::time::{Duration, SystemTime};

use atlex_types::ValidationErrors;

use super::body::BodyError;
use super::error::{ErrorBody, GenericError, XrpcErrorKind};
use super::session::AuthError;

/// A boxed error cause, as kept by [`TransportError`] and [`AuthError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why an XRPC call failed.
///
/// `E` is the method's typed error enum (generated from the lexicon's `errors`, see
/// [`XrpcErrorKind`]); the untyped calls use [`GenericError`]. Each failure has its own variant:
/// the request was invalid and never sent ([`Error::InvalidRequest`], [`Error::Validation`],
/// [`Error::Encode`]), it could not be delivered ([`Error::Transport`]), authentication failed
/// ([`Error::Auth`]), the server refused it ([`Error::RateLimited`], [`Error::Xrpc`],
/// [`Error::Status`]) or its answer could not be read ([`Error::Decode`]).
///
/// Neither `Display` nor `Debug` ever shows a token or a response body.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error<E = GenericError> {
    /// The request could not be built (an invalid NSID, header value or parameter); nothing was
    /// sent.
    InvalidRequest(String),
    /// The parameters or the input broke the lexicon's constraints; nothing was sent.
    Validation {
        /// Which part of the request is invalid.
        part: RequestPart,
        /// Every violation, with its path.
        errors: ValidationErrors,
    },
    /// The input could not be encoded; nothing was sent.
    Encode(BodyError),
    /// The request could not be delivered or its response not received (network, timeout).
    Transport(TransportError),
    /// Authentication failed: no session, or its refresh failed.
    Auth(AuthError),
    /// The server answered `429 Too Many Requests` and the wait it asked for was longer than
    /// the client accepts (or the retries were used up).
    RateLimited(Box<RateLimit>),
    /// The server answered with an XRPC error body (`{"error": …, "message": …}`).
    Xrpc {
        /// The HTTP status.
        status: u16,
        /// The typed error (unknown names are kept by the generated enum).
        error: E,
    },
    /// The server answered with an error status and a body that is not an XRPC error (an HTML
    /// page from a proxy, an empty body).
    Status(RawResponse),
    /// A successful response whose body could not be decoded as the method's output; the body
    /// is kept.
    Decode(DecodeError),
}

/// The part of a request that failed validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestPart {
    /// The query-string parameters.
    Params,
    /// The request body.
    Input,
}

impl fmt::Display for RequestPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestPart::Params => "parameters",
            RequestPart::Input => "input",
        })
    }
}

impl<E> Error<E> {
    /// The HTTP status of the response behind the error, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Xrpc { status, .. } => Some(*status),
            Error::Status(response) => Some(response.status),
            Error::Decode(error) => Some(error.response.status),
            Error::RateLimited(_) => Some(429),
            Error::InvalidRequest(_)
            | Error::Validation { .. }
            | Error::Encode(_)
            | Error::Transport(_)
            | Error::Auth(_) => None,
        }
    }

    /// The typed XRPC error, when the server sent one.
    pub fn xrpc(&self) -> Option<&E> {
        match self {
            Error::Xrpc { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Whether trying the same call again later may succeed: transport failures, 5xx answers,
    /// rate limiting and transient refresh failures.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport(error) => error.is_transient(),
            Error::RateLimited(_) => true,
            Error::Auth(error) => error.is_transient(),
            Error::Xrpc { status, .. } => *status >= 500,
            Error::Status(response) => response.status >= 500,
            Error::InvalidRequest(_)
            | Error::Validation { .. }
            | Error::Encode(_)
            | Error::Decode(_) => false,
        }
    }

    /// Converts the typed XRPC error, keeping every other variant.
    pub fn map_xrpc<F>(self, map: impl FnOnce(E) -> F) -> Error<F> {
        match self {
            Error::InvalidRequest(message) => Error::InvalidRequest(message),
            Error::Validation { part, errors } => Error::Validation { part, errors },
            Error::Encode(error) => Error::Encode(error),
            Error::Transport(error) => Error::Transport(error),
            Error::Auth(error) => Error::Auth(error),
            Error::RateLimited(limit) => Error::RateLimited(limit),
            Error::Xrpc { status, error } => Error::Xrpc {
                status,
                error: map(error),
            },
            Error::Status(response) => Error::Status(response),
            Error::Decode(error) => Error::Decode(error),
        }
    }
}

impl<E: XrpcErrorKind> Error<E> {
    /// The XRPC error name (`RecordNotFound`, `ExpiredToken`, …), when the server sent one.
    pub fn code(&self) -> Option<&str> {
        self.xrpc().map(XrpcErrorKind::code)
    }

    /// Forgets the typed error, keeping its name and message.
    pub fn into_generic(self) -> Error<GenericError> {
        self.map_xrpc(|error| {
            GenericError(ErrorBody {
                error: error.code().to_owned(),
                message: error.message().map(str::to_owned),
            })
        })
    }
}

impl<E> From<AuthError> for Error<E> {
    fn from(error: AuthError) -> Self {
        Error::Auth(error)
    }
}

impl<E> From<TransportError> for Error<E> {
    fn from(error: TransportError) -> Self {
        Error::Transport(error)
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidRequest(message) => write!(f, "invalid request: {message}"),
            Error::Validation { part, errors } => write!(f, "invalid {part}: {errors}"),
            Error::Encode(error) => write!(f, "cannot encode the request body: {error}"),
            Error::Transport(error) => error.fmt(f),
            Error::Auth(error) => error.fmt(f),
            Error::RateLimited(limit) => limit.fmt(f),
            Error::Xrpc { status, error } => write!(f, "XRPC error (HTTP {status}): {error}"),
            Error::Status(response) => write!(f, "unexpected response: {response}"),
            Error::Decode(error) => error.fmt(f),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::InvalidRequest(_) => None,
            Error::Validation { errors, .. } => Some(errors),
            Error::Encode(error) => Some(error),
            Error::Transport(error) => error.source(),
            Error::Auth(error) => error.source(),
            Error::RateLimited(_) => None,
            Error::Xrpc { .. } => None,
            Error::Status(_) => None,
            Error::Decode(_) => None,
        }
    }
}

/// What kind of transport failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The connection could not be made (DNS, refused, TLS).
    Connect,
    /// The call's timeout elapsed.
    Timeout,
    /// The request could not be sent or the response not read.
    Network,
    /// The response body was larger than the call's limit (see
    /// [`ClientBuilder::max_response_size`](super::ClientBuilder::max_response_size)); it was
    /// not read further. The source is a [`crate::net::ReadError`].
    TooLarge,
    /// The server answered with a redirect that was not followed (by default none is; see
    /// [`ClientBuilder::redirects`](super::ClientBuilder::redirects)). The source is a
    /// [`crate::net::RedirectRefused`].
    Redirect,
}

/// A request that could not be delivered, or whose response could not be received.
///
/// The cause (an HTTP client error) is kept boxed behind [`std::error::Error::source`].
#[derive(Debug)]
pub struct TransportError {
    kind: TransportErrorKind,
    nsid: String,
    source: BoxError,
}

impl TransportError {
    /// A transport error of `kind` while calling `nsid`, caused by `source`.
    pub fn new(
        kind: TransportErrorKind,
        nsid: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> TransportError {
        TransportError {
            kind,
            nsid: nsid.into(),
            source: source.into(),
        }
    }

    /// What happened.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// Whether the call timed out.
    pub fn is_timeout(&self) -> bool {
        self.kind == TransportErrorKind::Timeout
    }

    /// Whether trying again may succeed (connection failures, timeouts, network errors; not a
    /// body over the limit or a refused redirect).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            TransportErrorKind::Connect | TransportErrorKind::Timeout | TransportErrorKind::Network
        )
    }

    /// The method that was being called.
    pub fn nsid(&self) -> &str {
        &self.nsid
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            TransportErrorKind::Connect => "could not connect",
            TransportErrorKind::Timeout => "timed out",
            TransportErrorKind::Network => "network error",
            // These causes are written by atlex (no query strings, no bodies): say what they
            // are, so the error explains itself.
            TransportErrorKind::TooLarge | TransportErrorKind::Redirect => {
                return write!(f, "calling {}: {}", self.nsid, self.source);
            }
        };
        write!(f, "{what} calling {}", self.nsid)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// A response as received: status, content type and body bytes.
///
/// Kept by [`Error::Status`] and [`Error::Decode`] so nothing the server said is lost. Its
/// `Debug` shows the body's length, not its bytes.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RawResponse {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// A response of `status` with a content type and body.
    pub fn new(status: u16, content_type: Option<String>, body: Vec<u8>) -> RawResponse {
        RawResponse {
            status,
            content_type,
            body,
        }
    }

    /// The body as text, when it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }
}

impl fmt::Debug for RawResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawResponse")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl fmt::Display for RawResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HTTP {} ({}, {} bytes)",
            self.status,
            self.content_type.as_deref().unwrap_or("no content type"),
            self.body.len()
        )
    }
}

/// A response body that could not be decoded as the method's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    response: RawResponse,
    message: String,
}

impl DecodeError {
    /// A decode failure of `response`, with what went wrong.
    pub fn new(response: RawResponse, message: impl Into<String>) -> DecodeError {
        DecodeError {
            response,
            message: message.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.response.status
    }

    /// The `Content-Type` header, if any.
    pub fn content_type(&self) -> Option<&str> {
        self.response.content_type.as_deref()
    }

    /// The body bytes as received.
    pub fn body(&self) -> &[u8] {
        &self.response.body
    }

    /// The whole response.
    pub fn response(&self) -> &RawResponse {
        &self.response
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot decode the response ({}): {}",
            self.response, self.message
        )
    }
}

impl std::error::Error for DecodeError {}

/// A `429 Too Many Requests` answer and what its headers said.
///
/// The PDS sends `ratelimit-limit`, `ratelimit-remaining`, `ratelimit-reset` (Unix seconds) and
/// `ratelimit-policy`; other servers send `Retry-After` (seconds or an HTTP date).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimit {
    /// `ratelimit-limit`: requests allowed in the window.
    pub limit: Option<u64>,
    /// `ratelimit-remaining`: requests left in the window.
    pub remaining: Option<u64>,
    /// `ratelimit-reset`: when the window resets.
    pub reset: Option<SystemTime>,
    /// `Retry-After`, as a delay from when the answer was received.
    pub retry_after: Option<Duration>,
    /// `ratelimit-policy`, e.g. `3000;w=300`.
    pub policy: Option<String>,
    /// The XRPC error body, if the server sent one (usually `RateLimitExceeded`).
    pub body: Option<ErrorBody>,
}

impl RateLimit {
    /// How long to wait from `now` before trying again, when the headers say.
    pub fn wait(&self, now: SystemTime) -> Option<Duration> {
        match (self.retry_after, self.reset) {
            (Some(delay), _) => Some(delay),
            (None, Some(reset)) => Some(reset.duration_since(now).unwrap_or(Duration::ZERO)),
            (None, None) => None,
        }
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("rate limited (HTTP 429)")?;
        if let Some(wait) = self.wait(SystemTime::now()) {
            write!(f, "; retry in {}s", wait.as_secs())?;
        }
        if let Some(policy) = &self.policy {
            write!(f, "; policy {policy}")?;
        }
        if let Some(body) = &self.body {
            write!(f, ": {body}")?;
        }
        Ok(())
    }
}
