//! A bounded TTL cache whose concurrent lookups of one key share one computation
//! (single-flight).
//!
//! Each key maps to a slot holding a `tokio::sync::OnceCell`: the first caller runs the
//! lookup inside `get_or_init`, every concurrent caller of the same key waits on the same cell
//! (if the first caller is cancelled, a waiter takes over). A finished slot is reused until it
//! expires: successes after the positive TTL, definitive failures after the negative TTL,
//! transient failures (timeouts, 5xx) at once, so that they are shared by the callers that
//! were waiting but never served to later ones. When the map is full, expired slots are
//! dropped, then the oldest ones.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

/// How long results are kept, and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long a successful result is kept (default 5 minutes; the atproto OAuth spec
    /// recommends under 10 minutes for identity used in auth flows).
    pub positive_ttl: Duration,
    /// How long a definitive failure (not found, invalid answer) is kept (default 30 s).
    pub negative_ttl: Duration,
    /// The most entries kept per cache (default 10,000).
    pub max_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            positive_ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(30),
            max_entries: 10_000,
        }
    }
}

/// A result and when it stops being served.
struct Done<V> {
    value: V,
    expires: Instant,
}

struct Slot<V> {
    cell: OnceCell<Done<V>>,
    created: Instant,
}

/// The cache. `V` is the cached result (usually a `Result` of cheap-to-clone values).
pub(crate) struct Cache<K, V> {
    config: CacheConfig,
    slots: Mutex<HashMap<K, Arc<Slot<V>>>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Cache<K, V> {
    pub(crate) fn new(config: CacheConfig) -> Self {
        Cache {
            config,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The cached value of `key`, or the value `compute` produces (shared with every
    /// concurrent caller of `key`). `ttl_of` tells whether a value is a success (positive TTL),
    /// a definitive failure (negative TTL) or a transient one (not kept).
    pub(crate) async fn get_or_compute<F, Fut>(
        &self,
        key: &K,
        ttl_of: impl Fn(&V) -> Kept,
        compute: F,
    ) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let slot = self.slot(key);
        let done = slot
            .cell
            .get_or_init(|| async {
                let value = compute().await;
                let ttl = match ttl_of(&value) {
                    Kept::Positive => self.config.positive_ttl,
                    Kept::Negative => self.config.negative_ttl,
                    Kept::No => Duration::ZERO,
                };
                let now = Instant::now();
                Done {
                    value,
                    expires: now.checked_add(ttl).unwrap_or(now),
                }
            })
            .await;
        done.value.clone()
    }

    /// The slot for `key`: the current one unless it has expired.
    fn slot(&self, key: &K) -> Arc<Slot<V>> {
        let now = Instant::now();
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get(key) {
            let live = match slot.cell.get() {
                Some(done) => now < done.expires,
                None => true, // in flight: join it
            };
            if live {
                return slot.clone();
            }
        }
        if slots.len() >= self.config.max_entries.max(1) && !slots.contains_key(key) {
            Self::evict(&mut slots, now, self.config.max_entries.max(1));
        }
        let slot = Arc::new(Slot {
            cell: OnceCell::new(),
            created: now,
        });
        slots.insert(key.clone(), slot.clone());
        slot
    }

    /// Drops expired slots; then, while still full, the oldest finished ones (in-flight slots
    /// are dropped last: their callers keep their `Arc` and finish anyway).
    fn evict(slots: &mut HashMap<K, Arc<Slot<V>>>, now: Instant, max: usize) {
        slots.retain(|_, slot| slot.cell.get().is_none_or(|done| now < done.expires));
        if slots.len() < max {
            return;
        }
        let mut by_age: Vec<(Instant, bool, K)> = slots
            .iter()
            .map(|(key, slot)| (slot.created, slot.cell.get().is_none(), key.clone()))
            .collect();
        // Finished before in-flight, then oldest first.
        by_age.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        let excess = slots.len() + 1 - max;
        for (_, _, key) in by_age.into_iter().take(excess) {
            slots.remove(&key);
        }
    }

    /// Stores `value` for `key` (a result obtained without the cache), replacing the entry.
    pub(crate) fn put(&self, key: &K, value: V, kept: Kept) {
        let ttl = match kept {
            Kept::Positive => self.config.positive_ttl,
            Kept::Negative => self.config.negative_ttl,
            Kept::No => {
                let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
                slots.remove(key);
                return;
            }
        };
        let now = Instant::now();
        let slot = Arc::new(Slot {
            cell: OnceCell::new_with(Some(Done {
                value,
                expires: now.checked_add(ttl).unwrap_or(now),
            })),
            created: now,
        });
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if slots.len() >= self.config.max_entries.max(1) && !slots.contains_key(key) {
            Self::evict(&mut slots, now, self.config.max_entries.max(1));
        }
        slots.insert(key.clone(), slot);
    }

    /// Drops every entry.
    pub(crate) fn clear(&self) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.clear();
    }

    /// How many entries are held (expired ones included until they are replaced or evicted).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// How long a computed value is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kept {
    /// The positive TTL.
    Positive,
    /// The negative TTL.
    Negative,
    /// Not at all (shared only with callers already waiting).
    No,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn config(max: usize) -> CacheConfig {
        CacheConfig {
            positive_ttl: Duration::from_secs(60),
            negative_ttl: Duration::ZERO,
            max_entries: max,
        }
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_computation() {
        let cache: Arc<Cache<String, u32>> = Arc::new(Cache::new(config(10)));
        let calls = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Notify::new());
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let (cache, calls, gate) = (cache.clone(), calls.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_compute(
                        &"k".to_owned(),
                        |_| Kept::Positive,
                        || async move {
                            calls.fetch_add(1, Ordering::SeqCst);
                            gate.notified().await;
                            7
                        },
                    )
                    .await
            }));
        }
        // Let every task reach the cell, then release the one computation.
        while calls.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        gate.notify_waiters();
        gate.notify_one();
        for task in tasks {
            assert_eq!(task.await.unwrap(), 7);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Cached now.
        let again = cache
            .get_or_compute(&"k".to_owned(), |_| Kept::Positive, || async { 8 })
            .await;
        assert_eq!(again, 7);
    }

    #[tokio::test]
    async fn transient_and_negative_results_are_not_served_later() {
        let cache: Cache<u8, u32> = Cache::new(config(10));
        assert_eq!(
            cache.get_or_compute(&1, |_| Kept::No, || async { 1 }).await,
            1
        );
        assert_eq!(
            cache.get_or_compute(&1, |_| Kept::No, || async { 2 }).await,
            2
        );
        // negative_ttl is zero in this config
        assert_eq!(
            cache
                .get_or_compute(&1, |_| Kept::Negative, || async { 3 })
                .await,
            3
        );
        assert_eq!(
            cache
                .get_or_compute(&1, |_| Kept::Positive, || async { 4 })
                .await,
            4
        );
        assert_eq!(
            cache
                .get_or_compute(&1, |_| Kept::Positive, || async { 5 })
                .await,
            4
        );
    }

    #[tokio::test]
    async fn bounded_size() {
        let cache: Cache<u32, u32> = Cache::new(config(16));
        for key in 0..1000 {
            cache
                .get_or_compute(&key, |_| Kept::Positive, || async move { key })
                .await;
            assert!(cache.len() <= 16, "{}", cache.len());
        }
        // The newest entries are the ones kept.
        assert_eq!(
            cache
                .get_or_compute(&999, |_| Kept::Positive, || async { 0 })
                .await,
            999
        );
    }
}
