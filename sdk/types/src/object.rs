//! Support for generated lexicon objects: unknown fields, keys and serialisation.
//!
//! Every generated object keeps the fields this version of the SDK does not know in an
//! [`Extra`] and writes them back, so decoding then encoding a record never drops data
//! ("clobbering"). This is done without `#[serde(flatten)]`, which buffers every field through
//! serde's private `Content` type: generated `Deserialize` impls match known keys directly and
//! only unknown keys go into [`Extra`] as [`Data`].
//!
//! Decoding is split so that little of it is generated per object ([`LexObjectDe`]): the loop
//! over the entries of a map is [`deserialize_object`], written once here; an object supplies
//! the slots of its fields, a `match` from key to slot ([`LexObjectDe::read_entry`], with no `?`
//! in its arms) and the step from filled slots to the object ([`LexObjectDe::finish`], not
//! generic over the input format). Against one visitor per object with the loop, a local per
//! field and a `?` per arm, this took the cold `cargo check` of a 2,000-lexicon crate from
//! 6.2 GB to 5.6 GB peak (`codegen/README.md`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize};

use crate::data::Data;

/// The fields of an object that its lexicon does not declare, kept for round trips.
///
/// Empty objects cost one pointer and no allocation.
#[derive(Clone, Default, PartialEq)]
// The box is deliberate: it keeps `Extra` (in every generated struct) one pointer wide.
#[allow(clippy::box_collection)]
pub struct Extra(Option<Box<BTreeMap<String, Data>>>);

impl Extra {
    /// No extra fields.
    pub const fn new() -> Extra {
        Extra(None)
    }

    /// Whether there are no extra fields.
    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|map| map.is_empty())
    }

    /// The number of extra fields (including a `$type`, if one was read).
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |map| map.len())
    }

    /// The value of an extra field.
    pub fn get(&self, key: &str) -> Option<&Data> {
        self.0.as_ref().and_then(|map| map.get(key))
    }

    /// Sets an extra field, returning the previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: Data) -> Option<Data> {
        self.0.get_or_insert_default().insert(key.into(), value)
    }

    /// Removes an extra field.
    pub fn remove(&mut self, key: &str) -> Option<Data> {
        self.0.as_mut().and_then(|map| map.remove(key))
    }

    /// Iterates over the extra fields in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Data)> {
        self.0
            .iter()
            .flat_map(|map| map.iter().map(|(k, v)| (k.as_str(), v)))
    }

    /// The `$type` the object was read with, if it carried one.
    pub fn type_tag(&self) -> Option<&str> {
        match self.get("$type") {
            Some(Data::String(tag)) => Some(tag),
            _ => None,
        }
    }

    /// The number of entries [`Extra::serialize_entries`] writes (everything but `$type`).
    pub fn body_len(&self) -> usize {
        self.len() - usize::from(self.get("$type").is_some())
    }

    /// Writes every extra field except `$type` (which the caller writes first).
    pub fn serialize_entries<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        for (key, value) in self.iter() {
            if key != "$type" {
                map.serialize_entry(key, value)?;
            }
        }
        Ok(())
    }

    /// Reads the value of an unknown `key` from `map` into the extra fields.
    ///
    /// A key seen twice in one object is an error, as it is for known fields.
    pub fn read_entry<'de, A: MapAccess<'de>>(
        &mut self,
        key: Key<'de>,
        map: &mut A,
    ) -> Result<(), A::Error> {
        let value: Data = map.next_value()?;
        let key = key.into_string();
        let entries = self.0.get_or_insert_default();
        if entries.contains_key(&key) {
            return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
        }
        entries.insert(key, value);
        Ok(())
    }
}

impl fmt::Debug for Extra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl FromIterator<(String, Data)> for Extra {
    fn from_iter<I: IntoIterator<Item = (String, Data)>>(iter: I) -> Self {
        let map: BTreeMap<String, Data> = iter.into_iter().collect();
        if map.is_empty() {
            Extra(None)
        } else {
            Extra(Some(Box::new(map)))
        }
    }
}

/// An object key as read from the input: borrowed when the input allows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key<'de>(Cow<'de, str>);

impl<'de> Key<'de> {
    /// The key text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key as an owned string.
    pub fn into_string(self) -> String {
        self.0.into_owned()
    }

