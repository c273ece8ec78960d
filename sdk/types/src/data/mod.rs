//! The AT Protocol data model.
//!
//! Records, XRPC bodies and every lexicon `unknown` value are data-model values: JSON-like
//! trees with two extra leaf kinds (bytes and CID links), one special object (the blob), and no
//! floats. They travel in two encodings:
//!
//! | kind     | JSON                                       | DAG-CBOR                     |
//! |----------|--------------------------------------------|------------------------------|
//! | bytes    | `{"$bytes": "<base64>"}`                   | byte string (major type 2)   |
//! | link     | `{"$link": "<cid>"}`                       | tag 42 around `0x00` + CID   |
//! | blob     | `{"$type":"blob","ref":…,"mimeType":…,"size":…}` | the same map, `ref` a tag-42 link |
//! | integer  | number with an integer value (`123.0` OK)  | major type 0/1               |
//!
//! # Types
//!
//! * [`Data`]: any value. Lexicon `unknown` fields and the unknown fields that generated
//!   records keep for round-tripping hold it.
//! * [`Bytes`], [`CidLink`], [`Blob`] and [`BlobRef`]: the leaf types, used directly as field
//!   types of generated structs.
//! * [`DataError`]: a rule violation, with the JSON path (`$.embed.images[0].image`) of the first
//!   offending value when converting from a `serde_json::Value` ([`Data::from_json`]).
//!
//! ```
//! use atlex_types::data::{self, Data};
//!
//! let json = serde_json::json!({
//!     "$type": "com.example.post",
//!     "text": "hello",
//!     "avatar": {"$bytes": "AQID"},
//!     "parent": {"$link": "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a"},
//! });
//! let value = Data::from_json_object(&json)?;
//! let cbor = data::to_dag_cbor(&value)?;
//! assert_eq!(Data::from_dag_cbor(&cbor)?, value);
//! assert_eq!(value.to_json(), json);
//! println!("record CID: {}", data::record_cid(&value)?);
//!
//! let error = Data::from_json(&serde_json::json!({"a": [1, 2.5]})).unwrap_err();
//! assert_eq!(error.path(), "$.a[1]");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # One `serde` implementation, two encodings
//!
//! Every type here implements `Serialize`/`Deserialize` once, branching on
//! `is_human_readable()`: `serde_json` is human-readable and gets the `$bytes`/`$link` objects;
//! [`serde_ipld_dagcbor`] is not and gets CBOR byte strings and tag-42 links. Generated record
//! structs therefore derive serde and encode to both formats with no format-specific code. The
//! rules (no floats, `i64` integers, exactly-one-key `$link`/`$bytes` objects, well-formed blobs,
//! non-empty string `$type`, at most [`MAX_DEPTH`] nested containers, no duplicate keys) are
//! enforced while deserializing, without building an intermediate `serde_json::Value`, and
//! again when serializing hand-built values.
//!
//! ## serde's buffering
//!
//! Internally tagged enums (`#[serde(tag = "$type")]`), `#[serde(untagged)]` and
//! `#[serde(flatten)]` make serde buffer the input and replay it through its own deserializer,
//! which reports `is_human_readable() == true` whatever the real format was. [`Bytes`],
//! [`CidLink`], [`Blob`] and [`BlobRef`] therefore also accept the binary forms (a byte string,
//! a tag-42 CID) in human-readable mode, so such types still decode from DAG-CBOR (JSON never
//! produces those forms). A [`Data`] value inside buffered DAG-CBOR is checked with the JSON
//! rules, though (an integral float or a `{"$link": "…"}` text map would pass), and buffering
//! costs an extra copy: generated code should decode unions with its own visitors.
//!
//! # Choices
//!
//! * **`serde_ipld_dagcbor`** for DAG-CBOR: it is the IPLD project's maintained serde codec,
//!   the one `ipld-core` builds on. It writes canonical DAG-CBOR (map and struct keys sorted
//!   length-first then bytewise, shortest integer heads, definite lengths, CIDs as tag 42 from
//!   the `cid` crate's serde form) and its decoder rejects non-canonical input (unsorted or
//!   duplicate keys, non-minimal heads, indefinite lengths, other tags). Writing our own codec
//!   would re-solve a solved problem; going through `ipld_core::Ipld` would allocate a second
//!   tree. See [`cbor`] for the details that were checked.
//! * **`base64` with one `GeneralPurpose` engine** (standard alphabet, `decode_allow_trailing_bits`,
//!   `DecodePaddingMode::Indifferent`, no padding on output): the spec makes padding optional
//!   and the reference implementations accept non-zero trailing bits (interop `"123"`), which
//!   the stock engines reject; the output matches what the reference implementations write.
//! * **`cid` 0.11** for CIDs, with a strict front end: the crate's string parser also accepts
//!   `/ipfs/…` paths and CIDv0, and its byte parser ignores trailing bytes, none of which is a
//!   valid link here.
//! * **Compact values.** [`CidLink`] boxes its `Cid` (which reserves 64 digest bytes inline),
//!   so a `Data` is 40 bytes rather than 128; reading JSON into `Data` costs little more than
//!   reading a `serde_json::Value` (about 10% on a typical post without links, measured).
//! * **Depth limit [`MAX_DEPTH`] = 100.** Deserialization is recursive; the limit keeps hostile
//!   input from exhausting the stack, and sits below `serde_json`'s own limit (127 nested
//!   containers), so every value this module accepts or writes can be read back by it. Real
//!   records nest fewer than 10 levels.
//! * **Duplicate object keys are an error** in JSON as well as in DAG-CBOR: "last one wins"
//!   would let two readers see different data under one signature.
//! * **Blob `size`** must be a non-negative integer: both reference implementations accept `0`.
//! * **Top level.** [`Data::from_json`] converts any value (a `Data` may be a string);
//!   records and XRPC bodies must be objects, which [`Data::from_json_object`] and
//!   [`Data::deserialize_object`] check. (Deserializing a `BTreeMap<String, Data>` checks the
//!   values but not the `$`-keys of the map itself.)

