//! [`RedisStore`]: sessions in Redis, with a fenced lease lock that works across machines.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};
use tokio::task::AbortHandle;

use super::keyed::{KeyedGuard, KeyedMutex};
use super::{
    BoxFuture, LeaseState, SessionData, SessionStore, StoreError, StoreErrorKind, StoreLock,
};

const FIRST_BACKOFF: Duration = Duration::from_millis(2);
const MAX_BACKOFF: Duration = Duration::from_millis(50);
const MIN_LEASE: Duration = Duration::from_millis(300);

/// Takes the lock `KEYS[1]` when it is free: increments the fencing counter `KEYS[2]` and
/// stores `<fence>:<owner ARGV[1]>` with a lease of `ARGV[2]` ms. Returns the fence, or 0.
const ACQUIRE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], fence .. ':' .. ARGV[1], 'PX', ARGV[2])
return fence
";

/// Extends the lease `KEYS[1]` to `ARGV[2]` ms when it still holds token `ARGV[1]`.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Deletes the lease `KEYS[1]` when it still holds token `ARGV[1]`.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Deletes the lease `KEYS[1]` when its token ends with `:<owner ARGV[1]>` (an attempt
/// cancelled in flight, whose fence is unknown).
const RELEASE_OWNER: &str = r"
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, -string.len(ARGV[1]) - 1) == ':' .. ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Compare-and-set of value `KEYS[1]`, fenced by lock `KEYS[2]` when `ARGV[5]` is `1` (the
/// lock must hold token `ARGV[6]`). `ARGV[1]`/`ARGV[2]`: whether a current value is expected
/// and which; `ARGV[3]`/`ARGV[4]`: whether to write a new value and which. Returns 1 when
/// swapped, 0 when the value differed, -1 when the lease was lost.
const SWAP: &str = r"
if ARGV[5] == '1' and redis.call('GET', KEYS[2]) ~= ARGV[6] then return -1 end
local stored = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if stored ~= ARGV[2] then return 0 end
elseif stored then
  return 0
end
if ARGV[3] == '1' then redis.call('SET', KEYS[1], ARGV[4]) else redis.call('DEL', KEYS[1]) end
return 1
";

/// Settings for [`RedisStore::connect_with`].
#[derive(Debug, Clone)]
pub struct RedisStoreOptions {
    prefix: String,
    lease: Duration,
    op_timeout: Duration,
}

impl Default for RedisStoreOptions {
    fn default() -> RedisStoreOptions {
        RedisStoreOptions {
            prefix: "atlex:".to_owned(),
            lease: super::DEFAULT_LEASE,
            op_timeout: Duration::from_secs(5),
        }
    }
}

impl RedisStoreOptions {
    /// The defaults: prefix `atlex:`, a 2 s lease ([`super::DEFAULT_LEASE`]), a 5 s operation timeout.
    pub fn new() -> RedisStoreOptions {
        RedisStoreOptions::default()
    }

    /// What every Redis key of the store starts with (default `atlex:`), so that several
    /// stores (or applications) share one database.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> RedisStoreOptions {
        self.prefix = prefix.into();
        self
    }

    /// How long a lock's lease lasts without renewal (default 2 s,
    /// [`DEFAULT_LEASE`](super::DEFAULT_LEASE); at least 300 ms): the longest a key stays
    /// locked after its holder died or was cut off. Holders renew it every quarter of this.
    #[must_use]
    pub fn lease_duration(mut self, lease: Duration) -> RedisStoreOptions {
        self.lease = lease.max(MIN_LEASE);
        self
    }

    /// The longest one command may take before it fails as [`StoreErrorKind::Unavailable`]
    /// (default 5 s).
    #[must_use]
    pub fn operation_timeout(mut self, timeout: Duration) -> RedisStoreOptions {
        self.op_timeout = timeout;
        self
    }
}

