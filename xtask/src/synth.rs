//! A deterministic synthetic lexicon collection, for measuring the generator at scale
//! (`cargo xtask lexicons synth`, and the `codegen-scale` benchmark).
//!
//! No community collection of thousands of lexicons is available offline, so this writes one
//! that looks like one: `count` documents spread over 40 authorities (`org.synth07.*`), each
//! with a few groups, in five shapes that repeat:
//!
//! * **defs** documents: a `view` and a `detail` object (strings with length limits, datetimes,
//!   DIDs, at-uris, arrays, optional blobs), a string enum with `knownValues`, two tokens, and a
//!   union of views from *other namespaces*;
//! * **records**: a `main` record (key `tid`, `literal:self` or `any`) with required and optional
//!   fields, refs to defs documents in other namespaces, a union, an inline array of refs and a
//!   `com.atproto.repo.strongRef`;
//! * **queries**: parameters (`limit` with a default, `cursor`, a DID), an output with a cursor
//!   and an array of views from another namespace (so it pages), declared errors;
//! * **procedures**: an input object with a strongRef and a union, an output ref, errors;
//! * **more defs** that refer to other defs documents (chains of refs across namespaces).
//!
//! Refs only point at defs the collection (or `com.atproto.repo.strongRef`) has, so the whole
//! set generates and compiles. The choices come from a fixed-seed xorshift generator, so the
//! same `count` always gives the same files.
//!
//! **How realistic.** [`Stats`] measures a collection the same way for both sides; the
//! `codegen-scale` benchmark prints it for this set and for the official lexicons (which the
//! community's lexicons imitate), and a test keeps this set in range. On 2,000 documents:
//! about 1.7 KB of pretty JSON per file (official: 1.8 KB mean, 1.1 KB median), 2.6 defs per
//! document (official 2.1), 4.2 refs (ref or union member) per document (official 2.4) and
//! 2.4 other NSIDs referred to per document (official 0.8), 8.4 object properties per
//! document (official 7.3). So it is about as large per file and *denser* in cross-namespace
//! refs than the official set, which is what stresses ref resolution, pruning and the
//! generated crate's type checking; and it has more records (a fifth of the documents, as in
//! app-specific namespaces) than the official set (6%).

use std::path::Path;

use serde_json::{Value, json};

use crate::error::{Context, Result};

/// Number of authorities the documents are spread over.
const AUTHORITIES: usize = 40;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next() % n as u64) as usize
    }
}

/// The NSID of document `i`.
fn nsid(i: usize) -> String {
    let authority = i % AUTHORITIES;
    let rest = i / AUTHORITIES;
    let group = rest % 6;
    let kind = ["defs", "post", "list", "create", "links"][i % 5];
    format!("org.synth{authority:02}.group{group}.{kind}{rest}")
}

/// The documents of a collection of `count`: (relative file path, JSON).
pub fn documents(count: usize) -> Vec<(String, Value)> {
    let mut rng = Rng(0x5eed_1e81_c0de_0001);
    // Defs documents (shape 0) are the targets of refs.
    let defs: Vec<usize> = (0..count).filter(|i| i % 5 == 0).collect();
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let id = nsid(i);
        // A defs document in another authority (falls back to its own for tiny sets).
        let mut other = |rng: &mut Rng| -> String {
            for _ in 0..4 {
                let j = defs[rng.below(defs.len())];
                if j % AUTHORITIES != i % AUTHORITIES || defs.len() == 1 {
                    return nsid(j);
                }
            }
            nsid(defs[rng.below(defs.len())])
        };
        let doc = match i % 5 {
            0 => defs_doc(&id, &mut rng, &mut other),
            1 => record_doc(&id, &mut rng, &mut other),
            2 => query_doc(&id, &mut rng, &mut other),
            3 => procedure_doc(&id, &mut rng, &mut other),
            _ => links_doc(&id, &mut rng, &mut other),
        };
        let path = format!("{}.json", id.replace('.', "/"));
        out.push((path, doc));
    }
    out
}

/// Writes the collection of `count` documents under `dir` (emptied first); returns the count.
pub fn write(dir: &Path, count: usize) -> Result<usize> {
    if std::fs::metadata(dir).is_ok() {
        std::fs::remove_dir_all(dir).context(|| format!("emptying {}", dir.display()))?;
    }
    let docs = documents(count);
    for (path, doc) in &docs {
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).context(|| format!("creating {}", parent.display()))?;
        }
        let text = serde_json::to_string_pretty(doc)
            .context(|| format!("serialising {}", file.display()))?;
        std::fs::write(&file, text + "\n").context(|| format!("writing {}", file.display()))?;
    }
    Ok(docs.len())
}

