//! Fuzz target `lexicon`: see `atlex_fuzz::lexicon` (`src/lib.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| atlex_fuzz::lexicon(bytes));
