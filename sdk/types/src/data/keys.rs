//! Reading object keys that are compared against a few known names without allocating.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};

/// An object key: the index of a known name, or (rarely, usually on the error path) another key.
pub(crate) enum Key {
    /// `names[i]`
    Known(usize),
    /// Any other key.
    Other(String),
}

/// Reads an object key, matching it against `names`.
#[derive(Clone, Copy)]
pub(crate) struct KeySeed(pub(crate) &'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(match self.0.iter().position(|name| *name == v) {
            Some(index) => Key::Known(index),
            None => Key::Other(v.to_owned()),
        })
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Key, E> {
        Ok(match self.0.iter().position(|name| *name == v) {
            Some(index) => Key::Known(index),
            None => Key::Other(v),
        })
    }
}
