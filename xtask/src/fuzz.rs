//! `cargo xtask fuzz`: build the coverage-guided fuzz targets of `tests/fuzz` and run them,
//! each for a fixed time, seeded from the repository's fixtures and the interop vectors.
//!
//! ## How the targets are built
//!
//! The targets are libFuzzer binaries (`libfuzzer-sys`, the runtime cargo-fuzz uses; its
//! build script compiles libFuzzer with the system C++ compiler). xtask builds them itself
//! with the **stable** toolchain and the same instrumentation flags `cargo fuzz build
//! --sanitizer none` passes (`-Cpasses=sancov-module`, inline 8-bit counters, PC table,
//! compare tracing, `--cfg fuzzing`), in release with debug assertions and overflow checks
//! on (the profile of `tests/fuzz/Cargo.toml`), for the host target only so build scripts and
//! proc macros stay uninstrumented. So nothing needs installing and no nightly toolchain: the
//! code under test forbids `unsafe`, so a sanitizer would add little, and what safe Rust can
//! get wrong on hostile input (panics, overflow, unbounded recursion, huge allocations,
//! hangs) libFuzzer reports without one. `tests/fuzz` is also a valid cargo-fuzz project
//! (`cargo fuzz run --fuzz-dir tests/fuzz <target>`) for anyone who has cargo-fuzz.
//!
//! ## Corpus and output
//!
//! Everything lives under `target/fuzz/` (git-ignored): the binaries, `corpus/<target>/` (the
//! working corpus libFuzzer grows and that later runs reuse), `seeds/<target>/` (rewritten
//! every run from the sources below), `artifacts/<target>/` (crashing inputs) and
//! `logs/<target>.log` (libFuzzer's output). The committed `tests/fuzz/seeds/<target>/` and
//! `tests/fuzz/regressions/<target>/` are read too, so every past crash is retried first, and
//! `tests/fuzz/dicts/<target>.dict` (tokens such as header names and numbers at their
//! limits) is passed as libFuzzer's dictionary when it exists.
//!
//! For each target the summary prints the executions, the coverage libFuzzer reports (`cov`,
//! covered edges, and `ft`, features), the corpus size and the result. Any crash, timeout or
//! out-of-memory makes the command fail, naming the input that caused it.

use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::error::{Context, Error, Result};
use crate::suite::{INTEROP_DIR_ENV, SHARED_DIR_ENV};
use crate::tree::sha256_hex;

/// Seconds per target of a plain run.
pub const DEFAULT_SECS: u64 = 60;
/// Seconds per target of `--smoke` (seven targets: under two minutes of fuzzing).
pub const SMOKE_SECS: u64 = 15;

/// The instrumentation cargo-fuzz applies with `--sanitizer none`.
const RUSTFLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "-Cllvm-args=-simplifycfg-branch-fold-threshold=0",
    "--cfg",
    "fuzzing",
];

/// Arguments of `cargo xtask fuzz`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FuzzArgs {
    /// `--time SECS`: seconds per target.
    pub time: Option<u64>,
    /// `--smoke`: the short CI pass ([`SMOKE_SECS`] per target unless `--time` says).
    pub smoke: bool,
    /// The targets named on the command line (none: all).
    pub targets: Vec<Target>,
}

impl FuzzArgs {
    /// Seconds per target.
    pub fn secs(&self) -> u64 {
        self.time
            .unwrap_or(if self.smoke { SMOKE_SECS } else { DEFAULT_SECS })
    }

    /// The targets to run, in order.
    pub fn selected(&self) -> Vec<Target> {
        if self.targets.is_empty() {
            Target::ALL.to_vec()
        } else {
            self.targets.clone()
        }
    }
}

/// One fuzz target (a binary of `tests/fuzz/fuzz_targets/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// `data_model`: `Data` through JSON and DAG-CBOR.
    DataModel,
    /// `frames`: event-stream frames of subscribeRepos and subscribeLabels.
    Frames,
    /// `xrpc_response`: the client's decoding of outputs and error bodies.
    XrpcResponse,
    /// `headers_query`: rate-limit headers and query-string encoding.
    HeadersQuery,
    /// `jwt`: JWT claims and the refresh time.
    Jwt,
    /// `lexicon`: the lexicon loader and checks.
    Lexicon,
    /// `records`: generated record types.
    Records,
    /// `repo`: CARs, MSTs and `#commit` verification.
    Repo,
}

