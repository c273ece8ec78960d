//! The generator's errors on bad lexicons: every one names the file, and the def and field where
//! there is one.
//!
//! * `interop_invalid_lexicons`: every case of `$ATLEX_INTEROP_DIR/lexicon/lexicon-invalid.json`
//!   (default `../shared/interop`; missing under `CI=true` fails) is written to a
//!   temporary folder and fed to `load_lexicons` + `generate`; each must fail with the text
//!   this file expects for it by name.
//! * `codegen_invalid_lexicons`: our own cases for what only the generator can see: refs that
//!   do not resolve (locally or across documents), union members, fields and bodies that refer
//!   to the wrong kind of def, subscription messages that are not unions, duplicate NSIDs.
//! * `mutated_*_never_panic`: a deterministic fuzz loop over the official lexicons and the
//!   fixture lexicons in `tests/lexicons/`: each round mutates one document (JSON structure or
//!   raw bytes) and runs load → generate inside `catch_unwind`, and the `--skip-invalid`
//!   pipeline (collect → generate the valid rest), which must always generate. Errors are fine; a panic, an
//!   error that names no file, or a render error (emitted tokens that do not parse: always a
//!   generator bug) fails the test, naming the mutation. Each loop stops after a time budget
//!   (`ATLEX_FUZZ_SECONDS`, default 3); the sequence of mutations is fixed by the seed
//!   (`ATLEX_FUZZ_SEED`), so a failure can be replayed.

use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use atlex_codegen::{Config, DocSet, GenerateError, Generated, Loaded};
use serde_json::{Value, json};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `$ATLEX_INTEROP_DIR` (default `../shared/interop`); `None` after a skip note when it is
/// missing, a panic when it is missing under `CI=true` (see `atlex_tests::data`).
fn interop_dir() -> Option<PathBuf> {
    atlex_tests::data::interop_dir()
}

/// The official lexicons, loaded once (`ATLEX_LEXICONS_DIR`, default `lexicons/official/`);
/// `None` after a skip note when they are missing (a panic under `CI=true`).
fn official() -> Option<&'static Loaded> {
    static OFFICIAL: OnceLock<Loaded> = OnceLock::new();
    let dir = atlex_tests::data::official_lexicons_dir()?;
    Some(OFFICIAL.get_or_init(|| {
        atlex_codegen::load_lexicons(&dir)
            .unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()))
    }))
}

/// Writes `files` (path relative to the folder, contents) into a fresh temporary folder.
fn write_lexicons(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, contents) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    dir
}

/// Loads the folder and generates it as a user crate rooted at `crate`, refs into `external`
/// resolving to `::atlex`.
fn load_and_generate(
    dir: &Path,
    external: Option<&DocSet<'_>>,
) -> Result<Generated, GenerateError> {
    let own = atlex_codegen::load_lexicons(dir)?;
    let external: Vec<DocSet<'_>> = external.into_iter().cloned().collect();
    atlex_codegen::generate(
        &own.doc_set("crate"),
        &external,
        &Config::user_crate("crate"),
    )
}

/// The official documents named in `start` and every document they refer to, transitively,
/// rooted at `::atlex`: what a document from `start` needs to resolve its refs (lowering all
/// 402 documents for each fuzz round would make the rounds ten times slower).
fn closure<'a>(official: &'a Loaded, start: impl IntoIterator<Item = String>) -> DocSet<'a> {
    let by_id: HashMap<&str, &'a atlex_lexicon::LoadedDoc> = official
        .docs
        .iter()
        .map(|doc| (doc.doc.id.as_str(), doc))
        .collect();
    let mut wanted: Vec<String> = start.into_iter().collect();
    let mut found: BTreeMap<&str, &'a atlex_lexicon::LoadedDoc> = BTreeMap::new();
    while let Some(id) = wanted.pop() {
        let Some(&doc) = by_id.get(id.as_str()) else {
            continue;
        };
        if found.insert(doc.doc.id.as_str(), doc).is_some() {
            continue;
        }
        for use_ in doc.doc.refs() {
            let (nsid, _) = use_.reference.resolve(&doc.doc.id);
            wanted.push(nsid.to_owned());
        }
    }
    DocSet {
        docs: found
            .into_values()
            .map(|doc| (&doc.doc, Some(doc.file.clone())))
            .collect(),
        root: "::atlex".to_owned(),
    }
}

/// The NSIDs of the official documents every fuzz round may refer to (see [`ref_targets`]).
const FIXED_TARGETS: &[&str] = &[
    "com.atproto.repo.strongRef",
    "com.atproto.repo.createRecord",
    "app.bsky.feed.defs#requestLess",
    "com.atproto.label.defs#labelValue",
];

