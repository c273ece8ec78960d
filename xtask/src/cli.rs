//! The command line: a small hand-written parser (a handful of subcommands and flags does not
//! justify an argument-parsing dependency in a crate that is built before anything else).
//!
//! Flags take their value as `--flag value` or `--flag=value`; a flag given twice, an unknown
//! flag or a stray argument is a usage error that names the help to read. `test` passes every
//! argument it does not know through to cargo.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Print a help text.
    Help(Topic),
    /// `lexicons sync`.
    LexiconsSync(SyncArgs),
    /// `lexicons pin`.
    LexiconsPin(PinArgs),
    /// `lexicons verify` (the official lexicons against the pin).
    LexiconsVerify,
    /// `lexicons verify DIR`: a fetched folder against its manifest (run by
    /// `xtask-lexicon-fetch`).
    LexiconsVerifyDir(PathBuf),
    /// `lexicons fetch …`: the arguments after `fetch`, passed to `xtask-lexicon-fetch`.
    LexiconsFetch(Vec<OsString>),
    /// `test`.
    Test(TestArgs),
    /// `codegen`.
    Codegen(crate::codegen::CodegenArgs),
    /// `bench`.
    Bench(crate::bench::BenchArgs),
    /// `fuzz`.
    Fuzz(crate::fuzz::FuzzArgs),
}

/// Which help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// `cargo xtask --help`: the list of subcommands.
    Main,
    /// `cargo xtask lexicons --help`.
    Lexicons,
    /// `cargo xtask lexicons sync --help`.
    Sync,
    /// `cargo xtask lexicons pin --help`.
    Pin,
    /// `cargo xtask lexicons verify --help`.
    Verify,
    /// `cargo xtask lexicons fetch --help`.
    Fetch,
    /// `cargo xtask test --help`.
    Test,
    /// `cargo xtask codegen --help`.
    Codegen,
    /// `cargo xtask bench --help`.
    Bench,
    /// `cargo xtask fuzz --help`.
    Fuzz,
}

impl Topic {
    /// The help text.
    pub fn text(self) -> &'static str {
        match self {
            Topic::Main => MAIN_HELP,
            Topic::Lexicons => LEXICONS_HELP,
            Topic::Sync => SYNC_HELP,
            Topic::Pin => PIN_HELP,
            Topic::Verify => VERIFY_HELP,
            Topic::Fetch => FETCH_HELP,
            Topic::Test => TEST_HELP,
            Topic::Codegen => CODEGEN_HELP,
            Topic::Bench => BENCH_HELP,
            Topic::Fuzz => FUZZ_HELP,
        }
    }

    /// How to ask for this help.
    pub fn command(self) -> &'static str {
        match self {
            Topic::Main => "cargo xtask --help",
            Topic::Lexicons => "cargo xtask lexicons --help",
            Topic::Sync => "cargo xtask lexicons sync --help",
            Topic::Pin => "cargo xtask lexicons pin --help",
            Topic::Verify => "cargo xtask lexicons verify --help",
            Topic::Fetch => "cargo xtask lexicons fetch --help",
            Topic::Test => "cargo xtask test --help",
            Topic::Codegen => "cargo xtask codegen --help",
            Topic::Bench => "cargo xtask bench --help",
            Topic::Fuzz => "cargo xtask fuzz --help",
        }
    }
}

/// Flags of `lexicons sync`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncArgs {
    /// `--from DIR`.
    pub from: Option<PathBuf>,
    /// `--git-url URL`.
    pub git_url: Option<String>,
    /// `--allow-changes`.
    pub allow_changes: bool,
    /// `--force`.
    pub force: bool,
}

/// Flags of `lexicons pin`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinArgs {
    /// `--from DIR`.
    pub from: Option<PathBuf>,
    /// `--commit SHA`.
    pub commit: Option<String>,
    /// `--git-url URL`.
    pub git_url: Option<String>,
    /// `--path SUBDIR`.
    pub path: Option<String>,
}

/// Flags and pass-through arguments of `test`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestArgs {
    /// `--no-sync`: do not check or sync `lexicons/official/`.
    pub no_sync: bool,
    /// `--nextest`: run the tests with `cargo nextest run`.
    pub nextest: bool,
    /// `--no-pds`: do not start the reference PDS; the end-to-end tests are skipped.
    pub no_pds: bool,
    /// `--quick` or `--no-feature-matrix`: skip the feature-matrix step.
    pub no_feature_matrix: bool,
    /// Arguments before `--` that xtask does not know: passed to cargo.
    pub cargo_args: Vec<OsString>,
    /// Arguments after `--`: passed to the test harness.
    pub harness_args: Vec<OsString>,
}

/// A command line that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    /// What is wrong.
    pub message: String,
    /// The help that explains the right usage.
    pub topic: Topic,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (see `{}`)", self.message, self.topic.command())
    }
}

impl std::error::Error for UsageError {}

/// Parses the arguments after `cargo xtask`.
pub fn parse<I>(args: I) -> Result<Command, UsageError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let mut args: VecDeque<OsString> = args.into_iter().map(Into::into).collect();
    let Some(first) = args.pop_front() else {
        return Ok(Command::Help(Topic::Main));
    };
    match first.to_str() {
        Some("-h" | "--help" | "help") => Ok(Command::Help(Topic::Main)),
        Some("lexicons") => parse_lexicons(args),
        Some("test") => parse_test(args),
        Some("codegen") => parse_codegen(args),
        Some("bench") => parse_bench(args),
        Some("fuzz") => parse_fuzz(args),
        _ => Err(UsageError {
            message: format!("unknown command `{}`", first.to_string_lossy()),
            topic: Topic::Main,
        }),
    }
}

