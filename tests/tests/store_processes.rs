//! Session store locks across processes.
//!
//! Each test starts child processes of this same test binary: the child runs the test
//! `child_process_entry` (which does nothing unless `ATLEX_STORE_CHILD_ROLE` is set) and acts
//! out the role the parent gave it in the environment:
//!
//! * `count`: open the store, report `READY`, wait for the parent's go file, then `ROUNDS`
//!   times: take the lock, read the counter, sleep, write counter + 1. If the lock did not
//!   exclude the other processes, increments would be lost and the final count would be short.
//! * `hold`: take the lock on `held`, report `LOCKED`, then sleep until killed.
//! * `lock_and_exit`: take the locks on `held-0` to `held-9`, drop the guards and exit the
//!   process at once.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use atlex::auth::{FileStore, SessionData, SessionStore, SqliteStore, SqliteStoreOptions};

const ROLE: &str = "ATLEX_STORE_CHILD_ROLE";
const KIND: &str = "ATLEX_STORE_CHILD_KIND";
const PATH: &str = "ATLEX_STORE_CHILD_PATH";
const ROUNDS: &str = "ATLEX_STORE_CHILD_ROUNDS";
const LEASE_MS: &str = "ATLEX_STORE_CHILD_LEASE_MS";
const GO_FILE: &str = "ATLEX_STORE_CHILD_GO_FILE";
/// A lock timeout no test should reach.
const LOCK_WAIT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug)]
enum Kind {
    File,
    Sqlite,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Sqlite => "sqlite",
        }
    }

    fn parse(name: &str) -> Kind {
        match name {
            "file" => Kind::File,
            "sqlite" => Kind::Sqlite,
            other => panic!("unknown store kind {other:?}"),
        }
    }

    /// Where the store lives inside `dir`.
    fn path(self, dir: &Path) -> PathBuf {
        match self {
            Kind::File => dir.join("sessions"),
            Kind::Sqlite => dir.join("sessions.db"),
        }
    }
}

