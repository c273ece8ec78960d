//! [`PostgresStore`]: sessions in PostgreSQL, with a fenced lease lock that works across
//! machines.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::task::AbortHandle;
use tokio_postgres::NoTls;

use super::keyed::{KeyedGuard, KeyedMutex};
use super::{
    BoxFuture, LeaseState, SessionData, SessionStore, StoreError, StoreErrorKind, StoreLock,
};

const FIRST_BACKOFF: Duration = Duration::from_millis(2);
const MAX_BACKOFF: Duration = Duration::from_millis(50);
const MIN_LEASE: Duration = Duration::from_millis(300);

/// Settings for [`PostgresStore::connect_with`].
#[derive(Debug, Clone)]
pub struct PostgresStoreOptions {
    schema: String,
    lease: Duration,
    op_timeout: Duration,
    pool_size: usize,
}

impl Default for PostgresStoreOptions {
    fn default() -> PostgresStoreOptions {
        PostgresStoreOptions {
            schema: "public".to_owned(),
            lease: super::DEFAULT_LEASE,
            op_timeout: Duration::from_secs(5),
            pool_size: 8,
        }
    }
}

impl PostgresStoreOptions {
    /// The defaults: schema `public`, a 2 s lease ([`super::DEFAULT_LEASE`]), a 5 s operation timeout, 8 connections.
    pub fn new() -> PostgresStoreOptions {
        PostgresStoreOptions::default()
    }

    /// The schema holding the store's tables (created if missing). A name of ASCII letters,
    /// digits and `_`, not starting with a digit, at most 63 bytes; anything else makes
    /// `connect_with` fail.
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> PostgresStoreOptions {
        self.schema = schema.into();
        self
    }

    /// How long a lock's lease lasts without renewal (default 2 s,
    /// [`DEFAULT_LEASE`](super::DEFAULT_LEASE); at least 300 ms): the longest a key stays
    /// locked after its holder died or was cut off. Holders renew it every quarter of this.
    #[must_use]
    pub fn lease_duration(mut self, lease: Duration) -> PostgresStoreOptions {
        self.lease = lease.max(MIN_LEASE);
        self
    }

    /// The longest one database operation (including getting a connection) may take before it
    /// fails as [`StoreErrorKind::Unavailable`] (default 5 s).
    #[must_use]
    pub fn operation_timeout(mut self, timeout: Duration) -> PostgresStoreOptions {
        self.op_timeout = timeout;
        self
    }

    /// The most connections the pool opens (default 8, at least 2).
    #[must_use]
    pub fn pool_size(mut self, size: usize) -> PostgresStoreOptions {
        self.pool_size = size.max(2);
        self
    }
}

