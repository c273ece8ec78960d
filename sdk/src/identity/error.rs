//! Identity errors.

use std::fmt;

use crate::net::fetch::FetchError;

use super::document::DocumentError;

/// A handle-resolution method, as named in errors and traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodKind {
    /// DNS TXT `_atproto.<handle>`.
    Dns,
    /// HTTPS `https://<handle>/.well-known/atproto-did`.
    WellKnown,
    /// XRPC `com.atproto.identity.resolveHandle` at a service.
    Xrpc,
}

impl fmt::Display for MethodKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MethodKind::Dns => "DNS TXT",
            MethodKind::WellKnown => "HTTPS well-known",
            MethodKind::Xrpc => "XRPC resolveHandle",
        })
    }
}

/// Why an identity could not be resolved. Every variant names the handle, DID or URL
/// concerned; none holds a response body.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Not a valid handle or DID.
    #[error("`{input}` is not a valid handle or DID: {reason}")]
    InvalidIdentifier {
        /// The input (shortened).
        input: String,
        /// Why.
        reason: String,
    },
    /// No method found a DID for the handle.
    #[error("no DID found for the handle {handle} ({detail})")]
    HandleNotFound {
        /// The handle.
        handle: String,
        /// What each method said.
        detail: String,
        /// Whether a method failed in a way that may pass (then the answer may exist).
        transient: bool,
    },
    /// Two methods found different DIDs.
    #[error(
        "the handle {handle} resolves to {first} by {first_method} but to {second} by {second_method}"
    )]
    Conflict {
        /// The handle.
        handle: String,
        /// The first answer.
        first: String,
        /// Its method.
        first_method: MethodKind,
        /// The other answer.
        second: String,
        /// Its method.
        second_method: MethodKind,
    },
    /// DNS returned more than one `did=` TXT record.
    #[error(
        "the handle {handle} has {count} `did=` TXT records at _atproto.{handle}; exactly one is allowed"
    )]
    MultipleDids {
        /// The handle.
        handle: String,
        /// How many.
        count: usize,
    },
    /// A method answered with something that is not a valid DID.
    #[error("{method} for the handle {handle} answered with an invalid DID: {reason}")]
    InvalidDid {
        /// The handle.
        handle: String,
        /// The method.
        method: MethodKind,
        /// Why it is invalid.
        reason: String,
    },
    /// A method failed in a way that may pass (timeout, network error, 5xx).
    #[error("{method} for the handle {handle} failed: {reason}")]
    MethodFailed {
        /// The handle.
        handle: String,
        /// The method.
        method: MethodKind,
        /// Why.
        reason: String,
        /// Whether trying again later may succeed.
        transient: bool,
    },
    /// A DID method other than did:plc and did:web.
    #[error("unsupported DID method `{method}` ({did}); atproto uses did:plc and did:web")]
    UnsupportedMethod {
        /// The DID.
        did: String,
        /// Its method.
        method: String,
    },
    /// A did:plc or did:web that atproto does not allow (e.g. did:web with a path).
    #[error("invalid {did}: {reason}")]
    InvalidDidSyntax {
        /// The DID.
        did: String,
        /// Why.
        reason: String,
    },
    /// The DID's directory or host has no document for it.
    #[error("no DID document for {did} at {url} (HTTP {status})")]
    DidNotFound {
        /// The DID.
        did: String,
        /// Where it was looked up (redacted).
        url: String,
        /// The status.
        status: u16,
    },
    /// Fetching a document or answer failed.
    #[error("resolving {subject}: {error}")]
    Fetch {
        /// The DID or handle.
        subject: String,
        /// The failure (URL and reason).
        error: FetchError,
    },
    /// The document is not JSON or not a DID document.
    #[error("the DID document of {did} from {url} is malformed: {reason}")]
    BadDocument {
        /// The DID.
        did: String,
        /// Where it came from (redacted).
        url: String,
        /// Why (position and kind, never content).
        reason: String,
    },
    /// The document is for another DID.
    #[error("the DID document from {url} is for {found}, not {expected}")]
    WrongDocument {
        /// The DID asked for.
        expected: String,
        /// The `id` in the document.
        found: String,
        /// Where it came from (redacted).
        url: String,
    },
    /// The document lacks what atproto needs (PDS), or has it malformed.
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// The PDS URL is not acceptable under the transport policy (e.g. `http` without
    /// `allow_http`).
    #[error("the PDS of {did} is not usable: {reason}")]
    PdsRefused {
        /// The DID.
        did: String,
        /// Why.
        reason: String,
    },
    /// No usable DID authority for a lexicon NSID (DNS TXT `_lexicon.<authority>`).
    #[error("no lexicon authority for {nsid} at {name}: {reason}")]
    LexiconAuthority {
        /// The NSID.
        nsid: String,
        /// The DNS name asked (`_lexicon.<reversed authority>`).
        name: String,
        /// Why.
        reason: String,
        /// Whether trying again later may succeed (timeout, server failure).
        transient: bool,
    },
    /// The resolver could not be built.
    #[error("cannot build the identity resolver: {0}")]
    Build(String),
}

impl IdentityError {
    /// Whether trying again later may succeed (nothing about the identity was learned).
    pub fn is_transient(&self) -> bool {
        match self {
            IdentityError::MethodFailed { transient, .. } => *transient,
            IdentityError::Fetch { error, .. } => error.is_transient(),
            IdentityError::HandleNotFound { transient, .. } => *transient,
            IdentityError::LexiconAuthority { transient, .. } => *transient,
            _ => false,
        }
    }
}

/// Shortens untrusted text for an error message.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
