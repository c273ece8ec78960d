//! [`Bytes`]: raw bytes, `{"$bytes": "<base64>"}` in JSON and a CBOR byte string in DAG-CBOR.

use std::fmt;
use std::ops::Deref;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::error::{DataError, DataErrorKind};
use super::keys::{Key, KeySeed};

/// The JSON key of a bytes object.
pub(crate) const BYTES_KEY: &str = "$bytes";

/// The one base64 engine of the data model.
///
/// * Standard alphabet (RFC 4648 §4), as the spec requires.
/// * Encoding writes no `=` padding: that is what the reference implementations emit and what
///   the interop fixtures contain (`"nFERjvLL…zI0"`, 43 characters for 32 bytes).
/// * Decoding accepts input with or without padding ([`DecodePaddingMode::Indifferent`]) and
///   ignores non-zero bits in the last character (`decode_allow_trailing_bits`): Go's
///   `RawStdEncoding` and the JavaScript decoders accept such text, and the interop record
///   `{"$bytes": "123"}` relies on it. The stock `STANDARD` and `STANDARD_NO_PAD` engines both
///   reject `"123"`.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Raw bytes; JSON form `{"$bytes": "<base64>"}`, CBOR major type 2.
///
/// Serde: in human-readable formats (JSON) the value is the one-key object above; in binary
/// formats (DAG-CBOR through `serde_ipld_dagcbor`) it is a byte string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// Wraps a byte vector.
    pub fn new(bytes: Vec<u8>) -> Bytes {
        Bytes(bytes)
    }

    /// Decodes base64 the way the data model requires: standard alphabet, padding optional,
    /// non-zero trailing bits tolerated.
    pub fn from_base64(text: &str) -> Result<Bytes, DataError> {
        BASE64
            .decode(text)
            .map(Bytes)
            .map_err(|error| DataError::new(DataErrorKind::InvalidBytes(error.to_string())))
    }

    /// Encodes as base64 the way the data model writes it: standard alphabet, no padding.
    pub fn to_base64(&self) -> String {
        BASE64.encode(&self.0)
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// The bytes, as a vector.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Bytes {
        Bytes(bytes)
    }
}

impl From<&[u8]> for Bytes {
    fn from(bytes: &[u8]) -> Bytes {
        Bytes(bytes.to_vec())
    }
}

impl From<Bytes> for Vec<u8> {
    fn from(bytes: Bytes) -> Vec<u8> {
        bytes.0
    }
}

/// Writes the base64 text straight into the serializer's output (no intermediate `String`).
struct Base64Text<'a>(&'a [u8]);

impl Serialize for Base64Text<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&base64::display::Base64Display::new(self.0, &BASE64))
    }
}

/// Serializes bytes in the data-model form for the serializer's mode.
pub(crate) fn serialize_bytes<S: Serializer>(
    bytes: &[u8],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    if serializer.is_human_readable() {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(BYTES_KEY, &Base64Text(bytes))?;
        map.end()
    } else {
        serializer.serialize_bytes(bytes)
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_bytes(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        if deserializer.is_human_readable() {
            // `deserialize_any` rather than `deserialize_map`: see `BytesVisitor`.
            deserializer.deserialize_any(BytesVisitor)
        } else {
            deserializer.deserialize_byte_buf(BytesVisitor)
        }
    }
}

/// Reads `{"$bytes": "<base64>"}` (JSON) or a byte string (DAG-CBOR).
///
/// In human-readable mode a byte string is accepted too. JSON never produces one, but serde's
/// buffering for `#[serde(tag = "…")]` enums and `#[serde(flatten)]` replays DAG-CBOR input
/// through a deserializer that claims to be human-readable; accepting the binary form there
/// keeps such types decodable from DAG-CBOR.
struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes: a `{\"$bytes\": \"<base64>\"}` object in JSON, a byte string in CBOR")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
        Ok(Bytes(v))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Bytes, A::Error> {
        match map.next_key_seed(KeySeed(&[BYTES_KEY]))? {
            Some(Key::Known(_)) => {}
            Some(Key::Other(key)) => {
                return Err(de::Error::custom(DataErrorKind::InvalidBytes(format!(
                    "expected the key `$bytes`, found {key:?}"
                ))));
            }
            None => {
                return Err(de::Error::custom(DataErrorKind::InvalidBytes(
                    "empty object, expected `{\"$bytes\": \"<base64>\"}`".into(),
                )));
            }
        }
        let bytes = map.next_value_seed(Base64Seed)?;
        if map.next_key::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(DataErrorKind::InvalidBytes(
                "a `$bytes` object must have exactly one key".into(),
            )));
        }
        Ok(bytes)
    }
}

/// Reads the base64 string of a `$bytes` object (only a string; no recursion into other values).
pub(crate) struct Base64Seed;

impl<'de> de::DeserializeSeed<'de> for Base64Seed {
    type Value = Bytes;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Bytes, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Base64Seed {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a base64 string as the value of `$bytes`")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
        Bytes::from_base64(v).map_err(|error| de::Error::custom(error.kind()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_base64() {
        // Unpadded with non-zero trailing bits: accepted (interop `"123"`).
        assert_eq!(Bytes::from_base64("123").unwrap().0, vec![0xd7, 0x6d]);
        // With and without padding.
        assert_eq!(Bytes::from_base64("aGk=").unwrap().0, b"hi");
        assert_eq!(Bytes::from_base64("aGk").unwrap().0, b"hi");
        assert_eq!(Bytes::from_base64("").unwrap().0, b"");
        // Standard alphabet only.
        assert!(Bytes::from_base64("a-_b").is_err());
        assert!(Bytes::from_base64("a b").is_err());
        assert!(Bytes::from_base64("a").is_err());
        let error = Bytes::from_base64("@@@@").unwrap_err();
        assert!(matches!(error.kind(), DataErrorKind::InvalidBytes(_)));
    }

    #[test]
    fn canonical_encoding_has_no_padding() {
        assert_eq!(Bytes(b"hi".to_vec()).to_base64(), "aGk");
        let json = serde_json::to_string(&Bytes(b"hi".to_vec())).unwrap();
        assert_eq!(json, r#"{"$bytes":"aGk"}"#);
    }

    #[test]
    fn json_form() {
        let bytes: Bytes = serde_json::from_str(r#"{"$bytes":"aGk="}"#).unwrap();
        assert_eq!(bytes.0, b"hi");
        for bad in [
            r#"{"$bytes":"aGk","other":1}"#,
            r#"{"other":1,"$bytes":"aGk"}"#,
            r#"{"$bytes":[1,2,3]}"#,
            r#"{}"#,
            r#""aGk""#,
            r#"{"$bytes":"@@"}"#,
        ] {
            assert!(serde_json::from_str::<Bytes>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cbor_form() {
        let encoded = serde_ipld_dagcbor::to_vec(&Bytes(vec![1, 2, 3])).unwrap();
        assert_eq!(encoded, vec![0x43, 1, 2, 3]);
        let decoded: Bytes = serde_ipld_dagcbor::from_slice(&encoded).unwrap();
        assert_eq!(decoded.0, vec![1, 2, 3]);
        // A text string is not bytes.
        assert!(serde_ipld_dagcbor::from_slice::<Bytes>(&[0x61, b'a']).is_err());
    }
}