/// A session store in a PostgreSQL database, shared by every process and machine that
/// connects to it, with a lock that excludes them all (feature `postgres`).
///
/// Built on `tokio-postgres` (the asynchronous driver most Rust PostgreSQL code builds on)
/// with a `deadpool-postgres` pool; connections are plain TCP (`NoTls`): put the database on
/// a trusted network or a local socket.
///
/// # Schema
///
/// [`PostgresStore::connect`] creates, if missing (under an advisory lock, so processes
/// starting together do not race), in the configured schema:
///
/// ```sql
/// CREATE TABLE atlex_sessions (key BYTEA PRIMARY KEY, value BYTEA NOT NULL,
///     updated_at TIMESTAMPTZ NOT NULL, expires_at TIMESTAMPTZ);
/// CREATE TABLE atlex_session_locks (key BYTEA PRIMARY KEY, owner TEXT NOT NULL,
///     fence BIGINT NOT NULL, expires_at TIMESTAMPTZ NOT NULL);
/// ```
///
/// Keys and values are `BYTEA` because PostgreSQL text cannot hold a NUL character. Columns
/// added by later versions are added on connect (`ADD COLUMN IF NOT EXISTS`).
///
/// # Lock
///
/// A lease row per key, taken by one atomic upsert that takes the row over only when its
/// lease has expired, and increments the key's **fencing token** (`fence`) as it does. Times
/// are the database server's clock, so the machines' own clocks do not matter. The holder
/// renews the lease every quarter of its duration (2 s by default); a renewal that finds the row taken (or
/// expired) marks the lock lost. A fenced [`compare_and_set`](SessionStore::compare_and_set)
/// checks, in the same transaction and with the lease row locked against a takeover, that the
/// lease is still this holder's and unexpired; otherwise the write is refused
/// ([`StoreErrorKind::LeaseLost`]). Releasing expires the row (it keeps the fence counter).
///
/// Lease writes (take, renew, release) commit with `synchronous_commit = off`, set for their
/// transaction only: they do not wait for the server to flush its write-ahead log to disk,
/// which is most of a lock's cost otherwise (a lock+unlock p99 of 12–20 ms on loopback,
/// against well under 5 ms without the wait). A server crash can then lose the last few
/// hundred milliseconds of lease writes, and that is safe: a lost take or renewal is a lease
/// that ended early (its holder's fenced writes are refused: the owner token in the row is
/// not theirs), a lost release is a lease that expires on its own. Session data writes stay
/// durable (the server's `synchronous_commit`), and the durable commit of a fenced write
/// flushes the lease write before it too.
///
/// # Failures
///
/// A connection that cannot be made or is lost, a pool wait or operation that takes longer
/// than the operation timeout, a serialization failure or deadlock are
/// [`StoreErrorKind::Unavailable`] (transient). The pool replaces broken connections.
pub struct PostgresStore {
    shared: Arc<Shared>,
}

struct Shared {
    pool: Pool,
    label: String,
    lease: Duration,
    op_timeout: Duration,
    locks: KeyedMutex,
    sql: Sql,
}

/// The statements, with the schema filled in.
struct Sql {
    get: String,
    put: String,
    delete: String,
    update_if: String,
    insert_if_absent: String,
    delete_if: String,
    live: String,
    list: String,
    fence_held: String,
    acquire: String,
    renew: String,
    release: String,
    release_owner: String,
}

impl Sql {
    fn new(schema: &str) -> Sql {
        let s = format!("\"{schema}\".atlex_sessions");
        let l = format!("\"{schema}\".atlex_session_locks");
        let live = "(expires_at IS NULL OR expires_at > clock_timestamp())";
        Sql {
            get: format!("SELECT value FROM {s} WHERE key = $1 AND {live}"),
            put: format!(
                "INSERT INTO {s} (key, value, updated_at, expires_at)
                 VALUES ($1, $2, clock_timestamp(),
                         clock_timestamp() + $3::BIGINT * INTERVAL '1 millisecond')
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value,
                     updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at"
            ),
            delete: format!("DELETE FROM {s} WHERE key = $1"),
            update_if: format!(
                "UPDATE {s} SET value = $3, updated_at = clock_timestamp(), expires_at = NULL
                 WHERE key = $1 AND value = $2 AND {live}"
            ),
            insert_if_absent: format!(
                "INSERT INTO {s} AS t (key, value, updated_at, expires_at)
                 VALUES ($1, $2, clock_timestamp(), NULL)
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value,
                     updated_at = EXCLUDED.updated_at, expires_at = NULL
                 WHERE t.expires_at IS NOT NULL AND t.expires_at <= clock_timestamp()
                 RETURNING 1"
            ),
            delete_if: format!("DELETE FROM {s} WHERE key = $1 AND value = $2 AND {live}"),
            live: format!("SELECT 1 FROM {s} WHERE key = $1 AND {live}"),
            list: format!(
                "SELECT key FROM {s} WHERE key >= $1
                 AND substring(key FROM 1 FOR octet_length($1)) = $1 AND {live} ORDER BY key"
            ),
            fence_held: format!(
                "SELECT 1 FROM {l} WHERE key = $1 AND fence = $2 AND owner = $3
                 AND expires_at > clock_timestamp() FOR SHARE"
            ),
            acquire: format!(
                "INSERT INTO {l} AS t (key, owner, fence, expires_at)
                 VALUES ($1, $2, 1, clock_timestamp() + $3::BIGINT * INTERVAL '1 millisecond')
                 ON CONFLICT (key) DO UPDATE SET owner = EXCLUDED.owner, fence = t.fence + 1,
                     expires_at = EXCLUDED.expires_at
                 WHERE t.expires_at <= clock_timestamp()
                 RETURNING fence"
            ),
            renew: format!(
                "UPDATE {l} SET expires_at = clock_timestamp() + $4::BIGINT * INTERVAL '1 millisecond'
                 WHERE key = $1 AND owner = $2 AND fence = $3 AND expires_at > clock_timestamp()"
            ),
            release: format!(
                "UPDATE {l} SET expires_at = '-infinity'
                 WHERE key = $1 AND owner = $2 AND fence = $3"
            ),
            release_owner: format!(
                "UPDATE {l} SET expires_at = '-infinity' WHERE key = $1 AND owner = $2"
            ),
        }
    }

