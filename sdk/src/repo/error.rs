//! [`RepoError`]: everything that can be wrong with repository data (CAR files, MST nodes,
//! commits, `#commit` events). Each variant names what was wrong and where.

use std::fmt;

use atlex_types::CidLink;
use atlex_types::crypto::SignatureError;

/// Repository data that could not be read or did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RepoError {
    /// The CAR file ended in the middle of `what`.
    Truncated {
        /// What was being read (`header length`, `block 3`, …).
        what: String,
    },
    /// A size or count is over its limit (a varint, a header, a block, the number of blocks).
    TooLarge {
        /// What was over the limit.
        what: String,
        /// Its size (or count), as far as it was read.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The CAR header is not a valid CAR v1 header.
    BadHeader(String),
    /// A block's CID cannot be read, is not CIDv1, or names a hash other than SHA-256.
    BadCid {
        /// Which block.
        block: usize,
        /// Why.
        reason: String,
    },
    /// A block's SHA-256 does not match the digest in its CID.
    HashMismatch {
        /// The CID the block claims.
        cid: CidLink,
    },
    /// A root named in the CAR header is not among its blocks, or is not the one expected.
    LyingRoots(String),
    /// A block needed to read or prove something is not in the CAR.
    MissingBlock {
        /// The CID of the block.
        cid: CidLink,
        /// What it was needed for.
        needed_for: String,
    },
    /// A block is not valid DAG-CBOR, or not the structure expected of it.
    BadBlock {
        /// The CID of the block.
        cid: CidLink,
        /// What it should have been and why it is not.
        reason: String,
    },
    /// The MST is not well-formed (keys out of order, wrong heights, bad prefixes, …).
    InvalidMst(String),
    /// The commit object is not valid (wrong version, DID or rev mismatch, …).
    InvalidCommit(String),
    /// The commit's signature does not verify with the account's key.
    Signature(SignatureError),
    /// An operation of a `#commit` event is not proven by the MST it carries.
    UnprovenOp {
        /// The operation's path (`collection/rkey`).
        path: String,
        /// What does not hold.
        reason: String,
    },
    /// The event is `tooBig`: its blocks are incomplete; fetch the repository instead.
    TooBig,
}

impl RepoError {
    pub(crate) fn truncated(what: impl Into<String>) -> RepoError {
        RepoError::Truncated { what: what.into() }
    }

    pub(crate) fn too_large(what: impl Into<String>, size: u64, limit: u64) -> RepoError {
        RepoError::TooLarge {
            what: what.into(),
            size,
            limit,
        }
    }

    pub(crate) fn bad_block(cid: &CidLink, reason: impl Into<String>) -> RepoError {
        RepoError::BadBlock {
            cid: cid.clone(),
            reason: reason.into(),
        }
    }

    pub(crate) fn missing(cid: &CidLink, needed_for: impl Into<String>) -> RepoError {
        RepoError::MissingBlock {
            cid: cid.clone(),
            needed_for: needed_for.into(),
        }
    }

    pub(crate) fn unproven(path: &str, reason: impl Into<String>) -> RepoError {
        RepoError::UnprovenOp {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for RepoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RepoError::Truncated { what } => write!(f, "CAR truncated while reading {what}"),
            RepoError::TooLarge { what, size, limit } => {
                write!(f, "{what} is too large: {size} over the limit of {limit}")
            }
            RepoError::BadHeader(reason) => write!(f, "invalid CAR header: {reason}"),
            RepoError::BadCid { block, reason } => {
                write!(f, "invalid CID of CAR block {block}: {reason}")
            }
            RepoError::HashMismatch { cid } => {
                write!(f, "block {cid}: its SHA-256 does not match its CID")
            }
            RepoError::LyingRoots(reason) => write!(f, "CAR roots do not hold: {reason}"),
            RepoError::MissingBlock { cid, needed_for } => {
                write!(f, "block {cid} (needed for {needed_for}) is not in the CAR")
            }
            RepoError::BadBlock { cid, reason } => write!(f, "invalid block {cid}: {reason}"),
            RepoError::InvalidMst(reason) => write!(f, "invalid MST: {reason}"),
            RepoError::InvalidCommit(reason) => write!(f, "invalid commit: {reason}"),
            RepoError::Signature(error) => write!(f, "commit signature: {error}"),
            RepoError::UnprovenOp { path, reason } => {
                write!(f, "operation on {path} is not proven by the MST: {reason}")
            }
            RepoError::TooBig => f.write_str(
                "the event is tooBig: its blocks are incomplete (fetch the repository instead)",
            ),
        }
    }
}

impl std::error::Error for RepoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RepoError::Signature(error) => Some(error),
            _ => None,
        }
    }
}
