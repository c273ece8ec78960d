// listRecords' `collection` is an NSID; this literal is not one.
use atlex::com::atproto::repo::list_records;

fn main() {
    let _ = list_records::Params::new(
        atlex::at_identifier!("alice.test"),
        atlex::nsid!("app.bsky.feed..post"),
    );
}
