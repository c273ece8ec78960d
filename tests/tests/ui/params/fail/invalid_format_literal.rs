// A literal that is not an at-identifier does not compile.
use atlex::app::bsky::feed::get_author_feed;

fn main() {
    let _ = get_author_feed::Params::new(atlex::at_identifier!("not a handle!"));
}
