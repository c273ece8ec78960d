//! `cargo xtask codegen`: regenerate typed Rust from lexicons.
//!
//! Without options it regenerates the SDK's bindings: every lexicon in `lexicons/official/` into
//! `sdk/src/generated/`, and the namespace features in `sdk/Cargo.toml` (between the
//! `@generated features` markers). With `--lexicons DIR --out DIR` it generates a user crate's
//! own lexicons; refs into the official lexicons then become `::atlex::…` paths.
//!
//! Every problem of the lexicons being generated is collected before anything fails (files that
//! do not parse, defs that break a rule, refs that do not resolve; see [`atlex_codegen::prune`]):
//! by default the command then fails naming all of them; with `--skip-invalid` it reports them,
//! generates every def that is valid and refers only to valid defs, and ends with the list of
//! what it left out and why.
//!
//! Files are written only when their content changed; files the generator no longer produces
//! are removed. Writing overlaps rendering: four threads write files as the rendering threads
//! finish them ([`atlex_codegen::generate_streaming`]); a strict run that found problems hands
//! them no file, since it fails. `--check` writes nothing and fails, naming each stale file,
//! when anything would change (CI runs it).
//!
//! When the official lexicons are needed and `lexicons/official/` is missing (a fresh clone),
//! they are synced first, as `cargo xtask lexicons sync` would: from `../shared/lexicons`
//! (`$ATLEX_SHARED_DIR/lexicons`) when it exists, else with git from the pinned commit. Without
//! a network that fails, naming `cargo xtask lexicons sync --from DIR`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use atlex_codegen::{Config, DocSet, Layout};

use crate::error::{Context, Error, Result};
use crate::lexicons::{self, AutoSync, LexiconPaths};

/// Options of `cargo xtask codegen`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodegenArgs {
    /// `--check`: fail instead of writing when anything is stale.
    pub check: bool,
    /// `--lexicons DIR`: generate these lexicons instead of the official ones.
    pub lexicons: Option<PathBuf>,
    /// `--out DIR`: where to write.
    pub out: Option<PathBuf>,
    /// `--root PATH`: the Rust path of the generated modules inside their crate.
    pub root: Option<String>,
    /// `--no-official`: do not resolve refs against the official lexicons.
    pub no_official: bool,
    /// `--single-file`: write one `lib.rs` with inline modules.
    pub single_file: bool,
    /// `--skip-invalid`: report every problem, then generate the valid rest (pruned per def)
    /// instead of failing.
    pub skip_invalid: bool,
    /// `--timings`: print the wall time of each phase per job.
    pub timings: bool,
}

/// The line in `sdk/Cargo.toml` after which the generated namespace features start.
pub const FEATURES_BEGIN: &str = "# @generated features begin (cargo xtask codegen)";
/// The line in `sdk/Cargo.toml` where the generated namespace features end.
pub const FEATURES_END: &str = "# @generated features end";

/// One generation: which lexicons, where to, how.
struct Job {
    lexicons: PathBuf,
    out: PathBuf,
    config: Config,
    /// Resolve refs against the official lexicons (a user crate's job).
    with_official: bool,
    /// The manifest whose feature block is regenerated (the SDK's job).
    features_manifest: Option<PathBuf>,
}

/// The example crate generated from the project's own example lexicons (see README).
pub const EXAMPLE_LEXICONS: &str = "lexicons/example";
/// Where the example crate's generated modules live.
pub const EXAMPLE_OUT: &str = "codegen/example/src/generated";

/// Runs the command for the repository at `root`; missing official lexicons are synced from
/// the sources the environment names ([`AutoSync::from_env`]).
pub fn run(root: &Path, args: &CodegenArgs, out: &mut dyn Write) -> Result<()> {
    run_with(root, args, &AutoSync::from_env(root), out)
}

