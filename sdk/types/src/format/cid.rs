//! `cid`: a content identifier in string form (loose syntax check).

use super::{Format, FormatError, Reason, borrow_str, invalid_char, string_conversions};

/// The shortest CID string accepted, in bytes.
pub(crate) const MIN_LEN: usize = 8;
/// The longest CID string accepted, in bytes.
pub(crate) const MAX_LEN: usize = 256;

/// A CID (content identifier) in string form, as used by the lexicon `cid` format.
///
/// This is the loose syntax check of lexicon validation: 8–256 characters of
/// `[a-zA-Z0-9+=]`, not a legacy CIDv0 (`Qm…`). It does not decode the multibase prefix or the
/// multihash: the `cid` crate rejects some CIDs the interop vectors call valid and accepts
/// CIDv0, so it is not used here. Data-model CID links (`{"$link": …}`) are decoded properly
/// by [`crate::CidLink`].
///
/// ```
/// use atlex_types::Cid;
/// assert!(Cid::new("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi").is_ok());
/// assert!(Cid::new("QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cid(String);

impl Cid {
    /// Validates and wraps `value`.
    pub fn new(value: impl Into<String>) -> Result<Self, FormatError> {
        let value = value.into();
        match check(&value) {
            Ok(()) => Ok(Cid(value)),
            Err(reason) => Err(FormatError::new(Format::Cid, &value, reason)),
        }
    }

    /// For the `cid!` macro only: wraps a literal that was validated at compile time.
    #[doc(hidden)]
    pub fn __from_literal(value: &'static str) -> Self {
        Cid(value.to_owned())
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

/// The string form of a decoded CID link (`bafy…`), which is always a valid `cid` string.
impl From<&crate::CidLink> for Cid {
    fn from(link: &crate::CidLink) -> Cid {
        Cid(link.to_string())
    }
}

impl From<crate::CidLink> for Cid {
    fn from(link: crate::CidLink) -> Cid {
        Cid::from(&link)
    }
}

string_conversions!(Cid, "a CID string");
borrow_str!(Cid);

pub(crate) fn check(value: &str) -> Result<(), Reason> {
    if value.len() < MIN_LEN {
        return Err(format!("shorter than {MIN_LEN} bytes").into());
    }
    if value.len() > MAX_LEN {
        return Err(format!("longer than {MAX_LEN} bytes").into());
    }
    for (i, b) in value.bytes().enumerate() {
        if !(b.is_ascii_alphanumeric() || b == b'+' || b == b'=') {
            return Err(invalid_char(value, i, "CID"));
        }
    }
    if value.starts_with("Qm") {
        return Err("CIDv0 (\"Qm…\") is not allowed".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(value: &str) -> String {
        Cid::new(value).unwrap_err().reason().to_owned()
    }

    #[test]
    fn loose_syntax_accepts_any_multibase() {
        for ok in [
            "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
            "zdj7WWeQ43G6JJvLWQWZpyHuAMq6uYWRjkBXFad11vE2LHhQ7",
            "mBcDxtdWx0aWhhc2g+",
            "7134036155352661643226414134664076",
            "f017012202c5f688262e0ece8569aa6f94d60aad55ca8d9d83734e4a7430d0cff6588ec2b",
        ] {
            Cid::new(ok).unwrap();
        }
    }

    #[test]
    fn from_cid_link_is_valid() {
        let link = crate::CidLink::for_raw(b"hello");
        let cid = Cid::from(&link);
        assert!(Cid::new(cid.as_str()).is_ok());
        assert_eq!(cid.as_str(), link.to_string());
    }

    #[test]
    fn rejects_cidv0() {
        assert_eq!(
            reason("QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR"),
            "CIDv0 (\"Qm…\") is not allowed"
        );
    }

    #[test]
    fn rejects_other_characters_and_lengths() {
        assert_eq!(
            reason("https://example.com"),
            "invalid character ':' in CID"
        );
        assert_eq!(
            reason("bafybe igdyrzt5sfp7udm7"),
            "invalid character ' ' in CID"
        );
        assert_eq!(reason("noop"), "shorter than 8 bytes");
        assert_eq!(reason(&"b".repeat(257)), "longer than 256 bytes");
        Cid::new("b".repeat(256)).unwrap();
    }
}