/// The NSIDs the documents in `loaded` refer to, plus those of [`FIXED_TARGETS`].
fn referenced_nsids(loaded: &Loaded) -> Vec<String> {
    let mut nsids: Vec<String> = FIXED_TARGETS
        .iter()
        .map(|target| target.split('#').next().unwrap_or(target).to_owned())
        .collect();
    for doc in &loaded.docs {
        nsids.push(doc.doc.id.clone());
        for use_ in doc.doc.refs() {
            nsids.push(use_.reference.resolve(&doc.doc.id).0.to_owned());
        }
    }
    nsids
}

/// What an error must say: every fragment must appear in the error's text (the file's full
/// path is always required too).
struct Expect {
    /// The case's name (the vector's `name`, or ours).
    name: &'static str,
    /// Text the error must contain, e.g. `"com.example.a#main: properties.f.ref: "`.
    says: &'static [&'static str],
    /// The number of problems, when the error is a list of problems (one bad thing should be
    /// reported once).
    problems: Option<usize>,
}

/// Checks one case; returns a description of what is wrong, or `None`.
fn check(expect: &Expect, files: &[(&str, &[u8])], bad_file: &str) -> Option<String> {
    let dir = write_lexicons(files);
    let file = dir.path().join(bad_file);
    let result = catch_unwind(AssertUnwindSafe(|| load_and_generate(dir.path(), None)));
    let error = match result {
        Err(_) => return Some(format!("{}: the generator panicked", expect.name)),
        Ok(Ok(_)) => return Some(format!("{}: accepted, but it is invalid", expect.name)),
        Ok(Err(error)) => error,
    };
    let text = error.to_string();
    let mut wrong = Vec::new();
    let file_text = file.display().to_string();
    if !text.contains(&file_text) {
        wrong.push(format!("does not name the file {file_text}"));
    }
    for fragment in expect.says {
        if !text.contains(fragment) {
            wrong.push(format!("does not say {fragment:?}"));
        }
    }
    if let (Some(want), GenerateError::Lexicon(problems)) = (expect.problems, &error)
        && problems.len() != want
    {
        wrong.push(format!("has {} problems, expected {want}", problems.len()));
    }
    if wrong.is_empty() {
        None
    } else {
        Some(format!(
            "{}: the error {}\n    error: {}",
            expect.name,
            wrong.join(", "),
            text.replace('\n', "\n    ")
        ))
    }
}

