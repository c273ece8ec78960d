//! Shared helpers for atlex's integration tests.

pub mod pds;
