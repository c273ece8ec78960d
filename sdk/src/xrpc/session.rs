//! The one interface every kind of authentication implements ([`AuthSession`]), what the
//! transport tells it about requests and responses, its errors, and anonymous access.
//!
//! It lives on the xrpc side so that the transport depends only on this interface: `auth`
//! (password sessions, OAuth, stores) builds on `xrpc`, never the other way.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use atlex_types::Did;
use reqwest::header::HeaderMap;
use url::Url;

use super::secret::Secret;
use super::{BoxError, Error, ErrorBody, GenericError};

/// A boxed future, so that session and store traits can be used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a client authenticates: anonymous, a password session, an OAuth session.
///
/// The transport calls [`before_request`](AuthSession::before_request) for the headers of each
/// request (a session refreshes proactively there), then
/// [`after_response`](AuthSession::after_response) to learn whether the server rejected the
/// credentials; on [`AfterResponse::Refresh`] it calls [`refresh`](AuthSession::refresh) and
/// sends the request once more — once, never in a loop.
///
/// One session object is shared (through an `Arc`) by every [`Client`](super::Client)
/// handle made from it, so a refresh done by one handle is seen by all.
pub trait AuthSession: fmt::Debug + Send + Sync + 'static {
    /// The session's account, if it has one.
    fn did(&self) -> Option<Did>;

    /// The service this session's requests go to (a password session's PDS), overriding the
    /// client's base URL; `None` keeps the client's.
    fn service_url(&self) -> Option<Url>;

    /// The headers for one request. May refresh first, when the access token is about to
    /// expire.
    fn before_request<'a>(
        &'a self,
        request: &'a RequestInfo<'a>,
    ) -> BoxFuture<'a, Result<AuthHeaders, AuthError>>;

    /// Whether `response` (to a request sent with `sent`) means the credentials were rejected.
    /// The default accepts every response (credentials that cannot be refreshed).
    fn after_response(
        &self,
        _request: &RequestInfo<'_>,
        _response: &ResponseInfo<'_>,
        _sent: &AuthHeaders,
    ) -> AfterResponse {
        AfterResponse::Accept
    }

    /// Refreshes the session, single-flight: when `seen` is the headers a request was sent with
    /// and another caller has refreshed since, the newer tokens are adopted instead of
    /// refreshing again. `None` forces a refresh. The default says there is nothing to refresh.
    fn refresh<'a>(
        &'a self,
        _seen: Option<&'a AuthHeaders>,
    ) -> BoxFuture<'a, Result<(), AuthError>> {
        Box::pin(async {
            Err(AuthError::NoSession {
                what: "these credentials cannot be refreshed".to_owned(),
            })
        })
    }

    /// Ends the session at the server and removes it from its store. The default has nothing
    /// to end.
    fn logout(&self) -> BoxFuture<'_, Result<(), Error<GenericError>>> {
        Box::pin(async { Ok(()) })
    }
}

/// What the transport should do after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AfterResponse {
    /// Use the response as it is.
    Accept,
    /// The credentials were rejected: refresh, then send the request once more.
    Refresh,
    /// Send the request once more without refreshing (e.g. a new DPoP nonce was issued).
    Retry,
}

/// What the transport tells the session about a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// The method's NSID.
    pub nsid: &'a str,
    /// `GET` or `POST`.
    pub method: &'a str,
    /// The full URL, with the query string.
    pub url: &'a Url,
}

/// What the transport tells the session about a response.
#[derive(Clone, Copy)]
pub struct ResponseInfo<'a> {
    status: u16,
    headers: &'a HeaderMap,
    body: &'a [u8],
}

impl<'a> ResponseInfo<'a> {
    pub(crate) fn new(status: u16, headers: &'a HeaderMap, body: &'a [u8]) -> ResponseInfo<'a> {
        ResponseInfo {
            status,
            headers,
            body,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// A response header (the first value, when it is text).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The XRPC error body, when the response has one.
    pub fn error_body(&self) -> Option<ErrorBody> {
        if (200..300).contains(&self.status) {
            return None;
        }
        serde_json::from_slice(self.body).ok()
    }

    /// Whether the response says the access token is expired or invalid: a 400 or 401 with the
    /// XRPC error `ExpiredToken` or `InvalidToken`, or a 401 whose `WWW-Authenticate` header
    /// carries `error="invalid_token"`.
    pub fn is_token_rejection(&self) -> bool {
        if self.status == 401
            && self
                .header("www-authenticate")
                .is_some_and(|value| value.contains("error=\"invalid_token\""))
        {
            return true;
        }
        (self.status == 400 || self.status == 401)
            && self
                .error_body()
                .is_some_and(|body| body.error == "ExpiredToken" || body.error == "InvalidToken")
    }
}

impl fmt::Debug for ResponseInfo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseInfo")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The headers a session adds to one request, and which credentials they came from.
///
/// Header values are secrets and never shown by `Debug`.
#[derive(Clone, Default)]
pub struct AuthHeaders {
    headers: Vec<(String, Secret)>,
    basis: Option<Secret>,
}

impl AuthHeaders {
    /// No headers (anonymous).
    pub fn none() -> AuthHeaders {
        AuthHeaders::default()
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: Secret) -> AuthHeaders {
        self.headers.push((name.into(), value));
        self
    }

    /// Records the credential the headers were made from (for a token session, its refresh
    /// token), so that [`AuthSession::refresh`] can tell whether someone refreshed since.
    #[must_use]
    pub fn with_basis(mut self, basis: Secret) -> AuthHeaders {
        self.basis = Some(basis);
        self
    }

