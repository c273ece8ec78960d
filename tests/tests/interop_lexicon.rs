//! The official atproto lexicon vectors (`$ATLEX_INTEROP_DIR/lexicon/`) against
//! `atlex-lexicon`: document parsing, schema checks and round trips, the 5-document catalog,
//! and record data validation. Every failing case is reported by name before a test fails.
//!
//! Also holds the isolated cases that conformance.md §2 asks for, because the official
//! fixtures never exercise `cid-link` positively and their `unknown` cases also omit the
//! required `integer`.

mod lexicon_common;

use std::path::{Path, PathBuf};

use atlex_lexicon::{Catalog, Constraint, LexiconDoc, check_document};
use atlex_tests::data::interop_dir;
use lexicon_common::{cases, report};
use serde_json::{Value, json};

const RECORD_NSID: &str = "example.lexicon.record";
const LINK: &str = "bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq";

fn lexicon_dir() -> Option<PathBuf> {
    interop_dir().map(|d| d.join("lexicon"))
}

fn catalog(dir: &Path) -> Catalog {
    Catalog::load_dir(dir.join("catalog")).unwrap_or_else(|e| panic!("catalog: {e}"))
}

#[test]
fn valid_lexicons_parse_check_and_round_trip() {
    let Some(dir) = lexicon_dir() else { return };
    let cases = cases(&dir.join("lexicon-valid.json"));
    assert_eq!(cases.len(), 3, "lexicon-valid.json case count");
    let mut failures = Vec::new();
    for case in &cases {
        let input = &case.value["lexicon"];
        let doc = match LexiconDoc::from_json(input) {
            Ok(doc) => doc,
            Err(e) => {
                failures.push(format!("{}: does not parse: {e}", case.name));
                continue;
            }
        };
        let diags = check_document(&doc, None);
        if diags.has_errors() || !diags.is_empty() {
            failures.push(format!("{}: schema checks: {diags}", case.name));
        }
        if doc.to_json() != *input {
            failures.push(format!(
                "{}: round trip differs:\n    in:  {input}\n    out: {}",
                case.name,
                doc.to_json()
            ));
        }
        // The serde impls go through the same code.
        match serde_json::from_value::<LexiconDoc>(input.clone()) {
            Ok(d) if serde_json::to_value(&d).ok().as_ref() == Some(input) => {}
            Ok(_) => failures.push(format!("{}: serde round trip differs", case.name)),
            Err(e) => failures.push(format!("{}: serde: {e}", case.name)),
        }
    }
    report("lexicon-valid", &failures);
}

/// Conversion, then the schema checks: `Err` with every problem, or `Ok`.
fn verdict(input: &Value) -> Result<(), String> {
    match LexiconDoc::from_json(input) {
        Err(e) => Err(e.to_string()),
        Ok(doc) => check_document(&doc, None)
            .into_result()
            .map(|_| ())
            .map_err(|d| d.to_string()),
    }
}

#[test]
fn invalid_lexicons_are_rejected() {
    let Some(dir) = lexicon_dir() else { return };
    let cases = cases(&dir.join("lexicon-invalid.json"));
    assert_eq!(cases.len(), 7, "lexicon-invalid.json case count");
    // What each case is about; the rejection must mention it.
    let reasons = [
        ("invalid lexicon field", "lexicon: expected an integer"),
        ("invalid id field", "id: expected a string"),
        ("invalid NSID", "id: invalid nsid"),
        (
            "defined unknown",
            "type `unknown` is not allowed as a named definition",
        ),
        (
            "defined ref",
            "type `ref` is not allowed as a named definition",
        ),
        // Its `record` also lacks `properties`, which is reported first; the fixed variant
        // below shows the primary-type rule on its own.
        (
            "non-main primary",
            "record: missing required key `properties`",
        ),
        (
            "record missing type object",
            "record: missing required key `type`",
        ),
    ];
    let mut failures = Vec::new();
    for case in &cases {
        match verdict(&case.value["lexicon"]) {
            Ok(()) => failures.push(format!("{}: accepted", case.name)),
            Err(msg) => {
                eprintln!("{}: rejected: {}", case.name, msg.replace('\n', " | "));
                match reasons.iter().find(|(n, _)| *n == case.name) {
                    Some((_, why)) if msg.contains(why) => {}
                    Some((_, why)) => {
                        failures.push(format!(
                            "{}: rejected, but not for {why:?}: {msg}",
                            case.name
                        ));
                    }
                    None => failures.push(format!("{}: unexpected case", case.name)),
                }
            }
        }
    }
    // "non-main primary" with the missing `properties` added.
    if let Some(case) = cases.iter().find(|c| c.name == "non-main primary") {
        let mut fixed = case.value["lexicon"].clone();
        fixed["defs"]["demo"]["record"]["properties"] = json!({});
        match verdict(&fixed) {
            Err(msg) if msg.contains("may only be defined as `main`") => {}
            other => failures.push(format!("non-main primary (with properties): {other:?}")),
        }
    }
    report("lexicon-invalid", &failures);
}

