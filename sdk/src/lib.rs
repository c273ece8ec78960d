//! atlex: a Rust SDK for the AT Protocol.

// The literal macros expand to `::atlex::types::…` paths; this makes them work in this crate too.
extern crate self as atlex;

pub use atlex_types as types;

pub use atlex_macros::{
    at_identifier, at_uri, cid, datetime, did, handle, language, nsid, record_key, tid, uri,
};

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
