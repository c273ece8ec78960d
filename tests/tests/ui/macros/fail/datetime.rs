fn main() {
    let _ = atlex::datetime!("1985-04-31T23:20:50.123Z");
}