async fn open(kind: Kind, path: &Path, lease: Option<Duration>) -> Arc<dyn SessionStore> {
    match kind {
        Kind::File => Arc::new(FileStore::open(path).await.unwrap()),
        Kind::Sqlite => {
            let mut options = SqliteStoreOptions::new();
            if let Some(lease) = lease {
                options = options.lease_duration(lease);
            }
            Arc::new(SqliteStore::open_with(path, options).await.unwrap())
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The child side. In a normal test run (no role in the environment) this does nothing.
#[test]
fn child_process_entry() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let kind = Kind::parse(&std::env::var(KIND).unwrap());
    let path = PathBuf::from(std::env::var(PATH).unwrap());
    let lease = std::env::var(LEASE_MS)
        .ok()
        .map(|ms| Duration::from_millis(ms.parse().unwrap()));
    runtime().block_on(async move {
        let store = open(kind, &path, lease).await;
        match role.as_str() {
            "count" => {
                let rounds: u64 = std::env::var(ROUNDS).unwrap().parse().unwrap();
                let go = PathBuf::from(std::env::var(GO_FILE).unwrap());
                println!("READY");
                let deadline = Instant::now() + Duration::from_secs(60);
                while !go.exists() {
                    assert!(Instant::now() < deadline, "no go from the parent");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                for _ in 0..rounds {
                    let _guard = store.lock("counter", LOCK_WAIT).await.unwrap();
                    let current: u64 = match store.get("counter").await.unwrap() {
                        Some(value) => value.as_str().parse().unwrap(),
                        None => 0,
                    };
                    // Widen the window in which a second holder would lose an update.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    store
                        .set("counter", &SessionData::new((current + 1).to_string()))
                        .await
                        .unwrap();
                }
                println!("DONE");
            }
            "hold" => {
                let _guard = store.lock("held", LOCK_WAIT).await.unwrap();
                println!("LOCKED");
                tokio::time::sleep(Duration::from_secs(120)).await;
            }
            "lock_and_exit" => {
                let mut guards = Vec::new();
                for i in 0..10 {
                    guards.push(store.lock(&format!("held-{i}"), LOCK_WAIT).await.unwrap());
                }
                drop(guards);
                // Exit without even shutting the runtime down, as a command-line tool may.
                std::process::exit(0);
            }
            other => panic!("unknown child role {other:?}"),
        }
    });
}

/// A running child, its stdout lines arriving on a channel.
struct ChildProc {
    child: Child,
    lines: Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl ChildProc {
    fn spawn(role: &str, kind: Kind, path: &Path, env: &[(&str, String)]) -> ChildProc {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "child_process_entry",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE, role)
            .env(KIND, kind.name())
            .env(PATH, path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        ChildProc {
            child,
            lines,
            stderr,
        }
    }

    /// Waits until the child prints `wanted` (at the end of a line: the test harness may have
    /// printed `test child_process_entry ... ` before it).
    fn wait_for_line(&mut self, wanted: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.trim_end().ends_with(wanted) => return,
                Ok(_) => {}
                Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!("child never printed {wanted:?}: {}", self.drain_stderr());
                }
            }
        }
    }

    /// Waits for the child to exit successfully.
    fn finish(mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait().unwrap() {
                Some(status) if status.success() => return,
                Some(status) => panic!("child failed ({status}): {}", self.drain_stderr()),
                None if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!("child timed out: {}", self.drain_stderr());
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    fn drain_stderr(&mut self) -> String {
        let handle = std::mem::replace(&mut self.stderr, std::thread::spawn(String::new));
        handle.join().unwrap_or_default()
    }

    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        // Never leave a child running when a test fails.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Several processes increment one counter under the store's lock; no increment is lost.
fn count_across_processes(kind: Kind) {
    const CHILDREN: usize = 4;
    const ROUNDS_EACH: u64 = 25;
    let dir = tempfile::tempdir().unwrap();
    let path = kind.path(dir.path());
    let go = dir.path().join("go");
    // Create the store first so that the children do not race to create it.
    runtime().block_on(open(kind, &path, None));

    let mut children: Vec<ChildProc> = (0..CHILDREN)
        .map(|_| {
            ChildProc::spawn(
                "count",
                kind,
                &path,
                &[
                    (ROUNDS, ROUNDS_EACH.to_string()),
                    (GO_FILE, go.display().to_string()),
                ],
            )
        })
        .collect();
    for child in &mut children {
        child.wait_for_line("READY", Duration::from_secs(60));
    }
    std::fs::write(&go, b"go").unwrap();
    for child in children {
        child.finish(Duration::from_secs(240));
    }

    let count = runtime().block_on(async {
        let store = open(kind, &path, None).await;
        store.get("counter").await.unwrap()
    });
    let expected = CHILDREN as u64 * ROUNDS_EACH;
    assert_eq!(
        count,
        Some(SessionData::new(expected.to_string())),
        "{} store: increments were lost, so two processes held the lock at once",
        kind.name()
    );
}

#[test]
fn file_store_lock_excludes_other_processes() {
    count_across_processes(Kind::File);
}

#[test]
fn sqlite_store_lock_excludes_other_processes() {
    count_across_processes(Kind::Sqlite);
}

/// A child holds the lock; the parent cannot take it; the child is killed; the parent then
/// gets it, within `max_wait` and not before `min_wait`.
fn lock_after_holder_is_killed(
    kind: Kind,
    lease: Option<Duration>,
    min_wait: Duration,
    max_wait: Duration,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = kind.path(dir.path());
    let rt = runtime();
    let store = rt.block_on(open(kind, &path, lease));

    let env: Vec<(&str, String)> = lease
        .map(|lease| (LEASE_MS, lease.as_millis().to_string()))
        .into_iter()
        .collect();
    let mut child = ChildProc::spawn("hold", kind, &path, &env);
    child.wait_for_line("LOCKED", Duration::from_secs(60));

    rt.block_on(async {
        let attempt =
            tokio::time::timeout(Duration::from_millis(300), store.lock("held", LOCK_WAIT)).await;
        assert!(
            attempt.is_err(),
            "{} store: the parent took a lock a live child holds",
            kind.name()
        );
        // Other keys are free meanwhile.
        tokio::time::timeout(Duration::from_secs(5), store.lock("other", LOCK_WAIT))
            .await
            .expect("another key was blocked")
            .unwrap();
    });

    child.kill();
    let killed = Instant::now();
    let guard = rt.block_on(async {
        tokio::time::timeout(max_wait, store.lock("held", LOCK_WAIT))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} store: the lock of a killed holder was not free within {max_wait:?}",
                    kind.name()
                )
            })
            .unwrap()
    });
    let waited = killed.elapsed();
    assert!(
        waited >= min_wait,
        "{} store: the lock was free after {waited:?}, before the lease could expire",
        kind.name()
    );
    drop(guard);
}

/// The SQLite lease of a killed holder expires and is taken over. The child renews its
/// 1.5 s lease every 0.5 s, so after the kill at least 1 s of it is left.
#[test]
fn sqlite_lease_of_killed_holder_expires() {
    let lease = Duration::from_millis(1500);
    lock_after_holder_is_killed(
        Kind::Sqlite,
        Some(lease),
        Duration::from_millis(900),
        lease + Duration::from_secs(5),
    );
}

/// The OS releases a killed holder's file lock at once.
#[test]
fn file_lock_of_killed_holder_is_released() {
    lock_after_holder_is_killed(Kind::File, None, Duration::ZERO, Duration::from_secs(5));
}

/// A process that drops its guard and exits at once leaves the key free, well before the
/// 30 s default lease could expire.
#[test]
fn sqlite_lock_released_by_exiting_process() {
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let path = Kind::Sqlite.path(dir.path());
        let rt = runtime();
        let store = rt.block_on(open(Kind::Sqlite, &path, None));
        ChildProc::spawn("lock_and_exit", Kind::Sqlite, &path, &[]).finish(Duration::from_secs(60));
        rt.block_on(async {
            for i in 0..10 {
                tokio::time::timeout(
                    Duration::from_secs(3),
                    store.lock(&format!("held-{i}"), LOCK_WAIT),
                )
                .await
                .expect("an exited process left its lease behind")
                .unwrap();
            }
        });
    }
}
