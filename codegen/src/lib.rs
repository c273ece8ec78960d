//! The lexicon-to-Rust generator behind `cargo xtask codegen`.