fn report(label: &str, failures: &[String], total: usize) {
    assert!(
        failures.is_empty(),
        "{label}: {} of {total} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// What each case of `lexicon-invalid.json` must produce, by name.
const INTEROP: &[Expect] = &[
    Expect {
        name: "invalid lexicon field",
        says: &["example.lexicon.other: lexicon: ", "expected an integer"],
        problems: None,
    },
    Expect {
        name: "invalid id field",
        says: &["id: expected a string, found 2"],
        problems: None,
    },
    Expect {
        name: "invalid NSID",
        says: &["id: ", "\"one-two-three\""],
        problems: None,
    },
    Expect {
        name: "defined unknown",
        says: &[
            "example.lexicon.other#demo: type: ",
            "`unknown` is not allowed as a named definition",
        ],
        problems: None,
    },
    Expect {
        name: "defined ref",
        says: &[
            "example.lexicon.other#demo: type: ",
            "`ref` is not allowed as a named definition",
        ],
        problems: None,
    },
    // The record's object has no `properties`, which the loader reports first (the schema
    // checks, which would also report the non-main primary type, run on loaded documents);
    // `record_under_another_name` below covers the primary-type rule on its own.
    Expect {
        name: "non-main primary",
        says: &["example.lexicon.other#demo: record: "],
        problems: None,
    },
    Expect {
        name: "record missing type object",
        says: &["example.lexicon.other#main: record: ", "`type`"],
        problems: None,
    },
];

#[test]
fn interop_invalid_lexicons() {
    let Some(dir) = interop_dir() else {
        return;
    };
    let path = dir.join("lexicon/lexicon-invalid.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let cases: Vec<Value> =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut failures = Vec::new();
    let mut seen = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap_or("<unnamed>");
        seen.push(name);
        let Some(expect) = INTEROP.iter().find(|e| e.name == name) else {
            failures.push(format!(
                "{name}: a case this test has no expectation for; add it to INTEROP"
            ));
            continue;
        };
        let bytes = serde_json::to_vec_pretty(&case["lexicon"]).unwrap();
        if let Some(failure) = check(expect, &[("case.json", &bytes)], "case.json") {
            failures.push(failure);
        }
    }
    for expect in INTEROP {
        if !seen.contains(&expect.name) {
            failures.push(format!(
                "{}: expected in {} but not there",
                expect.name,
                path.display()
            ));
        }
    }
    report("lexicon-invalid.json", &failures, cases.len());
}

/// A document `com.example.a` with the given defs.
fn doc_a(defs: Value) -> Vec<u8> {
    serde_json::to_vec_pretty(&json!({"lexicon": 1, "id": "com.example.a", "defs": defs})).unwrap()
}

/// The document the cross-document cases refer to.
fn doc_b() -> Vec<u8> {
    serde_json::to_vec_pretty(&json!({
        "lexicon": 1,
        "id": "com.example.b",
        "defs": {
            "main": {"type": "query"},
            "tok": {"type": "token"},
            "str": {"type": "string", "maxLength": 10},
            "obj": {"type": "object", "properties": {}}
        }
    }))
    .unwrap()
}

/// An object `main` with one property `f` of the given schema.
fn field(schema: Value) -> Value {
    json!({"main": {"type": "object", "properties": {"f": schema}}})
}

/// Our own invalid cases: (what the error must say, the defs of `com.example.a`).
fn codegen_cases() -> Vec<(Expect, Value)> {
    vec![
        (
            Expect {
                name: "ref to a missing local def",
                says: &["com.example.a#main: properties.f.ref: ", "\"nope\""],
                problems: None,
            },
            field(json!({"type": "ref", "ref": "#nope"})),
        ),
        (
            Expect {
                name: "ref to a missing document",
                says: &[
                    "com.example.a#main: properties.f.ref: ",
                    "no lexicon com.example.missing is loaded",
                ],
                problems: Some(1),
            },
            field(json!({"type": "ref", "ref": "com.example.missing#x"})),
        ),
        (
            Expect {
                name: "ref to a missing def of another document",
                says: &[
                    "com.example.a#main: properties.f.ref: ",
                    "com.example.b has no def nope",
                ],
                problems: Some(1),
            },
            field(json!({"type": "ref", "ref": "com.example.b#nope"})),
        ),
        (
            Expect {
                name: "union member missing in another document",
                says: &[
                    "com.example.a#main: properties.f.refs[1]: ",
                    "com.example.b has no def nope",
                ],
                problems: Some(1),
            },
            field(json!({"type": "union", "refs": ["com.example.b#obj", "com.example.b#nope"]})),
        ),
        (
            Expect {
                name: "union member that is a local token",
                says: &["com.example.a#main: properties.f.refs[0]: ", "`token`"],
                problems: Some(1),
            },
            json!({
                "main": {"type": "object", "properties": {"f": {"type": "union", "refs": ["#tok"]}}},
                "tok": {"type": "token"}
            }),
        ),
        (
            Expect {
                name: "union member that is a token of another document",
                says: &[
                    "com.example.a#main: properties.f.refs[0]: ",
                    "com.example.b#tok",
                    "token",
                ],
                problems: Some(1),
            },
            field(json!({"type": "union", "refs": ["com.example.b#tok"]})),
        ),
        (
            Expect {
                name: "union member that is a local string",
                says: &["com.example.a#main: properties.f.refs[0]: ", "`string`"],
                problems: Some(1),
            },
            json!({
                "main": {"type": "object", "properties": {"f": {"type": "union", "refs": ["#str"]}}},
                "str": {"type": "string"}
            }),
        ),
        (
            Expect {
                name: "union member that is a string of another document",
                says: &[
                    "com.example.a#main: properties.f.refs[0]: ",
                    "union member com.example.b#str is not an object or record",
                ],
                problems: Some(1),
            },
            field(json!({"type": "union", "refs": ["com.example.b#str"]})),
        ),
        (
            Expect {
                name: "union member that is a query",
                says: &[
                    "com.example.a#main: properties.f.refs[0]: ",
                    "com.example.b",
                    "query",
                ],
                problems: Some(1),
            },
            field(json!({"type": "union", "refs": ["com.example.b"]})),
        ),
        (
            Expect {
                name: "field that refs a local token",
                says: &["com.example.a#main: properties.f.ref: ", "`token`"],
                problems: Some(1),
            },
            json!({
                "main": {"type": "object", "properties": {"f": {"type": "ref", "ref": "#tok"}}},
                "tok": {"type": "token"}
            }),
        ),
        (
            Expect {
                name: "field that refs a token of another document",
                says: &[
                    "com.example.a#main: properties.f.ref: ",
                    "com.example.b#tok points at a token definition",
                ],
                problems: Some(1),
            },
            field(json!({"type": "ref", "ref": "com.example.b#tok"})),
        ),
        (
            Expect {
                name: "array items that ref a token",
                says: &["com.example.a#main: properties.f.items.ref: ", "token"],
                problems: Some(1),
            },
            field(json!({"type": "array", "items": {"type": "ref", "ref": "com.example.b#tok"}})),
        ),
        (
            Expect {
                name: "body that refs a local string",
                says: &[
                    "com.example.a#main: input.schema.ref: ",
                    "a body must refer to an object, record or union",
                ],
                problems: Some(1),
            },
            json!({
                "main": {"type": "procedure", "input": {"encoding": "application/json",
                    "schema": {"type": "ref", "ref": "#str"}}},
                "str": {"type": "string"}
            }),
        ),
        (
            Expect {
                name: "body that refs a string of another document",
                says: &[
                    "com.example.a#main: output.schema.ref: ",
                    "a body must refer to an object, record or union",
                ],
                problems: Some(1),
            },
            json!({"main": {"type": "query", "output": {"encoding": "application/json",
                "schema": {"type": "ref", "ref": "com.example.b#str"}}}}),
        ),
        (
            Expect {
                name: "body that refs a token",
                says: &["com.example.a#main: output.schema.ref: ", "token"],
                problems: Some(1),
            },
            json!({"main": {"type": "query", "output": {"encoding": "application/json",
                "schema": {"type": "ref", "ref": "com.example.b#tok"}}}}),
        ),
        (
            Expect {
                name: "body schema that is a string",
                says: &["com.example.a#main: output.schema.type: ", "`string`"],
                problems: None,
            },
            json!({"main": {"type": "query", "output": {"encoding": "application/json",
                "schema": {"type": "string"}}}}),
        ),
        (
            Expect {
                name: "subscription message that is an object",
                says: &[
                    "com.example.a#main: message.schema.type: ",
                    "expected \"union\", found \"object\"",
                ],
                problems: None,
            },
            json!({"main": {"type": "subscription",
                "message": {"schema": {"type": "object", "properties": {}}}}}),
        ),
        (
            Expect {
                name: "subscription message that is a ref",
                says: &[
                    "com.example.a#main: message.schema.type: ",
                    "expected \"union\", found \"ref\"",
                ],
                problems: None,
            },
            json!({"main": {"type": "subscription",
                "message": {"schema": {"type": "ref", "ref": "com.example.b#obj"}}}}),
        ),
        // A subscription without a message is accepted with a warning (relaxation R2 in the
        // README; tests/lexicons/broken/relaxed_stream.json generates one).
        (
            Expect {
                name: "subscription message union of a string",
                says: &[
                    "com.example.a#main: message.schema.refs[0]: ",
                    "union member com.example.b#str is not an object or record",
                ],
                problems: Some(1),
            },
            json!({"main": {"type": "subscription",
                "message": {"schema": {"type": "union", "refs": ["com.example.b#str"]}}}}),
        ),
        (
            Expect {
                name: "record under another name",
                says: &[
                    "com.example.a#demo: ",
                    "`record` is a primary type and may only be defined as `main`",
                ],
                problems: None,
            },
            json!({"demo": {"type": "record", "key": "tid",
                "record": {"type": "object", "properties": {}}}}),
        ),
        (
            Expect {
                name: "array alias that contains itself",
                says: &["com.example.a#arr: ", "refers to itself"],
                problems: None,
            },
            json!({
                "main": {"type": "object", "properties": {"f": {"type": "ref", "ref": "#arr"}}},
                "arr": {"type": "array", "items": {"type": "ref", "ref": "#arr"}}
            }),
        ),
    ]
}

#[test]
fn codegen_invalid_lexicons() {
    let b = doc_b();
    let cases = codegen_cases();
    let mut failures = Vec::new();
    for (expect, defs) in &cases {
        let a = doc_a(defs.clone());
        let files: [(&str, &[u8]); 2] = [("com/example/a.json", &a), ("com/example/b.json", &b)];
        if let Some(failure) = check(expect, &files, "com/example/a.json") {
            failures.push(failure);
        }
    }
    report("codegen cases", &failures, cases.len());
}

#[test]
fn duplicate_nsids_name_both_files() {
    let doc = |description: &str| {
        serde_json::to_vec(
            &json!({"lexicon": 1, "id": "com.example.a", "description": description,
            "defs": {"main": {"type": "token"}}}),
        )
        .unwrap()
    };
    let (one, two) = (doc("one"), doc("two"));
    let files: [(&str, &[u8]); 2] = [("one.json", &one), ("two.json", &two)];
    let expect = Expect {
        name: "duplicate NSID",
        says: &["com.example.a: NSID defined twice", "one.json"],
        problems: Some(1),
    };
    let failure = check(&expect, &files, "two.json");
    assert!(failure.is_none(), "{}", failure.unwrap_or_default());
}

/// The control: the harness accepts valid lexicons, including a query with an extra `message`
/// key (extra keys are allowed, lexicon-rules.md §1) and refs to every kind of data def.
#[test]
fn valid_lexicons_generate() {
    let a = doc_a(json!({
        "main": {"type": "query", "message": {"schema": {"type": "object", "properties": {}}},
            "output": {"encoding": "application/json", "schema": {"type": "ref", "ref": "#view"}}},
        "view": {"type": "object", "properties": {
            "s": {"type": "ref", "ref": "com.example.b#str"},
            "u": {"type": "union", "refs": ["com.example.b#obj", "#view"]},
            "a": {"type": "array", "items": {"type": "ref", "ref": "#view"}}
        }}
    }));
    let b = doc_b();
    let dir = write_lexicons(&[("com/example/a.json", &a), ("com/example/b.json", &b)]);
    let generated = load_and_generate(dir.path(), None).unwrap_or_else(|e| panic!("{e}"));
    assert!(!generated.files.is_empty());
}

// ------------------------------------------------------------------------------------ fuzz

/// SplitMix64: small, seedable, and the same on every platform.
struct Rng(u64);

impl Rng {
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

    fn choose<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn fuzz_seed() -> u64 {
    std::env::var("ATLEX_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xC0DE_6E17_5EED)
}

fn fuzz_budget() -> Duration {
    let seconds = std::env::var("ATLEX_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0_f64);
    Duration::from_secs_f64(seconds.max(0.0))
}

/// Names that stress the generator's naming: keywords, collisions, digits, odd characters.
const NAMES: &[&str] = &[
    "main", "type", "self", "Self", "super", "crate", "async", "gen", "r#type", "extra", "new",
    "validate", "Option", "Box", "String", "Unknown", "Other", "9", "_", "", "a-b", "a.b",
    "fooBar", "foo_bar", "FOO_BAR", "ü", "Params", "Output", "Error", "Message",
];

/// Schema types, valid in some places and not in others.
const TYPES: &[&str] = &[
    "record",
    "query",
    "procedure",
    "subscription",
    "permission-set",
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
    "params",
    "permission",
    "null",
];

/// Every `#def` and `nsid#def` a mutation can point a ref at.
fn ref_targets(doc: &Value) -> Vec<String> {
    let mut targets: Vec<String> = ["#nope", "com.example.missing#x", "#", "a#b#c"]
        .iter()
        .chain(FIXED_TARGETS)
        .map(|target| (*target).to_owned())
        .collect();
    if let (Some(id), Some(defs)) = (doc["id"].as_str(), doc["defs"].as_object()) {
        for name in defs.keys() {
            targets.push(format!("#{name}"));
            targets.push(format!("{id}#{name}"));
        }
        targets.push(id.to_owned());
    }
    targets
}

/// The JSON pointers of every object and array in `value`.
fn containers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                containers(
                    child,
                    format!("{at}/{}", key.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
            out.push(at);
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                containers(child, format!("{at}/{i}"), out);
            }
            out.push(at);
        }
        _ => {}
    }
}

/// One structural mutation aimed at what the generator does (names, refs, unions, recursion,
/// types); returns what it did.
fn mutate_json(rng: &mut Rng, doc: &mut Value) -> String {
    let targets = ref_targets(doc);
    let mut pointers = Vec::new();
    containers(doc, String::new(), &mut pointers);
    if pointers.is_empty() {
        return "nothing (not an object any more)".to_owned();
    }
    let pointer = rng.choose(&pointers).clone();
    let at = if pointer.is_empty() {
        "/".to_owned()
    } else {
        pointer.clone()
    };
    let Some(node) = doc.pointer_mut(&pointer) else {
        return "nothing".to_owned();
    };
    let kind = rng.below(9);
    match (kind, node) {
        // Point a ref (or make this node one) at another def, often one of the wrong kind.
        (0, Value::Object(map)) => {
            let target = rng.choose(&targets).clone();
            map.insert("type".into(), json!("ref"));
            map.insert("ref".into(), json!(target));
            format!("{at}: ref → {target}")
        }
        // Make this node a union of random refs.
        (1, Value::Object(map)) => {
            let refs: Vec<String> = (0..1 + rng.below(3))
                .map(|_| rng.choose(&targets).clone())
                .collect();
            map.insert("type".into(), json!("union"));
            map.insert("refs".into(), json!(refs));
            if rng.below(2) == 0 {
                map.insert("closed".into(), json!(true));
            }
            format!("{at}: union of {refs:?}")
        }
        // Change a node's type.
        (2, Value::Object(map)) => {
            let ty = *rng.choose(TYPES);
            map.insert("type".into(), json!(ty));
            format!("{at}: type → {ty}")
        }
        // Rename a key (a def, a property, or a schema keyword) to an awkward name.
        (3, Value::Object(map)) if !map.is_empty() => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let old = rng.choose(&keys).clone();
            let new = (*rng.choose(NAMES)).to_owned();
            if let Some(value) = map.remove(&old) {
                map.insert(new.clone(), value);
            }
            format!("{at}: rename {old:?} → {new:?}")
        }
        // Copy a sibling under an awkward name (collisions after case conversion).
        (4, Value::Object(map)) if !map.is_empty() => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let from = rng.choose(&keys).clone();
            let new = (*rng.choose(NAMES)).to_owned();
            if let Some(value) = map.get(&from).cloned() {
                map.insert(new.clone(), value);
            }
            format!("{at}: copy {from:?} as {new:?}")
        }
        // Delete a key.
        (5, Value::Object(map)) if !map.is_empty() => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let old = rng.choose(&keys).clone();
            map.remove(&old);
            format!("{at}: delete {old:?}")
        }
        // Add a property that refers back to this document's defs (recursion, boxing).
        (6, Value::Object(map)) => {
            let target = rng.choose(&targets).clone();
            let name = (*rng.choose(NAMES)).to_owned();
            let schema = if rng.below(2) == 0 {
                json!({"type": "ref", "ref": target})
            } else {
                json!({"type": "array", "items": {"type": "ref", "ref": target}})
            };
            let properties = map.entry("properties").or_insert_with(|| json!({}));
            if let Value::Object(properties) = properties {
                properties.insert(name.clone(), schema);
            } else {
                *properties = json!({ name.clone(): schema });
            }
            if rng.below(2) == 0 {
                map.insert("required".into(), json!([name.clone()]));
            }
            format!("{at}: property {name:?} → {target}")
        }
        // Enum and known values with awkward names.
        (7, Value::Object(map)) => {
            let values: Vec<&str> = (0..1 + rng.below(4)).map(|_| *rng.choose(NAMES)).collect();
            let key = if rng.below(2) == 0 {
                "knownValues"
            } else {
                "enum"
            };
            map.insert("type".into(), json!("string"));
            map.insert(key.into(), json!(values));
            format!("{at}: string {key} {values:?}")
        }
        // Arrays: drop or duplicate an element.
        (_, Value::Array(items)) if !items.is_empty() => {
            let i = rng.below(items.len());
            if rng.below(2) == 0 {
                items.remove(i);
                format!("{at}: remove [{i}]")
            } else {
                let copy = items[i].clone();
                items.push(copy);
                format!("{at}: duplicate [{i}]")
            }
        }
        (_, node) => {
            let value = match rng.below(5) {
                0 => json!(null),
                1 => json!(7),
                2 => json!("x"),
                3 => json!([]),
                _ => json!({}),
            };
            *node = value.clone();
            format!("{at}: replaced with {value}")
        }
    }
}