use std::collections::BTreeMap;

mod blob;
mod bytes;
pub mod cbor;
mod de;
mod error;
mod json;
mod keys;
mod link;
mod number;
mod object;
mod ser;

pub use blob::{Blob, BlobRef};
pub use bytes::Bytes;
pub use cbor::{CborError, from_dag_cbor, record_cid, to_dag_cbor};
pub use error::{DataError, DataErrorKind};
pub use link::{CidLink, DAG_CBOR_CODEC, RAW_CODEC, SHA2_256_CODE};

/// The deepest nesting of arrays and objects (blobs included) that is accepted or written.
pub const MAX_DEPTH: usize = 100;

/// A data-model value: what a lexicon `unknown` field holds.
///
/// `Serialize`/`Deserialize` work for JSON and DAG-CBOR (see the [module docs](self)).
/// Deserializing enforces every data-model rule; serializing re-checks the rules a hand-built
/// value could break. Object keys are kept sorted ([`BTreeMap`]), which is also the order
/// JSON output uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
    ///
    /// Any JSON value is accepted at the top (use [`Data::from_json_object`] for records and
    /// bodies, which must be objects).
    pub fn from_json(value: &serde_json::Value) -> Result<Data, DataError> {
        json::from_value(value, 0).map_err(DataError::from_trace)
    }

    /// Like [`Data::from_json`], and the value must be an object (a record or an XRPC body);
    /// the result is always [`Data::Object`].
    pub fn from_json_object(value: &serde_json::Value) -> Result<Data, DataError> {
        match value {
            serde_json::Value::Object(_) => {
                let data = Data::from_json(value)?;
                match data {
                    Data::Object(_) => Ok(data),
                    // A `$link`, `$bytes` or blob object is not a record.
                    _ => Err(DataError::new(DataErrorKind::NotAnObject)),
                }
            }
            _ => Err(DataError::new(DataErrorKind::NotAnObject)),
        }
    }

    /// Deserializes a value that must be an object (a record or an XRPC body), with every
    /// data-model rule checked; usable as `#[serde(deserialize_with = "Data::deserialize_object")]`.
    ///
    /// (Deserializing a `BTreeMap<String, Data>` instead would skip the object-level checks of
    /// the top object, such as a non-empty `$type`.)
    pub fn deserialize_object<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Data, D::Error> {
        use serde::Deserialize as _;
        match Data::deserialize(deserializer)? {
            data @ Data::Object(_) => Ok(data),
            other => Err(serde::de::Error::custom(format!(
                "{}, found {}",
                DataErrorKind::NotAnObject,
                other.kind_name()
            ))),
        }
    }

    /// Converts to a JSON value (`$bytes`/`$link` objects, blob objects, integers).
    ///
    /// This is a structural conversion that cannot fail; it does not re-check the rules, so a
    /// hand-built invalid value gives JSON that will not read back (call [`Data::validate`]
    /// first, or serialize with serde, which checks).
    pub fn to_json(&self) -> serde_json::Value {
        json::to_value(self)
    }

    /// Checks a (hand-built) value against the rules that reading enforces: object `$`-keys,
    /// blob fields, nesting depth. Values produced by this module's readers always pass.
    pub fn validate(&self) -> Result<(), DataError> {
        ser::validate(self, 0).map_err(DataError::from_trace)
    }

    /// Encodes as canonical DAG-CBOR (see [`to_dag_cbor`]).
    pub fn to_dag_cbor(&self) -> Result<Vec<u8>, CborError> {
        to_dag_cbor(self)
    }

    /// Decodes DAG-CBOR (see [`from_dag_cbor`]).
    pub fn from_dag_cbor(bytes: &[u8]) -> Result<Data, CborError> {
        from_dag_cbor(bytes)
    }

    /// The CID of the value's DAG-CBOR encoding (see [`record_cid`]).
    pub fn cid(&self) -> Result<CidLink, CborError> {
        record_cid(self)
    }

    /// The object's entries, if this is an object.
    pub fn as_object(&self) -> Option<&BTreeMap<String, Data>> {
        match self {
            Data::Object(object) => Some(object),
            _ => None,
        }
    }

    /// The items, if this is an array.
    pub fn as_array(&self) -> Option<&[Data]> {
        match self {
            Data::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Data::String(text) => Some(text),
            _ => None,
        }
    }

    /// The integer, if this is an integer.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Data::Integer(v) => Some(*v),
            _ => None,
        }
    }

    /// The boolean, if this is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Data::Boolean(v) => Some(*v),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Data::Null)
    }

    /// The value of `key`, if this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Data> {
        self.as_object().and_then(|object| object.get(key))
    }

    /// The `$type` of an object (`"blob"` for a blob), if it has a string one.
    pub fn type_name(&self) -> Option<&str> {
        match self {
            Data::Blob(_) => Some("blob"),
            _ => self.get("$type").and_then(Data::as_str),
        }
    }

    /// The name of the value's kind, for messages: `"null"`, `"boolean"`, `"integer"`,
    /// `"string"`, `"bytes"`, `"cid-link"`, `"blob"`, `"array"` or `"object"`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Data::Null => "null",
            Data::Boolean(_) => "boolean",
            Data::Integer(_) => "integer",
            Data::String(_) => "string",
            Data::Bytes(_) => "bytes",
            Data::Link(_) => "cid-link",
            Data::Blob(_) => "blob",
            Data::Array(_) => "array",
            Data::Object(_) => "object",
        }
    }
}