impl Target {
    /// Every target, in the order they run (those that read network input first).
    pub const ALL: [Target; 8] = [
        Target::DataModel,
        Target::Frames,
        Target::XrpcResponse,
        Target::HeadersQuery,
        Target::Jwt,
        Target::Repo,
        Target::Lexicon,
        Target::Records,
    ];

    /// The binary's name, also the folder name under `seeds/`, `regressions/` and `corpus/`.
    pub fn name(self) -> &'static str {
        match self {
            Target::DataModel => "data_model",
            Target::Frames => "frames",
            Target::XrpcResponse => "xrpc_response",
            Target::HeadersQuery => "headers_query",
            Target::Jwt => "jwt",
            Target::Lexicon => "lexicon",
            Target::Records => "records",
            Target::Repo => "repo",
        }
    }

    /// The target called `name`.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|target| target.name() == name)
    }

    /// Whether the target reads what a server sends (these get the longer runs).
    pub fn takes_network_input(self) -> bool {
        !matches!(self, Target::Lexicon | Target::Records)
    }

    /// Where its seeds come from, besides `tests/fuzz/seeds/<name>/`.
    fn sources(self, root: &Path, interop: &Path) -> Vec<Source> {
        let records = root.join("tests/fixtures/records");
        let data_model = interop.join("data-model");
        let lexicon = interop.join("lexicon");
        match self {
            Target::DataModel => vec![
                Source::elements(
                    data_model.join("data-model-fixtures.json"),
                    &["json", "cbor_base64"],
                ),
                Source::elements(data_model.join("data-model-valid.json"), &["json"]),
                Source::elements(data_model.join("data-model-invalid.json"), &["json"]),
                Source::elements(lexicon.join("record-data-valid.json"), &["data"]),
                Source::ElementsIn(records),
            ],
            Target::Records => vec![Source::ElementsIn(records)],
            Target::Lexicon => vec![
                Source::Files(root.join("codegen/tests/lexicons")),
                Source::Files(root.join("lexicons/official")),
                Source::Files(lexicon.join("catalog")),
                Source::elements(lexicon.join("lexicon-valid.json"), &["lexicon"]),
                Source::elements(lexicon.join("lexicon-invalid.json"), &["lexicon"]),
            ],
            Target::XrpcResponse => vec![Source::ElementsIn(records)],
            Target::Frames | Target::HeadersQuery | Target::Jwt | Target::Repo => Vec::new(),
        }
    }
}

/// A source of seed inputs.
#[derive(Debug, Clone)]
enum Source {
    /// Every `.json` file under a folder, whole.
    Files(PathBuf),
    /// The elements of a JSON array file: the values under `keys` (a `*_base64` key is
    /// decoded to bytes), or each element whole when `keys` is empty.
    Elements(PathBuf, &'static [&'static str]),
    /// [`Source::Elements`] of every `.json` file in a folder, each element whole.
    ElementsIn(PathBuf),
}

impl Source {
    fn elements(file: PathBuf, keys: &'static [&'static str]) -> Source {
        Source::Elements(file, keys)
    }

    fn path(&self) -> &Path {
        match self {
            Source::Files(path) | Source::Elements(path, _) | Source::ElementsIn(path) => path,
        }
    }

    /// The seeds, or `None` when the source is absent.
    fn seeds(&self) -> Result<Option<Vec<Vec<u8>>>> {
        if !self.path().exists() {
            return Ok(None);
        }
        let mut seeds = Vec::new();
        match self {
            Source::Files(dir) => {
                for file in json_files(dir)? {
                    seeds.push(fs::read(&file).context(|| format!("reading {}", file.display()))?);
                }
            }
            Source::Elements(file, keys) => seeds.extend(elements(file, keys)?),
            Source::ElementsIn(dir) => {
                for file in json_files(dir)? {
                    seeds.extend(elements(&file, &[])?);
                }
            }
        }
        Ok(Some(seeds))
    }
}

