//! `at-uri`: `at://AUTHORITY[/COLLECTION[/RKEY]]`.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

use super::{
    AtIdentifier, Did, Format, FormatError, Handle, Nsid, Reason, RecordKey, at_identifier,
    borrow_str, nsid, record_key, string_conversions,
};

/// The longest AT URI accepted, in bytes.
pub(crate) const MAX_LEN: usize = 8192;
const PREFIX: &str = "at://";

/// An AT URI in the restricted form used by lexicons: `at://AUTHORITY[/COLLECTION[/RKEY]]`.
///
/// The authority is a DID or a handle, the collection an NSID and the record key a
/// [`RecordKey`] (so no `%` escapes). No query, fragment, trailing slash or empty segment is
/// allowed, and the whole URI is at most 8192 bytes. The string is kept as given (a handle
/// authority is not lower-cased).
///
/// ```
/// use atlex_types::AtUri;
/// let uri = AtUri::new("at://did:plc:asdf123/app.bsky.feed.post/3jzfcijpj2z2a")?;
/// assert_eq!(uri.authority(), "did:plc:asdf123");
/// assert_eq!(uri.collection(), Some("app.bsky.feed.post"));
/// assert_eq!(uri.rkey(), Some("3jzfcijpj2z2a"));
///
/// let rebuilt = AtUri::from_parts(
///     &uri.authority_id(),
///     &uri.collection_nsid().unwrap(),
///     &uri.record_key().unwrap(),
/// );
/// assert_eq!(rebuilt, uri);
/// assert!(AtUri::new("at://did:plc:asdf123/").is_err());
/// # Ok::<(), atlex_types::FormatError>(())
/// ```
#[derive(Debug, Clone)]
pub struct AtUri {
    value: String,
    /// End of the authority (the index of the `/` before the collection, or the length).
    authority_end: usize,
    /// End of the collection (the index of the `/` before the record key, or the length);
    /// equal to `authority_end` when there is no collection.
    collection_end: usize,
}

impl AtUri {
    /// Validates and wraps `value`.
    pub fn new(value: impl Into<String>) -> Result<Self, FormatError> {
        let value = value.into();
        match check(&value) {
            Ok((authority_end, collection_end)) => Ok(AtUri {
                value,
                authority_end,
                collection_end,
            }),
            Err(reason) => Err(FormatError::new(Format::AtUri, &value, reason)),
        }
    }

    /// For the `at_uri!` macro only: wraps a literal that was validated at compile time.
    #[doc(hidden)]
    pub fn __from_literal(value: &'static str) -> Self {
        let (authority_end, collection_end) = split(value);
        AtUri {
            value: value.to_owned(),
            authority_end,
            collection_end,
        }
    }

    /// The URI of a whole repository: `at://AUTHORITY`.
    pub fn for_repo(authority: &impl AtUriAuthority) -> AtUri {
        AtUri::build(authority.authority_str(), None, None)
    }

    /// The URI of a collection: `at://AUTHORITY/COLLECTION`.
    pub fn for_collection(authority: &impl AtUriAuthority, collection: &Nsid) -> AtUri {
        AtUri::build(authority.authority_str(), Some(collection), None)
    }

    /// The URI of a record: `at://AUTHORITY/COLLECTION/RKEY`.
    pub fn from_parts(
        authority: &impl AtUriAuthority,
        collection: &Nsid,
        rkey: &RecordKey,
    ) -> AtUri {
        AtUri::build(authority.authority_str(), Some(collection), Some(rkey))
    }

    // The parts are valid and their maximum lengths (2048 + 317 + 512 bytes) add up to far less
    // than 8192, so the result is always valid.
    fn build(authority: &str, collection: Option<&Nsid>, rkey: Option<&RecordKey>) -> AtUri {
        let len = PREFIX.len()
            + authority.len()
            + collection.map_or(0, |c| c.as_str().len() + 1)
            + rkey.map_or(0, |r| r.as_str().len() + 1);
        let mut value = String::with_capacity(len);
        value.push_str(PREFIX);
        value.push_str(authority);
        let authority_end = value.len();
        if let Some(collection) = collection {
            value.push('/');
            value.push_str(collection.as_str());
        }
        let collection_end = value.len();
        if let Some(rkey) = rkey {
            value.push('/');
            value.push_str(rkey.as_str());
        }
        AtUri {
            value,
            authority_end,
            collection_end,
        }
    }

    /// The string form.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The string form, by value.
    pub fn into_string(self) -> String {
        self.value
    }

    /// The authority (a DID or a handle) as written.
    pub fn authority(&self) -> &str {
        self.value
            .get(PREFIX.len()..self.authority_end)
            .unwrap_or_default()
    }

    /// The authority as a typed DID or handle (a handle is lower-cased).
    pub fn authority_id(&self) -> AtIdentifier {
        let authority = self.authority();
        if authority.starts_with("did:") {
            AtIdentifier::Did(Did::from_checked(authority))
        } else {
            AtIdentifier::Handle(Handle::from_checked(authority))
        }
    }

