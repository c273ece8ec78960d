//! The refresh engine every session kind that refreshes shares (password sessions now, OAuth
//! next): a session kind says how to refresh its credentials with the server, how to read their
//! expiry and what their stored form is ([`Refreshable`]); the [`RefreshEngine`] does the rest.
//!
//! # How a refresh runs
//!
//! 1. **Single-flight in process**: callers queue on one gate per session. A caller that gets
//!    the gate after another caller refreshed (its `seen` credential is no longer the current
//!    one) takes the new credentials without touching the store.
//! 2. **The store's lock** on the session key, with a timeout (an error of kind
//!    [`StoreErrorKind::LockTimeout`](super::StoreErrorKind::LockTimeout): transient, never a
//!    hang).
//! 3. **A re-read of the store**: when another process already refreshed (the stored
//!    single-use credential differs from `seen`), its credentials are adopted. A session that
//!    is gone was ended elsewhere: [`AuthError::SessionExpired`].
//! 4. **The refresh runs in a spawned task that owns the gate and the lock** and writes the
//!    result itself, so a caller that is cancelled or times out (`tokio::time::timeout`,
//!    `select!`) never loses rotated credentials: the task still stores them.
//! 5. **The write is a compare-and-set** on the stored value the refresh started from, fenced
//!    by the lock: when the lock's lease was lost meanwhile (a stall, a clock jump), the write
//!    is refused, so two holders never both write. A lease already lost before the request is
//!    sent stops the refresh before it reaches the server. A write that fails because the
//!    store is unreachable is retried while the lease holds (at most the lock timeout): the server has already rotated
//!    the credentials, and losing them would lose the session.
//! 6. **Failures**: when the server rejects the credentials for good, the stored session is
//!    deleted only if it still holds the rejected credential (compare-and-set), and the
//!    session ends ([`AuthError::SessionExpired`]). A transient failure (network, 5xx, store
//!    unavailable, lock timeout) never deletes anything.
//!
//! [`RefreshEngine::before_request`] refreshes proactively when the access credential is
//! about to expire; when that refresh fails transiently while the credential is still valid,
//! the call goes out with the current credential. [`RefreshEngine::logout`] keeps the stored
//! session when the server could not be reached, so that logging out can be retried.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::store::{BoxFuture, DEFAULT_LOCK_TIMEOUT, SessionData, SessionStore, StoreLock};
use crate::xrpc::{AuthError, Error, Secret};

/// Refresh this long before the access credential expires…
pub const REFRESH_MARGIN_SECS: i64 = 120;
/// …plus up to this much random extra, so that many clients do not refresh in lockstep.
pub const REFRESH_JITTER_SECS: i64 = 60;

/// What the server said to a refresh.
#[derive(Debug)]
pub enum RefreshFailure {
    /// The server rejected the credentials for good (expired, revoked, replayed): the session
    /// is over.
    Rejected {
        /// What the server said.
        reason: String,
    },
    /// Anything else; the session is kept. Transient or not as the error says.
    Failed(AuthError),
}

/// A kind of session that refreshes: how to talk to its server, and its stored form.
pub trait Refreshable: Send + Sync + 'static {
    /// The session's credentials and whatever else is stored with them.
    type Stored: Clone + Send + Sync + 'static;

    /// Reads the stored form (an error for a value of another kind or version).
    fn decode(&self, data: &SessionData) -> Result<Self::Stored, AuthError>;

    /// Writes the stored form.
    fn encode(&self, stored: &Self::Stored) -> Result<SessionData, AuthError>;

    /// The single-use credential the next refresh spends (the refresh token): two stored
    /// values with the same one are the same generation of the session.
    fn generation<'s>(&self, stored: &'s Self::Stored) -> &'s Secret;

    /// When the access credential was issued and when it expires (Unix seconds), when known.
    /// Without an expiry there is no proactive refresh.
    fn lifetime(&self, stored: &Self::Stored) -> (Option<i64>, Option<i64>);

    /// Refreshes `stored` with the server, returning the new stored form.
    fn refresh<'a>(
        &'a self,
        stored: &'a Self::Stored,
    ) -> BoxFuture<'a, Result<Self::Stored, RefreshFailure>>;

    /// Ends `stored` at the server. `Ok` when the server ended it or says it was already dead;
    /// an error when it could not be told.
    fn revoke<'a>(&'a self, stored: &'a Self::Stored) -> BoxFuture<'a, Result<(), Error>>;

    /// Called after refreshed credentials were written to the store (for session events).
    /// The default does nothing.
    fn persisted(&self, _stored: &Self::Stored) {}

    /// Called when the engine ended the session because the server rejected its credentials
    /// or it was gone from the store (for session events). The default does nothing.
    fn ended(&self, _reason: &str) {}
}

