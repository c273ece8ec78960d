//! Shared helpers for atlex's integration tests.
