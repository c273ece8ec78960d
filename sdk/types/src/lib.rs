//! AT Protocol string formats and data model.
//!
//! This crate is re-exported by `atlex` as `atlex::types`; depend on `atlex` rather than on this
//! crate directly. It sits below everything else in the workspace (the literal macros, the
//! lexicon crate and the SDK all build on it), which is why it is a crate of its own.
//!
//! * [`format`](mod@format) — validated newtypes for the lexicon string formats (`Did`, `Handle`, `Nsid`,
//!   `AtUri`, `Datetime`, `Tid`, …) and [`format::validate`] for checking a string against a
//!   [`format::Format`] at run time.
//! * [`data`] — the data model: [`Data`] (the value behind lexicon `unknown`), [`Bytes`],
//!   [`CidLink`], [`Blob`], and their JSON and DAG-CBOR encodings, plus CID computation.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod data;
pub mod format;

pub use data::{Blob, BlobRef, Bytes, CidLink, Data};
pub use format::{
    AtIdentifier, AtUri, Cid, Datetime, Did, Format, FormatError, Handle, Language, Nsid,
    RecordKey, Tid, TidGenerator, Uri,
};