/// One generation of a session's credentials, with when to refresh it.
pub struct Current<S> {
    /// The stored form.
    pub stored: S,
    /// The access credential's expiry (Unix seconds), when known.
    pub expires_at: Option<i64>,
    /// When to refresh proactively (Unix seconds).
    pub refresh_at: Option<i64>,
}

/// When to refresh a credential that expires at `exp` (and was issued at `issued`, when it
/// says): [`REFRESH_MARGIN_SECS`] plus `jitter` before expiry, but never more than half of its
/// life. Both claims come from the server, so the arithmetic saturates (a token "issued" at
/// `i64::MIN` or expiring at `i64::MAX` is nonsense, not a reason to panic).
pub(crate) fn refresh_time(exp: i64, issued: Option<i64>, jitter: i64) -> i64 {
    let mut lead = REFRESH_MARGIN_SECS.saturating_add(jitter);
    if let Some(issued) = issued {
        // Never spend more than half of a short-lived credential's life waiting.
        lead = lead.min(exp.saturating_sub(issued).max(0) / 2);
    }
    exp.saturating_sub(lead)
}

impl<S> Current<S> {
    fn new(stored: S, (issued, expires): (Option<i64>, Option<i64>)) -> Current<S> {
        let refresh_at =
            expires.map(|exp| refresh_time(exp, issued, fastrand::i64(0..=REFRESH_JITTER_SECS)));
        Current {
            stored,
            expires_at: expires,
            refresh_at,
        }
    }

    /// Whether it is time to refresh proactively.
    pub fn wants_refresh(&self, now: i64) -> bool {
        self.refresh_at.is_some_and(|at| now >= at)
    }

    /// Whether the access credential has expired.
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|exp| now >= exp)
    }
}

impl<S> fmt::Debug for Current<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Current")
            .field("expires_at", &self.expires_at)
            .field("refresh_at", &self.refresh_at)
            .finish_non_exhaustive()
    }
}

struct State<S> {
    /// The newest credentials this process knows.
    last: Arc<Current<S>>,
    /// Whether the session has ended (logged out, rejected, deleted elsewhere).
    ended: bool,
}

struct Inner<K: Refreshable> {
    kind: K,
    store: Arc<dyn SessionStore>,
    key: String,
    /// Names the session in errors and logs (never a credential).
    label: String,
    lock_timeout: Duration,
    state: RwLock<State<K::Stored>>,
    /// Single-flight within this process; owned by the refresh task while it runs.
    gate: Arc<tokio::sync::Mutex<()>>,
}

/// Refreshes one session, shared by every handle on it. See the [module docs](self).
pub struct RefreshEngine<K: Refreshable> {
    inner: Arc<Inner<K>>,
}

impl<K: Refreshable> Clone for RefreshEngine<K> {
    fn clone(&self) -> Self {
        RefreshEngine {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K: Refreshable> fmt::Debug for RefreshEngine<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshEngine")
            .field("session", &self.inner.label)
            .field("key", &self.inner.key)
            .field("active", &!self.inner.read().ended)
            .finish_non_exhaustive()
    }
}

impl<K: Refreshable> RefreshEngine<K> {
    /// An engine for the session stored under `key` in `store`, starting from `stored`.
    /// `label` names the session in errors (e.g. `the password session of did:plc:…`).
    pub fn new(
        kind: K,
        store: Arc<dyn SessionStore>,
        key: String,
        label: String,
        stored: K::Stored,
    ) -> RefreshEngine<K> {
        let lifetime = kind.lifetime(&stored);
        let current = Current::new(stored, lifetime);
        RefreshEngine {
            inner: Arc::new(Inner {
                kind,
                store,
                key,
                label,
                lock_timeout: DEFAULT_LOCK_TIMEOUT,
                state: RwLock::new(State {
                    last: Arc::new(current),
                    ended: false,
                }),
                gate: Arc::new(tokio::sync::Mutex::new(())),
            }),
        }
    }

