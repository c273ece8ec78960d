fn main() {
    let _ = atlex::uri!("example.com");
}
