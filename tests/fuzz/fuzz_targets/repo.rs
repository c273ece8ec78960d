//! Fuzz target `repo`: see `atlex_fuzz::repo` (`src/lib.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| atlex_fuzz::repo(bytes));