    /// How long a refresh waits for the store's lock (default
    /// [`DEFAULT_LOCK_TIMEOUT`](super::DEFAULT_LOCK_TIMEOUT)). Call before sharing the engine.
    #[must_use]
    pub fn with_lock_timeout(self, timeout: Duration) -> RefreshEngine<K> {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.lock_timeout = timeout;
                RefreshEngine {
                    inner: Arc::new(inner),
                }
            }
            Err(inner) => RefreshEngine { inner },
        }
    }

    /// The session kind.
    pub fn kind(&self) -> &K {
        &self.inner.kind
    }

    /// The store key.
    pub fn key(&self) -> &str {
        &self.inner.key
    }

    /// The current credentials; [`AuthError::NoSession`] once the session has ended.
    pub fn current(&self) -> Result<Arc<Current<K::Stored>>, AuthError> {
        let state = self.inner.read();
        if state.ended {
            return Err(self.inner.ended_error());
        }
        Ok(Arc::clone(&state.last))
    }

    /// The newest credentials known, even after the session ended.
    pub fn last(&self) -> Arc<Current<K::Stored>> {
        Arc::clone(&self.inner.read().last)
    }

    /// Whether the session has ended.
    pub fn has_ended(&self) -> bool {
        self.inner.read().ended
    }

    /// The credentials to send a request with: refreshed first when they are about to
    /// expire. A proactive refresh that fails transiently while the credentials are still
    /// valid is logged and the current ones are used.
    pub async fn before_request(&self) -> Result<Arc<Current<K::Stored>>, AuthError> {
        let current = self.current()?;
        let now = unix_now();
        if !current.wants_refresh(now) {
            return Ok(current);
        }
        let seen = self.inner.kind.generation(&current.stored).clone();
        match self.refresh(Some(&seen)).await {
            Ok(fresh) => Ok(fresh),
            Err(error) if error.is_transient() && !current.is_expired(now) => {
                tracing::warn!(session = %self.inner.label, %error,
                    "proactive refresh failed; using the current credentials");
                Ok(current)
            }
            Err(error) => Err(error),
        }
    }

    /// Refreshes, unless the credentials already moved past `seen` (another task or process
    /// refreshed since the caller read them): then the newer ones are returned. `None` forces
    /// a refresh.
    pub async fn refresh(
        &self,
        seen: Option<&Secret>,
    ) -> Result<Arc<Current<K::Stored>>, AuthError> {
        let gate = Arc::clone(&self.inner.gate).lock_owned().await;
        if let Some(seen) = seen {
            let state = self.inner.read();
            if state.ended {
                return Err(self.inner.ended_error());
            }
            if self.inner.kind.generation(&state.last.stored) != seen {
                return Ok(Arc::clone(&state.last));
            }
        }
        let inner = Arc::clone(&self.inner);
        let seen = seen.cloned();
        // The task owns the gate and the store lock, and writes what the server returned even
        // if this caller goes away.
        let task = tokio::spawn(async move {
            let result = inner.refresh_locked(seen.as_ref()).await;
            drop(gate);
            result
        });
        match task.await {
            Ok(result) => result,
            Err(error) => Err(AuthError::RefreshFailed {
                transient: true,
                reason: format!("the refresh of {} did not finish", self.inner.label),
                source: Some(Box::new(error)),
            }),
        }
    }

    /// Ends the session: under the gate and the store's lock, [`Refreshable::revoke`] tells
    /// the server with the stored credentials. When that succeeds, the stored session is
    /// removed (if it still holds those credentials) and the session ends. When it fails (the
    /// server could not be reached), the stored session and this session are kept so that
    /// logging out can be retried.
    pub async fn logout(&self) -> Result<(), Error> {
        let _gate = Arc::clone(&self.inner.gate).lock_owned().await;
        let inner = &self.inner;
        let lock = inner
            .store
            .lock(&inner.key, inner.lock_timeout)
            .await
            .map_err(|error| Error::Auth(AuthError::Store(error)))?;
        let (data, stored) = match inner.load().await {
            Ok(Some((data, stored))) => (Some(data), stored),
            // Gone from the store (or unreadable): revoke what this process holds.
            Ok(None) | Err(_) => (None, inner.read().last.stored.clone()),
        };
        inner.kind.revoke(&stored).await?;
        let removed = match &data {
            Some(data) => inner
                .store
                .compare_and_set(&inner.key, Some(data), None, Some(&lock))
                .await
                .map(drop),
            None => Ok(()),
        };
        inner.end();
        removed.map_err(|error| Error::Auth(AuthError::Store(error)))
    }

    /// Marks the session ended in this process (the store is not touched).
    pub fn end(&self) {
        self.inner.end();
    }
}