/// One byte-level mutation; returns what it did.
fn mutate_bytes(rng: &mut Rng, bytes: &mut Vec<u8>) -> String {
    let len = bytes.len().max(1);
    match rng.below(3) {
        0 => {
            let at = rng.below(len);
            bytes.truncate(at);
            format!("truncated at byte {at}")
        }
        1 => {
            let at = rng.below(len).min(bytes.len());
            let end = (at + 1 + rng.below(16)).min(bytes.len());
            bytes.drain(at..end);
            format!("bytes {at}..{end} removed")
        }
        _ => {
            let at = rng.below(len).min(bytes.len().saturating_sub(1));
            let value = (rng.next() & 0xff) as u8;
            if let Some(byte) = bytes.get_mut(at) {
                *byte = value;
            }
            format!("byte {at} set to {value:#04x}")
        }
    }
}

/// Runs load → generate on `files` and judges the outcome: `Ok(true)` generated, `Ok(false)`
/// rejected with a proper error, `Err` a generator failure (panic, render error, an error
/// that names no file).
fn fuzz_once(files: &[(&str, &[u8])], external: &DocSet<'_>) -> Result<bool, String> {
    let dir = write_lexicons(files);
    skip_invalid_once(dir.path(), external)?;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        load_and_generate(dir.path(), Some(external))
    }));
    match outcome {
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            Err(format!("panicked: {message}"))
        }
        Ok(Ok(_)) => Ok(true),
        Ok(Err(GenerateError::Render(error))) => {
            Err(format!("render error (a generator bug): {error}"))
        }
        Ok(Err(GenerateError::Lexicon(problems))) => {
            match problems.iter().find(|p| p.file.is_none()) {
                Some(problem) => Err(format!("a problem without a file: {problem}")),
                None if problems.is_empty() => Err("an empty list of problems".to_owned()),
                None => Ok(false),
            }
        }
        Ok(Err(error @ GenerateError::Load(_))) => {
            let text = error.to_string();
            if text.contains(&dir.path().display().to_string()) {
                Ok(false)
            } else {
                Err(format!("a load error that names no file: {text}"))
            }
        }
    }
}

