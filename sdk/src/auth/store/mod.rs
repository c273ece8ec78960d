//! Session stores: where sessions live between runs, and the fenced lock that serialises
//! refreshes.
//!
//! [`SessionStore`] is the interface; the SDK ships these implementations:
//!
//! | store | keeps sessions | `lock` excludes | lease |
//! |---|---|---|---|
//! | [`SqliteStore`](super::SqliteStore) (the default, feature `sqlite`) | in one SQLite database file | tasks and processes sharing the file | yes ([`DEFAULT_LEASE`], renewed while held) |
//! | [`FileStore`](super::FileStore) | one JSON file per key in a directory | tasks and processes sharing the directory (OS file lock) | no: released by the OS when the holder dies |
//! | [`MemoryStore`](super::MemoryStore) | in this process only | tasks of this process | no |
//! | `PostgresStore` (feature `postgres`) | in PostgreSQL tables | every process and machine using the schema | yes ([`DEFAULT_LEASE`], renewed while held; database clock) |
//! | `RedisStore` (feature `redis`) | in Redis keys under a prefix | every process and machine using the prefix | yes ([`DEFAULT_LEASE`], renewed while held; Redis expiry) |
//!
//! `EncryptedStore` (feature `encryption`) encrypts the values of any of them.
//!
//! # What a store does
//!
//! * `get` / `set` / `delete` one value per key; [`set_expiring`](SessionStore::set_expiring)
//!   writes a value that disappears after a time to live (pending OAuth authorizations).
//! * [`compare_and_set`](SessionStore::compare_and_set): replace (or remove) a value only if it
//!   is still the one the caller read, atomically, optionally **fenced** by a held lock: the
//!   write is refused with [`StoreErrorKind::LeaseLost`] when that lock's lease has been lost.
//! * [`list`](SessionStore::list): the keys under a prefix (the sessions of one account, one
//!   per device: `password:<did>#<session id>`, see [`SessionKey`](super::SessionKey)).
//! * [`lock`](SessionStore::lock): the exclusive lock on one key, with an acquisition timeout
//!   (an error of kind [`StoreErrorKind::LockTimeout`], transient, never a hang). The
//!   [`StoreLock`] carries a **fencing token** (a number that grows with every acquisition of
//!   the key) and tells its holder when its lease was lost ([`StoreLock::is_lost`]).
//!
//! Every store's `lock` first takes an in-process async mutex for the key (so tasks of one
//! process queue fairly and only one of them talks to the file system or database), then the
//! cross-process lock where the store has one. Different keys never block each other.
//!
//! Keys are not secret and appear in errors; values ([`SessionData`]) are secret and never
//! appear in `Debug` output, errors or logs.
//!
//! The stores do their file and database work on tokio's blocking thread pool (or
//! asynchronously, for network stores), so their methods must be awaited inside a tokio
//! runtime.

#[cfg(feature = "encryption")]
pub(crate) mod encrypted;
pub(crate) mod file;
pub(crate) mod keyed;
pub(crate) mod memory;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "redis")]
pub(crate) mod redis;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;
#[cfg(test)]
pub(crate) mod suite;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub use crate::xrpc::{BoxFuture, StoreError, StoreErrorKind};

/// How long [`SessionStore::lock`] callers in the SDK wait for a lock by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The default lease of the stores whose locks are leases (SQLite, PostgreSQL, Redis): 2 s.
///
/// A live holder keeps its lock as long as it needs it, because a heartbeat renews the lease
/// every quarter of its duration (see [`renewal_period`]). The lease only bounds how long a
/// key stays locked after its holder died (killed, crashed, cut off): the others get the lock
/// at most one lease (plus one poll, ≤ 50 ms) after the holder's last renewal, so a holder
/// killed inside the lock delays them by 1.5–2 s with the defaults. A holder that stalls
/// longer than the lease minus one renewal period (1.5 s: `SIGSTOP`, a VM pause, a starved
/// runtime) loses the lease, knows it ([`StoreLock::is_lost`]), and its writes are refused.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(2);

/// How often a holder renews a lease of `lease`: every quarter of it, so three renewals in a
/// row can be late or fail (a busy database, a slow link) before the lease runs out.
pub fn renewal_period(lease: Duration) -> Duration {
    lease / 4
}

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

/// Whether a lease is still held: lost when the store says so (a renewal found the lock taken
/// over) or when it was not renewed in time (measured on this process's monotonic clock, so a
/// stall or a wall-clock jump is noticed).
///
/// Store implementations create one per acquired lock and hand it to [`StoreLock::leased`].
#[derive(Debug)]
pub struct LeaseState {
    lost: AtomicBool,
    valid_until: Mutex<Instant>,
}

impl LeaseState {
    /// A lease taken at `taken` (an instant read *before* the store was asked for it) for
    /// `lease`.
    pub fn new(taken: Instant, lease: Duration) -> Arc<LeaseState> {
        Arc::new(LeaseState {
            lost: AtomicBool::new(false),
            valid_until: Mutex::new(taken.checked_add(lease).unwrap_or(taken)),
        })
    }

    /// Records a renewal asked for at `asked` (read before the request was sent).
    pub fn renewed(&self, asked: Instant, lease: Duration) {
        let until = asked.checked_add(lease).unwrap_or(asked);
        let mut valid = self
            .valid_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if until > *valid {
            *valid = until;
        }
    }

    /// Records that the lease was lost (taken over, or deleted).
    pub fn lose(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }

    /// Whether the lease is lost, or has run out without a renewal.
    pub fn is_lost(&self) -> bool {
        if self.lost.load(Ordering::SeqCst) {
            return true;
        }
        let valid = *self
            .valid_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Instant::now() >= valid
    }
}

