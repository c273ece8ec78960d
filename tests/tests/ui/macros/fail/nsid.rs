fn main() {
    let _ = atlex::nsid!("com.example");
}
