//! Sanity checks of the real-record fixtures in `tests/fixtures/records/` (written by
//! `tests/pds/make-fixtures.mjs`): every file has the expected shape, blobs look like blobs,
//! and facet byte ranges fall on the text they annotate. Guards against a regeneration that
//! silently lost record types or wrote something else.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

const PAGE_FILE: &str = "listRecords-app.bsky.feed.post.json";

/// Collections the fixture script writes; a regeneration must keep all of them.
const EXPECTED: &[&str] = &[
    "app.bsky.actor.contentVisibilityDeclaration",
    "app.bsky.actor.profile",
    "app.bsky.actor.status",
    "app.bsky.feed.generator",
    "app.bsky.feed.like",
    "app.bsky.feed.post",
    "app.bsky.feed.postgate",
    "app.bsky.feed.repost",
    "app.bsky.feed.threadgate",
    "app.bsky.graph.block",
    "app.bsky.graph.follow",
    "app.bsky.graph.list",
    "app.bsky.graph.listblock",
    "app.bsky.graph.listitem",
    "app.bsky.graph.starterpack",
    "app.bsky.graph.verification",
    "app.bsky.labeler.service",
    "app.bsky.notification.declaration",
    "chat.bsky.actor.declaration",
];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/records")
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("{}: cannot read: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: not JSON: {err}", path.display()))
}

fn collections() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir()).expect("tests/fixtures/records exists") {
        let path = entry.expect("directory entry").path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(collection) = name.strip_suffix(".json")
            && name != PAGE_FILE
        {
            out.push((collection.to_owned(), path.clone()));
        }
    }
    out.sort();
    out
}

/// Calls `f(path, object)` for every object nested anywhere in `value`.
fn walk<'a>(value: &'a Value, path: &mut Vec<String>, f: &mut dyn FnMut(&[String], &'a Value)) {
    match value {
        Value::Object(map) => {
            f(path, value);
            for (key, child) in map {
                path.push(key.clone());
                walk(child, path, f);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(i.to_string());
                walk(child, path, f);
                path.pop();
            }
        }
        _ => {}
    }
}

fn check_blobs(file: &str, value: &Value, failures: &mut Vec<String>) {
    walk(value, &mut Vec::new(), &mut |path, obj| {
        if obj.get("$type").and_then(Value::as_str) != Some("blob") {
            return;
        }
        let link = obj.pointer("/ref/$link").and_then(Value::as_str);
        let mime = obj.get("mimeType").and_then(Value::as_str);
        let size = obj.get("size").and_then(Value::as_u64);
        if !(link.is_some_and(|l| l.starts_with("bafkrei"))
            && mime.is_some_and(|m| m.contains('/'))
            && size.is_some_and(|s| s > 0))
        {
            failures.push(format!("{file} /{}: malformed blob {obj}", path.join("/")));
        }
    });
}

/// Checks `facets` against `text` (posts) and `descriptionFacets` against `description`.
fn check_facets(file: &str, record: &Value, failures: &mut Vec<String>) {
    for (text_key, facets_key) in [("text", "facets"), ("description", "descriptionFacets")] {
        let Some(facets) = record.get(facets_key).and_then(Value::as_array) else {
            continue;
        };
        let text = record.get(text_key).and_then(Value::as_str).unwrap_or("");
        for facet in facets {
            let start = facet.pointer("/index/byteStart").and_then(Value::as_u64);
            let end = facet.pointer("/index/byteEnd").and_then(Value::as_u64);
            let (Some(start), Some(end)) = (start, end) else {
                failures.push(format!("{file}: facet without a byte range: {facet}"));
                continue;
            };
            let (start, end) = (start as usize, end as usize);
            let Some(slice) = text.get(start..end) else {
                failures.push(format!(
                    "{file}: facet {start}..{end} is not a char-aligned range of {text:?}"
                ));
                continue;
            };
            for feature in facet["features"].as_array().into_iter().flatten() {
                let ok = match feature["$type"].as_str() {
                    Some("app.bsky.richtext.facet#mention") => slice.starts_with('@'),
                    Some("app.bsky.richtext.facet#tag") => feature["tag"]
                        .as_str()
                        .is_some_and(|t| slice == format!("#{t}")),
                    Some("app.bsky.richtext.facet#link") => !slice.is_empty(),
                    _ => false,
                };
                if !ok {
                    failures.push(format!("{file}: facet feature {feature} on {slice:?}"));
                }
            }
        }
    }
}

#[test]
fn every_expected_collection_has_a_fixture() {
    let have: BTreeSet<String> = collections().into_iter().map(|(c, _)| c).collect();
    let missing: Vec<&&str> = EXPECTED.iter().filter(|c| !have.contains(**c)).collect();
    assert!(missing.is_empty(), "missing fixture files for {missing:?}");
}

#[test]
fn records_have_their_collection_type_valid_blobs_and_facets() {
    let mut failures = Vec::new();
    let mut count = 0;
    for (collection, path) in collections() {
        let file = format!("{collection}.json");
        let Some(records) = read(&path).as_array().cloned() else {
            failures.push(format!("{file}: not an array"));
            continue;
        };
        if records.is_empty() {
            failures.push(format!("{file}: empty"));
        }
        for record in &records {
            count += 1;
            if record["$type"].as_str() != Some(collection.as_str()) {
                failures.push(format!("{file}: record with $type {}", record["$type"]));
            }
            check_blobs(&file, record, &mut failures);
            check_facets(&file, record, &mut failures);
        }
    }
    assert!(count >= 50, "only {count} records in all the fixtures");
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn posts_cover_every_embed_type() {
    let posts = read(&dir().join("app.bsky.feed.post.json"));
    let embeds: BTreeSet<&str> = posts
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.pointer("/embed/$type").and_then(Value::as_str))
        .collect();
    for embed in [
        "app.bsky.embed.images",
        "app.bsky.embed.external",
        "app.bsky.embed.record",
        "app.bsky.embed.recordWithMedia",
        "app.bsky.embed.video",
        "app.bsky.embed.gallery",
    ] {
        assert!(
            embeds.contains(embed),
            "no post with a {embed} embed (have {embeds:?})"
        );
    }
}

#[test]
fn list_records_page_has_100_posts_and_a_cursor() {
    let page = read(&dir().join(PAGE_FILE));
    let records = page["records"].as_array().expect("records array");
    assert_eq!(records.len(), 100);
    assert!(page["cursor"].is_string(), "no cursor");
    let mut failures = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let uri = record["uri"].as_str().unwrap_or("");
        if !(uri.starts_with("at://did:") && uri.contains("/app.bsky.feed.post/")) {
            failures.push(format!("record {i}: uri {uri:?}"));
        }
        if !record["cid"]
            .as_str()
            .is_some_and(|c| c.starts_with("bafyrei"))
        {
            failures.push(format!("record {i}: cid {}", record["cid"]));
        }
        if record["value"]["$type"].as_str() != Some("app.bsky.feed.post") {
            failures.push(format!(
                "record {i}: value $type {}",
                record["value"]["$type"]
            ));
        }
        check_blobs(PAGE_FILE, &record["value"], &mut failures);
        check_facets(PAGE_FILE, &record["value"], &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
