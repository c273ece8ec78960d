//! A running reference PDS for end-to-end tests.
//!
//! The reference PDS is the Bluesky PDS from the npm package `@atproto/dev-env`, pinned in
//! `tests/pds/` (see `tests/pds/README.md`). Every test in a test binary shares one PDS:
//!
//! ```no_run
//! # async fn example() {
//! let pds = atlex_tests::require_pds!();
//! let alice = pds.create_account().await.expect("create account");
//! # }
//! ```
//!
//! [`Pds::shared`] finds the PDS the first time it is called:
//!
//! * If `ATLEX_PDS_URL` is set (with `ATLEX_PLC_URL`), that PDS is used: `cargo xtask test`
//!   starts one PDS for the whole run this way. `ATLEX_PDS_ADMIN_PASSWORD` and
//!   `ATLEX_PDS_HANDLE_DOMAIN` (default `.test`) describe it further.
//! * Otherwise it runs `tests/pds/setup.sh` (quick when the Node packages are already
//!   installed) and spawns `tests/pds/start.mjs` with the pinned Node 22 binary, waiting for the
//!   JSON line the script prints when it is ready (`ATLEX_PDS_START_TIMEOUT` seconds, default
//!   120). The child's stdin is a pipe that this process holds until it exits; the script stops
//!   when its stdin closes, so the PDS goes away with the test binary, even when it is killed.
//!   Setting up, spawning and reading the ready line are [`atlex_pds_harness`]'s, the same code
//!   `cargo xtask test` starts its PDS with.
//!
//! When no PDS can be had, the test fails under `CI=true` (with the reason: setup output or the
//! PDS's stderr) and is otherwise skipped with a note on stderr. `ATLEX_PDS_SKIP=1` skips the
//! PDS tests without trying (and still fails them under `CI=true`).
//!
//! HTTP goes through `reqwest` (rustls, no system proxy): the de-facto standard async client,
//! already what most atproto crates use. A fresh [`reqwest::Client`] is made per call of
//! [`Pds::http`], because each `#[tokio::test]` runs its own runtime and a client's connection
//! pool must not outlive the runtime it was used on.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use atlex_pds_harness::{PdsProcess, SETUP_TIMEOUT};
use serde::Deserialize;
use serde_json::Value;

/// Env var: URL of an already running PDS to use instead of spawning one.
pub const ENV_PDS_URL: &str = atlex_pds_harness::PDS_URL_ENV;
/// Env var: URL of the PLC directory that goes with [`ENV_PDS_URL`].
pub const ENV_PLC_URL: &str = atlex_pds_harness::PLC_URL_ENV;
/// Env var: the admin password of the PDS named by [`ENV_PDS_URL`] (optional).
pub const ENV_PDS_ADMIN_PASSWORD: &str = atlex_pds_harness::ADMIN_PASSWORD_ENV;
/// Env var: the handle domain the PDS named by [`ENV_PDS_URL`] serves (default `.test`).
pub const ENV_PDS_HANDLE_DOMAIN: &str = atlex_pds_harness::HANDLE_DOMAIN_ENV;
/// Env var: seconds to wait for a spawned PDS to become ready (default 120).
pub const ENV_PDS_START_TIMEOUT: &str = atlex_pds_harness::START_TIMEOUT_ENV;
/// Env var: when set to anything but `0` or empty, the PDS tests are skipped without trying.
pub const ENV_PDS_SKIP: &str = atlex_pds_harness::SKIP_ENV;

const HTTP_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_HANDLE_DOMAIN: &str = ".test";

