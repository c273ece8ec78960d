//! atlex: a Rust SDK for the AT Protocol.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

// Generated code and the literal macros use `::atlex::…` paths; this makes them resolve inside
// this crate as well as in users' crates.
extern crate self as atlex;

pub use atlex_types as types;

pub use atlex_macros::{
    at_identifier, at_uri, cid, datetime, did, handle, language, nsid, record_key, tid, uri,
};

pub mod auth;
pub mod xrpc;

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