/// The `--skip-invalid` pipeline on the same folder: it must not panic, must generate (what
/// remains always can be), and every error and left-out entry must name its file.
fn skip_invalid_once(dir: &Path, external: &DocSet<'_>) -> Result<(), String> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let collected = atlex_codegen::collect_lexicons(dir)?;
        let result = atlex_codegen::generate_valid(
            &collected.loaded.doc_set("crate"),
            std::slice::from_ref(external),
            &Config::user_crate("crate"),
            &collected.pruned,
        )?;
        Ok::<_, GenerateError>((collected, result))
    }));
    match outcome {
        Err(_) => Err("--skip-invalid panicked".to_owned()),
        Ok(Err(error)) => Err(format!("--skip-invalid failed: {error}")),
        Ok(Ok((collected, result))) => {
            let errors = collected.errors.iter().chain(&result.errors);
            if let Some(problem) = errors.into_iter().find(|p| p.file.is_none()) {
                return Err(format!(
                    "--skip-invalid: a problem without a file: {problem}"
                ));
            }
            let pruned = collected.pruned.iter().chain(&result.pruned);
            if let Some(entry) = pruned.into_iter().find(|p| p.file.is_none()) {
                return Err(format!(
                    "--skip-invalid: a left-out entry without a file: {entry}"
                ));
            }
            Ok(())
        }
    }
}

