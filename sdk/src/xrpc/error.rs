//! Typed XRPC errors.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The body of a non-2xx XRPC response: `{"error": "...", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error name (e.g. `RecordNotFound`).
    pub error: String,
    /// A human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(message) => write!(f, "{}: {message}", self.error),
            None => f.write_str(&self.error),
        }
    }
}

/// A method's typed error enum (generated from the lexicon's `errors`).
///
/// Every generated enum is `#[non_exhaustive]` and has an `Other` variant holding the
/// [`ErrorBody`] of names this version does not know, so a server adding an error never breaks
/// decoding.
pub trait XrpcErrorKind: fmt::Debug + fmt::Display + Send + Sync + 'static {
    /// Maps a response's error body to the typed error.
    fn from_body(body: ErrorBody) -> Self;
    /// The error name as sent by the server.
    fn code(&self) -> &str;
    /// The server's message, if any.
    fn message(&self) -> Option<&str>;
}

/// The error type of methods whose lexicon declares no `errors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenericError(pub ErrorBody);

impl fmt::Display for GenericError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for GenericError {}

impl XrpcErrorKind for GenericError {
    fn from_body(body: ErrorBody) -> Self {
        GenericError(body)
    }
    fn code(&self) -> &str {
        &self.0.error
    }
    fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }
}
