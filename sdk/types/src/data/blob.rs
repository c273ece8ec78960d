//! [`Blob`] and [`BlobRef`]: references to uploaded binary data.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use super::error::{DataError, DataErrorKind};
use super::keys::{Key, KeySeed};
use super::link::{CidLink, parse_link};
use super::number::integer_from_f64;
use super::ser::fail;

/// The `$type` of a blob object.
pub(crate) const BLOB_TYPE: &str = "blob";

/// A blob reference in its current (typed) form:
/// `{"$type": "blob", "ref": {"$link": …}, "mimeType": …, "size": …}`.
///
/// Reading requires exactly these four keys, `ref` a link, `mimeType` a non-empty string and
/// `size` a non-negative integer (both reference implementations accept `0`; only negative sizes
/// are rejected). Writing checks the same rules, so an invalid hand-built value fails to
/// serialize instead of producing data nobody can read back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Blob {
    /// The CID of the blob's bytes (normally CIDv1, raw codec, SHA-256: see
    /// [`CidLink::for_raw`]).
    pub r#ref: CidLink,
    /// The MIME type (non-empty).
    pub mime_type: String,
    /// The size in bytes.
    pub size: u64,
}

impl Blob {
    /// Describes the blob for the bytes `content`: computes the raw CID and takes the size.
    pub fn for_content(content: &[u8], mime_type: impl Into<String>) -> Blob {
        Blob {
            r#ref: CidLink::for_raw(content),
            mime_type: mime_type.into(),
            // A `usize` always fits in a `u64` on supported targets.
            size: content.len() as u64,
        }
    }

    /// Checks the rules a blob must meet to be written (non-empty `mimeType`, `size` within
    /// the data model's signed 64-bit integers).
    pub fn validate(&self) -> Result<(), DataError> {
        check_parts(&self.mime_type, self.size).map_err(DataError::new)
    }
}

/// Checks the fields of a typed blob other than the link.
pub(crate) fn check_parts(mime_type: &str, size: u64) -> Result<(), DataErrorKind> {
    if mime_type.is_empty() {
        return Err(DataErrorKind::InvalidBlob(
            "`mimeType` must not be empty".into(),
        ));
    }
    if i64::try_from(size).is_err() {
        return Err(DataErrorKind::InvalidBlob(
            "`size` is outside the signed 64-bit integer range".into(),
        ));
    }
    Ok(())
}

/// A blob reference as found in records: the typed form, or the legacy `{cid, mimeType}` form.
///
/// Lexicon `blob` fields use this type. The legacy form only appears in old records; it is
/// read (its `cid` must be a valid CIDv1 string and `mimeType` non-empty) and written back
/// exactly as it was read, never produced for new data.
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

