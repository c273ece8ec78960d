//! Fuzz target `frames`: see `atlex_fuzz::frames` (`src/lib.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| atlex_fuzz::frames(bytes));