    fn schema(schema: &str) -> String {
        format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
             CREATE TABLE IF NOT EXISTS \"{schema}\".atlex_sessions (
                 key BYTEA PRIMARY KEY,
                 value BYTEA NOT NULL,
                 updated_at TIMESTAMPTZ NOT NULL,
                 expires_at TIMESTAMPTZ
             );
             ALTER TABLE \"{schema}\".atlex_sessions ADD COLUMN IF NOT EXISTS expires_at TIMESTAMPTZ;
             CREATE TABLE IF NOT EXISTS \"{schema}\".atlex_session_locks (
                 key BYTEA PRIMARY KEY,
                 owner TEXT NOT NULL,
                 fence BIGINT NOT NULL,
                 expires_at TIMESTAMPTZ NOT NULL
             );"
        )
    }
}

fn valid_schema(schema: &str) -> bool {
    !schema.is_empty()
        && schema.len() <= 63
        && schema
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !schema.as_bytes()[0].is_ascii_digit()
}

impl PostgresStore {
    /// Connects to the database at `url` (a `postgres://` URL or a `key=value` connection
    /// string) with the default options, and creates or migrates the tables.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        PostgresStore::connect_with(url, PostgresStoreOptions::default()).await
    }

    /// [`PostgresStore::connect`] with options.
    pub async fn connect_with(
        url: &str,
        options: PostgresStoreOptions,
    ) -> Result<PostgresStore, StoreError> {
        let label = format!("postgres store (schema {})", options.schema);
        let fail = |what: &str| StoreError::new(format!("{label}: connect: {what}"), None);
        if !valid_schema(&options.schema) {
            return Err(fail(&format!(
                "{:?} is not a plain schema name (ASCII letters, digits, _)",
                options.schema
            )));
        }
        // The connection string may hold a password: it is never quoted in errors.
        let config = tokio_postgres::Config::from_str(url).map_err(|err| {
            StoreError::new(
                format!("{label}: connect: not a valid connection string"),
                Some(Box::new(err)),
            )
        })?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.op_timeout))
            .create_timeout(Some(options.op_timeout))
            .recycle_timeout(Some(options.op_timeout))
            .build()
            .map_err(|err| {
                StoreError::new(
                    format!("{label}: connect: cannot build the pool"),
                    Some(Box::new(err)),
                )
            })?;
        let shared = Arc::new(Shared {
            pool,
            label,
            lease: options.lease,
            op_timeout: options.op_timeout,
            locks: KeyedMutex::default(),
            sql: Sql::new(&options.schema),
        });
        let schema = options.schema.clone();
        shared
            .run(
                "connect",
                "",
                "cannot create the tables",
                move |mut client| {
                    let schema = schema.clone();
                    async move {
                        let tx = client.transaction().await?;
                        tx.execute(
                            "SELECT pg_advisory_xact_lock(hashtext($1))",
                            &[&format!("atlex-store-schema:{schema}")],
                        )
                        .await?;
                        tx.batch_execute(&Sql::schema(&schema)).await?;
                        tx.commit().await
                    }
                },
            )
            .await?;
        Ok(PostgresStore { shared })
    }

    /// The lease duration of this store's locks.
    pub fn lease_duration(&self) -> Duration {
        self.shared.lease
    }
}