/// A held lock on one session key; released when dropped.
///
/// It carries the key, the fencing token of this acquisition (greater than that of every
/// earlier acquisition of the key in the same store), and, for stores whose locks are leases,
/// whether the lease is still held.
pub struct StoreLock {
    key: String,
    fence: u64,
    owner: Option<String>,
    lease: Option<Arc<LeaseState>>,
    _guard: Box<dyn Send + Sync>,
}

impl StoreLock {
    /// A lock that cannot be lost while `guard` is held (an in-process mutex, an OS file
    /// lock).
    pub fn new(key: &str, fence: u64, guard: impl Send + Sync + 'static) -> StoreLock {
        StoreLock {
            key: key.to_owned(),
            fence,
            owner: None,
            lease: None,
            _guard: Box::new(guard),
        }
    }

    /// A lock held through a lease that may be lost (see [`LeaseState`]).
    pub fn leased(
        key: &str,
        fence: u64,
        lease: Arc<LeaseState>,
        guard: impl Send + Sync + 'static,
    ) -> StoreLock {
        StoreLock {
            key: key.to_owned(),
            fence,
            owner: None,
            lease: Some(lease),
            _guard: Box::new(guard),
        }
    }

    /// The same lock, recording the lease owner token the store took it under (for stores
    /// whose fenced writes check it).
    #[must_use]
    pub fn with_owner(mut self, owner: String) -> StoreLock {
        self.owner = Some(owner);
        self
    }

    /// The lease owner token, when the store recorded one.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// The locked key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The fencing token of this acquisition.
    pub fn fence(&self) -> u64 {
        self.fence
    }

    /// Whether the lock's lease was lost: another holder may have the key now, and fenced
    /// writes with this lock are refused.
    pub fn is_lost(&self) -> bool {
        self.lease.as_ref().is_some_and(|lease| lease.is_lost())
    }

    /// `Ok` while the lock is held; an error of kind [`StoreErrorKind::LeaseLost`] naming
    /// `store` once it was lost.
    pub fn check(&self, store: &str) -> Result<(), StoreError> {
        if self.is_lost() {
            return Err(lease_lost(store, &self.key));
        }
        Ok(())
    }

    /// `Ok` when this lock is held on `key` and not lost (for fenced writes).
    pub fn check_for(&self, store: &str, key: &str) -> Result<(), StoreError> {
        if self.key != key {
            return Err(StoreError::during(
                store,
                "compare_and_set",
                key,
                &format!("fenced with the lock of another key ({:?})", self.key),
                None,
            ));
        }
        self.check(store)
    }
}

impl fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreLock")
            .field("key", &self.key)
            .field("fence", &self.fence)
            .field("lost", &self.is_lost())
            .finish_non_exhaustive()
    }
}

/// A fresh lease owner token: `<pid>-<128 random bits in hex>`.
#[cfg_attr(not(any(feature = "postgres", feature = "redis")), allow(dead_code))]
pub(crate) fn new_owner() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{}-{hex}", std::process::id()))
}

/// A duration in whole milliseconds, saturating.
#[cfg_attr(not(any(feature = "postgres", feature = "redis")), allow(dead_code))]
pub(crate) fn duration_ms_u64(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The error of a fenced write whose lease was lost.
pub(crate) fn lease_lost(store: &str, key: &str) -> StoreError {
    StoreError::during(
        store,
        "compare_and_set",
        key,
        "the lock's lease was lost (the holder stalled past it); the write was refused",
        None,
    )
    .with_kind(StoreErrorKind::LeaseLost)
}

/// The error of a lock not acquired in time.
pub(crate) fn lock_timeout(store: &str, key: &str, timeout: Duration) -> StoreError {
    StoreError::during(
        store,
        "lock",
        key,
        &format!("not acquired within {timeout:?}"),
        None,
    )
    .with_kind(StoreErrorKind::LockTimeout)
}

/// Runs a cancel-safe lock future with a timeout.
pub(crate) async fn within<T>(
    store: &str,
    key: &str,
    timeout: Duration,
    work: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(lock_timeout(store, key, timeout)),
    }
}

/// Where sessions are kept. Keys are opaque strings chosen by the session kind
/// (e.g. `password:did:plc:…`).
pub trait SessionStore: Send + Sync + 'static {
    /// The value stored under `key`, if any (an expired value is absent).
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<SessionData>, StoreError>>;

    /// Stores (replaces) the value under `key`, without expiry; durable when the future
    /// completes.
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a SessionData,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Stores (replaces) the value under `key`; it is absent once `ttl` has passed.
    fn set_expiring<'a>(
        &'a self,
        key: &'a str,
        value: &'a SessionData,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Removes the value under `key` (no error when absent).
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Atomically: when the value under `key` is `current` (`None`: absent), replaces it with
    /// `new` (stored without expiry; `None` removes it) and returns `true`; else changes
    /// nothing and returns `false`.
    ///
    /// With `fence`, the write is also refused, with an error of kind
    /// [`StoreErrorKind::LeaseLost`], unless `fence` is the current, unexpired lock of `key`.
    fn compare_and_set<'a>(
        &'a self,
        key: &'a str,
        current: Option<&'a SessionData>,
        new: Option<&'a SessionData>,
        fence: Option<&'a StoreLock>,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// The keys that start with `prefix` and hold an unexpired value, sorted.
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>>;

    /// Waits for and takes the exclusive lock on `key`, for at most `timeout` (then an error
    /// of kind [`StoreErrorKind::LockTimeout`]). Refreshes happen under it, so two callers
    /// (tasks, or processes when the store supports it) never refresh one session at once.
    /// Cancel-safe: dropping the future gives up the attempt and leaves the key unlocked.
    fn lock<'a>(
        &'a self,
        key: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<StoreLock, StoreError>>;
}