/// The `.json` files under `dir`, recursively, sorted.
fn json_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).context(|| format!("listing {}", dir.display()))? {
            let path = entry
                .context(|| format!("listing {}", dir.display()))?
                .path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The seeds in one JSON array file (see [`Source::Elements`]).
fn elements(file: &Path, keys: &[&str]) -> Result<Vec<Vec<u8>>> {
    let text = fs::read_to_string(file).context(|| format!("reading {}", file.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).context(|| format!("parsing {}", file.display()))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        other => vec![other],
    };
    let mut seeds = Vec::new();
    for item in items {
        if keys.is_empty() {
            seeds.push(json_bytes(&item, file)?);
            continue;
        }
        for key in keys {
            match item.get(key) {
                None => {}
                Some(serde_json::Value::String(text)) if key.ends_with("_base64") => {
                    // The interop vectors write base64 without padding.
                    let padded = format!("{text}{}", "=".repeat((4 - text.len() % 4) % 4));
                    let bytes = STANDARD
                        .decode(padded)
                        .context(|| format!("decoding `{key}` in {}", file.display()))?;
                    seeds.push(bytes);
                }
                Some(value) => seeds.push(json_bytes(value, file)?),
            }
        }
    }
    Ok(seeds)
}

fn json_bytes(value: &serde_json::Value, file: &Path) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).context(|| format!("writing a seed from {}", file.display()))
}

/// The folders of one run.
struct Dirs {
    /// `target/fuzz` (the cargo target folder of the fuzz build, and everything else).
    base: PathBuf,
    /// Where cargo puts the binaries.
    bin: PathBuf,
}

impl Dirs {
    fn corpus(&self, target: Target) -> PathBuf {
        self.base.join("corpus").join(target.name())
    }
    fn seeds(&self, target: Target) -> PathBuf {
        self.base.join("seeds").join(target.name())
    }
    fn artifacts(&self, target: Target) -> PathBuf {
        self.base.join("artifacts").join(target.name())
    }
    fn log(&self, target: Target) -> PathBuf {
        self.base
            .join("logs")
            .join(format!("{}.log", target.name()))
    }
}

/// What one target's run reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Inputs executed (`stat::number_of_executed_units`).
    pub executions: Option<u64>,
    /// Covered edges (`cov:` of the last status line).
    pub edges: Option<u64>,
    /// Coverage features (`ft:`).
    pub features: Option<u64>,
    /// Inputs in the corpus at the end (`corp:`).
    pub corpus: Option<u64>,
    /// The input libFuzzer wrote after a crash, timeout or out-of-memory.
    pub artifact: Option<PathBuf>,
    /// What went wrong (libFuzzer's `ERROR` line and a panic message, if any).
    pub failure: Option<String>,
}

/// Reads libFuzzer's output (its `-print_final_stats=1` stats and status lines).
pub fn parse_log(log: &str) -> RunStats {
    let mut stats = RunStats::default();
    let field = |line: &str, name: &str| -> Option<u64> {
        let rest = line.split(name).nth(1)?;
        let number: String = rest
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        number.parse().ok()
    };
    let mut error = None;
    let mut panic = None;
    for line in log.lines() {
        if line.starts_with('#') {
            if let Some(edges) = field(line, " cov:") {
                stats.edges = Some(edges);
            }
            if let Some(features) = field(line, " ft:") {
                stats.features = Some(features);
            }
            if let Some(corpus) = field(line, " corp:") {
                stats.corpus = Some(corpus);
            }
        } else if let Some(rest) = line.strip_prefix("stat::number_of_executed_units:") {
            stats.executions = rest.trim().parse().ok();
        } else if let Some(rest) = line.split("Test unit written to ").nth(1) {
            stats.artifact = Some(PathBuf::from(rest.trim()));
        } else if let Some(at) = line.find("ERROR: libFuzzer:").filter(|_| error.is_none()) {
            error = Some(line[at..].trim().to_owned());
        } else if line.contains("panicked at") && panic.is_none() {
            panic = Some(line.trim().to_owned());
        }
    }
    // A panic's message follows the `panicked at` line.
    if let Some(at) = &panic {
        let message = log
            .lines()
            .skip_while(|line| line.trim() != at)
            .nth(1)
            .unwrap_or_default()
            .trim();
        panic = Some(format!("{at} {message}").trim().to_owned());
    }
    stats.failure = match (error, panic) {
        (Some(error), Some(panic)) => Some(format!("{error}; {panic}")),
        (error, panic) => error.or(panic),
    };
    stats
}

