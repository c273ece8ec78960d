fn main() {
    let _ = atlex::handle!("alice..test");
}