struct Tally {
    label: &'static str,
    rounds: usize,
    generated: usize,
    failures: Vec<String>,
}

impl Tally {
    fn new(label: &'static str) -> Tally {
        Tally {
            label,
            rounds: 0,
            generated: 0,
            failures: Vec::new(),
        }
    }

    /// Failures shown in full; the loop stops once this many were found.
    const SHOWN: usize = 10;

    fn record(&mut self, what: String, input: &[u8], outcome: Result<bool, String>) {
        self.rounds += 1;
        match outcome {
            Ok(generated) => self.generated += usize::from(generated),
            Err(failure) => {
                let shown: String = String::from_utf8_lossy(input).chars().take(2000).collect();
                self.failures
                    .push(format!("{what}: {failure}\n    input: {shown}"));
            }
        }
    }

    /// Whether the loop should go on (it stops at the deadline or after [`Tally::SHOWN`]
    /// failures).
    fn more(&self, deadline: Instant) -> bool {
        self.failures.len() < Self::SHOWN && Instant::now() < deadline
    }

    fn finish(self) {
        eprintln!(
            "{}: {} rounds, {} generated, {} rejected",
            self.label,
            self.rounds,
            self.generated,
            self.rounds - self.generated - self.failures.len()
        );
        assert!(self.rounds > 0, "{}: no round ran", self.label);
        assert!(
            self.failures.is_empty(),
            "{}: {} failure(s) in {} rounds (seed {}):\n{}",
            self.label,
            self.failures.len(),
            self.rounds,
            fuzz_seed(),
            self.failures.join("\n")
        );
    }
}

