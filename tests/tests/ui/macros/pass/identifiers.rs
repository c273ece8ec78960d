use atlex::types::{AtIdentifier, AtUri, Did, Handle, Nsid};

fn main() {
    let did = atlex::did!("did:plc:7iza6de2dwap2sbkpav7c6c6");
    assert_eq!(did, Did::new("did:plc:7iza6de2dwap2sbkpav7c6c6").unwrap());
    assert_eq!(did.method(), "plc");

    // Handles are lower-cased at compile time, like `Handle::new` does at run time.
    let handle = atlex::handle!("Alice.BSKY.Social");
    assert_eq!(handle, Handle::new("Alice.BSKY.Social").unwrap());
    assert_eq!(handle.as_str(), "alice.bsky.social");

    let id = atlex::at_identifier!("did:web:example.com");
    assert_eq!(id, AtIdentifier::new("did:web:example.com").unwrap());
    assert!(matches!(id, AtIdentifier::Did(_)));
    let id = atlex::at_identifier!("XX.LCS.MIT.EDU");
    assert_eq!(id, AtIdentifier::new("XX.LCS.MIT.EDU").unwrap());
    assert_eq!(id.as_handle().map(Handle::as_str), Some("xx.lcs.mit.edu"));

    let nsid = atlex::nsid!("app.bsky.feed.post");
    assert_eq!(nsid, Nsid::new("app.bsky.feed.post").unwrap());
    assert_eq!((nsid.authority(), nsid.name()), ("app.bsky.feed", "post"));

    for (literal, text) in [
        (atlex::at_uri!("at://did:plc:asdf123"), "at://did:plc:asdf123"),
        (atlex::at_uri!("at://alice.test/app.bsky.feed.post"), "at://alice.test/app.bsky.feed.post"),
        (atlex::at_uri!("at://did:plc:asdf123/app.bsky.feed.post/3jzfcijpj2z2a"), "at://did:plc:asdf123/app.bsky.feed.post/3jzfcijpj2z2a"),
    ] {
        let parsed = AtUri::new(text).unwrap();
        assert_eq!(literal, parsed);
        assert_eq!(literal.authority(), parsed.authority());
        assert_eq!(literal.collection(), parsed.collection());
        assert_eq!(literal.rkey(), parsed.rkey());
    }
}