/// Size and ref density of a lexicon collection (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Documents.
    pub docs: usize,
    /// Mean file size (pretty JSON, as written), bytes.
    pub mean_bytes: f64,
    /// Mean number of defs per document.
    pub defs: f64,
    /// Mean number of refs per document (each `ref` and each union member).
    pub refs: f64,
    /// Mean number of *other* NSIDs a document refers to.
    pub external: f64,
    /// Mean number of object/params properties per document.
    pub properties: f64,
}

impl Stats {
    /// The statistics of documents (with their sizes in bytes).
    pub fn of<'a>(docs: impl IntoIterator<Item = (usize, &'a Value)>) -> Stats {
        fn walk(
            value: &Value,
            id: &str,
            refs: &mut usize,
            props: &mut usize,
            ext: &mut std::collections::BTreeSet<String>,
        ) {
            match value {
                Value::Object(map) => {
                    let mut targets: Vec<&str> = Vec::new();
                    match map.get("type").and_then(Value::as_str) {
                        Some("ref") => targets.extend(map.get("ref").and_then(Value::as_str)),
                        Some("union") => targets.extend(
                            map.get("refs")
                                .and_then(Value::as_array)
                                .into_iter()
                                .flatten()
                                .filter_map(Value::as_str),
                        ),
                        _ => {}
                    }
                    *refs += targets.len();
                    for target in targets {
                        let nsid = target.split('#').next().unwrap_or_default();
                        if !nsid.is_empty() && nsid != id {
                            ext.insert(nsid.to_owned());
                        }
                    }
                    if let Some(Value::Object(properties)) = map.get("properties") {
                        *props += properties.len();
                    }
                    for child in map.values() {
                        walk(child, id, refs, props, ext);
                    }
                }
                Value::Array(items) => {
                    for child in items {
                        walk(child, id, refs, props, ext);
                    }
                }
                _ => {}
            }
        }
        let (mut docs_n, mut bytes, mut defs, mut refs, mut ext, mut props) =
            (0usize, 0usize, 0usize, 0usize, 0usize, 0usize);
        for (size, doc) in docs {
            docs_n += 1;
            bytes += size;
            defs += doc
                .get("defs")
                .and_then(Value::as_object)
                .map_or(0, |d| d.len());
            let id = doc.get("id").and_then(Value::as_str).unwrap_or_default();
            let mut others = std::collections::BTreeSet::new();
            walk(doc, id, &mut refs, &mut props, &mut others);
            ext += others.len();
        }
        let n = docs_n.max(1) as f64;
        Stats {
            docs: docs_n,
            mean_bytes: bytes as f64 / n,
            defs: defs as f64 / n,
            refs: refs as f64 / n,
            external: ext as f64 / n,
            properties: props as f64 / n,
        }
    }

    /// The statistics of the `.json` files under `dir` (unreadable files are skipped).
    pub fn of_dir(dir: &Path) -> Stats {
        let mut files = Vec::new();
        collect_json(dir, &mut files);
        let docs: Vec<(usize, Value)> = files
            .iter()
            .filter_map(|file| {
                let bytes = std::fs::read(file).ok()?;
                Some((bytes.len(), serde_json::from_slice(&bytes).ok()?))
            })
            .collect();
        Stats::of(docs.iter().map(|(size, doc)| (*size, doc)))
    }

    /// One line: `N docs, X KB/file, D defs, R refs, E other NSIDs, P properties per doc`.
    pub fn describe(&self) -> String {
        format!(
            "{} docs, {:.2} KB/file, per doc: {:.1} defs, {:.1} refs, {:.1} other NSIDs, {:.1} properties",
            self.docs,
            self.mean_bytes / 1000.0,
            self.defs,
            self.refs,
            self.external,
            self.properties
        )
    }
}

fn collect_json(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_json(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "json") {
            out.push(path);
        }
    }
}

fn words(rng: &mut Rng) -> &'static str {
    const DESCRIPTIONS: &[&str] = &[
        "A short human-readable label.",
        "When this was created, as reported by the author.",
        "The account that owns this item.",
        "Free text; may contain facets in a later version.",
        "How many times this was seen.",
    ];
    DESCRIPTIONS[rng.below(DESCRIPTIONS.len())]
}

