//! Lexicon string formats as validated newtypes.
//!
//! Every format of the lexicon language (`did`, `handle`, `at-identifier`, `nsid`, `at-uri`,
//! `cid`, `datetime`, `tid`, `record-key`, `language`, `uri`) has a newtype here that can only
//! hold a valid value. Each of them implements `FromStr`, `TryFrom<&str>`, `TryFrom<String>`,
//! `Display`, `AsRef<str>`, `Eq`/`Ord`/`Hash`, serialises as a plain string and rejects invalid
//! values when deserialised, with a [`FormatError`] that names the format, the value and the
//! reason.
//!
//! [`validate`] applies the same rules to a plain `&str` without allocating (except for
//! `language`, see below) and is what the lexicon data validator uses.
//!
//! # Rules
//!
//! The checks are hand-written byte-level code rather than regular expressions because they
//! run in `Deserialize` for every record the SDK decodes. They implement the "most permissive
//! identifier syntax" used by lexicon validation, checked against the official interop vectors:
//!
//! * NSID: only the total length (≤ 317) and the per-segment length (1–63) are limited; the
//!   domain authority may be longer than 253 characters (an interop-valid vector has 283).
//! * CID: a loose syntax check (8–256 characters of `[a-zA-Z0-9+=]`, no CIDv0 `Qm…`), not a
//!   full multibase/multihash decode: the `cid` crate rejects interop-valid CIDs.
//! * Datetime: RFC 3339 ∩ ISO 8601 syntax plus a calendar check; `:60` leap seconds and the
//!   `-00:00` offset are rejected, the UTC-normalised year must be 0–9999.
//! * URI: an RFC 3986 scheme, `:`, then at least one printable non-space ASCII character.
//! * Language: the RFC 5646 grammar via the maintained [`language_tags`] crate (which also
//!   knows the grandfathered tags), plus a lower-case 2–3 letter primary subtag and no
//!   duplicate variant or extension singleton. `language_tags` allocates the parsed tag, which
//!   is the only allocation on a successful check.
//!
//! No input makes any of these functions panic.

use std::borrow::Cow;
use std::fmt;

mod at_identifier;
mod at_uri;
mod cid;
mod datetime;
mod did;
mod handle;
mod language;
mod nsid;
mod record_key;
mod tid;
mod uri;

pub use at_identifier::AtIdentifier;
pub use at_uri::{AtUri, AtUriAuthority};
pub use cid::Cid;
pub use datetime::Datetime;
pub use did::Did;
pub use handle::Handle;
pub use language::Language;
pub use nsid::Nsid;
pub use record_key::RecordKey;
pub use tid::{Tid, TidGenerator};
pub use uri::Uri;

/// Why a value is invalid: a static message in the common case, built only on failure.
pub(crate) type Reason = Cow<'static, str>;

/// The eleven lexicon string formats (`at-identifier` is a DID or a handle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// `did`
    Did,
    /// `handle`
    Handle,
    /// `at-identifier`
    AtIdentifier,
    /// `nsid`
    Nsid,
    /// `at-uri`
    AtUri,
    /// `cid`
    Cid,
    /// `datetime`
    Datetime,
    /// `tid`
    Tid,
    /// `record-key`
    RecordKey,
    /// `language`
    Language,
    /// `uri`
    Uri,
}

impl Format {
    /// Every format, in declaration order.
    pub const ALL: [Format; 11] = [
        Format::Did,
        Format::Handle,
        Format::AtIdentifier,
        Format::Nsid,
        Format::AtUri,
        Format::Cid,
        Format::Datetime,
        Format::Tid,
        Format::RecordKey,
        Format::Language,
        Format::Uri,
    ];

