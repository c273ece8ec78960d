//! OAuth errors. None of them ever holds a token, key, code, verifier or state value.

use std::fmt;

use crate::identity::IdentityError;
use crate::xrpc::{AuthError, BoxError, Error, StoreError, XrpcErrorKind};

/// A failure of the OAuth flow or of an OAuth session operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthError {
    /// The client's own metadata breaks a rule (checklist §4).
    #[error("invalid client metadata: {reason}")]
    InvalidClientMetadata {
        /// Which rule.
        reason: String,
    },
    /// The client keyset is unusable.
    #[error("invalid keyset: {reason}")]
    InvalidKeyset {
        /// Why.
        reason: String,
    },
    /// The sign-in input is neither a handle, a DID nor an http(s) URL.
    #[error("invalid sign-in input: {reason}")]
    InvalidInput {
        /// Why.
        reason: String,
    },
    /// The app's request is not allowed (a redirect URI that is not registered, a scope that
    /// is not declared).
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// Why.
        reason: String,
    },
    /// Resolving the account failed (handle, DID document, PDS).
    #[error("cannot resolve the account: {0}")]
    Identity(#[from] IdentityError),
    /// The handle's DID document does not name that handle back.
    #[error("the handle {handle} is not confirmed by the DID document of {did}")]
    HandleNotVerified {
        /// The handle.
        handle: String,
        /// The DID it resolved to.
        did: String,
    },
    /// A metadata document (protected resource, authorization server) or an endpoint URL is
    /// unusable.
    #[error("OAuth metadata at {url}: {reason}")]
    Metadata {
        /// The (redacted) URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The issuer the server names is not the one expected (mix-up defence): the metadata
    /// `issuer`, the callback's `iss`, or the issuer re-resolved from the account's DID.
    #[error("issuer mismatch: expected {expected}, found {found}")]
    IssuerMismatch {
        /// The expected issuer.
        expected: String,
        /// What was found.
        found: String,
    },
    /// The token response names another account than expected.
    #[error("the token response is for {found}, expected {expected}")]
    SubjectMismatch {
        /// The expected DID.
        expected: String,
        /// The DID in the response.
        found: String,
    },
    /// The token response breaks the atproto profile (token type, `sub`, scope, `id_token`).
    #[error("invalid token response from {endpoint}: {reason}")]
    InvalidTokenResponse {
        /// The token endpoint.
        endpoint: String,
        /// What is wrong.
        reason: String,
    },
    /// No usable client auth method could be agreed with the authorization server, or the
    /// session's key is no longer in the keyset.
    #[error("client authentication impossible: {reason}")]
    AuthMethodUnsatisfiable {
        /// Why.
        reason: String,
    },
    /// The callback's parameters are unusable (no state, unknown or reused state, a JARM
    /// `response`, no `code`, a missing `iss`).
    #[error("invalid callback: {reason}")]
    InvalidCallback {
        /// Why.
        reason: String,
    },
    /// The authorization server (or the user) refused the authorization: the callback
    /// carried `error` (`access_denied` when the user rejected consent). `app_state` is the
    /// state the app passed to [`authorize`](super::OAuthClient::authorize).
    #[error("authorization refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    AuthorizationDenied {
        /// The OAuth error code.
        error: String,
        /// The server's description.
        description: Option<String>,
        /// The app's state from the authorization request.
        app_state: Option<String>,
    },
    /// An OAuth endpoint answered with an error.
    #[error("{endpoint} answered {status}: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Server {
        /// The endpoint (redacted URL).
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// The OAuth error code (or `unknown`).
        error: String,
        /// The description.
        description: Option<String>,
    },
    /// The network failed or timed out (transient).
    #[error("cannot reach {url}: {reason}")]
    Transport {
        /// The (redacted) URL.
        url: String,
        /// What happened.
        reason: String,
        /// The cause.
        #[source]
        source: Option<BoxError>,
    },
    /// No session is stored for the account (it never authorized, signed out, or was
    /// revoked).
    #[error("no OAuth session: {what}")]
    NoSession {
        /// Which session.
        what: String,
    },
    /// A session operation failed (refresh, store).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The session store failed.
    #[error("session store: {0}")]
    Store(#[from] StoreError),
    /// Key generation or signing failed.
    #[error("crypto: {0}")]
    Crypto(String),
}

impl OAuthError {
    /// Whether trying again later may succeed (network, timeout, 5xx, store unavailable).
    pub fn is_transient(&self) -> bool {
        match self {
            OAuthError::Transport { .. } => true,
            OAuthError::Server { status, .. } => *status >= 500 || *status == 429,
            OAuthError::Identity(error) => error.is_transient(),
            OAuthError::Auth(error) => error.is_transient(),
            OAuthError::Store(error) => error.is_transient(),
            _ => false,
        }
    }

    /// The app state carried by an [`OAuthError::AuthorizationDenied`].
    pub fn app_state(&self) -> Option<&str> {
        match self {
            OAuthError::AuthorizationDenied { app_state, .. } => app_state.as_deref(),
            _ => None,
        }
    }
}

impl From<OAuthError> for Error {
    fn from(error: OAuthError) -> Error {
        match error {
            OAuthError::Auth(auth) => Error::Auth(auth),
            other => Error::Auth(AuthError::RefreshFailed {
                transient: other.is_transient(),
                reason: other.to_string(),
                source: Some(Box::new(other)),
            }),
        }
    }
}

/// Why a session was deleted (in [`SessionEvent::Deleted`](super::SessionEvent::Deleted)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeleteCause {
    /// The app signed out (or revoked) the session.
    SignedOut,
    /// The authorization server rejected the refresh (expired, revoked, replayed), or the
    /// account's issuer changed.
    RefreshRejected(String),
    /// The resource server still rejected the access token after a refresh.
    InvalidToken,
    /// A refresh found the client key the session was bound to (`private_key_jwt`) gone
    /// from the keyset: the authorization server accepts no other key for the session, so it
    /// was deleted without asking the server.
    ClientKeyRemoved {
        /// The key id the session was bound to.
        kid: String,
    },
    /// A new authorization for the same account and session id replaced it.
    Replaced,
    /// Another process deleted it.
    Gone,
}

impl fmt::Display for DeleteCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeleteCause::SignedOut => f.write_str("signed out"),
            DeleteCause::RefreshRejected(reason) => write!(f, "refresh rejected: {reason}"),
            DeleteCause::InvalidToken => f.write_str("the access token was rejected"),
            DeleteCause::ClientKeyRemoved { kid } => {
                write!(f, "the client key {kid:?} is no longer in the keyset")
            }
            DeleteCause::Replaced => f.write_str("replaced by a new authorization"),
            DeleteCause::Gone => f.write_str("deleted elsewhere"),
        }
    }
}

/// If `error` is the PDS's `403 ScopeMissingError` (the session lacks a permission: not a
/// reason to refresh or sign out), the server's message.
pub fn scope_missing<E: XrpcErrorKind>(error: &Error<E>) -> Option<String> {
    match error {
        Error::Xrpc { status: 403, error } if error.code() == "ScopeMissingError" => {
            Some(error.to_string())
        }
        _ => None,
    }
}