/// Runs the command for the repository at `root`. When the official lexicons are needed and
/// `lexicons/official/` is missing, they are synced first from `auto` (a local copy, else git);
/// offline, that fails with the command that fixes it.
pub fn run_with(
    root: &Path,
    args: &CodegenArgs,
    auto: &AutoSync,
    out: &mut dyn Write,
) -> Result<()> {
    let started = Instant::now();
    let official_dir = root.join("lexicons").join("official");
    let jobs = match (&args.lexicons, &args.out) {
        (None, None) => {
            let mut example = Config::user_crate("crate::generated");
            example.layout = if args.single_file {
                Layout::SingleFile
            } else {
                Layout::Tree
            };
            vec![
                Job {
                    lexicons: official_dir.clone(),
                    out: root.join("sdk").join("src").join("generated"),
                    config: Config::sdk(),
                    with_official: false,
                    features_manifest: Some(root.join("sdk").join("Cargo.toml")),
                },
                Job {
                    lexicons: root.join(EXAMPLE_LEXICONS),
                    out: root.join(EXAMPLE_OUT),
                    config: example,
                    with_official: true,
                    features_manifest: None,
                },
            ]
        }
        (Some(lexicons), Some(out_dir)) => {
            let lexicons = resolve(root, lexicons);
            if !lexicons.is_dir() {
                return Err(Error::new(format!(
                    "lexicon folder {} does not exist",
                    lexicons.display()
                )));
            }
            let mut config =
                Config::user_crate(args.root.clone().unwrap_or_else(|| "crate".to_owned()));
            if args.single_file {
                config.layout = Layout::SingleFile;
            }
            vec![Job {
                lexicons,
                out: resolve(root, out_dir),
                config,
                with_official: !args.no_official,
                features_manifest: None,
            }]
        }
        _ => {
            return Err(Error::new(
                "--lexicons and --out go together: the lexicons to generate and the folder to write",
            ));
        }
    };

    // The official lexicons are read once, whether a job generates them, resolves refs
    // against them, or both.
    let needs_official = jobs
        .iter()
        .any(|job| job.with_official || job.lexicons == official_dir);
    let mut official_took = std::time::Duration::ZERO;
    let official: Option<atlex_codegen::Loaded> = if needs_official {
        if !official_dir.is_dir() {
            let paths = LexiconPaths::new(root);
            let _ = writeln!(
                out,
                "{} is missing: the official lexicons are not synced yet",
                paths.show(&official_dir)
            );
            lexicons::auto_sync(&paths, auto, out)?;
        }
        let loading = Instant::now();
        let loaded = load_checked(&official_dir, out)?;
        official_took = loading.elapsed();
        Some(loaded)
    } else {
        None
    };
    let mut stale = Vec::new();
    let mut summary = Vec::new();
    if args.timings && official.is_some() {
        summary.push(format!(
            "official lexicons loaded and checked in {:.0} ms",
            official_took.as_secs_f64() * 1000.0
        ));
    }
    for job in &jobs {
        let external: Vec<DocSet<'_>> = match (&official, job.with_official) {
            (Some(loaded), true) => vec![loaded.doc_set("::atlex")],
            _ => Vec::new(),
        };
        // Files are written by threads of their own as they are rendered (not with `--check`,
        // which only compares), so the file system's latency overlaps the rendering; what is
        // left to write when rendering ends is the `write` phase of `--timings`. Creating a
        // file is a few hundred µs of metadata work on this machine's disk, which overlaps well
        // across threads ([`WRITERS`]).
        let (sender, receiver) = std::sync::mpsc::channel::<atlex_codegen::GeneratedFile>();
        let receiver = std::sync::Mutex::new(receiver);
        let (generated, streamed, writing) = std::thread::scope(|scope| -> Result<_> {
            let out_dir = &job.out;
            let writers: Vec<_> = if args.check {
                Vec::new()
            } else {
                (0..WRITERS)
                    .map(|_| {
                        let receiver = &receiver;
                        scope.spawn(move || -> Result<BTreeMap<PathBuf, bool>> {
                            let mut done = BTreeMap::new();
                            loop {
                                let next = receiver
                                    .lock()
                                    .map_err(|_| Error::new("a file writer panicked"))?
                                    .recv();
                                let Ok(file) = next else { return Ok(done) };
                                let path = out_dir.join(&file.path);
                                let changed = ensure_file(&path, &file.contents, false)?;
                                done.insert(path, changed);
                            }
                        })
                    })
                    .collect()
            };
            let send = move |file: &atlex_codegen::GeneratedFile| {
                // A writer that stopped on an error reports it when joined.
                let _ = sender.send(file.clone());
            };
            let sink: Option<&atlex_codegen::FileSink<'_>> = if writers.is_empty() {
                None
            } else {
                Some(&send)
            };
            let generated = match &official {
                Some(loaded) if job.lexicons == official_dir => atlex_codegen::generate_streaming(
                    &loaded.doc_set(&job.config.root),
                    &external,
                    &job.config,
                    sink,
                )
                .map_err(|e| Error::new(e.to_string()))
                .map(|generated| JobOutput {
                    generated,
                    modules: loaded.docs.len(),
                    load: atlex_codegen::Timings::default(),
                }),
                _ => generate_collected(root, job, &external, args.skip_invalid, sink, out),
            };
            drop(send);
            let writing = Instant::now();
            let mut streamed = BTreeMap::new();
            let mut failed = None;
            for handle in writers {
                match handle.join() {
                    Ok(Ok(done)) => streamed.extend(done),
                    Ok(Err(error)) => failed = Some(error),
                    Err(_) => {
                        failed = Some(Error::new("a thread writing generated files panicked"))
                    }
                }
            }
            if let Some(error) = failed {
                return Err(error);
            }
            Ok((generated?, streamed, writing))
        })?;
        let docs = generated.modules;
        let load = generated.load;
        let generated = generated.generated;
        let before = stale.len();
        write_files(
            &job.out,
            &generated.files,
            args.check,
            &streamed,
            &mut stale,
        )?;
        let written = writing.elapsed();
        if let Some(manifest) = &job.features_manifest {
            let text = std::fs::read_to_string(manifest)
                .context(|| format!("reading {}", manifest.display()))?;
            let updated = replace_features(&text, &features_block(&generated.features))
                .ok_or_else(|| {
                    Error::new(format!(
                        "{} has no `{FEATURES_BEGIN}` … `{FEATURES_END}` block in [features]",
                        manifest.display()
                    ))
                })?;
            if ensure_file(manifest, &updated, args.check)? {
                stale.push(manifest.clone());
            }
        }
        summary.push(format!(
            "{} lexicons → {} files in {} ({} changed)",
            docs,
            generated.files.len(),
            display_relative(root, &job.out),
            stale.len() - before
        ));
        if args.timings {
            summary.push(phase_line(&load, &generated.timings, written));
        }
    }
    let elapsed = started.elapsed();
    if args.check && !stale.is_empty() {
        let list: Vec<String> = stale
            .iter()
            .map(|p| format!("  {}", display_relative(root, p)))
            .collect();
        return Err(Error::new(format!(
            "generated code is stale ({} file(s)); run `cargo xtask codegen{}` and commit the result:\n{}",
            stale.len(),
            reproduce_args(args),
            list.join("\n")
        )));
    }
    let verb = if args.check { "fresh" } else { "written" };
    let _ = writeln!(out, "codegen ({verb}, {elapsed:.2?}):");
    for line in summary {
        let _ = writeln!(out, "  {line}");
    }
    Ok(())
}

