//! atlex: a Rust SDK for the AT Protocol.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

// Lets generated code use `::atlex::…` paths both inside this crate and in users' crates.
extern crate self as atlex;

pub use atlex_types as types;

pub mod auth;
pub mod xrpc;
