//! Support for generated lexicon unions: enums tagged by `$type`.
//!
//! A union value is an object whose `$type` names the member. Generated union enums implement
//! [`LexUnion`] and decode through [`deserialize_union`], which reads `$type` and hands the rest
//! of the object to the member's decoder without buffering it. When `$type` is not the first key
//! (DAG-CBOR's canonical key order puts shorter keys such as `did` or `uri` first), only the keys
//! before it are buffered.
//!
//! Open unions keep members this version does not know as [`UnknownMember`], which re-encodes to
//! the same JSON value; closed unions reject them.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, StringDeserializer};
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess};
use serde::{Deserializer, Serialize};

use crate::data::Data;
use crate::object::Key;

/// A generated union enum.
pub trait LexUnion: Sized {
    /// What the union is, for error messages (e.g. `app.bsky.feed.post#main.embed`).
    const NAME: &'static str;
    /// The `$type` of every member, normalised (`nsid` for a main def, else `nsid#name`).
    const REFS: &'static [&'static str];

    /// Decodes the member named `type_tag` (one of [`LexUnion::REFS`]) from the rest of the
    /// object, which no longer contains `$type`.
    fn deserialize_member<'de, D: Deserializer<'de>>(
        type_tag: &str,
        deserializer: D,
    ) -> Result<Self, D::Error>;

    /// Wraps a member this version does not know; `None` for a closed union.
    fn unknown(member: UnknownMember) -> Option<Self>;
}

/// Decodes a union value: see the module docs.
pub fn deserialize_union<'de, D: Deserializer<'de>, U: LexUnion>(
    deserializer: D,
) -> Result<U, D::Error> {
    deserializer.deserialize_map(UnionVisitor(PhantomData))
}

struct UnionVisitor<U>(PhantomData<U>);

impl<'de, U: LexUnion> de::Visitor<'de> for UnionVisitor<U> {
    type Value = U;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object with a $type (union {})", U::NAME)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<U, A::Error> {
        let mut before: Vec<(String, Data)> = Vec::new();
        let tag = loop {
            let Some(key) = map.next_key::<Key<'de>>()? else {
                return Err(de::Error::custom(format_args!(
                    "union {} value has no $type",
                    U::NAME
                )));
            };
            if key.as_str() == "$type" {
                let tag: Key<'de> = map.next_value()?;
                break tag;
            }
            let value: Data = map.next_value()?;
            before.push((key.into_string(), value));
        };
        let tag = normalise_tag(tag.as_str());
        if tag.is_empty() {
            return Err(de::Error::custom(format_args!(
                "union {}: $type is empty",
                U::NAME
            )));
        }
        if U::REFS.contains(&tag) {
            if before.is_empty() {
                U::deserialize_member(tag, MapAccessDeserializer::new(map))
            } else {
                let chained = Chain {
                    before: before.into_iter(),
                    pending: None,
                    rest: map,
                };
                U::deserialize_member(tag, MapAccessDeserializer::new(chained))
            }
        } else {
            let mut object: BTreeMap<String, Data> = before.into_iter().collect();
            while let Some(key) = map.next_key::<Key<'de>>()? {
                let value: Data = map.next_value()?;
                if object.insert(key.as_str().to_owned(), value).is_some() {
                    return Err(de::Error::custom(format_args!(
                        "duplicate field `{}`",
                        key.as_str()
                    )));
                }
            }
            object.insert("$type".to_owned(), Data::String(tag.to_owned()));
            U::unknown(UnknownMember { object }).ok_or_else(|| {
                de::Error::custom(format_args!(
                    "closed union {}: $type {tag:?} is not one of {:?}",
                    U::NAME,
                    U::REFS
                ))
            })
        }
    }
}

/// `$type` values ending in `#main` are invalid data, but tolerated when reading.
fn normalise_tag(tag: &str) -> &str {
    tag.strip_suffix("#main").unwrap_or(tag)
}

/// Replays the keys read before `$type`, then continues with the rest of the object.
struct Chain<A> {
    before: std::vec::IntoIter<(String, Data)>,
    pending: Option<Data>,
    rest: A,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Chain<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        match self.before.next() {
            Some((key, value)) => {
                self.pending = Some(value);
                let key: StringDeserializer<A::Error> = key.into_deserializer();
                seed.deserialize(key).map(Some)
            }
            None => self.rest.next_key_seed(seed),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        match self.pending.take() {
            Some(value) => seed.deserialize(value.to_json()).map_err(de::Error::custom),
            None => self.rest.next_value_seed(seed),
        }
    }
}

/// A member of an open union that this version of the SDK does not know, kept as it was read.
///
/// It serialises back to the same object, `$type` included. Match on the union's known
/// variants first; use [`UnknownMember::type_tag`] to see what this one is.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownMember {
    object: BTreeMap<String, Data>,
}

impl UnknownMember {
    /// Wraps an object; it must carry a non-empty string `$type`.
    pub fn new(object: BTreeMap<String, Data>) -> Option<UnknownMember> {
        match object.get("$type") {
            Some(Data::String(tag)) if !tag.is_empty() => Some(UnknownMember { object }),
            _ => None,
        }
    }

    /// The member's `$type`.
    pub fn type_tag(&self) -> &str {
        match self.object.get("$type") {
            Some(Data::String(tag)) => tag,
            _ => "",
        }
    }

    /// A field of the member.
    pub fn get(&self, key: &str) -> Option<&Data> {
        self.object.get(key)
    }

    /// The whole object, `$type` included.
    pub fn as_object(&self) -> &BTreeMap<String, Data> {
        &self.object
    }

    /// The member as a data-model value.
    pub fn into_data(self) -> Data {
        Data::Object(self.object)
    }
}

impl Serialize for UnknownMember {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.object.serialize(serializer)
    }
}