/// How many threads write generated files while the rest are rendered.
const WRITERS: usize = 4;

/// Writes (or with `check`, compares) `files` under `out_dir`, except those already written
/// while rendering (`streamed`: path → whether it changed), and removes the generated files
/// no longer produced. Every changed or removed path goes to `stale`, in `files` order.
fn write_files(
    out_dir: &Path,
    files: &[atlex_codegen::GeneratedFile],
    check: bool,
    streamed: &BTreeMap<PathBuf, bool>,
    stale: &mut Vec<PathBuf>,
) -> Result<()> {
    let mut produced = BTreeSet::new();
    for file in files {
        let path = out_dir.join(&file.path);
        produced.insert(path.clone());
        let changed = match streamed.get(&path) {
            Some(changed) => *changed,
            None => ensure_file(&path, &file.contents, check)?,
        };
        if changed {
            stale.push(path);
        }
    }
    for path in rust_files(out_dir)? {
        if !produced.contains(&path) {
            stale.push(path.clone());
            if !check {
                std::fs::remove_file(&path)
                    .context(|| format!("removing stale generated file {}", path.display()))?;
            }
        }
    }
    if !check {
        remove_empty_dirs(out_dir)?;
    }
    Ok(())
}

fn resolve(root: &Path, dir: &Path) -> PathBuf {
    if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(dir))
            .unwrap_or_else(|_| root.join(dir))
    }
}

