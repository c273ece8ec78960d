//! [`Nullable`]: a lexicon field listed in `nullable`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The value of a field listed in a lexicon's `nullable`: explicitly `null`, or a value.
///
/// An optional nullable field is `Option<Nullable<T>>`, which keeps the three states the spec
/// distinguishes apart: absent (`None`), `null` (`Some(Nullable::Null)`) and a value
/// (`Some(Nullable::Value(v))`). A required nullable field is `Nullable<T>`: always written,
/// possibly as `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Nullable<T> {
    /// `null`.
    #[default]
    Null,
    /// A value.
    Value(T),
}

impl<T> Nullable<T> {
    /// The value, if not null.
    pub fn as_ref(&self) -> Option<&T> {
        match self {
            Nullable::Null => None,
            Nullable::Value(value) => Some(value),
        }
    }

    /// Converts into an `Option`, losing nothing: `Null` becomes `None`.
    pub fn into_option(self) -> Option<T> {
        match self {
            Nullable::Null => None,
            Nullable::Value(value) => Some(value),
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Nullable::Null)
    }
}

impl<T> From<Option<T>> for Nullable<T> {
    fn from(value: Option<T>) -> Self {
        match value {
            None => Nullable::Null,
            Some(value) => Nullable::Value(value),
        }
    }
}

impl<T> From<T> for Nullable<T> {
    fn from(value: T) -> Self {
        Nullable::Value(value)
    }
}

impl<T: Serialize> Serialize for Nullable<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Nullable::Null => serializer.serialize_none(),
            Nullable::Value(value) => serializer.serialize_some(value),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Nullable<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(deserializer).map(Nullable::from)
    }
}

impl<T: crate::validate::Validate> crate::validate::Validate for Nullable<T> {
    fn validate_into(&self, validator: &mut crate::validate::Validator) {
        if let Nullable::Value(value) = self {
            value.validate_into(validator);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_and_value_round_trip() {
        let null: Nullable<i64> = serde_json::from_str("null").unwrap();
        assert_eq!(null, Nullable::Null);
        let value: Nullable<i64> = serde_json::from_str("3").unwrap();
        assert_eq!(value, Nullable::Value(3));
        assert_eq!(serde_json::to_string(&null).unwrap(), "null");
        assert_eq!(serde_json::to_string(&value).unwrap(), "3");
        assert!(serde_json::from_str::<Nullable<i64>>("\"x\"").is_err());
        assert_eq!(Nullable::from(Some(1)).into_option(), Some(1));
        assert!(Nullable::<i64>::from(None).is_null());
    }
}