/// A session store in Redis, shared by every process and machine that connects to it, with a
/// lock that excludes them all (feature `redis`).
///
/// Built on `redis-rs` (the most used Redis client for Rust) with its `ConnectionManager`,
/// which multiplexes one connection and reconnects when it is lost.
///
/// # Keys
///
/// For session key `k` and prefix `p` (default `atlex:`): `p` `s:` `k` holds the value (with a
/// Redis expiry for [`set_expiring`](SessionStore::set_expiring)); `p` `l:` `k` the lock's
/// lease, `<fence>:<owner>` with a `PX` expiry; `p` `f:` `k` the key's fencing counter.
///
/// # Lock
///
/// Taking the lock is one Lua script: when the lease key does not exist, `INCR` the fencing
/// counter and `SET` the lease with its expiry (like `SET NX PX`, and the token carries the
/// fence). Renewal (`PEXPIRE`) and release (`DEL`) are Lua compare-and-extend /
/// compare-and-delete on the token, so a holder never extends or deletes a lease that is no
/// longer its own; a renewal that finds it gone or taken marks the lock lost. A fenced
/// [`compare_and_set`](SessionStore::compare_and_set) is one Lua script that checks the lease
/// still holds this holder's token before it compares and writes; Redis runs scripts
/// atomically, so no takeover can slip in between.
///
/// # Failures
///
/// A connection that cannot be made, is refused or dropped, or a command that times out is
/// [`StoreErrorKind::Unavailable`] (transient); the connection manager reconnects.
#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<Shared>,
}

