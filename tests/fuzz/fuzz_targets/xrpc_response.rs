//! Fuzz target `xrpc_response`: see `atlex_fuzz::xrpc_response` (`src/lib.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| atlex_fuzz::xrpc_response(bytes));
