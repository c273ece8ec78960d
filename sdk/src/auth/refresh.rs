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
//!    sent stops the refresh before it reaches the server.
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

impl<S> Current<S> {
    fn new(stored: S, (issued, expires): (Option<i64>, Option<i64>)) -> Current<S> {
        let refresh_at = expires.map(|exp| {
            let mut lead =
                REFRESH_MARGIN_SECS.saturating_add(fastrand::i64(0..=REFRESH_JITTER_SECS));
            if let Some(issued) = issued {
                // Never spend more than half of a short-lived credential's life waiting.
                lead = lead.min(exp.saturating_sub(issued).max(0) / 2);
            }
            exp.saturating_sub(lead)
        });
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
        let swapped = self
            .store
            .compare_and_set(&self.key, Some(read), Some(&encoded), Some(lock))
            .await
            .map_err(AuthError::Store)?;
        if swapped {
            return Ok(self.adopt(renewed));
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
