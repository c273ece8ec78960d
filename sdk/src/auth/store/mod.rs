//! Session stores: where sessions live between runs, and the lock that serialises refreshes.
//!
//! [`SessionStore`] is the interface; the SDK ships three implementations:
//!
//! | store | keeps sessions | `lock` excludes |
//! |---|---|---|
//! | [`SqliteStore`](super::SqliteStore) (the default, feature `sqlite`) | in one SQLite database file | tasks and processes sharing the file (lease with expiry) |
//! | [`FileStore`](super::FileStore) | one JSON file per key in a directory | tasks and processes sharing the directory (OS file lock) |
//! | [`MemoryStore`](super::MemoryStore) | in this process only | tasks of this process |
//!
//! Every store's `lock` first takes an in-process async mutex for the key (so tasks of one
//! process queue fairly and only one of them talks to the file system or database), then the
//! cross-process lock where the store has one. Different keys never block each other.
//!
//! Keys are not secret and appear in errors; values ([`SessionData`]) are secret and never
//! appear in `Debug` output, errors or logs.
//!
//! The stores do their file and database work on tokio's blocking thread pool, so their
//! methods must be awaited inside a tokio runtime.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// A boxed future, so that [`SessionStore`] can be used as `dyn SessionStore`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The stored form of one session: a JSON document holding tokens and keys.
///
/// It contains secrets, so its `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionData(String);

impl SessionData {
    /// Wraps a JSON document.
    pub fn new(json: impl Into<String>) -> SessionData {
        SessionData(json.into())
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionData(<{} bytes redacted>)", self.0.len())
    }
}

/// A store failure (I/O, database, corrupt data). Never contains session contents.
#[derive(Debug)]
pub struct StoreError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// An error of `store` (e.g. `file store /path`) in operation `op` on `key`, with what
    /// went wrong and the underlying error. The cause must not contain session contents.
    pub(crate) fn during(
        store: &str,
        op: &str,
        key: &str,
        what: &str,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> StoreError {
        StoreError::new(format!("{store}: {op} {key:?}: {what}"), source)
    }

    /// An error with a message and an optional cause.
    pub fn new(
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> StoreError {
        StoreError {
            message: message.into(),
            source,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A held lock on one session key; released when dropped.
pub struct StoreLock {
    _guard: Box<dyn Send + Sync>,
}

impl StoreLock {
    /// Wraps whatever keeps the lock held (a mutex guard, a file lock, a lease).
    pub fn new(guard: impl Send + Sync + 'static) -> StoreLock {
        StoreLock {
            _guard: Box::new(guard),
        }
    }
}

impl fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreLock")
    }
}

/// Where sessions are kept. Keys are opaque strings chosen by the session kind
/// (e.g. `password:did:plc:…`).
pub trait SessionStore: Send + Sync + 'static {
    /// The session stored under `key`, if any.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<SessionData>, StoreError>>;
    /// Stores (replaces) the session under `key`; durable when the future completes.
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a SessionData,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Removes the session under `key` (no error when absent).
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Waits for and takes the exclusive lock on `key`. Refreshes happen under it, so two
    /// callers (tasks, or processes when the store supports it) never refresh one session at once.
    fn lock<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<StoreLock, StoreError>>;
}