struct Shared {
    conn: ConnectionManager,
    prefix: String,
    label: String,
    lease: Duration,
    op_timeout: Duration,
    locks: KeyedMutex,
    acquire: Script,
    renew: Script,
    release: Script,
    release_owner: Script,
    swap: Script,
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`) with the default options.
    pub async fn connect(url: &str) -> Result<RedisStore, StoreError> {
        RedisStore::connect_with(url, RedisStoreOptions::default()).await
    }

    /// [`RedisStore::connect`] with options.
    pub async fn connect_with(
        url: &str,
        options: RedisStoreOptions,
    ) -> Result<RedisStore, StoreError> {
        let label = format!("redis store (prefix {:?})", options.prefix);
        // The URL may hold a password: it is never quoted in errors.
        let client = redis::Client::open(url).map_err(|err| {
            StoreError::new(
                format!("{label}: connect: not a valid Redis URL"),
                Some(Box::new(err)),
            )
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.op_timeout))
            .set_response_timeout(Some(options.op_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = tokio::time::timeout(
            options.op_timeout,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| {
            StoreError::new(
                format!(
                    "{label}: connect: no answer within {:?}",
                    options.op_timeout
                ),
                None,
            )
            .with_kind(StoreErrorKind::Unavailable)
        })?
        .map_err(|err| {
            StoreError::new(
                format!("{label}: connect: cannot connect"),
                Some(Box::new(err)),
            )
            .with_kind(StoreErrorKind::Unavailable)
        })?;
        Ok(RedisStore {
            shared: Arc::new(Shared {
                conn,
                prefix: options.prefix,
                label,
                lease: options.lease,
                op_timeout: options.op_timeout,
                locks: KeyedMutex::default(),
                acquire: Script::new(ACQUIRE),
                renew: Script::new(RENEW),
                release: Script::new(RELEASE),
                release_owner: Script::new(RELEASE_OWNER),
                swap: Script::new(SWAP),
            }),
        })
    }

    /// The lease duration of this store's locks.
    pub fn lease_duration(&self) -> Duration {
        self.shared.lease
    }
}

impl Shared {
    fn value_key(&self, key: &str) -> Vec<u8> {
        [self.prefix.as_bytes(), b"s:", key.as_bytes()].concat()
    }

    fn lock_key(&self, key: &str) -> Vec<u8> {
        [self.prefix.as_bytes(), b"l:", key.as_bytes()].concat()
    }

    fn fence_key(&self, key: &str) -> Vec<u8> {
        [self.prefix.as_bytes(), b"f:", key.as_bytes()].concat()
    }

    /// Runs one command (or script) within the operation timeout.
    async fn run<T, Fut>(
        &self,
        op: &str,
        key: &str,
        what: &str,
        work: impl FnOnce(ConnectionManager) -> Fut,
    ) -> Result<T, StoreError>
    where
        Fut: std::future::Future<Output = Result<T, RedisError>>,
    {
        match tokio::time::timeout(self.op_timeout, work(self.conn.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(self.error(op, key, what, err)),
            Err(_) => Err(StoreError::during(
                &self.label,
                op,
                key,
                &format!("{what}: no answer within {:?}", self.op_timeout),
                None,
            )
            .with_kind(StoreErrorKind::Unavailable)),
        }
    }

    fn error(&self, op: &str, key: &str, what: &str, err: RedisError) -> StoreError {
        let transient = err.is_io_error()
            || err.is_connection_dropped()
            || err.is_connection_refusal()
            || err.is_timeout();
        let error = StoreError::during(&self.label, op, key, what, Some(Box::new(err)));
        if transient {
            error.with_kind(StoreErrorKind::Unavailable)
        } else {
            error
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("store", &self.shared.label)
            .field("lease", &self.shared.lease)
            .finish_non_exhaustive()
    }
}

fn decode_value(label: &str, key: &str, bytes: Vec<u8>) -> Result<SessionData, StoreError> {
    String::from_utf8(bytes).map(SessionData::new).map_err(|_| {
        StoreError::during(label, "get", key, "the stored value is not UTF-8", None)
            .with_kind(StoreErrorKind::Corrupt)
    })
}

/// A `SCAN MATCH` pattern matching `literal` exactly, followed by anything.
fn glob_prefix(literal: &[u8]) -> Vec<u8> {
    let mut pattern = Vec::with_capacity(literal.len() + 1);
    for &byte in literal {
        if matches!(byte, b'*' | b'?' | b'[' | b']' | b'\\') {
            pattern.push(b'\\');
        }
        pattern.push(byte);
    }
    pattern.push(b'*');
    pattern
}

impl SessionStore for RedisStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<SessionData>, StoreError>> {
        Box::pin(async move {
            let shared = &self.shared;
            let value: Option<Vec<u8>> = shared
                .run(
                    "get",
                    key,
                    "cannot read the session",
                    |mut conn| async move {
                        redis::cmd("GET")
                            .arg(shared.value_key(key))
                            .query_async(&mut conn)
                            .await
                    },
                )
                .await?;
            value
                .map(|bytes| decode_value(&shared.label, key, bytes))
                .transpose()
        })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a SessionData,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.put(key, value, None))
    }

    fn set_expiring<'a>(
        &'a self,
        key: &'a str,
        value: &'a SessionData,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.put(key, value, Some(ttl)))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let shared = &self.shared;
            shared
                .run(
                    "delete",
                    key,
                    "cannot delete the session",
                    |mut conn| async move {
                        redis::cmd("DEL")
                            .arg(shared.value_key(key))
                            .query_async::<i64>(&mut conn)
                            .await
                    },
                )
                .await
                .map(drop)
        })
    }

    fn compare_and_set<'a>(
        &'a self,
        key: &'a str,
        current: Option<&'a SessionData>,
        new: Option<&'a SessionData>,
        fence: Option<&'a StoreLock>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let shared = &self.shared;
            let token = match fence {
                Some(lock) => {
                    lock.check_for(&shared.label, key)?;
                    let owner = lock
                        .owner()
                        .ok_or_else(|| super::lease_lost(&shared.label, key))?;
                    Some(format!("{}:{owner}", lock.fence()))
                }
                None => None,
            };
            let flag = |present: bool| if present { "1" } else { "0" };
            let outcome: i64 = shared
                .run(
                    "compare_and_set",
                    key,
                    "cannot swap the session",
                    |mut conn| {
                        let mut invocation = shared.swap.prepare_invoke();
                        invocation
                            .key(shared.value_key(key))
                            .key(shared.lock_key(key))
                            .arg(flag(current.is_some()))
                            .arg(current.map_or("", SessionData::as_str))
                            .arg(flag(new.is_some()))
                            .arg(new.map_or("", SessionData::as_str))
                            .arg(flag(token.is_some()))
                            .arg(token.as_deref().unwrap_or(""));
                        async move { invocation.invoke_async(&mut conn).await }
                    },
                )
                .await?;
            match outcome {
                1 => Ok(true),
                0 => Ok(false),
                _ => Err(super::lease_lost(&shared.label, key)),
            }
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            let shared = &self.shared;
            let full = shared.value_key(prefix);
            let pattern = glob_prefix(&full);
            let strip = shared.prefix.len() + 2;
            let mut keys = Vec::new();
            let mut cursor: u64 = 0;
            loop {
                let (next, batch): (u64, Vec<Vec<u8>>) = shared
                    .run("list", prefix, "cannot list the sessions", |mut conn| {
                        let pattern = pattern.clone();
                        async move {
                            redis::cmd("SCAN")
                                .arg(cursor)
                                .arg("MATCH")
                                .arg(pattern)
                                .arg("COUNT")
                                .arg(500)
                                .query_async(&mut conn)
                                .await
                        }
                    })
                    .await?;
                for raw in batch {
                    if raw.starts_with(&full)
                        && let Some(rest) = raw.get(strip..)
                        && let Ok(key) = String::from_utf8(rest.to_vec())
                    {
                        keys.push(key);
                    }
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            keys.sort();
            keys.dedup();
            Ok(keys)
        })
    }

    fn lock<'a>(
        &'a self,
        key: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<StoreLock, StoreError>> {
        Box::pin(super::within(
            &self.shared.label,
            key,
            timeout,
            self.lock_inner(key),
        ))
    }
}

impl RedisStore {
    async fn put(
        &self,
        key: &str,
        value: &SessionData,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        let shared = &self.shared;
        shared
            .run("set", key, "cannot write the session", |mut conn| {
                let mut cmd = redis::cmd("SET");
                cmd.arg(shared.value_key(key)).arg(value.as_str());
                if let Some(ttl) = ttl {
                    cmd.arg("PX").arg(super::duration_ms_u64(ttl).max(1));
                }
                async move { cmd.query_async::<()>(&mut conn).await }
            })
            .await
    }

    async fn lock_inner(&self, key: &str) -> Result<StoreLock, StoreError> {
        let keyed = self.shared.locks.lock(key).await;
        let owner = super::new_owner().map_err(|err| {
            StoreError::during(
                &self.shared.label,
                "lock",
                key,
                "cannot make a lease owner token",
                Some(Box::new(err)),
            )
        })?;
        let mut lease = Lease {
            shared: Arc::clone(&self.shared),
            key: key.to_owned(),
            owner: owner.clone(),
            token: None,
            in_flight: false,
            released: Arc::new(AtomicBool::new(false)),
            renewal: None,
            _keyed: keyed,
        };
        let shared = &self.shared;
        let lease_ms = super::duration_ms_u64(shared.lease);
        let mut backoff = FIRST_BACKOFF;
        let (fence, state) = loop {
            let asked = Instant::now();
            // Recorded before the attempt is sent, so a cancelled attempt is released.
            lease.in_flight = true;
            let fence: i64 = shared
                .run("lock", key, "cannot take the lease", |mut conn| {
                    let mut invocation = shared.acquire.prepare_invoke();
                    invocation
                        .key(shared.lock_key(key))
                        .key(shared.fence_key(key))
                        .arg(owner.as_str())
                        .arg(lease_ms);
                    async move { invocation.invoke_async(&mut conn).await }
                })
                .await?;
            if fence > 0 {
                break (fence, LeaseState::new(asked, shared.lease));
            }
            lease.in_flight = false;
            let extra = fastrand::u64(0..=super::duration_ms_u64(backoff) / 2);
            tokio::time::sleep(backoff + Duration::from_millis(extra)).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        };
        let token = format!("{fence}:{owner}");
        lease.token = Some(token.clone());
        lease.renewal = Some(
            tokio::spawn(renew(
                Arc::clone(shared),
                key.to_owned(),
                token,
                Arc::clone(&lease.released),
                Arc::clone(&state),
            ))
            .abort_handle(),
        );
        let fence = u64::try_from(fence).unwrap_or(0);
        Ok(StoreLock::leased(key, fence, state, lease).with_owner(owner))
    }
}

/// A held (or being taken) lease; released when dropped.
struct Lease {
    shared: Arc<Shared>,
    key: String,
    owner: String,
    token: Option<String>,
    in_flight: bool,
    released: Arc<AtomicBool>,
    renewal: Option<AbortHandle>,
    _keyed: KeyedGuard,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.released.store(true, Ordering::SeqCst);
        if let Some(renewal) = self.renewal.take() {
            renewal.abort();
        }
        let token = self.token.take();
        if token.is_none() && !self.in_flight {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let key = std::mem::take(&mut self.key);
        let owner = std::mem::take(&mut self.owner);
        let release = async move {
            // Best effort: a release that fails lets the lease expire on its own.
            let _ = shared
                .run("unlock", &key, "cannot release the lease", |mut conn| {
                    let invocation = match &token {
                        Some(token) => {
                            let mut invocation = shared.release.prepare_invoke();
                            invocation.key(shared.lock_key(&key)).arg(token.as_str());
                            invocation
                        }
                        None => {
                            let mut invocation = shared.release_owner.prepare_invoke();
                            invocation.key(shared.lock_key(&key)).arg(owner.as_str());
                            invocation
                        }
                    };
                    async move { invocation.invoke_async::<i64>(&mut conn).await }
                })
                .await;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(release);
        }
    }
}

/// Renews the lease every quarter of its duration ([`super::renewal_period`]) until released or lost.
async fn renew(
    shared: Arc<Shared>,
    key: String,
    token: String,
    released: Arc<AtomicBool>,
    state: Arc<LeaseState>,
) {
    let lease_ms = super::duration_ms_u64(shared.lease);
    let period = super::renewal_period(shared.lease);
    loop {
        tokio::time::sleep(period).await;
        if released.load(Ordering::SeqCst) {
            return;
        }
        if state.is_lost() {
            state.lose();
            return;
        }
        let asked = Instant::now();
        let renewed: Result<i64, StoreError> = shared
            .run("renew", &key, "cannot renew the lease", |mut conn| {
                let mut invocation = shared.renew.prepare_invoke();
                invocation
                    .key(shared.lock_key(&key))
                    .arg(token.as_str())
                    .arg(lease_ms);
                async move { invocation.invoke_async(&mut conn).await }
            })
            .await;
        match renewed {
            Ok(1) => state.renewed(asked, shared.lease),
            Ok(_) => {
                state.lose();
                return;
            }
            // Unreachable for now: try again next period, while the lease has time left.
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::store::suite::{Fixture, service_available, store_suite, unique_name};

    /// The test server: Redis on this machine.
    pub(crate) const URL: &str = "redis://127.0.0.1:6379/0";

    /// A store under a key prefix of its own, whose keys are deleted when the fixture is.
    struct Rd {
        prefix: String,
        store: Arc<RedisStore>,
    }

    fn options(prefix: &str) -> RedisStoreOptions {
        RedisStoreOptions::new()
            .prefix(prefix)
            .lease_duration(Duration::from_secs(3))
    }

    impl Fixture for Rd {
        type Store = RedisStore;

        async fn new() -> Option<Rd> {
            if !service_available("Redis", "127.0.0.1:6379") {
                return None;
            }
            let prefix = format!("atlex-test:{}:", unique_name());
            let store = RedisStore::connect_with(URL, options(&prefix))
                .await
                .unwrap();
            Some(Rd {
                prefix,
                store: Arc::new(store),
            })
        }

        fn store(&self) -> &Arc<RedisStore> {
            &self.store
        }

        async fn reopen(&self) -> Option<RedisStore> {
            Some(
                RedisStore::connect_with(URL, options(&self.prefix))
                    .await
                    .unwrap(),
            )
        }

        async fn steal_lease(&self, key: &str) -> bool {
            let shared = &self.store.shared;
            let mut conn = shared.conn.clone();
            let fence: i64 = redis::cmd("INCR")
                .arg(shared.fence_key(key))
                .query_async(&mut conn)
                .await
                .unwrap();
            let () = redis::cmd("SET")
                .arg(shared.lock_key(key))
                .arg(format!("{fence}:thief"))
                .arg("PX")
                .arg(60_000)
                .query_async(&mut conn)
                .await
                .unwrap();
            true
        }
    }

    impl Drop for Rd {
        fn drop(&mut self) {
            let prefix = std::mem::take(&mut self.prefix);
            let cleanup = std::thread::spawn(move || {
                let Ok(client) = redis::Client::open(URL) else {
                    return;
                };
                let Ok(mut conn) = client.get_connection() else {
                    return;
                };
                let pattern = glob_prefix(prefix.as_bytes());
                let keys: Vec<Vec<u8>> = match redis::cmd("KEYS").arg(pattern).query(&mut conn) {
                    Ok(keys) => keys,
                    Err(_) => return,
                };
                for key in keys {
                    let _: Result<i64, _> = redis::cmd("DEL").arg(key).query(&mut conn);
                }
            });
            let _ = cleanup.join();
        }
    }

    store_suite!(Rd);

    #[test]
    fn glob_patterns_are_literal() {
        assert_eq!(glob_prefix(b"a*b?[c]\\"), b"a\\*b\\?\\[c\\]\\\\*".to_vec());
    }

    #[tokio::test]
    async fn an_unreachable_server_is_transient() {
        let options = RedisStoreOptions::new().operation_timeout(Duration::from_secs(2));
        let err = RedisStore::connect_with("redis://127.0.0.1:9/0", options)
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err}");
    }
}