    /// The collection NSID as written, if the URI has one.
    pub fn collection(&self) -> Option<&str> {
        if self.collection_end == self.authority_end {
            return None;
        }
        self.value.get(self.authority_end + 1..self.collection_end)
    }

    /// The collection as a typed NSID, if the URI has one.
    pub fn collection_nsid(&self) -> Option<Nsid> {
        self.collection().map(Nsid::from_checked)
    }

    /// The record key as written, if the URI has one.
    pub fn rkey(&self) -> Option<&str> {
        if self.collection_end == self.value.len() {
            return None;
        }
        self.value.get(self.collection_end + 1..)
    }

    /// The record key as a typed [`RecordKey`], if the URI has one.
    pub fn record_key(&self) -> Option<RecordKey> {
        self.rkey().map(RecordKey::from_checked)
    }
}

/// What can be the authority of an [`AtUri`]: a [`Did`], a [`Handle`] or an [`AtIdentifier`].
pub trait AtUriAuthority: sealed::Sealed {
    /// The authority's string form.
    fn authority_str(&self) -> &str;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Did {}
    impl Sealed for super::Handle {}
    impl Sealed for super::AtIdentifier {}
}

impl AtUriAuthority for Did {
    fn authority_str(&self) -> &str {
        self.as_str()
    }
}

impl AtUriAuthority for Handle {
    fn authority_str(&self) -> &str {
        self.as_str()
    }
}

