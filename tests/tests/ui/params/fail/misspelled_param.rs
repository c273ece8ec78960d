// There is no parameter `limt`.
use atlex::app::bsky::feed::get_author_feed;

fn main() {
    let _ = get_author_feed::Params::new(atlex::at_identifier!("alice.test")).limt(10);
}
