//! Deterministic fuzz-style robustness tests for `atlex-lexicon`.
//!
//! Lexicon files (the official ones and the interop catalog) are truncated and mutated (byte
//! flips, deletions, insertions, key renames, value type swaps, `type` swaps) and fed to the
//! loader, the schema checks, the catalog and the validator; record data from the interop
//! vectors is mutated the same way and validated. Every call runs inside `catch_unwind`: a
//! panic fails the test and the report names the mutation and shows the input. Mutated inputs
//! are mostly rejected, and the test also asserts that.
//!
//! The generator is a seeded SplitMix64, so a run is reproducible; set `ATLEX_FUZZ_SEED` to try
//! other seeds and `ATLEX_FUZZ_ROUNDS` for more rounds per file.

mod lexicon_common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use atlex_lexicon::{Catalog, LexiconDoc, check_document, parse_bytes};
use atlex_tests::data::{interop_dir, official_lexicons_dir};
use lexicon_common::cases;
use serde_json::{Value, json};

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn seed() -> u64 {
    std::env::var("ATLEX_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0A71_E7C0_FFEE)
}

fn rounds(default: usize) -> usize {
    std::env::var("ATLEX_FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

const KEYS: &[&str] = &[
    "type",
    "properties",
    "items",
    "ref",
    "refs",
    "required",
    "nullable",
    "minLength",
    "maxLength",
    "minGraphemes",
    "maxGraphemes",
    "format",
    "key",
    "record",
    "defs",
    "id",
    "lexicon",
    "closed",
    "enum",
    "const",
    "default",
    "knownValues",
    "encoding",
    "schema",
    "message",
    "parameters",
    "input",
    "output",
    "errors",
    "permissions",
    "resource",
    "accept",
    "maxSize",
    "minimum",
    "maximum",
    "title:lang",
    "detail:lang",
    "lxm",
    "aud",
    "inheritAud",
    "collection",
    "action",
    "$type",
    "$bytes",
    "$link",
    "mimeType",
    "size",
    "cid",
    "",
    "#",
    "x",
];

const TYPES: &[&str] = &[
    "record",
    "query",
    "procedure",
    "subscription",
    "permission-set",
    "permission",
    "params",
    "token",
    "boolean",
    "integer",
    "string",
    "bytes",
    "cid-link",
    "blob",
    "array",
    "object",
    "ref",
    "union",
    "unknown",
    "null",
    "",
    "Object",
];

fn random_value(rng: &mut Rng) -> Value {
    match rng.below(22) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(0),
        3 => json!(-1),
        4 => json!(1.5),
        5 => json!(u64::MAX),
        6 => json!(i64::MIN),
        7 => json!(""),
        8 => json!("x"),
        9 => json!(*rng.pick(TYPES)),
        10 => json!(*rng.pick(&[
            "#main",
            "main",
            "#",
            "a.b.c#d",
            "tid",
            "literal:",
            "literal:..",
            "*/*",
            "image/*",
            "did:plc:x",
            "bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq",
            "2023-10-30T22:25:23Z",
            "application/json",
            "*",
            "fr",
            "en-",
            "blob"
        ])),
        11 => json!([]),
        12 => json!({}),
        13 => json!([1, "a", null]),
        14 => json!({"type": *rng.pick(TYPES)}),
        15 => json!({"$bytes": "AAAA"}),
        16 => json!({"$link": "bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq"}),
        17 => json!({"$type": "blob", "ref": {"$link": "x"}, "mimeType": "a/b", "size": 1}),
        18 => {
            json!({"$type": *rng.pick(&["", "#main", "x.y.z#main", "example.lexicon.record#demoObject"])})
        }
        19 => json!(["*"]),
        20 => json!(9_007_199_254_740_993_i64),
        _ => json!("🏳️‍🌈".repeat(rng.below(30))),
    }
}

/// JSON pointers of every node of `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                pointers(c, p, out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                pointers(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// One structural mutation of a JSON value; returns a description.
fn mutate_value(rng: &mut Rng, v: &mut Value) -> String {
    let mut ptrs = Vec::new();
    pointers(v, String::new(), &mut ptrs);
    let ptr = rng.pick(&ptrs).clone();
    let Some(node) = v.pointer_mut(&ptr) else {
        return "no-op".into();
    };
    match rng.below(5) {
        // key rename
        0 => {
            if let Value::Object(m) = node
                && !m.is_empty()
            {
                let keys: Vec<String> = m.keys().cloned().collect();
                let old = rng.pick(&keys).clone();
                let new = (*rng.pick(KEYS)).to_owned();
                if let Some(val) = m.remove(&old) {
                    m.insert(new.clone(), val);
                }
                return format!("rename {ptr}/{old} -> {new:?}");
            }
            let new = random_value(rng);
            let d = format!("replace {ptr} with {new}");
            *node = new;
            d
        }
        // key deletion
        1 => {
            if let Value::Object(m) = node
                && !m.is_empty()
            {
                let keys: Vec<String> = m.keys().cloned().collect();
                let old = rng.pick(&keys).clone();
                m.remove(&old);
                return format!("delete {ptr}/{old}");
            }
            if let Value::Array(a) = node
                && !a.is_empty()
            {
                let i = rng.below(a.len());
                a.remove(i);
                return format!("delete {ptr}/{i}");
            }
            *node = Value::Null;
            format!("null {ptr}")
        }
        // set or add a `type`
        2 => {
            let t = *rng.pick(TYPES);
            if let Value::Object(m) = node {
                m.insert("type".into(), json!(t));
                return format!("set {ptr}/type = {t:?}");
            }
            *node = json!({ "type": t });
            format!("replace {ptr} with type {t:?}")
        }
        // add a random key
        3 => {
            let k = *rng.pick(KEYS);
            let val = random_value(rng);
            let d = format!("add {ptr}/{k} = {val}");
            if let Value::Object(m) = node {
                m.insert(k.to_owned(), val);
            } else {
                *node = val;
            }
            d
        }
        // value type swap
        _ => {
            let new = random_value(rng);
            let d = format!("replace {ptr} with {new}");
            *node = new;
            d
        }
    }
}

/// One byte-level mutation; returns a description.
fn mutate_bytes(rng: &mut Rng, bytes: &mut Vec<u8>) -> String {
    let len = bytes.len();
    match rng.below(4) {
        0 => {
            let at = rng.below(len);
            bytes.truncate(at);
            format!("truncate at {at}")
        }
        1 => {
            let n = 1 + rng.below(4);
            for _ in 0..n {
                let at = rng.below(bytes.len());
                if let Some(b) = bytes.get_mut(at) {
                    *b = (rng.next() & 0xff) as u8;
                }
            }
            format!("flip {n} byte(s)")
        }
        2 => {
            let at = rng.below(len);
            let n = 1 + rng.below(40);
            let end = (at + n).min(len);
            bytes.drain(at..end);
            format!("delete {at}..{end}")
        }
        _ => {
            let at = rng.below(len);
            let from = rng.below(len);
            let end = (from + 1 + rng.below(60)).min(len);
            let chunk: Vec<u8> = bytes[from..end].to_vec();
            bytes.splice(at..at, chunk);
            format!("insert copy of {from}..{end} at {at}")
        }
    }
}

struct Outcome {
    panics: Vec<String>,
    runs: usize,
    rejected: usize,
}

impl Outcome {
    fn new() -> Self {
        Outcome {
            panics: Vec::new(),
            runs: 0,
            rejected: 0,
        }
    }

    /// Runs `f` (which returns whether the input was rejected) and records a panic.
    fn run(&mut self, what: &str, input: &[u8], f: impl FnOnce() -> bool) {
        self.runs += 1;
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(true) => self.rejected += 1,
            Ok(false) => {}
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                let text = String::from_utf8_lossy(input);
                let shown: String = text.chars().take(1500).collect();
                self.panics
                    .push(format!("{what}: panicked: {msg}\n    input: {shown}"));
            }
        }
    }

    fn finish(self, label: &str, min_rejected_share: f64) {
        assert!(
            self.panics.is_empty(),
            "{label}: {} panic(s) in {} runs:\n{}",
            self.panics.len(),
            self.runs,
            self.panics.join("\n")
        );
        let share = self.rejected as f64 / self.runs.max(1) as f64;
        eprintln!(
            "{label}: {} runs, {} rejected ({:.0}%)",
            self.runs,
            self.rejected,
            share * 100.0
        );
        assert!(
            share >= min_rejected_share,
            "{label}: only {:.0}% of mutated inputs were rejected",
            share * 100.0
        );
    }
}