impl<K: Refreshable> Inner<K> {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, State<K::Stored>> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn ended_error(&self) -> AuthError {
        AuthError::NoSession {
            what: format!(
                "{} has ended (logged out, or its credentials were rejected)",
                self.label
            ),
        }
    }

    fn end(&self) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.ended = true;
    }

    async fn load(&self) -> Result<Option<(SessionData, K::Stored)>, AuthError> {
        match self.store.get(&self.key).await.map_err(AuthError::Store)? {
            Some(data) => {
                let stored = self.kind.decode(&data)?;
                Ok(Some((data, stored)))
            }
            None => Ok(None),
        }
    }

    async fn refresh_locked(
        &self,
        seen: Option<&Secret>,
    ) -> Result<Arc<Current<K::Stored>>, AuthError> {
        let lock = self
            .store
            .lock(&self.key, self.lock_timeout)
            .await
            .map_err(AuthError::Store)?;
        let Some((data, stored)) = self.load().await? else {
            self.end();
            self.kind.ended("the session is no longer in the store");
            return Err(AuthError::SessionExpired {
                reason: format!(
                    "{} is no longer in the store (deleted by another process or logged out \
                     elsewhere)",
                    self.label
                ),
            });
        };
        if let Some(seen) = seen
            && self.kind.generation(&stored) != seen
        {
            tracing::debug!(session = %self.label, "adopting credentials refreshed by another caller");
            return Ok(self.adopt(stored));
        }
        // A lease lost before the request goes out: another holder may be refreshing; do not
        // spend the single-use credential a second time.
        lock.check(&self.label).map_err(AuthError::Store)?;
        tracing::debug!(session = %self.label, "refreshing");
        match self.kind.refresh(&stored).await {
            Ok(renewed) => self.persist(&lock, &data, renewed).await,
            Err(RefreshFailure::Rejected { reason }) => {
                // Delete only what was rejected: a newer session written meanwhile stays.
                match self
                    .store
                    .compare_and_set(&self.key, Some(&data), None, Some(&lock))
                    .await
                {
                    Ok(_) => {}
                    Err(error) => tracing::warn!(session = %self.label, %error,
                        "could not remove the rejected session from the store"),
                }
                self.end();
                self.kind.ended(&reason);
                Err(AuthError::SessionExpired {
                    reason: format!("the server rejected the credentials: {reason}"),
                })
            }
            Err(RefreshFailure::Failed(error)) => Err(error),
        }
    }

    /// Writes refreshed credentials (compare-and-set on what the refresh started from, fenced
    /// by the lock), then uses them. Credentials that could not be written are never used.
    async fn persist(
        &self,
        lock: &StoreLock,
        read: &SessionData,
        renewed: K::Stored,
    ) -> Result<Arc<Current<K::Stored>>, AuthError> {
        let encoded = self.kind.encode(&renewed)?;
        // The server has rotated the credentials: losing them now loses the session. A store
        // that is briefly unreachable is retried for as long as the lease holds (the fence
        // keeps a late write from landing after someone else took over).
        let mut pause = Duration::from_millis(50);
        let give_up = std::time::Instant::now() + self.lock_timeout;
        let swapped = loop {
            match self
                .store
                .compare_and_set(&self.key, Some(read), Some(&encoded), Some(lock))
                .await
            {
                Ok(swapped) => break swapped,
                Err(error)
                    if error.kind() == super::StoreErrorKind::Unavailable
                        && !lock.is_lost()
                        && std::time::Instant::now() < give_up =>
                {
                    tracing::warn!(session = %self.label, %error,
                        "cannot store the refreshed credentials yet; retrying while the lock is held");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Err(error) => return Err(AuthError::Store(error)),
            }
        };
        if swapped {
            let current = self.adopt(renewed);
            self.kind.persisted(&current.stored);
            return Ok(current);
        }
        // The stored value changed under the lock: someone wrote without it (a login on
        // another device of the same key, a logout). Take what is there now.
        match self.load().await? {
            Some((_, stored)) => Ok(self.adopt(stored)),
            None => {
                self.end();
                Err(AuthError::SessionExpired {
                    reason: format!("{} was removed from the store during a refresh", self.label),
                })
            }
        }
    }

    fn adopt(&self, stored: K::Stored) -> Arc<Current<K::Stored>> {
        let lifetime = self.kind.lifetime(&stored);
        let current = Arc::new(Current::new(stored, lifetime));
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.last = Arc::clone(&current);
        state.ended = false;
        current
    }
}