/// Mutates `original` (JSON three times out of four, bytes otherwise).
fn mutated(rng: &mut Rng, original: &[u8], round: usize) -> (Vec<u8>, String) {
    match serde_json::from_slice::<Value>(original) {
        Ok(mut doc) if round % 4 != 3 => {
            let mut what = mutate_json(rng, &mut doc);
            for _ in 0..rng.below(3) {
                what = format!("{what}; {}", mutate_json(rng, &mut doc));
            }
            (serde_json::to_vec_pretty(&doc).unwrap(), what)
        }
        _ => {
            let mut bytes = original.to_vec();
            let what = mutate_bytes(rng, &mut bytes);
            (bytes, what)
        }
    }
}

#[test]
fn mutated_official_lexicons_never_panic() {
    let Some(official) = official() else {
        return;
    };
    let mut files: Vec<(PathBuf, String, Vec<u8>)> = official
        .docs
        .iter()
        .map(|doc| {
            let bytes = std::fs::read(&doc.file).unwrap();
            (doc.file.clone(), doc.doc.id.clone(), bytes)
        })
        .collect();
    files.sort();
    let fixed = FIXED_TARGETS
        .iter()
        .map(|target| target.split('#').next().unwrap_or(target).to_owned());
    let mut rng = Rng(fuzz_seed());
    let mut tally = Tally::new("official lexicons");
    let deadline = Instant::now() + fuzz_budget();
    let mut round = 0;
    while tally.more(deadline) {
        let (path, id, original) = rng.choose(&files);
        let (bytes, what) = mutated(&mut rng, original, round);
        // Generated on its own, resolving against the unmutated official lexicons it can
        // refer to (its own id shadows the original there).
        let external = closure(official, fixed.clone().chain([id.clone()]));
        let outcome = fuzz_once(&[("mutated.json", &bytes)], &external);
        tally.record(
            format!("round {round}: {}: {what}", path.display()),
            &bytes,
            outcome,
        );
        round += 1;
    }
    tally.finish();
}

