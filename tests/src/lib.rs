//! Shared helpers for atlex's integration tests.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod data;
pub mod firehose;
pub mod pds;
pub mod repo;
