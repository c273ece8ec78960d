fn main() {
    let _ = atlex::nsid!("app.bsky.feed.post"suffix);
}
