//! Authentication: session kinds (anonymous, password, OAuth) and session stores.

pub mod store;
mod store_file;
mod store_keyed;
mod store_memory;
#[cfg(feature = "sqlite")]
mod store_sqlite;
#[cfg(test)]
mod store_suite;

pub use store::{SessionData, SessionStore, StoreError, StoreLock};
pub use store_file::FileStore;
pub use store_memory::MemoryStore;
#[cfg(feature = "sqlite")]
pub use store_sqlite::{SqliteStore, SqliteStoreOptions};
