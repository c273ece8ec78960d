//! `handle`: a DNS hostname with at least two labels.

use super::{Format, FormatError, Reason, borrow_str, invalid_char, string_conversions};

/// The longest handle accepted, in bytes.
pub(crate) const MAX_LEN: usize = 253;
/// The longest label (dot-separated part) accepted, in bytes.
pub(crate) const MAX_LABEL_LEN: usize = 63;

/// A handle: a DNS hostname (ASCII letters, digits and hyphens; at least two labels of 1–63
/// characters, no hyphen at either end of a label, a top-level domain that starts with a
/// letter, at most 253 characters).
///
/// Handles are case-insensitive; the value is normalised to lower case on construction.
/// Reserved top-level domains (`.local`, `.test`, `.onion`, …) are syntactically valid.
///
/// ```
/// use atlex_types::Handle;
/// let handle = Handle::new("Alice.BSKY.social")?;
/// assert_eq!(handle.as_str(), "alice.bsky.social");
/// assert!(Handle::new("alice").is_err());
/// assert!(Handle::new("alice.0test").is_err());
/// # Ok::<(), atlex_types::FormatError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(String);

impl Handle {
    /// Validates `value` and normalises it to lower case.
    pub fn new(value: impl Into<String>) -> Result<Self, FormatError> {
        let mut value = value.into();
        match check(&value) {
            Ok(()) => {
                value.make_ascii_lowercase();
                Ok(Handle(value))
            }
            Err(reason) => Err(FormatError::new(Format::Handle, &value, reason)),
        }
    }

    /// For the `handle!` macro only: wraps a literal that was validated and lower-cased at
    /// compile time.
    #[doc(hidden)]
    pub fn __from_literal(value: &'static str) -> Self {
        Handle(value.to_owned())
    }

    /// Wraps a value already known to be valid (a part of a valid AT URI), lower-cased.
    pub(crate) fn from_checked(value: &str) -> Self {
        Handle(value.to_ascii_lowercase())
    }

    /// The string form (lower case).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The string form, by value.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The top-level domain (`"social"` for `alice.bsky.social`).
    pub fn tld(&self) -> &str {
        self.0.rsplit('.').next().unwrap_or_default()
    }
}

string_conversions!(Handle, "a handle string");
borrow_str!(Handle);

pub(crate) fn check(value: &str) -> Result<(), Reason> {
    if value.is_empty() {
        return Err("empty".into());
    }
    if value.len() > MAX_LEN {
        return Err(format!("longer than {MAX_LEN} bytes").into());
    }
    let mut labels = 0usize;
    let mut start = 0usize;
    let mut last_label_first = b'a';
    for label in value.as_bytes().split(|&b| b == b'.') {
        labels += 1;
        check_label(value, start, label)?;
        last_label_first = label.first().copied().unwrap_or(b'a');
        start += label.len() + 1;
    }
    if labels < 2 {
        return Err("must have at least two labels (a dotless name is not a handle)".into());
    }
    if !last_label_first.is_ascii_alphabetic() {
        return Err("top-level domain must start with a letter".into());
    }
    Ok(())
}

/// Checks one hostname label that starts at byte `start` of `value`.
pub(crate) fn check_label(value: &str, start: usize, label: &[u8]) -> Result<(), Reason> {
    let (Some(&first), Some(&last)) = (label.first(), label.last()) else {
        return Err("empty label".into());
    };
    if label.len() > MAX_LABEL_LEN {
        return Err(format!("label longer than {MAX_LABEL_LEN} bytes").into());
    }
    for (i, &b) in label.iter().enumerate() {
        if !(b.is_ascii_alphanumeric() || b == b'-') {
            return Err(invalid_char(value, start + i, "label"));
        }
    }
    if first == b'-' || last == b'-' {
        return Err("label starts or ends with a hyphen".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(value: &str) -> String {
        Handle::new(value).unwrap_err().reason().to_owned()
    }

    #[test]
    fn normalises_to_lower_case() {
        let h = Handle::new("XX.LCS.MIT.EDU").unwrap();
        assert_eq!(h.as_str(), "xx.lcs.mit.edu");
        assert_eq!(h, Handle::new("xx.lcs.mit.edu").unwrap());
        let h: Handle = serde_json::from_str(r#""John.Test""#).unwrap();
        assert_eq!(h.as_str(), "john.test");
    }

    #[test]
    fn labels() {
        assert_eq!(reason("a..b"), "empty label");
        assert_eq!(reason(".john.test"), "empty label");
        assert_eq!(reason("john.test."), "empty label");
        assert_eq!(reason("john-.test"), "label starts or ends with a hyphen");
        assert_eq!(reason("-john.test"), "label starts or ends with a hyphen");
        assert_eq!(reason("jo_hn.test"), "invalid character '_' in label");
        assert_eq!(reason("bücher.test"), "invalid character 'ü' in label");
        assert_eq!(reason(" john.test"), "invalid character ' ' in label");
        Handle::new("john.t--t").unwrap();
        Handle::new("sta---ck.com").unwrap();
    }

    #[test]
    fn label_length() {
        Handle::new(format!("short.{}.test", "o".repeat(63))).unwrap();
        assert_eq!(
            reason(&format!("short.{}.test", "o".repeat(64))),
            "label longer than 63 bytes"
        );
    }

    #[test]
    fn total_length() {
        let ok = format!("b{}.test", vec!["a".repeat(61); 4].join("."));
        assert_eq!(ok.len(), 253);
        Handle::new(ok.clone()).unwrap();
        assert_eq!(reason(&format!("b{ok}")), "longer than 253 bytes");
    }

    #[test]
    fn at_least_two_labels() {
        assert!(reason("org").starts_with("must have at least two labels"));
    }

    #[test]
    fn tld_starts_with_letter() {
        assert_eq!(
            reason("john.0"),
            "top-level domain must start with a letter"
        );
        assert_eq!(
            reason("127.0.0.1"),
            "top-level domain must start with a letter"
        );
        assert_eq!(
            reason("thing.0aa"),
            "top-level domain must start with a letter"
        );
        Handle::new("8.cn").unwrap();
        Handle::new("thing.a01").unwrap();
    }

    #[test]
    fn reserved_tlds_pass_syntax() {
        for ok in [
            "laptop.local",
            "laptop.arpa",
            "expyuzz4wqqyqhjn.onion",
            "x.test",
            "xn--ls8h.test",
        ] {
            Handle::new(ok).unwrap();
        }
        assert_eq!(Handle::new("alice.bsky.social").unwrap().tld(), "social");
    }
}
