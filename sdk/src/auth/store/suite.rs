//! The test suite every session store passes: the same assertions, run against each store by
//! `store_suite!(Fixture)` in the store's own test module.

use std::sync::Arc;
use std::time::Duration;

use super::{SessionData, SessionStore, StoreErrorKind};

/// A lock timeout no test should reach.
const LONG: Duration = Duration::from_secs(30);

/// How a store under test is made, and reopened over the same data.
pub(crate) trait Fixture: Sized + Send + Sync + 'static {
    type Store: SessionStore + std::fmt::Debug;

    /// A fresh, empty store (with whatever temporary directory, schema or key prefix it
    /// needs); `None` when the service it needs is not running and this is not CI (see
    /// [`service_available`]).
    async fn new() -> Option<Self>;

    /// The store under test.
    fn store(&self) -> &Arc<Self::Store>;

    /// A second store opened over the same data (`None` for stores that keep nothing).
    async fn reopen(&self) -> Option<Self::Store>;

    /// Acts as another holder that found the lease of `key` expired and took it over
    /// (`false` for stores whose locks cannot be lost while held).
    async fn steal_lease(&self, _key: &str) -> bool {
        false
    }
}

/// Runs each check of the suite as its own test.
macro_rules! store_suite {
    ($fixture:ty) => {
        $crate::auth::store::suite::store_suite!(@tests $fixture;
            get_missing_is_none,
            set_get_round_trip,
            overwrite_replaces,
            delete_removes_and_missing_is_fine,
            odd_keys_stay_separate,
            lock_excludes_same_key_only,
            lock_is_reusable_after_release,
            cancelled_lock_does_not_leak,
            fifty_tasks_count_to_fifty,
            data_survives_reopen,
            debug_never_shows_contents,
            usable_as_dyn_store,
            compare_and_set_semantics,
            compare_and_set_is_atomic,
            expiring_entries_disappear,
            list_by_prefix,
            fences_grow,
            fenced_write_needs_the_current_lock,
            stolen_lease_refuses_writes,
            lock_times_out,
        );
    };
    (@tests $fixture:ty; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                $crate::auth::store::suite::$name::<$fixture>().await;
            }
        )*
    };
}
pub(crate) use store_suite;

/// Whether the service at `addr` (e.g. PostgreSQL on `127.0.0.1:5432`) accepts connections.
/// When it does not, a test that needs it is skipped with a note, except under `CI=true`,
/// where it fails.
#[cfg_attr(not(any(feature = "postgres", feature = "redis")), allow(dead_code))]
pub(crate) fn service_available(name: &str, addr: &str) -> bool {
    let reachable = addr
        .parse()
        .ok()
        .and_then(|addr| std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok())
        .is_some();
    if reachable {
        return true;
    }
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{name} is not reachable at {addr}, and CI=true requires it (.ci/run starts it)");
    }
    eprintln!("note: skipped, {name} is not reachable at {addr} (start it to run this test)");
    false
}

/// A name no other test run or fixture uses: `<pid>_<counter>_<random>`.
#[cfg_attr(not(any(feature = "postgres", feature = "redis")), allow(dead_code))]
pub(crate) fn unique_name() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}_{n}_{:08x}", std::process::id(), fastrand::u32(..))
}

fn data(text: &str) -> SessionData {
    SessionData::new(text)
}

/// Keys that an unwary file store would turn into paths, hidden files or collisions.
pub(crate) const ODD_KEYS: &[&str] = &[
    "password:did:plc:abc",
    "password:did:plc:abd",
    "oauth:did:web:example.com%3A8080",
    "/",
    "/etc/passwd",
    "a/b",
    "a_2fb",
    "a%2Fb",
    "a\\b",
    "..",
    ".",
    "../escape",
    "../../escape",
    ".hidden",
    "x.json",
    "x.lock",
    "x.tmp",
    "",
    " ",
    "CON",
    "Key",
    "key",
    "KEY",
    "ключ",
    "日本語🔑",
    "e\u{301}",
    "\u{e9}",
    "nul\0byte",
    "new\nline",
    "k-abc",
    "h-abc",
];

/// A key longer than any file name limit.
pub(crate) fn long_key(fill: char) -> String {
    std::iter::repeat_n(fill, 400).collect()
}

pub(crate) async fn get_missing_is_none<F: Fixture>() {
    let Some(fx) = F::new().await else {
        return;
    };
    let got = fx.store().get("password:did:plc:nobody").await.unwrap();
    assert_eq!(got, None);
}

