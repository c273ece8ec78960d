//! [`CidLink`]: a link by CID, `{"$link": "<cid>"}` in JSON and CBOR tag 42 in DAG-CBOR.

use std::fmt;
use std::str::FromStr;

use cid::multihash::Multihash;
use cid::{Cid, Version};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{DataError, DataErrorKind};
use super::keys::{Key, KeySeed};

/// The JSON key of a link object.
pub(crate) const LINK_KEY: &str = "$link";

/// Multicodec code of DAG-CBOR (records, commits).
pub const DAG_CBOR_CODEC: u64 = 0x71;
/// Multicodec code of raw bytes (blobs).
pub const RAW_CODEC: u64 = 0x55;
/// Multihash code of SHA-256.
pub const SHA2_256_CODE: u64 = 0x12;

/// A link to another object by CID; JSON form `{"$link": "<cid>"}`, CBOR tag 42.
///
/// Only CIDv1 is accepted (CIDv0 `Qm…` strings and their binary form are rejected). Any codec
/// and hash are accepted when reading, so data written by other tools round-trips; the
/// constructors [`CidLink::for_dag_cbor`] and [`CidLink::for_raw`] make the two kinds atproto
/// writes (SHA-256, DAG-CBOR or raw codec).
///
/// The string form ([`Display`](fmt::Display)) is the canonical base32 multibase text; a link
/// read from another multibase is written back in base32 (the binary CID, which is what the
/// data's own CID depends on, is unchanged).
// Boxed: a `Cid` reserves room for a 64-byte digest inline (96 bytes in all), which would make
// every `Data` value (an enum that can hold a link or a blob) 128 bytes instead of 48.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CidLink(Box<Cid>);

impl CidLink {
    /// Parses a CID string (CIDv1, any multibase); CIDv0 is rejected, as are surrounding
    /// whitespace, `/ipfs/` paths and trailing bytes after the CID.
    pub fn parse(text: &str) -> Result<CidLink, DataError> {
        parse_link(text).map_err(DataError::new)
    }

    /// Decodes a binary CID (the bytes inside CBOR tag 42, without the leading `0x00`).
    pub fn from_bytes(bytes: &[u8]) -> Result<CidLink, DataError> {
        link_from_bytes(bytes).map_err(DataError::new)
    }

    /// Wraps a [`Cid`]; CIDv0 is rejected.
    pub fn from_cid(cid: Cid) -> Result<CidLink, DataError> {
        match cid.version() {
            Version::V1 => Ok(CidLink(Box::new(cid))),
            Version::V0 => Err(DataError::new(cid_v0())),
        }
    }

    /// The CID of DAG-CBOR bytes (a record, a commit): CIDv1, codec `0x71`, SHA-256.
    pub fn for_dag_cbor(bytes: &[u8]) -> CidLink {
        CidLink::sha256(DAG_CBOR_CODEC, bytes)
    }

    /// The CID of raw bytes (a blob): CIDv1, codec `0x55`, SHA-256.
    pub fn for_raw(bytes: &[u8]) -> CidLink {
        CidLink::sha256(RAW_CODEC, bytes)
    }

    fn sha256(codec: u64, bytes: &[u8]) -> CidLink {
        let digest = Sha256::digest(bytes);
        // `Multihash<64>` holds up to 64 digest bytes; a SHA-256 digest is 32, so `wrap` cannot
        // fail. The fallback keeps this function total without a panic path.
        let hash = Multihash::<64>::wrap(SHA2_256_CODE, digest.as_slice()).unwrap_or_default();
        CidLink(Box::new(Cid::new_v1(codec, hash)))
    }

    /// The inner CID.
    pub fn cid(&self) -> &Cid {
        &self.0
    }

    /// The multicodec code (`0x71` DAG-CBOR, `0x55` raw, …).
    pub fn codec(&self) -> u64 {
        self.0.codec()
    }

    /// The binary form of the CID (as inside CBOR tag 42, without the leading `0x00`).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_bytes()
    }
}

impl fmt::Display for CidLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for CidLink {
    type Err = DataError;

    fn from_str(text: &str) -> Result<CidLink, DataError> {
        CidLink::parse(text)
    }
}

impl TryFrom<Cid> for CidLink {
    type Error = DataError;

    fn try_from(cid: Cid) -> Result<CidLink, DataError> {
        CidLink::from_cid(cid)
    }
}

impl From<CidLink> for Cid {
    fn from(link: CidLink) -> Cid {
        *link.0
    }
}

