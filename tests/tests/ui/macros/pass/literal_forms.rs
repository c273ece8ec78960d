// Raw strings and escapes are literals too; the macros work in any expression position.
use atlex::types::{Did, Nsid};

const fn ignore<T>(_: &T) {}

fn main() {
    assert_eq!(atlex::did!(r"did:plc:abc"), Did::new("did:plc:abc").unwrap());
    assert_eq!(atlex::nsid!("app.bsky.\x66eed.post"), Nsid::new("app.bsky.feed.post").unwrap());
    let collections = vec![atlex::nsid!("app.bsky.feed.post"), atlex::nsid!("app.bsky.feed.like")];
    assert_eq!(collections.len(), 2);
    ignore(&atlex::tid!("2222222222222"));
}
