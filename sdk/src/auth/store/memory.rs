//! [`MemoryStore`]: sessions kept in this process only.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::store::{BoxFuture, SessionData, SessionStore, StoreError, StoreLock};
use super::store_keyed::KeyedMutex;

/// A session store that keeps sessions in a map in memory; they are lost when the process
/// exits. Useful for tests, scripts and short-lived tools.
///
/// `lock` is a per-key async mutex: tasks locking one key are served one at a time, in the
/// order they asked; different keys never block each other. It does not exclude other
/// processes (they cannot see this store anyway).
///
/// `Debug` shows only how many sessions are stored.
#[derive(Default)]
pub struct MemoryStore {
    sessions: Mutex<HashMap<String, SessionData>>,
    locks: KeyedMutex,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<String, SessionData>> {
        // Every critical section is a single map operation, so a poisoned map is consistent.
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("sessions", &self.sessions().len())
            .finish_non_exhaustive()
    }
}

impl SessionStore for MemoryStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<SessionData>, StoreError>> {
        Box::pin(async move { Ok(self.sessions().get(key).cloned()) })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a SessionData,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.sessions().insert(key.to_owned(), value.clone());
            Ok(())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.sessions().remove(key);
            Ok(())
        })
    }

    fn lock<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<StoreLock, StoreError>> {
        Box::pin(async move { Ok(StoreLock::new(self.locks.lock(key).await)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::store_suite::{Fixture, store_suite};

    struct Memory(std::sync::Arc<MemoryStore>);

    impl Fixture for Memory {
        type Store = MemoryStore;

        async fn new() -> Memory {
            Memory(std::sync::Arc::new(MemoryStore::new()))
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
