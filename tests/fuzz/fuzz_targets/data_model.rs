//! Fuzz target `data_model`: see `atlex_fuzz::data_model` (`src/lib.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| atlex_fuzz::data_model(bytes));
