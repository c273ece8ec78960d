fn main() {
    let _ = atlex::tid!("kjzfcijpj2z2a");
}
