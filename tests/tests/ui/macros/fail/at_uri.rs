fn main() {
    let _ = atlex::at_uri!("at://did:plc:asdf123/app.bsky.feed.post/");
}
