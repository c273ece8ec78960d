// `actor` is an at-identifier: a plain string is not accepted.
use atlex::app::bsky::feed::get_author_feed;

fn main() {
    let _ = get_author_feed::Params::new("alice.test");
}
