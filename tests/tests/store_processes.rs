//! Session store locks and shared sessions across processes.
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
//! * `calls`: restore the shared password session, report `READY`, wait for the go file, then
//!   run `TASKS` concurrent tasks calling the mock PDS through one client for `DURATION_MS`,
//!   and report `RESULT ok=… transient=… failed=… last=…`.
//! * `refresh_once`: restore the session and make one call (its access token has expired, so
//!   it refreshes first), then report `OUTCOME <what happened>`.
//! * `hold_session_lock`: take the store's lock on the session key, report `LOCKED`, sleep.
//!
//! The session tests (below `sessions`) run one at a time (they start up to 9 processes each)
//! against a mock PDS in the parent that rotates refresh tokens and kills the session when an
//! old one is reused, as the reference servers do.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use atlex::auth::{
    AuthError, DEFAULT_LEASE, FileStore, PasswordSession, PostgresStore, PostgresStoreOptions,
    RedisStore, RedisStoreOptions, SessionData, SessionStore, SqliteStore, SqliteStoreOptions,
    StoreErrorKind,
};

const ROLE: &str = "ATLEX_STORE_CHILD_ROLE";
const KIND: &str = "ATLEX_STORE_CHILD_KIND";
const PATH: &str = "ATLEX_STORE_CHILD_PATH";
const ROUNDS: &str = "ATLEX_STORE_CHILD_ROUNDS";
const LEASE_MS: &str = "ATLEX_STORE_CHILD_LEASE_MS";
const GO_FILE: &str = "ATLEX_STORE_CHILD_GO_FILE";
/// A lock timeout no test should reach.
const LOCK_WAIT: Duration = Duration::from_secs(120);
/// How long a holder killed inside the lock may delay the others, with the default lease:
/// "a few seconds, not a whole default lease". The wait is what is left of the dead holder's
/// lease (between 1.5 s and 2 s, as it renews every quarter of it) plus one poll.
const KILLED_HOLDER_BOUND: Duration = Duration::from_secs(3);

const STORE_URL: &str = "ATLEX_STORE_CHILD_STORE_URL";
const PDS_URL: &str = "ATLEX_STORE_CHILD_PDS_URL";
const TASKS: &str = "ATLEX_STORE_CHILD_TASKS";
const DURATION_MS: &str = "ATLEX_STORE_CHILD_DURATION_MS";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    File,
    Sqlite,
    Postgres,
    Redis,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Sqlite => "sqlite",
            Kind::Postgres => "postgres",
            Kind::Redis => "redis",
        }
    }

    fn parse(name: &str) -> Kind {
        match name {
            "file" => Kind::File,
            "sqlite" => Kind::Sqlite,
            "postgres" => Kind::Postgres,
            "redis" => Kind::Redis,
            other => panic!("unknown store kind {other:?}"),
        }
    }

    /// Where the store lives inside `dir`.
    fn path(self, dir: &Path) -> PathBuf {
        match self {
            Kind::File => dir.join("sessions"),
            Kind::Sqlite => dir.join("sessions.db"),
            Kind::Postgres => PathBuf::from(format!("atlex_proc_{}", sessions::unique())),
            Kind::Redis => PathBuf::from(format!("atlex-proc:{}:", sessions::unique())),
        }
    }
}

async fn open(kind: Kind, path: &Path, lease: Option<Duration>) -> Arc<dyn SessionStore> {
    let url = std::env::var(STORE_URL).ok();
    open_at(kind, path, url.as_deref(), lease).await
}