/// Unix time in seconds.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::refresh_time;

    #[test]
    fn refresh_time_saturates_on_extreme_claims() {
        // Found by the `jwt` fuzz target: `exp - iat` and `exp - lead` overflowed.
        assert_eq!(refresh_time(i64::MIN, None, 60), i64::MIN);
        assert_eq!(refresh_time(i64::MAX, Some(i64::MIN), 0), i64::MAX - 120);
        assert_eq!(refresh_time(1_000, Some(900), 0), 950);
        assert_eq!(refresh_time(10_000, Some(0), 30), 10_000 - 150);
    }

    use super::*;
    #[cfg(feature = "sqlite")]
    use crate::auth::SqliteStore;
    use crate::auth::store::StoreErrorKind;
    use crate::auth::{FileStore, MemoryStore, StoreError};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    const KEY: &str = "fake:did:plc:abc";

    #[derive(Clone, Debug, PartialEq)]
    struct Stored {
        n: u64,
        refresh: Secret,
        issued: i64,
        expires: i64,
    }

    fn stored(n: u64, expires_in: i64) -> Stored {
        let now = unix_now();
        Stored {
            n,
            refresh: Secret::new(format!("refresh-{n}")),
            issued: now - 100,
            expires: now + expires_in,
        }
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Answer {
        Rotate,
        Reject,
        Transient,
    }

    /// A server that rotates the refresh token (or fails as told), after a delay.
    struct Fake {
        calls: AtomicUsize,
        answer: Mutex<Answer>,
        delay: Duration,
        /// Signalled when a refresh reached the server.
        reached: tokio::sync::Notify,
    }

    impl Fake {
        fn new(answer: Answer, delay: Duration) -> Fake {
            Fake {
                calls: AtomicUsize::new(0),
                answer: Mutex::new(answer),
                delay,
                reached: tokio::sync::Notify::new(),
            }
        }
    }

    impl Refreshable for Fake {
        type Stored = Stored;

        fn decode(&self, data: &SessionData) -> Result<Stored, AuthError> {
            let value: serde_json::Value =
                serde_json::from_str(data.as_str()).map_err(|_| AuthError::InvalidSession {
                    reason: "not json".into(),
                })?;
            Ok(Stored {
                n: value["n"].as_u64().unwrap_or(0),
                refresh: Secret::new(value["refresh"].as_str().unwrap_or("")),
                issued: value["issued"].as_i64().unwrap_or(0),
                expires: value["expires"].as_i64().unwrap_or(0),
            })
        }

        fn encode(&self, stored: &Stored) -> Result<SessionData, AuthError> {
            Ok(SessionData::new(
                serde_json::json!({"n": stored.n, "refresh": stored.refresh.expose(),
                    "issued": stored.issued, "expires": stored.expires})
                .to_string(),
            ))
        }

        fn generation<'s>(&self, stored: &'s Stored) -> &'s Secret {
            &stored.refresh
        }

        fn lifetime(&self, stored: &Stored) -> (Option<i64>, Option<i64>) {
            (Some(stored.issued), Some(stored.expires))
        }

        fn refresh<'a>(
            &'a self,
            stored: &'a Stored,
        ) -> BoxFuture<'a, Result<Stored, RefreshFailure>> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                self.reached.notify_waiters();
                tokio::time::sleep(self.delay).await;
                let answer = *self.answer.lock().unwrap();
                match answer {
                    Answer::Rotate => Ok(stored_after(stored)),
                    Answer::Reject => Err(RefreshFailure::Rejected {
                        reason: "refresh token replayed".into(),
                    }),
                    Answer::Transient => Err(RefreshFailure::Failed(AuthError::RefreshFailed {
                        transient: true,
                        reason: "503".into(),
                        source: None,
                    })),
                }
            })
        }

        fn revoke<'a>(&'a self, _stored: &'a Stored) -> BoxFuture<'a, Result<(), Error>> {
            Box::pin(async move {
                if *self.answer.lock().unwrap() == Answer::Transient {
                    return Err(Error::Auth(AuthError::RefreshFailed {
                        transient: true,
                        reason: "unreachable".into(),
                        source: None,
                    }));
                }
                Ok(())
            })
        }
    }

    fn stored_after(stored: &Stored) -> Stored {
        let mut next = stored.clone();
        next.n += 1;
        next.refresh = Secret::new(format!("refresh-{}", next.n));
        next.issued = unix_now();
        next.expires = unix_now() + 3600;
        next
    }

    async fn engine(
        store: Arc<dyn SessionStore>,
        fake: Fake,
        first: Stored,
    ) -> RefreshEngine<Fake> {
        store.set(KEY, &fake.encode(&first).unwrap()).await.unwrap();
        RefreshEngine::new(fake, store, KEY.into(), "the fake session".into(), first)
    }

    async fn stored_n(store: &dyn SessionStore) -> Option<u64> {
        let data = store.get(KEY).await.unwrap()?;
        let value: serde_json::Value = serde_json::from_str(data.as_str()).unwrap();
        value["n"].as_u64()
    }

    async fn stores(dir: &tempfile::TempDir) -> Vec<(&'static str, Arc<dyn SessionStore>)> {
        vec![
            (
                "memory",
                Arc::new(MemoryStore::new()) as Arc<dyn SessionStore>,
            ),
            (
                "file",
                Arc::new(FileStore::open(dir.path().join("files")).await.unwrap()),
            ),
            #[cfg(feature = "sqlite")]
            (
                "sqlite",
                Arc::new(SqliteStore::open(dir.path().join("s.db")).await.unwrap()),
            ),
        ]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_thousand_callers_with_an_expired_token_share_one_refresh() {
        let dir = tempfile::tempdir().unwrap();
        for (name, store) in stores(&dir).await {
            let engine = engine(
                store.clone(),
                Fake::new(Answer::Rotate, Duration::from_millis(20)),
                stored(1, -10),
            )
            .await;
            let mut tasks = Vec::new();
            for _ in 0..1000 {
                let engine = engine.clone();
                tasks.push(tokio::spawn(async move {
                    engine.before_request().await.map(|c| c.stored.n)
                }));
            }
            for task in tasks {
                assert_eq!(task.await.unwrap().unwrap(), 2, "{name}");
            }
            assert_eq!(engine.kind().calls.load(Ordering::SeqCst), 1, "{name}");
            assert_eq!(stored_n(&*store).await, Some(2), "{name}");
        }
    }

    #[tokio::test]
    async fn a_cancelled_caller_never_loses_rotated_tokens() {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let engine = engine(
            store.clone(),
            Fake::new(Answer::Rotate, Duration::from_millis(300)),
            stored(1, -10),
        )
        .await;
        let seen = Secret::new("refresh-1");
        let attempt =
            tokio::time::timeout(Duration::from_millis(50), engine.refresh(Some(&seen))).await;
        assert!(attempt.is_err(), "the caller was cancelled");
        assert_eq!(engine.kind().calls.load(Ordering::SeqCst), 1);
        // The task that owns the lock finishes and writes the rotated tokens.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while stored_n(&*store).await != Some(2) {
            assert!(
                std::time::Instant::now() < deadline,
                "rotated tokens were lost"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The next caller gets them without a second refresh.
        let current = engine.refresh(Some(&seen)).await.unwrap();
        assert_eq!(current.stored.n, 2);
        assert_eq!(engine.kind().calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn tokens_refreshed_elsewhere_are_adopted() {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let fake = Fake::new(Answer::Rotate, Duration::ZERO);
        let newer = fake.encode(&stored(7, 3600)).unwrap();
        let engine = engine(store.clone(), fake, stored(1, -10)).await;
        store.set(KEY, &newer).await.unwrap();
        let current = engine.before_request().await.unwrap();
        assert_eq!(current.stored.n, 7);
        assert_eq!(engine.kind().calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_rejection_removes_the_session() {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let engine = engine(
            store.clone(),
            Fake::new(Answer::Reject, Duration::ZERO),
            stored(1, -10),
        )
        .await;
        let err = engine.before_request().await.unwrap_err();
        assert!(matches!(err, AuthError::SessionExpired { .. }), "{err}");
        assert!(err.requires_login());
        assert_eq!(store.get(KEY).await.unwrap(), None);
        assert!(engine.has_ended());
        assert!(matches!(
            engine.before_request().await.unwrap_err(),
            AuthError::NoSession { .. }
        ));
    }

    #[tokio::test]
    async fn a_rejection_keeps_a_newer_session_written_meanwhile() {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let fake = Fake::new(Answer::Reject, Duration::from_millis(200));
        let newer = fake.encode(&stored(9, 3600)).unwrap();
        let engine = engine(store.clone(), fake, stored(1, -10)).await;
        // Registered before the refresh can reach the server.
        let reached = engine.kind().reached.notified();
        let refresh = {
            let engine = engine.clone();
            tokio::spawn(async move { engine.refresh(None).await })
        };
        reached.await;
        // A login on another device writes a new session without the lock.
        store.set(KEY, &newer).await.unwrap();
        let err = refresh.await.unwrap().unwrap_err();
        assert!(matches!(err, AuthError::SessionExpired { .. }), "{err}");
        assert_eq!(
            stored_n(&*store).await,
            Some(9),
            "the newer session was deleted"
        );
    }

    #[tokio::test]
    async fn a_transient_failure_keeps_the_session() {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let engine = engine(
            store.clone(),
            Fake::new(Answer::Transient, Duration::ZERO),
            stored(1, -10),
        )
        .await;
        let err = engine.before_request().await.unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert_eq!(stored_n(&*store).await, Some(1));
        assert!(!engine.has_ended());
        // Once the server is back, the same session refreshes.
        *engine.kind().answer.lock().unwrap() = Answer::Rotate;
        assert_eq!(engine.before_request().await.unwrap().stored.n, 2);
        assert_eq!(stored_n(&*store).await, Some(2));
    }

    #[tokio::test]
    async fn a_proactive_refresh_that_fails_transiently_uses_the_valid_token() {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        // Issued 100 s ago, 5 s left: past the refresh point, not expired.
        let engine = engine(
            store.clone(),
            Fake::new(Answer::Transient, Duration::ZERO),
            stored(1, 5),
        )
        .await;
        assert!(engine.current().unwrap().wants_refresh(unix_now()));
        let current = engine.before_request().await.unwrap();
        assert_eq!(current.stored.n, 1);
        assert_eq!(engine.kind().calls.load(Ordering::SeqCst), 1);
        assert_eq!(stored_n(&*store).await, Some(1));
    }

    #[tokio::test]
    async fn a_session_deleted_elsewhere_ends() {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let engine = engine(
            store.clone(),
            Fake::new(Answer::Rotate, Duration::ZERO),
            stored(1, -10),
        )
        .await;
        store.delete(KEY).await.unwrap();
        let err = engine.before_request().await.unwrap_err();
        assert!(matches!(err, AuthError::SessionExpired { .. }), "{err}");
        assert_eq!(engine.kind().calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_lock_timeout_is_transient_and_touches_nothing() {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let engine = engine(
            store.clone(),
            Fake::new(Answer::Rotate, Duration::ZERO),
            stored(1, -10),
        )
        .await
        .with_lock_timeout(Duration::from_millis(200));
        let held = store.lock(KEY, Duration::from_secs(5)).await.unwrap();
        let err = engine.before_request().await.unwrap_err();
        match &err {
            AuthError::Store(store_error) => {
                assert_eq!(store_error.kind(), StoreErrorKind::LockTimeout)
            }
            other => panic!("{other}"),
        }
        assert!(err.is_transient());
        assert_eq!(engine.kind().calls.load(Ordering::SeqCst), 0);
        drop(held);
        assert_eq!(engine.before_request().await.unwrap().stored.n, 2);
    }

    /// A memory store whose fenced writes are refused as if the lease had been lost.
    struct LosesLeases {
        inner: MemoryStore,
        lost: AtomicBool,
    }

    impl SessionStore for LosesLeases {
        fn get<'a>(
            &'a self,
            key: &'a str,
        ) -> BoxFuture<'a, Result<Option<SessionData>, StoreError>> {
            self.inner.get(key)
        }
        fn set<'a>(
            &'a self,
            key: &'a str,
            value: &'a SessionData,
        ) -> BoxFuture<'a, Result<(), StoreError>> {
            self.inner.set(key, value)
        }
        fn set_expiring<'a>(
            &'a self,
            key: &'a str,
            value: &'a SessionData,
            ttl: Duration,
        ) -> BoxFuture<'a, Result<(), StoreError>> {
            self.inner.set_expiring(key, value, ttl)
        }
        fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
            self.inner.delete(key)
        }
        fn compare_and_set<'a>(
            &'a self,
            key: &'a str,
            current: Option<&'a SessionData>,
            new: Option<&'a SessionData>,
            fence: Option<&'a StoreLock>,
        ) -> BoxFuture<'a, Result<bool, StoreError>> {
            if fence.is_some() && self.lost.load(Ordering::SeqCst) {
                return Box::pin(async move { Err(crate::auth::store::lease_lost("t", key)) });
            }
            self.inner.compare_and_set(key, current, new, fence)
        }
        fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
            self.inner.list(prefix)
        }
        fn lock<'a>(
            &'a self,
            key: &'a str,
            timeout: Duration,
        ) -> BoxFuture<'a, Result<StoreLock, StoreError>> {
            self.inner.lock(key, timeout)
        }
    }

    #[tokio::test]
    async fn a_write_after_the_lease_was_lost_is_refused() {
        let store = Arc::new(LosesLeases {
            inner: MemoryStore::new(),
            lost: AtomicBool::new(true),
        });
        let engine = engine(
            store.clone(),
            Fake::new(Answer::Rotate, Duration::ZERO),
            stored(1, -10),
        )
        .await;
        let err = engine.before_request().await.unwrap_err();
        match &err {
            AuthError::Store(store_error) => {
                assert_eq!(store_error.kind(), StoreErrorKind::LeaseLost)
            }
            other => panic!("{other}"),
        }
        assert_eq!(
            stored_n(&*store).await,
            Some(1),
            "a fenced-out write landed"
        );
        assert!(!engine.has_ended());
        // The tokens the refused refresh got are not used either.
        assert_eq!(engine.current().unwrap().stored.n, 1);
        // A rejection under a lost lease does not delete either.
        *engine.kind().answer.lock().unwrap() = Answer::Reject;
        let _ = engine.refresh(None).await;
        assert_eq!(stored_n(&*store).await, Some(1));
    }

    #[tokio::test]
    async fn logout_keeps_the_session_when_the_server_is_unreachable() {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let engine = engine(
            store.clone(),
            Fake::new(Answer::Transient, Duration::ZERO),
            stored(1, 3600),
        )
        .await;
        assert!(engine.logout().await.is_err());
        assert_eq!(stored_n(&*store).await, Some(1));
        assert!(!engine.has_ended());
        *engine.kind().answer.lock().unwrap() = Answer::Rotate;
        engine.logout().await.unwrap();
        assert_eq!(store.get(KEY).await.unwrap(), None);
        assert!(engine.has_ended());
    }
}
