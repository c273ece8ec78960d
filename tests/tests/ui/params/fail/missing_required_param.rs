// `actor` is required by app.bsky.feed.getAuthorFeed.
use atlex::app::bsky::feed::get_author_feed;

fn main() {
    let _ = get_author_feed::Params::new();
}