impl AtUriAuthority for AtIdentifier {
    fn authority_str(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for AtUri {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Eq for AtUri {}

impl PartialOrd for AtUri {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for AtUri {
    fn cmp(&self, other: &Self) -> Ordering {
        self.value.cmp(&other.value)
    }
}

impl Hash for AtUri {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}

string_conversions!(AtUri, "an AT URI string");
borrow_str!(AtUri);

/// The authority and collection ends of an AT URI that is known to be valid.
fn split(value: &str) -> (usize, usize) {
    let len = value.len();
    let Some(slash) = value.get(PREFIX.len()..).and_then(|rest| rest.find('/')) else {
        return (len, len);
    };
    let authority_end = PREFIX.len() + slash;
    match value
        .get(authority_end + 1..)
        .and_then(|rest| rest.find('/'))
    {
        Some(slash) => (authority_end, authority_end + 1 + slash),
        None => (authority_end, len),
    }
}

/// Validates an AT URI and returns its authority and collection ends (see [`AtUri`]).
pub(crate) fn check(value: &str) -> Result<(usize, usize), Reason> {
    if value.len() > MAX_LEN {
        return Err(format!("longer than {MAX_LEN} bytes").into());
    }
    let Some(rest) = value.strip_prefix(PREFIX) else {
        return Err("must start with \"at://\"".into());
    };
    for b in rest.bytes() {
        match b {
            b'#' => return Err("a fragment is not allowed".into()),
            b'?' => return Err("a query is not allowed".into()),
            _ => {}
        }
    }
    let (authority, path) = match rest.split_once('/') {
        Some((authority, path)) => (authority, Some(path)),
        None => (rest, None),
    };
    if authority.is_empty() {
        return Err("empty authority".into());
    }
    at_identifier::check(authority).map_err(|r| Reason::from(format!("authority: {r}")))?;
    let authority_end = PREFIX.len() + authority.len();
    let Some(path) = path else {
        return Ok((authority_end, authority_end));
    };
    let (collection, rkey) = match path.split_once('/') {
        Some((collection, rkey)) => (collection, Some(rkey)),
        None => (path, None),
    };
    if collection.is_empty() {
        return Err(if rkey.is_none() {
            "trailing slash is not allowed"
        } else {
            "empty path segment"
        }
        .into());
    }
    nsid::check(collection).map_err(|r| Reason::from(format!("collection: {r}")))?;
    let collection_end = authority_end + 1 + collection.len();
    let Some(rkey) = rkey else {
        return Ok((authority_end, value.len()));
    };
    match rkey.split_once('/') {
        None if rkey.is_empty() => return Err("trailing slash is not allowed".into()),
        None => {}
        Some(("", _)) => return Err("empty path segment".into()),
        Some(_) => {
            return Err("too many path segments (at most a collection and a record key)".into());
        }
    }
    record_key::check(rkey).map_err(|r| Reason::from(format!("record key: {r}")))?;
    Ok((authority_end, collection_end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(value: &str) -> String {
        AtUri::new(value).unwrap_err().reason().to_owned()
    }

    #[test]
    fn accessors() {
        let repo = AtUri::new("at://did:plc:asdf123").unwrap();
        assert_eq!(
            (repo.authority(), repo.collection(), repo.rkey()),
            ("did:plc:asdf123", None, None)
        );
        let coll = AtUri::new("at://User.bsky.social/com.atproto.feed.post").unwrap();
        assert_eq!(coll.authority(), "User.bsky.social");
        assert_eq!(coll.authority_id().as_str(), "user.bsky.social");
        assert_eq!(coll.collection(), Some("com.atproto.feed.post"));
        assert_eq!(coll.rkey(), None);
        let rec = AtUri::new("at://did:abc:123/io.nsid.someFunc/self.").unwrap();
        assert_eq!(rec.collection_nsid().unwrap().name(), "someFunc");
        assert_eq!(rec.record_key().unwrap().as_str(), "self.");
        assert!(matches!(rec.authority_id(), AtIdentifier::Did(_)));
    }

    #[test]
    fn literal_split_matches_check() {
        for s in ["at://did:plc:x", "at://a.test/a.b.c", "at://a.test/a.b.c/k"] {
            let checked = AtUri::new(s).unwrap();
            let literal = AtUri::__from_literal(s);
            assert_eq!(
                (checked.authority_end, checked.collection_end),
                (literal.authority_end, literal.collection_end)
            );
        }
    }

    #[test]
    fn constructors() {
        let did = Did::new("did:plc:asdf123").unwrap();
        let nsid = Nsid::new("app.bsky.feed.post").unwrap();
        let rkey = RecordKey::new("3jzfcijpj2z2a").unwrap();
        assert_eq!(AtUri::for_repo(&did).as_str(), "at://did:plc:asdf123");
        assert_eq!(
            AtUri::for_collection(&did, &nsid).as_str(),
            "at://did:plc:asdf123/app.bsky.feed.post"
        );
        let uri = AtUri::from_parts(&did, &nsid, &rkey);
        assert_eq!(
            uri,
            AtUri::new("at://did:plc:asdf123/app.bsky.feed.post/3jzfcijpj2z2a").unwrap()
        );
        assert_eq!(uri.rkey(), Some("3jzfcijpj2z2a"));
        let handle = Handle::new("alice.test").unwrap();
        assert_eq!(AtUri::for_repo(&handle).authority(), "alice.test");
        assert_eq!(
            AtUri::for_repo(&AtIdentifier::from(handle)).collection(),
            None
        );
    }

    #[test]
    fn restricted_form() {
        assert_eq!(reason("AT://did:plc:asdf123"), "must start with \"at://\"");
        assert_eq!(reason("at:/did:plc:asdf123"), "must start with \"at://\"");
        assert_eq!(reason("at:///did:plc:asdf123"), "empty authority");
        assert_eq!(reason("at://did:plc:asdf123#"), "a fragment is not allowed");
        assert_eq!(
            reason("at://did:plc:asdf123/com.atproto.feed.post#/frag"),
            "a fragment is not allowed"
        );
        assert_eq!(reason("at://did:plc:asdf123?x=1"), "a query is not allowed");
        assert_eq!(
            reason("at://did:plc:asdf123/"),
            "trailing slash is not allowed"
        );
        assert_eq!(
            reason("at://did:plc:asdf123/com.atproto.feed.post/"),
            "trailing slash is not allowed"
        );
        assert_eq!(
            reason("at://user.bsky.social//com.atproto.feed.post"),
            "empty path segment"
        );
        assert_eq!(
            reason("at://user.bsky.social/com.atproto.feed.post//"),
            "empty path segment"
        );
        assert_eq!(
            reason("at://did:plc:asdf123/com.atproto.feed.post/asdf123/asdf"),
            "too many path segments (at most a collection and a record key)"
        );
    }

    #[test]
    fn parts_are_checked() {
        assert_eq!(
            reason("at://name"),
            "authority: must have at least two labels (a dotless name is not a handle)"
        );
        assert_eq!(
            reason("at://did:plc:"),
            "authority: empty method-specific identifier"
        );
        assert_eq!(
            reason("at://did:plc:asdf123/short/stuff"),
            "collection: must have at least three segments"
        );
        assert_eq!(
            reason("at://did:plc:asdf123/com.atproto.feed.p@st"),
            "collection: invalid character '@' in name"
        );
        assert_eq!(
            reason("at://did:plc:asdf123/com.atproto.feed.post/%23"),
            "record key: invalid character '%' in record key"
        );
        assert_eq!(
            reason("at://did:plc:asdf123/com.atproto.feed.post/.."),
            "record key: \".\" and \"..\" are not allowed"
        );
    }

    #[test]
    fn hidden_interop_case_hash_prefix() {
        // `#at://did:plc:asdf123` is in aturi_syntax_invalid.txt but reads as a comment there.
        assert_eq!(reason("#at://did:plc:asdf123"), "must start with \"at://\"");
    }

    #[test]
    fn length() {
        let prefix = "at://did:plc:asdf123/com.atproto.feed.post/";
        AtUri::new(format!("{prefix}{}", "o".repeat(512))).unwrap();
        assert_eq!(
            reason(&format!("{prefix}{}", "o".repeat(513))),
            "record key: longer than 512 bytes"
        );
        assert_eq!(
            reason(&format!("{prefix}{}", "o".repeat(8200))),
            "longer than 8192 bytes"
        );
    }
}
