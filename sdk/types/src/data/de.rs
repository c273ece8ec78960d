//! `Deserialize` for [`Data`]: one visitor for JSON and DAG-CBOR.
//!
//! The visitor builds [`Data`] directly from the format's events (no `serde_json::Value` in
//! between) and checks the data-model rules as it goes. It branches on
//! [`Deserializer::is_human_readable`]: JSON (`true`) spells links and bytes as `{"$link"}` and
//! `{"$bytes"}` objects and may write integers as `123.0`; DAG-CBOR (`false`, through
//! `serde_ipld_dagcbor`) has CBOR byte strings, CIDs as tag 42 (handed to the visitor as the
//! `cid` crate's private newtype), and floats that are never allowed.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::bytes::{BYTES_KEY, Base64Seed, Bytes};
use super::error::{DataErrorKind, Trace};
use super::link::{LINK_KEY, LinkBytesVisitor, LinkTextSeed};
use super::number::integer_from_f64;
use super::object::{Shape, classify, into_blob};
use super::{Data, MAX_DEPTH};

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Data, D::Error> {
        DataSeed { depth: 0 }.deserialize(deserializer)
    }
}

/// Deserializes a [`Data`] value nested `depth` containers deep.
#[derive(Clone, Copy)]
pub(crate) struct DataSeed {
    pub(crate) depth: usize,
}

impl<'de> DeserializeSeed<'de> for DataSeed {
    type Value = Data;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Data, D::Error> {
        let human_readable = deserializer.is_human_readable();
        deserializer.deserialize_any(DataVisitor {
            depth: self.depth,
            human_readable,
        })
    }
}

struct DataVisitor {
    depth: usize,
    human_readable: bool,
}

fn error<E: de::Error>(kind: DataErrorKind) -> E {
    E::custom(kind)
}

/// The messages of object-level errors already name the offending key.
fn trace_error<E: de::Error>(trace: Trace) -> E {
    E::custom(trace.into_kind())
}

impl DataVisitor {
    fn enter<E: de::Error>(&self) -> Result<DataSeed, E> {
        if self.depth >= MAX_DEPTH {
            return Err(error(DataErrorKind::TooDeep));
        }
        Ok(DataSeed {
            depth: self.depth + 1,
        })
    }
}

impl<'de> Visitor<'de> for DataVisitor {
    type Value = Data;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a data-model value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Data, E> {
        Ok(Data::Boolean(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Data, E> {
        Ok(Data::Integer(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Data, E> {
        i64::try_from(v)
            .map(Data::Integer)
            .map_err(|_| error(DataErrorKind::IntegerOutOfRange))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Data, E> {
        i64::try_from(v)
            .map(Data::Integer)
            .map_err(|_| error(DataErrorKind::IntegerOutOfRange))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Data, E> {
        i64::try_from(v)
            .map(Data::Integer)
            .map_err(|_| error(DataErrorKind::IntegerOutOfRange))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Data, E> {
        if !self.human_readable {
            // A CBOR float is a float even when its value is integral.
            return Err(error(DataErrorKind::Float));
        }
        integer_from_f64(v).map(Data::Integer).map_err(error)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Data, E> {
        Ok(Data::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Data, E> {
        Ok(Data::String(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Data, E> {
        Ok(Data::Bytes(Bytes(v.to_vec())))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Data, E> {
        Ok(Data::Bytes(Bytes(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Data, E> {
        Ok(Data::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Data, E> {
        Ok(Data::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Data, D::Error> {
        DataSeed { depth: self.depth }.deserialize(deserializer)
    }

    /// DAG-CBOR tag 42: the `cid` crate's private newtype around the CID bytes.
    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<Data, D::Error> {
        deserializer
            .deserialize_bytes(LinkBytesVisitor)
            .map(Data::Link)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Data, A::Error> {
        let seed = self.enter()?;
        // Cap the pre-allocation: the hint comes from the input.
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(seed)? {
            items.push(item);
        }
        Ok(Data::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Data, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            self.enter()?;
            return Ok(Data::Object(BTreeMap::new()));
        };
        if self.human_readable {
            // `{"$link": "…"}` and `{"$bytes": "…"}`: leaves, read without recursion.
            if first == LINK_KEY {
                let link = map.next_value_seed(LinkTextSeed)?;
                if map.next_key::<de::IgnoredAny>()?.is_some() {
                    return Err(error(DataErrorKind::InvalidLink(
                        "a `$link` object must have exactly one key".into(),
                    )));
                }
                return Ok(Data::Link(link));
            }
            if first == BYTES_KEY {
                let bytes = map.next_value_seed(Base64Seed)?;
                if map.next_key::<de::IgnoredAny>()?.is_some() {
                    return Err(error(DataErrorKind::InvalidBytes(
                        "a `$bytes` object must have exactly one key".into(),
                    )));
                }
                return Ok(Data::Bytes(bytes));
            }
        }
        let seed = self.enter()?;
        let mut object = BTreeMap::new();
        let value = map.next_value_seed(seed)?;
        object.insert(first, value);
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(seed)?;
            match object.entry(key) {
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                Entry::Occupied(slot) => {
                    return Err(error(DataErrorKind::DuplicateKey(slot.key().clone())));
                }
            }
        }
        match classify(&object).map_err(trace_error)? {
            Shape::Plain => Ok(Data::Object(object)),
            Shape::Blob => into_blob(object).map(Data::Blob).map_err(trace_error),
        }
    }
}