    /// The lexicon name of the format (`"at-uri"`, `"record-key"`, …).
    ///
    /// ```
    /// use atlex_types::Format;
    /// assert_eq!(Format::RecordKey.lexicon_name(), "record-key");
    /// ```
    pub fn lexicon_name(self) -> &'static str {
        match self {
            Format::Did => "did",
            Format::Handle => "handle",
            Format::AtIdentifier => "at-identifier",
            Format::Nsid => "nsid",
            Format::AtUri => "at-uri",
            Format::Cid => "cid",
            Format::Datetime => "datetime",
            Format::Tid => "tid",
            Format::RecordKey => "record-key",
            Format::Language => "language",
            Format::Uri => "uri",
        }
    }

    /// Parses a lexicon `format` value; `None` for an unknown format.
    ///
    /// ```
    /// use atlex_types::Format;
    /// assert_eq!(Format::from_lexicon_name("at-uri"), Some(Format::AtUri));
    /// assert_eq!(Format::from_lexicon_name("AtUri"), None);
    /// ```
    pub fn from_lexicon_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.lexicon_name() == name)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.lexicon_name())
    }
}

/// How much of an invalid value an error keeps and shows, in bytes (cut at a char boundary).
const SHOWN_VALUE_BYTES: usize = 80;

/// A string that is not a valid value of a format: which format, the value, and why.
///
/// The message reads `invalid handle "a..b": empty label`. Values longer than 80 bytes are cut
/// in the message (and in [`FormatError::value`]), followed by `…` and the full length.
///
/// ```
/// use atlex_types::{Format, Handle};
/// let err = Handle::new("a..b").unwrap_err();
/// assert_eq!(err.format(), Format::Handle);
/// assert_eq!(err.to_string(), r#"invalid handle "a..b": empty label"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    format: Format,
    value: String,
    value_len: usize,
    reason: Reason,
}

impl FormatError {
    pub(crate) fn new(format: Format, value: &str, reason: impl Into<Reason>) -> Self {
        let mut end = value.len().min(SHOWN_VALUE_BYTES);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        FormatError {
            format,
            value: value.get(..end).unwrap_or_default().to_owned(),
            value_len: value.len(),
            reason: reason.into(),
        }
    }

    /// The same error, reported against another format (an at-identifier that is not a handle).
    pub(crate) fn with_format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// The format the value was checked against.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The rejected value, cut to its first 80 bytes when longer (see [`Self::value_len`]).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The length of the full rejected value, in bytes.
    pub fn value_len(&self) -> usize {
        self.value_len
    }

    /// Why the value is invalid (`"empty label"`, `"month 13 out of range"`, …).
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} \"{}", self.format, self.value.escape_debug())?;
        if self.value_len > self.value.len() {
            write!(f, "…\" ({} bytes)", self.value_len)?;
        } else {
            f.write_str("\"")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for FormatError {}

/// Checks `value` against `format` with the full (parse-level) rules used by lexicon validation.
///
/// These are exactly the rules of the newtypes' constructors, without building the value.
///
/// ```
/// use atlex_types::format::{validate, Format};
/// assert!(validate(Format::Nsid, "app.bsky.feed.post").is_ok());
/// assert!(validate(Format::Datetime, "1985-04-00T23:20:50.123Z").is_err());
/// ```
pub fn validate(format: Format, value: &str) -> Result<(), FormatError> {
    let checked = match format {
        Format::Did => did::check(value),
        Format::Handle => handle::check(value),
        Format::AtIdentifier => at_identifier::check(value),
        Format::Nsid => nsid::check(value),
        Format::AtUri => at_uri::check(value).map(drop),
        Format::Cid => cid::check(value),
        Format::Datetime => datetime::parse(value).map(drop),
        Format::Tid => tid::check(value),
        Format::RecordKey => record_key::check(value),
        Format::Language => language::check(value),
        Format::Uri => uri::check(value),
    };
    checked.map_err(|reason| FormatError::new(format, value, reason))
}

/// Describes the byte at `index` of `value` for an error message (`'@'`, `'ü'`, `' '`).
pub(crate) fn invalid_char(value: &str, index: usize, what: &str) -> Reason {
    match value.get(index..).and_then(|rest| rest.chars().next()) {
        Some(c) => format!("invalid character {c:?} in {what}").into(),
        None => format!("invalid byte in {what}").into(),
    }
}

/// Implements the string conversions, comparisons with `str` and serde for a newtype that has
/// `new(impl Into<String>) -> Result<Self, FormatError>`, `as_str()` and `into_string()`.
macro_rules! string_conversions {
    ($name:ident, $expecting:literal) => {
        impl ::std::str::FromStr for $name {
            type Err = $crate::format::FormatError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl ::std::convert::TryFrom<&str> for $name {
            type Error = $crate::format::FormatError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl ::std::convert::TryFrom<String> for $name {
            type Error = $crate::format::FormatError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::convert::AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl ::std::convert::From<$name> for String {
            fn from(value: $name) -> String {
                value.into_string()
            }
        }

        impl ::std::cmp::PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl ::std::cmp::PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl ::std::cmp::PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.as_str()
            }
        }

        impl ::std::cmp::PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.as_str()
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                struct Visitor;
                impl ::serde::de::Visitor<'_> for Visitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str($expecting)
                    }
                    // A borrowed or transient `&str` is copied once, by `new`.
                    fn visit_str<E: ::serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::new(v).map_err(E::custom)
                    }
                    // An owned `String` is taken as is.
                    fn visit_string<E: ::serde::de::Error>(self, v: String) -> Result<$name, E> {
                        $name::new(v).map_err(E::custom)
                    }
                }
                deserializer.deserialize_string(Visitor)
            }
        }
    };
}

