fn main() {
    let _ = atlex::did!("did:plc:");
}