#[test]
fn catalog_loads_checks_and_round_trips() {
    let Some(dir) = lexicon_dir() else { return };
    let cat = catalog(&dir);
    let ids: Vec<&str> = cat.docs().map(|d| d.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "example.lexicon.permissionset",
            "example.lexicon.procedure",
            "example.lexicon.query",
            "example.lexicon.record",
            "example.lexicon.subscription",
        ]
    );
    let mut failures = Vec::new();
    for (doc, file) in cat.entries() {
        let file = file.expect("loaded from a file");
        let original = lexicon_common::read_json(file);
        if doc.to_json() != original {
            failures.push(format!("{}: round trip differs", file.display()));
        }
    }
    let diags = cat.check();
    for p in diags.errors() {
        failures.push(format!("check error: {p}"));
    }
    // The only warning: the procedure input refs a document that is not in the catalog.
    let warnings: Vec<String> = diags.warnings().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("app.bsky.actor.defs#preferences")
            && warnings[0].contains("example.lexicon.procedure#main")
            && warnings[0].contains("input.schema.properties.preferences.ref"),
        "{}",
        warnings[0]
    );
    report("catalog", &failures);
}

#[test]
fn unresolvable_ref_fails_only_when_followed() {
    let Some(dir) = lexicon_dir() else { return };
    let cat = catalog(&dir);
    // Resolving the absent def is an error...
    let err = cat
        .resolve_str("app.bsky.actor.defs#preferences")
        .unwrap_err();
    assert!(err.to_string().contains("app.bsky.actor.defs"), "{err}");
    // ...and so is validating data that needs it.
    let errs = cat
        .validate_input(
            "example.lexicon.procedure",
            &json!({"preferences": {"a": 1}}),
        )
        .unwrap_err();
    assert!(errs.has("$.preferences", "ref"), "{errs}");
    // Data that does not reach it is fine, and so is everything else in the catalog.
    cat.validate_output("example.lexicon.procedure", &json!({"array": [1, 2]}))
        .unwrap();
    let missing = cat
        .validate_input("example.lexicon.procedure", &json!({}))
        .unwrap_err();
    assert!(missing.has("$.preferences", "required"), "{missing}");
}