/// `Borrow<str>`, for the newtypes whose `Eq`, `Ord` and `Hash` are exactly those of the string
/// (so a `HashMap<Did, _>` or `BTreeMap<Did, _>` can be queried with a `&str`).
macro_rules! borrow_str {
    ($name:ident) => {
        impl ::std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                self.as_str()
            }
        }
    };
}

pub(crate) use borrow_str;
pub(crate) use string_conversions;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexicon_names_round_trip() {
        for format in Format::ALL {
            assert_eq!(
                Format::from_lexicon_name(format.lexicon_name()),
                Some(format)
            );
            assert_eq!(format.to_string(), format.lexicon_name());
        }
        assert_eq!(
            Format::from_lexicon_name("at-identifier"),
            Some(Format::AtIdentifier)
        );
        assert_eq!(
            Format::from_lexicon_name("record-key"),
            Some(Format::RecordKey)
        );
        assert_eq!(Format::from_lexicon_name("uri-reference"), None);
        assert_eq!(Format::from_lexicon_name(""), None);
    }

    #[test]
    fn error_message_names_format_value_and_reason() {
        let err = validate(Format::Handle, "a..b").unwrap_err();
        assert_eq!(err.to_string(), r#"invalid handle "a..b": empty label"#);
        assert_eq!(err.format(), Format::Handle);
        assert_eq!(err.value(), "a..b");
        assert_eq!(err.reason(), "empty label");
    }

    #[test]
    fn error_message_truncates_long_values() {
        let long = format!(
            "at://did:plc:asdf123/com.atproto.feed.post/{}",
            "o".repeat(8200)
        );
        let err = validate(Format::AtUri, &long).unwrap_err();
        assert_eq!(err.value().len(), SHOWN_VALUE_BYTES);
        assert_eq!(err.value_len(), long.len());
        let msg = err.to_string();
        assert!(msg.len() < 200, "{msg}");
        assert!(
            msg.contains(&format!("…\" ({} bytes)", long.len())),
            "{msg}"
        );
    }

    #[test]
    fn error_message_truncates_at_char_boundary() {
        let long = "é".repeat(100);
        let err = validate(Format::Handle, &long).unwrap_err();
        assert_eq!(err.value(), "é".repeat(40));
    }

    #[test]
    fn error_message_escapes_control_characters() {
        let err = validate(Format::Tid, "3jzfcijpj2z2\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with(r#"invalid tid "3jzfcijpj2z2\n""#),
            "{err}"
        );
    }
}
