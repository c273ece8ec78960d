//! `cargo xtask lexicons fetch` and `cargo xtask lexicons verify DIR`: lexicons published on
//! the network, fetched, verified and pinned.
//!
//! # Resolution (the atproto Lexicon publication rules)
//!
//! For an NSID such as `com.example.feed.post`:
//!
//! 1. The authority is the NSID without its name (`com.example.feed`), reversed into a domain
//!    (`feed.example.com`); its DNS TXT record `_lexicon.feed.example.com` holds exactly one
//!    `did=<did>` ([`atlex::identity::IdentityResolver::resolve_lexicon_authority`]). The
//!    lookup is not hierarchical: parent domains are never tried.
//! 2. The DID is resolved to its document (did:plc through the PLC directory, did:web over
//!    HTTPS) and the document's `#atproto_pds` service gives the PDS.
//! 3. The PDS serves the record `at://<did>/com.atproto.lexicon.schema/<nsid>` through
//!    `com.atproto.repo.getRecord`. A pattern `PREFIX.*` lists the collection
//!    (`com.atproto.repo.listRecords`) of the authority `PREFIX` and takes every record whose
//!    NSID is `PREFIX.<name>`.
//! 4. Refs to other NSIDs are followed (breadth first, at most [`FetchOptions::max_depth`]
//!    hops and [`FetchOptions::max_docs`] documents), except NSIDs already known locally
//!    (the official lexicons, which `cargo xtask codegen` resolves refs against).
//!
//! # Verification
//!
//! Every answer is hostile: bodies are read through [`atlex::net::fetch::Fetcher`] with a size
//! limit and a timeout, and each record must have the URI asked for (the authority's DID, the
//! collection and the NSID as record key), a `cid` equal to the CID of the record value's
//! DAG-CBOR encoding (computed here), `$type` `com.atproto.lexicon.schema`, `lexicon` 1, an
//! `id` equal to the NSID, and it must load as a lexicon document without errors
//! ([`atlex_lexicon::parse_bytes`] and [`atlex_lexicon::check_document`]).
//!
//! Then the record is **proven** ([`proof`]): `com.atproto.sync.getRecord` gives a CAR with
//! the repository's signed commit, the MST nodes on the path to the record and the record
//! block; the commit must be by the authority's DID and its signature must verify with the
//! signing key (`#atproto`) of the authority's DID document, and the commit's MST must hold
//! exactly that `cid` at `com.atproto.lexicon.schema/<nsid>`. So the file written is the
//! record the authority signed, not merely what its PDS said. The commit's `rev` is pinned.
//! A record whose CID is not the one already pinned in the folder's manifest is reported
//! (`--locked`: refused).
//!
//! Any failure fails the whole run and nothing is written; all failures are listed, each
//! naming the NSID and the URL or field.
//!
//! # Output
//!
//! Documents are written as `DIR/<nsid segments>.json` (`com/example/feed/post.json`), which is
//! the layout `cargo xtask codegen --lexicons DIR` reads, and pinned in `DIR/`[`MANIFEST`]
//! (see [`manifest`]): NSID, DID, record URI, record CID, the sha256 of the file and the
//! revision of the commit that proved it.
//! [`verify::verify`] checks the folder against it later, offline.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod cli;
pub mod fetch;
pub mod manifest;
pub mod proof;
pub mod record;
pub mod verify;

pub use fetch::{FetchOptions, Target, fetch};
pub use manifest::{MANIFEST, Manifest, Pin};

use std::fmt;

/// The collection lexicons are published in.
pub const SCHEMA_COLLECTION: &str = "com.atproto.lexicon.schema";

/// A failure of `fetch` or `verify`: every problem found, one line each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The problems, each naming its NSID, file, URL or field.
    pub problems: Vec<String>,
}

impl Error {
    /// One problem.
    pub fn new(problem: impl Into<String>) -> Error {
        Error {
            problems: vec![problem.into()],
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [one] => f.write_str(one),
            many => {
                write!(f, "{} problems:", many.len())?;
                for problem in many {
                    write!(f, "\n  {problem}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {}

/// The path of an NSID's document inside the output folder: its segments as folders, the
/// name as the file (`com/example/feed/post.json`).
pub fn document_path(nsid: &atlex::types::Nsid) -> String {
    format!("{}.json", nsid.as_str().replace('.', "/"))
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    use std::fmt::Write;
    let digest = sha2::Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for byte in digest.iter() {
        let _ = write!(out, "{byte:02x}");
    }
    out
}
