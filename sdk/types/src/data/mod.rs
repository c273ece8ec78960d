//! The AT Protocol data model.
//!
//! INTERFACE SKELETON — to be implemented (owner: data-model work).

use std::collections::BTreeMap;
use std::fmt;

/// Raw bytes; JSON form `{"$bytes": "<base64>"}`, CBOR major type 2.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// Decodes base64 the way the data model requires: standard alphabet, padding optional,
    /// non-zero trailing bits tolerated.
    pub fn from_base64(text: &str) -> Result<Bytes, DataError> {
        let _ = text;
        todo!()
    }
}

/// A link to another object by CID; JSON form `{"$link": "<cid>"}`, CBOR tag 42.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CidLink(cid::Cid);

impl CidLink {
    /// Parses a CID string (CIDv1, any multibase); CIDv0 is rejected.
    pub fn parse(text: &str) -> Result<CidLink, DataError> {
        let _ = text;
        todo!()
    }
}

/// A blob reference in its current (typed) form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Blob {
    /// The CID of the blob's bytes.
    pub r#ref: CidLink,
    /// The MIME type.
    pub mime_type: String,
    /// The size in bytes (> 0).
    pub size: u64,
}

/// A blob reference as found in records: the typed form, or the legacy `{cid, mimeType}` form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BlobRef {
    /// `{"$type": "blob", "ref": {"$link": …}, "mimeType": …, "size": …}`
    Typed(Blob),
    /// `{"cid": "…", "mimeType": "…"}` (read-only legacy form, written back unchanged).
    Legacy {
        /// The CID string.
        cid: String,
        /// The MIME type.
        mime_type: String,
    },
}

/// A data-model value: what a lexicon `unknown` field holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// `null`
    Null,
    /// `true` / `false`
    Boolean(bool),
    /// A signed 64-bit integer (floats are not part of the data model).
    Integer(i64),
    /// A string.
    String(String),
    /// Bytes.
    Bytes(Bytes),
    /// A CID link.
    Link(CidLink),
    /// A typed blob.
    Blob(Blob),
    /// An array.
    Array(Vec<Data>),
    /// An object with string keys.
    Object(BTreeMap<String, Data>),
}

impl Data {
    /// Converts a JSON value, enforcing the data-model rules; the error names the JSON path.
    pub fn from_json(value: &serde_json::Value) -> Result<Data, DataError> {
        let _ = value;
        todo!()
    }
}

/// A value that breaks the data-model rules, with the JSON path where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError {
    _private: (),
}

impl DataError {
    /// The JSON path of the offending value, e.g. `$.embed.images[0].image`.
    pub fn path(&self) -> &str {
        todo!()
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        todo!()
    }
}

impl std::error::Error for DataError {}