impl BlobRef {
    /// The CID of the blob's bytes. For the legacy form this parses the stored string, which
    /// only fails for a hand-built value (deserialization already checked it).
    pub fn cid(&self) -> Result<CidLink, DataError> {
        match self {
            BlobRef::Typed(blob) => Ok(blob.r#ref.clone()),
            BlobRef::Legacy { cid, .. } => CidLink::parse(cid),
        }
    }

    /// The MIME type.
    pub fn mime_type(&self) -> &str {
        match self {
            BlobRef::Typed(blob) => &blob.mime_type,
            BlobRef::Legacy { mime_type, .. } => mime_type,
        }
    }

    /// The size in bytes; `None` for the legacy form, which does not record it.
    pub fn size(&self) -> Option<u64> {
        match self {
            BlobRef::Typed(blob) => Some(blob.size),
            BlobRef::Legacy { .. } => None,
        }
    }

    /// Whether this is the legacy `{cid, mimeType}` form.
    pub fn is_legacy(&self) -> bool {
        matches!(self, BlobRef::Legacy { .. })
    }

    /// The typed blob, if this is one.
    pub fn as_typed(&self) -> Option<&Blob> {
        match self {
            BlobRef::Typed(blob) => Some(blob),
            BlobRef::Legacy { .. } => None,
        }
    }
}

impl From<Blob> for BlobRef {
    fn from(blob: Blob) -> BlobRef {
        BlobRef::Typed(blob)
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        check_parts(&self.mime_type, self.size).map_err(fail)?;
        // DAG-CBOR writers sort the keys themselves; JSON gets the conventional order.
        let mut object = serializer.serialize_struct("Blob", 4)?;
        object.serialize_field("$type", BLOB_TYPE)?;
        object.serialize_field("ref", &self.r#ref)?;
        object.serialize_field("mimeType", &self.mime_type)?;
        object.serialize_field("size", &self.size)?;
        object.end()
    }
}

impl Serialize for BlobRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            BlobRef::Typed(blob) => blob.serialize(serializer),
            BlobRef::Legacy { cid, mime_type } => {
                let mut object = serializer.serialize_struct("LegacyBlob", 2)?;
                object.serialize_field("cid", cid)?;
                object.serialize_field("mimeType", mime_type)?;
                object.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Blob, D::Error> {
        let human_readable = deserializer.is_human_readable();
        match deserializer.deserialize_map(BlobVisitor {
            human_readable,
            allow_legacy: false,
        })? {
            BlobRef::Typed(blob) => Ok(blob),
            // `allow_legacy: false` never yields the legacy form.
            BlobRef::Legacy { .. } => Err(de::Error::custom(DataErrorKind::InvalidBlob(
                "the legacy `{cid, mimeType}` form is not allowed here".into(),
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for BlobRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<BlobRef, D::Error> {
        let human_readable = deserializer.is_human_readable();
        deserializer.deserialize_map(BlobVisitor {
            human_readable,
            allow_legacy: true,
        })
    }
}

const BLOB_KEYS: &[&str] = &["$type", "ref", "mimeType", "size", "cid"];

struct BlobVisitor {
    human_readable: bool,
    allow_legacy: bool,
}

fn blob_error<E: de::Error>(message: impl Into<String>) -> E {
    de::Error::custom(DataErrorKind::InvalidBlob(message.into()))
}

impl<'de> Visitor<'de> for BlobVisitor {
    type Value = BlobRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.allow_legacy {
            f.write_str("a blob object (`{\"$type\": \"blob\", …}` or legacy `{cid, mimeType}`)")
        } else {
            f.write_str("a blob object `{\"$type\": \"blob\", \"ref\", \"mimeType\", \"size\"}`")
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BlobRef, A::Error> {
        let mut has_type = false;
        let mut link: Option<CidLink> = None;
        let mut mime_type: Option<String> = None;
        let mut size: Option<u64> = None;
        let mut legacy_cid: Option<String> = None;
        while let Some(key) = map.next_key_seed(KeySeed(BLOB_KEYS))? {
            let index = match key {
                Key::Known(index) => index,
                Key::Other(key) => return Err(blob_error(format!("unexpected key {key:?}"))),
            };
            let seen = match index {
                0 => {
                    let value: String = map.next_value()?;
                    if value != BLOB_TYPE {
                        return Err(blob_error(format!(
                            "`$type` must be \"blob\", found {value:?}"
                        )));
                    }
                    std::mem::replace(&mut has_type, true)
                }
                1 => link.replace(map.next_value()?).is_some(),
                2 => mime_type.replace(map.next_value()?).is_some(),
                3 => size
                    .replace(map.next_value_seed(SizeSeed(self.human_readable))?)
                    .is_some(),
                _ => legacy_cid.replace(map.next_value()?).is_some(),
            };
            if seen {
                let name = BLOB_KEYS.get(index).copied().unwrap_or_default();
                return Err(de::Error::custom(DataErrorKind::DuplicateKey(name.into())));
            }
        }

        if has_type {
            if legacy_cid.is_some() {
                return Err(blob_error("unexpected key \"cid\" in a typed blob"));
            }
            let r#ref = link.ok_or_else(|| blob_error("missing key \"ref\""))?;
            let mime_type = mime_type.ok_or_else(|| blob_error("missing key \"mimeType\""))?;
            let size = size.ok_or_else(|| blob_error("missing key \"size\""))?;
            check_parts(&mime_type, size).map_err(de::Error::custom)?;
            return Ok(BlobRef::Typed(Blob {
                r#ref,
                mime_type,
                size,
            }));
        }
        match legacy_cid {
            Some(cid) if self.allow_legacy => {
                if link.is_some() || size.is_some() {
                    return Err(blob_error(
                        "a legacy blob has only the keys \"cid\" and \"mimeType\"",
                    ));
                }
                let mime_type = mime_type.ok_or_else(|| blob_error("missing key \"mimeType\""))?;
                if mime_type.is_empty() {
                    return Err(blob_error("`mimeType` must not be empty"));
                }
                parse_link(&cid).map_err(de::Error::custom)?;
                Ok(BlobRef::Legacy { cid, mime_type })
            }
            Some(_) => Err(blob_error("unexpected key \"cid\" (legacy blob form)")),
            None => Err(blob_error("missing key \"$type\" (must be \"blob\")")),
        }
    }
}

/// Reads a blob size: a non-negative integer (an integer-valued JSON number is accepted).
struct SizeSeed(bool);

impl<'de> DeserializeSeed<'de> for SizeSeed {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SizeSeed {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative integer blob `size`")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        if i64::try_from(v).is_err() {
            return Err(de::Error::custom(DataErrorKind::IntegerOutOfRange));
        }
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| blob_error("`size` must not be negative"))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        if !self.0 {
            return Err(de::Error::custom(DataErrorKind::Float));
        }
        let v = integer_from_f64(v).map_err(de::Error::custom)?;
        self.visit_i64(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &str = "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity";

    fn typed_json() -> String {
        format!(
            r#"{{"$type":"blob","ref":{{"$link":"{RAW}"}},"mimeType":"image/jpeg","size":10000}}"#
        )
    }

    #[test]
    fn typed_round_trip_json_and_cbor() {
        let blob: Blob = serde_json::from_str(&typed_json()).unwrap();
        assert_eq!(blob.r#ref.to_string(), RAW);
        assert_eq!(blob.mime_type, "image/jpeg");
        assert_eq!(blob.size, 10000);
        assert_eq!(serde_json::to_string(&blob).unwrap(), typed_json());

        let cbor = serde_ipld_dagcbor::to_vec(&blob).unwrap();
        assert_eq!(serde_ipld_dagcbor::from_slice::<Blob>(&cbor).unwrap(), blob);
        let as_ref: BlobRef = serde_ipld_dagcbor::from_slice(&cbor).unwrap();
        assert_eq!(as_ref, BlobRef::Typed(blob.clone()));
        assert_eq!(as_ref.size(), Some(10000));
        assert_eq!(as_ref.mime_type(), "image/jpeg");
        assert_eq!(as_ref.cid().unwrap(), blob.r#ref);
    }

    #[test]
    fn integer_valued_size_in_json() {
        let text = typed_json().replace("10000", "10000.0");
        assert_eq!(serde_json::from_str::<Blob>(&text).unwrap().size, 10000);
        let text = typed_json().replace("10000", "10000.5");
        assert!(serde_json::from_str::<Blob>(&text).is_err());
    }

    #[test]
    fn legacy_round_trip() {
        let text = format!(r#"{{"cid":"{RAW}","mimeType":"image/png"}}"#);
        let blob: BlobRef = serde_json::from_str(&text).unwrap();
        assert!(blob.is_legacy());
        assert_eq!(blob.size(), None);
        assert_eq!(blob.cid().unwrap().to_string(), RAW);
        assert_eq!(serde_json::to_string(&blob).unwrap(), text);
        let cbor = serde_ipld_dagcbor::to_vec(&blob).unwrap();
        assert_eq!(
            serde_ipld_dagcbor::from_slice::<BlobRef>(&cbor).unwrap(),
            blob
        );
        // `Blob` itself does not take the legacy form.
        assert!(serde_json::from_str::<Blob>(&text).is_err());
    }

    #[test]
    fn invalid_blobs() {
        let cases = [
            typed_json().replace("10000", "\"10000\""),
            typed_json().replace("10000", "-1"),
            typed_json().replace("image/jpeg", ""),
            typed_json().replace("\"blob\"", "\"blub\""),
            typed_json().replace("\"size\":10000", "\"size\":10000,\"extra\":1"),
            typed_json().replace("\"size\":10000", "\"size\":10000,\"cid\":\"x\""),
            r#"{"$type":"blob","mimeType":"image/jpeg","size":10000}"#.to_owned(),
            format!(r#"{{"$type":"blob","ref":{{"$link":"{RAW}"}},"size":10000}}"#),
            format!(r#"{{"$type":"blob","ref":"{RAW}","mimeType":"image/jpeg","size":1}}"#),
            r#"{"cid":"not a cid","mimeType":"image/png"}"#.to_owned(),
            format!(r#"{{"cid":"{RAW}","mimeType":""}}"#),
            format!(r#"{{"cid":"{RAW}"}}"#),
            format!(r#"{{"cid":"{RAW}","mimeType":"image/png","size":3}}"#),
            r#"{"mimeType":"image/png"}"#.to_owned(),
            r#"{}"#.to_owned(),
        ];
        for case in cases {
            assert!(serde_json::from_str::<BlobRef>(&case).is_err(), "{case}");
        }
    }

    #[test]
    fn invalid_blobs_do_not_serialize() {
        let link = CidLink::parse(RAW).unwrap();
        let empty_mime = Blob {
            r#ref: link.clone(),
            mime_type: String::new(),
            size: 1,
        };
        assert!(serde_json::to_string(&empty_mime).is_err());
        assert!(serde_ipld_dagcbor::to_vec(&empty_mime).is_err());
        let huge = Blob {
            r#ref: link,
            mime_type: "a/b".into(),
            size: u64::MAX,
        };
        assert!(huge.validate().is_err());
        assert!(serde_json::to_string(&huge).is_err());
    }

    #[test]
    fn for_content() {
        let blob = Blob::for_content(b"hello", "text/plain");
        assert_eq!(blob.size, 5);
        assert_eq!(blob.r#ref, CidLink::for_raw(b"hello"));
    }
}