fn defs_doc(id: &str, rng: &mut Rng, other: &mut dyn FnMut(&mut Rng) -> String) -> Value {
    let a = other(rng);
    let b = other(rng);
    json!({
        "lexicon": 1,
        "id": id,
        "description": "Shared views of this namespace.",
        "defs": {
            "view": {
                "type": "object",
                "required": ["uri", "name", "createdAt"],
                "properties": {
                    "uri": { "type": "string", "format": "at-uri" },
                    "name": { "type": "string", "maxLength": 640, "maxGraphemes": 64, "description": words(rng) },
                    "createdAt": { "type": "string", "format": "datetime" },
                    "owner": { "type": "string", "format": "did" },
                    "count": { "type": "integer", "minimum": 0 },
                    "tags": { "type": "array", "maxLength": 8, "items": { "type": "string", "maxLength": 64 } },
                    "status": { "type": "ref", "ref": "#status" },
                    "image": { "type": "blob", "accept": ["image/png", "image/jpeg"], "maxSize": 1000000 }
                }
            },
            "detail": {
                "type": "object",
                "required": ["view"],
                "properties": {
                    "view": { "type": "ref", "ref": "#view" },
                    "related": { "type": "union", "refs": [format!("{a}#view"), format!("{b}#view")] },
                    "labels": { "type": "array", "items": { "type": "string", "knownValues": ["spam", "nsfw", "error", "other"] } },
                    "note": { "type": "string", "description": words(rng) }
                }
            },
            "status": {
                "type": "string",
                "knownValues": [format!("{id}#active"), format!("{id}#archived"), "draft"]
            },
            "active": { "type": "token", "description": "Live." },
            "archived": { "type": "token", "description": "Kept for reference." }
        }
    })
}

fn record_doc(id: &str, rng: &mut Rng, other: &mut dyn FnMut(&mut Rng) -> String) -> Value {
    let key = ["tid", "literal:self", "any"][rng.below(3)];
    let a = other(rng);
    let b = other(rng);
    json!({
        "lexicon": 1,
        "id": id,
        "defs": {
            "main": {
                "type": "record",
                "key": key,
                "description": "A record of this app.",
                "record": {
                    "type": "object",
                    "required": ["text", "createdAt"],
                    "properties": {
                        "text": { "type": "string", "maxLength": 3000, "maxGraphemes": 300, "description": words(rng) },
                        "createdAt": { "type": "string", "format": "datetime" },
                        "subject": { "type": "ref", "ref": "com.atproto.repo.strongRef" },
                        "about": { "type": "ref", "ref": format!("{a}#view") },
                        "embed": { "type": "union", "refs": [format!("{a}#detail"), format!("{b}#view"), "#extra"] },
                        "items": { "type": "array", "maxLength": 20, "items": { "type": "ref", "ref": format!("{b}#view") } },
                        "langs": { "type": "array", "maxLength": 3, "items": { "type": "string", "format": "language" } },
                        "visibility": { "type": "string", "enum": ["public", "unlisted", "private"] }
                    }
                }
            },
            "extra": {
                "type": "object",
                "properties": {
                    "score": { "type": "integer", "minimum": 0, "maximum": 100 },
                    "link": { "type": "string", "format": "uri" }
                }
            }
        }
    })
}

fn query_doc(id: &str, rng: &mut Rng, other: &mut dyn FnMut(&mut Rng) -> String) -> Value {
    let a = other(rng);
    json!({
        "lexicon": 1,
        "id": id,
        "defs": {
            "main": {
                "type": "query",
                "description": "Lists views, newest first.",
                "parameters": {
                    "type": "params",
                    "required": ["actor"],
                    "properties": {
                        "actor": { "type": "string", "format": "at-identifier" },
                        "limit": { "type": "integer", "minimum": 1, "maximum": 100, "default": 50 },
                        "cursor": { "type": "string" },
                        "sort": { "type": "string", "knownValues": ["new", "top"] }
                    }
                },
                "output": {
                    "encoding": "application/json",
                    "schema": {
                        "type": "object",
                        "required": ["items"],
                        "properties": {
                            "cursor": { "type": "string" },
                            "items": { "type": "array", "items": { "type": "ref", "ref": format!("{a}#view") } }
                        }
                    }
                },
                "errors": [{ "name": "NotFound" }, { "name": "BlockedActor", "description": words(rng) }]
            }
        }
    })
}