impl TryFrom<&serde_json::Value> for Data {
    type Error = DataError;

    fn try_from(value: &serde_json::Value) -> Result<Data, DataError> {
        Data::from_json(value)
    }
}

impl From<&Data> for serde_json::Value {
    fn from(data: &Data) -> serde_json::Value {
        data.to_json()
    }
}

impl From<bool> for Data {
    fn from(v: bool) -> Data {
        Data::Boolean(v)
    }
}

impl From<i64> for Data {
    fn from(v: i64) -> Data {
        Data::Integer(v)
    }
}

impl From<String> for Data {
    fn from(v: String) -> Data {
        Data::String(v)
    }
}

impl From<&str> for Data {
    fn from(v: &str) -> Data {
        Data::String(v.to_owned())
    }
}

impl From<Bytes> for Data {
    fn from(v: Bytes) -> Data {
        Data::Bytes(v)
    }
}

impl From<CidLink> for Data {
    fn from(v: CidLink) -> Data {
        Data::Link(v)
    }
}

impl From<Blob> for Data {
    fn from(v: Blob) -> Data {
        Data::Blob(v)
    }
}

impl From<Vec<Data>> for Data {
    fn from(v: Vec<Data>) -> Data {
        Data::Array(v)
    }
}

impl From<BTreeMap<String, Data>> for Data {
    fn from(v: BTreeMap<String, Data>) -> Data {
        Data::Object(v)
    }
}

#[cfg(test)]
mod tests;
