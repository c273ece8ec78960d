//! [`SqliteStore`]: the default session store, one SQLite database file, with a lock that works
//! across processes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::task::AbortHandle;

use super::keyed::{KeyedGuard, KeyedMutex};
use super::{
    BoxFuture, LeaseState, SessionData, SessionStore, StoreError, StoreErrorKind, StoreLock,
};

/// The shortest lease accepted; shorter requests are raised to this.
const MIN_LEASE: Duration = Duration::from_millis(100);
/// First and longest pause between two attempts to take a lease.
const FIRST_BACKOFF: Duration = Duration::from_millis(2);
const MAX_BACKOFF: Duration = Duration::from_millis(50);

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS sessions (
        key TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        expires_at INTEGER
    );
    CREATE TABLE IF NOT EXISTS session_locks (
        key TEXT PRIMARY KEY NOT NULL,
        owner TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        fence INTEGER NOT NULL DEFAULT 0
    );
";

/// Columns added since the first schema, with their definitions: added on open when missing.
const MIGRATIONS: &[(&str, &str, &str)] = &[
    ("sessions", "expires_at", "INTEGER"),
    ("session_locks", "fence", "INTEGER NOT NULL DEFAULT 0"),
];

/// Takes the lease of `?1` for owner `?2` until `?3`, unless a lease that is still valid at
/// `?4` exists, and returns the new fencing token (one more than the key's last); returns no
/// row when the lease is held by someone else.
const ACQUIRE: &str = "
    INSERT INTO session_locks (key, owner, expires_at, fence) VALUES (?1, ?2, ?3, 1)
    ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at,
        fence = session_locks.fence + 1
    WHERE session_locks.expires_at <= ?4
    RETURNING fence
";
/// Extends a lease that is still held (`?4`: the fence, `?5`: now).
const RENEW: &str = "UPDATE session_locks SET expires_at = ?3
    WHERE key = ?1 AND owner = ?2 AND fence = ?4 AND expires_at > ?5";
/// Ends a lease; the row (and its fencing counter) stays.
const RELEASE: &str = "UPDATE session_locks SET expires_at = 0 WHERE key = ?1 AND owner = ?2";
/// The live value of `?1` at `?2`.
const GET: &str =
    "SELECT value FROM sessions WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)";
/// Writes `?2` under `?1` at `?3`, expiring at `?4` (`NULL`: never).
const PUT: &str =
    "INSERT INTO sessions (key, value, updated_at, expires_at) VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (key) DO UPDATE
    SET value = excluded.value, updated_at = excluded.updated_at, expires_at = excluded.expires_at";

/// Settings for [`SqliteStore::open_with`].
#[derive(Debug, Clone)]
pub struct SqliteStoreOptions {
    lease: Duration,
    busy_timeout: Duration,
}

