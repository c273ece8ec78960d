//! `uri`: a generic URI (`scheme:` + printable ASCII).

use super::{Format, FormatError, Reason, borrow_str, invalid_char, string_conversions};

/// The longest URI accepted, in bytes.
pub(crate) const MAX_LEN: usize = 8192;

/// A URI as accepted by the lexicon `uri` format: an RFC 3986 scheme (a letter, then letters,
/// digits, `+`, `.` or `-`), a `:`, then at least one printable non-space ASCII character; at
/// most 8192 bytes.
///
/// The rest of the URI is not parsed (query, fragment and `%` escapes are allowed as is).
/// The scheme follows RFC 3986 (the lexicon spec's reference), which is slightly wider than
/// the reference Go check (lower-case letters, `.` and `-` only).
///
/// ```
/// use atlex_types::Uri;
/// let uri = Uri::new("https://example.com/path?q=1#frag")?;
/// assert_eq!(uri.scheme(), "https");
/// assert!(Uri::new("example.com").is_err());
/// assert!(Uri::new("https://example.com/a gap").is_err());
/// # Ok::<(), atlex_types::FormatError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uri(String);

impl Uri {
    /// Validates and wraps `value`.
    pub fn new(value: impl Into<String>) -> Result<Self, FormatError> {
        let value = value.into();
        match check(&value) {
            Ok(()) => Ok(Uri(value)),
            Err(reason) => Err(FormatError::new(Format::Uri, &value, reason)),
        }
    }

    /// For the `uri!` macro only: wraps a literal that was validated at compile time.
    #[doc(hidden)]
    pub fn __from_literal(value: &'static str) -> Self {
        Uri(value.to_owned())
    }

    /// The string form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The string form, by value.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The scheme, as written (`"https"`).
    pub fn scheme(&self) -> &str {
        self.0.split_once(':').map_or("", |(scheme, _)| scheme)
    }
}

string_conversions!(Uri, "a URI string");
borrow_str!(Uri);

pub(crate) fn check(value: &str) -> Result<(), Reason> {
    if value.len() > MAX_LEN {
        return Err(format!("longer than {MAX_LEN} bytes").into());
    }
    let Some(colon) = value.bytes().position(|b| b == b':') else {
        return Err("missing scheme (no ':')".into());
    };
    let bytes = value.as_bytes();
    let (scheme, rest) = (&bytes[..colon], &bytes[colon + 1..]);
    match scheme.first() {
        None => return Err("empty scheme".into()),
        Some(b) if !b.is_ascii_alphabetic() => return Err("scheme must start with a letter".into()),
        Some(_) => {}
    }
    for (i, &b) in scheme.iter().enumerate() {
        if !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-')) {
            return Err(invalid_char(value, i, "scheme"));
        }
    }
    if rest.is_empty() {
        return Err("nothing after the scheme".into());
    }
    for (i, &b) in rest.iter().enumerate() {
        if !(b'!'..=b'~').contains(&b) {
            return Err(invalid_char(
                value,
                colon + 1 + i,
                "URI (only printable ASCII, no spaces)",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(value: &str) -> String {
        Uri::new(value).unwrap_err().reason().to_owned()
    }

    #[test]
    fn schemes() {
        for ok in [
            "dns:example.com",
            "content-type:text/plan",
            "microsoft.windows.camera:thing",
            "go://?Mercedes%20Benz",
            "web+ap://example.com",
            "h2:x",
            "HTTPS://EXAMPLE.COM",
        ] {
            Uri::new(ok).unwrap();
        }
        assert_eq!(reason("example.com"), "missing scheme (no ':')");
        assert_eq!(reason("://example.com"), "empty scheme");
        assert_eq!(
            reason(".http://example.com"),
            "scheme must start with a letter"
        );
        assert_eq!(
            reason("-http://example.com"),
            "scheme must start with a letter"
        );
        assert_eq!(reason("127.0.0.1:80"), "scheme must start with a letter");
        assert_eq!(
            reason("ht_tp://example.com"),
            "invalid character '_' in scheme"
        );
        assert_eq!(reason("http:"), "nothing after the scheme");
    }

    #[test]
    fn whitespace_and_non_ascii() {
        assert_eq!(
            reason("https://example.com/path gap"),
            "invalid character ' ' in URI (only printable ASCII, no spaces)"
        );
        assert_eq!(
            reason("  https://example.com/path"),
            "scheme must start with a letter"
        );
        assert!(reason("https://example.com/ü").starts_with("invalid character 'ü'"));
    }

    #[test]
    fn length() {
        let base = "https://example.com/";
        Uri::new(format!("{base}{}", "x".repeat(MAX_LEN - base.len()))).unwrap();
        assert_eq!(
            reason(&format!("{base}{}", "x".repeat(8200))),
            "longer than 8192 bytes"
        );
    }
}
