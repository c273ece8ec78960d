//! Lexicon documents: typed model, loader, schema checks, catalog and data validation.
//!
//! This crate is shared by the code generator (`atlex-codegen`, which lowers the typed model
//! into Rust) and by the SDK's runtime validator. The contract it implements is
//! `docs/lexicon-rules.md`.
//!
//! # Pipeline
//!
//! 1. **Load**: [`parse_str`], [`parse_file`] or [`load_dir`] read JSON into the typed
//!    [`model`]. JSON syntax errors name the file, line and column; structural errors name the
//!    file, NSID, def and field path, and all of them are reported at once.
//! 2. **Check**: [`check_document`] applies the single-document rules of lexicon-rules.md
//!    §1–§3 and returns every problem as [`Diagnostics`] (errors and warnings).
//! 3. **Catalog**: a [`Catalog`] holds documents by NSID and resolves references lazily
//!    ([`Catalog::resolve`]); [`Catalog::check`] adds the cross-document checks.
//! 4. **Validate**: [`Catalog::validate_record`], [`Catalog::validate_params`],
//!    [`Catalog::validate_input`], [`Catalog::validate_output`] and friends check untyped JSON
//!    data and return every failure with its JSON path and [`Constraint`] ([`ValidationErrors`],
//!    the vocabulary of [`atlex_types::validate`] that generated code uses too).
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let catalog = atlex_lexicon::Catalog::load_dir("lexicons")?;
//! catalog.check().into_result()?;
//! let post = serde_json::json!({
//!     "$type": "app.bsky.feed.post",
//!     "text": "hello",
//!     "createdAt": "2024-01-01T00:00:00Z",
//! });
//! catalog.validate_record("app.bsky.feed.post", &post)?;
//! # Ok(())
//! # }
//! ```
//!
//! # Round trips
//!
//! Every node keeps the presence of its optional keys and any keys the model does not know, so
//! `LexiconDoc::from_json(v)?.to_json() == v` for every valid document.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod catalog;
mod check;
mod convert;
mod load;
pub mod model;
mod problem;
mod validate;

/// The validation vocabulary, shared with the code generated for the SDK (re-exported from
/// [`atlex_types::validate`]).
pub use atlex_types::validate::{
    Constraint, ValidationError, ValidationErrors, mime_matches, path_key,
};
pub use catalog::{Catalog, CatalogError, ResolveError, Resolved};
pub use check::check_document;
pub use load::{
    LoadError, LoadErrors, LoadedDoc, json_files, load_dir, parse_bytes, parse_file, parse_str,
};
pub use model::{
    ArraySchema, BlobSchema, Body, BodySchema, BooleanSchema, BytesSchema, CidLinkSchema, Def,
    ErrorDef, Extra, FieldType, IntegerSchema, LexiconDoc, Message, ObjectSchema, ParamArray,
    ParamItem, ParamType, Params, Permission, PermissionSet, Procedure, Query, Record, RecordKey,
    Ref, RefError, RefKind, RefSchema, RefUse, StringSchema, Subscription, Token, UnionSchema,
    UnknownSchema,
};
pub use problem::{Diagnostics, Problem, Severity};
pub use validate::ValidateOptions;

#[cfg(test)]
mod tests;
