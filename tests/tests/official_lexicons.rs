//! The 402 official lexicons (`<workspace>/lexicons/official/`, put there by
//! `cargo xtask lexicons sync`, or `$ATLEX_LEXICONS_DIR`) load, pass the schema checks and
//! `Catalog::check()`, and round-trip to an equal JSON value.

mod lexicon_common;

use atlex_lexicon::{Catalog, check_document, load_dir};
use atlex_tests::data::official_lexicons_dir;
use lexicon_common::{read_json, report};

/// The number of lexicon files at the pinned upstream commit.
const OFFICIAL_COUNT: usize = 402;

#[test]
fn official_lexicons_load_check_and_round_trip() {
    let Some(dir) = official_lexicons_dir() else {
        return;
    };
    let docs = load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        docs.len(),
        OFFICIAL_COUNT,
        "lexicon count in {}",
        dir.display()
    );

    let mut failures = Vec::new();
    for loaded in &docs {
        let diags = check_document(&loaded.doc, Some(&loaded.file));
        for p in diags.problems() {
            failures.push(p.to_string());
        }
        let original = read_json(&loaded.file);
        if loaded.doc.to_json() != original {
            failures.push(format!("{}: round trip differs", loaded.file.display()));
        }
    }

    let catalog = Catalog::from_loaded(docs).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(catalog.len(), OFFICIAL_COUNT);
    // Cross-document checks: every ref and union member resolves inside the folder, to a
    // definition of an allowed type. No warnings either.
    for p in catalog.check().problems() {
        failures.push(format!("catalog: {p}"));
    }
    report("official lexicon", &failures);
}

#[test]
fn every_official_ref_resolves() {
    let Some(dir) = official_lexicons_dir() else {
        return;
    };
    let catalog = Catalog::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    let mut count = 0;
    let mut failures = Vec::new();
    for doc in catalog.docs() {
        for u in doc.refs() {
            count += 1;
            if let Err(e) = catalog.resolve(u.reference, &doc.id) {
                failures.push(format!("{}#{} {}: {e}", doc.id, u.def, u.path));
            }
        }
    }
    // 583 `ref` schemas plus the union members (lexicon-rules.md §6).
    assert!(count > 900, "only {count} references found");
    report("ref resolution", &failures);
}

#[test]
fn official_records_validate_sample_data() {
    let Some(dir) = official_lexicons_dir() else {
        return;
    };
    let catalog = Catalog::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    let post = serde_json::json!({
        "$type": "app.bsky.feed.post",
        "text": "hello 👋",
        "createdAt": "2024-05-01T12:00:00.000Z",
        "langs": ["en"],
        "embed": {
            "$type": "app.bsky.embed.images",
            "images": [{
                "alt": "a cat",
                "image": {
                    "$type": "blob",
                    "ref": {"$link": "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"},
                    "mimeType": "image/jpeg",
                    "size": 10000
                }
            }]
        },
        "reply": {
            "root": {"uri": "at://did:plc:abc/app.bsky.feed.post/3k", "cid": "bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq"},
            "parent": {"uri": "at://did:plc:abc/app.bsky.feed.post/3k", "cid": "bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq"}
        }
    });
    catalog
        .validate_record("app.bsky.feed.post", &post)
        .unwrap_or_else(|e| panic!("{e}"));

    let mut bad = post.clone();
    bad["text"] = serde_json::json!("x".repeat(3001));
    bad["embed"]["images"][0]["image"]["mimeType"] = serde_json::json!("text/plain");
    bad["embed"]["images"][0]
        .as_object_mut()
        .map(|o| o.remove("alt"));
    bad["langs"] = serde_json::json!(["en", "not a language!"]);
    let errs = catalog
        .validate_record("app.bsky.feed.post", &bad)
        .unwrap_err();
    let got: Vec<(String, &str)> = errs
        .errors()
        .iter()
        .map(|e| (e.path.clone(), e.constraint.name()))
        .collect();
    for (path, rule) in [
        ("$.text", "maxLength"),
        ("$.text", "maxGraphemes"),
        ("$.embed.images[0].image", "accept"),
        ("$.embed.images[0].alt", "required"),
        ("$.langs[1]", "format"),
    ] {
        assert!(
            errs.has(path, rule),
            "expected {rule} at {path}; got {got:?}"
        );
    }
    assert_eq!(errs.errors().len(), 5, "{errs}");
}