fn parse_lexicons(mut args: VecDeque<OsString>) -> Result<Command, UsageError> {
    let Some(sub) = args.pop_front() else {
        return Ok(Command::Help(Topic::Lexicons));
    };
    match sub.to_str() {
        Some("-h" | "--help" | "help") => Ok(Command::Help(Topic::Lexicons)),
        Some("sync") => {
            let mut flags = Flags::new(args, Topic::Sync);
            let mut parsed = SyncArgs::default();
            while let Some(flag) = flags.next_flag()? {
                match flag.as_str() {
                    "-h" | "--help" => return Ok(Command::Help(Topic::Sync)),
                    "--from" => set(&mut parsed.from, flags.path(&flag)?, &flag, Topic::Sync)?,
                    "--git-url" => set(
                        &mut parsed.git_url,
                        flags.string(&flag)?,
                        &flag,
                        Topic::Sync,
                    )?,
                    "--allow-changes" => flags.switch(&mut parsed.allow_changes, &flag)?,
                    "--force" => flags.switch(&mut parsed.force, &flag)?,
                    _ => return Err(flags.unknown(&flag)),
                }
            }
            if parsed.from.is_some() && parsed.git_url.is_some() {
                return Err(UsageError {
                    message: "--from and --git-url cannot be used together".to_owned(),
                    topic: Topic::Sync,
                });
            }
            Ok(Command::LexiconsSync(parsed))
        }
        Some("pin") => {
            let mut flags = Flags::new(args, Topic::Pin);
            let mut parsed = PinArgs::default();
            while let Some(flag) = flags.next_flag()? {
                match flag.as_str() {
                    "-h" | "--help" => return Ok(Command::Help(Topic::Pin)),
                    "--from" => set(&mut parsed.from, flags.path(&flag)?, &flag, Topic::Pin)?,
                    "--commit" => set(&mut parsed.commit, flags.string(&flag)?, &flag, Topic::Pin)?,
                    "--git-url" => {
                        set(&mut parsed.git_url, flags.string(&flag)?, &flag, Topic::Pin)?
                    }
                    "--path" => set(&mut parsed.path, flags.string(&flag)?, &flag, Topic::Pin)?,
                    _ => return Err(flags.unknown(&flag)),
                }
            }
            Ok(Command::LexiconsPin(parsed))
        }
        Some("verify") => {
            let mut dir: Option<PathBuf> = None;
            for arg in args {
                match arg.to_str() {
                    Some("-h" | "--help") => return Ok(Command::Help(Topic::Verify)),
                    Some(flag) if flag.starts_with('-') && flag.len() > 1 => {
                        return Err(UsageError {
                            message: format!("unknown flag `{flag}`"),
                            topic: Topic::Verify,
                        });
                    }
                    _ if arg.is_empty() => {
                        return Err(UsageError {
                            message: "the folder to verify is empty".to_owned(),
                            topic: Topic::Verify,
                        });
                    }
                    _ => set(&mut dir, PathBuf::from(arg), "DIR", Topic::Verify)?,
                }
            }
            Ok(match dir {
                Some(dir) => Command::LexiconsVerifyDir(dir),
                None => Command::LexiconsVerify,
            })
        }
        Some("fetch") => {
            let args: Vec<OsString> = args.into_iter().collect();
            if args.is_empty()
                || args.iter().any(|arg| {
                    arg.to_str()
                        .is_some_and(|arg| arg == "-h" || arg == "--help")
                })
            {
                return Ok(Command::Help(Topic::Fetch));
            }
            Ok(Command::LexiconsFetch(args))
        }
        _ => Err(UsageError {
            message: format!("unknown command `lexicons {}`", sub.to_string_lossy()),
            topic: Topic::Lexicons,
        }),
    }
}

fn parse_codegen(args: VecDeque<OsString>) -> Result<Command, UsageError> {
    let mut flags = Flags::new(args, Topic::Codegen);
    let mut parsed = crate::codegen::CodegenArgs::default();
    while let Some(flag) = flags.next_flag()? {
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help(Topic::Codegen)),
            "--check" => flags.switch(&mut parsed.check, &flag)?,
            "--no-official" => flags.switch(&mut parsed.no_official, &flag)?,
            "--single-file" => flags.switch(&mut parsed.single_file, &flag)?,
            "--skip-invalid" => flags.switch(&mut parsed.skip_invalid, &flag)?,
            "--timings" => flags.switch(&mut parsed.timings, &flag)?,
            "--lexicons" => set(
                &mut parsed.lexicons,
                flags.path(&flag)?,
                &flag,
                Topic::Codegen,
            )?,
            "--out" => set(&mut parsed.out, flags.path(&flag)?, &flag, Topic::Codegen)?,
            "--root" => set(
                &mut parsed.root,
                flags.string(&flag)?,
                &flag,
                Topic::Codegen,
            )?,
            _ => return Err(flags.unknown(&flag)),
        }
    }
    if parsed.lexicons.is_some() != parsed.out.is_some() {
        return Err(UsageError {
            message: "--lexicons and --out go together".to_owned(),
            topic: Topic::Codegen,
        });
    }
    Ok(Command::Codegen(parsed))
}

