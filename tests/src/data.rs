//! Where the tests' outside data lives, and what happens when it is missing.
//!
//! * The official interop vectors: `$ATLEX_INTEROP_DIR`, else `<repo>/../shared/interop`
//!   (the layout of this workplace and of CI, which sets the variable anyway).
//! * The official lexicons: `$ATLEX_LEXICONS_DIR`, else `<repo>/lexicons/official/`
//!   (written by `cargo xtask lexicons sync`).
//!
//! When the data is missing, a test **fails under `CI=true`** and otherwise prints a skip note
//! and returns early (the helpers return `None`). The skip is also noted, by test binary and
//! test name, in the file named by `ATLEX_SKIP_REPORT` when it is set ([`note_skip`]), which
//! `cargo xtask test` reads to list every skipped test in its summary.

use std::path::{Path, PathBuf};

/// Whether tests run under CI (`CI=true` or `CI=1`), where missing data is a failure.
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The repository root (the parent of the `tests` package).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map_or_else(|| manifest.clone(), Path::to_path_buf)
}

/// Env var: a file to which every skipped test appends one line (see [`note_skip`]).
pub const ENV_SKIP_REPORT: &str = "ATLEX_SKIP_REPORT";

/// Notes that the running test skips itself for `reason`: appends
/// `<binary>\t<test>\t<reason>` to the file named by `ATLEX_SKIP_REPORT`, when it is set. The
/// binary is the test executable's name without cargo's hash, the test the harness's name
/// for the current thread. Errors writing the note are ignored: it is a report, not a check.
pub fn note_skip(reason: &str) {
    use std::io::Write;
    let Some(report) = std::env::var_os(ENV_SKIP_REPORT).filter(|v| !v.is_empty()) else {
        return;
    };
    let binary = std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
        })
        .map(|stem| match stem.rsplit_once('-') {
            Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
            _ => stem,
        })
        .unwrap_or_else(|| "?".to_owned());
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("?");
    let one_line = |text: &str| text.replace(['\t', '\n', '\r'], " ");
    let line = format!(
        "{}\t{}\t{}\n",
        one_line(&binary),
        one_line(test),
        one_line(reason)
    );
    // One `write` of a short line to a file opened for appending: lines of tests running in
    // parallel (threads or processes) do not interleave.
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(report)
    {
        let _ = file.write_all(line.as_bytes());
    }
}

/// Fails (under CI) or prints a skip note (otherwise) for missing data.
fn missing(what: &str, hint: &str) {
    assert!(!is_ci(), "{what} (CI=true, so this fails); {hint}");
    eprintln!("skipping: {what}; {hint}");
    note_skip(&format!("{what}; {hint}"));
}

/// The interop vector folder, or `None` after a skip note.
pub fn interop_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("ATLEX_INTEROP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/interop"));
    if dir.join("syntax").is_dir() && dir.join("lexicon").is_dir() {
        return Some(dir);
    }
    missing(
        &format!("interop vectors not found at {}", dir.display()),
        "set ATLEX_INTEROP_DIR to the atproto-interop-tests folder",
    );
    None
}

/// The official lexicons, or `None` after a skip note.
pub fn official_lexicons_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("ATLEX_LEXICONS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("lexicons/official"));
    if dir.is_dir() {
        return Some(dir);
    }
    missing(
        &format!("official lexicons not found at {}", dir.display()),
        "run `cargo xtask lexicons sync` (offline: `cargo xtask lexicons sync --from DIR`, e.g. \
         ../shared/lexicons) or set ATLEX_LEXICONS_DIR",
    );
    None
}
