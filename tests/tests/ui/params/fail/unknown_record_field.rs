// Posts have no `title`.
use atlex::app::bsky::feed::post::Post;
use atlex::types::Datetime;

fn main() {
    let _ = Post::new("hi", Datetime::now()).title("nope");
}