fn parse_bench(args: VecDeque<OsString>) -> Result<Command, UsageError> {
    let mut parsed = crate::bench::BenchArgs::default();
    let error = |message: String| UsageError {
        message,
        topic: Topic::Bench,
    };
    for arg in args {
        let Some(text) = arg.to_str() else {
            return Err(error(format!(
                "unexpected argument `{}`",
                arg.to_string_lossy()
            )));
        };
        match text {
            "-h" | "--help" => return Ok(Command::Help(Topic::Bench)),
            "--quick" | "--no-fail" => {
                let slot = if text == "--quick" {
                    &mut parsed.quick
                } else {
                    &mut parsed.no_fail
                };
                if *slot {
                    return Err(error(format!("{text} given twice")));
                }
                *slot = true;
            }
            flag if flag.starts_with('-') => {
                return Err(error(format!("unknown flag `{flag}`")));
            }
            name => {
                let Some(bench) = crate::bench::Bench::from_name(name) else {
                    let known: Vec<&str> = crate::bench::Bench::ALL
                        .iter()
                        .map(|bench| bench.name())
                        .collect();
                    return Err(error(format!(
                        "unknown benchmark `{name}` (known: {})",
                        known.join(", ")
                    )));
                };
                if !parsed.benches.contains(&bench) {
                    parsed.benches.push(bench);
                }
            }
        }
    }
    parsed.benches.sort();
    Ok(Command::Bench(parsed))
}

fn parse_fuzz(args: VecDeque<OsString>) -> Result<Command, UsageError> {
    let mut parsed = crate::fuzz::FuzzArgs::default();
    let error = |message: String| UsageError {
        message,
        topic: Topic::Fuzz,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            return Err(error(format!(
                "unexpected argument `{}`",
                arg.to_string_lossy()
            )));
        };
        let (flag, inline) = match text.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (text, None),
        };
        match flag {
            "-h" | "--help" => return Ok(Command::Help(Topic::Fuzz)),
            "--smoke" => {
                if inline.is_some() {
                    return Err(error("--smoke takes no value".to_owned()));
                }
                if parsed.smoke {
                    return Err(error("--smoke given twice".to_owned()));
                }
                parsed.smoke = true;
            }
            "--time" => {
                let value = match inline {
                    Some(value) => value,
                    None => args
                        .next()
                        .and_then(|value| value.into_string().ok())
                        .ok_or_else(|| error("--time needs a number of seconds".to_owned()))?,
                };
                let secs = value
                    .parse::<u64>()
                    .ok()
                    .filter(|secs| *secs > 0)
                    .ok_or_else(|| {
                        error(format!(
                            "--time takes a positive number of seconds, not `{value}`"
                        ))
                    })?;
                set(&mut parsed.time, secs, "--time", Topic::Fuzz)?;
            }
            flag if flag.starts_with('-') => {
                return Err(error(format!("unknown flag `{flag}`")));
            }
            name => {
                let Some(target) = crate::fuzz::Target::from_name(name) else {
                    let known: Vec<&str> = crate::fuzz::Target::ALL
                        .iter()
                        .map(|target| target.name())
                        .collect();
                    return Err(error(format!(
                        "unknown fuzz target `{name}` (known: {})",
                        known.join(", ")
                    )));
                };
                if !parsed.targets.contains(&target) {
                    parsed.targets.push(target);
                }
            }
        }
    }
    Ok(Command::Fuzz(parsed))
}

fn parse_test(args: VecDeque<OsString>) -> Result<Command, UsageError> {
    let mut parsed = TestArgs::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--") => {
                parsed.harness_args.extend(args);
                break;
            }
            Some("-h" | "--help") => return Ok(Command::Help(Topic::Test)),
            Some("--no-sync") => parsed.no_sync = true,
            Some("--nextest") => parsed.nextest = true,
            Some("--no-pds") => parsed.no_pds = true,
            Some("--quick" | "--no-feature-matrix") => parsed.no_feature_matrix = true,
            _ => parsed.cargo_args.push(arg),
        }
    }
    Ok(Command::Test(parsed))
}

/// Stores a flag's value, refusing a second one.
fn set<T>(slot: &mut Option<T>, value: T, flag: &str, topic: Topic) -> Result<(), UsageError> {
    if slot.is_some() {
        return Err(UsageError {
            message: format!("{flag} given twice"),
            topic,
        });
    }
    *slot = Some(value);
    Ok(())
}

/// The flags of one subcommand, with `--flag=value` split into flag and pending value.
struct Flags {
    args: VecDeque<OsString>,
    topic: Topic,
    /// The `value` of a `--flag=value` just returned by `next_flag`.
    inline: Option<String>,
}

impl Flags {
    fn new(args: VecDeque<OsString>, topic: Topic) -> Flags {
        Flags {
            args,
            topic,
            inline: None,
        }
    }

    fn error(&self, message: String) -> UsageError {
        UsageError {
            message,
            topic: self.topic,
        }
    }

    fn unknown(&self, flag: &str) -> UsageError {
        self.error(format!("unknown flag `{flag}`"))
    }

    /// The next flag name; a positional argument is an error (no subcommand here takes one).
    fn next_flag(&mut self) -> Result<Option<String>, UsageError> {
        if let Some(value) = self.inline.take() {
            return Err(self.error(format!("unexpected value `{value}`")));
        }
        let Some(arg) = self.args.pop_front() else {
            return Ok(None);
        };
        match arg.to_str() {
            Some(text) if text.starts_with('-') && text.len() > 1 => match text.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => {
                    self.inline = Some(value.to_owned());
                    Ok(Some(flag.to_owned()))
                }
                _ => Ok(Some(text.to_owned())),
            },
            _ => Err(self.error(format!("unexpected argument `{}`", arg.to_string_lossy()))),
        }
    }

    /// A flag without a value.
    fn switch(&mut self, slot: &mut bool, flag: &str) -> Result<(), UsageError> {
        if let Some(value) = self.inline.take() {
            return Err(self.error(format!("{flag} takes no value (got `{value}`)")));
        }
        if *slot {
            return Err(self.error(format!("{flag} given twice")));
        }
        *slot = true;
        Ok(())
    }

    fn value(&mut self, flag: &str) -> Result<OsString, UsageError> {
        if let Some(value) = self.inline.take() {
            return Ok(value.into());
        }
        match self.args.pop_front() {
            Some(value) => Ok(value),
            None => Err(self.error(format!("{flag} needs a value"))),
        }
    }

    fn path(&mut self, flag: &str) -> Result<PathBuf, UsageError> {
        let value = self.value(flag)?;
        if value.is_empty() {
            return Err(self.error(format!("{flag} needs a non-empty value")));
        }
        Ok(PathBuf::from(value))
    }

    fn string(&mut self, flag: &str) -> Result<String, UsageError> {
        let value = self.value(flag)?;
        match value.to_str() {
            Some("") => Err(self.error(format!("{flag} needs a non-empty value"))),
            Some(text) => Ok(text.to_owned()),
            None => Err(self.error(format!(
                "{flag}: `{}` is not valid UTF-8",
                OsStr::new(&value).to_string_lossy()
            ))),
        }
    }
}

