//! Fuzz target `jwt`: see `atlex_fuzz::jwt` (`src/lib.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| atlex_fuzz::jwt(bytes));