fn procedure_doc(id: &str, rng: &mut Rng, other: &mut dyn FnMut(&mut Rng) -> String) -> Value {
    let a = other(rng);
    let b = other(rng);
    json!({
        "lexicon": 1,
        "id": id,
        "defs": {
            "main": {
                "type": "procedure",
                "description": "Creates an item.",
                "input": {
                    "encoding": "application/json",
                    "schema": {
                        "type": "object",
                        "required": ["subject"],
                        "properties": {
                            "subject": { "type": "ref", "ref": "com.atproto.repo.strongRef" },
                            "target": { "type": "union", "refs": [format!("{a}#view"), format!("{b}#detail")] },
                            "reason": { "type": "string", "maxLength": 2000, "description": words(rng) },
                            "password": { "type": "string" }
                        }
                    }
                },
                "output": { "encoding": "application/json", "schema": { "type": "ref", "ref": "#result" } },
                "errors": [{ "name": "InvalidSubject" }, { "name": "RateLimited" }]
            },
            "result": {
                "type": "object",
                "required": ["uri", "cid"],
                "properties": {
                    "uri": { "type": "string", "format": "at-uri" },
                    "cid": { "type": "string", "format": "cid" },
                    "view": { "type": "ref", "ref": format!("{a}#detail") }
                }
            }
        }
    })
}

fn links_doc(id: &str, rng: &mut Rng, other: &mut dyn FnMut(&mut Rng) -> String) -> Value {
    let a = other(rng);
    let b = other(rng);
    let c = other(rng);
    json!({
        "lexicon": 1,
        "id": id,
        "defs": {
            "link": {
                "type": "object",
                "required": ["from", "to"],
                "properties": {
                    "from": { "type": "ref", "ref": format!("{a}#detail") },
                    "to": { "type": "ref", "ref": format!("{b}#view") },
                    "via": { "type": "array", "items": { "type": "union", "refs": [format!("{c}#view"), "#link"] } },
                    "weight": { "type": "integer", "enum": [1, 2, 3] },
                    "raw": { "type": "unknown" },
                    "bytes": { "type": "bytes", "maxLength": 64 },
                    "cid": { "type": "cid-link" }
                }
            },
            "kind": { "type": "string", "enum": ["follow", "mention", "quote", "error"], "description": words(rng) },
            "links": { "type": "array", "items": { "type": "ref", "ref": "#link" }, "maxLength": 50 }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_collection_is_deterministic_and_varied() {
        let first = documents(200);
        assert_eq!(first, documents(200));
        assert_eq!(first.len(), 200);
        let kinds: std::collections::BTreeSet<&str> = first
            .iter()
            .filter_map(|(_, doc)| doc["defs"]["main"]["type"].as_str())
            .collect();
        assert_eq!(
            kinds.into_iter().collect::<Vec<_>>(),
            ["procedure", "query", "record"]
        );
        let ids: std::collections::BTreeSet<&str> =
            first.iter().filter_map(|(_, d)| d["id"].as_str()).collect();
        assert_eq!(ids.len(), 200, "NSIDs are unique");
    }

    #[test]
    fn the_collection_is_about_as_large_as_real_lexicons_and_denser_in_refs() {
        let docs = documents(2000);
        let texts: Vec<(usize, &Value)> = docs
            .iter()
            .map(|(_, doc)| (serde_json::to_string_pretty(doc).unwrap().len() + 1, doc))
            .collect();
        let stats = Stats::of(texts);
        assert_eq!(stats.docs, 2000);
        // The official lexicons: 1.8 KB/file, 2.1 defs, 2.4 refs, 0.8 other NSIDs, 7.3
        // properties per document (see the module docs).
        assert!(
            (1200.0..2600.0).contains(&stats.mean_bytes),
            "{}",
            stats.describe()
        );
        assert!((1.5..4.0).contains(&stats.defs), "{}", stats.describe());
        assert!(stats.refs >= 2.4, "{}", stats.describe());
        assert!(stats.external >= 0.8, "{}", stats.describe());
        assert!(
            (5.0..12.0).contains(&stats.properties),
            "{}",
            stats.describe()
        );
    }

    #[test]
    fn every_document_is_valid_and_every_ref_resolves() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 150).unwrap();
        let collected = atlex_codegen::collect_lexicons(dir.path()).unwrap();
        assert!(collected.errors.is_empty(), "{:?}", collected.errors);
        let nsids: std::collections::BTreeSet<String> = collected
            .loaded
            .docs
            .iter()
            .map(|d| d.doc.id.clone())
            .collect();
        for loaded in &collected.loaded.docs {
            for r in loaded.doc.refs() {
                let (nsid, def) = r.reference.resolve(&loaded.doc.id);
                if nsid == "com.atproto.repo.strongRef" {
                    continue;
                }
                assert!(nsids.contains(nsid), "{} refers to {nsid}", loaded.doc.id);
                let target = collected
                    .loaded
                    .docs
                    .iter()
                    .find(|d| d.doc.id == nsid)
                    .unwrap();
                assert!(target.doc.defs.contains_key(def), "{nsid}#{def}");
            }
        }
    }
}
