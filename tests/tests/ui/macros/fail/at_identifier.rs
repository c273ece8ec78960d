fn main() {
    let _ = atlex::at_identifier!("@alice.test");
}