fn display_relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn reproduce_args(args: &CodegenArgs) -> String {
    let mut s = String::new();
    if let Some(dir) = &args.lexicons {
        s.push_str(&format!(" --lexicons {}", dir.display()));
    }
    if let Some(dir) = &args.out {
        s.push_str(&format!(" --out {}", dir.display()));
    }
    if let Some(root) = &args.root {
        s.push_str(&format!(" --root {root}"));
    }
    if args.no_official {
        s.push_str(" --no-official");
    }
    if args.single_file {
        s.push_str(" --single-file");
    }
    if args.skip_invalid {
        s.push_str(" --skip-invalid");
    }
    if args.timings {
        s.push_str(" --timings");
    }
    s
}

/// `  phases: parse 1 ms, check …, write 5 ms` (milliseconds, rounded).
fn phase_line(
    load: &atlex_codegen::Timings,
    generated: &atlex_codegen::Timings,
    write: std::time::Duration,
) -> String {
    let ms = |d: std::time::Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    format!(
        "  phases: parse {}, check {}, prune {}, lower {}, render {}, write {}",
        ms(load.parse),
        ms(load.check),
        ms(generated.prune),
        ms(generated.lower),
        ms(generated.render),
        ms(write)
    )
}

/// What one job generated, and from how many documents.
struct JobOutput {
    generated: atlex_codegen::Generated,
    modules: usize,
    /// Reading, parsing and checking (the generator's own phases are in `generated`).
    load: atlex_codegen::Timings,
}

