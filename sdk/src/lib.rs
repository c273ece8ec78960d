//! atlex: a Rust SDK for the AT Protocol.

pub use atlex_types as types;