    /// The headers.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &Secret)> {
        self.headers
            .iter()
            .map(|(name, value)| (name.as_str(), value))
    }

    /// The credential the headers were made from.
    pub fn basis(&self) -> Option<&Secret> {
        self.basis.as_ref()
    }
}

impl fmt::Debug for AuthHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthHeaders")
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// No authentication: for public services such as the Bluesky AppView.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Anonymous;

impl Anonymous {
    /// An anonymous session, ready to hand to a client.
    pub fn session() -> Arc<dyn AuthSession> {
        Arc::new(Anonymous)
    }
}

impl AuthSession for Anonymous {
    fn did(&self) -> Option<Did> {
        None
    }

    fn service_url(&self) -> Option<Url> {
        None
    }

    fn before_request<'a>(
        &'a self,
        _request: &'a RequestInfo<'a>,
    ) -> BoxFuture<'a, Result<AuthHeaders, AuthError>> {
        Box::pin(async { Ok(AuthHeaders::none()) })
    }
}

/// An authentication failure.
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthError {
    /// There is no session: the user never logged in, logged out, or the client is anonymous.
    NoSession {
        /// Which session was looked for.
        what: String,
    },
    /// The server rejected the session for good (the refresh token expired or was revoked);
    /// the stored session was removed and the user must log in again.
    SessionExpired {
        /// What the server or the store said.
        reason: String,
    },
    /// A refresh failed without ending the session: the stored session is kept.
    RefreshFailed {
        /// Whether trying again later may succeed (network error, timeout, 5xx).
        transient: bool,
        /// What went wrong.
        reason: String,
        /// The cause, if any.
        source: Option<BoxError>,
    },
    /// The stored session could not be read back (corrupt or from an incompatible version).
    InvalidSession {
        /// What is wrong with it.
        reason: String,
    },
    /// The session store failed; after a refresh, the new tokens were not used because they
    /// could not be persisted.
    Store(StoreError),
}

impl AuthError {
    /// Whether trying again later may succeed (a network error, a 5xx, a store that is
    /// unreachable or whose lock could not be taken in time).
    pub fn is_transient(&self) -> bool {
        match self {
            AuthError::RefreshFailed { transient, .. } => *transient,
            AuthError::Store(error) => error.is_transient(),
            AuthError::NoSession { .. }
            | AuthError::SessionExpired { .. }
            | AuthError::InvalidSession { .. } => false,
        }
    }

    /// Whether the user has to log in (again) before the next call can succeed.
    pub fn requires_login(&self) -> bool {
        match self {
            AuthError::NoSession { .. }
            | AuthError::SessionExpired { .. }
            | AuthError::InvalidSession { .. } => true,
            AuthError::RefreshFailed { .. } | AuthError::Store(_) => false,
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::NoSession { what } => write!(f, "no session: {what}"),
            AuthError::SessionExpired { reason } => {
                write!(f, "session expired, log in again: {reason}")
            }
            AuthError::RefreshFailed {
                transient, reason, ..
            } => {
                let kind = if *transient { "transient" } else { "permanent" };
                write!(f, "session refresh failed ({kind}): {reason}")
            }
            AuthError::InvalidSession { reason } => {
                write!(f, "stored session is unreadable: {reason}")
            }
            AuthError::Store(error) => write!(f, "session store error: {error}"),
        }
    }
}

impl std::error::Error for AuthError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuthError::RefreshFailed { source, .. } => source
                .as_deref()
                .map(|error| error as &(dyn std::error::Error + 'static)),
            AuthError::Store(error) => Some(error),
            AuthError::NoSession { .. }
            | AuthError::SessionExpired { .. }
            | AuthError::InvalidSession { .. } => None,
        }
    }
}

/// What kind of store failure a [`StoreError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store could not be reached or was busy (connection refused or lost, a database
    /// locked for too long): transient, the stored data is untouched.
    Unavailable,
    /// The lock was not acquired within the time allowed: transient.
    LockTimeout,
    /// The lock's lease was lost (the holder stalled past it and another holder may have taken
    /// the lock): the write was refused. Transient: a new attempt re-reads the store.
    LeaseLost,
    /// A stored value could not be read back (corrupt, from another version, or encrypted
    /// with a key that is not available). The value is kept as it is.
    Corrupt,
    /// Anything else (I/O error, misuse, a store that cannot work).
    Other,
}

/// A store failure (I/O, database, network, corrupt data). Never contains session contents.
#[derive(Debug)]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
    source: Option<BoxError>,
}

impl StoreError {
    /// An error of `store` (e.g. `file store /path`) in operation `op` on `key`, with what
    /// went wrong and the underlying error. The cause must not contain session contents.
    pub fn during(
        store: &str,
        op: &str,
        key: &str,
        what: &str,
        source: Option<BoxError>,
    ) -> StoreError {
        StoreError::new(format!("{store}: {op} {key:?}: {what}"), source)
    }

    /// An error of kind [`StoreErrorKind::Other`] with a message and an optional cause.
    pub fn new(message: impl Into<String>, source: Option<BoxError>) -> StoreError {
        StoreError {
            kind: StoreErrorKind::Other,
            message: message.into(),
            source,
        }
    }

    /// The same error with another kind.
    #[must_use]
    pub fn with_kind(mut self, kind: StoreErrorKind) -> StoreError {
        self.kind = kind;
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// Whether trying again later may succeed: [`StoreErrorKind::Unavailable`],
    /// [`StoreErrorKind::LockTimeout`] and [`StoreErrorKind::LeaseLost`].
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            StoreErrorKind::Unavailable | StoreErrorKind::LockTimeout | StoreErrorKind::LeaseLost
        )
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