/// Collects every problem of a job's lexicons and generates what is valid. Strict (without
/// `--skip-invalid`): any problem fails, naming all of them. Otherwise the problems are printed,
/// the rest is generated, and the defs left out are listed with their cause.
fn generate_collected(
    root: &Path,
    job: &Job,
    external: &[DocSet<'_>],
    skip_invalid: bool,
    sink: Option<&atlex_codegen::FileSink<'_>>,
    out: &mut dyn Write,
) -> Result<JobOutput> {
    let shown = display_relative(root, &job.lexicons);
    let collected = atlex_codegen::collect_lexicons(&job.lexicons)
        .map_err(|e| Error::new(format!("lexicons under {shown}: {e}")))?;
    for warning in &collected.loaded.warnings {
        let _ = writeln!(out, "{warning}");
    }
    // Strict: files are streamed to the writer only when there is no problem at all (the run
    // fails on any, and must not leave part of a tree behind).
    let sink = if skip_invalid || collected.errors.is_empty() {
        sink
    } else {
        None
    };
    let result = atlex_codegen::generate_valid_streaming(
        &collected.loaded.doc_set(&job.config.root),
        external,
        &job.config,
        &collected.pruned,
        sink,
        !skip_invalid,
    );
    let result = match result {
        Ok(result) => result,
        Err(atlex_codegen::GenerateError::Lexicon(mut problems)) => {
            let mut all = collected.errors;
            all.append(&mut problems);
            return Err(problems_error(&shown, &all));
        }
        Err(e) => return Err(Error::new(format!("lexicons under {shown}: {e}"))),
    };
    let mut errors = collected.errors;
    errors.extend(result.errors);
    if !skip_invalid {
        if errors.is_empty() {
            return Ok(JobOutput {
                modules: collected.loaded.docs.len(),
                generated: result.generated,
                load: collected.timings,
            });
        }
        return Err(problems_error(&shown, &errors));
    }
    for problem in &errors {
        let _ = writeln!(out, "error: {problem}");
    }
    let mut pruned = collected.pruned;
    pruned.extend(result.pruned);
    let left_docs: BTreeSet<&str> = pruned
        .iter()
        .filter(|p| p.def.is_none())
        .filter_map(|p| p.nsid.as_deref())
        .collect();
    let kept = collected
        .loaded
        .docs
        .iter()
        .filter(|d| !left_docs.contains(d.doc.id.as_str()))
        .count();
    if pruned.is_empty() {
        let _ = writeln!(out, "--skip-invalid: nothing left out");
    } else {
        let defs = pruned.iter().filter(|p| p.def.is_some()).count();
        let files = pruned.len() - defs;
        let _ = writeln!(
            out,
            "--skip-invalid: {} problem(s); left out {defs} def(s) and {files} file(s) of {shown}:",
            errors.len()
        );
        for entry in &pruned {
            let _ = writeln!(out, "  {entry}");
        }
    }
    Ok(JobOutput {
        modules: kept,
        generated: result.generated,
        load: collected.timings,
    })
}

fn problems_error(shown: &str, problems: &[impl std::fmt::Display]) -> Error {
    let mut text = format!(
        "{} problem(s) in the lexicons under {shown} (`--skip-invalid` generates the rest):",
        problems.len()
    );
    for problem in problems {
        text.push_str(&format!("\n  {problem}"));
    }
    Error::new(text)
}

/// Loads a folder of lexicons and applies the schema checks; warnings are printed.
fn load_checked(dir: &Path, out: &mut dyn Write) -> Result<atlex_codegen::Loaded> {
    let loaded = atlex_codegen::load_lexicons(dir)
        .map_err(|e| Error::new(format!("lexicons under {}: {e}", dir.display())))?;
    for warning in &loaded.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    Ok(loaded)
}

/// Writes `contents` to `path` when it differs (CRLF-insensitive). Returns whether it differed.
pub fn ensure_file(path: &Path, contents: &str, check: bool) -> Result<bool> {
    let current = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::new(format!("reading {}: {e}", path.display()))),
    };
    let normalised = |s: &str| s.replace("\r\n", "\n");
    if current.as_deref().map(normalised).as_deref() == Some(contents) {
        return Ok(false);
    }
    if !check {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(path, contents).context(|| format!("writing {}", path.display()))?;
    }
    Ok(true)
}

