//! Where the tests' outside data lives, and what happens when it is missing.
//!
//! * The official interop vectors: `$ATLEX_INTEROP_DIR`, else `<repo>/../shared/interop`
//!   (the layout of this workplace and of CI, which sets the variable anyway).
//! * The official lexicons: `$ATLEX_LEXICONS_DIR`, else `<repo>/lexicons/official/`
//!   (written by `cargo xtask lexicons sync`).
//!
//! When the data is missing, a test **fails under `CI=true`** and otherwise prints a skip note
//! and returns early (the helpers return `None`).

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

/// Fails (under CI) or prints a skip note (otherwise) for missing data.
fn missing(what: &str, hint: &str) {
    assert!(!is_ci(), "{what} (CI=true, so this fails); {hint}");
    eprintln!("skipping: {what}; {hint}");
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
        "run `cargo xtask lexicons sync --from ../shared/lexicons` or set ATLEX_LEXICONS_DIR",
    );
    None
}
