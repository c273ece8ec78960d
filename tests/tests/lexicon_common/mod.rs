//! Helpers shared by the lexicon integration tests: locating the interop vectors and the
//! official lexicons, and reading the `[{name, …}]` case files.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Whether the tests run under CI (`CI=true`), where missing data is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The workspace root (the parent of the `tests` package).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map_or(manifest.clone(), Path::to_path_buf)
}

/// The interop vector folder (`$ATLEX_INTEROP_DIR`, default `/work/shared/interop` outside CI),
/// or `None` after a skip note when it is missing outside CI. Under `CI=true` a missing folder
/// fails the test.
pub fn interop_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("ATLEX_INTEROP_DIR") {
        Some(d) => PathBuf::from(d),
        None if in_ci() => panic!("ATLEX_INTEROP_DIR must be set under CI=true"),
        None => PathBuf::from("/work/shared/interop"),
    };
    if dir.join("lexicon").is_dir() {
        return Some(dir);
    }
    assert!(
        !in_ci(),
        "interop vectors not found at {} (set ATLEX_INTEROP_DIR)",
        dir.display()
    );
    eprintln!(
        "skipping: interop vectors not found at {} (set ATLEX_INTEROP_DIR)",
        dir.display()
    );
    None
}

/// The official lexicons: `$ATLEX_LEXICONS_DIR` when set, else `<workspace>/lexicons/official/`.
/// `None` after a skip note when neither exists outside CI; under `CI=true` it fails.
pub fn official_lexicons_dir() -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = std::env::var_os("ATLEX_LEXICONS_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([workspace_root().join("lexicons").join("official")])
        .collect();
    if let Some(dir) = candidates.iter().find(|d| d.is_dir()) {
        return Some(dir.clone());
    }
    let tried: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
    assert!(
        !in_ci(),
        "official lexicons not found (tried {}); run `cargo xtask lexicons sync` or set \
         ATLEX_LEXICONS_DIR",
        tried.join(", ")
    );
    eprintln!(
        "skipping: official lexicons not found (tried {}); run \
         `cargo xtask lexicons sync --from ../shared/lexicons` or set ATLEX_LEXICONS_DIR",
        tried.join(", ")
    );
    None
}

/// Reads a JSON file.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One case of a `[{name, …}]` vector file.
pub struct Case {
    /// `name` (or `note`), made unique with `#n` when repeated.
    pub name: String,
    /// The whole case object.
    pub value: Value,
}

/// Reads a vector file that is a JSON array of named cases.
pub fn cases(path: &Path) -> Vec<Case> {
    let Value::Array(items) = read_json(path) else {
        panic!("{} is not a JSON array", path.display())
    };
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    items
        .into_iter()
        .map(|value| {
            let base = value
                .get("name")
                .or_else(|| value.get("note"))
                .and_then(Value::as_str)
                .unwrap_or("<unnamed>")
                .to_owned();
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            let name = if *n == 1 {
                base
            } else {
                format!("{base} #{n}")
            };
            Case { name, value }
        })
        .collect()
}

/// Fails with every collected failure, one per line.
pub fn report(what: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} {what} failure(s):\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}