fn rust_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if !dir.is_dir() {
        return Ok(files);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let entries =
            std::fs::read_dir(&current).context(|| format!("listing {}", current.display()))?;
        for entry in entries {
            let entry = entry.context(|| format!("listing {}", current.display()))?;
            let path = entry.path();
            let kind = entry
                .file_type()
                .context(|| format!("inspecting {}", path.display()))?;
            if kind.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn remove_empty_dirs(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let entry = entry.context(|| format!("listing {}", dir.display()))?;
        let path = entry.path();
        if path.is_dir() {
            remove_empty_dirs(&path)?;
            let empty = std::fs::read_dir(&path)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            if empty {
                std::fs::remove_dir(&path).context(|| format!("removing {}", path.display()))?;
            }
        }
    }
    Ok(())
}

fn features_block(features: &std::collections::BTreeMap<String, BTreeSet<String>>) -> String {
    let mut block = String::new();
    for (feature, deps) in features {
        let deps: Vec<String> = deps.iter().map(|d| format!("{d:?}")).collect();
        block.push_str(&format!("{feature} = [{}]\n", deps.join(", ")));
    }
    let all: Vec<String> = features.keys().map(|f| format!("{f:?}")).collect();
    block.push_str("# Every namespace.\n");
    block.push_str(&format!("full = [{}]\n", all.join(", ")));
    block
}

/// Replaces the text between the feature markers; `None` when the markers are missing.
fn replace_features(manifest: &str, block: &str) -> Option<String> {
    let begin = manifest.find(FEATURES_BEGIN)?;
    let after_begin = begin + FEATURES_BEGIN.len();
    let end = after_begin + manifest[after_begin..].find(FEATURES_END)?;
    Some(format!(
        "{}\n{}{}",
        &manifest[..after_begin],
        block,
        &manifest[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_replaced_between_markers() {
        let manifest = format!(
            "[features]\ndefault = []\n{FEATURES_BEGIN}\nold = []\n{FEATURES_END}\n\n[deps]\n"
        );
        let mut features = std::collections::BTreeMap::new();
        features.insert("app-bsky".to_owned(), BTreeSet::new());
        features.insert(
            "chat-bsky".to_owned(),
            ["app-bsky".to_owned()].into_iter().collect(),
        );
        let updated = replace_features(&manifest, &features_block(&features)).unwrap();
        assert!(updated.contains("chat-bsky = [\"app-bsky\"]\n"));
        assert!(updated.contains("full = [\"app-bsky\", \"chat-bsky\"]\n"));
        assert!(!updated.contains("old = []"));
        assert!(updated.ends_with(&format!("{FEATURES_END}\n\n[deps]\n")));
        assert_eq!(replace_features("[features]\n", "x"), None);
    }

    /// A valid document that refers to a broken one, and the broken one.
    fn broken_set(dir: &Path) {
        std::fs::write(
            dir.join("a.json"),
            r##"{"lexicon":1,"id":"com.example.a","defs":{
                "keep":{"type":"object","properties":{"n":{"type":"integer"}}},
                "uses":{"type":"object","properties":{"b":{"type":"ref","ref":"com.example.b#bad"}}}}}"##,
        )
        .unwrap();
        std::fs::write(
            dir.join("b.json"),
            r#"{"lexicon":1,"id":"com.example.b","defs":{
                "bad":{"type":"integer","minimum":5,"maximum":1},
                "ok":{"type":"token"}}}"#,
        )
        .unwrap();
        std::fs::write(dir.join("c.json"), "{ not json").unwrap();
    }

    #[test]
    fn strict_fails_naming_every_problem_and_skip_invalid_generates_the_rest() {
        let root = tempfile::tempdir().unwrap();
        let lexicons = root.path().join("lex");
        std::fs::create_dir_all(&lexicons).unwrap();
        broken_set(&lexicons);
        let mut args = CodegenArgs {
            lexicons: Some(lexicons.clone()),
            out: Some(root.path().join("out")),
            no_official: true,
            single_file: true,
            ..CodegenArgs::default()
        };
        let auto = AutoSync::from_env(root.path());
        let mut out = Vec::new();
        let error = run_with(root.path(), &args, &auto, &mut out)
            .unwrap_err()
            .to_string();
        assert!(error.contains("2 problem(s) in the lexicons"), "{error}");
        assert!(
            error.contains("b.json: com.example.b#bad: minimum (5) is greater than maximum (1)"),
            "{error}"
        );
        assert!(
            error.contains("c.json: line 1 column 3: invalid JSON"),
            "{error}"
        );
        assert!(!root.path().join("out").exists(), "strict mode wrote files");

        args.skip_invalid = true;
        let mut out = Vec::new();
        run_with(root.path(), &args, &auto, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("--skip-invalid: 2 problem(s); left out 2 def(s) and 1 file(s)"),
            "{text}"
        );
        assert!(
            text.contains("com.example.b#bad: left out: minimum (5)"),
            "{text}"
        );
        assert!(
            text.contains(
                "com.example.a#uses: properties.b.ref: left out: refers to com.example.b#bad, which \
                 was left out"
            ),
            "{text}"
        );
        assert!(text.contains("c.json: file left out: line 1"), "{text}");
        let lib = std::fs::read_to_string(root.path().join("out/lib.rs")).unwrap();
        assert!(lib.contains("pub struct Keep"), "{lib}");
        assert!(lib.contains("pub const OK"), "{lib}");
        assert!(!lib.contains("Uses"), "{lib}");
    }

    #[test]
    fn ensure_file_writes_only_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b.rs");
        assert!(ensure_file(&path, "x\n", true).unwrap());
        assert!(!path.exists());
        assert!(ensure_file(&path, "x\n", false).unwrap());
        assert!(!ensure_file(&path, "x\n", false).unwrap());
        std::fs::write(&path, "x\r\n").unwrap();
        assert!(!ensure_file(&path, "x\n", true).unwrap());
    }
}
