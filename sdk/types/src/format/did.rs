//! `did`: `did:METHOD:IDENTIFIER`.

use super::{Format, FormatError, Reason, borrow_str, invalid_char, string_conversions};

/// The longest DID accepted, in bytes.
pub(crate) const MAX_LEN: usize = 2048;

/// A decentralized identifier: `did:` + a lower-case method + `:` + a method-specific id.
///
/// Any method is accepted (`did:plc:…`, `did:web:…`, `did:key:…`); `%` escapes are not decoded
/// or checked. At most 2048 characters.
///
/// ```
/// use atlex_types::Did;
/// let did: Did = "did:plc:7iza6de2dwap2sbkpav7c6c6".parse()?;
/// assert_eq!(did.method(), "plc");
/// assert_eq!(did.identifier(), "7iza6de2dwap2sbkpav7c6c6");
/// assert!(Did::new("did:METHOD:val").is_err());
/// # Ok::<(), atlex_types::FormatError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Did(String);

impl Did {
    /// Validates and wraps `value`.
    pub fn new(value: impl Into<String>) -> Result<Self, FormatError> {
        let value = value.into();
        match check(&value) {
            Ok(()) => Ok(Did(value)),
            Err(reason) => Err(FormatError::new(Format::Did, &value, reason)),
        }
    }

    /// For the `did!` macro only: wraps a literal that was validated at compile time.
    #[doc(hidden)]
    pub fn __from_literal(value: &'static str) -> Self {
        Did(value.to_owned())
    }

    /// Wraps a value already known to be valid (a part of a valid AT URI).
    pub(crate) fn from_checked(value: &str) -> Self {
        Did(value.to_owned())
    }

    /// The string form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The string form, by value.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The DID method (`"plc"` for `did:plc:…`).
    pub fn method(&self) -> &str {
        self.split().0
    }

    /// The method-specific identifier (everything after `did:METHOD:`).
    pub fn identifier(&self) -> &str {
        self.split().1
    }

    fn split(&self) -> (&str, &str) {
        let rest = self.0.get(4..).unwrap_or_default();
        rest.split_once(':').unwrap_or((rest, ""))
    }
}

string_conversions!(Did, "a DID string");
borrow_str!(Did);

pub(crate) fn check(value: &str) -> Result<(), Reason> {
    if value.len() > MAX_LEN {
        return Err(format!("longer than {MAX_LEN} bytes").into());
    }
    let Some(rest) = value.strip_prefix("did:") else {
        return Err("must start with \"did:\"".into());
    };
    let Some(colon) = rest.bytes().position(|b| b == b':') else {
        return Err("missing ':' after the method".into());
    };
    let (method, id) = (&rest.as_bytes()[..colon], &rest.as_bytes()[colon + 1..]);
    if method.is_empty() {
        return Err("empty method".into());
    }
    if !method.iter().all(u8::is_ascii_lowercase) {
        return Err("method must be lower-case letters".into());
    }
    let Some(&last) = id.last() else {
        return Err("empty method-specific identifier".into());
    };
    let id_start = 4 + colon + 1;
    for (i, &b) in id.iter().enumerate() {
        if !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'%' | b'-')) {
            return Err(invalid_char(value, id_start + i, "identifier"));
        }
    }
    if matches!(last, b':' | b'%') {
        return Err(format!("must not end with {:?}", last as char).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(value: &str) -> String {
        Did::new(value).unwrap_err().reason().to_owned()
    }

    #[test]
    fn accepts_any_method_and_id_characters() {
        for ok in [
            "did:plc:7iza6de2dwap2sbkpav7c6c6",
            "did:web:localhost%3A1234",
            "did:m:v",
            "did:method::::val",
            "did:method:-:_:.:%ab",
            "did:method:.",
        ] {
            Did::new(ok).unwrap();
        }
    }

    #[test]
    fn method_is_lower_case_letters() {
        assert_eq!(
            reason("did:METHOD:val"),
            "method must be lower-case letters"
        );
        assert_eq!(reason("did:m123:val"), "method must be lower-case letters");
        assert_eq!(reason("did::val"), "empty method");
    }

    #[test]
    fn prefix_and_structure() {
        assert_eq!(reason("DID:method:val"), "must start with \"did:\"");
        assert_eq!(reason("did:methodval"), "missing ':' after the method");
        assert_eq!(reason("did:method:"), "empty method-specific identifier");
    }

    #[test]
    fn must_not_end_with_colon_or_percent() {
        assert_eq!(reason("did:method:val:"), "must not end with ':'");
        assert_eq!(reason("did:method:val%"), "must not end with '%'");
    }

    #[test]
    fn rejects_path_query_fragment_characters() {
        assert_eq!(
            reason("did:method:val/two"),
            "invalid character '/' in identifier"
        );
        assert_eq!(
            reason("did:method:val?two"),
            "invalid character '?' in identifier"
        );
        assert_eq!(
            reason("did:method:val#two"),
            "invalid character '#' in identifier"
        );
        assert_eq!(
            reason("did:method:vül"),
            "invalid character 'ü' in identifier"
        );
    }

    #[test]
    fn max_length_2048() {
        let ok = format!("did:plc:{}", "a".repeat(MAX_LEN - 8));
        Did::new(ok.clone()).unwrap();
        assert_eq!(reason(&format!("{ok}a")), "longer than 2048 bytes");
    }

    #[test]
    fn accessors() {
        let did = Did::new("did:web:example.com:user:alice").unwrap();
        assert_eq!(did.method(), "web");
        assert_eq!(did.identifier(), "example.com:user:alice");
    }
}
