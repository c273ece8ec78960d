fn main() {
    let _ = atlex::language!("de-DE-1901-1901");
}