const MAIN_HELP: &str = "\
cargo xtask: atlex project automation

Usage: cargo xtask <COMMAND> [OPTIONS]

Commands:
  lexicons sync     Fetch the pinned upstream lexicons into lexicons/official/ (hash-checked)
  lexicons pin      Rewrite lexicons/lexicons.toml from a folder or commit (moves the pin)
  lexicons verify   Check lexicons/official/ against the pin (or DIR against its manifest)
  lexicons fetch    Fetch lexicons from the network (DNS _lexicon -> DID -> PDS), verify and pin
  codegen           Regenerate sdk/src/generated/ from lexicons/official/ (--check: verify)
  test              Run the whole test suite the way CI does
  bench             Run the benchmarks and print the ratios against their targets
  fuzz              Build and run the coverage-guided fuzz targets (tests/fuzz)
  help              Print this help

Run `cargo xtask <COMMAND> --help` for the options of a command.
";

const CODEGEN_HELP: &str = "\
cargo xtask codegen: generate typed Rust from lexicons

Usage: cargo xtask codegen [--check]
       cargo xtask codegen --lexicons DIR --out DIR [--root PATH] [--no-official] [--single-file]
                           [--skip-invalid] [--timings]

Without options, regenerates the SDK: every lexicon in lexicons/official/ into
sdk/src/generated/, and the namespace features in sdk/Cargo.toml. Only files whose content
changed are written; files no longer generated are removed. When lexicons/official/ is
missing, it is synced first: from $ATLEX_SHARED_DIR/lexicons (default ../shared/lexicons) when
that exists, else with git from the pinned commit (as `cargo xtask lexicons sync`); offline,
that fails naming `cargo xtask lexicons sync --from DIR`.

