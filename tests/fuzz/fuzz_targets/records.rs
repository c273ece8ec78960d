//! Fuzz target `records`: see `atlex_fuzz::records` (`src/lib.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| atlex_fuzz::records(bytes));
