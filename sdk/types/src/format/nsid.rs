//! `nsid`: a namespaced identifier, `reversed.domain.authority.name`.

use super::{Format, FormatError, Reason, borrow_str, invalid_char, string_conversions};

/// The longest NSID accepted, in bytes.
pub(crate) const MAX_LEN: usize = 317;
/// The longest segment accepted, in bytes.
pub(crate) const MAX_SEGMENT_LEN: usize = 63;

/// A namespaced identifier such as `app.bsky.feed.post`: a reversed domain authority of at
/// least two segments followed by a name.
///
/// * the first segment starts with a letter; authority segments are letters, digits and
///   hyphens without a hyphen at either end (later ones may start with a digit);
/// * the name starts with a letter and has only letters and digits;
/// * every segment is 1–63 characters and the whole NSID at most 317. (The spec's 253-character
///   limit on the authority is not enforced, like in the reference implementations.)
///
/// ```
/// use atlex_types::Nsid;
/// let nsid = Nsid::new("app.bsky.feed.post")?;
/// assert_eq!(nsid.authority(), "app.bsky.feed");
/// assert_eq!(nsid.name(), "post");
/// assert!(Nsid::new("com.example").is_err());
/// # Ok::<(), atlex_types::FormatError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nsid(String);

impl Nsid {
    /// Validates and wraps `value`.
    pub fn new(value: impl Into<String>) -> Result<Self, FormatError> {
        let value = value.into();
        match check(&value) {
            Ok(()) => Ok(Nsid(value)),
            Err(reason) => Err(FormatError::new(Format::Nsid, &value, reason)),
        }
    }

    /// For the `nsid!` macro only: wraps a literal that was validated at compile time.
    #[doc(hidden)]
    pub fn __from_literal(value: &'static str) -> Self {
        Nsid(value.to_owned())
    }

    /// Wraps a value already known to be valid (a part of a valid AT URI).
    pub(crate) fn from_checked(value: &str) -> Self {
        Nsid(value.to_owned())
    }

    /// The string form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The string form, by value.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The domain authority as written, i.e. everything before the last `.`
    /// (`"app.bsky.feed"` for `app.bsky.feed.post`).
    pub fn authority(&self) -> &str {
        self.0
            .rsplit_once('.')
            .map_or("", |(authority, _)| authority)
    }

    /// The name, i.e. the last segment (`"post"` for `app.bsky.feed.post`).
    pub fn name(&self) -> &str {
        self.0
            .rsplit_once('.')
            .map_or(self.0.as_str(), |(_, name)| name)
    }
}

string_conversions!(Nsid, "an NSID string");
borrow_str!(Nsid);

pub(crate) fn check(value: &str) -> Result<(), Reason> {
    if value.len() > MAX_LEN {
        return Err(format!("longer than {MAX_LEN} bytes").into());
    }
    let Some((authority, name)) = value.rsplit_once('.') else {
        return Err("must have at least three segments".into());
    };
    let mut segments = 0usize;
    let mut start = 0usize;
    for segment in authority.as_bytes().split(|&b| b == b'.') {
        check_authority_segment(value, start, segment, segments == 0)?;
        segments += 1;
        start += segment.len() + 1;
    }
    if segments < 2 {
        return Err("must have at least three segments".into());
    }
    check_name(value, start, name.as_bytes())
}

fn check_authority_segment(
    value: &str,
    start: usize,
    segment: &[u8],
    first: bool,
) -> Result<(), Reason> {
    let (Some(&head), Some(&tail)) = (segment.first(), segment.last()) else {
        return Err("empty segment".into());
    };
    if segment.len() > MAX_SEGMENT_LEN {
        return Err(format!("segment longer than {MAX_SEGMENT_LEN} bytes").into());
    }
    for (i, &b) in segment.iter().enumerate() {
        if !(b.is_ascii_alphanumeric() || b == b'-') {
            return Err(invalid_char(value, start + i, "domain authority"));
        }
    }
    if first && !head.is_ascii_alphabetic() {
        return Err("first segment must start with a letter".into());
    }
    if head == b'-' || tail == b'-' {
        return Err("authority segment starts or ends with a hyphen".into());
    }
    Ok(())
}