/// Why no reference PDS is available, or why a request to it failed.
#[derive(Debug, thiserror::Error)]
pub enum PdsError {
    /// `ATLEX_PDS_SKIP` asked to skip the PDS tests.
    #[error("{ENV_PDS_SKIP} is set")]
    Disabled,
    /// An environment variable is missing or malformed.
    #[error("{var}: {reason}")]
    Env {
        /// The variable.
        var: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The PDS named by `ATLEX_PDS_URL` does not accept connections.
    #[error("{var}={url} is not reachable: {reason}")]
    Unreachable {
        /// The variable naming the server.
        var: &'static str,
        /// Its value.
        url: String,
        /// The connection error.
        reason: String,
    },
    /// `tests/pds/setup.sh` failed.
    #[error("setting up the reference PDS: {reason}")]
    Setup {
        /// What went wrong (exit status, timeout, spawn error), with the end of its output.
        reason: String,
    },
    /// `tests/pds/start.mjs` could not be started or did not report ready.
    #[error("starting the reference PDS (tests/pds/start.mjs): {reason}")]
    Start {
        /// What went wrong (spawn error, timeout, early exit, bad ready line), with the end of
        /// its stderr.
        reason: String,
    },
    /// An HTTP request could not be sent or its response not read.
    #[error("{nsid}: HTTP request failed: {reason}")]
    Http {
        /// The XRPC method.
        nsid: String,
        /// The error and its causes.
        reason: String,
    },
    /// The PDS answered with an XRPC error.
    #[error("{nsid}: HTTP {status} {}: {}", error.as_deref().unwrap_or("(no error name)"), message.as_deref().unwrap_or("(no message)"))]
    Xrpc {
        /// The XRPC method.
        nsid: String,
        /// The HTTP status.
        status: u16,
        /// The `error` field of the body, if any.
        error: Option<String>,
        /// The `message` field of the body, if any.
        message: Option<String>,
    },
    /// The PDS answered with a success status but a body that is not what was expected.
    #[error("{nsid}: unexpected response: {reason}; body: {body}")]
    BadResponse {
        /// The XRPC method.
        nsid: String,
        /// What is wrong with it.
        reason: String,
        /// The body (possibly shortened).
        body: String,
    },
}

/// A reference PDS (and its PLC directory) that tests can talk to.
#[derive(Debug)]
pub struct Pds {
    url: String,
    plc_url: String,
    admin_password: Option<String>,
    handle_domain: String,
    process: Option<PdsProcess>,
}

/// A fresh account created on the reference PDS by [`Pds::create_account`].
#[derive(Debug, Clone)]
pub struct TestAccount {
    /// The account's DID (`did:plc:…`).
    pub did: String,
    /// The account's handle, unique per call (e.g. `t3f9a0c41b27e.test`).
    pub handle: String,
    /// The account's email address.
    pub email: String,
    /// The account's password.
    pub password: String,
    /// The access JWT returned by `createAccount`.
    pub access_jwt: String,
    /// The refresh JWT returned by `createAccount`.
    pub refresh_jwt: String,
}

static SHARED: OnceLock<Result<Pds, PdsError>> = OnceLock::new();

impl Pds {
    /// The PDS shared by every test in this test binary, or `None` (after printing a skip note
    /// to stderr) when none is available.
    ///
    /// # Panics
    ///
    /// Under `CI=true`, when no PDS is available: the panic message says why.
    pub fn shared() -> Option<&'static Pds> {
        match Self::try_shared() {
            Ok(pds) => Some(pds),
            Err(err) => {
                if is_ci() {
                    panic!("the reference PDS is unavailable (CI=true, so this fails): {err}");
                }
                let test = thread::current().name().unwrap_or("test").to_owned();
                // Straight to the stderr handle: `eprintln!` output of a passing test is
                // captured by the test harness, and a skip must be visible.
                let _ = writeln!(
                    std::io::stderr(),
                    "note: skipping {test}: the reference PDS is unavailable: {err}"
                );
                crate::data::note_skip(&format!("the reference PDS is unavailable: {err}"));
                None
            }
        }
    }

    /// The PDS shared by every test in this test binary, or why there is none. The first call
    /// sets it up (which can take minutes when the Node packages must be installed); later calls
    /// return the same result.
    pub fn try_shared() -> Result<&'static Pds, &'static PdsError> {
        SHARED.get_or_init(Self::connect).as_ref()
    }