impl AsRef<Cid> for CidLink {
    fn as_ref(&self) -> &Cid {
        &self.0
    }
}

fn cid_v0() -> DataErrorKind {
    DataErrorKind::InvalidLink("CIDv0 is not allowed, only CIDv1".into())
}

/// Parses CID text strictly: a multibase string of a binary CIDv1 with nothing after it.
pub(crate) fn parse_link(text: &str) -> Result<CidLink, DataErrorKind> {
    // The `cid` crate's own `TryFrom<&str>` also strips `…/ipfs/` prefixes and accepts `Qm…`
    // CIDv0 strings; neither is a valid `$link`, so decode the multibase text here.
    if Version::is_v0_str(text) {
        return Err(cid_v0());
    }
    let (_, bytes) = cid::multibase::decode(text).map_err(|error| {
        DataErrorKind::InvalidLink(format!("{text:?} is not a CID string ({error})"))
    })?;
    link_from_bytes(&bytes)
}

/// Decodes a binary CID strictly: CIDv1, minimal varints, no trailing bytes.
pub(crate) fn link_from_bytes(bytes: &[u8]) -> Result<CidLink, DataErrorKind> {
    let mut rest = bytes;
    let cid = Cid::read_bytes(&mut rest)
        .map_err(|error| DataErrorKind::InvalidLink(format!("malformed binary CID ({error})")))?;
    if !rest.is_empty() {
        return Err(DataErrorKind::InvalidLink(format!(
            "{} unexpected bytes after the CID",
            rest.len()
        )));
    }
    match cid.version() {
        Version::V1 => Ok(CidLink(Box::new(cid))),
        Version::V0 => Err(cid_v0()),
    }
}

/// Writes the CID text straight into the serializer's output.
struct CidText<'a>(&'a Cid);

impl Serialize for CidText<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

impl Serialize for CidLink {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            let mut map = serializer.serialize_map(Some(1))?;
            map.serialize_entry(LINK_KEY, &CidText(&self.0))?;
            map.end()
        } else {
            // The `cid` crate's serde form: a newtype struct with a private name around the
            // binary CID, which `serde_ipld_dagcbor` writes as tag 42 (with the `0x00` prefix).
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for CidLink {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<CidLink, D::Error> {
        if deserializer.is_human_readable() {
            // `deserialize_any` rather than `deserialize_map`: see `LinkObjectVisitor`.
            deserializer.deserialize_any(LinkObjectVisitor)
        } else {
            deserializer.deserialize_newtype_struct(
                cid::serde::CID_SERDE_PRIVATE_IDENTIFIER,
                LinkNewtypeVisitor,
            )
        }
    }
}

/// Reads `{"$link": "<cid>"}`.
///
/// Also takes the `cid` crate's newtype (DAG-CBOR tag 42). JSON never produces it, but serde's
/// buffering for `#[serde(tag = "…")]` enums and `#[serde(flatten)]` replays DAG-CBOR input
/// through a deserializer that claims to be human-readable; accepting the binary form there
/// keeps such types decodable from DAG-CBOR.
struct LinkObjectVisitor;

impl<'de> Visitor<'de> for LinkObjectVisitor {
    type Value = CidLink;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a `{\"$link\": \"<cid>\"}` object")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<CidLink, D::Error> {
        LinkNewtypeVisitor.visit_newtype_struct(d)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CidLink, A::Error> {
        match map.next_key_seed(KeySeed(&[LINK_KEY]))? {
            Some(Key::Known(_)) => {}
            Some(Key::Other(key)) => {
                return Err(de::Error::custom(DataErrorKind::InvalidLink(format!(
                    "expected the key `$link`, found {key:?}"
                ))));
            }
            None => {
                return Err(de::Error::custom(DataErrorKind::InvalidLink(
                    "empty object, expected `{\"$link\": \"<cid>\"}`".into(),
                )));
            }
        }
        let link = map.next_value_seed(LinkTextSeed)?;
        if map.next_key::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(DataErrorKind::InvalidLink(
                "a `$link` object must have exactly one key".into(),
            )));
        }
        Ok(link)
    }
}

/// Reads the CID string of a `$link` object (only a string; no recursion into other values).
pub(crate) struct LinkTextSeed;

impl<'de> DeserializeSeed<'de> for LinkTextSeed {
    type Value = CidLink;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<CidLink, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for LinkTextSeed {
    type Value = CidLink;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CID string as the value of `$link`")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<CidLink, E> {
        parse_link(v).map_err(de::Error::custom)
    }
}

