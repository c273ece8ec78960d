// A struct literal must name every field: `createdAt` is missing.
use atlex::app::bsky::feed::post::Post;

fn main() {
    let _ = Post {
        text: "hi".to_owned(),
        ..Default::default()
    };
}