    fn connect() -> Result<Pds, PdsError> {
        if env_flag(ENV_PDS_SKIP) {
            return Err(PdsError::Disabled);
        }
        match non_empty_env(ENV_PDS_URL) {
            Some(url) => Self::from_env(url),
            None => Self::spawn(&harness_dir()),
        }
    }

    fn from_env(url: String) -> Result<Pds, PdsError> {
        let plc_url = non_empty_env(ENV_PLC_URL).ok_or_else(|| PdsError::Env {
            var: ENV_PLC_URL,
            reason: format!("must be set when {ENV_PDS_URL} is"),
        })?;
        check_reachable(ENV_PDS_URL, &url)?;
        check_reachable(ENV_PLC_URL, &plc_url)?;
        Ok(Pds {
            url: url.trim_end_matches('/').to_owned(),
            plc_url: plc_url.trim_end_matches('/').to_owned(),
            admin_password: non_empty_env(ENV_PDS_ADMIN_PASSWORD),
            handle_domain: non_empty_env(ENV_PDS_HANDLE_DOMAIN)
                .unwrap_or_else(|| DEFAULT_HANDLE_DOMAIN.to_owned()),
            process: None,
        })
    }

    /// Runs `setup.sh` and spawns `start.mjs` from `dir` (normally `tests/pds/`), waiting for it
    /// to report ready. The PDS stops when the returned value is dropped or this process exits.
    ///
    /// Most tests want [`Pds::shared`] instead; this is for tests that need a PDS of their own.
    pub fn spawn(dir: &Path) -> Result<Pds, PdsError> {
        let timeout = start_timeout()?;
        Self::spawn_with_timeout(dir, timeout)
    }

    fn spawn_with_timeout(dir: &Path, timeout: Duration) -> Result<Pds, PdsError> {
        // setup.sh is silent when everything is in place; when it installs (minutes), its
        // progress notes go to the stderr handle (past the test harness's capture) as they come.
        atlex_pds_harness::setup(dir, &mut std::io::stderr(), SETUP_TIMEOUT)
            .map_err(|reason| PdsError::Setup { reason })?;
        let (program, args) = PdsProcess::command(dir);
        // The PDS lives as long as this process, which has no tidy place for a log file: its
        // stderr is kept in memory for failure messages.
        let (process, ready) = PdsProcess::start_capturing(&program, &args, dir, timeout)
            .map_err(|reason| PdsError::Start { reason })?;
        Ok(Pds {
            url: ready.pds.trim_end_matches('/').to_owned(),
            plc_url: ready.plc.trim_end_matches('/').to_owned(),
            admin_password: ready.admin_password,
            handle_domain: ready
                .handle_domain
                .unwrap_or_else(|| DEFAULT_HANDLE_DOMAIN.to_owned()),
            process: Some(process),
        })
    }

    /// The PDS's base URL, without a trailing slash (e.g. `http://localhost:41233`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The PLC directory's base URL, without a trailing slash.
    pub fn plc_url(&self) -> &str {
        &self.plc_url
    }

    /// The PDS's admin password (for `Basic admin:<password>` auth), when known.
    pub fn admin_password(&self) -> Option<&str> {
        self.admin_password.as_deref()
    }

    /// The handle domain the PDS serves, with its leading dot (e.g. `.test`).
    pub fn handle_domain(&self) -> &str {
        &self.handle_domain
    }

