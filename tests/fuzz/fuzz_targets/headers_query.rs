//! Fuzz target `headers_query`: see `atlex_fuzz::headers_query` (`src/lib.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| atlex_fuzz::headers_query(bytes));
