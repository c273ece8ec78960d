//! [`MemoryStore`]: sessions kept in this process only.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::keyed::KeyedMutex;
use super::{BoxFuture, SessionData, SessionStore, StoreError, StoreLock};

const LABEL: &str = "memory store";

/// A session store that keeps sessions in a map in memory; they are lost when the process
/// exits. Useful for tests, scripts and short-lived tools.
///
/// `lock` is a per-key async mutex: tasks locking one key are served one at a time, in the
/// order they asked; different keys never block each other. It does not exclude other
/// processes (they cannot see this store anyway), and it cannot be lost while held. Fencing
/// tokens count the acquisitions of each key.
///
/// `Debug` shows only how many sessions are stored.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    locks: KeyedMutex,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, Entry>,
    /// The last fencing token handed out per key.
    fences: HashMap<String, u64>,
}

struct Entry {
    value: SessionData,
    expires: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|at| now < at)
    }
}

impl Inner {
    fn get(&mut self, key: &str) -> Option<&SessionData> {
        let now = Instant::now();
        if self.sessions.get(key).is_some_and(|entry| !entry.live(now)) {
            self.sessions.remove(key);
        }
        self.sessions.get(key).map(|entry| &entry.value)
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // Every critical section is a few map operations that cannot panic halfway, so a
        // poisoned map is consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("sessions", &self.inner().sessions.len())
            .finish_non_exhaustive()
    }
}

impl SessionStore for MemoryStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<SessionData>, StoreError>> {
        Box::pin(async move { Ok(self.inner().get(key).cloned()) })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a SessionData,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let entry = Entry {
                value: value.clone(),
                expires: None,
            };
            self.inner().sessions.insert(key.to_owned(), entry);
            Ok(())
        })
    }

    fn set_expiring<'a>(
        &'a self,
        key: &'a str,
        value: &'a SessionData,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let now = Instant::now();
            let entry = Entry {
                value: value.clone(),
                // A time to live beyond what the clock can represent never expires.
                expires: now.checked_add(ttl),
            };
            self.inner().sessions.insert(key.to_owned(), entry);
            Ok(())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.inner().sessions.remove(key);
            Ok(())
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
            let mut inner = self.inner();
            if let Some(lock) = fence {
                lock.check_for(LABEL, key)?;
                if inner.fences.get(key) != Some(&lock.fence()) {
                    return Err(super::lease_lost(LABEL, key));
                }
            }
            if inner.get(key) != current {
                return Ok(false);
            }
            match new {
                Some(value) => {
                    let entry = Entry {
                        value: value.clone(),
                        expires: None,
                    };
                    inner.sessions.insert(key.to_owned(), entry);
                }
                None => {
                    inner.sessions.remove(key);
                }
            }
            Ok(true)
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            let now = Instant::now();
            let inner = self.inner();
            let mut keys: Vec<String> = inner
                .sessions
                .iter()
                .filter(|(key, entry)| key.starts_with(prefix) && entry.live(now))
                .map(|(key, _)| key.clone())
                .collect();
            keys.sort();
            Ok(keys)
        })
    }

    fn lock<'a>(
        &'a self,
        key: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<StoreLock, StoreError>> {
        Box::pin(async move {
            let guard = super::within(LABEL, key, timeout, async {
                Ok(self.locks.lock(key).await)
            })
            .await?;
            let fence = {
                let mut inner = self.inner();
                let counter = inner.fences.entry(key.to_owned()).or_insert(0);
                *counter = counter.saturating_add(1);
                *counter
            };
            Ok(StoreLock::new(key, fence, guard))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::store::suite::{Fixture, store_suite};

    struct Memory(std::sync::Arc<MemoryStore>);

    impl Fixture for Memory {
        type Store = MemoryStore;

        async fn new() -> Option<Memory> {
            Some(Memory(std::sync::Arc::new(MemoryStore::new())))
        }

        fn store(&self) -> &std::sync::Arc<MemoryStore> {
            &self.0
        }

        async fn reopen(&self) -> Option<MemoryStore> {
            None
        }
    }

    store_suite!(Memory);
}