    /// The process id of the spawned PDS, or `None` when it was given by `ATLEX_PDS_URL`.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(PdsProcess::id)
    }

    /// The last lines of the spawned PDS's stderr (its logs), under a heading, for failure
    /// messages. Empty when the PDS was given by `ATLEX_PDS_URL`.
    pub fn stderr_tail(&self) -> String {
        self.process
            .as_ref()
            .map(PdsProcess::stderr_tail)
            .unwrap_or_default()
    }

    /// The environment variables that make [`Pds::shared`] in another process use this PDS
    /// (`ATLEX_PDS_URL`, `ATLEX_PLC_URL`, `ATLEX_PDS_HANDLE_DOMAIN` and, when known,
    /// `ATLEX_PDS_ADMIN_PASSWORD`).
    pub fn env_vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            (ENV_PDS_URL, self.url.clone()),
            (ENV_PLC_URL, self.plc_url.clone()),
            (ENV_PDS_HANDLE_DOMAIN, self.handle_domain.clone()),
        ];
        if let Some(password) = &self.admin_password {
            vars.push((ENV_PDS_ADMIN_PASSWORD, password.clone()));
        }
        vars
    }

    /// The URL of an XRPC method on this PDS: `<url>/xrpc/<nsid>`.
    pub fn xrpc_url(&self, nsid: &str) -> String {
        format!("{}/xrpc/{nsid}", self.url)
    }

    /// A new HTTP client for talking to the PDS (no proxy, 60 s timeout).
    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(HTTP_TIMEOUT)
            .build()
            // Building only fails when the TLS backend cannot initialise; fall back to the
            // default client, whose construction reports the same problem on first use.
            .unwrap_or_else(|_| reqwest::Client::new())
    }

    /// Calls an XRPC query (`GET`) and returns its JSON output.
    ///
    /// `auth` is a bearer token (an access JWT), if the method needs one.
    pub async fn query(
        &self,
        nsid: &str,
        params: &[(&str, &str)],
        auth: Option<&str>,
    ) -> Result<Value, PdsError> {
        let mut request = self.http().get(self.xrpc_url(nsid)).query(params);
        if let Some(token) = auth {
            request = request.bearer_auth(token);
        }
        finish(nsid, request.send().await).await
    }

    /// Calls an XRPC procedure (`POST` with a JSON body) and returns its JSON output
    /// (`Value::Null` when it has none).
    ///
    /// `auth` is a bearer token (an access JWT, or a refresh JWT for `refreshSession`).
    pub async fn procedure(
        &self,
        nsid: &str,
        body: &Value,
        auth: Option<&str>,
    ) -> Result<Value, PdsError> {
        let mut request = self.http().post(self.xrpc_url(nsid)).json(body);
        if let Some(token) = auth {
            request = request.bearer_auth(token);
        }
        finish(nsid, request.send().await).await
    }

    /// Creates a fresh account with a unique handle (`t<12 random hex digits><handle domain>`)
    /// through `com.atproto.server.createAccount`.
    pub async fn create_account(&self) -> Result<TestAccount, PdsError> {
        const NSID: &str = "com.atproto.server.createAccount";
        let name = unique_name(NSID)?;
        let password = format!("pw-{}", unique_name(NSID)?);
        let handle = format!("{name}{}", self.handle_domain);
        let email = format!("{name}@example.com");
        let body = serde_json::json!({
            "handle": handle,
            "email": email,
            "password": password,
        });
        let output = self.procedure(NSID, &body, None).await?;
        let created: CreatedAccount =
            serde_json::from_value(output.clone()).map_err(|err| PdsError::BadResponse {
                nsid: NSID.to_owned(),
                reason: err.to_string(),
                body: shorten(&output.to_string()),
            })?;
        Ok(TestAccount {
            did: created.did,
            handle: created.handle,
            email,
            password,
            access_jwt: created.access_jwt,
            refresh_jwt: created.refresh_jwt,
        })
    }
}

pub use crate::data::is_ci;

/// `tests/pds/`, the directory with the harness scripts and the Node packages.
pub fn harness_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pds")
}

/// The pinned Node 22 binary that `setup.sh` installs under `dir` (normally `tests/pds/`).
pub fn node_binary(dir: &Path) -> PathBuf {
    PdsProcess::command(dir).0
}

