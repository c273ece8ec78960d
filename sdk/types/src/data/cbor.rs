//! DAG-CBOR encoding and decoding, and record CIDs.
//!
//! These are thin wrappers over [`serde_ipld_dagcbor`] 0.7 that give errors a readable message
//! and compute CIDs. What the crate guarantees, checked against its source and by the interop
//! fixtures (byte-for-byte) and this module's tests:
//!
//! * **Canonical output.** Map and struct entries are buffered and sorted by their encoded key,
//!   which for text keys is exactly the DAG-CBOR order (shorter keys first, then bytewise),
//!   whatever order `Serialize` produced them in. Integers, lengths and tags use the shortest
//!   head. Lengths are always definite.
//! * **Strict input.** Decoding rejects unsorted or duplicate map keys, non-minimal heads,
//!   indefinite lengths, tags other than 42, non-string map keys and trailing bytes.
//!   [`Data`](super::Data) additionally rejects floats, which DAG-CBOR allows but the atproto
//!   data model does not.
//!
//! A generic `T` is encoded as its `Serialize` impl says: the data-model checks apply to the
//! atlex types inside it ([`Data`](super::Data), [`Blob`](super::Blob), …), not to, say, an
//! `f64` field of a user's own struct.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_ipld_dagcbor::{DecodeError, EncodeError};

use super::link::CidLink;
use super::ser::{clear_last_error, take_last_error};

/// A value that could not be encoded to or decoded from DAG-CBOR.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CborError {
    /// Encoding failed (for example a data-model rule broken by a hand-built value).
    Encode(String),
    /// The bytes are not valid DAG-CBOR, or not a valid value of the requested type.
    Decode(String),
}

impl fmt::Display for CborError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CborError::Encode(message) => write!(f, "cannot encode as DAG-CBOR: {message}"),
            CborError::Decode(message) => write!(f, "invalid DAG-CBOR: {message}"),
        }
    }
}

impl std::error::Error for CborError {}

/// Encodes a value as canonical DAG-CBOR.
pub fn to_dag_cbor<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CborError> {
    clear_last_error();
    serde_ipld_dagcbor::to_vec(value).map_err(|error| {
        // Prefer the data-model error recorded by atlex's own impls: the encoder replaces the
        // message of an error raised inside a map or list with a generic one.
        match take_last_error() {
            Some(data_error) if data_error.path() == "$" => {
                CborError::Encode(data_error.kind().to_string())
            }
            Some(data_error) => CborError::Encode(format!(
                "{} (at {} within the data-model value)",
                data_error.kind(),
                data_error.path()
            )),
            None => CborError::Encode(encode_message(&error)),
        }
    })
}

/// Decodes a value from DAG-CBOR; the whole input must be one value.
pub fn from_dag_cbor<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CborError> {
    serde_ipld_dagcbor::from_slice(bytes).map_err(|error| CborError::Decode(decode_message(&error)))
}

/// The CID of a record (or any value): CIDv1, DAG-CBOR codec, SHA-256 of its canonical
/// DAG-CBOR encoding.
pub fn record_cid<T: Serialize + ?Sized>(value: &T) -> Result<CidLink, CborError> {
    to_dag_cbor(value).map(|bytes| CidLink::for_dag_cbor(&bytes))
}

fn encode_message<E: fmt::Debug>(error: &EncodeError<E>) -> String {
    match error {
        EncodeError::Msg(message) => message.clone(),
        EncodeError::Write(error) => format!("write error: {error:?}"),
    }
}