/// Unwraps the `cid` crate's private newtype (CBOR tag 42).
pub(crate) struct LinkNewtypeVisitor;

impl<'de> Visitor<'de> for LinkNewtypeVisitor {
    type Value = CidLink;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CID (CBOR tag 42)")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<CidLink, D::Error> {
        d.deserialize_bytes(LinkBytesVisitor)
    }
}

/// Reads the bytes of a binary CID.
pub(crate) struct LinkBytesVisitor;

impl<'de> Visitor<'de> for LinkBytesVisitor {
    type Value = CidLink;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the bytes of a CID")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<CidLink, E> {
        link_from_bytes(v).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &str = "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity";
    const DAG: &str = "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a";
    const V0: &str = "QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR";

    #[test]
    fn parse_and_display() {
        for text in [RAW, DAG] {
            let link = CidLink::parse(text).unwrap();
            assert_eq!(link.to_string(), text);
            assert_eq!(text.parse::<CidLink>().unwrap(), link);
            assert_eq!(CidLink::from_bytes(&link.to_bytes()).unwrap(), link);
        }
        assert_eq!(CidLink::parse(RAW).unwrap().codec(), RAW_CODEC);
        assert_eq!(CidLink::parse(DAG).unwrap().codec(), DAG_CBOR_CODEC);
    }

    #[test]
    fn rejects_v0_and_junk() {
        let error = CidLink::parse(V0).unwrap_err();
        assert!(error.to_string().contains("CIDv0"), "{error}");
        let v0 = Cid::try_from(V0).unwrap();
        assert!(CidLink::from_cid(v0).is_err());
        assert!(CidLink::from_bytes(&v0.to_bytes()).is_err());
        for bad in [
            "",
            ".",
            " bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity",
            "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity ",
            "/ipfs/bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity",
            "https://example.com/ipfs/bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity",
            "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4it",
        ] {
            assert!(CidLink::parse(bad).is_err(), "{bad:?}");
        }
        // Trailing bytes after a binary CID.
        let mut bytes = CidLink::parse(RAW).unwrap().to_bytes();
        bytes.push(0);
        assert!(CidLink::from_bytes(&bytes).is_err());
    }

    #[test]
    fn hashes() {
        // The blob CID in the interop fixtures is `for_raw` of some bytes; check the shape and
        // a known vector: the CID of empty DAG-CBOR input.
        let empty = CidLink::for_dag_cbor(b"");
        assert_eq!(
            empty.to_string(),
            "bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
        let raw = CidLink::for_raw(b"");
        assert_eq!(
            raw.to_string(),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
    }

    #[test]
    fn serde_json_form() {
        let link = CidLink::parse(DAG).unwrap();
        let json = serde_json::to_string(&link).unwrap();
        assert_eq!(json, format!(r#"{{"$link":"{DAG}"}}"#));
        assert_eq!(serde_json::from_str::<CidLink>(&json).unwrap(), link);
        for bad in [
            format!(r#"{{"$link":"{DAG}","other":"blah"}}"#),
            format!(r#"{{"other":"blah","$link":"{DAG}"}}"#),
            r#"{"$link":1234}"#.to_owned(),
            r#"{"$link":"."}"#.to_owned(),
            format!(r#"{{"$link":"{V0}"}}"#),
            format!(r#""{DAG}""#),
        ] {
            assert!(serde_json::from_str::<CidLink>(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_cbor_form() {
        let link = CidLink::parse(DAG).unwrap();
        let encoded = serde_ipld_dagcbor::to_vec(&link).unwrap();
        // Tag 42, byte string of 37 bytes: 0x00 then the 36-byte CID.
        assert_eq!(&encoded[..4], &[0xd8, 0x2a, 0x58, 0x25]);
        assert_eq!(encoded[4], 0x00);
        assert_eq!(&encoded[5..], link.to_bytes().as_slice());
        assert_eq!(
            serde_ipld_dagcbor::from_slice::<CidLink>(&encoded).unwrap(),
            link
        );
        // The binary CIDv0 inside tag 42 is rejected.
        let v0 = Cid::try_from(V0).unwrap();
        let encoded_v0 = serde_ipld_dagcbor::to_vec(&v0).unwrap();
        assert!(serde_ipld_dagcbor::from_slice::<CidLink>(&encoded_v0).is_err());
    }
}