/// Loader → checks → round trip → catalog check; returns whether the input was rejected.
fn lexicon_pipeline(bytes: &[u8], file: &Path, base: Option<&Catalog>) -> bool {
    let doc = match parse_bytes(bytes, Some(file)) {
        Ok(doc) => doc,
        Err(e) => {
            let _ = e.to_string();
            return true;
        }
    };
    let diags = check_document(&doc, Some(file));
    let _ = diags.to_string();
    // A converted document must survive its own round trip.
    let again = LexiconDoc::from_json(&doc.to_json());
    assert!(
        again.as_ref().ok() == Some(&doc),
        "round trip of a converted document changed it: {again:?}"
    );
    let _ = doc.refs();
    let mut cat = Catalog::new();
    if let Some(base) = base {
        for d in base.docs().filter(|d| d.id != doc.id) {
            let _ = cat.insert(d.clone(), None);
        }
    }
    let rejected = diags.has_errors();
    let _ = cat.insert(doc, Some(file.to_owned()));
    let _ = cat.check().to_string();
    rejected
}

fn exercise_validator(cat: &Catalog, records: &[Value]) {
    for r in records {
        let _ = cat.validate_record("example.lexicon.record", r);
    }
    let _ = cat.validate_params("example.lexicon.query", &json!({"stringField": "x"}));
    let _ = cat.parse_query_params("example.lexicon.query", [("array", "1"), ("integer", "x")]);
    let _ = cat.validate_output("example.lexicon.query", &json!({"a": 1}));
    let _ = cat.validate_input("example.lexicon.procedure", &json!({"preferences": {}}));
    let _ = cat.validate_output("example.lexicon.procedure", &json!({"object": {"a": 1}}));
    let _ = cat.validate_message("example.lexicon.subscription", "#yo", &json!({"seq": 1}));
    let _ = cat.validate_value("example.lexicon.record#demoObject", &json!({"a": 1}));
    let _ = cat.validate_value("example.lexicon.record#demoToken", &json!("x"));
}