/// Runs `cargo xtask fuzz` for the repository at `root`.
pub fn run(root: &Path, args: &FuzzArgs, out: &mut dyn Write) -> Result<()> {
    let targets = args.selected();
    let secs = args.secs();
    let host = host_triple()?;
    let base = root.join("target").join("fuzz");
    let dirs = Dirs {
        bin: base.join(&host).join("release"),
        base,
    };
    build(root, &dirs, &host, &targets, out)?;

    let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    let interop = match non_empty(INTEROP_DIR_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => match non_empty(SHARED_DIR_ENV) {
            Some(shared) => PathBuf::from(shared).join("interop"),
            None => root.join("..").join("shared").join("interop"),
        },
    };

    let mut rows = Vec::new();
    for &target in &targets {
        let seeds = write_seeds(root, &interop, &dirs, target, out)?;
        let started = Instant::now();
        let stats = run_target(root, &dirs, target, secs, out)?;
        rows.push((target, seeds, started.elapsed().as_secs(), stats));
    }

    let _ = writeln!(out, "\n{}", summary(&rows));
    let crashed: Vec<String> = rows
        .iter()
        .filter(|(_, _, _, stats)| stats.failure.is_some() || stats.artifact.is_some())
        .map(|(target, _, _, stats)| {
            let binary = dirs.bin.join(target.name());
            let failure = stats.failure.as_deref().unwrap_or("the target failed");
            match &stats.artifact {
                Some(input) => format!(
                    "{}: {failure}\n  input: {}\n  reproduce: {} {}\n  then copy the input to tests/fuzz/regressions/{}/ and fix the cause",
                    target.name(),
                    input.display(),
                    binary.display(),
                    input.display(),
                    target.name(),
                ),
                None => format!(
                    "{}: {failure} (no input was written; see {})",
                    target.name(),
                    dirs.log(*target).display()
                ),
            }
        })
        .collect();
    if crashed.is_empty() {
        Ok(())
    } else {
        Err(Error::new(format!(
            "{} fuzz target(s) failed:\n{}",
            crashed.len(),
            crashed.join("\n")
        )))
    }
}

/// The host target triple (`rustc -vV`).
fn host_triple() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .arg("-vV")
        .output()
        .context(|| format!("running `{} -vV`", rustc.to_string_lossy()))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(|host| host.trim().to_owned())
        .ok_or_else(|| Error::new("`rustc -vV` printed no `host:` line"))
}

/// Builds the selected targets with coverage instrumentation.
fn build(
    root: &Path,
    dirs: &Dirs,
    host: &str,
    targets: &[Target],
    out: &mut dyn Write,
) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = root.join("tests/fuzz/Cargo.toml");
    let mut command = Command::new(&cargo);
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(&manifest)
        .args(["--release", "--locked", "--target", host]);
    for target in targets {
        command.args(["--bin", target.name()]);
    }
    command
        .env("CARGO_TARGET_DIR", &dirs.base)
        .env("RUSTFLAGS", RUSTFLAGS.join(" "))
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS");
    let _ = writeln!(
        out,
        "fuzz: building {} target(s) with coverage instrumentation (tests/fuzz, release, {host}) into {}",
        targets.len(),
        dirs.base.display()
    );
    let status = command
        .status()
        .context(|| format!("running {}", cargo.to_string_lossy()))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::new(format!(
            "building the fuzz targets failed ({status}). They need only the stable toolchain and \
             a C++ compiler (`c++`, for libFuzzer, which libfuzzer-sys compiles); if cargo's \
             output above names a missing `c++`/`g++`, install one (e.g. `apt-get install g++`)"
        )))
    }
}

