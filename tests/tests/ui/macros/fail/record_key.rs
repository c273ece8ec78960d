fn main() {
    let _ = atlex::record_key!("..");
}