#[test]
fn mutated_official_lexicons_never_panic() {
    let Some(dir) = official_lexicons_dir() else {
        return;
    };
    let files = atlex_lexicon::json_files(&dir).expect("list lexicons");
    let mut rng = Rng::new(seed());
    let mut out = Outcome::new();
    let rounds = rounds(4);
    for file in &files {
        let original = std::fs::read(file).expect("read lexicon");
        let value: Value = serde_json::from_slice(&original).expect("official JSON");
        for round in 0..rounds {
            let mut bytes = original.clone();
            let what = mutate_bytes(&mut rng, &mut bytes);
            let label = format!("{} round {round}: {what}", file.display());
            out.run(&label, &bytes, || lexicon_pipeline(&bytes, file, None));

            let mut v = value.clone();
            let what = mutate_value(&mut rng, &mut v);
            let bytes = serde_json::to_vec(&v).expect("serialise");
            let label = format!("{} round {round}: {what}", file.display());
            out.run(&label, &bytes, || lexicon_pipeline(&bytes, file, None));
        }
    }
    // Most byte-level damage breaks the JSON; many structural mutations are legal (renaming
    // an optional key to an unknown one, for example), so the bar is modest.
    out.finish("official lexicons", 0.5);
}

fn interop_catalog() -> Option<(PathBuf, Catalog, Vec<Value>, Vec<Value>)> {
    let dir = interop_dir()?.join("lexicon");
    let cat = Catalog::load_dir(dir.join("catalog")).expect("interop catalog");
    let valid = cases(&dir.join("record-data-valid.json"))
        .into_iter()
        .map(|c| c.value["data"].clone())
        .collect();
    let invalid = cases(&dir.join("record-data-invalid.json"))
        .into_iter()
        .map(|c| c.value["data"].clone())
        .collect();
    Some((dir, cat, valid, invalid))
}

#[test]
fn mutated_interop_catalog_never_panics() {
    let Some((dir, base, valid, invalid)) = interop_catalog() else {
        return;
    };
    let records: Vec<Value> = valid.iter().chain(&invalid).cloned().collect();
    let files = atlex_lexicon::json_files(dir.join("catalog")).expect("list catalog");
    let mut rng = Rng::new(seed() ^ 1);
    let mut out = Outcome::new();
    let rounds = rounds(400);
    for file in &files {
        let original = std::fs::read(file).expect("read");
        let value: Value = serde_json::from_slice(&original).expect("JSON");
        for round in 0..rounds {
            let (bytes, what) = if round % 3 == 0 {
                let mut b = original.clone();
                let w = mutate_bytes(&mut rng, &mut b);
                (b, w)
            } else {
                let mut v = value.clone();
                let mut w = mutate_value(&mut rng, &mut v);
                if round % 3 == 2 {
                    w = format!("{w}; {}", mutate_value(&mut rng, &mut v));
                }
                (serde_json::to_vec(&v).expect("serialise"), w)
            };
            let label = format!("{} round {round}: {what}", file.display());
            out.run(&label, &bytes, || {
                let rejected = lexicon_pipeline(&bytes, file, Some(&base));
                // Validate data against the mutated schema too (even if the checks failed:
                // the validator must cope with any document the loader accepts).
                if let Ok(doc) = parse_bytes(&bytes, Some(file)) {
                    let mut cat = Catalog::new();
                    for d in base.docs().filter(|d| d.id != doc.id) {
                        let _ = cat.insert(d.clone(), None);
                    }
                    let _ = cat.insert(doc, None);
                    exercise_validator(&cat, &records);
                }
                rejected
            });
        }
    }
    out.finish("interop catalog", 0.3);
}

