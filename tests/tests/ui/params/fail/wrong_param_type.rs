// `limit` is an integer.
use atlex::app::bsky::feed::get_author_feed;

fn main() {
    let _ = get_author_feed::Params::new(atlex::at_identifier!("alice.test")).limit("ten");
}
