//! Helpers shared by the lexicon integration tests: reading the `[{name, …}]` case files (the
//! folders come from `atlex_tests::data`).

#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;

use serde_json::Value;

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
