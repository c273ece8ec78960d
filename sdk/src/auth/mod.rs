//! Authentication: session kinds (anonymous, password, OAuth) behind one interface,
//! [`AuthSession`], and session stores.
//!
//! * [`Anonymous`] — no credentials (public AppView).
//! * [`PasswordSession`] — `com.atproto.server.createSession` / `refreshSession`, Bearer
//!   tokens, refreshed proactively (before the access token's `exp`) and reactively (on
//!   `ExpiredToken` / `invalid_token`), single-flight under the store's lock.
//!
//! Credentials are held as [`Secret`]s, which never print.

mod jwt;
pub mod password;
mod secret;
mod session;
pub mod store;
mod store_file;
mod store_keyed;
mod store_memory;
#[cfg(feature = "sqlite")]
mod store_sqlite;
#[cfg(test)]
mod store_suite;

pub use password::PasswordSession;
pub use secret::Secret;
pub use session::{
    AfterResponse, Anonymous, AuthError, AuthHeaders, AuthSession, RequestInfo, ResponseInfo,
};
pub use store::{BoxFuture, SessionData, SessionStore, StoreError, StoreLock};
pub use store_file::FileStore;
pub use store_memory::MemoryStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use store_sqlite::{SqliteStore, SqliteStoreOptions};