Options:
  --check          Write nothing; fail and list the stale files if anything would change
  --lexicons DIR   Generate these lexicons (a user crate's own) instead of the official ones
  --out DIR        Where to write them (the generated modules' folder)
  --root PATH      The Rust path of that folder inside its crate (default: crate)
  --no-official    Do not resolve refs against lexicons/official/ (refs there become ::atlex paths)
  --single-file    Write one lib.rs with inline modules
  --skip-invalid   Report every problem, then generate the rest instead of failing: each def
                   with a problem, and every def that refers to one (transitively), is left
                   out; a file that is not a lexicon document is left out whole. A report of
                   what was left out, and why, ends the output. (Default: fail on any problem,
                   naming all of them.)
  --timings        Print the wall time of each phase per job: parse (read and parse the
                   files), check (schema checks), prune (refs across documents, pruning),
                   lower (to the IR), render (tokens, syn, prettyplease; one thread per
                   core), write (compare and write the files)
";

const FUZZ_HELP: &str = "\
cargo xtask fuzz: the coverage-guided fuzz targets of tests/fuzz (libFuzzer)

Usage: cargo xtask fuzz [--time SECS] [--smoke] [TARGET...]

Builds the targets with coverage instrumentation (stable toolchain, release with debug
assertions and overflow checks, into target/fuzz/; needs a C++ compiler for libFuzzer,
nothing to install), then runs each named target (default: all, in this order) for SECS
seconds, one after the other. Each run starts from the working corpus target/fuzz/corpus/
<TARGET>/ (kept between runs), seeds copied from the repository fixtures (tests/fixtures/
records/, codegen/tests/lexicons/, lexicons/official/) and the interop vectors
($ATLEX_INTEROP_DIR, default ../shared/interop: data-model, lexicon), and the committed
tests/fuzz/seeds/<TARGET>/ and tests/fuzz/regressions/<TARGET>/. Absent sources are skipped
with a note.

Prints, per target: seeds, seconds, executions, executions per second, coverage (edges and
features, as libFuzzer counts them), corpus size and the result. Exits non-zero when any
target crashed, hung (10 s on one input) or ran out of memory (2 GB), naming the input
(under target/fuzz/artifacts/<TARGET>/) and the command that reproduces it; every such input
becomes a regression test (tests/fuzz/regressions/<TARGET>/, run by
`cargo test -p atlex-tests --test fuzz_regressions`). libFuzzer's output is in
target/fuzz/logs/<TARGET>.log.

Targets:
  data_model      Data through JSON and DAG-CBOR: decode, encode, decode again, equal
  frames          event-stream frames (subscribeRepos, subscribeLabels)
  xrpc_response   the client's decoding of endpoint outputs and error bodies
  headers_query   rate-limit headers of a 429; query-string encoding round trip
  jwt             JWT exp/iat claims and the session's refresh time
  lexicon         the lexicon loader, every check, the catalog, record validation
  records         generated records (post, profile, follow) through JSON and DAG-CBOR

Options:
  --time SECS   Seconds per target (default 60; 15 with --smoke)
  --smoke       The short pass CI runs: every target for 15 s
  -h, --help    Print this help

See tests/fuzz/README.md.
";

const BENCH_HELP: &str = "\
cargo xtask bench: the speed targets, measured in one run, as ratios

Usage: cargo xtask bench [NAME...] [--quick] [--no-fail]

Runs the named benchmarks (default: all, in this order) and prints one table: each
comparison, both measurements, the ratio, the target and PASS/FAIL, with the machine's cores
and load average. Exits non-zero when a required target is missed.

Benchmarks:
  decode      100 real posts into Vec<Post>, vs atrium-api Vec<post::Record> (>= 1.5x) and
              vs serde_json::Value (>= 1.0x)
  list-page   a 100-record listRecords page into RecordPage<Post>, vs atrium-api's
              list_records::Output + TryFromUnknown (>= 4x)
  firehose    400 generated #commit frames: typed decode (frame, CAR, records) vs
              serde_ipld_dagcbor into Ipld (>= 1.5x); decoded and verified shown
  client      getSession through an authenticated client vs bare reqwest, local server
              (throughput >= 0.8x sequential; 16 concurrent shown)
  oauth       DPoP proof creation (median <= 50 us; one ES256 signature shown as the floor);
              getSession through an OAuth session vs bare reqwest with static DPoP headers,
              local server (throughput >= 0.8x sequential and 16 concurrent)
  identity    cold `resolve` against local DNS + well-known + PLC servers vs the sum of the
              legs alone (>= 1.5x, aim 1.8); cached resolve calls/s shown
  compile     crate-only debug build of atlex (app-bsky, chat-bsky, tools-ozone) vs
              atrium-api (ozone), median of 3 alternating rounds (ratio <= 1.0, aim 0.6)
  codegen     release `xtask codegen --check` over the official lexicons (<= 1 s wall)
  codegen-scale  release `xtask codegen` over 2,000 synthetic lexicons (<= 2 s wall),
              then `cargo check` of the generated crate (time shown; peak RSS <= 4096 MB)
  stores      per session store: get, set, lock+unlock median and p99; calls/s through a
              session vs MemoryStore (>= 0.9x; lock p99 <= 5 ms on PostgreSQL and Redis)

decode, list-page, firehose, client, oauth and identity are criterion benchmarks in tests/bench (package atlex-bench).
Everything is written under target/atlex-bench/ (the table also to summary.txt there).

Options:
  --quick      Short smoke run: ~1 s criterion measurements, one compile round, three
               codegen runs (rough numbers)
  --no-fail    Exit 0 even when a required target is missed
  -h, --help   Print this help
";

const LEXICONS_HELP: &str = "\
cargo xtask lexicons: the pinned upstream lexicons, and lexicons fetched from the network

Usage: cargo xtask lexicons <sync|pin|verify|fetch> [OPTIONS]

Commands:
  sync     Fetch the pinned lexicons into lexicons/official/, checking every sha256
  pin      Rewrite lexicons/lexicons.toml from a folder or commit (moves the pin)
  verify   Check lexicons/official/ against lexicons/lexicons.toml; `verify DIR` checks a
           folder written by `fetch` against its lexicons.pin.toml
  fetch    Resolve NSIDs (DNS TXT _lexicon.<authority> -> DID -> PDS), fetch their
           com.atproto.lexicon.schema records and the lexicons they refer to, verify them,
           write them into a folder for `cargo xtask codegen --lexicons DIR` and pin them

lexicons/lexicons.toml names the upstream repository, commit and folder, and the sha256 of
every file. lexicons/official/ is git-ignored; `sync` recreates it.
";

const FETCH_HELP: &str = "\
cargo xtask lexicons fetch: lexicons from the network, verified and pinned

Usage: cargo xtask lexicons fetch NSID|PATTERN... --into DIR [--dns IP:PORT] [--plc URL]
                                  [--known DIR | --no-official] [--max-depth N]
                                  [--max-docs N] [--max-record-bytes N] [--timeout SECS]
                                  [--locked]

For each NSID (com.example.feed.post): the authority com.example.feed is reversed into the
domain feed.example.com, whose DNS TXT record _lexicon.feed.example.com must hold exactly one
`did=<did>` (parent domains are not tried); the DID document gives the PDS, which serves the
record at://<did>/com.atproto.lexicon.schema/<nsid> (com.atproto.repo.getRecord). A PATTERN
`com.example.feed.*` lists that authority's records (com.atproto.repo.listRecords) and takes
every NSID com.example.feed.<name>. Refs to other NSIDs are fetched the same way, except those
of the --known folder (default lexicons/official/, which codegen resolves refs against).

Every answer is checked: size and time limits, the record URI (the authority's DID, the
collection, the NSID), the record CID against the CID of its DAG-CBOR encoding, $type,
`lexicon: 1`, `id` equal to the NSID, and the lexicon checks of atlex-lexicon. Any failure
fails the run, listing every problem by NSID and URL or field, and nothing is written.
Then each record is proven: com.atproto.sync.getRecord gives the repository's signed commit
and the MST path to the record; the commit must be by the authority's DID and signed with
its DID document's #atproto key, and its MST must hold the record's CID at
com.atproto.lexicon.schema/<nsid>. A record whose CID differs from the one already pinned in
DIR is reported (with --locked: an error).

The documents are written as DIR/<nsid segments>.json (com/example/feed/post.json) and pinned
in DIR/lexicons.pin.toml (NSID, DID, record URI, record CID, sha256 of the file, rev of the
commit that proved it; entries of an earlier fetch are kept). Then:

  cargo xtask lexicons verify DIR                       check the folder against the pin
  cargo xtask codegen --lexicons DIR --out my-crate/src/generated --root crate::generated

Runs the xtask-lexicon-fetch package (cargo run -p xtask-lexicon-fetch), which needs the SDK.

Options:
  --into DIR              The output folder (created when missing); required
  --dns IP:PORT           The DNS server for the _lexicon TXT lookups (default: the system's)
  --plc URL               The PLC directory for did:plc (default https://plc.directory)
  --known DIR             NSIDs of the lexicons in DIR are not fetched when referred to
  --no-official           Follow refs into the official namespaces too
  --max-depth N           Ref hops followed from the NSIDs given (default 8; 0: none)
  --max-docs N            Documents one run may fetch (default 500)
  --max-record-bytes N    The largest record answer accepted (default 262144)
  --timeout SECS          The time one HTTP request or DNS query may take (default 10 / 3)
  --locked                A record whose CID is not the one pinned in DIR is an error
  -h, --help              Print this help

http is used only for loopback hosts (a local PDS in tests); everything else needs https.
";

const SYNC_HELP: &str = "\
cargo xtask lexicons sync: fetch the pinned lexicons into lexicons/official/

Usage: cargo xtask lexicons sync [--from DIR | --git-url URL] [--allow-changes] [--force]

Fetches the pinned commit with git (shallow, only the pinned folder) or copies a local folder,
checks every file against the sha256 in lexicons/lexicons.toml, and only then replaces
lexicons/official/. Added, missing and changed files are listed by path; any difference is an
error that leaves lexicons/official/ untouched. Running it again when nothing changed does
nothing.

Options:
  --from DIR        Copy from DIR (a folder holding the pinned folder's files, e.g.
                    ../shared/lexicons) instead of fetching
  --git-url URL     Fetch from URL instead of the pinned one (a mirror or a local repository);
                    the environment variable ATLEX_LEXICONS_GIT_URL does the same
  --allow-changes   Install the files even when they differ from the pin (differences are
                    still listed). To move the pin itself, use `cargo xtask lexicons pin`
  --force           Fetch even when lexicons/official/ already matches the pin
  -h, --help        Print this help
";

const PIN_HELP: &str = "\
cargo xtask lexicons pin: rewrite lexicons/lexicons.toml (move the pin)

Usage: cargo xtask lexicons pin [--commit SHA] [--from DIR] [--git-url URL] [--path SUBDIR]

Hashes every file of the pinned folder at the given commit and writes lexicons/lexicons.toml,
listing how the files differ from the previous pin. Then run `cargo xtask lexicons sync`.

  cargo xtask lexicons pin --commit <new sha>          fetch the new commit with git and pin it
  cargo xtask lexicons pin --commit <sha> --from DIR   pin the files of DIR, which must hold the
                                                       pinned folder at that commit

Options:
  --commit SHA      Full commit id (default: the current pin's; required for a new file)
  --from DIR        Hash DIR instead of fetching the commit
  --git-url URL     Repository URL to record (default: the current pin's, else
                    https://github.com/bluesky-social/atproto.git); ATLEX_LEXICONS_GIT_URL
                    only changes where the commit is fetched from
  --path SUBDIR     Folder of the repository to pin (default: the current pin's, else
                    `lexicons`)
  -h, --help        Print this help
";

const VERIFY_HELP: &str = "\
cargo xtask lexicons verify: check lexicons against their pin

Usage: cargo xtask lexicons verify
       cargo xtask lexicons verify DIR

Without DIR: exits with an error listing added, missing and changed files when
lexicons/official/ differs from lexicons/lexicons.toml.

With DIR (a folder written by `cargo xtask lexicons fetch`), offline: every file pinned in
DIR/lexicons.pin.toml is where its NSID puts it, has the pinned sha256, and still is the
fetched record (its DAG-CBOR CID is the pinned record CID, `id` is the NSID, it loads as a
lexicon); a *.json file the manifest does not list is an error too. Runs the
xtask-lexicon-fetch package (cargo run -p xtask-lexicon-fetch).
";

const TEST_HELP: &str = "\
cargo xtask test: run the whole test suite the way CI does

Usage: cargo xtask test [--no-sync] [--no-pds] [--quick] [--nextest] [CARGO ARGS...]
                        [-- HARNESS ARGS...]

Steps (each with a header and its time; a summary at the end):
  1. lexicons         check lexicons/official/ against the pin; when it is missing or stale,
                      sync it from $ATLEX_SHARED_DIR/lexicons (default ../shared/lexicons) when
                      that exists, else with git from the pinned commit; when it is missing and
                      cannot be had (offline), skip it and what needs it (CI=true: fail)
  2. codegen          `cargo xtask codegen --check`: sdk/src/generated/ and the namespace
                      features are what the generator makes of lexicons/official/
  3. interop data     set ATLEX_INTEROP_DIR to $ATLEX_SHARED_DIR/interop when it is unset
  4. reference PDS    run tests/pds/setup.sh and start one PLC + PDS for the whole run,
                      exporting ATLEX_PDS_URL, ATLEX_PLC_URL, ATLEX_PDS_ADMIN_PASSWORD and
                      ATLEX_PDS_HANDLE_DOMAIN to the tests (kept when ATLEX_PDS_URL is set)
  5. tests            cargo build --workspace --examples (the browser test starts the web-app
                      example), then cargo test --workspace --all-targets --no-fail-fast
  6. doc tests        cargo test --workspace --doc --no-fail-fast
  7. examples         create an account on the PDS and run each example of sdk/examples/ with
                      it (cargo run -p atlex --example NAME); a non-zero exit fails the step
  8. stop PDS         close the PDS's stdin and wait for it (killed after 15 s)
  9. feature matrix   cargo test -p atlex --lib --no-default-features, then with each namespace
                      feature of sdk/Cargo.toml alone, then with `full,sqlite,lexicon`

The summary names every skipped part (steps, and tests that skipped themselves for missing
data, by binary and test) and every failing test (binary and test path, doc tests too).

A failing step does not stop the later ones, except `lexicons` and, under CI=true,
`reference PDS`; the exit status is non-zero when any step failed. When the PDS cannot be
set up or started, CI=true fails the run with its output; otherwise the end-to-end tests are
skipped (ATLEX_PDS_SKIP=1). The PDS also stops when xtask exits or is interrupted (its stdin
closes).

Other arguments are passed to cargo (e.g. `-p atlex-types`, `--no-fail-fast`; a package selection
replaces --workspace, a target selection such as `--lib` or `--test NAME` replaces
--all-targets and skips the doc step); arguments after `--` go to the test harness. Either
kind of selection also skips the examples and the feature matrix.

Options:
  --no-sync             Skip the lexicons step (e.g. to test a lexicon tree installed with
                        `lexicons sync --allow-changes`)
  --no-pds              Do not start the reference PDS; the end-to-end tests are skipped
                        (not allowed under CI=true, where they would fail)
  --quick, --no-feature-matrix
                        Skip the feature matrix (CI runs it)
  --nextest             Run step 5 with `cargo nextest run` (needs cargo-nextest installed)
  -h, --help            Print this help
";

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(args: &[&str]) -> Command {
        parse(args.iter().copied()).unwrap()
    }

    fn parse_err(args: &[&str]) -> UsageError {
        parse(args.iter().copied()).unwrap_err()
    }

    #[test]
    fn no_args_and_help_print_the_main_help() {
        assert_eq!(parse_ok(&[]), Command::Help(Topic::Main));
        assert_eq!(parse_ok(&["--help"]), Command::Help(Topic::Main));
        assert_eq!(parse_ok(&["-h"]), Command::Help(Topic::Main));
        assert_eq!(parse_ok(&["help"]), Command::Help(Topic::Main));
        for command in ["lexicons sync", "lexicons pin", "lexicons verify", "test"] {
            assert!(MAIN_HELP.contains(command), "{command}");
        }
        assert!(MAIN_HELP.contains("codegen"));
    }

    #[test]
    fn codegen_timings_flag() {
        let Command::Codegen(args) = parse_ok(&["codegen", "--timings", "--check"]) else {
            panic!("not codegen");
        };
        assert!(args.timings && args.check);
        let Command::Codegen(args) = parse_ok(&["codegen", "--check"]) else {
            panic!("not codegen");
        };
        assert!(!args.timings);
        assert!(CODEGEN_HELP.contains("--timings"));
    }

    #[test]
    fn subcommand_help() {
        assert_eq!(parse_ok(&["lexicons"]), Command::Help(Topic::Lexicons));
        assert_eq!(
            parse_ok(&["lexicons", "--help"]),
            Command::Help(Topic::Lexicons)
        );
        assert_eq!(
            parse_ok(&["lexicons", "sync", "-h"]),
            Command::Help(Topic::Sync)
        );
        assert_eq!(
            parse_ok(&["lexicons", "pin", "--help"]),
            Command::Help(Topic::Pin)
        );
        assert_eq!(
            parse_ok(&["lexicons", "verify", "--help"]),
            Command::Help(Topic::Verify)
        );
        assert_eq!(parse_ok(&["test", "--help"]), Command::Help(Topic::Test));
    }

    #[test]
    fn fuzz_flags_and_targets() {
        use crate::fuzz::{FuzzArgs, Target};
        assert_eq!(parse_ok(&["fuzz"]), Command::Fuzz(FuzzArgs::default()));
        assert_eq!(parse_ok(&["fuzz", "--help"]), Command::Help(Topic::Fuzz));
        assert_eq!(
            parse_ok(&["fuzz", "--time", "300", "jwt", "frames", "jwt"]),
            Command::Fuzz(FuzzArgs {
                time: Some(300),
                smoke: false,
                targets: vec![Target::Jwt, Target::Frames],
            })
        );
        assert_eq!(
            parse_ok(&["fuzz", "--smoke", "--time=20"]),
            Command::Fuzz(FuzzArgs {
                time: Some(20),
                smoke: true,
                targets: Vec::new(),
            })
        );
        assert!(
            parse_err(&["fuzz", "nope"])
                .message
                .contains("known: data_model")
        );
        assert!(
            parse_err(&["fuzz", "--time", "0"])
                .message
                .contains("positive")
        );
        assert!(parse_err(&["fuzz", "--time"]).message.contains("seconds"));
        assert!(
            parse_err(&["fuzz", "--time=1", "--time=2"])
                .message
                .contains("twice")
        );
        assert!(
            parse_err(&["fuzz", "--smoke", "--smoke"])
                .message
                .contains("twice")
        );
        assert_eq!(parse_err(&["fuzz", "--fast"]).topic, Topic::Fuzz);
        // The help names every target.
        for target in Target::ALL {
            assert!(FUZZ_HELP.contains(target.name()), "{}", target.name());
        }
        assert!(MAIN_HELP.contains("fuzz"));
    }

    #[test]
    fn sync_flags() {
        assert_eq!(
            parse_ok(&["lexicons", "sync"]),
            Command::LexiconsSync(SyncArgs::default())
        );
        assert_eq!(
            parse_ok(&[
                "lexicons",
                "sync",
                "--from",
                "../shared/lexicons",
                "--allow-changes"
            ]),
            Command::LexiconsSync(SyncArgs {
                from: Some("../shared/lexicons".into()),
                allow_changes: true,
                ..SyncArgs::default()
            })
        );
        assert_eq!(
            parse_ok(&["lexicons", "sync", "--git-url=/tmp/repo", "--force"]),
            Command::LexiconsSync(SyncArgs {
                git_url: Some("/tmp/repo".into()),
                force: true,
                ..SyncArgs::default()
            })
        );
    }

    #[test]
    fn sync_usage_errors() {
        let error = parse_err(&["lexicons", "sync", "--from"]);
        assert_eq!(error.message, "--from needs a value");
        assert_eq!(error.topic, Topic::Sync);
        assert!(
            error
                .to_string()
                .contains("cargo xtask lexicons sync --help")
        );
        assert_eq!(
            parse_err(&["lexicons", "sync", "--from", "a", "--from", "b"]).message,
            "--from given twice"
        );
        assert_eq!(
            parse_err(&["lexicons", "sync", "--force", "--force"]).message,
            "--force given twice"
        );
        assert_eq!(
            parse_err(&["lexicons", "sync", "--force=yes"]).message,
            "--force takes no value (got `yes`)"
        );
        assert_eq!(
            parse_err(&["lexicons", "sync", "--frm", "x"]).message,
            "unknown flag `--frm`"
        );
        assert_eq!(
            parse_err(&["lexicons", "sync", "dir"]).message,
            "unexpected argument `dir`"
        );
        assert_eq!(
            parse_err(&["lexicons", "sync", "--from", "a", "--git-url", "b"]).message,
            "--from and --git-url cannot be used together"
        );
        assert_eq!(
            parse_err(&["lexicons", "sync", "--from="]).message,
            "--from needs a non-empty value"
        );
    }

    #[test]
    fn pin_flags() {
        assert_eq!(
            parse_ok(&[
                "lexicons",
                "pin",
                "--from",
                "/x",
                "--commit=d6296a1cfdb40a773319cb59061300e4e8e52f26",
                "--git-url",
                "u",
                "--path",
                "p"
            ]),
            Command::LexiconsPin(PinArgs {
                from: Some("/x".into()),
                commit: Some("d6296a1cfdb40a773319cb59061300e4e8e52f26".into()),
                git_url: Some("u".into()),
                path: Some("p".into()),
            })
        );
        assert_eq!(
            parse_err(&["lexicons", "pin", "--allow-changes"]).topic,
            Topic::Pin
        );
    }

    #[test]
    fn verify_takes_no_flags_and_an_optional_dir() {
        assert_eq!(parse_ok(&["lexicons", "verify"]), Command::LexiconsVerify);
        assert_eq!(
            parse_err(&["lexicons", "verify", "--from", "x"]).message,
            "unknown flag `--from`"
        );
        assert_eq!(
            parse_ok(&["lexicons", "verify", "fetched"]),
            Command::LexiconsVerifyDir("fetched".into())
        );
        assert_eq!(
            parse_err(&["lexicons", "verify", "a", "b"]).message,
            "DIR given twice"
        );
    }

    #[test]
    fn fetch_passes_its_arguments_through() {
        assert_eq!(
            parse_ok(&["lexicons", "fetch"]),
            Command::Help(Topic::Fetch)
        );
        assert_eq!(
            parse_ok(&["lexicons", "fetch", "com.example.*", "--help"]),
            Command::Help(Topic::Fetch)
        );
        assert_eq!(
            parse_ok(&["lexicons", "fetch", "com.example.a.b", "--into", "d"]),
            Command::LexiconsFetch(vec!["com.example.a.b".into(), "--into".into(), "d".into()])
        );
        for flag in [
            "--into",
            "--dns",
            "--plc",
            "--known",
            "--no-official",
            "--max-depth",
        ] {
            assert!(FETCH_HELP.contains(flag), "{flag}");
        }
        assert!(LEXICONS_HELP.contains("fetch"));
        assert!(MAIN_HELP.contains("lexicons fetch"));
    }

    #[test]
    fn unknown_commands() {
        let error = parse_err(&["frobnicate"]);
        assert_eq!(error.message, "unknown command `frobnicate`");
        assert_eq!(error.topic, Topic::Main);
        let error = parse_err(&["lexicons", "frob"]);
        assert_eq!(error.message, "unknown command `lexicons frob`");
        assert_eq!(error.topic, Topic::Lexicons);
    }

    #[test]
    fn test_passes_unknown_args_through() {
        assert_eq!(parse_ok(&["test"]), Command::Test(TestArgs::default()));
        assert_eq!(
            parse_ok(&[
                "test",
                "-p",
                "atlex-types",
                "--no-sync",
                "--release",
                "--",
                "--nocapture",
                "--no-sync"
            ]),
            Command::Test(TestArgs {
                no_sync: true,
                cargo_args: vec!["-p".into(), "atlex-types".into(), "--release".into()],
                harness_args: vec!["--nocapture".into(), "--no-sync".into()],
                ..TestArgs::default()
            })
        );
        assert_eq!(
            parse_ok(&["test", "--no-pds", "--quick", "--", "--no-pds"]),
            Command::Test(TestArgs {
                no_pds: true,
                no_feature_matrix: true,
                harness_args: vec!["--no-pds".into()],
                ..TestArgs::default()
            })
        );
        assert_eq!(
            parse_ok(&["test", "--no-feature-matrix"]),
            Command::Test(TestArgs {
                no_feature_matrix: true,
                ..TestArgs::default()
            })
        );
        assert_eq!(
            parse_ok(&["test", "--nextest"]),
            Command::Test(TestArgs {
                nextest: true,
                ..TestArgs::default()
            })
        );
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_paths_are_accepted() {
        use std::os::unix::ffi::OsStringExt;
        let dir = OsString::from_vec(b"caf\xe9".to_vec());
        let parsed = parse(vec![
            OsString::from("lexicons"),
            OsString::from("sync"),
            OsString::from("--from"),
            dir.clone(),
        ])
        .unwrap();
        assert_eq!(
            parsed,
            Command::LexiconsSync(SyncArgs {
                from: Some(PathBuf::from(dir)),
                ..SyncArgs::default()
            })
        );
    }
}
