//! Building parameters and records: required fields through `new`, optional ones by name,
//! values checked at compile time where the type system can express it.
use atlex::app::bsky::feed::{get_author_feed, post};
use atlex::types::Datetime;

fn main() {
    let params = get_author_feed::Params::new(atlex::at_identifier!("alice.test"))
        .limit(25)
        .cursor("abc");
    assert_eq!(params.limit, Some(25));
    let post = post::Post::new("hello", Datetime::now())
        .langs(vec![atlex::language!("en")])
        .tags(vec!["rust".to_owned()]);
    assert_eq!(post.text, "hello");
    let strong = atlex::com::atproto::repo::strong_ref::StrongRef::new(
        atlex::at_uri!("at://did:plc:abc/app.bsky.feed.post/3k2a"),
        atlex::cid!("bafyreidnjrx3tbdh6axpoe6kl3f2v5ccbn4nyv4ocrjljhhzokpag2r3na"),
    );
    let _ = strong;
}