#[test]
fn mutated_record_data_never_panics() {
    let Some((_, cat, valid, _)) = interop_catalog() else {
        return;
    };
    let mut rng = Rng::new(seed() ^ 2);
    let mut out = Outcome::new();
    let rounds = rounds(1500);
    for (i, record) in valid.iter().enumerate() {
        for round in 0..rounds {
            let mut v = record.clone();
            let mut what = mutate_value(&mut rng, &mut v);
            for _ in 0..rng.below(3) {
                what = format!("{what}; {}", mutate_value(&mut rng, &mut v));
            }
            let input = serde_json::to_vec(&v).unwrap_or_default();
            let label = format!("record-data-valid[{i}] round {round}: {what}");
            out.run(&label, &input, || {
                let r = cat.validate_record("example.lexicon.record", &v);
                if let Err(e) = &r {
                    assert!(!e.errors().is_empty());
                    let _ = e.to_string();
                }
                let _ = cat.validate_value("example.lexicon.record#demoObject", &v);
                let _ = cat.validate_output("example.lexicon.procedure", &v);
                let _ = cat.validate_params("example.lexicon.query", &v);
                r.is_err()
            });
        }
    }
    out.finish("record data", 0.3);
}

#[test]
fn hostile_shapes_are_errors() {
    // Ten times the data-model depth limit. (Much deeper `serde_json::Value`s overflow the
    // test thread's stack in serde_json's own recursive `Drop`, before any code of ours runs.)
    const DEPTH: usize = 1000;
    let Some((_, cat, _, _)) = interop_catalog() else {
        return;
    };
    // Deeply nested data: rejected by the data-model depth limit, no stack overflow.
    let mut deep = json!({});
    for _ in 0..DEPTH {
        deep = json!({ "a": deep });
    }
    let record = json!({"$type": "example.lexicon.record", "integer": 1, "unknown": deep});
    let mut out = Outcome::new();
    out.run("deep record", b"", || {
        cat.validate_record("example.lexicon.record", &record)
            .is_err()
    });
    let mut deep_array = json!(1);
    for _ in 0..DEPTH {
        deep_array = json!([deep_array]);
    }
    let record = json!({"$type": "example.lexicon.record", "integer": 1, "array": deep_array});
    out.run("deep array", b"", || {
        cat.validate_record("example.lexicon.record", &record)
            .is_err()
    });
    // Deeply nested lexicon: serde_json's recursion limit stops it with a JSON error.
    let mut text = String::from(r#"{"lexicon":1,"id":"a.b.c","defs":{"main":"#);
    for _ in 0..3000 {
        text.push_str(r#"{"type":"array","items":"#);
    }
    text.push_str(r#"{"type":"integer"}"#);
    for _ in 0..3000 {
        text.push('}');
    }
    text.push_str("}}");
    out.run("deep lexicon", text.as_bytes(), || {
        parse_bytes(text.as_bytes(), None).is_err()
    });
    // Garbage of every JSON kind at the top level.
    for v in [
        json!(null),
        json!(1),
        json!("x"),
        json!([]),
        json!({}),
        json!({"defs": []}),
    ] {
        let bytes = serde_json::to_vec(&v).unwrap_or_default();
        out.run("top-level garbage", &bytes, || {
            parse_bytes(&bytes, None).is_err()
        });
        out.run("garbage record", &bytes, || {
            cat.validate_record("example.lexicon.record", &v).is_err()
        });
    }
    out.run("invalid UTF-8", b"{\"lexicon\":1,\"id\":\"\xff\"}", || {
        parse_bytes(b"{\"lexicon\":1,\"id\":\"\xff\"}", None).is_err()
    });
    out.finish("hostile shapes", 1.0);
}
