//! A map of per-key async mutexes, the in-process half of every store's `lock`.
//!
//! Tasks locking the same key queue on one `tokio::sync::Mutex` (fair, FIFO); tasks locking
//! different keys never wait for each other. An entry is removed from the map when its last
//! guard or waiter goes away, so the map only holds keys that are locked or being waited for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::OwnedMutexGuard;

type Entries = HashMap<String, Arc<tokio::sync::Mutex<()>>>;

/// Per-key async mutexes.
#[derive(Default)]
pub(crate) struct KeyedMutex {
    entries: Arc<Mutex<Entries>>,
}

impl KeyedMutex {
    /// Waits for and takes the mutex of `key`. Cancel-safe: dropping the future gives up the
    /// place in the queue.
    pub(crate) async fn lock(&self, key: &str) -> KeyedGuard {
        let mutex = {
            let mut entries = lock_entries(&self.entries);
            Arc::clone(entries.entry(key.to_owned()).or_default())
        };
        // If this future is dropped while waiting, `waiter` still runs its clean-up.
        let waiter = Waiter {
            entries: Arc::clone(&self.entries),
            key: key.to_owned(),
            mutex,
        };
        let guard = Arc::clone(&waiter.mutex).lock_owned().await;
        KeyedGuard {
            _guard: guard,
            _waiter: waiter,
        }
    }

    /// How many keys are locked or waited for (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock_entries(&self.entries).len()
    }
}

/// Holds one key's in-process mutex; released when dropped.
pub(crate) struct KeyedGuard {
    // Fields drop in declaration order: the mutex is released before the waiter checks whether
    // the entry is still in use.
    _guard: OwnedMutexGuard<()>,
    _waiter: Waiter,
}

struct Waiter {
    entries: Arc<Mutex<Entries>>,
    key: String,
    mutex: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut entries = lock_entries(&self.entries);
        // Handles are only cloned from the map under this lock, so the count is exact: the map
        // and this waiter hold the only two handles when nobody else holds or waits for the key.
        if let Some(mutex) = entries.get(&self.key)
            && Arc::ptr_eq(mutex, &self.mutex)
            && Arc::strong_count(mutex) == 2
        {
            entries.remove(&self.key);
        }
    }
}

/// The map is only touched by short, panic-free sections, so a poisoned lock still holds a
/// consistent map.
fn lock_entries(entries: &Mutex<Entries>) -> MutexGuard<'_, Entries> {
    entries
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn entries_are_removed_when_unused() {
        let keyed = KeyedMutex::default();
        let a = keyed.lock("a").await;
        let b = keyed.lock("b").await;
        assert_eq!(keyed.len(), 2);
        drop(a);
        assert_eq!(keyed.len(), 1);
        drop(b);
        assert_eq!(keyed.len(), 0);
    }

    #[tokio::test]
    async fn cancelled_waiter_leaves_no_entry() {
        let keyed = KeyedMutex::default();
        let held = keyed.lock("a").await;
        let attempt = tokio::time::timeout(Duration::from_millis(20), keyed.lock("a")).await;
        assert!(attempt.is_err(), "second locker must wait");
        assert_eq!(keyed.len(), 1);
        drop(held);
        assert_eq!(keyed.len(), 0);
        // And the key can be locked again.
        let again = tokio::time::timeout(Duration::from_secs(1), keyed.lock("a")).await;
        assert!(again.is_ok());
    }
}
