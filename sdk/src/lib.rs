//! atlex: a Rust SDK for the AT Protocol.
#![deny(missing_docs)]
// docs.rs builds with `--cfg docsrs` on nightly: feature-gated items (the namespace modules, the
// SQLite store) are marked with the feature they need.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

// Generated code and the literal macros use `::atlex::…` paths; this makes them resolve inside
// this crate as well as in users' crates.
extern crate self as atlex;

pub use atlex_types as types;

/// Lexicon documents at run time: load a folder of lexicons into a
/// [`Catalog`](lexicon::Catalog) and validate untyped records and XRPC bodies against it.
pub use atlex_lexicon as lexicon;

pub use atlex_macros::{
    at_identifier, at_uri, cid, datetime, did, handle, language, nsid, record_key, tid, uri,
};

pub mod auth;
pub mod xrpc;

/// Re-exports used by generated code (so that a crate generated from its own lexicons needs
/// only `atlex` as a dependency). Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use serde;
}

// The generated bindings, one module per lexicon NSID, mounted at the crate root
// (`atlex::app::bsky::feed::post::Post`). Regenerate with `cargo xtask codegen`.
#[rustfmt::skip]
#[allow(missing_docs)] // many lexicon fields have no description; each type and endpoint has docs
mod generated;
pub use generated::*;

// The README's examples are compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod literal_macro_tests {
    #[test]
    fn literal_macros_resolve_inside_atlex() {
        assert_eq!(
            crate::did!("did:plc:abc"),
            crate::types::Did::new("did:plc:abc").unwrap()
        );
    }
}
