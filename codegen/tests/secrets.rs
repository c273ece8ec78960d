//! Every official lexicon field whose name looks like a credential is covered by the
//! generator's rule (`atlex_codegen::secrets`) or reviewed as public.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atlex_codegen::secrets::{NOT_SECRET, REVIEWED_PUBLIC, is_secret, looks_secret};

fn collect(value: &serde_json::Value, id: &str, names: &mut BTreeMap<String, Vec<String>>) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(properties)) = map.get("properties") {
                for name in properties.keys() {
                    names.entry(name.clone()).or_default().push(id.to_owned());
                }
            }
            for value in map.values() {
                collect(value, id, names);
            }
        }
        serde_json::Value::Array(items) => {
            for value in items {
                collect(value, id, names);
            }
        }
        _ => {}
    }
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "json") {
            out.push(path);
        }
    }
}

#[test]
fn secret_fields_cover_official_lexicons() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lexicons/official");
    if !dir.is_dir() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "lexicons/official is missing (run `cargo xtask lexicons sync`)"
        );
        eprintln!("skipped: lexicons/official is missing (run `cargo xtask lexicons sync`)");
        return;
    }
    let mut files = Vec::new();
    json_files(&dir, &mut files);
    assert!(files.len() > 100, "only {} lexicons found", files.len());
    let mut names = BTreeMap::new();
    for file in &files {
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let id = doc["id"].as_str().unwrap_or("?").to_owned();
        collect(&doc, &id, &mut names);
    }
    let uncovered: Vec<String> = names
        .iter()
        .filter(|(name, _)| looks_secret(name))
        .filter(|(name, _)| {
            !is_secret(name)
                && !REVIEWED_PUBLIC.contains(&name.as_str())
                && !NOT_SECRET.contains(&name.as_str())
        })
        .map(|(name, ids)| format!("{name} (in {})", ids.join(", ")))
        .collect();
    assert!(
        uncovered.is_empty(),
        "official fields that look like credentials but are neither secret by the rule in \
         codegen/src/secrets.rs nor in REVIEWED_PUBLIC: {uncovered:#?}"
    );
    // The credentials the issue names are caught.
    for name in [
        "password",
        "accessJwt",
        "refreshJwt",
        "token",
        "authFactorToken",
        "inviteCode",
        "verificationCode",
        "code",
        "codes",
    ] {
        assert!(
            names.contains_key(name),
            "{name} no longer in the official lexicons"
        );
        assert!(is_secret(name), "{name}");
    }
    // Every reviewed name still exists (a stale entry would hide nothing, but mislead).
    for name in REVIEWED_PUBLIC.iter().chain(NOT_SECRET) {
        assert!(
            names.contains_key(*name),
            "{name} is reviewed but not in any lexicon"
        );
    }
}