/// Rewrites `target/fuzz/seeds/<target>/` from the target's sources; returns how many seeds
/// there are, the committed `tests/fuzz/seeds/<target>/` included.
fn write_seeds(
    root: &Path,
    interop: &Path,
    dirs: &Dirs,
    target: Target,
    out: &mut dyn Write,
) -> Result<usize> {
    let dir = dirs.seeds(target);
    if dir.exists() {
        fs::remove_dir_all(&dir).context(|| format!("emptying {}", dir.display()))?;
    }
    fs::create_dir_all(&dir).context(|| format!("creating {}", dir.display()))?;
    let mut count = 0;
    for source in target.sources(root, interop) {
        match source.seeds()? {
            Some(seeds) => {
                for seed in seeds {
                    let path = dir.join(sha256_hex(&seed));
                    if !path.exists() {
                        fs::write(&path, &seed)
                            .context(|| format!("writing {}", path.display()))?;
                        count += 1;
                    }
                }
            }
            None => {
                let _ = writeln!(
                    out,
                    "fuzz {}: seed source {} is absent; skipped",
                    target.name(),
                    source.path().display()
                );
            }
        }
    }
    let committed = root.join("tests/fuzz/seeds").join(target.name());
    if let Ok(entries) = fs::read_dir(&committed) {
        count += entries.count();
    }
    Ok(count)
}

/// Runs one target for `secs` seconds; its output goes to `target/fuzz/logs/<target>.log`.
fn run_target(
    root: &Path,
    dirs: &Dirs,
    target: Target,
    secs: u64,
    out: &mut dyn Write,
) -> Result<RunStats> {
    let corpus = dirs.corpus(target);
    let artifacts = dirs.artifacts(target);
    let log = dirs.log(target);
    for dir in [&corpus, &artifacts] {
        fs::create_dir_all(dir).context(|| format!("creating {}", dir.display()))?;
    }
    if let Some(parent) = log.parent() {
        fs::create_dir_all(parent).context(|| format!("creating {}", parent.display()))?;
    }
    let mut inputs = vec![corpus, dirs.seeds(target)];
    for committed in ["seeds", "regressions"] {
        let dir = root.join("tests/fuzz").join(committed).join(target.name());
        if dir.is_dir() {
            inputs.push(dir);
        }
    }
    let binary = dirs.bin.join(target.name());
    let dict = root
        .join("tests/fuzz/dicts")
        .join(format!("{}.dict", target.name()));
    let log_file = fs::File::create(&log).context(|| format!("creating {}", log.display()))?;
    let log_err = log_file
        .try_clone()
        .context(|| format!("opening {}", log.display()))?;
    let _ = writeln!(
        out,
        "fuzz {}: running for {secs} s (log: {})",
        target.name(),
        log.display()
    );
    let mut artifact_prefix = artifacts.into_os_string();
    artifact_prefix.push("/");
    let mut prefix_arg = std::ffi::OsString::from("-artifact_prefix=");
    prefix_arg.push(artifact_prefix);
    let status = Command::new(&binary)
        .arg(format!("-max_total_time={secs}"))
        .arg("-print_final_stats=1")
        // One input taking 10 s, or 2 GB, is a bug (a hang, an unbounded allocation).
        .arg("-timeout=10")
        .arg("-rss_limit_mb=2048")
        .arg(prefix_arg)
        .args(dict.is_file().then(|| {
            let mut arg = std::ffi::OsString::from("-dict=");
            arg.push(&dict);
            arg
        }))
        .args(&inputs)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .status()
        .context(|| format!("running {}", binary.display()))?;
    let text = fs::read_to_string(&log).context(|| format!("reading {}", log.display()))?;
    let mut stats = parse_log(&text);
    if !status.success() && stats.failure.is_none() {
        stats.failure = Some(format!("the target exited with {status}"));
    }
    Ok(stats)
}