pub(crate) async fn set_get_round_trip<F: Fixture>() {
    let Some(fx) = F::new().await else {
        return;
    };
    let store = fx.store();
    let value = data(r#"{"accessJwt":"a.b.c","refreshJwt":"d.e.f","did":"did:plc:abc"}"#);
    store.set("password:did:plc:abc", &value).await.unwrap();
    assert_eq!(
        store.get("password:did:plc:abc").await.unwrap(),
        Some(value)
    );
    // Any text survives, not only JSON an application would write.
    let odd = data("\u{0}\n\"quoted\" ünïcödé 🔑 \\ {");
    store.set("odd", &odd).await.unwrap();
    assert_eq!(store.get("odd").await.unwrap(), Some(odd));
    let empty = data("");
    store.set("empty", &empty).await.unwrap();
    assert_eq!(store.get("empty").await.unwrap(), Some(empty));
}

pub(crate) async fn overwrite_replaces<F: Fixture>() {
    let Some(fx) = F::new().await else {
        return;
    };
    let store = fx.store();
    store.set("k", &data(r#"{"v":1}"#)).await.unwrap();
    store
        .set("k", &data(r#"{"v":2,"longer":true}"#))
        .await
        .unwrap();
    store.set("k", &data(r#"{"v":3}"#)).await.unwrap();
    assert_eq!(store.get("k").await.unwrap(), Some(data(r#"{"v":3}"#)));
}

pub(crate) async fn delete_removes_and_missing_is_fine<F: Fixture>() {
    let Some(fx) = F::new().await else {
        return;
    };
    let store = fx.store();
    store.set("a", &data("1")).await.unwrap();
    store.set("b", &data("2")).await.unwrap();
    store.delete("a").await.unwrap();
    assert_eq!(store.get("a").await.unwrap(), None);
    assert_eq!(store.get("b").await.unwrap(), Some(data("2")));
    // Deleting what is not there is not an error, twice over.
    store.delete("a").await.unwrap();
    store.delete("never-set").await.unwrap();
    // The key can be used again.
    store.set("a", &data("3")).await.unwrap();
    assert_eq!(store.get("a").await.unwrap(), Some(data("3")));
}

pub(crate) async fn odd_keys_stay_separate<F: Fixture>() {
    let Some(fx) = F::new().await else {
        return;
    };
    let store = fx.store();
    let mut keys: Vec<String> = ODD_KEYS.iter().map(|k| (*k).to_owned()).collect();
    keys.push(long_key('a'));
    keys.push(long_key('b'));
    keys.push(format!("{}c", long_key('a')));
    for (i, key) in keys.iter().enumerate() {
        store
            .set(key, &data(&format!(r#"{{"i":{i}}}"#)))
            .await
            .unwrap();
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            store.get(key).await.unwrap(),
            Some(data(&format!(r#"{{"i":{i}}}"#))),
            "key {key:?}"
        );
    }
    // Deleting one leaves the others.
    store.delete("..").await.unwrap();
    store.delete(&long_key('a')).await.unwrap();
    for (i, key) in keys.iter().enumerate() {
        let expected = if key == ".." || *key == long_key('a') {
            None
        } else {
            Some(data(&format!(r#"{{"i":{i}}}"#)))
        };
        assert_eq!(store.get(key).await.unwrap(), expected, "key {key:?}");
    }
    // Locks on odd keys work too, and do not block each other.
    let mut guards = Vec::new();
    for key in &keys {
        let guard = tokio::time::timeout(Duration::from_secs(10), store.lock(key, LONG))
            .await
            .unwrap_or_else(|_| panic!("lock {key:?} timed out"))
            .unwrap();
        guards.push(guard);
    }
}

pub(crate) async fn lock_excludes_same_key_only<F: Fixture>() {
    let Some(fx) = F::new().await else {
        return;
    };
    let store = Arc::clone(fx.store());
    let first = store.lock("session", LONG).await.unwrap();

    let (tx, mut rx) = tokio::sync::oneshot::channel();
    let contender = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let guard = store.lock("session", LONG).await;
            let _ = tx.send(());
            guard.map(drop)
        })
    };
    // The second locker of the same key waits...
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        rx.try_recv().is_err(),
        "a second locker got the key while the first guard was held"
    );
    // ...while another key is free.
    let other = tokio::time::timeout(Duration::from_secs(5), store.lock("other-session", LONG))
        .await
        .expect("a different key was blocked by the held lock")
        .unwrap();
    drop(other);
    assert!(rx.try_recv().is_err());

    drop(first);
    tokio::time::timeout(Duration::from_secs(10), contender)
        .await
        .expect("the second locker did not get the key after the first guard dropped")
        .unwrap()
        .unwrap();
}

pub(crate) async fn lock_is_reusable_after_release<F: Fixture>() {
    let Some(fx) = F::new().await else {
        return;
    };
    let store = fx.store();
    for _ in 0..20 {
        let guard = tokio::time::timeout(Duration::from_secs(5), store.lock("k", LONG))
            .await
            .expect("relocking a released key timed out")
            .unwrap();
        drop(guard);
    }
}

pub(crate) async fn cancelled_lock_does_not_leak<F: Fixture>() {
    let Some(fx) = F::new().await else {
        return;
    };
    let store = fx.store();
    let held = store.lock("k", LONG).await.unwrap();
    // Give up waiting, several times.
    for _ in 0..3 {
        let attempt = tokio::time::timeout(Duration::from_millis(50), store.lock("k", LONG)).await;
        assert!(attempt.is_err(), "locked twice");
    }
    drop(held);
    // The abandoned attempts must not keep the key locked.
    let again = tokio::time::timeout(Duration::from_secs(10), store.lock("k", LONG)).await;
    assert!(again.is_ok(), "key stayed locked after cancelled attempts");
}

pub(crate) async fn fifty_tasks_count_to_fifty<F: Fixture>() {
    let Some(fx) = F::new().await else {
        return;
    };
    let store = Arc::clone(fx.store());
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let _guard = store.lock("counter", LONG).await.unwrap();
            let current: u64 = match store.get("counter").await.unwrap() {
                Some(value) => value.as_str().parse().unwrap(),
                None => 0,
            };
            tokio::time::sleep(Duration::from_millis(2)).await;
            store
                .set("counter", &data(&(current + 1).to_string()))
                .await
                .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.get("counter").await.unwrap(), Some(data("50")));
}

pub(crate) async fn data_survives_reopen<F: Fixture>() {
    let Some(fx) = F::new().await else {
        return;
    };
    let store = fx.store();
    store.set("kept", &data(r#"{"v":"kept"}"#)).await.unwrap();
    store.set("replaced", &data(r#"{"v":1}"#)).await.unwrap();
    store.set("replaced", &data(r#"{"v":2}"#)).await.unwrap();
    store.set("deleted", &data(r#"{"v":1}"#)).await.unwrap();
    store.delete("deleted").await.unwrap();
    let Some(reopened) = fx.reopen().await else {
        return; // this store keeps nothing
    };
    assert_eq!(
        reopened.get("kept").await.unwrap(),
        Some(data(r#"{"v":"kept"}"#))
    );
    assert_eq!(
        reopened.get("replaced").await.unwrap(),
        Some(data(r#"{"v":2}"#))
    );
    assert_eq!(reopened.get("deleted").await.unwrap(), None);
    // The two stores share their data (and their locks, across the boundary they span).
    reopened.set("from-second", &data("x")).await.unwrap();
    assert_eq!(store.get("from-second").await.unwrap(), Some(data("x")));
}

pub(crate) async fn debug_never_shows_contents<F: Fixture>() {
    const SECRET: &str = "s3cr3t-refresh-token-do-not-print";
    let Some(fx) = F::new().await else {
        return;
    };
    let store = fx.store();
    let value = data(&format!(r#"{{"refreshJwt":"{SECRET}"}}"#));
    store.set("password:did:plc:abc", &value).await.unwrap();
    let got = store.get("password:did:plc:abc").await.unwrap();
    let lock = store.lock("password:did:plc:abc", LONG).await.unwrap();
    for shown in [
        format!("{value:?}"),
        format!("{value:#?}"),
        format!("{got:?}"),
        format!("{store:?}"),
        format!("{store:#?}"),
        format!("{lock:?}"),
    ] {
        assert!(!shown.contains(SECRET), "Debug leaked the session: {shown}");
        assert!(
            !shown.contains("refreshJwt"),
            "Debug leaked the session: {shown}"
        );
    }
}

pub(crate) async fn usable_as_dyn_store<F: Fixture>() {
    let Some(fx) = F::new().await else {
        return;
    };
    let store: Arc<dyn SessionStore> = Arc::clone(fx.store()) as Arc<dyn SessionStore>;
    store.set("k", &data("v")).await.unwrap();
    let _guard = store.lock("k", LONG).await.unwrap();
    assert_eq!(store.get("k").await.unwrap(), Some(data("v")));
}

pub(crate) async fn compare_and_set_semantics<F: Fixture>() {
    let Some(fx) = F::new().await else {
        return;
    };
    let store = fx.store();
    let (a, b) = (data("a"), data("b"));
    // Absent → only `current: None` matches.
    assert!(
        !store
            .compare_and_set("k", Some(&a), Some(&b), None)
            .await
            .unwrap()
    );
    assert_eq!(store.get("k").await.unwrap(), None);
    assert!(
        store
            .compare_and_set("k", None, Some(&a), None)
            .await
            .unwrap()
    );
    assert_eq!(store.get("k").await.unwrap(), Some(a.clone()));
    // Present → `None` no longer matches, a wrong value neither.
    assert!(
        !store
            .compare_and_set("k", None, Some(&b), None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .compare_and_set("k", Some(&b), Some(&b), None)
            .await
            .unwrap()
    );
    assert_eq!(store.get("k").await.unwrap(), Some(a.clone()));
    assert!(
        store
            .compare_and_set("k", Some(&a), Some(&b), None)
            .await
            .unwrap()
    );
    assert_eq!(store.get("k").await.unwrap(), Some(b.clone()));
    // `new: None` removes, only when it matches.
    assert!(
        !store
            .compare_and_set("k", Some(&a), None, None)
            .await
            .unwrap()
    );
    assert!(
        store
            .compare_and_set("k", Some(&b), None, None)
            .await
            .unwrap()
    );
    assert_eq!(store.get("k").await.unwrap(), None);
    // Other keys are untouched.
    store.set("other", &a).await.unwrap();
    assert!(
        store
            .compare_and_set("k", None, Some(&b), None)
            .await
            .unwrap()
    );
    assert_eq!(store.get("other").await.unwrap(), Some(a));
}

pub(crate) async fn compare_and_set_is_atomic<F: Fixture>() {
    let Some(fx) = F::new().await else {
        return;
    };
    let store = Arc::clone(fx.store());
    store.set("counter", &data("0")).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut won = 0u64;
            for _ in 0..10 {
                loop {
                    let current = store.get("counter").await.unwrap().unwrap();
                    let next: u64 = current.as_str().parse::<u64>().unwrap() + 1;
                    let next = data(&next.to_string());
                    if store
                        .compare_and_set("counter", Some(&current), Some(&next), None)
                        .await
                        .unwrap()
                    {
                        won += 1;
                        break;
                    }
                }
            }
            won
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    assert_eq!(total, 80);
    assert_eq!(store.get("counter").await.unwrap(), Some(data("80")));
}

pub(crate) async fn expiring_entries_disappear<F: Fixture>() {
    let Some(fx) = F::new().await else {
        return;
    };
    let store = fx.store();
    let short = Duration::from_secs(1);
    let written = std::time::Instant::now();
    store
        .set_expiring("pending:short", &data("s"), short)
        .await
        .unwrap();
    let before_expiry = store.get("pending:short").await.unwrap();
    // Present while the time to live lasts (checked only when this read was surely within
    // it: on a loaded machine the write and the read may take longer than the TTL).
    if written.elapsed() < short {
        assert_eq!(before_expiry, Some(data("s")));
    }
    store
        .set_expiring("pending:long", &data("l"), Duration::from_secs(600))
        .await
        .unwrap();
    store.set("pending:forever", &data("f")).await.unwrap();
    tokio::time::sleep(short + Duration::from_millis(1000)).await;
    assert_eq!(store.get("pending:short").await.unwrap(), None, "expired");
    assert_eq!(store.get("pending:long").await.unwrap(), Some(data("l")));
    assert_eq!(store.get("pending:forever").await.unwrap(), Some(data("f")));
    assert_eq!(
        store.list("pending:").await.unwrap(),
        vec!["pending:forever".to_owned(), "pending:long".to_owned()]
    );
    // An expired entry is absent for compare-and-set too, and can be written again.
    assert!(
        store
            .compare_and_set("pending:short", None, Some(&data("again")), None)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get("pending:short").await.unwrap(),
        Some(data("again"))
    );
    // A plain set clears an expiry.
    store
        .set_expiring("pending:long", &data("l2"), Duration::from_millis(200))
        .await
        .unwrap();
    store.set("pending:long", &data("l3")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(store.get("pending:long").await.unwrap(), Some(data("l3")));
}

pub(crate) async fn list_by_prefix<F: Fixture>() {
    let Some(fx) = F::new().await else {
        return;
    };
    let store = fx.store();
    assert!(store.list("password:").await.unwrap().is_empty());
    for key in [
        "password:did:plc:abc#phone",
        "password:did:plc:abc#laptop",
        "password:did:plc:abc",
        "password:did:plc:abcd#x",
        "oauth:did:plc:abc#phone",
        "passwordless",
        "a%b_c",
        "a_b",
    ] {
        store.set(key, &data("v")).await.unwrap();
    }
    assert_eq!(
        store.list("password:did:plc:abc#").await.unwrap(),
        vec![
            "password:did:plc:abc#laptop".to_owned(),
            "password:did:plc:abc#phone".to_owned()
        ]
    );
    assert_eq!(store.list("password:").await.unwrap().len(), 4);
    // Prefixes are literal text: no wildcards.
    assert_eq!(store.list("a%").await.unwrap(), vec!["a%b_c".to_owned()]);
    assert_eq!(store.list("a_").await.unwrap(), vec!["a_b".to_owned()]);
    assert_eq!(store.list("").await.unwrap().len(), 8);
    store.delete("password:did:plc:abc#phone").await.unwrap();
    assert_eq!(
        store.list("password:did:plc:abc#").await.unwrap(),
        vec!["password:did:plc:abc#laptop".to_owned()]
    );
}

pub(crate) async fn fences_grow<F: Fixture>() {
    let Some(fx) = F::new().await else {
        return;
    };
    let store = fx.store();
    let mut last = 0;
    for _ in 0..5 {
        let lock = store.lock("k", LONG).await.unwrap();
        assert_eq!(lock.key(), "k");
        assert!(lock.fence() > last, "{} then {}", last, lock.fence());
        assert!(!lock.is_lost());
        last = lock.fence();
    }
    if let Some(reopened) = fx.reopen().await {
        let lock = reopened.lock("k", LONG).await.unwrap();
        assert!(lock.fence() > last, "fences restart in another store");
    }
}

pub(crate) async fn fenced_write_needs_the_current_lock<F: Fixture>() {
    let Some(fx) = F::new().await else {
        return;
    };
    let store = fx.store();
    let lock = store.lock("k", LONG).await.unwrap();
    assert!(
        store
            .compare_and_set("k", None, Some(&data("1")), Some(&lock))
            .await
            .unwrap()
    );
    assert!(
        !store
            .compare_and_set("k", None, Some(&data("2")), Some(&lock))
            .await
            .unwrap()
    );
    // The lock of another key does not fence this one.
    let other = store.lock("other", LONG).await.unwrap();
    let err = store
        .compare_and_set("k", Some(&data("1")), Some(&data("2")), Some(&other))
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert_eq!(store.get("k").await.unwrap(), Some(data("1")));
}

pub(crate) async fn stolen_lease_refuses_writes<F: Fixture>() {
    let Some(fx) = F::new().await else {
        return;
    };
    let store = fx.store();
    store.set("k", &data("old")).await.unwrap();
    let lock = store.lock("k", LONG).await.unwrap();
    if !fx.steal_lease("k").await {
        return; // this store's locks cannot be lost while held
    }
    let err = store
        .compare_and_set("k", Some(&data("old")), Some(&data("late")), Some(&lock))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::LeaseLost, "{err}");
    assert!(err.is_transient());
    assert_eq!(store.get("k").await.unwrap(), Some(data("old")));
    // The holder learns it lost the lease (at the latest when a renewal finds out).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !lock.is_lost() {
        assert!(
            std::time::Instant::now() < deadline,
            "holder never learnt of the loss"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) async fn lock_times_out<F: Fixture>() {
    let Some(fx) = F::new().await else {
        return;
    };
    let store = fx.store();
    let held = store.lock("k", LONG).await.unwrap();
    let started = std::time::Instant::now();
    let err = store
        .lock("k", Duration::from_millis(200))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::LockTimeout, "{err}");
    assert!(err.is_transient());
    assert!(err.to_string().contains("\"k\""), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(200));
    if let Some(reopened) = fx.reopen().await {
        let err = reopened
            .lock("k", Duration::from_millis(200))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::LockTimeout, "{err}");
    }
    drop(held);
    store.lock("k", LONG).await.unwrap();
}
