//! Lexicon string formats as validated newtypes.
//!
//! INTERFACE SKELETON — to be implemented (owner: string-formats work).
//! Every type: `FromStr`, `TryFrom<&str>`, `TryFrom<String>`, `Display`, `AsRef<str>`,
//! `Eq`/`Ord`/`Hash`, `Serialize` as a string, `Deserialize` that rejects invalid values.

use std::fmt;

/// The eleven lexicon string formats (plus `at-identifier`, which is a DID or a handle).
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
    /// The lexicon name of the format (`"at-uri"`, `"record-key"`, …).
    pub fn lexicon_name(self) -> &'static str {
        todo!()
    }
    /// Parses a lexicon `format` value; `None` for an unknown format.
    pub fn from_lexicon_name(name: &str) -> Option<Format> {
        let _ = name;
        todo!()
    }
}

/// A string that is not a valid value of a format: which format, the value, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    _private: (),
}

impl FormatError {
    /// The format the value was checked against.
    pub fn format(&self) -> Format {
        todo!()
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        todo!()
    }
}

impl std::error::Error for FormatError {}

/// Checks `value` against `format` with the full (parse-level) rules used by lexicon validation.
pub fn validate(format: Format, value: &str) -> Result<(), FormatError> {
    let _ = (format, value);
    todo!()
}

macro_rules! skeleton_newtype {
    ($($name:ident),*) => {$(
        #[doc = concat!("A validated `", stringify!($name), "`.")]
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);
        impl $name {
            /// Validates and wraps `value`.
            pub fn new(value: impl Into<String>) -> Result<Self, FormatError> {
                let value = value.into();
                validate(Format::$name, &value)?;
                Ok(Self(value))
            }
            /// The string form.
            pub fn as_str(&self) -> &str { &self.0 }
        }
    )*};
}
skeleton_newtype!(Did, Handle, Nsid, AtUri, Cid, Datetime, Tid, RecordKey, Language, Uri);

/// A DID or a handle.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AtIdentifier {
    /// A DID.
    Did(Did),
    /// A handle.
    Handle(Handle),
}