    /// Wraps a key.
    pub fn new(key: impl Into<Cow<'de, str>>) -> Key<'de> {
        Key(key.into())
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> de::Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// A generated lexicon object: its known fields plus [`Extra`].
///
/// Implemented by generated code; `serialize_body` writes the fields (not `$type`), so the same
/// body serves a plain object, a record (which adds its NSID as `$type`) and a union member
/// (which adds the member's `$type`).
pub trait LexObject {
    /// The unknown fields kept from decoding.
    fn extra(&self) -> &Extra;
    /// How many entries `serialize_body` writes.
    fn body_len(&self) -> usize;
    /// Writes the known fields that are present, then the extra fields (without `$type`).
    fn serialize_body<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error>;
}

/// Serialises a generated object as a map, writing `type_tag` (or, when `None`, the `$type` the
/// object was read with, if any) first.
pub fn serialize_object<S: serde::Serializer, T: LexObject + ?Sized>(
    value: &T,
    serializer: S,
    type_tag: Option<&str>,
) -> Result<S::Ok, S::Error> {
    let tag = type_tag.or_else(|| value.extra().type_tag());
    let len = value.body_len() + usize::from(tag.is_some());
    let mut map = serializer.serialize_map(Some(len))?;
    if let Some(tag) = tag {
        map.serialize_entry("$type", tag)?;
    }
    value.serialize_body(&mut map)?;
    map.end()
}

/// How a generated object is decoded from a map (implemented by generated code; the loop over
/// the entries is [`deserialize_object`]).
pub trait LexObjectDe<'de>: Sized {
    /// What a type error says was expected (`a app.bsky.feed.post#main.record object`).
    const EXPECTING: &'static str;
    /// The slots of the fields read so far (one `Option` per known field) and the unknown
    /// fields.
    type Fields;
    /// No field read yet.
    const EMPTY: Self::Fields;
    /// Reads the value of the entry `key` into its slot (a known field, an unknown one, or a
    /// record's `$type`, which is checked).
    fn read_entry<A: MapAccess<'de>>(
        fields: &mut Self::Fields,
        key: Key<'de>,
        map: &mut A,
    ) -> Result<(), A::Error>;
    /// The object, once every entry was read; a missing required field is an error.
    fn finish<E: de::Error>(fields: Self::Fields) -> Result<Self, E>;
}

/// Decodes a generated object: a map whose entries go to [`LexObjectDe::read_entry`] one by
/// one, then [`LexObjectDe::finish`].
pub fn deserialize_object<'de, T: LexObjectDe<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    struct ObjectVisitor<T>(std::marker::PhantomData<T>);
    impl<'de, T: LexObjectDe<'de>> de::Visitor<'de> for ObjectVisitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(T::EXPECTING)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
            let mut fields = T::EMPTY;
            while let Some(key) = map.next_key::<Key<'de>>()? {
                T::read_entry(&mut fields, key, &mut map)?;
            }
            T::finish(fields)
        }
    }
    deserializer.deserialize_map(ObjectVisitor(std::marker::PhantomData))
}

/// Reads a record's `$type` entry and checks it is the record's NSID.
pub fn read_record_type<'de, A: MapAccess<'de>>(map: &mut A, nsid: &str) -> Result<(), A::Error> {
    let found: Key<'de> = map.next_value()?;
    check_record_type(found.as_str(), nsid)
}

/// The error for a required field that is missing.
pub fn missing<E: de::Error>(name: &'static str) -> E {
    E::missing_field(name)
}

/// Reads the value of a known field into its slot; a field given twice is an error.
pub fn read_field<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    slot: &mut Option<T>,
    map: &mut A,
    name: &'static str,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

/// Writes an optional field when it is present.
pub fn serialize_optional<M: SerializeMap, T: Serialize>(
    map: &mut M,
    key: &'static str,
    value: &Option<T>,
) -> Result<(), M::Error> {
    match value {
        Some(value) => map.serialize_entry(key, value),
        None => Ok(()),
    }
}

/// Checks the `$type` of a record being decoded: it must be the record's NSID.
pub fn check_record_type<E: de::Error>(found: &str, nsid: &str) -> Result<(), E> {
    if found == nsid {
        Ok(())
    } else {
        Err(E::custom(format_args!(
            "record $type is {found:?}, expected {nsid:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_is_small_and_ordered() {
        assert_eq!(std::mem::size_of::<Extra>(), std::mem::size_of::<usize>());
        let mut extra = Extra::new();
        assert!(extra.is_empty());
        extra.insert("b", Data::Integer(2));
        extra.insert("$type", Data::String("x.y.z".into()));
        extra.insert("a", Data::Boolean(true));
        assert_eq!(extra.len(), 3);
        assert_eq!(extra.body_len(), 2);
        assert_eq!(extra.type_tag(), Some("x.y.z"));
        let keys: Vec<_> = extra.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["$type", "a", "b"]);
        assert_eq!(extra.remove("a"), Some(Data::Boolean(true)));
        assert!(format!("{extra:?}").contains("x.y.z"));
    }

    #[test]
    fn key_borrows_when_it_can() {
        let mut de = serde_json::Deserializer::from_str(r#""plain""#);
        let key = Key::deserialize(&mut de).unwrap();
        assert!(matches!(key.0, Cow::Borrowed("plain")));
        let mut de = serde_json::Deserializer::from_str(r#""esc\"aped""#);
        let key = Key::deserialize(&mut de).unwrap();
        assert_eq!(key.as_str(), "esc\"aped");
    }
}
