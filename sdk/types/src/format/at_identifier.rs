//! `at-identifier`: a DID or a handle.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

use super::{
    Did, Format, FormatError, Handle, Reason, borrow_str, did, handle, string_conversions,
};

/// A DID or a handle, as accepted wherever the lexicon says `at-identifier`.
///
/// A value that starts with `did:` is a DID; anything else must be a handle (normalised to
/// lower case). Equality, ordering and hashing are those of the string form.
///
/// ```
/// use atlex_types::AtIdentifier;
/// let id: AtIdentifier = "did:plc:7iza6de2dwap2sbkpav7c6c6".parse()?;
/// assert!(matches!(id, AtIdentifier::Did(_)));
/// let id: AtIdentifier = "Alice.Test".parse()?;
/// assert_eq!(id.as_handle().map(|h| h.as_str()), Some("alice.test"));
/// # Ok::<(), atlex_types::FormatError>(())
/// ```
#[derive(Debug, Clone)]
pub enum AtIdentifier {
    /// A DID.
    Did(Did),
    /// A handle.
    Handle(Handle),
}

impl AtIdentifier {
    /// Validates and wraps `value`: a DID if it starts with `did:`, else a handle.
    pub fn new(value: impl Into<String>) -> Result<Self, FormatError> {
        let value = value.into();
        let parsed = if value.starts_with("did:") {
            Did::new(value).map(AtIdentifier::Did)
        } else {
            Handle::new(value).map(AtIdentifier::Handle)
        };
        parsed.map_err(|e| e.with_format(Format::AtIdentifier))
    }

    /// The string form.
    pub fn as_str(&self) -> &str {
        match self {
            AtIdentifier::Did(did) => did.as_str(),
            AtIdentifier::Handle(handle) => handle.as_str(),
        }
    }

    /// The string form, by value.
    pub fn into_string(self) -> String {
        match self {
            AtIdentifier::Did(did) => did.into_string(),
            AtIdentifier::Handle(handle) => handle.into_string(),
        }
    }

    /// The DID, if this is one.
    pub fn as_did(&self) -> Option<&Did> {
        match self {
            AtIdentifier::Did(did) => Some(did),
            AtIdentifier::Handle(_) => None,
        }
    }

    /// The handle, if this is one.
    pub fn as_handle(&self) -> Option<&Handle> {
        match self {
            AtIdentifier::Did(_) => None,
            AtIdentifier::Handle(handle) => Some(handle),
        }
    }
}

impl From<Did> for AtIdentifier {
    fn from(did: Did) -> Self {
        AtIdentifier::Did(did)
    }
}

impl From<Handle> for AtIdentifier {
    fn from(handle: Handle) -> Self {
        AtIdentifier::Handle(handle)
    }
}

// The variant follows from the string (a handle cannot contain ':'), so comparing strings is
// the same as comparing values, and keeps `Borrow<str>` consistent.
impl PartialEq for AtIdentifier {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for AtIdentifier {}

impl PartialOrd for AtIdentifier {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for AtIdentifier {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for AtIdentifier {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

string_conversions!(AtIdentifier, "a DID or handle string");
borrow_str!(AtIdentifier);

pub(crate) fn check(value: &str) -> Result<(), Reason> {
    if value.starts_with("did:") {
        did::check(value)
    } else {
        handle::check(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_prefix_selects_did() {
        assert!(matches!(
            AtIdentifier::new("did:method:val").unwrap(),
            AtIdentifier::Did(_)
        ));
        assert!(matches!(
            AtIdentifier::new("john.test").unwrap(),
            AtIdentifier::Handle(_)
        ));
        // Not a DID (upper case), so checked as a handle, where ':' is not allowed.
        let err = AtIdentifier::new("DID:method:val").unwrap_err();
        assert_eq!(err.format(), Format::AtIdentifier);
        assert_eq!(
            err.to_string(),
            r#"invalid at-identifier "DID:method:val": invalid character ':' in label"#
        );
        let err = AtIdentifier::new("did:thing").unwrap_err();
        assert_eq!(err.reason(), "missing ':' after the method");
    }

    #[test]
    fn handles_are_lower_cased_and_compare_by_string() {
        let a = AtIdentifier::new("XX.LCS.MIT.EDU").unwrap();
        assert_eq!(a.as_str(), "xx.lcs.mit.edu");
        let d = AtIdentifier::new("did:plc:abc").unwrap();
        // "did:…" sorts after "a…" and before "z…", whatever the variant.
        assert!(AtIdentifier::new("alice.test").unwrap() < d);
        assert!(d < AtIdentifier::new("zed.test").unwrap());
    }
}
