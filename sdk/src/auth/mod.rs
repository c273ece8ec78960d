//! Authentication: session kinds (anonymous, password, OAuth) and session stores.

pub mod store;

pub use store::{SessionData, SessionStore, StoreError, StoreLock};
