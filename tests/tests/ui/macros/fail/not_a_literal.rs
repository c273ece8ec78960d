fn main() {
    let _ = atlex::did!(concat!("did:", "plc:abc"));
}