/// The summary table.
fn summary(rows: &[(Target, usize, u64, RunStats)]) -> String {
    let number = |value: Option<u64>| value.map_or_else(|| "?".to_owned(), |n| n.to_string());
    let mut text = format!(
        "{:<14} {:>6} {:>6} {:>12} {:>9} {:>7} {:>7} {:>7}  result\n",
        "target", "seeds", "secs", "executions", "exec/s", "edges", "ft", "corpus"
    );
    for (target, seeds, secs, stats) in rows {
        let rate = stats
            .executions
            .map(|n| (n / (*secs).max(1)).to_string())
            .unwrap_or_else(|| "?".to_owned());
        let result = match (&stats.failure, &stats.artifact) {
            (None, None) => "ok, no crashes".to_owned(),
            (Some(failure), _) => format!("CRASH: {failure}"),
            (None, Some(_)) => "CRASH".to_owned(),
        };
        let _ = writeln!(
            text,
            "{:<14} {:>6} {:>6} {:>12} {:>9} {:>7} {:>7} {:>7}  {result}",
            target.name(),
            seeds,
            secs,
            number(stats.executions),
            rate,
            number(stats.edges),
            number(stats.features),
            number(stats.corpus),
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRASH_LOG: &str = "\
INFO: Seed: 1234
#2\tINITED cov: 120 ft: 130 corp: 1/1b exec/s: 0 rss: 30Mb
#1000\tNEW    cov: 150 ft: 170 corp: 5/40b lim: 4 exec/s: 0 rss: 31Mb L: 4/4 MS: 1 ChangeBit-
thread '<unnamed>' panicked at src/lib.rs:10:5:
attempt to add with overflow
==30905== ERROR: libFuzzer: deadly signal
MS: 1 ChangeBit-; base unit: abc
artifact_prefix='target/fuzz/artifacts/jwt/'; Test unit written to target/fuzz/artifacts/jwt/crash-0123
stat::number_of_executed_units: 1001
stat::peak_rss_mb: 31
";

    #[test]
    fn reads_a_crash_log() {
        let stats = parse_log(CRASH_LOG);
        assert_eq!(stats.executions, Some(1001));
        assert_eq!(stats.edges, Some(150));
        assert_eq!(stats.features, Some(170));
        assert_eq!(stats.corpus, Some(5));
        assert_eq!(
            stats.artifact,
            Some(PathBuf::from("target/fuzz/artifacts/jwt/crash-0123"))
        );
        assert_eq!(
            stats.failure.as_deref(),
            Some(
                "ERROR: libFuzzer: deadly signal; thread '<unnamed>' panicked at src/lib.rs:10:5: attempt to add with overflow"
            )
        );
    }

    #[test]
    fn reads_a_clean_log() {
        let log = "#4096\tpulse  cov: 200 ft: 300 corp: 9/1kb exec/s: 2048 rss: 40Mb\n\
                   #9000\tDONE   cov: 210 ft: 320 corp: 10/1kb lim: 40 exec/s: 3000 rss: 41Mb\n\
                   Done 9000 runs in 3 second(s)\n\
                   stat::number_of_executed_units: 9000\n";
        let stats = parse_log(log);
        assert_eq!(
            stats,
            RunStats {
                executions: Some(9000),
                edges: Some(210),
                features: Some(320),
                corpus: Some(10),
                artifact: None,
                failure: None,
            }
        );
    }

    #[test]
    fn seeds_come_from_array_elements_and_base64() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vectors.json");
        fs::write(
            &file,
            r#"[{"json": {"a": 1}, "cbor_base64": "oWFhAQ"}, {"other": 1}]"#,
        )
        .unwrap();
        let seeds = elements(&file, &["json", "cbor_base64"]).unwrap();
        assert_eq!(seeds.len(), 2);
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&seeds[0]).unwrap(),
            serde_json::json!({"a": 1})
        );
        assert_eq!(seeds[1], [0xa1, 0x61, 0x61, 0x01]);
        let whole = elements(&file, &[]).unwrap();
        assert_eq!(whole.len(), 2);
        assert!(
            Source::Files(dir.path().join("absent"))
                .seeds()
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn time_defaults() {
        assert_eq!(FuzzArgs::default().secs(), DEFAULT_SECS);
        let smoke = FuzzArgs {
            smoke: true,
            ..FuzzArgs::default()
        };
        assert_eq!(smoke.secs(), SMOKE_SECS);
        assert_eq!(smoke.selected(), Target::ALL.to_vec());
        let timed = FuzzArgs {
            smoke: true,
            time: Some(300),
            targets: vec![Target::Jwt],
        };
        assert_eq!(timed.secs(), 300);
        assert_eq!(timed.selected(), vec![Target::Jwt]);
    }
}
