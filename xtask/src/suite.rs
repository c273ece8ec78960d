//! `cargo xtask test`: the whole test suite, run the way CI runs it, as a list of steps.
//!
//! Each [`Step`] is a name and a function over the shared [`Suite`] state; [`steps`] is the
//! list, in order. Steps add environment variables for the cargo commands that follow
//! ([`Suite::child_env`]) and may keep guards alive until the suite ends ([`Suite::guards`],
//! dropped after the last step: e.g. a server process that must be stopped). Planned steps,
//! in that order before `tests`: `codegen --check`, and starting the reference PDS for the
//! end-to-end tests.
//!
//! The tests run with `cargo test` by default rather than `cargo nextest run`: the suite is
//! small, `cargo test` is on every machine, and the arguments passed through then mean the same
//! thing everywhere (nextest reads several of them differently). `--nextest` opts in.

use std::any::Any;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::cli::TestArgs;
use crate::error::{Error, Result};
use crate::lexicons::{self, LexiconPaths, Status, SyncOptions, SyncSource};
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
    /// The suite for the repository at `root`, reading the process environment.
    pub fn from_env(root: PathBuf, args: TestArgs, out: &'a mut dyn Write) -> Suite<'a> {
        let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        let shared = match non_empty(SHARED_DIR_ENV) {
            Some(dir) => PathBuf::from(dir),
            None => root.join("..").join("shared"),
        };
        let ci = std::env::var("CI")
            .map(|value| !matches!(value.as_str(), "" | "0" | "false"))
            .unwrap_or(false);
        Suite {
            root,
            shared,
            args,
            ci,
            interop_dir: non_empty(INTEROP_DIR_ENV),
            cargo: non_empty("CARGO").unwrap_or_else(|| "cargo".into()),
            child_env: Vec::new(),
            guards: Vec::new(),
            out,
        }
    }

    fn say(&mut self, line: std::fmt::Arguments<'_>) {
        let _ = writeln!(self.out, "{line}");
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
    /// Short name, printed in the step header.
    pub name: &'static str,
    /// The work.
    pub run: fn(&mut Suite<'_>) -> Result<Outcome>,
}

/// The steps of `cargo xtask test`, in order.
pub fn steps() -> Vec<Step> {
    vec![
        Step {
            name: "lexicons",
            run: ensure_lexicons,
        },
        Step {
            name: "interop data",
            run: interop_data,
        },
        // Next: `codegen --check` (the generated SDK is fresh) and `reference PDS` (start it,
        // export its URL in `child_env`, keep the process in `guards`).
        Step {
            name: "tests",
            run: tests,
        },
        Step {
            name: "doc tests",
            run: doc_tests,
        },
    ]
}

/// Runs every step in order, stopping at the first failure.
pub fn run(suite: &mut Suite<'_>) -> Result<()> {
    let steps = steps();
    let started = Instant::now();
    for (index, step) in steps.iter().enumerate() {
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
            }
            Ok(Outcome::Skipped(note)) => {
                suite.say(format_args!("<== {}: skipped: {note}", step.name));
            }
            Err(error) => {
                suite.say(format_args!("<== {}: FAILED after {took:.1}s", step.name));
                return Err(Error::new(format!("step `{}`: {error}", step.name)));
            }
        }
    }
    suite.guards.clear();
    suite.say(format_args!(
        "\nall {} steps passed in {:.1}s",
        steps.len(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
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

/// The cargo command lines of the `tests` and `doc tests` steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Arguments of the main test run.
    pub tests: Vec<OsString>,
    /// Arguments of the doc-test run; `None` when the caller selected targets.
    pub doc_tests: Option<Vec<OsString>>,
}

/// Builds the cargo command lines from the pass-through arguments.
pub fn plan(args: &TestArgs) -> Plan {
    let selects_package = args.cargo_args.iter().any(|arg| {
        arg.to_str().is_some_and(|arg| {
            arg == "--package"
                || arg.starts_with("--package=")
                || (arg.starts_with("-p") && !arg.starts_with("--"))
        })
    });
    let selects_targets = args.cargo_args.iter().any(|arg| {
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
    });
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
        assert_eq!(names, ["lexicons", "interop data", "tests", "doc tests"]);
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