type PgClient = deadpool_postgres::Object;

/// A database failure of one operation.
enum Failure {
    Pool(deadpool_postgres::PoolError),
    Db(tokio_postgres::Error),
    Timeout,
}

impl From<tokio_postgres::Error> for Failure {
    fn from(err: tokio_postgres::Error) -> Failure {
        Failure::Db(err)
    }
}

impl Shared {
    /// Runs `work` on a pooled connection, within the operation timeout.
    async fn run<T, F, Fut>(
        &self,
        op: &str,
        key: &str,
        what: &str,
        work: F,
    ) -> Result<T, StoreError>
    where
        F: FnOnce(PgClient) -> Fut,
        Fut: std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let attempt = async {
            let client = self.pool.get().await.map_err(Failure::Pool)?;
            work(client).await.map_err(Failure::Db)
        };
        let result = match tokio::time::timeout(self.op_timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Timeout),
        };
        result.map_err(|failure| self.error(op, key, what, failure))
    }

    fn error(&self, op: &str, key: &str, what: &str, failure: Failure) -> StoreError {
        match failure {
            Failure::Timeout => StoreError::during(
                &self.label,
                op,
                key,
                &format!("{what}: no answer within {:?}", self.op_timeout),
                None,
            )
            .with_kind(StoreErrorKind::Unavailable),
            Failure::Pool(err) => {
                StoreError::during(&self.label, op, key, &format!("{what}: no connection"), {
                    Some(Box::new(err))
                })
                .with_kind(StoreErrorKind::Unavailable)
            }
            Failure::Db(err) => {
                let transient = err.is_closed()
                    || err.code().is_none_or(|code| {
                        let code = code.code();
                        // Serialization failure, deadlock, connection exceptions, admin
                        // shutdown, cannot connect now.
                        code == "40001"
                            || code == "40P01"
                            || code.starts_with("08")
                            || code.starts_with("57P")
                    });
                let error = StoreError::during(&self.label, op, key, what, Some(Box::new(err)));
                if transient {
                    error.with_kind(StoreErrorKind::Unavailable)
                } else {
                    error
                }
            }
        }
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("store", &self.shared.label)
            .field("lease", &self.shared.lease)
            .finish_non_exhaustive()
    }
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// What a compare-and-set found.
enum Swap {
    Done(bool),
    LeaseLost,
}