fn check_name(value: &str, start: usize, name: &[u8]) -> Result<(), Reason> {
    let Some(&head) = name.first() else {
        return Err("empty name".into());
    };
    if name.len() > MAX_SEGMENT_LEN {
        return Err(format!("name longer than {MAX_SEGMENT_LEN} bytes").into());
    }
    for (i, &b) in name.iter().enumerate() {
        if !b.is_ascii_alphanumeric() {
            return Err(invalid_char(value, start + i, "name"));
        }
    }
    if !head.is_ascii_alphabetic() {
        return Err("name must start with a letter".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(value: &str) -> String {
        Nsid::new(value).unwrap_err().reason().to_owned()
    }

    #[test]
    fn segments() {
        assert_eq!(reason("com.example"), "must have at least three segments");
        assert_eq!(reason("example"), "must have at least three segments");
        assert_eq!(reason("one.two..three"), "empty segment");
        assert_eq!(reason(".one.two.three"), "empty segment");
        assert_eq!(reason("a."), "must have at least three segments");
        assert_eq!(reason("a.b."), "empty name");
    }

    #[test]
    fn first_segment_starts_with_letter_later_ones_may_not() {
        assert_eq!(
            reason("0two.example.foo"),
            "first segment must start with a letter"
        );
        Nsid::new("one.2.three").unwrap();
        Nsid::new("org.4chan.lex.getThing").unwrap();
    }

    #[test]
    fn hyphens() {
        assert_eq!(
            reason("com.example-.foo"),
            "authority segment starts or ends with a hyphen"
        );
        assert_eq!(
            reason("com.-example.foo"),
            "authority segment starts or ends with a hyphen"
        );
        assert_eq!(reason("a-0.b-1.c-3"), "invalid character '-' in name");
        Nsid::new("a-0.b-1.c").unwrap();
    }

    #[test]
    fn name_rules() {
        assert_eq!(
            reason("com.example.fooBar.2"),
            "name must start with a letter"
        );
        assert_eq!(
            reason("com.atproto.feed.p_st"),
            "invalid character '_' in name"
        );
        assert_eq!(reason("one.two.three "), "invalid character ' ' in name");
        Nsid::new("com.example.f00").unwrap();
        Nsid::new("com.example.fooBarV2").unwrap();
    }

    #[test]
    fn non_ascii() {
        assert_eq!(
            reason("com.exa💩ple.thing"),
            "invalid character '💩' in domain authority"
        );
    }

    #[test]
    fn segment_length() {
        Nsid::new(format!("com.{}.foo", "o".repeat(63))).unwrap();
        assert_eq!(
            reason(&format!("com.{}.foo", "o".repeat(64))),
            "segment longer than 63 bytes"
        );
        Nsid::new(format!("com.example.{}", "o".repeat(63))).unwrap();
        assert_eq!(
            reason(&format!("com.example.{}", "o".repeat(64))),
            "name longer than 63 bytes"
        );
    }

    #[test]
    fn only_total_length_is_limited() {
        // An authority of 283 bytes (over the spec's 253) is accepted, as in the interop set.
        let authority = vec!["middle"; 40].join(".");
        let ok = format!("com.{authority}.foo");
        assert!(ok.len() <= MAX_LEN && authority.len() > 253, "{}", ok.len());
        Nsid::new(ok).unwrap();
        let too_long = format!("com.{}.foo", vec!["middle"; 45].join("."));
        assert_eq!(reason(&too_long), "longer than 317 bytes");
    }

    #[test]
    fn accessors() {
        let nsid = Nsid::new("com.atproto.repo.strongRef").unwrap();
        assert_eq!(nsid.authority(), "com.atproto.repo");
        assert_eq!(nsid.name(), "strongRef");
    }
}
