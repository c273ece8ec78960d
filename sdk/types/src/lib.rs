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
//! * [`crypto`] — atproto keys (`did:key`, Multikey; P-256 and secp256k1) and ES256 / ES256K
//!   signatures with the low-S rule.
//! * [`validate`] — lexicon constraints (lengths, graphemes, ranges, blob rules) and the
//!   [`Validate`] trait behind every generated `validate()`.
//! * [`object`], [`union`], [`nullable`], [`record`], [`permission`] — the runtime support that
//!   generated code builds on: unknown fields kept for round trips ([`Extra`]), `$type`-tagged
//!   unions, `nullable` fields, the [`Record`] trait and permission-set data.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod crypto;
pub mod data;
pub mod format;
pub mod nullable;
pub mod object;
pub mod permission;
pub mod record;
pub mod union;
pub mod validate;

pub use data::{Blob, BlobRef, Bytes, CidLink, Data};
pub use format::{
    AtIdentifier, AtUri, Cid, Datetime, Did, Format, FormatError, Handle, Language, Nsid,
    RecordKey, Tid, TidGenerator, Uri,
};
pub use nullable::Nullable;
pub use object::Extra;
pub use permission::{Permission, PermissionSet, RepoAction};
pub use record::{Record, RecordKeyKind};
pub use union::UnknownMember;
pub use validate::{Validate, ValidationError, ValidationErrors, Validator};
