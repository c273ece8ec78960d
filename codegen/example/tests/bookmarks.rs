//! The generated example crate works with atlex's own types and runtime.

use atlex::app::bsky::richtext::facet::{Facet, FacetFeaturesItem, Tag};
use atlex::com::atproto::repo::strong_ref::StrongRef;
use atlex::types::{Datetime, Record, Validate};
use atlex::xrpc::{Endpoint, EndpointKind, QueryParams, QueryWriter, XrpcErrorKind};
use atlex_example_bookmarks::com::example::bookmarks::{
    bookmark::{Bookmark, BookmarkSubject, BookmarkVisibility},
    create_bookmark, list_bookmarks,
};

fn strong_ref() -> StrongRef {
    StrongRef::new(
        atlex::at_uri!("at://did:plc:abc/app.bsky.feed.post/3k2a4b"),
        atlex::cid!("bafyreidnjrx3tbdh6axpoe6kl3f2v5ccbn4nyv4ocrjljhhzokpag2r3na"),
    )
}

#[test]
fn record_with_atlex_types_round_trips() {
    let facet = Facet::new(
        atlex::app::bsky::richtext::facet::ByteSlice::new(0, 5),
        vec![FacetFeaturesItem::from(Tag::new("rusty"))],
    );
    let bookmark = Bookmark::new(BookmarkSubject::from(strong_ref()), Datetime::now())
        .note("#rusty read")
        .facets(vec![facet])
        .visibility(BookmarkVisibility::Followers);
    assert!(bookmark.validate().is_ok());
    let json = serde_json::to_value(&bookmark).unwrap();
    assert_eq!(json["$type"], Bookmark::NSID);
    assert_eq!(json["subject"]["$type"], "com.atproto.repo.strongRef");
    assert_eq!(
        json["facets"][0]["features"][0]["$type"],
        "app.bsky.richtext.facet#tag"
    );
    assert_eq!(json["visibility"], "followers");
    let back: Bookmark = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, bookmark);
    assert_eq!(serde_json::to_value(&back).unwrap(), json);
}

#[test]
fn constraints_are_checked() {
    let bookmark = Bookmark::new(BookmarkSubject::from(strong_ref()), Datetime::now())
        .tags(vec!["x".repeat(65); 11]);
    let errors = bookmark.validate().unwrap_err();
    let paths: Vec<&str> = errors.errors().iter().map(|e| e.path.as_str()).collect();
    assert!(paths.contains(&"$.tags"), "{errors}");
    assert!(paths.contains(&"$.tags[10]"), "{errors}");
}

#[test]
fn endpoints_are_typed() {
    assert_eq!(
        <list_bookmarks::ListBookmarks as Endpoint>::NSID,
        "com.example.bookmarks.listBookmarks"
    );
    assert_eq!(
        <create_bookmark::CreateBookmark as Endpoint>::KIND,
        EndpointKind::Procedure
    );
    let params = list_bookmarks::Params::new(atlex::at_identifier!("alice.test"))
        .tag(vec!["a".to_owned(), "b".to_owned()]);
    let mut query = QueryWriter::new();
    params.write_query(&mut query);
    assert_eq!(
        query.pairs(),
        &[
            ("actor", "alice.test".to_owned()),
            ("limit", "50".to_owned()),
            ("tag", "a".to_owned()),
            ("tag", "b".to_owned()),
        ]
    );
    let error = create_bookmark::Error::from_body(atlex::xrpc::ErrorBody {
        error: "DuplicateBookmark".to_owned(),
        message: Some("already there".to_owned()),
    });
    assert!(matches!(
        error,
        create_bookmark::Error::DuplicateBookmark(_)
    ));
    // The output is atlex's own StrongRef type.
    let output: create_bookmark::Output = strong_ref();
    assert_eq!(
        output.uri.as_str(),
        "at://did:plc:abc/app.bsky.feed.post/3k2a4b"
    );
}
