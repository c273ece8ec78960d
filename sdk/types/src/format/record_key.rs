//! `record-key`: the key of a record in a repository collection.

use super::{Format, FormatError, Reason, borrow_str, invalid_char, string_conversions};

/// The longest record key accepted, in bytes.
pub(crate) const MAX_LEN: usize = 512;

/// A record key: 1–512 characters of `A-Z a-z 0-9 . - _ : ~`, and not `.` or `..`.
///
/// ```
/// use atlex_types::RecordKey;
/// assert!(RecordKey::new("self").is_ok());
/// assert!(RecordKey::new("3jzfcijpj2z2a").is_ok());
/// assert!(RecordKey::new("..").is_err());
/// assert!(RecordKey::new("a/b").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordKey(String);

impl RecordKey {
    /// Validates and wraps `value`.
    pub fn new(value: impl Into<String>) -> Result<Self, FormatError> {
        let value = value.into();
        match check(&value) {
            Ok(()) => Ok(RecordKey(value)),
            Err(reason) => Err(FormatError::new(Format::RecordKey, &value, reason)),
        }
    }

    /// For the `record_key!` macro only: wraps a literal that was validated at compile time.
    #[doc(hidden)]
    pub fn __from_literal(value: &'static str) -> Self {
        RecordKey(value.to_owned())
    }

    /// Wraps a value already known to be valid (a part of a valid AT URI).
    pub(crate) fn from_checked(value: &str) -> Self {
        RecordKey(value.to_owned())
    }

    /// The string form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The string form, by value.
    pub fn into_string(self) -> String {
        self.0
    }
}

string_conversions!(RecordKey, "a record key string");
borrow_str!(RecordKey);

impl From<super::Tid> for RecordKey {
    /// Every TID is a valid record key.
    fn from(tid: super::Tid) -> Self {
        RecordKey(tid.into_string())
    }
}

pub(crate) fn check(value: &str) -> Result<(), Reason> {
    if value.is_empty() {
        return Err("empty".into());
    }
    if value.len() > MAX_LEN {
        return Err(format!("longer than {MAX_LEN} bytes").into());
    }
    for (i, b) in value.bytes().enumerate() {
        if !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'~')) {
            return Err(invalid_char(value, i, "record key"));
        }
    }
    if value == "." || value == ".." {
        return Err("\".\" and \"..\" are not allowed".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(value: &str) -> String {
        RecordKey::new(value).unwrap_err().reason().to_owned()
    }

    #[test]
    fn characters() {
        for ok in [
            "self", "~1.2-3_", ":", "-", "_", "~", "...", "self.", "lang:", "pre:fix",
        ] {
            RecordKey::new(ok).unwrap();
        }
        assert_eq!(reason("alpha/beta"), "invalid character '/' in record key");
        assert_eq!(reason("dHJ1ZQ=="), "invalid character '=' in record key");
        assert_eq!(reason("%23"), "invalid character '%' in record key");
    }

    #[test]
    fn hidden_interop_case_hash_extra() {
        // `#extra` is in recordkey_syntax_invalid.txt but reads as a comment there.
        assert_eq!(reason("#extra"), "invalid character '#' in record key");
    }

    #[test]
    fn dot_and_double_dot() {
        assert_eq!(reason("."), "\".\" and \"..\" are not allowed");
        assert_eq!(reason(".."), "\".\" and \"..\" are not allowed");
    }

    #[test]
    fn length() {
        assert_eq!(reason(""), "empty");
        RecordKey::new("o".repeat(512)).unwrap();
        assert_eq!(reason(&"o".repeat(513)), "longer than 512 bytes");
    }
}