#[test]
fn mutated_fixture_lexicons_never_panic() {
    let Some(official) = official() else {
        return;
    };
    // Each set: its files (name, contents) and the official documents it refers to.
    type Set<'a> = (Vec<(String, Vec<u8>)>, DocSet<'a>);
    let sets: Vec<Set<'_>> = ["kitchen_sink", "adversarial"]
        .iter()
        .map(|set| {
            let dir = manifest_dir().join("tests/lexicons").join(set);
            let loaded = atlex_codegen::load_lexicons(&dir).unwrap();
            let external = closure(official, referenced_nsids(&loaded));
            let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .filter(|path| path.extension().is_some_and(|e| e == "json"))
                .map(|path| {
                    let name = format!("{set}/{}", path.file_name().unwrap().to_string_lossy());
                    (name, std::fs::read(&path).unwrap())
                })
                .collect();
            files.sort();
            (files, external)
        })
        .collect();
    let mut rng = Rng(fuzz_seed() ^ 1);
    let mut tally = Tally::new("fixture lexicons");
    let deadline = Instant::now() + fuzz_budget();
    let mut round = 0;
    while tally.more(deadline) {
        let (set, external) = rng.choose(&sets);
        let victim = rng.below(set.len());
        let (bytes, what) = mutated(&mut rng, &set[victim].1, round);
        let files: Vec<(&str, &[u8])> = set
            .iter()
            .enumerate()
            .map(|(i, (name, original))| {
                let contents: &[u8] = if i == victim { &bytes } else { original };
                (name.as_str(), contents)
            })
            .collect();
        let outcome = fuzz_once(&files, external);
        tally.record(
            format!("round {round}: {}: {what}", set[victim].0),
            &bytes,
            outcome,
        );
        round += 1;
    }
    tally.finish();
}

/// Found by `mutated_official_lexicons_never_panic` (round 110 of its default seed): an own
/// document that shadows an external one and loses a def makes the external documents that
/// refer to that def unlowerable. `--skip-invalid` leaves those external defs out of the
/// lowering, and every own def that refers to them, instead of failing.
#[test]
fn skip_invalid_prunes_through_external_documents_that_refer_to_a_shadowed_pruned_def() {
    let object = |properties: Value, required: Value| json!({"type": "object", "properties": properties, "required": required});
    let doc = |id: &str, defs: Value| {
        serde_json::to_vec(&json!({"lexicon": 1, "id": id, "defs": defs})).unwrap()
    };
    let ext_a = doc(
        "com.ext.a",
        json!({"view": object(json!({"x": {"type": "string"}}), json!(["x"]))}),
    );
    let ext_b = doc(
        "com.ext.b",
        json!({"main": object(json!({"v": {"type": "ref", "ref": "com.ext.a#view"}}), json!([]))}),
    );
    let external_dir = write_lexicons(&[("a.json", &ext_a), ("b.json", &ext_b)]);
    let external = atlex_codegen::load_lexicons(external_dir.path()).unwrap();
    // Own: `com.ext.a` again, its `view` broken (requires a property it lacks), and a def that
    // refers to `com.ext.b#main`, which refers to that `view`.
    let own_a = doc(
        "com.ext.a",
        json!({
            "view": object(json!({}), json!(["x"])),
            "other": object(json!({"y": {"type": "integer"}}), json!([])),
        }),
    );
    let own_c = doc(
        "com.own.c",
        json!({
            "main": object(json!({"b": {"type": "ref", "ref": "com.ext.b#main"}}), json!([])),
            "fine": object(json!({"z": {"type": "boolean"}}), json!([])),
        }),
    );
    let own_dir = write_lexicons(&[("a.json", &own_a), ("c.json", &own_c)]);
    let collected = atlex_codegen::collect_lexicons(own_dir.path()).unwrap();
    let result = atlex_codegen::generate_valid(
        &collected.loaded.doc_set("crate"),
        &[external.doc_set("crate::ext")],
        &Config::user_crate("crate"),
        &collected.pruned,
    )
    .unwrap_or_else(|error| panic!("--skip-invalid failed: {error}"));
    let left_out: Vec<String> = collected
        .pruned
        .iter()
        .chain(&result.pruned)
        .map(|p| {
            format!(
                "{}#{}",
                p.nsid.as_deref().unwrap_or("?"),
                p.def.as_deref().unwrap_or("")
            )
        })
        .collect();
    for expected in ["com.ext.a#view", "com.ext.b#main", "com.own.c#main"] {
        assert!(
            left_out.iter().any(|p| p == expected),
            "{expected} not in {left_out:?}"
        );
    }
    for kept in ["com.ext.a#other", "com.own.c#fine"] {
        assert!(
            !left_out.iter().any(|p| p == kept),
            "{kept} left out: {left_out:?}"
        );
    }
    let c_main = result
        .pruned
        .iter()
        .find(|p| p.nsid.as_deref() == Some("com.own.c") && p.def.as_deref() == Some("main"))
        .unwrap();
    assert!(c_main.to_string().contains("refers to"), "{c_main}");
}