/// Opens a store: `path` is the file or directory, the PostgreSQL schema or the Redis key
/// prefix; `url` the server (default: the local one).
async fn open_at(
    kind: Kind,
    path: &Path,
    url: Option<&str>,
    lease: Option<Duration>,
) -> Arc<dyn SessionStore> {
    let name = path.to_str().unwrap();
    match kind {
        Kind::Postgres => {
            let mut options = PostgresStoreOptions::new()
                .schema(name)
                .operation_timeout(Duration::from_secs(2));
            if let Some(lease) = lease {
                options = options.lease_duration(lease);
            }
            let url = url.unwrap_or(sessions::PG_URL);
            Arc::new(PostgresStore::connect_with(url, options).await.unwrap())
        }
        Kind::Redis => {
            let mut options = RedisStoreOptions::new()
                .prefix(name)
                .operation_timeout(Duration::from_secs(2));
            if let Some(lease) = lease {
                options = options.lease_duration(lease);
            }
            let url = url.unwrap_or(sessions::REDIS_URL);
            Arc::new(RedisStore::connect_with(url, options).await.unwrap())
        }
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
            other => sessions::child(other, store).await,
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
/// 1.5 s lease every 375 ms, so after the kill more than 1.1 s of it is left.
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

/// A process that drops its guard and exits at once leaves the key free, well before its
/// 30 s lease could expire (a long lease here, so that a lease left behind fails the test).
#[test]
fn sqlite_lock_released_by_exiting_process() {
    let lease = Duration::from_secs(30);
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let path = Kind::Sqlite.path(dir.path());
        let rt = runtime();
        let store = rt.block_on(open(Kind::Sqlite, &path, Some(lease)));
        let env = [(LEASE_MS, lease.as_millis().to_string())];
        ChildProc::spawn("lock_and_exit", Kind::Sqlite, &path, &env)
            .finish(Duration::from_secs(60));
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

/// A shared password session used by many processes at once, and the faults around its
/// refresh, on every store.
mod sessions {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    use atlex::types::Did;
    use atlex::xrpc::{Client, Error, NoBody, RetryPolicy};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;
    use support::{GetThing, GetThingParams};
    use wiremock::{MockServer, Request, Respond, ResponseTemplate};

    pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
    pub const REDIS_URL: &str = "redis://127.0.0.1:6379/0";
    const DID: &str = "did:plc:alice";
    const KEY: &str = "password:did:plc:alice";
    /// Access tokens live this long (seconds); sessions refresh half-way.
    const LIFETIME: i64 = 4;
    const PROCESSES: usize = 8;
    const TASKS_EACH: usize = 50;

    /// The session tests start many processes each: run them one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    pub fn unique() -> String {
        format!("{}_{:08x}", std::process::id(), fastrand_u32())
    }

    fn fastrand_u32() -> u32 {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes).unwrap();
        u32::from_le_bytes(bytes)
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    fn access_jwt(generation: u64, issued: i64) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256K","typ":"at+jwt"}"#);
        let payload = URL_SAFE_NO_PAD.encode(
            format!(
                r#"{{"sub":"{DID}","iat":{issued},"exp":{},"jti":"{generation}"}}"#,
                issued + LIFETIME
            )
            .as_bytes(),
        );
        format!("{header}.{payload}.sig")
    }

    #[derive(Default)]
    struct PdsState {
        generation: u64,
        /// Access token → expiry.
        access: HashMap<String, i64>,
        refreshes: u64,
        reuses: u64,
        dead: bool,
        /// Unix milliseconds of each refresh.
        refreshed_at: Vec<u128>,
    }

    /// A PDS that rotates refresh tokens (`r-<generation>`) and, like the reference servers,
    /// kills the session when an old refresh token is used again.
    #[derive(Clone)]
    struct Pds {
        state: Arc<Mutex<PdsState>>,
        /// Delay of refresh answers (the rotation happens when the request arrives).
        refresh_delay: Arc<Mutex<Duration>>,
    }

    fn millis() -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    }

    impl Respond for Pds {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            let auth = request
                .headers
                .get("authorization")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "))
                .unwrap_or("")
                .to_owned();
            let mut state = self.state.lock().unwrap();
            let path = request.url.path();
            if path.ends_with("com.atproto.server.refreshSession") {
                let delay = *self.refresh_delay.lock().unwrap();
                if state.dead {
                    return ResponseTemplate::new(400)
                        .set_body_json(json!({"error": "ExpiredToken", "message": "revoked"}));
                }
                if auth == format!("r-{}", state.generation) {
                    state.generation += 1;
                    state.refreshes += 1;
                    state.refreshed_at.push(millis());
                    let access = access_jwt(state.generation, now());
                    state.access.insert(access.clone(), now() + LIFETIME);
                    let body = json!({"accessJwt": access,
                        "refreshJwt": format!("r-{}", state.generation),
                        "handle": "alice.test", "did": DID});
                    return ResponseTemplate::new(200)
                        .set_body_json(body)
                        .set_delay(delay);
                }
                if auth.starts_with("r-") {
                    // An old refresh token: replayed. The whole session dies.
                    state.reuses += 1;
                    state.dead = true;
                    return ResponseTemplate::new(400).set_body_json(
                        json!({"error": "ExpiredToken", "message": "refresh token replayed"}),
                    );
                }
                return ResponseTemplate::new(401).set_body_json(json!({"error": "InvalidToken"}));
            }
            if state.dead {
                return ResponseTemplate::new(401).set_body_json(json!({"error": "InvalidToken"}));
            }
            match state.access.get(&auth) {
                Some(exp) if *exp > now() => {
                    ResponseTemplate::new(200).set_body_json(json!({"things": ["ok"]}))
                }
                Some(_) => {
                    ResponseTemplate::new(400).set_body_json(json!({"error": "ExpiredToken"}))
                }
                None => ResponseTemplate::new(401).set_body_json(json!({"error": "InvalidToken"})),
            }
        }
    }

    impl Pds {
        async fn start() -> (MockServer, Pds) {
            let server = MockServer::builder()
                .disable_request_recording()
                .start()
                .await;
            let pds = Pds {
                state: Arc::new(Mutex::new(PdsState::default())),
                refresh_delay: Arc::new(Mutex::new(Duration::ZERO)),
            };
            wiremock::Mock::given(wiremock::matchers::any())
                .respond_with(pds.clone())
                .mount(&server)
                .await;
            (server, pds)
        }

        /// Generation 1, its access token already expired (`expired`) or fresh.
        fn first_session(&self, server: &MockServer, expired: bool) -> SessionData {
            let mut state = self.state.lock().unwrap();
            state.generation = 1;
            let issued = if expired { now() - 2 * LIFETIME } else { now() };
            let access = access_jwt(1, issued);
            state.access.insert(access.clone(), issued + LIFETIME);
            SessionData::new(
                json!({"version": 1, "did": DID, "handle": "alice.test",
                    "accessJwt": access, "refreshJwt": "r-1",
                    "serviceUrl": server.uri(), "pdsUrl": server.uri()})
                .to_string(),
            )
        }

        fn refreshes(&self) -> u64 {
            self.state.lock().unwrap().refreshes
        }

        fn reuses(&self) -> u64 {
            self.state.lock().unwrap().reuses
        }

        fn generation(&self) -> u64 {
            self.state.lock().unwrap().generation
        }
    }

    fn did() -> Did {
        Did::new(DID).unwrap()
    }

    fn base(pds: &str) -> Client {
        Client::builder(pds)
            .retry(RetryPolicy::default().max_retries(0))
            .build()
            .unwrap()
    }

    fn params() -> GetThingParams {
        GetThingParams {
            actor: "alice".into(),
            ..GetThingParams::default()
        }
    }

    async fn stored_refresh(store: &dyn SessionStore) -> Option<String> {
        let data = store.get(KEY).await.unwrap()?;
        let value: serde_json::Value = serde_json::from_str(data.as_str()).unwrap();
        value["refreshJwt"].as_str().map(str::to_owned)
    }

    /// What a call's failure was, in a word.
    fn outcome(error: &Error<support::GetThingError>) -> String {
        match error {
            Error::Auth(AuthError::SessionExpired { .. }) => "session_expired".into(),
            Error::Auth(AuthError::NoSession { .. }) => "no_session".into(),
            Error::Auth(AuthError::Store(store)) if store.kind() == StoreErrorKind::LeaseLost => {
                "lease_lost".into()
            }
            error if error.is_transient() => format!("transient:{error}"),
            error => format!("other:{error}"),
        }
    }

    /// The child roles of the session tests.
    pub async fn child(role: &str, store: Arc<dyn SessionStore>) {
        let pds = std::env::var(PDS_URL).unwrap();
        match role {
            "calls" => {
                let tasks: usize = std::env::var(TASKS).unwrap().parse().unwrap();
                let duration =
                    Duration::from_millis(std::env::var(DURATION_MS).unwrap().parse().unwrap());
                let go = PathBuf::from(std::env::var(GO_FILE).unwrap());
                let client = PasswordSession::restore_with(&base(&pds), store, &did())
                    .await
                    .unwrap();
                println!("READY");
                let wait = Instant::now() + Duration::from_secs(60);
                while !go.exists() {
                    assert!(Instant::now() < wait, "no go from the parent");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let deadline = Instant::now() + duration;
                let mut handles = Vec::new();
                for _ in 0..tasks {
                    let client = client.clone();
                    handles.push(tokio::spawn(async move {
                        let (mut ok, mut transient, mut failed) = (0u64, 0u64, 0u64);
                        let mut first = String::new();
                        while Instant::now() < deadline {
                            match client.call::<GetThing>(params(), NoBody).await {
                                Ok(_) => ok += 1,
                                Err(error) if error.is_transient() => transient += 1,
                                Err(error) => {
                                    failed += 1;
                                    if first.is_empty() {
                                        first = outcome(&error);
                                    }
                                }
                            }
                            tokio::time::sleep(Duration::from_millis(
                                100 + fastrand_u32() as u64 % 100,
                            ))
                            .await;
                        }
                        (ok, transient, failed, first)
                    }));
                }
                let (mut ok, mut transient, mut failed) = (0, 0, 0);
                let mut first = String::new();
                for handle in handles {
                    let (o, t, f, e) = handle.await.unwrap();
                    ok += o;
                    transient += t;
                    failed += f;
                    if first.is_empty() {
                        first = e;
                    }
                }
                // After the run (and any outage): one more call must succeed.
                let last = match client.call::<GetThing>(params(), NoBody).await {
                    Ok(_) => "ok".to_owned(),
                    Err(error) => outcome(&error),
                };
                println!(
                    "RESULT ok={ok} transient={transient} failed={failed} last={} first={}",
                    last.replace(' ', "_"),
                    first.replace(' ', "_")
                );
            }
            "refresh_once" => {
                let client = PasswordSession::restore_with(&base(&pds), store, &did()).await;
                let outcome = match client {
                    Ok(client) => match client.call::<GetThing>(params(), NoBody).await {
                        Ok(_) => "ok".to_owned(),
                        Err(error) => outcome(&error),
                    },
                    Err(Error::Auth(AuthError::NoSession { .. })) => "no_session".to_owned(),
                    Err(error) => format!("restore:{error}"),
                };
                println!("OUTCOME {}", outcome.replace(' ', "_"));
            }
            "hold_session_lock" => {
                let _guard = store.lock(KEY, LOCK_WAIT).await.unwrap();
                println!("LOCKED");
                tokio::time::sleep(Duration::from_secs(120)).await;
            }
            other => panic!("unknown child role {other:?}"),
        }
    }

    impl ChildProc {
        /// The rest of the first line starting with `prefix` (after the harness's text).
        fn wait_for_prefix(&mut self, prefix: &str, timeout: Duration) -> String {
            let deadline = Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.lines.recv_timeout(left) {
                    Ok(line) => {
                        if let Some(at) = line.find(prefix) {
                            return line[at + prefix.len()..].trim().to_owned();
                        }
                    }
                    Err(_) => {
                        let _ = self.child.kill();
                        let _ = self.child.wait();
                        panic!("child never printed {prefix:?}: {}", self.drain_stderr());
                    }
                }
            }
        }

        fn signal(&self, signal: &str) {
            let status = Command::new("kill")
                .args([signal, &self.child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success(), "kill {signal}");
        }
    }

    /// Whether the store's server is reachable; skipped with a note locally, a failure in CI.
    fn available(kind: Kind) -> bool {
        let addr = match kind {
            Kind::Postgres => "127.0.0.1:5432",
            Kind::Redis => "127.0.0.1:6379",
            Kind::File | Kind::Sqlite => return true,
        };
        if std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))
            .is_ok()
        {
            return true;
        }
        if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            panic!(
                "{} is not reachable at {addr}, and CI=true requires it",
                kind.name()
            );
        }
        eprintln!("note: skipped, {} is not reachable at {addr}", kind.name());
        false
    }

    /// A store location for one test, and its clean-up.
    struct Place {
        kind: Kind,
        _dir: tempfile::TempDir,
        path: PathBuf,
    }

    impl Place {
        fn new(kind: Kind) -> Place {
            let dir = tempfile::tempdir().unwrap();
            let path = kind.path(dir.path());
            Place {
                kind,
                _dir: dir,
                path,
            }
        }
    }

    impl Drop for Place {
        fn drop(&mut self) {
            let name = self.path.display().to_string();
            match self.kind {
                Kind::Postgres => {
                    let _ = Command::new("psql")
                        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc"])
                        .arg(format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                        .output();
                }
                Kind::Redis => {
                    let script = format!(
                        "for _, k in ipairs(redis.call('KEYS', '{name}*')) do redis.call('DEL', k) end"
                    );
                    let _ = Command::new("redis-cli")
                        .args(["EVAL", &script, "0"])
                        .output();
                }
                Kind::File | Kind::Sqlite => {}
            }
        }
    }

    /// Spawns a session child.
    fn spawn(role: &str, place: &Place, pds: &MockServer, extra: &[(&str, String)]) -> ChildProc {
        let mut env: Vec<(&str, String)> = vec![(PDS_URL, pds.uri())];
        env.extend(extra.iter().cloned());
        ChildProc::spawn(role, place.kind, &place.path, &env)
    }

    struct RunResult {
        ok: u64,
        transient: u64,
        failed: u64,
        lasts: Vec<String>,
        firsts: Vec<String>,
    }

    fn field<'a>(line: &'a str, name: &str) -> &'a str {
        line.split_whitespace()
            .find_map(|part| part.strip_prefix(&format!("{name}=")))
            .unwrap_or("")
    }

    /// Runs `processes` × `tasks` callers for `duration`; `during` runs in the parent meanwhile.
    fn run_calls(
        place: &Place,
        server: &MockServer,
        processes: usize,
        tasks: usize,
        duration: Duration,
        extra: &[(&str, String)],
        during: impl FnOnce(),
    ) -> RunResult {
        let go = place._dir.path().join("go");
        let mut env = vec![
            (TASKS, tasks.to_string()),
            (DURATION_MS, duration.as_millis().to_string()),
            (GO_FILE, go.display().to_string()),
        ];
        env.extend(extra.iter().cloned());
        let mut children: Vec<ChildProc> = (0..processes)
            .map(|_| spawn("calls", place, server, &env))
            .collect();
        for child in &mut children {
            child.wait_for_line("READY", Duration::from_secs(60));
        }
        std::fs::write(&go, b"go").unwrap();
        during();
        let mut result = RunResult {
            ok: 0,
            transient: 0,
            failed: 0,
            lasts: Vec::new(),
            firsts: Vec::new(),
        };
        for mut child in children {
            let line = child.wait_for_prefix("RESULT", duration + Duration::from_secs(90));
            result.ok += field(&line, "ok").parse::<u64>().unwrap();
            result.transient += field(&line, "transient").parse::<u64>().unwrap();
            result.failed += field(&line, "failed").parse::<u64>().unwrap();
            result.lasts.push(field(&line, "last").to_owned());
            result.firsts.push(field(&line, "first").to_owned());
            child.finish(Duration::from_secs(30));
        }
        result
    }

    fn table_header() {
        println!(
            "| store | processes × tasks | calls ok | transient | failed | refreshes | reuses | session kept | wall |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
    }

    /// 8 processes × 50 tasks through one shared session whose access token keeps expiring.
    fn shared_session(kind: Kind) {
        if !available(kind) {
            return;
        }
        let _serial = SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let rt = runtime();
        let (server, pds) = rt.block_on(Pds::start());
        let place = Place::new(kind);
        let store = rt.block_on(open_at(kind, &place.path, None, None));
        rt.block_on(store.set(KEY, &pds.first_session(&server, false)))
            .unwrap();
        let duration = Duration::from_secs(6);
        let started = Instant::now();
        let result = run_calls(&place, &server, PROCESSES, TASKS_EACH, duration, &[], || {});
        let wall = started.elapsed();
        let stored = rt.block_on(stored_refresh(&*store));
        table_header();
        println!(
            "| {} | {PROCESSES} × {TASKS_EACH} | {} | {} | {} | {} | {} | {} | {:.1} s |",
            kind.name(),
            result.ok,
            result.transient,
            result.failed,
            pds.refreshes(),
            pds.reuses(),
            stored.is_some(),
            wall.as_secs_f64()
        );
        assert_eq!(
            pds.reuses(),
            0,
            "{}: a refresh token was used twice",
            kind.name()
        );
        assert_eq!(
            (result.failed, result.transient),
            (0, 0),
            "{}: calls failed: {:?}",
            kind.name(),
            result.firsts
        );
        assert!(
            result.lasts.iter().all(|last| last == "ok"),
            "{:?}",
            result.lasts
        );
        assert!(result.ok > 0);
        assert_eq!(
            stored,
            Some(format!("r-{}", pds.generation())),
            "{}: the store does not hold the current session",
            kind.name()
        );
        // One refresh per access-token lifetime: sessions refresh half-way through a 4 s
        // token, so a 6 s run (plus the final calls) needs at most a few; duplicates would
        // have been reuses.
        let most = (wall.as_secs() / (LIFETIME as u64 / 2)) + 1;
        assert!(
            pds.refreshes() >= 2 && pds.refreshes() <= most,
            "{}: {} refreshes in {wall:?}",
            kind.name(),
            pds.refreshes()
        );
    }

    #[test]
    fn shared_session_across_processes_sqlite() {
        shared_session(Kind::Sqlite);
    }

    #[test]
    fn shared_session_across_processes_file() {
        shared_session(Kind::File);
    }

    #[test]
    fn shared_session_across_processes_postgres() {
        shared_session(Kind::Postgres);
    }

    #[test]
    fn shared_session_across_processes_redis() {
        shared_session(Kind::Redis);
    }

    /// A process killed while it holds the lock, before its refresh reached the server:
    /// another takes over when the lease runs out, and every call succeeds. Every process
    /// uses the store's **default** lease ([`DEFAULT_LEASE`], renewed by a heartbeat while
    /// held), and the delay the dead holder causes must stay below [`KILLED_HOLDER_BOUND`].
    fn killed_holder_before_refresh(kind: Kind) {
        if !available(kind) {
            return;
        }
        let _serial = SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let rt = runtime();
        let (server, pds) = rt.block_on(Pds::start());
        let place = Place::new(kind);
        let store = rt.block_on(open_at(kind, &place.path, None, None));
        rt.block_on(store.set(KEY, &pds.first_session(&server, true)))
            .unwrap();
        let mut holder = spawn("hold_session_lock", &place, &server, &[]);
        holder.wait_for_line("LOCKED", Duration::from_secs(60));
        let killed = Mutex::new(None);
        let result = run_calls(
            &place,
            &server,
            PROCESSES,
            TASKS_EACH,
            Duration::from_secs(5),
            &[],
            || {
                std::thread::sleep(Duration::from_millis(300));
                holder.kill();
                *killed.lock().unwrap() = Some(millis());
            },
        );
        let killed = killed.lock().unwrap().unwrap();
        let first = pds
            .state
            .lock()
            .unwrap()
            .refreshed_at
            .first()
            .copied()
            .unwrap();
        let takeover = Duration::from_millis(u64::try_from(first.saturating_sub(killed)).unwrap());
        println!(
            "{}: holder killed inside the lock (default lease {DEFAULT_LEASE:?}): taken over \
             after {:.2} s; \
             {} calls ok, {} failed, {} refreshes, {} reuses",
            kind.name(),
            takeover.as_secs_f64(),
            result.ok,
            result.failed + result.transient,
            pds.refreshes(),
            pds.reuses()
        );
        assert_eq!(pds.reuses(), 0);
        assert_eq!(
            (result.failed, result.transient),
            (0, 0),
            "{:?}",
            result.firsts
        );
        // Within a few seconds (what is left of the default lease), not a hang.
        assert!(
            takeover < KILLED_HOLDER_BOUND,
            "{}: a killed holder delayed the others by {takeover:?} (bound \
             {KILLED_HOLDER_BOUND:?}, default lease {DEFAULT_LEASE:?})",
            kind.name()
        );
        assert_eq!(
            rt.block_on(stored_refresh(&*store)),
            Some(format!("r-{}", pds.generation()))
        );
    }

    #[test]
    fn killed_holder_before_refresh_sqlite() {
        killed_holder_before_refresh(Kind::Sqlite);
    }

    #[test]
    fn killed_holder_before_refresh_file() {
        killed_holder_before_refresh(Kind::File);
    }

    #[test]
    fn killed_holder_before_refresh_postgres() {
        killed_holder_before_refresh(Kind::Postgres);
    }

    #[test]
    fn killed_holder_before_refresh_redis() {
        killed_holder_before_refresh(Kind::Redis);
    }

    fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A process killed after the server rotated the refresh token but before it stored the
    /// new one: the one window no client can save against a strict server. The others end
    /// with one clear typed error, the server sees the old token once, the session is
    /// removed, nothing hangs.
    fn killed_after_rotation(kind: Kind) {
        if !available(kind) {
            return;
        }
        let _serial = SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let rt = runtime();
        let (server, pds) = rt.block_on(Pds::start());
        let place = Place::new(kind);
        let store = rt.block_on(open_at(kind, &place.path, None, None));
        rt.block_on(store.set(KEY, &pds.first_session(&server, true)))
            .unwrap();
        *pds.refresh_delay.lock().unwrap() = Duration::from_secs(60);
        let mut first = spawn("refresh_once", &place, &server, &[]);
        wait_until("the first refresh", Duration::from_secs(30), || {
            pds.refreshes() == 1
        });
        first.kill();
        *pds.refresh_delay.lock().unwrap() = Duration::ZERO;
        let started = Instant::now();
        let mut others: Vec<ChildProc> = (0..4)
            .map(|_| spawn("refresh_once", &place, &server, &[]))
            .collect();
        let outcomes: Vec<String> = others
            .iter_mut()
            .map(|child| child.wait_for_prefix("OUTCOME", Duration::from_secs(60)))
            .collect();
        println!(
            "{}: killed after the rotation: outcomes {outcomes:?} after {:?}; {} reuse(s)",
            kind.name(),
            started.elapsed(),
            pds.reuses()
        );
        for outcome in &outcomes {
            assert!(
                outcome == "session_expired" || outcome == "no_session",
                "{}: {outcome}",
                kind.name()
            );
        }
        assert_eq!(pds.reuses(), 1, "the old token was tried more than once");
        assert_eq!(
            rt.block_on(stored_refresh(&*store)),
            None,
            "the session was not removed"
        );
    }

    #[test]
    fn killed_after_rotation_sqlite() {
        killed_after_rotation(Kind::Sqlite);
    }

    #[test]
    fn killed_after_rotation_file() {
        killed_after_rotation(Kind::File);
    }

    #[test]
    fn killed_after_rotation_postgres() {
        killed_after_rotation(Kind::Postgres);
    }

    #[test]
    fn killed_after_rotation_redis() {
        killed_after_rotation(Kind::Redis);
    }

    /// A holder stalled (`SIGSTOP`) past its lease while its refresh is in flight: another
    /// process takes the lock; when the stalled one resumes, its late write is refused.
    fn stalled_holder(kind: Kind) {
        if !available(kind) {
            return;
        }
        let _serial = SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The default lease: the guarantee holds with the settings users get.
        let lease = DEFAULT_LEASE;
        let rt = runtime();
        let (server, pds) = rt.block_on(Pds::start());
        let place = Place::new(kind);
        let store = rt.block_on(open_at(kind, &place.path, None, None));
        rt.block_on(store.set(KEY, &pds.first_session(&server, true)))
            .unwrap();
        *pds.refresh_delay.lock().unwrap() = Duration::from_secs(3);
        let mut stalled = spawn("refresh_once", &place, &server, &[]);
        wait_until("the refresh", Duration::from_secs(30), || {
            pds.refreshes() == 1
        });
        stalled.signal("-STOP");
        std::thread::sleep(lease * 2);
        let mut taker = spawn("hold_session_lock", &place, &server, &[]);
        taker.wait_for_line("LOCKED", Duration::from_secs(30));
        stalled.signal("-CONT");
        let outcome = stalled.wait_for_prefix("OUTCOME", Duration::from_secs(30));
        println!("{}: stalled holder resumed: {outcome}", kind.name());
        assert_eq!(outcome, "lease_lost", "{}", kind.name());
        assert_eq!(
            rt.block_on(stored_refresh(&*store)),
            Some("r-1".to_owned()),
            "the late write landed"
        );
        taker.kill();
    }

    #[test]
    fn stalled_holder_write_is_refused_sqlite() {
        stalled_holder(Kind::Sqlite);
    }

    #[test]
    fn stalled_holder_write_is_refused_postgres() {
        stalled_holder(Kind::Postgres);
    }

    #[test]
    fn stalled_holder_write_is_refused_redis() {
        stalled_holder(Kind::Redis);
    }

    /// A TCP proxy the test can cut: `cut` drops every connection and refuses new ones until
    /// `restore`.
    struct Proxy {
        port: u16,
        cut: Arc<std::sync::atomic::AtomicBool>,
        connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    }

    impl Proxy {
        async fn start(upstream: &'static str) -> Proxy {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
            let (flag, list) = (cut.clone(), connections.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        return;
                    };
                    if flag.load(std::sync::atomic::Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let task = tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    list.lock().unwrap().push(task.abort_handle());
                }
            });
            Proxy {
                port,
                cut,
                connections,
            }
        }

        fn cut(&self) {
            self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
            for connection in self.connections.lock().unwrap().drain(..) {
                connection.abort();
            }
        }

        fn restore(&self) {
            self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// The store's connection cut mid-run: calls fail transiently at worst, nothing is lost,
    /// and the run recovers when the link returns.
    fn connection_cut(kind: Kind) {
        if !available(kind) {
            return;
        }
        let _serial = SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let rt = runtime();
        let (server, pds) = rt.block_on(Pds::start());
        let (upstream, scheme) = match kind {
            Kind::Postgres => (
                "127.0.0.1:5432",
                "postgres://postgres@127.0.0.1:{port}/test",
            ),
            _ => ("127.0.0.1:6379", "redis://127.0.0.1:{port}/0"),
        };
        let proxy = rt.block_on(Proxy::start(upstream));
        let url = scheme.replace("{port}", &proxy.port.to_string());
        let place = Place::new(kind);
        let store = rt.block_on(open_at(kind, &place.path, None, None));
        rt.block_on(store.set(KEY, &pds.first_session(&server, false)))
            .unwrap();
        let result = run_calls(
            &place,
            &server,
            4,
            20,
            Duration::from_secs(9),
            &[(STORE_URL, url)],
            || {
                std::thread::sleep(Duration::from_millis(1500));
                proxy.cut();
                std::thread::sleep(Duration::from_secs(3));
                proxy.restore();
            },
        );
        println!(
            "{}: connection cut for 3 s: {} calls ok, {} transient failures, {} other, {} refreshes, {} reuses",
            kind.name(),
            result.ok,
            result.transient,
            result.failed,
            pds.refreshes(),
            pds.reuses()
        );
        assert_eq!(result.failed, 0, "{:?}", result.firsts);
        assert_eq!(pds.reuses(), 0);
        assert!(
            result.lasts.iter().all(|last| last == "ok"),
            "{:?}",
            result.lasts
        );
        assert_eq!(
            rt.block_on(stored_refresh(&*store)),
            Some(format!("r-{}", pds.generation()))
        );
        assert!(pds.refreshes() >= 2, "no refresh after the link returned");
    }

    #[test]
    fn connection_cut_postgres() {
        connection_cut(Kind::Postgres);
    }

    #[test]
    fn connection_cut_redis() {
        connection_cut(Kind::Redis);
    }

    /// 1,000 concurrent calls in one process with an expired token: exactly one refresh; then
    /// a caller cancelled mid-refresh: the new tokens are stored all the same.
    fn thousand_calls(kind: Kind) {
        if !available(kind) {
            return;
        }
        let _serial = SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let rt = runtime();
        let (server, pds) = rt.block_on(Pds::start());
        let place = Place::new(kind);
        rt.block_on(async {
            let store = open_at(kind, &place.path, None, None).await;
            store
                .set(KEY, &pds.first_session(&server, true))
                .await
                .unwrap();
            let client = PasswordSession::restore_with(&base(&server.uri()), store.clone(), &did())
                .await
                .unwrap();
            let calls: Vec<_> = (0..1000)
                .map(|_| {
                    let client = client.clone();
                    tokio::spawn(async move { client.call::<GetThing>(params(), NoBody).await })
                })
                .collect();
            for call in calls {
                call.await.unwrap().unwrap();
            }
            assert_eq!(pds.refreshes(), 1, "{}", kind.name());
            println!(
                "{}: 1000 concurrent calls, {} refresh",
                kind.name(),
                pds.refreshes()
            );

            *pds.refresh_delay.lock().unwrap() = Duration::from_millis(500);
            let cancelled =
                tokio::time::timeout(Duration::from_millis(100), client.refresh()).await;
            assert!(
                cancelled.is_err(),
                "the caller was not cancelled mid-refresh"
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while stored_refresh(&*store).await != Some("r-3".to_owned()) {
                assert!(
                    Instant::now() < deadline,
                    "{}: the rotated tokens were lost",
                    kind.name()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(pds.refreshes(), 2);
            *pds.refresh_delay.lock().unwrap() = Duration::ZERO;
            client.call::<GetThing>(params(), NoBody).await.unwrap();
            assert_eq!(pds.reuses(), 0);
        });
    }

    #[test]
    fn thousand_calls_one_refresh_sqlite() {
        thousand_calls(Kind::Sqlite);
    }

    #[test]
    fn thousand_calls_one_refresh_file() {
        thousand_calls(Kind::File);
    }

    #[test]
    fn thousand_calls_one_refresh_postgres() {
        thousand_calls(Kind::Postgres);
    }

    #[test]
    fn thousand_calls_one_refresh_redis() {
        thousand_calls(Kind::Redis);
    }
}