impl Default for SqliteStoreOptions {
    fn default() -> SqliteStoreOptions {
        SqliteStoreOptions {
            lease: super::DEFAULT_LEASE,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

impl SqliteStoreOptions {
    /// The defaults: a 2 s lease ([`super::DEFAULT_LEASE`]) and a 5 s busy timeout.
    pub fn new() -> SqliteStoreOptions {
        SqliteStoreOptions::default()
    }

    /// How long a lock's lease lasts without renewal (default 2 s,
    /// [`DEFAULT_LEASE`](super::DEFAULT_LEASE); at least 100 ms): the longest time a key stays
    /// locked after its holder's process died. Holders renew it every quarter of this.
    #[must_use]
    pub fn lease_duration(mut self, lease: Duration) -> SqliteStoreOptions {
        self.lease = lease.max(MIN_LEASE);
        self
    }

    /// How long a statement waits for another connection's write to finish before failing
    /// (default 5 s).
    #[must_use]
    pub fn busy_timeout(mut self, timeout: Duration) -> SqliteStoreOptions {
        self.busy_timeout = timeout;
        self
    }
}

/// The default session store: sessions in a SQLite database, with a lock that excludes other
/// processes using the same file.
///
/// There is no default location: the application chooses where its database lives (for
/// example in its data directory).
///
/// `Debug` shows only the path and the lease duration.
///
/// Built on `rusqlite` with its `bundled` feature: SQLite is compiled in, so nothing needs to be
/// installed, and the version (and its upsert support) is known.
///
/// # Schema
///
/// [`SqliteStore::open`] creates, if missing:
///
/// ```sql
/// CREATE TABLE sessions (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL,
///                        updated_at INTEGER NOT NULL,         -- Unix time, milliseconds
///                        expires_at INTEGER);                 -- NULL: never
/// CREATE TABLE session_locks (key TEXT PRIMARY KEY NOT NULL, owner TEXT NOT NULL,
///                             expires_at INTEGER NOT NULL,    -- Unix time, milliseconds
///                             fence INTEGER NOT NULL DEFAULT 0);
/// ```
///
/// Tables of an earlier version (without `expires_at` / `fence`) get the missing columns on
/// open.
///
/// The database runs in WAL mode with `synchronous = FULL` (a `set` is on disk when it
/// returns) and a busy timeout (5 s by default) so that processes sharing the file wait for
/// each other's writes instead of failing. On Unix a database file created by `open` gets mode
/// `0600`, and SQLite gives its `-wal` and `-shm` files the same mode. The store may share a
/// database with the application's own tables, as long as it has `sessions` and
/// `session_locks` to itself.
///
/// # Lock semantics
///
/// `lock(key)` takes two locks, in order:
///
/// 1. an in-process async mutex for the key: tasks of one process queue fairly (first come,
///    first served) and only the head of the queue polls the database;
/// 2. a **lease**: a row of `session_locks` owned by a random token. It is taken by one atomic
///    statement, an insert that, when the key already has a row, takes the row over only if its
///    lease has expired, and increments the key's **fencing token** (`fence`) as it does.
///    While another live holder has the row the statement changes nothing, and the locker
///    retries after a short backoff (2 ms doubling to 50 ms, with jitter).
///
/// A renewal that finds the row expired or taken over marks the lock lost
/// ([`StoreLock::is_lost`]); so does a renewal that did not happen in time (a stalled
/// process). A fenced [`compare_and_set`](SessionStore::compare_and_set) checks the fence and
/// the lease's expiry in the same immediate transaction as the write, so a holder whose lease
/// was lost can no longer write.
///
/// While the guard is held, a background task renews the lease every quarter of its duration
/// (2 s by default, see [`SqliteStoreOptions::lease_duration`]), so a live holder keeps the
/// lock however long it needs it. Dropping the guard stops the renewal and expires the row (it
/// keeps the fence counter), and then lets the next in-process waiter in. The release runs at once in `drop` when it cannot
/// block (the lease connection is free and the database takes the write without waiting; lease
/// writes are not `fsync`ed), so a process that drops the guard and exits right away does not
/// leave the key locked; otherwise it runs on a blocking thread (best effort: if the process
/// exits before that thread runs, the lease expires on its own). If the holder's process dies,
/// nothing renews or releases the row, and other processes get the lock when the lease expires:
/// at most one lease duration after the crash (2 s by default). If a holder is stalled for
/// longer than the lease minus one renewal period (its renewals cannot run), its lease can
/// expire and be taken over, and its writes are refused; raise the lease if you expect longer
/// pauses and can accept a longer wait after a crash.
///
/// The lease excludes every process (and every `SqliteStore`) using the same database file.
/// Lease times are wall-clock times, so processes sharing the file must share a clock: keep the
/// database on a local disk, not on a network file system (SQLite's WAL mode requires that
/// anyway).
///
/// Cancelling a `lock` future is safe: a lease taken by an attempt that was in flight is
/// released as if the guard had been dropped.
///
/// # Blocking
///
/// Every database call runs on tokio's blocking thread pool (`spawn_blocking`), never on the
/// async runtime's threads (except the non-waiting release described above). A store has two
/// connections: one for sessions (`synchronous = FULL`) and one for leases
/// (`synchronous = NORMAL`: a lease lost to a power cut is harmless, and polling costs no
/// `fsync`). Each serialises this process's calls of its kind, which is plenty for session
/// traffic. An in-memory store has a single connection.
pub struct SqliteStore {
    shared: Arc<Shared>,
}

struct Shared {
    /// Sessions (`synchronous = FULL`).
    conn: Mutex<Connection>,
    /// Leases (`synchronous = NORMAL`: a lease lost to a power cut is harmless, and polling
    /// then costs no `fsync`). `None` for an in-memory database, whose leases use `conn`.
    lease_conn: Option<Mutex<Connection>>,
    path: Option<PathBuf>,
    label: String,
    lease: Duration,
    busy_timeout: Duration,
    locks: KeyedMutex,
}

/// Which connection a call uses.
#[derive(Clone, Copy)]
enum Conn {
    Sessions,
    Leases,
}

impl Shared {
    fn mutex(&self, which: Conn) -> &Mutex<Connection> {
        match (which, &self.lease_conn) {
            (Conn::Leases, Some(lease_conn)) => lease_conn,
            _ => &self.conn,
        }
    }

    fn conn(&self, which: Conn) -> MutexGuard<'_, Connection> {
        // A panic while holding the connection cannot leave a transaction half-done (SQLite
        // rolls back unfinished statements), so a poisoned connection is still usable.
        self.mutex(which)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection, if no other thread is using it right now.
    fn try_conn(&self, which: Conn) -> Option<MutexGuard<'_, Connection>> {
        match self.mutex(which).try_lock() {
            Ok(conn) => Some(conn),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    fn error(&self, op: &str, key: &str, what: &str, err: rusqlite::Error) -> StoreError {
        let busy = is_busy(&err);
        let error = StoreError::during(&self.label, op, key, what, Some(Box::new(err)));
        if busy {
            error.with_kind(StoreErrorKind::Unavailable)
        } else {
            error
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` with the default options: creates the
    /// tables, turns on WAL mode and sets a busy timeout.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, SqliteStoreOptions::default()).await
    }

    /// Opens (creating if needed) the database at `path` with the given options.
    pub async fn open_with(
        path: impl AsRef<Path>,
        options: SqliteStoreOptions,
    ) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let label = format!("sqlite store {}", path.display());
        let opened = {
            let path = path.clone();
            let label = label.clone();
            let options = options.clone();
            tokio::task::spawn_blocking(move || open_file(&label, &path, &options)).await
        };
        let (conn, lease_conn) = match opened {
            Ok(conns) => conns?,
            Err(err) => {
                return Err(StoreError::new(
                    format!("{label}: open: the blocking task failed"),
                    Some(Box::new(err)),
                ));
            }
        };
        Ok(SqliteStore::from_connections(
            conn,
            Some(lease_conn),
            Some(path),
            label,
            &options,
        ))
    }

    /// A store in a private in-memory database (for tests): nothing is kept, and no other
    /// process can see it.
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        SqliteStore::in_memory_with(SqliteStoreOptions::default())
    }

    /// [`SqliteStore::in_memory`] with the given options.
    pub fn in_memory_with(options: SqliteStoreOptions) -> Result<SqliteStore, StoreError> {
        let label = "sqlite store :memory:".to_owned();
        let fail = |what: &str, err: rusqlite::Error| {
            StoreError::new(format!("{label}: open: {what}"), Some(Box::new(err)))
        };
        let conn = Connection::open_in_memory()
            .map_err(|err| fail("cannot open an in-memory database", err))?;
        migrate(&conn).map_err(|err| fail("cannot create the tables", err))?;
        Ok(SqliteStore::from_connections(
            conn, None, None, label, &options,
        ))
    }

    fn from_connections(
        conn: Connection,
        lease_conn: Option<Connection>,
        path: Option<PathBuf>,
        label: String,
        options: &SqliteStoreOptions,
    ) -> SqliteStore {
        SqliteStore {
            shared: Arc::new(Shared {
                conn: Mutex::new(conn),
                lease_conn: lease_conn.map(Mutex::new),
                path,
                label,
                lease: options.lease,
                busy_timeout: options.busy_timeout,
                locks: KeyedMutex::default(),
            }),
        }
    }

    /// The database file (`None` for an in-memory store).
    pub fn path(&self) -> Option<&Path> {
        self.shared.path.as_deref()
    }

    /// The lease duration of this store's locks.
    pub fn lease_duration(&self) -> Duration {
        self.shared.lease
    }

    /// Runs `work` on the sessions connection, on a blocking thread.
    async fn run<T: Send + 'static>(
        &self,
        op: &'static str,
        key: &str,
        what: &'static str,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.run_on(Conn::Sessions, op, key, what, work).await
    }

    /// Runs `work` on connection `which`, on a blocking thread.
    async fn run_on<T: Send + 'static>(
        &self,
        which: Conn,
        op: &'static str,
        key: &str,
        what: &'static str,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let shared = Arc::clone(&self.shared);
        let key_owned = key.to_owned();
        let joined = tokio::task::spawn_blocking(move || {
            let conn = shared.conn(which);
            work(&conn).map_err(|err| shared.error(op, &key_owned, what, err))
        })
        .await;
        match joined {
            Ok(result) => result,
            Err(err) => Err(StoreError::during(
                &self.shared.label,
                op,
                key,
                "the blocking task failed",
                Some(Box::new(err)),
            )),
        }
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.shared.path)
            .field("lease", &self.shared.lease)
            .finish_non_exhaustive()
    }
}

fn open_file(
    label: &str,
    path: &Path,
    options: &SqliteStoreOptions,
) -> Result<(Connection, Connection), StoreError> {
    let fail = |what: &str, err: Box<dyn std::error::Error + Send + Sync>| {
        StoreError::new(format!("{label}: open: {what}"), Some(err))
    };
    create_private_file(path)
        .map_err(|err| fail("cannot create the database file", Box::new(err)))?;
    let connect = |synchronous: &str| {
        let conn = Connection::open(path)
            .map_err(|err| fail("cannot open the database", Box::new(err)))?;
        conn.busy_timeout(options.busy_timeout)
            .map_err(|err| fail("cannot set the busy timeout", Box::new(err)))?;
        conn.pragma_update(None, "synchronous", synchronous)
            .map_err(|err| fail("cannot set synchronous", Box::new(err)))?;
        Ok::<_, StoreError>(conn)
    };
    let conn = connect("FULL")?;
    // WAL mode is a property of the database file, kept once set.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|err| fail("cannot turn on WAL mode", Box::new(err)))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::new(
            format!("{label}: open: the database refused WAL mode (it stays in {mode:?} mode)"),
            None,
        ));
    }
    migrate(&conn).map_err(|err| fail("cannot create or migrate the tables", Box::new(err)))?;
    let lease_conn = connect("NORMAL")?;
    Ok((conn, lease_conn))
}

/// Whether SQLite reported a busy or locked database (another connection is writing).
fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(err, _)
    if matches!(
        err.code,
        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
    ))
}

/// Creates the tables, and adds the columns of later versions to tables of earlier ones.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)?;
    for (table, column, definition) in MIGRATIONS {
        let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
        let names = stmt
            .query_map([], |row| row.get::<_, String>(1))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        if !names.iter().any(|name| name == column) {
            conn.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {definition}"
            ))?;
        }
    }
    Ok(())
}

/// What a compare-and-set found.
enum Swap {
    Done(bool),
    LeaseLost,
}

/// The compare-and-set of [`SessionStore::compare_and_set`], in one immediate transaction.
fn swap(
    conn: &Connection,
    key: &str,
    current: Option<&str>,
    new: Option<&str>,
    fence: Option<i64>,
) -> rusqlite::Result<Swap> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        let now = now_ms();
        if let Some(fence) = fence {
            let held: Option<i64> = conn
                .query_row(
                    "SELECT 1 FROM session_locks WHERE key = ?1 AND fence = ?2 AND expires_at > ?3",
                    params![key, fence, now],
                    |row| row.get(0),
                )
                .optional()?;
            if held.is_none() {
                return Ok(Swap::LeaseLost);
            }
        }
        let stored: Option<String> = conn
            .query_row(GET, params![key, now], |row| row.get(0))
            .optional()?;
        if stored.as_deref() != current {
            return Ok(Swap::Done(false));
        }
        match new {
            Some(value) => conn.execute(PUT, params![key, value, now, None::<i64>])?,
            None => conn.execute("DELETE FROM sessions WHERE key = ?1", params![key])?,
        };
        Ok(Swap::Done(true))
    })();
    match result {
        Ok(outcome) => {
            conn.execute_batch("COMMIT")?;
            Ok(outcome)
        }
        Err(err) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(err)
        }
    }
}

/// Creates the database file with mode 0600 if it does not exist yet, so that SQLite (which
/// keeps an existing file's mode) never creates it readable by others.
#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}

#[cfg(not(unix))]
fn create_private_file(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Unix time in milliseconds.
fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl SessionStore for SqliteStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<SessionData>, StoreError>> {
        Box::pin(async move {
            let owned = key.to_owned();
            self.run("get", key, "cannot read the session", move |conn| {
                conn.query_row(GET, params![owned, now_ms()], |row| row.get::<_, String>(0))
                    .optional()
            })
            .await
            .map(|value| value.map(SessionData::new))
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
            let owned = key.to_owned();
            self.run("delete", key, "cannot delete the session", move |conn| {
                conn.execute("DELETE FROM sessions WHERE key = ?1", params![owned])
                    .map(drop)
            })
            .await
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
            let fence = match fence {
                Some(lock) => {
                    lock.check_for(&self.shared.label, key)?;
                    Some(
                        i64::try_from(lock.fence())
                            .map_err(|_| super::lease_lost(&self.shared.label, key))?,
                    )
                }
                None => None,
            };
            let owned = key.to_owned();
            let current = current.map(|value| value.as_str().to_owned());
            let new = new.map(|value| value.as_str().to_owned());
            let outcome = self
                .run(
                    "compare_and_set",
                    key,
                    "cannot swap the session",
                    move |conn| swap(conn, &owned, current.as_deref(), new.as_deref(), fence),
                )
                .await?;
            match outcome {
                Swap::Done(swapped) => Ok(swapped),
                Swap::LeaseLost => Err(super::lease_lost(&self.shared.label, key)),
            }
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            let owned = prefix.to_owned();
            self.run("list", prefix, "cannot list the sessions", move |conn| {
                // Keys sharing a prefix are contiguous in the default (byte-wise) order.
                let mut stmt = conn.prepare(
                    "SELECT key FROM sessions WHERE key >= ?1
                     AND (expires_at IS NULL OR expires_at > ?2) ORDER BY key",
                )?;
                let mut keys = Vec::new();
                let mut rows = stmt.query(params![owned, now_ms()])?;
                while let Some(row) = rows.next()? {
                    let key: String = row.get(0)?;
                    if !key.starts_with(&owned) {
                        break;
                    }
                    keys.push(key);
                }
                Ok(keys)
            })
            .await
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

impl SqliteStore {
    async fn put(
        &self,
        key: &str,
        value: &SessionData,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        let owned = key.to_owned();
        let value = value.as_str().to_owned();
        self.run("set", key, "cannot write the session", move |conn| {
            let now = now_ms();
            let expires = ttl.map(|ttl| now.saturating_add(duration_ms(ttl)));
            conn.execute(PUT, params![owned, value, now, expires])
                .map(drop)
        })
        .await
    }

    async fn lock_inner(&self, key: &str) -> Result<StoreLock, StoreError> {
        let keyed = self.shared.locks.lock(key).await;
        let token = new_token().map_err(|err| {
            StoreError::during(
                &self.shared.label,
                "lock",
                key,
                "cannot make a lease owner token",
                Some(Box::new(err)),
            )
        })?;
        // From here on, dropping `lease` (on error or cancellation) releases whatever an
        // attempt may have taken.
        let mut lease = Lease {
            shared: Arc::clone(&self.shared),
            key: key.to_owned(),
            owner: token.owner,
            released: Arc::new(AtomicBool::new(false)),
            renewal: None,
            keyed: Some(keyed),
        };
        let mut jitter = token.seed;
        let mut backoff = FIRST_BACKOFF;
        let (fence, state) = loop {
            let asked = Instant::now();
            if let Some(fence) = self.try_acquire(&lease).await? {
                break (fence, LeaseState::new(asked, self.shared.lease));
            }
            jitter = xorshift(jitter);
            let extra = jitter % (duration_ms_u64(backoff) / 2 + 1);
            tokio::time::sleep(backoff + Duration::from_millis(extra)).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        };
        lease.renewal = Some(
            tokio::spawn(renew(
                Arc::clone(&self.shared),
                lease.key.clone(),
                lease.owner.clone(),
                fence,
                Arc::clone(&lease.released),
                Arc::clone(&state),
            ))
            .abort_handle(),
        );
        let fence = u64::try_from(fence).unwrap_or(0);
        Ok(StoreLock::leased(key, fence, state, lease))
    }
    /// One attempt to take the lease: its fencing token, `None` when someone else holds it.
    async fn try_acquire(&self, lease: &Lease) -> Result<Option<i64>, StoreError> {
        let key = lease.key.clone();
        let owner = lease.owner.clone();
        let released = Arc::clone(&lease.released);
        let lease_ms = duration_ms(self.shared.lease);
        let take = move |conn: &Connection| {
            // Checked under the connection mutex, which the release also takes: an attempt
            // either runs before the release's DELETE or not at all.
            if released.load(Ordering::SeqCst) {
                return Ok(None);
            }
            let now = now_ms();
            match conn
                .query_row(
                    ACQUIRE,
                    params![key, owner, now.saturating_add(lease_ms), now],
                    |row| row.get::<_, i64>(0),
                )
                .optional()
            {
                Ok(fence) => Ok(fence),
                // Another process is writing; treat as "not yet" and poll again.
                Err(err) if is_busy(&err) => Ok(None),
                Err(err) => Err(err),
            }
        };
        self.run_on(
            Conn::Leases,
            "lock",
            &lease.key,
            "cannot take the lease",
            take,
        )
        .await
    }
}

/// Keeps a held (or being acquired) lease; releases it when dropped.
struct Lease {
    shared: Arc<Shared>,
    key: String,
    owner: String,
    /// Set on drop; attempts and renewals still queued then do nothing.
    released: Arc<AtomicBool>,
    renewal: Option<AbortHandle>,
    /// The in-process mutex, let go only after the lease row is deleted.
    keyed: Option<KeyedGuard>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.released.store(true, Ordering::SeqCst);
        if let Some(renewal) = self.renewal.take() {
            renewal.abort();
        }
        let shared = Arc::clone(&self.shared);
        let key = std::mem::take(&mut self.key);
        let owner = std::mem::take(&mut self.owner);
        let keyed = self.keyed.take();
        // Release at once when that cannot block: the connection is free and the database
        // takes the write without waiting (the lease connection does not `fsync` commits). A
        // release handed to a blocking thread could be lost if the process exits right after
        // dropping the guard, leaving the key locked until the lease expires.
        if release_now(&shared, &key, &owner) {
            drop(keyed);
            return;
        }
        let release = move || {
            // Best effort: if this fails, the lease expires on its own.
            let _ = shared
                .conn(Conn::Leases)
                .execute(RELEASE, params![key, owner]);
            drop(keyed);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(release);
            }
            // Dropped outside a runtime: blocking here is allowed.
            Err(_) => release(),
        }
    }
}

/// Deletes the lease row without waiting for anything; `false` if that was not possible.
fn release_now(shared: &Shared, key: &str, owner: &str) -> bool {
    let Some(conn) = shared.try_conn(Conn::Leases) else {
        return false;
    };
    if conn.busy_timeout(Duration::ZERO).is_err() {
        return false;
    }
    let released = conn.execute(RELEASE, params![key, owner]).is_ok();
    // If this fails, lease statements fail fast on a busy database instead of waiting: lock
    // attempts are retried anyway, and releases fall back to a blocking thread.
    let _ = conn.busy_timeout(shared.busy_timeout);
    released
}

/// Renews the lease every quarter of its duration ([`super::renewal_period`]) until the guard is dropped (which aborts this
/// task) or the lease turns out to be lost, which it records in `state`.
async fn renew(
    shared: Arc<Shared>,
    key: String,
    owner: String,
    fence: i64,
    released: Arc<AtomicBool>,
    state: Arc<LeaseState>,
) {
    let lease_ms = duration_ms(shared.lease);
    let period = super::renewal_period(shared.lease);
    loop {
        tokio::time::sleep(period).await;
        if state.is_lost() {
            // Stalled past the lease: another holder may have it, so it is not extended.
            state.lose();
            return;
        }
        let shared = Arc::clone(&shared);
        let key = key.clone();
        let owner = owner.clone();
        let released = Arc::clone(&released);
        let asked = Instant::now();
        let renewed = tokio::task::spawn_blocking(move || {
            if released.load(Ordering::SeqCst) {
                return Ok(None);
            }
            let now = now_ms();
            shared
                .conn(Conn::Leases)
                .execute(
                    RENEW,
                    params![key, owner, now.saturating_add(lease_ms), fence, now],
                )
                .map(Some)
        })
        .await;
        match renewed {
            Ok(Ok(Some(1))) => state.renewed(asked, shared_lease(lease_ms)),
            // Released meanwhile.
            Ok(Ok(None)) => return,
            // The row expired or belongs to someone else: this holder stalled past its lease
            // and lost it.
            Ok(Ok(Some(_))) => {
                state.lose();
                return;
            }
            // A transient failure (busy database): try again next period, while the lease
            // still has two periods to run.
            Ok(Err(_)) | Err(_) => {}
        }
    }
}

fn shared_lease(lease_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(lease_ms).unwrap_or(0))
}

struct Token {
    owner: String,
    seed: u64,
}

/// A fresh lease owner (`<pid>-<random>`) and a seed for the backoff jitter.
fn new_token() -> Result<Token, getrandom::Error> {
    let mut high = [0u8; 8];
    let mut low = [0u8; 8];
    getrandom::fill(&mut high)?;
    getrandom::fill(&mut low)?;
    let (a, b) = (u64::from_le_bytes(high), u64::from_le_bytes(low));
    Ok(Token {
        owner: format!("{}-{a:016x}{b:016x}", std::process::id()),
        seed: a | 1,
    })
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

fn duration_ms_u64(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::store::suite::{Fixture, store_suite};

    struct File {
        dir: tempfile::TempDir,
        store: Arc<SqliteStore>,
    }

    impl Fixture for File {
        type Store = SqliteStore;

        async fn new() -> Option<File> {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteStore::open_with(dir.path().join("sessions.db"), suite_options())
                .await
                .unwrap();
            Some(File {
                dir,
                store: Arc::new(store),
            })
        }

        fn store(&self) -> &Arc<SqliteStore> {
            &self.store
        }

        async fn reopen(&self) -> Option<SqliteStore> {
            Some(
                SqliteStore::open_with(self.dir.path().join("sessions.db"), suite_options())
                    .await
                    .unwrap(),
            )
        }

        async fn steal_lease(&self, key: &str) -> bool {
            let key = key.to_owned();
            self.store
                .run("test", "", "", move |conn| {
                    conn.execute(
                        "UPDATE session_locks SET owner = 'thief', fence = fence + 1,
                         expires_at = ?2 WHERE key = ?1",
                        params![key, now_ms() + 60_000],
                    )
                })
                .await
                .unwrap();
            true
        }
    }

    /// A short lease, so that the holder of a stolen lease learns of it within a second.
    fn suite_options() -> SqliteStoreOptions {
        SqliteStoreOptions::new().lease_duration(Duration::from_secs(3))
    }

    struct Memory(Arc<SqliteStore>);

    impl Fixture for Memory {
        type Store = SqliteStore;

        async fn new() -> Option<Memory> {
            Some(Memory(Arc::new(
                SqliteStore::in_memory_with(suite_options()).unwrap(),
            )))
        }

        fn store(&self) -> &Arc<SqliteStore> {
            &self.0
        }

        async fn reopen(&self) -> Option<SqliteStore> {
            None
        }

        async fn steal_lease(&self, key: &str) -> bool {
            let key = key.to_owned();
            self.0
                .run("test", "", "", move |conn| {
                    conn.execute(
                        "UPDATE session_locks SET owner = 'thief', fence = fence + 1,
                         expires_at = ?2 WHERE key = ?1",
                        params![key, now_ms() + 60_000],
                    )
                })
                .await
                .unwrap();
            true
        }
    }

    mod file {
        use super::*;
        store_suite!(File);
    }

    mod memory {
        use super::*;
        store_suite!(Memory);
    }

    async fn lease_rows(store: &SqliteStore) -> Vec<(String, String, i64)> {
        store
            .run("test", "", "", |conn| {
                let mut stmt =
                    conn.prepare(
                    "SELECT key, owner, expires_at FROM session_locks WHERE expires_at > 0 ORDER BY key",
                )?;
                let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
                rows.collect()
            })
            .await
            .unwrap()
    }

    /// Waits until the background release of a dropped guard has run.
    async fn wait_for_no_leases(store: &SqliteStore) {
        for _ in 0..200 {
            if lease_rows(store).await.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("leases left behind: {:?}", lease_rows(store).await);
    }

    #[tokio::test]
    async fn schema_and_settings() {
        let fx = File::new().await.unwrap();
        let (mode, sync, timeout) = fx
            .store
            .run("test", "", "", |conn| {
                Ok((
                    conn.pragma_query_value(None, "journal_mode", |row| row.get::<_, String>(0))?,
                    conn.pragma_query_value(None, "synchronous", |row| row.get::<_, i64>(0))?,
                    conn.pragma_query_value(None, "busy_timeout", |row| row.get::<_, i64>(0))?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous = FULL");
        assert_eq!(timeout, 5000);
        let (lease_sync, lease_timeout) = fx
            .store
            .run_on(Conn::Leases, "test", "", "", |conn| {
                Ok((
                    conn.pragma_query_value(None, "synchronous", |row| row.get::<_, i64>(0))?,
                    conn.pragma_query_value(None, "busy_timeout", |row| row.get::<_, i64>(0))?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(lease_sync, 1, "synchronous = NORMAL");
        assert_eq!(lease_timeout, 5000);

        fx.store.set("k", &SessionData::new("v")).await.unwrap();
        let (value, updated_at) = fx
            .store
            .run("test", "", "", |conn| {
                conn.query_row(
                    "SELECT value, updated_at FROM sessions WHERE key = 'k'",
                    [],
                    |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)),
                )
            })
            .await
            .unwrap();
        assert_eq!(value, "v");
        assert!((now_ms() - updated_at).abs() < 60_000, "{updated_at}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn database_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let fx = File::new().await.unwrap();
        fx.store.set("k", &SessionData::new("v")).await.unwrap();
        for name in ["sessions.db", "sessions.db-wal", "sessions.db-shm"] {
            let mode = std::fs::metadata(fx.dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }

    #[tokio::test]
    async fn guard_drop_deletes_the_lease() {
        let store = SqliteStore::in_memory().unwrap();
        let guard = store
            .lock("password:did:plc:abc", Duration::from_secs(30))
            .await
            .unwrap();
        let rows = lease_rows(&store).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].0, "password:did:plc:abc");
        assert!(rows[0].2 > now_ms(), "the lease is in the future");
        drop(guard);
        wait_for_no_leases(&store).await;
    }

    #[tokio::test]
    async fn cancelled_lock_leaves_no_lease() {
        let fx = File::new().await.unwrap();
        let other = fx.reopen().await.unwrap();
        let held = fx.store.lock("k", Duration::from_secs(30)).await.unwrap();
        // The other store polls the database (it does not share our in-process mutex) and is
        // cancelled in the middle.
        let attempt = tokio::time::timeout(
            Duration::from_millis(100),
            other.lock("k", Duration::from_secs(30)),
        )
        .await;
        assert!(attempt.is_err());
        drop(held);
        wait_for_no_leases(&other).await;
    }

    #[tokio::test]
    async fn two_stores_on_one_file_exclude_each_other() {
        let fx = File::new().await.unwrap();
        let other = fx.reopen().await.unwrap();
        let held = fx.store.lock("k", Duration::from_secs(30)).await.unwrap();
        let attempt = tokio::time::timeout(
            Duration::from_millis(300),
            other.lock("k", Duration::from_secs(30)),
        )
        .await;
        assert!(attempt.is_err(), "the lease did not exclude a second store");
        assert!(
            tokio::time::timeout(
                Duration::from_secs(5),
                other.lock("k2", Duration::from_secs(30))
            )
            .await
            .is_ok()
        );
        drop(held);
        assert!(
            tokio::time::timeout(
                Duration::from_secs(5),
                other.lock("k", Duration::from_secs(30))
            )
            .await
            .is_ok()
        );
    }

    #[tokio::test]
    async fn expired_lease_is_taken_over() {
        let fx = File::new().await.unwrap();
        // A lease left by a holder that died: nobody renews or deletes it.
        let expires = now_ms() + 400;
        fx.store
            .run("test", "", "", move |conn| {
                conn.execute(
                    "INSERT INTO session_locks (key, owner, expires_at) VALUES ('k', 'dead', ?1)",
                    params![expires],
                )
            })
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let guard = tokio::time::timeout(
            Duration::from_secs(5),
            fx.store.lock("k", Duration::from_secs(30)),
        )
        .await
        .expect("the expired lease was not taken over")
        .unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "the lease was taken before it expired ({:?})",
            started.elapsed()
        );
        let rows = lease_rows(&fx.store).await;
        assert_ne!(rows[0].1, "dead");
        drop(guard);
    }

    #[tokio::test]
    async fn held_lease_is_renewed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let options = SqliteStoreOptions::new().lease_duration(Duration::from_millis(300));
        let a = SqliteStore::open_with(&path, options.clone())
            .await
            .unwrap();
        let b = SqliteStore::open_with(&path, options).await.unwrap();
        let held = a.lock("k", Duration::from_secs(30)).await.unwrap();
        // Several lease durations later, the holder still has it.
        let attempt = tokio::time::timeout(
            Duration::from_millis(1200),
            b.lock("k", Duration::from_secs(30)),
        )
        .await;
        assert!(attempt.is_err(), "a held lease expired");
        drop(held);
        assert!(
            tokio::time::timeout(Duration::from_secs(5), b.lock("k", Duration::from_secs(30)))
                .await
                .is_ok()
        );
    }

    #[test]
    fn guard_dropped_outside_a_runtime_releases() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = SqliteStore::in_memory().unwrap();
        let guard = runtime
            .block_on(store.lock("k", Duration::from_secs(30)))
            .unwrap();
        drop(guard); // no runtime entered here: released inline
        let store_ref = &store;
        let rows = runtime.block_on(lease_rows(store_ref));
        assert!(rows.is_empty(), "{rows:?}");
    }

    #[test]
    fn options_clamp_the_lease() {
        let options = SqliteStoreOptions::new().lease_duration(Duration::from_millis(1));
        assert_eq!(options.lease, MIN_LEASE);
    }

    #[tokio::test]
    async fn errors_name_store_operation_and_key() {
        let store = SqliteStore::in_memory().unwrap();
        store
            .run("test", "", "", |conn| {
                conn.execute_batch("DROP TABLE sessions")
            })
            .await
            .unwrap();
        let err = store.get("password:did:plc:abc").await.unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains("sqlite store"), "{shown}");
        assert!(shown.contains("get"), "{shown}");
        assert!(shown.contains("password:did:plc:abc"), "{shown}");
        assert!(std::error::Error::source(&err).is_some());
        let err = store
            .set("k", &SessionData::new("secret-token-value"))
            .await
            .unwrap_err();
        assert!(!format!("{err} {err:?}").contains("secret-token-value"));
    }
}
