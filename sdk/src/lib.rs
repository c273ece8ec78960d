//! atlex: a Rust SDK for the AT Protocol.
//!
//! # Layers
//!
//! Dependencies point one way, from the top of this list to the bottom:
//!
//! 1. [`stream`]: event-stream consumers (reconnects, cursors, bounded buffers, Jetstream) and
//!    the typed [`RepoEvent`](stream::RepoEvent), on the generated subscriptions;
//!    [`repo`]: typed record and blob helpers (`create_record(&post)`,
//!    `list_records::<Post>(…)`, `upload_blob(…)`), built on the generated
//!    `com.atproto.repo.*` endpoints;
//! 2. [`auth`]: sessions (log in, refresh, restore) and session stores, on the transport and
//!    the generated `com.atproto.server.*` types;
//! 3. the generated bindings, mounted at the crate root (`atlex::app::bsky::feed::post::Post`):
//!    declarative types and endpoint markers, written by `cargo xtask codegen`;
//! 4. [`xrpc`]: the transport (client, endpoint traits, bodies, errors, retries, pagination,
//!    frames), which sees endpoints only through its [`Endpoint`](xrpc::Endpoint) and
//!    [`Subscription`](xrpc::Subscription) traits;
//! 5. [`types`] (string formats, the data model, validation) and the literal macros
//!    (`did!`, `nsid!`, …), which everything above uses.
//!
//! `lexicon` (feature `lexicon`) stands beside them: lexicon documents at run time, for
//! validating untyped data.
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
/// [`Catalog`](lexicon::Catalog) and validate untyped records and XRPC bodies against it
/// (feature `lexicon`; the typed bindings do not need it).
#[cfg(feature = "lexicon")]
pub use atlex_lexicon as lexicon;

pub use atlex_macros::{
    at_identifier, at_uri, cid, datetime, did, handle, language, nsid, record_key, tid, uri,
};

pub mod auth;
pub mod identity;
pub mod net;
pub mod repo;
pub mod stream;
pub mod xrpc;

/// Re-exports used by generated code (so that a crate generated from its own lexicons needs
/// only `atlex` as a dependency). Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use serde;
}

/// The door of the fuzz targets (`tests/fuzz`, `cargo xtask fuzz`) and their regression tests
/// to crate-private parsers of network input. **Not part of the public API**: it may change or
/// go away in any release. Each function is a thin call of the code the client itself runs.
#[doc(hidden)]
pub mod __fuzz {
    use std::time::SystemTime;

    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

    use crate::xrpc::{Endpoint, Error, RateLimit, XrpcErrorKind};

    /// The client's decoding of a response to `E` that arrived with `status`: the output for a
    /// 2xx status, else the typed XRPC error (or the raw status) the caller would get.
    pub fn decode_response<E: Endpoint>(
        status: u16,
        content_type: Option<String>,
        body: Vec<u8>,
    ) -> Result<E::Output, Error<E::Error>> {
        if (200..300).contains(&status) {
            crate::xrpc::client::decode_output::<E>(status, content_type, body)
        } else {
            Err(
                crate::xrpc::transport::error_from_body(status, || content_type, &body)
                    .map_xrpc(E::Error::from_body),
            )
        }
    }

    /// The rate-limit headers of a 429 answer, as the client reads them. `headers` are raw
    /// name/value pairs; those the HTTP stack would reject on receipt are left out.
    pub fn rate_limit<'a>(
        headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        body: &[u8],
        now: SystemTime,
    ) -> RateLimit {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) =
                (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
            {
                map.append(name, value);
            }
        }
        crate::xrpc::retry::rate_limit(&map, body, now)
    }

    /// The query string the client sends for `name=value` pairs.
    pub fn encode_query<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
        crate::xrpc::transport::encode_query(pairs)
    }

    /// A JWT's `exp` claim, as the password session reads it.
    pub fn jwt_expiry(token: &str) -> Option<i64> {
        crate::auth::jwt::expiry(token)
    }

    /// A JWT's `iat` claim, as the password session reads it.
    pub fn jwt_issued_at(token: &str) -> Option<i64> {
        crate::auth::jwt::issued_at(token)
    }

    /// When the password session refreshes a token with these claims (`jitter` is the random
    /// part, 0..=60 s in the client).
    pub fn refresh_time(exp: i64, issued: Option<i64>, jitter: i64) -> i64 {
        crate::auth::refresh::refresh_time(exp, issued, jitter)
    }
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