#[test]
fn valid_record_data_validates() {
    let Some(dir) = lexicon_dir() else { return };
    let cat = catalog(&dir);
    let cases = cases(&dir.join("record-data-valid.json"));
    assert_eq!(cases.len(), 3, "record-data-valid.json case count");
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(e) = cat.validate_record(RECORD_NSID, &case.value["data"]) {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    report("record-data-valid", &failures);
}

#[test]
fn invalid_record_data_fails() {
    let Some(dir) = lexicon_dir() else { return };
    let cat = catalog(&dir);
    let cases = cases(&dir.join("record-data-invalid.json"));
    assert_eq!(cases.len(), 50, "record-data-invalid.json case count");
    let mut failures = Vec::new();
    for case in &cases {
        match cat.validate_record(RECORD_NSID, &case.value["data"]) {
            Ok(()) => failures.push(format!("{}: accepted", case.name)),
            Err(e) => eprintln!(
                "{}: rejected: {}",
                case.name,
                e.to_string().replace('\n', " |")
            ),
        }
    }
    report("record-data-invalid", &failures);
}

/// Each failing fixture, fixed to include `integer`, must still fail, and at the right path.
/// This catches a validator that only passes the `unknown` cases thanks to the missing
/// required field.
#[test]
fn invalid_record_data_fails_for_the_intended_reason() {
    let Some(dir) = lexicon_dir() else { return };
    let cat = catalog(&dir);
    let mut failures = Vec::new();
    for case in cases(&dir.join("record-data-invalid.json")) {
        let mut data = case.value["data"].clone();
        if case.name == "missing required field" {
            continue;
        }
        let obj = data.as_object_mut().expect("record is an object");
        obj.entry("integer").or_insert(json!(1));
        // The field the case is about: the one key besides $type and integer, or `integer`.
        let field = obj
            .keys()
            .find(|k| *k != "$type" && *k != "integer")
            .cloned()
            .unwrap_or_else(|| "integer".to_owned());
        match cat.validate_record(RECORD_NSID, &data) {
            Ok(()) => failures.push(format!("{} (with integer): accepted", case.name)),
            Err(e) => {
                let prefix = atlex_lexicon::path_key("$", &field);
                if !e.errors().iter().all(|err| err.path.starts_with(&prefix)) {
                    failures.push(format!(
                        "{} (with integer): failure outside {prefix}: {e}",
                        case.name
                    ));
                }
            }
        }
    }
    report("record-data-invalid (isolated)", &failures);
}

fn record(extra: Value) -> Value {
    let mut r = json!({"$type": RECORD_NSID, "integer": 1});
    if let (Some(obj), Value::Object(more)) = (r.as_object_mut(), extra) {
        obj.extend(more);
    }
    r
}

#[test]
fn isolated_cid_link_cases() {
    let Some(dir) = lexicon_dir() else { return };
    let cat = catalog(&dir);
    cat.validate_record(RECORD_NSID, &record(json!({"cid-link": {"$link": LINK}})))
        .unwrap();
    for bad in [
        json!(LINK),
        json!({"$bytes": "AAAA"}),
        json!({"a": 1}),
        json!([{"$link": LINK}]),
    ] {
        let errs = cat
            .validate_record(RECORD_NSID, &record(json!({ "cid-link": bad })))
            .expect_err("not a cid-link");
        assert!(errs.has("$[\"cid-link\"]", "type"), "{bad}: {errs}");
    }
    // A malformed link is a data-model error.
    let errs = cat
        .validate_record(
            RECORD_NSID,
            &record(json!({"cid-link": {"$link": "not a cid"}})),
        )
        .unwrap_err();
    assert!(
        errs.errors()
            .iter()
            .any(|e| matches!(e.constraint, Constraint::DataModel { .. })),
        "{errs}"
    );
}

#[test]
fn isolated_unknown_cases() {
    let Some(dir) = lexicon_dir() else { return };
    let cat = catalog(&dir);
    let blob = json!({"$type": "blob", "mimeType": "text/plain", "size": 12345,
                      "ref": {"$link": LINK}});
    for (what, bad) in [
        ("bool", json!(false)),
        ("integer", json!(7)),
        ("string", json!("x")),
        ("array", json!([])),
        ("bytes", json!({"$bytes": "123"})),
        ("link", json!({"$link": LINK})),
        ("blob", blob),
    ] {
        let errs = cat
            .validate_record(RECORD_NSID, &record(json!({ "unknown": bad })))
            .map(|()| format!("unknown = {what}: accepted"));
        match errs {
            Ok(msg) => panic!("{msg}"),
            Err(e) => assert!(e.has("$.unknown", "type"), "unknown = {what}: {e}"),
        }
    }
    for good in [
        json!({}),
        json!({"a": {"$bytes": "AAAA"}, "b": [1, 2]}),
        json!({"$type": "com.example.whatever", "x": null}),
    ] {
        cat.validate_record(RECORD_NSID, &record(json!({ "unknown": good })))
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn isolated_rule_cases() {
    let Some(dir) = lexicon_dir() else { return };
    let cat = catalog(&dir);
    let check = |extra: Value, path: &str, rule: &str| {
        let errs = cat
            .validate_record(RECORD_NSID, &record(extra.clone()))
            .expect_err(&format!("{extra} should fail"));
        assert!(
            errs.has(path, rule),
            "{extra}: expected {rule} at {path}: {errs}"
        );
        assert_eq!(errs.errors().len(), 1, "{extra}: {errs}");
    };
    check(json!({"rangeInteger": 9}), "$.rangeInteger", "minimum");
    check(json!({"rangeInteger": 21}), "$.rangeInteger", "maximum");
    check(json!({"constInteger": 41}), "$.constInteger", "const");
    check(json!({"enumInteger": 5}), "$.enumInteger", "enum");
    check(
        json!({"lenString": "123456789"}),
        "$.lenString",
        "minLength",
    );
    check(
        json!({"graphemeString": "🇩🇪🇩🇪"}),
        "$.graphemeString",
        "minGraphemes",
    );
    check(
        json!({"lenArray": [1, 2, 3, 4, 5, 6]}),
        "$.lenArray",
        "maxLength",
    );
    check(
        json!({"sizeBytes": {"$bytes": "AAAA"}}),
        "$.sizeBytes",
        "minLength",
    );
    check(
        json!({"formats": {"did": "did:x"}}),
        "$.formats.did",
        "format",
    );
    check(json!({"object": {"a": "x"}}), "$.object.a", "type");
    check(
        json!({"ref": {"$type": "example.lexicon.record#demoObjectTwo", "a": 1}}),
        "$.ref.$type",
        "$type",
    );
    check(
        json!({"union": {"$type": "example.lexicon.record#demoObject#main"}}),
        "$.union.$type",
        "$type",
    );
    check(
        json!({"union": {"$type": "example.lexicon.record#demoObject", "a": true}}),
        "$.union.a",
        "type",
    );
    check(
        json!({"closedUnion": {"$type": "example.lexicon.record#demoObjectTwo"}}),
        "$.closedUnion.$type",
        "closed",
    );
    check(json!({"boolean": null}), "$.boolean", "nullable");
    // Record $type rules.
    let errs = cat
        .validate_record(RECORD_NSID, &json!({"integer": 1}))
        .unwrap_err();
    assert!(errs.has("$.$type", "$type"), "{errs}");
    let errs = cat
        .validate_record(
            RECORD_NSID,
            &json!({"$type": "example.lexicon.record#main", "integer": 1}),
        )
        .unwrap_err();
    assert!(errs.has("$.$type", "$type"), "{errs}");
    // An open union accepts an unlisted, unresolvable $type; a resolvable one is validated.
    cat.validate_record(
        RECORD_NSID,
        &record(json!({"union": {"$type": "com.example.other", "z": 1}})),
    )
    .unwrap();
    let errs = cat
        .validate_record(
            RECORD_NSID,
            &record(json!({"union": {"$type": "example.lexicon.subscription#yo", "seq": 1}})),
        )
        .unwrap_err();
    assert!(errs.has("$.union.yo", "required"), "{errs}");
    // All failures are reported, not just the first.
    let errs = cat
        .validate_record(
            RECORD_NSID,
            &record(json!({"rangeInteger": 0, "lenString": "", "boolean": "x"})),
        )
        .unwrap_err();
    assert_eq!(errs.errors().len(), 3, "{errs}");
}

#[test]
fn query_params_and_bodies() {
    let Some(dir) = lexicon_dir() else { return };
    let cat = catalog(&dir);
    let q = "example.lexicon.query";
    cat.validate_params(
        q,
        &json!({"stringField": "x", "array": [1, 2], "boolean": true}),
    )
    .unwrap();
    let errs = cat
        .validate_params(q, &json!({"integer": "1"}))
        .unwrap_err();
    assert!(errs.has("$.stringField", "required"), "{errs}");
    assert!(errs.has("$.integer", "type"), "{errs}");
    let errs = cat
        .validate_params(q, &json!({"stringField": "x", "handle": "not a handle"}))
        .unwrap_err();
    assert!(errs.has("$.handle", "format"), "{errs}");

    let parsed = cat
        .parse_query_params(
            q,
            [
                ("stringField", "hello"),
                ("array", "1"),
                ("array", "2"),
                ("boolean", "false"),
                ("other", "ignored"),
            ],
        )
        .unwrap();
    assert_eq!(
        Value::Object(parsed),
        json!({"stringField": "hello", "array": [1, 2], "boolean": false})
    );
    let errs = cat
        .parse_query_params(
            q,
            [("stringField", "a"), ("stringField", "b"), ("integer", "x")],
        )
        .unwrap_err();
    assert!(errs.has("$.stringField", "params"), "{errs}");
    assert!(errs.has("$.integer", "params"), "{errs}");

    cat.validate_output(q, &json!({"a": 1})).unwrap();
    assert!(
        cat.validate_output(q, &json!({"a": "x"}))
            .unwrap_err()
            .has("$.a", "type")
    );
    assert!(
        cat.validate_output(q, &json!([1]))
            .unwrap_err()
            .has("$", "type")
    );
    assert!(
        cat.validate_input(q, &json!({}))
            .unwrap_err()
            .has("$", "schema")
    );

    let s = "example.lexicon.subscription";
    cat.validate_message(s, "#yo", &json!({"seq": 1, "yo": true}))
        .unwrap();
    let errs = cat.validate_message(s, "#info", &json!({})).unwrap_err();
    assert!(errs.has("$.name", "required"), "{errs}");
    cat.validate_message(s, "#future", &json!({"x": 1}))
        .unwrap();
    cat.validate_params(s, &json!({"cursor": 5})).unwrap();
}