fn decode_message<E: fmt::Debug>(error: &DecodeError<E>) -> String {
    match error {
        DecodeError::Msg(message) => message.clone(),
        DecodeError::Eof { name, .. } => format!("unexpected end of input while reading {name}"),
        DecodeError::Mismatch { name, found } | DecodeError::Unsupported { name, found } => {
            format!("unexpected byte 0x{found:02x} while reading {name}")
        }
        DecodeError::TrailingData => "trailing bytes after the value".into(),
        DecodeError::IndefiniteSize => "indefinite-length item (not allowed in DAG-CBOR)".into(),
        DecodeError::NonMinimal { name, .. } => {
            format!("{name} is not minimally encoded (not allowed in DAG-CBOR)")
        }
        DecodeError::UnorderedKey => {
            "map keys are not in DAG-CBOR order (length first, then bytewise) or repeat".into()
        }
        DecodeError::DepthOverflow { .. } => "nesting too deep".into(),
        DecodeError::RequireUtf8 { name } => format!("{name} is not valid UTF-8"),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::data::Data;

    #[test]
    fn map_keys_are_sorted_length_first() {
        let mut object = BTreeMap::new();
        for key in ["bb", "a", "b", "aaa", "ab"] {
            object.insert(key.to_owned(), Data::Integer(1));
        }
        let bytes = to_dag_cbor(&Data::Object(object)).unwrap();
        // a5 (map of 5), then keys a, b, ab, bb, aaa.
        let expected: Vec<u8> = [
            &[0xa5][..],
            &[0x61, b'a', 0x01],
            &[0x61, b'b', 0x01],
            &[0x62, b'a', b'b', 0x01],
            &[0x62, b'b', b'b', 0x01],
            &[0x63, b'a', b'a', b'a', 0x01],
        ]
        .concat();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn struct_fields_are_sorted() {
        #[derive(Serialize)]
        struct Record {
            zzz: i64,
            #[serde(rename = "$type")]
            kind: &'static str,
            a: i64,
        }
        let bytes = to_dag_cbor(&Record {
            zzz: 1,
            kind: "x",
            a: 2,
        })
        .unwrap();
        let expected: Vec<u8> = [
            &[0xa3][..],
            &[0x61, b'a', 0x02],
            &[0x63, b'z', b'z', b'z', 0x01],
            &[0x65, b'$', b't', b'y', b'p', b'e', 0x61, b'x'],
        ]
        .concat();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn integers_are_minimal() {
        for (value, expected) in [
            (0_i64, vec![0x00]),
            (23, vec![0x17]),
            (24, vec![0x18, 24]),
            (255, vec![0x18, 0xff]),
            (256, vec![0x19, 0x01, 0x00]),
            (-1, vec![0x20]),
            (-25, vec![0x38, 24]),
            (
                i64::MAX,
                vec![0x1b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
            (
                i64::MIN,
                vec![0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
        ] {
            assert_eq!(
                to_dag_cbor(&Data::Integer(value)).unwrap(),
                expected,
                "{value}"
            );
            assert_eq!(
                from_dag_cbor::<Data>(&expected).unwrap(),
                Data::Integer(value)
            );
        }
    }

    #[test]
    fn strict_decoding() {
        for (bytes, what) in [
            (
                vec![0xa2, 0x61, b'b', 0x01, 0x61, b'a', 0x01],
                "unsorted keys",
            ),
            (
                vec![0xa2, 0x61, b'a', 0x01, 0x61, b'a', 0x01],
                "duplicate keys",
            ),
            (vec![0x18, 0x01], "non-minimal integer"),
            (vec![0x9f, 0xff], "indefinite array"),
            (vec![0x01, 0x02], "trailing bytes"),
            (vec![0xfb, 0x40, 0x5e, 0xc0, 0, 0, 0, 0, 0], "float 123.0"),
            (vec![0xfa, 0x42, 0xf6, 0xe9, 0x79], "f32"),
            (vec![0xc1, 0x00], "tag 1"),
            (
                vec![0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                "-2^64",
            ),
            (
                vec![0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                "u64::MAX",
            ),
            (vec![0xa1, 0x01, 0x01], "integer key"),
            (vec![], "empty input"),
        ] {
            let error = from_dag_cbor::<Data>(&bytes).unwrap_err();
            assert!(matches!(error, CborError::Decode(_)), "{what}");
        }
    }

    #[test]
    fn encode_errors_keep_their_message_and_path() {
        let mut inner = BTreeMap::new();
        inner.insert("$type".to_owned(), Data::String(String::new()));
        let mut outer = BTreeMap::new();
        outer.insert(
            "list".to_owned(),
            Data::Array(vec![Data::Null, Data::Object(inner)]),
        );
        let error = to_dag_cbor(&Data::Object(outer)).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("`$type` must be a non-empty string"),
            "{message}"
        );
        assert!(message.contains("$.list[1].$type"), "{message}");
    }

    #[test]
    fn record_cid_matches_hash_of_encoding() {
        let data = Data::Object(BTreeMap::from([("a".to_owned(), Data::Integer(1))]));
        let bytes = to_dag_cbor(&data).unwrap();
        assert_eq!(record_cid(&data).unwrap(), CidLink::for_dag_cbor(&bytes));
    }
}