impl SessionStore for PostgresStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<SessionData>, StoreError>> {
        Box::pin(async move {
            let sql = &self.shared.sql;
            let row = self
                .shared
                .run("get", key, "cannot read the session", |client| async move {
                    client.query_opt(&sql.get, &[&key.as_bytes()]).await
                })
                .await?;
            match row {
                Some(row) => {
                    let bytes: Vec<u8> = row.try_get(0).map_err(|err| {
                        self.shared
                            .error("get", key, "unexpected column", Failure::Db(err))
                    })?;
                    decode_value(&self.shared.label, key, bytes).map(Some)
                }
                None => Ok(None),
            }
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
            let sql = &self.shared.sql;
            self.shared
                .run(
                    "delete",
                    key,
                    "cannot delete the session",
                    |client| async move { client.execute(&sql.delete, &[&key.as_bytes()]).await },
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
            let label = &self.shared.label;
            let fence = match fence {
                Some(lock) => {
                    lock.check_for(label, key)?;
                    let owner = lock_owner(lock).ok_or_else(|| super::lease_lost(label, key))?;
                    let fence =
                        i64::try_from(lock.fence()).map_err(|_| super::lease_lost(label, key))?;
                    Some((fence, owner))
                }
                None => None,
            };
            let sql = &self.shared.sql;
            let key_bytes = key.as_bytes();
            let current = current.map(|value| value.as_str().as_bytes());
            let new = new.map(|value| value.as_str().as_bytes());
            let outcome = self
                .shared
                .run(
                    "compare_and_set",
                    key,
                    "cannot swap the session",
                    |mut client| async move {
                        let tx = client.transaction().await?;
                        if let Some((fence, owner)) = &fence {
                            let held = tx
                                .query_opt(&sql.fence_held, &[&key_bytes, fence, owner])
                                .await?;
                            if held.is_none() {
                                return Ok(Swap::LeaseLost);
                            }
                        }
                        let swapped = match (current, new) {
                            (Some(current), Some(new)) => {
                                tx.execute(&sql.update_if, &[&key_bytes, &current, &new])
                                    .await?
                                    == 1
                            }
                            (Some(current), None) => {
                                tx.execute(&sql.delete_if, &[&key_bytes, &current]).await? == 1
                            }
                            (None, Some(new)) => tx
                                .query_opt(&sql.insert_if_absent, &[&key_bytes, &new])
                                .await?
                                .is_some(),
                            (None, None) => tx.query_opt(&sql.live, &[&key_bytes]).await?.is_none(),
                        };
                        tx.commit().await?;
                        Ok(Swap::Done(swapped))
                    },
                )
                .await?;
            match outcome {
                Swap::Done(swapped) => Ok(swapped),
                Swap::LeaseLost => Err(super::lease_lost(label, key)),
            }
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            let sql = &self.shared.sql;
            let rows = self
                .shared
                .run(
                    "list",
                    prefix,
                    "cannot list the sessions",
                    |client| async move { client.query(&sql.list, &[&prefix.as_bytes()]).await },
                )
                .await?;
            let mut keys = Vec::with_capacity(rows.len());
            for row in rows {
                let bytes: Vec<u8> = row.try_get(0).map_err(|err| {
                    self.shared
                        .error("list", prefix, "unexpected column", Failure::Db(err))
                })?;
                // Keys were written from `&str`; anything else is not ours to list.
                if let Ok(key) = String::from_utf8(bytes) {
                    keys.push(key);
                }
            }
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

fn decode_value(label: &str, key: &str, bytes: Vec<u8>) -> Result<SessionData, StoreError> {
    String::from_utf8(bytes).map(SessionData::new).map_err(|_| {
        StoreError::during(label, "get", key, "the stored value is not UTF-8", None)
            .with_kind(StoreErrorKind::Corrupt)
    })
}

/// The lease owner of a lock taken by this store, kept in the guard.
fn lock_owner(lock: &StoreLock) -> Option<String> {
    lock.owner().map(str::to_owned)
}

impl PostgresStore {
    async fn put(
        &self,
        key: &str,
        value: &SessionData,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        let sql = &self.shared.sql;
        let ttl = ttl.map(ms);
        let value = value.as_str().as_bytes();
        self.shared
            .run(
                "set",
                key,
                "cannot write the session",
                |client| async move {
                    client
                        .execute(&sql.put, &[&key.as_bytes(), &value, &ttl])
                        .await
                },
            )
            .await
            .map(drop)
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
            fence: None,
            released: Arc::new(AtomicBool::new(false)),
            renewal: None,
            _keyed: keyed,
        };
        let sql = &self.shared.sql;
        let lease_ms = ms(self.shared.lease);
        let mut backoff = FIRST_BACKOFF;
        let (fence, state) = loop {
            let asked = Instant::now();
            let owner = owner.as_str();
            // The attempt is recorded before it is sent: if this future is dropped while it is
            // in flight, the guard still releases whatever it may have taken.
            lease.fence = Some(-1);
            let taken = self
                .shared
                .run(
                    "lock",
                    key,
                    "cannot take the lease",
                    |mut client| async move {
                        let tx = lease_transaction(&mut client).await?;
                        let taken = tx
                            .query_opt(&sql.acquire, &[&key.as_bytes(), &owner, &lease_ms])
                            .await?;
                        tx.commit().await?;
                        Ok(taken)
                    },
                )
                .await?;
            if let Some(row) = taken {
                let fence: i64 = row.try_get(0).map_err(|err| {
                    self.shared
                        .error("lock", key, "unexpected column", Failure::Db(err))
                })?;
                break (fence, LeaseState::new(asked, self.shared.lease));
            }
            lease.fence = None;
            let extra = fastrand::u64(0..=super::duration_ms_u64(backoff) / 2);
            tokio::time::sleep(backoff + Duration::from_millis(extra)).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        };
        lease.fence = Some(fence);
        lease.renewal = Some(
            tokio::spawn(renew(
                Arc::clone(&self.shared),
                key.to_owned(),
                owner.clone(),
                fence,
                Arc::clone(&lease.released),
                Arc::clone(&state),
            ))
            .abort_handle(),
        );
        let fence_u64 = u64::try_from(fence).unwrap_or(0);
        Ok(StoreLock::leased(key, fence_u64, state, lease).with_owner(owner))
    }
}

/// Begins a transaction for one lease write (acquire, renew, release) whose commit does not
/// wait for its WAL to reach the disk (`SET LOCAL synchronous_commit = off`).
///
/// The wait for that flush is most of a lease write's time (milliseconds, against a fraction
/// of one for the statement on loopback), and skipping it is safe for a lease: a server crash
/// can lose only the last moments of lease writes, never reorder them, so it looks to the
/// holders like a lease that expired early (its holder's renewal and fenced writes find the
/// row not theirs and are refused), or like a release that never happened (the lease expires
/// on its own). A fenced data write checks its lease row in its own, durable, transaction, and
/// that commit flushes every earlier WAL record, the lease write that allowed it included.
/// Session data writes (`set`, `compare_and_set`, `delete`) keep the server's setting.
async fn lease_transaction(
    client: &mut PgClient,
) -> Result<deadpool_postgres::Transaction<'_>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.batch_execute("SET LOCAL synchronous_commit = off")
        .await?;
    Ok(tx)
}

/// A held (or being taken) lease; released when dropped.
struct Lease {
    shared: Arc<Shared>,
    key: String,
    owner: String,
    /// `Some(-1)` while an attempt is in flight (its fence is not known yet), `Some(fence)`
    /// once taken.
    fence: Option<i64>,
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
        let Some(fence) = self.fence else {
            return;
        };
        let shared = Arc::clone(&self.shared);
        let key = std::mem::take(&mut self.key);
        let owner = std::mem::take(&mut self.owner);
        let release = async move {
            let sql = &shared.sql;
            let (key, owner) = (key.as_str(), owner.as_str());
            // Best effort: a release that fails lets the lease expire on its own.
            let _ = shared
                .run(
                    "unlock",
                    key,
                    "cannot release the lease",
                    |mut client| async move {
                        let tx = lease_transaction(&mut client).await?;
                        let released = if fence < 0 {
                            // An attempt cancelled in flight: release whatever it may have taken
                            // (the owner token is this attempt's alone).
                            tx.execute(&sql.release_owner, &[&key.as_bytes(), &owner])
                                .await?
                        } else {
                            tx.execute(&sql.release, &[&key.as_bytes(), &owner, &fence])
                                .await?
                        };
                        tx.commit().await?;
                        Ok(released)
                    },
                )
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
    owner: String,
    fence: i64,
    released: Arc<AtomicBool>,
    state: Arc<LeaseState>,
) {
    let lease_ms = ms(shared.lease);
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
        let sql = &shared.sql;
        let (key, owner) = (key.as_str(), owner.as_str());
        let renewed = shared
            .run(
                "renew",
                key,
                "cannot renew the lease",
                |mut client| async move {
                    let tx = lease_transaction(&mut client).await?;
                    let renewed = tx
                        .execute(&sql.renew, &[&key.as_bytes(), &owner, &fence, &lease_ms])
                        .await?;
                    tx.commit().await?;
                    Ok(renewed)
                },
            )
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

    /// The test database: PostgreSQL on this machine (trust auth), database `test`.
    pub(crate) const URL: &str = "postgres://postgres@127.0.0.1:5432/test";

    /// A store in a schema of its own, dropped when the fixture is.
    struct Pg {
        schema: String,
        store: Arc<PostgresStore>,
    }

    fn options(schema: &str) -> PostgresStoreOptions {
        PostgresStoreOptions::new()
            .schema(schema)
            .lease_duration(Duration::from_secs(3))
    }

    impl Fixture for Pg {
        type Store = PostgresStore;

        async fn new() -> Option<Pg> {
            if !service_available("PostgreSQL", "127.0.0.1:5432") {
                return None;
            }
            let schema = format!("atlex_test_{}", unique_name());
            let store = PostgresStore::connect_with(URL, options(&schema))
                .await
                .unwrap();
            Some(Pg {
                schema,
                store: Arc::new(store),
            })
        }

        fn store(&self) -> &Arc<PostgresStore> {
            &self.store
        }

        async fn reopen(&self) -> Option<PostgresStore> {
            Some(
                PostgresStore::connect_with(URL, options(&self.schema))
                    .await
                    .unwrap(),
            )
        }

        async fn steal_lease(&self, key: &str) -> bool {
            let statement = format!(
                "UPDATE \"{}\".atlex_session_locks SET owner = 'thief', fence = fence + 1,
                 expires_at = clock_timestamp() + INTERVAL '60 seconds' WHERE key = $1",
                self.schema
            );
            let changed = self
                .store
                .shared
                .run("test", key, "steal", |client| async move {
                    client.execute(&statement, &[&key.as_bytes()]).await
                })
                .await
                .unwrap();
            assert_eq!(changed, 1);
            true
        }
    }

    impl Drop for Pg {
        fn drop(&mut self) {
            let schema = std::mem::take(&mut self.schema);
            // Dropped inside a test's runtime: clean up on a thread of its own.
            let cleanup = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    if let Ok((client, conn)) = tokio_postgres::connect(URL, NoTls).await {
                        tokio::spawn(conn);
                        let _ = client
                            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                            .await;
                    }
                });
            });
            let _ = cleanup.join();
        }
    }

    store_suite!(Pg);

    #[tokio::test]
    async fn bad_schema_names_are_refused() {
        for schema in ["", "a\"b", "1abc", "x; DROP TABLE y", &"a".repeat(64)] {
            let err = PostgresStore::connect_with(URL, PostgresStoreOptions::new().schema(schema))
                .await
                .unwrap_err();
            assert!(err.to_string().contains("schema"), "{err}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_server_is_transient() {
        // Nothing listens on port 9 of loopback.
        let options = PostgresStoreOptions::new().operation_timeout(Duration::from_secs(2));
        let err = PostgresStore::connect_with("postgres://postgres@127.0.0.1:9/test", options)
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(!err.to_string().contains("postgres@"), "{err}");
    }

    async fn setting(client: &tokio_postgres::Client) -> Result<String, tokio_postgres::Error> {
        let row = client.query_one("SHOW synchronous_commit", &[]).await?;
        row.try_get(0)
    }

    #[tokio::test]
    async fn only_lease_writes_skip_the_flush_wait() {
        let Some(fx) = Pg::new().await else { return };
        let (outside, inside, after) = fx
            .store
            .shared
            .run("test", "", "", |mut client| async move {
                let outside = setting(&client).await?;
                let tx = lease_transaction(&mut client).await?;
                let inside = tx
                    .query_one("SHOW synchronous_commit", &[])
                    .await?
                    .try_get::<_, String>(0)?;
                tx.commit().await?;
                Ok((outside, inside, setting(&client).await?))
            })
            .await
            .unwrap();
        assert_eq!(inside, "off");
        // The setting is the transaction's alone: the pooled connection, which next runs a
        // data write, is back to the server's (durable) setting.
        assert_ne!(outside, "off");
        assert_eq!(after, outside);
    }

    #[tokio::test]
    async fn an_older_table_is_migrated() {
        let Some(fx) = Pg::new().await else { return };
        let schema = fx.schema.clone();
        fx.store
            .shared
            .run("test", "", "", |client| async move {
                client
                    .batch_execute(&format!(
                        "ALTER TABLE \"{schema}\".atlex_sessions DROP COLUMN expires_at"
                    ))
                    .await
            })
            .await
            .unwrap();
        let reopened = fx.reopen().await.unwrap();
        reopened
            .set_expiring("k", &SessionData::new("v"), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            reopened.get("k").await.unwrap(),
            Some(SessionData::new("v"))
        );
    }
}