/// Binds a shared [`Pds`] or leaves the test: `let pds = require_pds!();`.
///
/// When no PDS is available the enclosing function returns (after a skip note; under
/// `CI=true` [`Pds::shared`] panics instead). In a function returning something other than
/// `()`, give the value to return: `require_pds!(Ok(()))`.
#[macro_export]
macro_rules! require_pds {
    () => {
        match $crate::pds::Pds::shared() {
            ::std::option::Option::Some(pds) => pds,
            ::std::option::Option::None => return,
        }
    };
    ($skip:expr) => {
        match $crate::pds::Pds::shared() {
            ::std::option::Option::Some(pds) => pds,
            ::std::option::Option::None => return $skip,
        }
    };
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreatedAccount {
    did: String,
    handle: String,
    access_jwt: String,
    refresh_jwt: String,
}

#[derive(Deserialize)]
struct XrpcErrorBody {
    error: Option<String>,
    message: Option<String>,
}

async fn finish(
    nsid: &str,
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<Value, PdsError> {
    let http_error = |err: reqwest::Error| PdsError::Http {
        nsid: nsid.to_owned(),
        reason: error_chain(&err),
    };
    let response = sent.map_err(http_error)?;
    let status = response.status();
    let body = response.bytes().await.map_err(http_error)?;
    if !status.is_success() {
        let parsed = serde_json::from_slice::<XrpcErrorBody>(&body).ok();
        let (error, message) = match parsed {
            Some(b) => (b.error, b.message),
            None => (None, Some(shorten(&String::from_utf8_lossy(&body)))),
        };
        return Err(PdsError::Xrpc {
            nsid: nsid.to_owned(),
            status: status.as_u16(),
            error,
            message,
        });
    }
    if body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&body).map_err(|err| PdsError::BadResponse {
        nsid: nsid.to_owned(),
        reason: format!("body is not JSON: {err}"),
        body: shorten(&String::from_utf8_lossy(&body)),
    })
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn shorten(text: &str) -> String {
    const MAX: usize = 2000;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// `t` and 12 random hex digits: a handle label (the PDS allows 3 to 18 characters) that no
/// other test, in this process or another sharing the PDS, will pick.
fn unique_name(nsid: &str) -> Result<String, PdsError> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).map_err(|err| PdsError::Http {
        nsid: nsid.to_owned(),
        reason: format!("no randomness for a unique handle: {err}"),
    })?;
    let mut name = String::from("t");
    for b in bytes {
        name.push_str(&format!("{b:02x}"));
    }
    Ok(name)
}

fn non_empty_env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

fn env_flag(var: &str) -> bool {
    non_empty_env(var).is_some_and(|v| v.trim() != "0")
}

fn start_timeout() -> Result<Duration, PdsError> {
    let raw = std::env::var(ENV_PDS_START_TIMEOUT).ok();
    atlex_pds_harness::start_timeout(raw.as_deref()).map_err(|reason| PdsError::Env {
        var: ENV_PDS_START_TIMEOUT,
        reason,
    })
}

fn check_reachable(var: &'static str, url: &str) -> Result<(), PdsError> {
    let unreachable = |reason: String| PdsError::Unreachable {
        var,
        url: url.to_owned(),
        reason,
    };
    let parsed =
        reqwest::Url::parse(url).map_err(|err| unreachable(format!("not a URL: {err}")))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| unreachable("the URL has no host".to_owned()))?;
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| unreachable("the URL has no port".to_owned()))?;
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|err| unreachable(format!("cannot resolve {host}: {err}")))?;
    let mut last = format!("{host} resolves to no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
            Ok(_) => return Ok(()),
            Err(err) => last = format!("{addr}: {err}"),
        }
    }
    Err(unreachable(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_valid_handle_labels() {
        let a = unique_name("x").unwrap();
        let b = unique_name("x").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 13);
        assert!(a.starts_with('t'));
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
    }

    #[test]
    fn shorten_cuts_long_text_on_a_char_boundary() {
        let long = "é".repeat(3000);
        let short = shorten(&long);
        assert_eq!(short.chars().count(), 2001);
        assert_eq!(shorten("abc"), "abc");
    }

    #[test]
    fn xrpc_error_display_names_method_status_and_error() {
        let err = PdsError::Xrpc {
            nsid: "com.atproto.server.createSession".to_owned(),
            status: 401,
            error: Some("AuthenticationRequired".to_owned()),
            message: Some("Invalid identifier or password".to_owned()),
        };
        assert_eq!(
            err.to_string(),
            "com.atproto.server.createSession: HTTP 401 AuthenticationRequired: Invalid identifier or password"
        );
    }

    /// A harness directory whose `setup.sh` and "Node binary" are the given shell scripts.
    fn fake_harness(setup: &str, node: Option<&str>) -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("setup.sh"), setup).unwrap();
        if let Some(node) = node {
            let bin = node_binary(dir.path());
            std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
            std::fs::write(&bin, format!("#!/bin/sh\n{node}\n")).unwrap();
            std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    }

    fn spawn_err(dir: &tempfile::TempDir, timeout: u64) -> String {
        match Pds::spawn_with_timeout(dir.path(), Duration::from_secs(timeout)) {
            Ok(pds) => panic!("expected an error, got {pds:?}"),
            Err(err) => err.to_string(),
        }
    }

    // One test for every fake-harness case: writing an executable while another test thread
    // forks can make exec fail with ETXTBSY, so these run one after the other.
    #[test]
    fn spawn_reports_each_way_of_failing_and_parses_the_ready_line() {
        let ok_setup = "exit 0";

        let dir = fake_harness(
            "echo '(expected output of a failing fake setup.sh)' >&2; exit 3",
            None,
        );
        let err = spawn_err(&dir, 5);
        assert!(err.starts_with("setting up the reference PDS: "), "{err}");
        assert!(err.contains("setup.sh failed (exit code 3)"), "{err}");
        assert!(
            err.contains("(expected output of a failing fake setup.sh)"),
            "{err}"
        );

        let dir = fake_harness(ok_setup, None);
        let err = spawn_err(&dir, 5);
        assert!(err.contains("could not run"), "{err}");

        let dir = fake_harness(ok_setup, Some("echo kaput >&2; exit 4"));
        let err = spawn_err(&dir, 5);
        assert!(
            err.contains("exited before it was ready (exit code 4)"),
            "{err}"
        );
        assert!(err.contains("kaput"), "{err}");

        let dir = fake_harness(ok_setup, Some("echo '{\"nope\": 1}'; exec cat >/dev/null"));
        let err = spawn_err(&dir, 5);
        assert!(err.contains("not the expected JSON"), "{err}");

        let dir = fake_harness(ok_setup, Some("echo starting >&2; exec sleep 30"));
        let started = std::time::Instant::now();
        let err = spawn_err(&dir, 1);
        assert!(err.contains("no ready line on stdout within 1 s"), "{err}");
        assert!(err.contains("starting"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the child was not killed"
        );

        let dir = fake_harness(
            ok_setup,
            Some(concat!(
                r#"echo '{"pds":"http://localhost:9/","plc":"http://localhost:8","adminPassword":"pw"}'; "#,
                "echo 'more output'; exec cat >/dev/null",
            )),
        );
        let pds = Pds::spawn_with_timeout(dir.path(), Duration::from_secs(5)).unwrap();
        assert_eq!(pds.url(), "http://localhost:9");
        assert_eq!(pds.plc_url(), "http://localhost:8");
        assert_eq!(pds.admin_password(), Some("pw"));
        assert_eq!(pds.handle_domain(), ".test");
        assert_eq!(pds.xrpc_url("a.b.c"), "http://localhost:9/xrpc/a.b.c");
        let pid = pds.pid().unwrap();
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        assert!(proc_dir.exists());
        let started = std::time::Instant::now();
        drop(pds);
        // `cat` exits at end-of-stdin: the drop closed the pipe rather than killing it.
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "stdin was not closed"
        );
        assert!(!proc_dir.exists(), "still running after drop");
    }

    #[test]
    fn unreachable_env_pds_is_reported() {
        // Port 1 on localhost is essentially never listening.
        let err = check_reachable(ENV_PDS_URL, "http://127.0.0.1:1").unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("ATLEX_PDS_URL=http://127.0.0.1:1 is not reachable"),
            "{text}"
        );
        let err = check_reachable(ENV_PDS_URL, "not a url").unwrap_err();
        assert!(err.to_string().contains("not a URL"), "{err}");
    }
}
