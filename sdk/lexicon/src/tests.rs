//! Unit tests for conversion, the schema checks, the catalog and the validator: one test (or
//! one table row) per rule.

use serde_json::{Value, json};

use crate::*;

/// A document with the given defs.
fn doc_json(defs: Value) -> Value {
    json!({"lexicon": 1, "id": "com.example.test", "defs": defs})
}

/// Converts, expecting structural problems; returns their texts.
fn convert_errors(v: Value) -> Vec<String> {
    match LexiconDoc::from_json(&v) {
        Ok(_) => panic!("expected conversion errors for {v}"),
        Err(d) => d.problems().iter().map(ToString::to_string).collect(),
    }
}

fn parse(v: Value) -> LexiconDoc {
    LexiconDoc::from_json(&v).unwrap_or_else(|e| panic!("{e}"))
}

/// Converts (must succeed) and checks; returns (errors, warnings) as texts.
fn check(v: Value) -> (Vec<String>, Vec<String>) {
    let d = check_document(&parse(v), None);
    (
        d.errors().map(ToString::to_string).collect(),
        d.warnings().map(ToString::to_string).collect(),
    )
}

fn assert_has(list: &[String], needle: &str) {
    assert!(
        list.iter().any(|p| p.contains(needle)),
        "no problem containing {needle:?} in {list:#?}"
    );
}

fn check_errors(defs: Value, needle: &str) {
    let (errors, _) = check(doc_json(defs));
    assert_has(&errors, needle);
}

fn check_clean(defs: Value) {
    let (errors, warnings) = check(doc_json(defs));
    assert!(
        errors.is_empty() && warnings.is_empty(),
        "{errors:?} {warnings:?}"
    );
}

fn obj(props: Value) -> Value {
    json!({"type": "object", "properties": props})
}

// ------------------------------------------------------------------------------------------
// Conversion (structural rules)
// ------------------------------------------------------------------------------------------

#[test]
fn document_keys_are_required_and_typed() {
    let errs = convert_errors(json!({}));
    assert_has(&errs, "missing required key `lexicon`");
    assert_has(&errs, "missing required key `id`");
    assert_has(&errs, "missing required key `defs`");
    assert_has(
        &convert_errors(json!({"lexicon": "one", "id": "a.b.c", "defs": {}})),
        "lexicon: expected an integer, found \"one\"",
    );
    assert_has(
        &convert_errors(json!({"lexicon": 1.0, "id": "a.b.c", "defs": {}})),
        "lexicon: expected an integer, found 1.0",
    );
    assert_has(
        &convert_errors(json!({"lexicon": 1, "id": 2, "defs": {}})),
        "id: expected a string, found 2",
    );
    assert_has(
        &convert_errors(json!({"lexicon": 1, "id": "a.b.c", "defs": []})),
        "defs: expected an object of definitions",
    );
    assert_has(
        &convert_errors(json!({"lexicon": 1, "id": "a.b.c", "defs": {}, "description": 3})),
        "description: expected a string",
    );
    assert_has(
        &convert_errors(json!([])),
        "expected a JSON object, found an array",
    );
}

#[test]
fn non_definable_and_misplaced_types() {
    for t in ["ref", "union", "unknown", "params", "permission"] {
        let errs = convert_errors(doc_json(
            json!({"x": {"type": t, "ref": "a.b.c", "refs": []}}),
        ));
        assert_has(
            &errs,
            &format!("com.example.test#x: type: type `{t}` is not allowed as a named definition"),
        );
    }
    assert_has(
        &convert_errors(doc_json(json!({"x": {"type": "null"}}))),
        "unknown type \"null\"",
    );
    assert_has(
        &convert_errors(doc_json(json!({"x": {"description": "no type"}}))),
        "missing required key `type`",
    );
    for t in ["record", "token", "params", "query", "permission-set"] {
        let errs = convert_errors(doc_json(json!({"x": obj(json!({"p": {"type": t}}))})));
        assert_has(
            &errs,
            &format!("properties.p.type: type `{t}` is not allowed as a field"),
        );
    }
    let errs = convert_errors(doc_json(
        json!({"x": {"type": "array", "items": {"type": "token"}}}),
    ));
    assert_has(&errs, "items.type: type `token` is not allowed as a field");
}

#[test]
fn record_without_key_is_accepted_with_a_warning() {
    // Relaxed: the spec requires `key`, the reference implementation does not.
    let v = doc_json(json!({"main": {"type": "record", "record": obj(json!({}))}}));
    let doc = parse(v.clone());
    let Some(Def::Record(r)) = doc.main() else {
        panic!("not a record")
    };
    assert_eq!(r.key, RecordKey::Any);
    assert!(!r.key_given);
    assert_eq!(doc.to_json(), v, "the missing key is not written back");
    let (e, w) = check(v);
    assert!(e.is_empty(), "{e:?}");
    assert_has(&w, "com.example.test#main: record has no `key`");
    // A key that is there but wrong is still an error.
    let errs = convert_errors(doc_json(
        json!({"main": {"type": "record", "key": "self", "record": obj(json!({}))}}),
    ));
    assert_has(
        &errs,
        "key: expected tid, nsid, any or literal:<record-key>",
    );
}

#[test]
fn required_keys_of_each_type() {
    let cases = [
        (json!({"type": "array"}), "missing required key `items`"),
        (
            json!({"type": "object"}),
            "missing required key `properties`",
        ),
        (
            json!({"type": "record", "key": "tid"}),
            "missing required key `record`",
        ),
        (
            json!({"type": "record", "key": "tid", "record": {"properties": {}}}),
            "record: missing required key `type` (expected \"object\")",
        ),
        (
            json!({"type": "record", "key": "tid", "record": {"type": "array", "items": {"type": "integer"}, "properties": {}}}),
            "record.type: expected \"object\", found \"array\"",
        ),
        (
            json!({"type": "permission-set"}),
            "missing required key `permissions`",
        ),
        (
            json!({"type": "permission-set", "permissions": [{"type": "permission"}]}),
            "permissions[0]: missing required key `resource`",
        ),
        (
            json!({"type": "permission-set", "permissions": [{"resource": "repo"}]}),
            "permissions[0]: missing required key `type` (expected \"permission\")",
        ),
        (
            json!({"type": "query", "output": {}}),
            "output: missing required key `encoding`",
        ),
        (
            json!({"type": "query", "errors": [{}]}),
            "errors[0]: missing required key `name`",
        ),
        (
            json!({"type": "query", "errors": ["x"]}),
            "errors[0]: expected a JSON object",
        ),
        (
            json!({"type": "subscription", "message": {}}),
            "message: missing required key `schema`",
        ),
        (
            json!({"type": "query", "parameters": {"type": "params"}}),
            "parameters: missing required key `properties`",
        ),
    ];
    for (def, needle) in cases {
        assert_has(&convert_errors(doc_json(json!({ "main": def }))), needle);
    }
    assert_has(
        &convert_errors(doc_json(json!({"x": obj(json!({"r": {"type": "ref"}}))}))),
        "properties.r: missing required key `ref`",
    );
    assert_has(
        &convert_errors(doc_json(json!({"x": obj(json!({"u": {"type": "union"}}))}))),
        "properties.u: missing required key `refs`",
    );
}

#[test]
fn value_types_of_schema_keys() {
    let cases = [
        (
            json!({"type": "string", "maxLength": "x"}),
            "maxLength: expected a non-negative integer, found \"x\"",
        ),
        (
            json!({"type": "string", "maxLength": -1}),
            "maxLength: expected a non-negative integer, found -1",
        ),
        (
            json!({"type": "string", "minGraphemes": 1.5}),
            "minGraphemes: expected a non-negative integer, found 1.5",
        ),
        (
            json!({"type": "integer", "minimum": 18446744073709551615_u64}),
            "out of range for a signed 64-bit integer",
        ),
        (
            json!({"type": "integer", "enum": [1, "2"]}),
            "enum[1]: expected an integer",
        ),
        (
            json!({"type": "integer", "enum": 1}),
            "enum: expected an array",
        ),
        (
            json!({"type": "string", "knownValues": [1]}),
            "knownValues[0]: expected a string",
        ),
        (
            json!({"type": "string", "format": "email"}),
            "format: unknown string format \"email\"",
        ),
        (
            json!({"type": "boolean", "default": "true"}),
            "default: expected a boolean",
        ),
        (
            json!({"type": "string", "const": 1}),
            "const: expected a string",
        ),
        (
            json!({"type": "blob", "accept": "image/*"}),
            "accept: expected an array",
        ),
        (
            json!({"type": "blob", "maxSize": -5}),
            "maxSize: expected a non-negative integer",
        ),
        (
            json!({"type": "object", "properties": [], }),
            "properties: expected an object of properties",
        ),
        (
            json!({"type": "object", "properties": {}, "required": "a"}),
            "required: expected an array",
        ),
        (
            json!({"type": "object", "properties": {"p": 1}}),
            "properties.p: expected a JSON object, found 1",
        ),
    ];
    for (def, needle) in cases {
        assert_has(&convert_errors(doc_json(json!({ "x": def }))), needle);
    }
}

#[test]
fn record_key_refs_unions_params_bodies() {
    assert_has(
        &convert_errors(doc_json(
            json!({"main": {"type": "record", "key": "self", "record": obj(json!({}))}}),
        )),
        "key: expected tid, nsid, any or literal:<record-key>, found \"self\"",
    );
    assert_has(
        &convert_errors(doc_json(
            json!({"x": obj(json!({"r": {"type": "ref", "ref": ""}}))}),
        )),
        "properties.r.ref: invalid reference \"\": empty reference",
    );
    assert_has(
        &convert_errors(doc_json(
            json!({"x": obj(json!({"u": {"type": "union", "refs": ["#a", "a#b#c"]}}))}),
        )),
        "properties.u.refs[1]: invalid reference \"a#b#c\"",
    );
    assert_has(
        &convert_errors(doc_json(
            json!({"x": obj(json!({"u": {"type": "union", "refs": [], "closed": "yes"}}))}),
        )),
        "properties.u.closed: expected a boolean",
    );
    let sub = |schema: Value| {
        doc_json(json!({"main": {"type": "subscription", "message": {"schema": schema}}}))
    };
    assert_has(
        &convert_errors(sub(obj(json!({})))),
        "message.schema.type: expected \"union\", found \"object\"",
    );
    let q = |params: Value| doc_json(json!({"main": {"type": "query", "parameters": params}}));
    assert_has(
        &convert_errors(q(
            json!({"type": "params", "properties": {"u": {"type": "unknown"}}}),
        )),
        "parameters.properties.u.type: type `unknown` is not allowed as a parameter",
    );
    assert_has(
        &convert_errors(q(
            json!({"type": "params", "properties": {"a": {"type": "array", "items": obj(json!({}))}}}),
        )),
        "parameters.properties.a.items.type: type `object` is not allowed as an array parameter item",
    );
    assert_has(
        &convert_errors(q(
            json!({"type": "params", "properties": {}, "nullable": []}),
        )),
        "parameters.nullable: `nullable` is not allowed in params",
    );
    assert_has(
        &convert_errors(q(json!({"type": "object", "properties": {}}))),
        "parameters.type: expected \"params\", found \"object\"",
    );
    assert_has(
        &convert_errors(doc_json(
            json!({"main": {"type": "query", "output": {"encoding": "application/json", "schema": {"type": "array", "items": {"type": "integer"}}}}}),
        )),
        "output.schema.type: type `array` is not allowed as a body schema",
    );
    assert_has(
        &convert_errors(doc_json(
            json!({"main": {"type": "permission-set", "permissions": [], "title:lang": {"fr": 1}}}),
        )),
        "title:lang.fr: expected a string",
    );
}

#[test]
fn all_structural_problems_are_reported_at_once() {
    let errs = convert_errors(doc_json(json!({
        "a": {"type": "string", "maxLength": "x", "format": "nope"},
        "b": {"type": "ref", "ref": "x.y.z"},
        "c": {"type": "array"},
        "d": obj(json!({"p": {"type": "integer", "minimum": 0.5}})),
    })));
    assert_eq!(errs.len(), 5, "{errs:#?}");
    assert_has(&errs, "com.example.test#a: maxLength");
    assert_has(&errs, "com.example.test#a: format");
    assert_has(&errs, "com.example.test#b: type");
    assert_has(&errs, "com.example.test#c: missing required key `items`");
    assert_has(&errs, "com.example.test#d: properties.p.minimum");
}

/// Every node type, with every key and an extra key, survives a round trip unchanged.
#[test]
fn kitchen_sink_round_trip_keeps_extras_and_presence() {
    let x = json!({"vendor": [1, {"deep": null}]});
    let v = json!({
        "lexicon": 1, "id": "com.example.sink", "revision": 3, "description": "d", "$schema": "x",
        "defs": {
            "main": {"type": "procedure", "description": "p", "x-extra": x,
                "parameters": {"type": "params", "description": "ps", "required": ["a"], "x-p": 1,
                    "properties": {
                        "a": {"type": "string", "format": "did", "x": 1},
                        "b": {"type": "array", "items": {"type": "integer", "minimum": 1, "x": 2}, "minLength": 0, "maxLength": 3, "x": 3},
                        "c": {"type": "boolean", "default": false},
                        "d": {"type": "integer", "default": 5, "enum": [5, 6]}}},
                "input": {"encoding": "application/json", "description": "in", "x": 4,
                    "schema": {"type": "ref", "ref": "#obj", "description": "r", "x": 5}},
                "output": {"encoding": "*/*"},
                "errors": [{"name": "Oops", "description": "o", "x": 6}, {"name": "Other"}]},
            "obj": {"type": "object", "description": "o", "required": [], "nullable": ["n"], "x": 7,
                "properties": {
                    "n": {"type": "string", "minLength": 1, "maxLength": 2, "minGraphemes": 1, "maxGraphemes": 2,
                          "enum": ["a"], "knownValues": ["b", "com.example.sink#tok"], "default": "a", "description": "s"},
                    "k": {"type": "string", "const": "c"},
                    "bo": {"type": "boolean", "const": true, "description": "b"},
                    "by": {"type": "bytes", "minLength": 1, "maxLength": 9, "x": 8},
                    "cl": {"type": "cid-link", "description": "c", "x": 9},
                    "bl": {"type": "blob", "accept": ["image/*"], "maxSize": 10, "x": 10},
                    "ar": {"type": "array", "items": {"type": "array", "items": {"type": "unknown", "x": 11}}},
                    "in": {"type": "object", "properties": {}},
                    "u": {"type": "union", "refs": ["#obj", "com.example.other"], "closed": false, "x": 12},
                    "u2": {"type": "union", "refs": []},
                    "r": {"type": "ref", "ref": "com.example.other#main"},
                    "i": {"type": "integer", "const": 3, "minimum": -1, "maximum": 9}}},
            "tok": {"type": "token", "description": "t", "x": 13},
            "str": {"type": "string", "format": "at-uri"},
            "arr": {"type": "array", "items": {"type": "ref", "ref": "#obj"}},
            "bool": {"type": "boolean"}, "int": {"type": "integer"}, "bytes": {"type": "bytes"},
            "cid": {"type": "cid-link"}, "blob": {"type": "blob"}
        }
    });
    let doc = parse(v.clone());
    assert_eq!(doc.to_json(), v);
    let text = serde_json::to_string(&doc).unwrap();
    let back: LexiconDoc = serde_json::from_str(&text).unwrap();
    assert_eq!(back, doc);

    for (def, extra) in [
        json!({"main": {"type": "record", "key": "literal:self", "record": obj(json!({})), "x": 1}}),
        json!({"main": {"type": "query", "x": 1}}),
        json!({"main": {"type": "subscription", "parameters": {"type": "params", "properties": {}},
            "message": {"schema": {"type": "union", "refs": ["#a"]}, "description": "m", "x": 2},
            "errors": [], "x": 1}, "a": obj(json!({}))}),
        json!({"main": {"type": "permission-set", "title": "t", "title:lang": {}, "detail": "d",
            "detail:lang": {"fr": "x"}, "description": "p", "x": 1,
            "permissions": [{"type": "permission", "resource": "repo", "collection": ["a.b.c"], "x": {"y": 1}}]}}),
    ]
    .into_iter()
    .map(|d| (d, ()))
    {
        let () = extra;
        let v = doc_json(def);
        assert_eq!(parse(v.clone()).to_json(), v);
    }
}

#[test]
fn refs_lists_every_reference_with_its_path() {
    let doc = parse(doc_json(json!({
        "main": {"type": "procedure",
            "input": {"encoding": "application/json", "schema": {"type": "ref", "ref": "#o"}},
            "output": {"encoding": "application/json", "schema": {"type": "union", "refs": ["a.b.c", "#o"]}}},
        "o": obj(json!({"x": {"type": "array", "items": {"type": "ref", "ref": "d.e.f#g"}}})),
    })));
    let got: Vec<(String, String, RefKind)> = doc
        .refs()
        .into_iter()
        .map(|u| {
            (
                format!("{}:{}", u.def, u.path),
                u.reference.to_string(),
                u.kind,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("main:input.schema.ref".into(), "#o".into(), RefKind::Ref),
            (
                "main:output.schema.refs[0]".into(),
                "a.b.c".into(),
                RefKind::Union
            ),
            (
                "main:output.schema.refs[1]".into(),
                "#o".into(),
                RefKind::Union
            ),
            (
                "o:properties.x.items.ref".into(),
                "d.e.f#g".into(),
                RefKind::Ref
            ),
        ]
    );
}

// ------------------------------------------------------------------------------------------
// Schema checks
// ------------------------------------------------------------------------------------------

#[test]
fn document_level_checks() {
    let (e, _) =
        check(json!({"lexicon": 2, "id": "com.example.test", "defs": {"a": {"type": "token"}}}));
    assert_has(&e, "lexicon: unsupported lexicon version 2 (expected 1)");
    let (e, _) =
        check(json!({"lexicon": 1, "id": "one-two-three", "defs": {"a": {"type": "token"}}}));
    assert_has(&e, "id: invalid nsid");
    let (e, _) = check(json!({"lexicon": 1, "id": "com.example.test", "defs": {}}));
    assert_has(&e, "defs: a lexicon must have at least one definition");
    let (e, w) = check(doc_json(
        json!({"": {"type": "token"}, "a#b": {"type": "token"}, "a.b": {"type": "token"}}),
    ));
    assert_has(&e, "definition name is empty");
    assert_has(&e, "definition name \"a#b\" contains `#`");
    assert_has(&w, "definition name \"a.b\" contains `.`");
    // TS accepts names like these; so do we.
    check_clean(json!({"9": {"type": "token"}, "ob-je-c$t": {"type": "token"}}));
}

#[test]
fn primary_types_only_as_main() {
    for def in [
        json!({"type": "record", "key": "any", "record": obj(json!({}))}),
        json!({"type": "query"}),
        json!({"type": "procedure"}),
        json!({"type": "subscription", "message": {"schema": {"type": "union", "refs": []}}}),
        json!({"type": "permission-set", "permissions": []}),
    ] {
        let t = def["type"].as_str().unwrap().to_owned();
        check_errors(
            json!({ "demo": def.clone() }),
            &format!(
                "com.example.test#demo: type: `{t}` is a primary type and may only be defined as `main`"
            ),
        );
        let (e, _) = check(doc_json(json!({ "main": def })));
        assert!(e.is_empty(), "{t} as main: {e:?}");
    }
    // main may hold a non-primary type.
    check_clean(json!({"main": obj(json!({}))}));
}

#[test]
fn default_and_const_are_exclusive() {
    for def in [
        json!({"type": "boolean", "default": true, "const": true}),
        json!({"type": "integer", "default": 1, "const": 1}),
        json!({"type": "string", "default": "a", "const": "a"}),
    ] {
        check_errors(
            json!({ "x": def }),
            "`default` and `const` are mutually exclusive",
        );
    }
    check_errors(
        json!({"x": obj(json!({"p": {"type": "integer", "default": 1, "const": 2}}))}),
        "com.example.test#x: properties.p: `default` and `const`",
    );
}

#[test]
fn min_not_greater_than_max() {
    let cases = [
        (
            json!({"type": "integer", "minimum": 5, "maximum": 4}),
            "minimum (5) is greater than maximum (4)",
        ),
        (
            json!({"type": "string", "minLength": 5, "maxLength": 4}),
            "minLength (5) is greater than maxLength (4)",
        ),
        (
            json!({"type": "string", "minGraphemes": 5, "maxGraphemes": 4}),
            "minGraphemes (5) is greater than maxGraphemes (4)",
        ),
        (
            json!({"type": "bytes", "minLength": 5, "maxLength": 4}),
            "minLength (5)",
        ),
        (
            json!({"type": "array", "items": {"type": "integer"}, "minLength": 5, "maxLength": 4}),
            "minLength (5)",
        ),
        (
            json!({"type": "array", "items": {"type": "integer", "minimum": 2, "maximum": 1}}),
            "items: minimum (2)",
        ),
    ];
    for (def, needle) in cases {
        check_errors(json!({ "x": def }), needle);
    }
    check_errors(
        json!({"main": {"type": "query", "parameters": {"type": "params", "properties": {
            "a": {"type": "array", "items": {"type": "string"}, "minLength": 3, "maxLength": 1}}}}}),
        "parameters.properties.a: minLength (3)",
    );
    check_clean(json!({"x": {"type": "integer", "minimum": 4, "maximum": 4}}));
}

#[test]
fn blob_constraints() {
    check_errors(
        json!({"x": {"type": "blob", "maxSize": 0}}),
        "maxSize: maxSize must be greater than 0",
    );
    let (_, w) = check(doc_json(
        json!({"x": {"type": "blob", "accept": ["image/*", "text/ht*", "*"]}}),
    ));
    assert_has(&w, "accept[1]: MIME pattern \"text/ht*\" is not supported");
    assert_has(&w, "accept[2]: MIME pattern \"*\"");
    check_clean(
        json!({"x": {"type": "blob", "accept": ["image/png", "video/*", "*/*"], "maxSize": 1}}),
    );
}

#[test]
fn required_and_nullable_are_properties() {
    check_errors(
        json!({"x": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["b"]}}),
        "required[0]: \"b\" is listed in `required` but is not a property",
    );
    // Relaxed (the reference accepts it): a warning, not an error.
    let (e, w) = check(doc_json(
        json!({"x": {"type": "object", "properties": {}, "nullable": ["n"]}}),
    ));
    assert!(e.is_empty(), "{e:?}");
    assert_has(
        &w,
        "nullable[0]: \"n\" is listed in `nullable` but is not a property (ignored",
    );
    check_errors(
        json!({"main": {"type": "record", "key": "tid", "record": {"type": "object", "properties": {}, "required": ["z"]}}}),
        "com.example.test#main: record.required[0]",
    );
    check_errors(
        json!({"main": {"type": "query", "parameters": {"type": "params", "properties": {}, "required": ["q"]}}}),
        "parameters.required[0]: \"q\" is listed in `required`",
    );
    check_errors(
        json!({"x": obj(json!({"": {"type": "integer"}}))}),
        "property name is empty",
    );
    let (_, w) = check(doc_json(
        json!({"x": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a", "a"]}}),
    ));
    assert_has(&w, "\"a\" is listed twice in `required`");
}

#[test]
fn bodies_and_errors() {
    let body = |enc: &str| json!({"main": {"type": "procedure", "input": {"encoding": enc}}});
    check_errors(
        body("application/json; charset=utf-8"),
        "input.encoding: invalid encoding",
    );
    check_errors(body("text/plain, text/html"), "input.encoding");
    check_errors(body(""), "input.encoding: invalid encoding \"\": empty");
    check_errors(body("json"), "expected type/subtype");
    check_clean(body("*/*"));
    check_clean(body("application/vnd.ipld.car"));
    let errs = |names: Value| json!({"main": {"type": "query", "errors": names}});
    check_errors(
        errs(json!([{"name": ""}])),
        "errors[0].name: error name is empty",
    );
    check_errors(
        errs(json!([{"name": "Bad Name"}])),
        "errors[0].name: error name \"Bad Name\" contains whitespace",
    );
    let (_, w) = check(doc_json(errs(json!([{"name": "A"}, {"name": "A"}]))));
    assert_has(&w, "errors[1].name: error name \"A\" is declared twice");
}

#[test]
fn subscriptions_and_unions() {
    // Relaxed (optional in the spec and the reference): a warning, not an error.
    let (e, w) = check(doc_json(json!({"main": {"type": "subscription"}})));
    assert!(e.is_empty(), "{e:?}");
    assert_has(&w, "subscription has no `message`");
    check_errors(
        json!({"x": obj(json!({"u": {"type": "union", "refs": [], "closed": true}}))}),
        "properties.u: a closed union must list at least one ref",
    );
    check_errors(
        json!({"main": {"type": "subscription", "message": {"schema": {"type": "union", "refs": [], "closed": true}}}}),
        "message.schema: a closed union must list at least one ref",
    );
    // An empty open union means "any typed object".
    check_clean(json!({"x": obj(json!({"u": {"type": "union", "refs": []}}))}));
    let (_, w) = check(doc_json(
        json!({"o": obj(json!({})), "x": obj(json!({"u": {"type": "union", "refs": ["#o", "com.example.test#o"]}}))}),
    ));
    assert_has(
        &w,
        "properties.u.refs[1]: \"com.example.test#o\" is listed twice",
    );
}

#[test]
fn local_reference_targets() {
    let defs = |field: Value| {
        json!({
            "tok": {"type": "token"},
            "str": {"type": "string"},
            "o": obj(json!({})),
            "main": {"type": "record", "key": "tid", "record": obj(json!({"f": field}))},
        })
    };
    check_errors(
        defs(json!({"type": "ref", "ref": "#missing"})),
        "record.properties.f.ref: reference \"#missing\": this document has no definition \"missing\"",
    );
    check_errors(
        defs(json!({"type": "ref", "ref": "com.example.test#missing"})),
        "no definition \"missing\"",
    );
    check_errors(
        defs(json!({"type": "ref", "ref": "#tok"})),
        "points at a `token`, which cannot be referenced as data",
    );
    check_errors(
        defs(json!({"type": "union", "refs": ["#str"]})),
        "record.properties.f.refs[0]: union member \"#str\" points at a `string`",
    );
    check_errors(
        defs(json!({"type": "union", "refs": ["#tok"]})),
        "union members must be objects or records",
    );
    check_errors(
        defs(json!({"type": "ref", "ref": "Not-An-Nsid#x"})),
        "reference \"Not-An-Nsid#x\": invalid nsid",
    );
    // Fine: refs to strings, objects and the record itself; refs into other documents are
    // left to Catalog::check.
    for ok in ["#str", "#o", "com.example.test", "com.example.test#main"] {
        let (e, _) = check(doc_json(defs(json!({"type": "ref", "ref": ok}))));
        assert!(e.is_empty(), "{ok}: {e:?}");
    }
    let (e, _) = check(doc_json(defs(
        json!({"type": "union", "refs": ["#o", "com.example.test", "other.doc.here#x"]}),
    )));
    assert!(e.is_empty(), "{e:?}");
    let (e, _) = check(doc_json(
        json!({"main": {"type": "query"}, "x": obj(json!({"f": {"type": "ref", "ref": "#main"}}))}),
    ));
    assert_has(&e, "points at a `query`");
}

#[test]
fn record_keys() {
    check_clean(
        json!({"main": {"type": "record", "key": "literal:self", "record": obj(json!({}))}}),
    );
    check_errors(
        json!({"main": {"type": "record", "key": "literal:..", "record": obj(json!({}))}}),
        "key: literal record key: invalid record-key \"..\"",
    );
    check_errors(
        json!({"main": {"type": "record", "key": "literal:", "record": obj(json!({}))}}),
        "key: literal record key",
    );
}

fn perm_set(perms: Value) -> Value {
    json!({"main": {"type": "permission-set", "permissions": perms}})
}

#[test]
fn permission_sets() {
    check_clean(perm_set(json!([
        {"type": "permission", "resource": "repo", "collection": ["a.b.c", "d.e.f"], "action": ["create"]},
        {"type": "permission", "resource": "rpc", "lxm": ["a.b.c"], "aud": "*"},
        {"type": "permission", "resource": "rpc", "lxm": ["*"], "inheritAud": true},
    ])));
    let cases = [
        (
            json!({"type": "permission", "resource": ""}),
            "permissions[0].resource: resource is empty",
        ),
        (
            json!({"type": "permission", "resource": "repo"}),
            "permissions[0].collection: `collection` is required",
        ),
        (
            json!({"type": "permission", "resource": "repo", "collection": []}),
            "`collection` must not be empty",
        ),
        (
            json!({"type": "permission", "resource": "repo", "collection": "a.b.c"}),
            "`collection` must be an array of strings",
        ),
        (
            json!({"type": "permission", "resource": "repo", "collection": ["*"]}),
            "collection[0]: `*` is not allowed in `collection`",
        ),
        (
            json!({"type": "permission", "resource": "repo", "collection": ["nope"]}),
            "collection[0]: invalid nsid",
        ),
        (
            json!({"type": "permission", "resource": "repo", "collection": ["a.b.c", "a.b.c"]}),
            "collection[1]: \"a.b.c\" is listed twice",
        ),
        (
            json!({"type": "permission", "resource": "repo", "collection": ["a.b.c"], "action": ["read"]}),
            "action[0]: unknown action \"read\"",
        ),
        (
            json!({"type": "permission", "resource": "repo", "collection": ["a.b.c"], "action": "create"}),
            "`action` must be an array of strings",
        ),
        (
            json!({"type": "permission", "resource": "rpc", "aud": "*"}),
            "permissions[0].lxm: `lxm` is required",
        ),
        (
            json!({"type": "permission", "resource": "rpc", "lxm": ["a.b.c"]}),
            "aud: `aud` is required unless `inheritAud` is true",
        ),
        (
            json!({"type": "permission", "resource": "rpc", "lxm": ["a.b.c"], "inheritAud": false}),
            "`aud` is required",
        ),
        (
            json!({"type": "permission", "resource": "rpc", "lxm": ["a.b.c"], "aud": "did:web:api.example.com#svc"}),
            "a fixed service is not allowed",
        ),
        (
            json!({"type": "permission", "resource": "rpc", "lxm": ["*"], "aud": "*"}),
            "together with `aud: \"*\"` is not allowed",
        ),
        (
            json!({"type": "permission", "resource": "rpc", "lxm": ["a.b.c"], "inheritAud": "yes"}),
            "`inheritAud` must be a boolean",
        ),
        (
            json!({"type": "permission", "resource": "blob", "accept": ["*/*"]}),
            "resource \"blob\" is not allowed in a lexicon permission set",
        ),
        (
            json!({"type": "permission", "resource": "account"}),
            "resource \"account\"",
        ),
        (
            json!({"type": "permission", "resource": "identity"}),
            "resource \"identity\"",
        ),
        (
            json!({"type": "permission", "resource": "repo", "collection": ["a.b.c"], "extra": {"o": 1}}),
            "permissions[0].extra: permission field values must be",
        ),
    ];
    for (perm, needle) in cases {
        check_errors(perm_set(json!([perm])), needle);
    }
    let (e, w) = check(doc_json(perm_set(
        json!([{"type": "permission", "resource": "future", "x": [1, "a"]}]),
    )));
    assert!(e.is_empty(), "{e:?}");
    assert_has(&w, "unknown resource \"future\"");
    check_errors(
        json!({"main": {"type": "permission-set", "permissions": [], "title:lang": {"JA": "x"}, "detail:lang": {"fr-FR": "y"}}}),
        "title:lang.JA: invalid language",
    );
    check_clean(
        json!({"main": {"type": "permission-set", "permissions": [], "title:lang": {"en": "x"}, "detail:lang": {"fr-FR": "y"}}}),
    );
}

#[test]
fn problems_name_the_file() {
    let doc =
        parse(json!({"lexicon": 2, "id": "com.example.test", "defs": {"a": {"type": "token"}}}));
    let d = check_document(&doc, Some(std::path::Path::new("com/example/test.json")));
    assert_eq!(
        d.problems()[0].to_string(),
        "com/example/test.json: com.example.test: lexicon: unsupported lexicon version 2 (expected 1)"
    );
}

// ------------------------------------------------------------------------------------------
// Catalog
// ------------------------------------------------------------------------------------------

fn catalog(docs: Vec<Value>) -> Catalog {
    let mut c = Catalog::new();
    for d in docs {
        c.insert(parse(d), None).unwrap();
    }
    c
}

#[test]
fn catalog_resolution() {
    let c = catalog(vec![
        json!({"lexicon": 1, "id": "a.b.one", "defs": {"main": obj(json!({})), "x": {"type": "token"}}}),
        json!({"lexicon": 1, "id": "a.b.two", "defs": {"y": {"type": "string"}}}),
    ]);
    assert_eq!(c.len(), 2);
    let r = c.resolve_str("a.b.one").unwrap();
    assert_eq!(
        (r.nsid, r.name, r.type_name()),
        ("a.b.one", "main", "a.b.one".to_owned())
    );
    let r = c.resolve_str("a.b.one#main").unwrap();
    assert_eq!(r.name, "main");
    let r = c.resolve(&Ref::parse("#y").unwrap(), "a.b.two").unwrap();
    assert_eq!((r.nsid, r.type_name()), ("a.b.two", "a.b.two#y".to_owned()));
    assert!(matches!(
        c.resolve_str("#y"),
        Err(ResolveError::LocalWithoutBase(_))
    ));
    assert!(matches!(
        c.resolve_str("a.b.three"),
        Err(ResolveError::MissingDocument(_))
    ));
    assert!(matches!(
        c.resolve_str("a.b.two#z"),
        Err(ResolveError::MissingDef { .. })
    ));
    assert!(matches!(
        c.resolve_str("a#b#c"),
        Err(ResolveError::InvalidRef(_))
    ));

    let mut c2 = c.clone();
    let dup = c2
        .insert(
            parse(json!({"lexicon": 1, "id": "a.b.one", "defs": {"t": {"type": "token"}}})),
            Some("x.json".into()),
        )
        .unwrap_err();
    assert!(
        dup.to_string().contains("duplicate lexicon a.b.one"),
        "{dup}"
    );
}

#[test]
fn catalog_check_cross_document() {
    let c = catalog(vec![
        json!({"lexicon": 1, "id": "a.b.one", "defs": {"main": obj(json!({
            "ok": {"type": "ref", "ref": "a.b.two#s"},
            "absentDoc": {"type": "ref", "ref": "z.z.z#q"},
            "absentDef": {"type": "ref", "ref": "a.b.two#nope"},
            "tok": {"type": "ref", "ref": "a.b.two#t"},
            "u": {"type": "union", "refs": ["a.b.two#s", "a.b.two#o"]},
        }))}}),
        json!({"lexicon": 1, "id": "a.b.two", "defs": {"s": {"type": "string"}, "t": {"type": "token"}, "o": obj(json!({}))}}),
    ]);
    let d = c.check();
    let errors: Vec<String> = d.errors().map(ToString::to_string).collect();
    let warnings: Vec<String> = d.warnings().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert_has(
        &errors,
        "a.b.one#main: properties.absentDef.ref: cannot resolve \"a.b.two#nope\": lexicon a.b.two has no definition \"nope\"",
    );
    assert_has(
        &errors,
        "properties.tok.ref: ref \"a.b.two#t\" points at a `token`",
    );
    assert_has(
        &errors,
        "properties.u.refs[0]: union member \"a.b.two#s\" points at a `string`",
    );
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_has(
        &warnings,
        "properties.absentDoc.ref: cannot resolve \"z.z.z#q\": lexicon z.z.z is not in the catalog",
    );
}

// ------------------------------------------------------------------------------------------
// Validator
// ------------------------------------------------------------------------------------------

const LINK: &str = "bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq";

fn blob(mime: &str, size: u64) -> Value {
    json!({"$type": "blob", "ref": {"$link": LINK}, "mimeType": mime, "size": size})
}

/// A catalog with record `com.example.rec` whose properties are `props` (plus helper defs).
fn rec_catalog(props: Value, required: Value, nullable: Value) -> Catalog {
    catalog(vec![
        json!({"lexicon": 1, "id": "com.example.rec", "defs": {
            "main": {"type": "record", "key": "tid", "record": {"type": "object",
                "properties": props, "required": required, "nullable": nullable}},
            "o": obj(json!({"a": {"type": "integer"}})),
            "o2": obj(json!({"b": {"type": "string"}})),
            "tok": {"type": "token"},
            "str": {"type": "string", "maxLength": 3},
        }}),
        json!({"lexicon": 1, "id": "com.example.other", "defs": {
            "main": {"type": "record", "key": "tid", "record": obj(json!({"z": {"type": "integer"}}))},
            "x": obj(json!({"c": {"type": "boolean"}}))}}),
    ])
}

fn field_catalog(field: Value) -> Catalog {
    rec_catalog(json!({"f": field}), json!([]), json!([]))
}

fn rec(f: Value) -> Value {
    json!({"$type": "com.example.rec", "f": f})
}

/// Validates `{"f": value}` against a record whose only property `f` has schema `field`.
fn field_result(field: &Value, value: Value) -> Result<(), ValidationErrors> {
    field_catalog(field.clone()).validate_record("com.example.rec", &rec(value))
}

fn ok(field: Value, values: Vec<Value>) {
    for v in values {
        if let Err(e) = field_result(&field, v.clone()) {
            panic!("{field} should accept {v}: {e}");
        }
    }
}

fn fails(field: Value, values: Vec<Value>, path: &str, rule: &str) {
    for v in values {
        match field_result(&field, v.clone()) {
            Ok(()) => panic!("{field} should reject {v}"),
            Err(e) => assert!(
                e.has(path, rule),
                "{field} / {v}: expected {rule} at {path}, got {e}"
            ),
        }
    }
}

#[test]
fn validate_types() {
    let wrong = |t: &str| -> Vec<Value> {
        let all = [
            ("boolean", json!(true)),
            ("integer", json!(1)),
            ("string", json!("s")),
            ("bytes", json!({"$bytes": "AAAA"})),
            ("cid-link", json!({"$link": LINK})),
            ("blob", blob("a/b", 1)),
            ("array", json!([])),
            ("object", json!({"a": 1})),
        ];
        all.into_iter()
            .filter(|(k, _)| *k != t)
            .map(|(_, v)| v)
            .collect()
    };
    for t in ["boolean", "integer", "string", "bytes", "cid-link", "blob"] {
        fails(json!({"type": t}), wrong(t), "$.f", "type");
    }
    fails(
        json!({"type": "array", "items": {"type": "integer"}}),
        wrong("array"),
        "$.f",
        "type",
    );
    fails(obj(json!({})), wrong("object"), "$.f", "type");
    fails(json!({"type": "unknown"}), wrong("object"), "$.f", "type");
    ok(
        json!({"type": "integer"}),
        vec![json!(123.0), json!(-5), json!(i64::MAX)],
    );
    ok(
        json!({"type": "unknown"}),
        vec![json!({}), json!({"$type": "x.y.z", "a": [1]})],
    );
    ok(json!({"type": "cid-link"}), vec![json!({"$link": LINK})]);
}

#[test]
fn validate_data_model_layer_first() {
    let c = field_catalog(json!({"type": "integer"}));
    let e = c
        .validate_record("com.example.rec", &rec(json!(1.5)))
        .unwrap_err();
    assert_eq!(e.errors().len(), 1, "{e}");
    assert!(
        matches!(e.errors()[0].constraint, Constraint::DataModel { .. }),
        "{e}"
    );
    assert_eq!(e.errors()[0].path, "$.f");
    // Data-model errors anywhere, even in undeclared fields, make the record invalid.
    let e = c
        .validate_record(
            "com.example.rec",
            &json!({"$type": "com.example.rec", "zz": {"$type": ""}}),
        )
        .unwrap_err();
    assert!(
        matches!(e.errors()[0].constraint, Constraint::DataModel { .. }),
        "{e}"
    );
    let e = c
        .validate_record(
            "com.example.rec",
            &json!({"$type": "com.example.rec", "zz": {"$link": "nope"}}),
        )
        .unwrap_err();
    assert!(e.errors()[0].path.starts_with("$.zz"), "{e}");
    // Top level must be an object.
    for top in [json!([]), json!(1), json!(null), json!({"$bytes": "AAAA"})] {
        let e = c.validate_record("com.example.rec", &top).unwrap_err();
        assert_eq!(e.errors()[0].path, "$", "{top}: {e}");
    }
}

#[test]
fn validate_record_type_and_lookup() {
    let c = field_catalog(json!({"type": "integer"}));
    c.validate_record("com.example.rec", &json!({"$type": "com.example.rec"}))
        .unwrap();
    for (v, msg) in [
        (json!({}), "must have $type"),
        (json!({"$type": "com.example.other"}), "does not equal"),
        (json!({"$type": "com.example.rec#main"}), "does not equal"),
        (json!({"$type": 5}), ""),
    ] {
        let e = c.validate_record("com.example.rec", &v).unwrap_err();
        assert!(
            e.errors()[0].path == "$.$type" && e.to_string().contains(msg),
            "{v}: {e}"
        );
    }
    let e = c
        .validate_record("com.example.nope", &json!({}))
        .unwrap_err();
    assert!(e.has("$", "ref"), "{e}");
    let e = c
        .validate_record("com.example.rec#o", &json!({}))
        .unwrap_err();
    assert!(e.has("$", "ref"), "{e}");
}

#[test]
fn validate_required_and_nullable() {
    let c = rec_catalog(
        json!({"a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": "string"}}),
        json!(["a", "b"]),
        json!(["b"]),
    );
    let e = c
        .validate_record("com.example.rec", &json!({"$type": "com.example.rec"}))
        .unwrap_err();
    assert!(e.has("$.a", "required") && e.has("$.b", "required"), "{e}");
    // Present-with-null counts as present; null is only allowed when nullable.
    let e = c
        .validate_record(
            "com.example.rec",
            &json!({"$type": "com.example.rec", "a": null, "b": null, "c": null}),
        )
        .unwrap_err();
    assert!(
        e.has("$.a", "nullable") && e.has("$.c", "nullable") && !e.has("$.b", "nullable"),
        "{e}"
    );
    assert_eq!(e.errors().len(), 2, "{e}");
    // Undeclared keys are ignored.
    c.validate_record(
        "com.example.rec",
        &json!({"$type": "com.example.rec", "a": "x", "b": null, "zzz": [1]}),
    )
    .unwrap();
}

#[test]
fn validate_integers_and_booleans() {
    let f = json!({"type": "integer", "minimum": -2, "maximum": 5});
    ok(f.clone(), vec![json!(-2), json!(5), json!(0)]);
    fails(f.clone(), vec![json!(-3)], "$.f", "minimum");
    fails(f, vec![json!(6)], "$.f", "maximum");
    fails(
        json!({"type": "integer", "enum": [1, 3]}),
        vec![json!(2)],
        "$.f",
        "enum",
    );
    fails(
        json!({"type": "integer", "const": 7}),
        vec![json!(8)],
        "$.f",
        "const",
    );
    // A default never constrains.
    ok(json!({"type": "integer", "default": 7}), vec![json!(8)]);
    fails(
        json!({"type": "boolean", "const": true}),
        vec![json!(false)],
        "$.f",
        "const",
    );
    ok(json!({"type": "boolean", "const": true}), vec![json!(true)]);
}

#[test]
fn validate_strings() {
    // UTF-8 bytes, not chars: "é" is 2 bytes.
    let f = json!({"type": "string", "minLength": 2, "maxLength": 4});
    ok(f.clone(), vec![json!("é"), json!("abcd")]);
    fails(f.clone(), vec![json!("a")], "$.f", "minLength");
    fails(f, vec![json!("ééé")], "$.f", "maxLength");
    // Extended grapheme clusters: a family emoji is 1, a flag is 1.
    let f = json!({"type": "string", "minGraphemes": 2, "maxGraphemes": 3});
    ok(f.clone(), vec![json!("👩‍👩‍👦‍👦🇩🇪"), json!("e\u{301}ab")]);
    fails(f.clone(), vec![json!("👩‍👩‍👦‍👦")], "$.f", "minGraphemes");
    fails(f, vec![json!("abcd")], "$.f", "maxGraphemes");
    fails(
        json!({"type": "string", "enum": ["a", "b"]}),
        vec![json!("c")],
        "$.f",
        "enum",
    );
    // knownValues are never enforced.
    ok(
        json!({"type": "string", "knownValues": ["a"]}),
        vec![json!("zzz")],
    );
    fails(
        json!({"type": "string", "const": "a"}),
        vec![json!("b")],
        "$.f",
        "const",
    );
    ok(json!({"type": "string", "default": "a"}), vec![json!("b")]);
    for (format, good, bad) in [
        ("did", "did:plc:abc", "did:Plc:abc"),
        ("handle", "a.example.com", "a..b"),
        ("at-identifier", "did:web:x.com", "x"),
        ("nsid", "com.example.x", "com.example"),
        (
            "at-uri",
            "at://did:plc:x/a.b.c/rk",
            "at://did:plc:x/a.b.c/rk/more",
        ),
        ("cid", LINK, "Qmb"),
        (
            "datetime",
            "2024-01-01T00:00:00-10:00",
            "2024-01-01T00:00:00-00:00",
        ),
        ("tid", "3kznmn7xqxl22", "3kznmn7xqxl2"),
        ("record-key", "self", ".."),
        ("language", "en-GB", "EN"),
        ("uri", "https://example.com", "no scheme"),
    ] {
        ok(
            json!({"type": "string", "format": format}),
            vec![json!(good)],
        );
        fails(
            json!({"type": "string", "format": format}),
            vec![json!(bad)],
            "$.f",
            "format",
        );
    }
}

#[test]
fn validate_bytes_links_blobs() {
    let f = json!({"type": "bytes", "minLength": 2, "maxLength": 3});
    ok(
        f.clone(),
        vec![json!({"$bytes": "AAA"}), json!({"$bytes": "AAAA"})],
    );
    fails(f.clone(), vec![json!({"$bytes": "AA"})], "$.f", "minLength");
    fails(f, vec![json!({"$bytes": "AAAAAA"})], "$.f", "maxLength");

    let f = json!({"type": "blob", "accept": ["image/*", "video/mp4"], "maxSize": 100});
    ok(
        f.clone(),
        vec![blob("image/png", 100), blob("video/mp4", 1)],
    );
    fails(f.clone(), vec![blob("image/png", 101)], "$.f", "maxSize");
    fails(
        f.clone(),
        vec![blob("video/webm", 1), blob("IMAGE/png", 1)],
        "$.f",
        "accept",
    );
    ok(
        json!({"type": "blob", "accept": ["*/*"]}),
        vec![blob("x/y", 1)],
    );
    // The edge cases shared with generated code (atlex_types::validate::BlobRules): an empty
    // `accept` restricts nothing, and `type/*` is a prefix match on `type/` (Go, TypeScript).
    ok(
        json!({"type": "blob", "accept": []}),
        vec![blob("x/y", 1), blob("image/png", 1)],
    );
    ok(
        json!({"type": "blob", "accept": ["image/*"]}),
        vec![blob("image/", 1)],
    );
    // Both failures are reported.
    let e = field_result(&f, blob("text/plain", 1000)).unwrap_err();
    assert_eq!(e.errors().len(), 2, "{e}");

    // Legacy blobs only with the option.
    let legacy = json!({"cid": LINK, "mimeType": "image/png"});
    fails(f.clone(), vec![legacy.clone()], "$.f", "type");
    let opts = ValidateOptions {
        allow_legacy_blobs: true,
        ..ValidateOptions::default()
    };
    let c = field_catalog(f);
    c.validate_record_with("com.example.rec", &rec(legacy), &opts)
        .unwrap();
    let e = c
        .validate_record_with(
            "com.example.rec",
            &rec(json!({"cid": LINK, "mimeType": "text/plain"})),
            &opts,
        )
        .unwrap_err();
    assert!(e.has("$.f", "accept"), "{e}");
}

#[test]
fn validate_arrays() {
    let f = json!({"type": "array", "items": {"type": "integer", "maximum": 5}, "minLength": 1, "maxLength": 3});
    ok(f.clone(), vec![json!([1]), json!([1, 2, 3])]);
    fails(f.clone(), vec![json!([])], "$.f", "minLength");
    fails(f.clone(), vec![json!([1, 2, 3, 4])], "$.f", "maxLength");
    fails(f.clone(), vec![json!([1, 9])], "$.f[1]", "maximum");
    fails(f, vec![json!([1, null])], "$.f[1]", "type");
    // Arrays of arrays, and of refs.
    fails(
        json!({"type": "array", "items": {"type": "array", "items": {"type": "string"}}}),
        vec![json!([["a"], ["b", 1]])],
        "$.f[1][1]",
        "type",
    );
    fails(
        json!({"type": "array", "items": {"type": "ref", "ref": "#o"}}),
        vec![json!([{"a": 1}, {"a": "x"}])],
        "$.f[1].a",
        "type",
    );
}

#[test]
fn validate_refs() {
    ok(
        json!({"type": "ref", "ref": "#o"}),
        vec![
            json!({"a": 1}),
            json!({"$type": "com.example.rec#o", "a": 1}),
        ],
    );
    fails(
        json!({"type": "ref", "ref": "#o"}),
        vec![json!({"$type": "com.example.rec#o2"})],
        "$.f.$type",
        "$type",
    );
    fails(
        json!({"type": "ref", "ref": "#o"}),
        vec![json!({"a": true})],
        "$.f.a",
        "type",
    );
    // Refs to string defs validate the string.
    ok(json!({"type": "ref", "ref": "#str"}), vec![json!("abc")]);
    fails(
        json!({"type": "ref", "ref": "#str"}),
        vec![json!("abcd")],
        "$.f",
        "maxLength",
    );
    // Refs to a record use its record object; a $type, if present, must be the NSID.
    ok(
        json!({"type": "ref", "ref": "com.example.other"}),
        vec![
            json!({"z": 1}),
            json!({"$type": "com.example.other", "z": 1}),
        ],
    );
    fails(
        json!({"type": "ref", "ref": "com.example.other"}),
        vec![json!({"z": "1"})],
        "$.f.z",
        "type",
    );
    // Tokens have no data representation.
    fails(
        json!({"type": "ref", "ref": "#tok"}),
        vec![json!("com.example.rec#tok"), json!({})],
        "$.f",
        "token",
    );
    // An unresolvable ref is an error only when followed.
    let f = json!({"type": "ref", "ref": "com.example.absent#x"});
    fails(f.clone(), vec![json!({})], "$.f", "ref");
    let c = field_catalog(f);
    c.validate_record("com.example.rec", &json!({"$type": "com.example.rec"}))
        .unwrap();
}

#[test]
fn validate_unions() {
    let open = json!({"type": "union", "refs": ["#o", "com.example.other#x", "com.example.other"]});
    ok(
        open.clone(),
        vec![
            json!({"$type": "com.example.rec#o", "a": 1}),
            json!({"$type": "com.example.other#x", "c": true}),
            json!({"$type": "com.example.other", "z": 1}),
            // Unlisted and unresolvable: accepted by an open union.
            json!({"$type": "com.example.unlisted", "q": 1}),
        ],
    );
    fails(
        open.clone(),
        vec![json!({"$type": "com.example.rec#o", "a": "x"})],
        "$.f.a",
        "type",
    );
    fails(open.clone(), vec![json!({"a": 1})], "$.f.$type", "$type");
    fails(
        open.clone(),
        vec![json!(1), json!("x"), json!([]), blob("a/b", 1)],
        "$.f",
        "type",
    );
    // #main is never valid in data (strict by default).
    fails(
        open.clone(),
        vec![json!({"$type": "com.example.other#main", "z": 1})],
        "$.f.$type",
        "$type",
    );
    let mut lenient = ValidateOptions::lenient();
    let c = field_catalog(open.clone());
    c.validate_record_with(
        "com.example.rec",
        &rec(json!({"$type": "com.example.other#main", "z": 1})),
        &lenient,
    )
    .unwrap();
    // Unlisted but resolvable: validated like Go does.
    fails(
        open.clone(),
        vec![json!({"$type": "com.example.rec#o2", "b": 1})],
        "$.f.b",
        "type",
    );
    fails(
        open.clone(),
        vec![json!({"$type": "com.example.rec#tok"})],
        "$.f.$type",
        "$type",
    );
    // Strict mode rejects unresolvable types of open unions.
    lenient.strict_unresolved = true;
    let e = c
        .validate_record_with(
            "com.example.rec",
            &rec(json!({"$type": "com.example.unlisted"})),
            &lenient,
        )
        .unwrap_err();
    assert!(e.has("$.f.$type", "ref"), "{e}");

    let closed = json!({"type": "union", "refs": ["#o"], "closed": true});
    ok(closed.clone(), vec![json!({"$type": "com.example.rec#o"})]);
    fails(
        closed.clone(),
        vec![
            json!({"$type": "com.example.rec#o2"}),
            json!({"$type": "x.y.z"}),
        ],
        "$.f.$type",
        "closed",
    );
    // An empty open union accepts any typed object.
    ok(
        json!({"type": "union", "refs": []}),
        vec![json!({"$type": "a.b.c"})],
    );
    fails(
        json!({"type": "union", "refs": []}),
        vec![json!({})],
        "$.f.$type",
        "$type",
    );
    // A listed ref whose target is absent fails when followed.
    fails(
        json!({"type": "union", "refs": ["com.example.absent#x"]}),
        vec![json!({"$type": "com.example.absent#x"})],
        "$.f",
        "ref",
    );
}

#[test]
fn validate_inline_objects_and_paths() {
    let f = obj(json!({"inner": obj(json!({"cid-link": {"type": "cid-link"}}))}));
    fails(
        f,
        vec![json!({"inner": {"cid-link": "x"}})],
        "$.f.inner[\"cid-link\"]",
        "type",
    );
}

fn xrpc_catalog() -> Catalog {
    catalog(vec![
        json!({"lexicon": 1, "id": "com.example.q", "defs": {"main": {"type": "query",
            "parameters": {"type": "params", "required": ["n"], "properties": {
                "n": {"type": "integer", "minimum": 1},
                "b": {"type": "boolean"},
                "s": {"type": "string", "format": "did"},
                "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}, "maxLength": 2}}},
            "output": {"encoding": "application/json", "schema": {"type": "ref", "ref": "#out"}}},
            "out": obj(json!({"v": {"type": "integer"}}))}}),
        json!({"lexicon": 1, "id": "com.example.p", "defs": {"main": {"type": "procedure",
            "input": {"encoding": "application/json", "schema": {"type": "union", "refs": ["com.example.q#out"]}},
            "output": {"encoding": "application/octet-stream"}}}}),
        json!({"lexicon": 1, "id": "com.example.p2", "defs": {"main": {"type": "procedure",
            "input": {"encoding": "application/json"}}}}),
        json!({"lexicon": 1, "id": "com.example.s", "defs": {"main": {"type": "subscription",
            "message": {"schema": {"type": "union", "refs": ["#a"], "closed": true}}},
            "a": obj(json!({"x": {"type": "integer"}}))}}),
    ])
}

#[test]
fn validate_params() {
    let c = xrpc_catalog();
    c.validate_params(
        "com.example.q",
        &json!({"n": 1, "tags": ["a", "b"], "other": "ignored"}),
    )
    .unwrap();
    let e = c
        .validate_params(
            "com.example.q",
            &json!({"n": 0, "b": "true", "s": "x", "tags": ["abcd", "b", "c"]}),
        )
        .unwrap_err();
    for (path, rule) in [
        ("$.n", "minimum"),
        ("$.b", "type"),
        ("$.s", "format"),
        ("$.tags", "maxLength"),
        ("$.tags[0]", "maxLength"),
    ] {
        assert!(e.has(path, rule), "{path} {rule}: {e}");
    }
    assert!(
        c.validate_params("com.example.q", &json!({}))
            .unwrap_err()
            .has("$.n", "required")
    );
    assert!(
        c.validate_params("com.example.q", &json!({"n": null}))
            .unwrap_err()
            .has("$.n", "nullable")
    );
    assert!(
        c.validate_params("com.example.q#out", &json!({}))
            .unwrap_err()
            .has("$", "ref")
    );
    assert!(
        c.validate_params("com.example.s", &json!({"anything": 1}))
            .is_ok()
    );

    let m = c
        .parse_query_params(
            "com.example.q",
            [("n", "3"), ("tags", "a"), ("tags", "b"), ("b", "true")],
        )
        .unwrap();
    assert_eq!(
        Value::Object(m),
        json!({"n": 3, "tags": ["a", "b"], "b": true})
    );
    let e = c
        .parse_query_params("com.example.q", [("n", "x"), ("b", "1")])
        .unwrap_err();
    assert!(e.has("$.n", "params") && e.has("$.b", "params"), "{e}");
    let e = c
        .parse_query_params("com.example.q", [("tags", "a")])
        .unwrap_err();
    assert!(e.has("$.n", "required"), "{e}");
}

#[test]
fn validate_bodies_and_messages() {
    let c = xrpc_catalog();
    c.validate_output("com.example.q", &json!({"v": 1}))
        .unwrap();
    assert!(
        c.validate_output("com.example.q", &json!({"v": "1"}))
            .unwrap_err()
            .has("$.v", "type")
    );
    // A union body requires $type.
    c.validate_input(
        "com.example.p",
        &json!({"$type": "com.example.q#out", "v": 1}),
    )
    .unwrap();
    assert!(
        c.validate_input("com.example.p", &json!({"v": 1}))
            .unwrap_err()
            .has("$.$type", "$type")
    );
    // Non-JSON encodings and missing bodies are schema errors; a JSON body without a schema
    // only needs to be an object.
    assert!(
        c.validate_output("com.example.p", &json!({}))
            .unwrap_err()
            .has("$", "schema")
    );
    assert!(
        c.validate_output("com.example.p2", &json!({}))
            .unwrap_err()
            .has("$", "schema")
    );
    assert!(
        c.validate_input("com.example.q", &json!({}))
            .unwrap_err()
            .has("$", "schema")
    );
    c.validate_input("com.example.p2", &json!({"anything": [1]}))
        .unwrap();
    assert!(
        c.validate_input("com.example.p2", &json!([1]))
            .unwrap_err()
            .has("$", "type")
    );

    c.validate_message("com.example.s", "#a", &json!({"x": 1}))
        .unwrap();
    assert!(
        c.validate_message("com.example.s", "#a", &json!({"x": "1"}))
            .unwrap_err()
            .has("$.x", "type")
    );
    assert!(
        c.validate_message("com.example.s", "#b", &json!({}))
            .unwrap_err()
            .has("$", "closed")
    );
    assert!(
        c.validate_message("com.example.q", "#a", &json!({}))
            .unwrap_err()
            .has("$", "schema")
    );
}

#[test]
fn validate_value_against_any_def() {
    let c = field_catalog(json!({"type": "integer"}));
    c.validate_value("com.example.rec#str", &json!("abc"))
        .unwrap();
    assert!(
        c.validate_value("com.example.rec#str", &json!("abcd"))
            .unwrap_err()
            .has("$", "maxLength")
    );
    assert!(
        c.validate_value("com.example.rec#o", &json!({"a": "x"}))
            .unwrap_err()
            .has("$.a", "type")
    );
    assert!(
        c.validate_value("com.example.rec#tok", &json!("x"))
            .unwrap_err()
            .has("$", "token")
    );
    assert!(
        c.validate_value("com.example.nope", &json!({}))
            .unwrap_err()
            .has("$", "ref")
    );
}

#[test]
fn validation_error_display() {
    let e = field_result(&json!({"type": "string", "maxLength": 2}), json!("abc")).unwrap_err();
    assert_eq!(e.errors().len(), 1, "{e}");
    assert_eq!(
        e.errors()[0].to_string(),
        "$.f: maxLength 2: string is 3 UTF-8 bytes long"
    );
    assert_eq!(
        e.to_string(),
        "1 lexicon constraint violation; $.f: maxLength 2: string is 3 UTF-8 bytes long"
    );
}

#[test]
fn catalog_load_dir_reports_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"{"lexicon": 1, "id": "a.b.c", "defs": {"t": {"type": "token"}}}"#;
    std::fs::write(dir.path().join("one.json"), text).unwrap();
    std::fs::write(dir.path().join("two.json"), text).unwrap();
    let err = Catalog::load_dir(dir.path()).unwrap_err();
    assert_eq!(err.0.len(), 1);
    let msg = err.to_string();
    assert!(
        msg.contains("duplicate lexicon a.b.c")
            && msg.contains("one.json")
            && msg.contains("two.json"),
        "{msg}"
    );
    std::fs::remove_file(dir.path().join("two.json")).unwrap();
    let c = Catalog::load_dir(dir.path()).unwrap();
    assert_eq!(c.file("a.b.c"), Some(dir.path().join("one.json").as_path()));
}

#[test]
fn lenient_output_accepts_legacy_blobs() {
    let c = catalog(vec![
        json!({"lexicon": 1, "id": "com.example.q", "defs": {"main": {"type": "query",
        "output": {"encoding": "application/json", "schema": obj(json!({"b": {"type": "blob"}}))}}}}),
    ]);
    let body = json!({"b": {"cid": LINK, "mimeType": "image/png"}});
    assert!(
        c.validate_output("com.example.q", &body)
            .unwrap_err()
            .has("$.b", "type")
    );
    c.validate_output_with("com.example.q", &body, &ValidateOptions::lenient())
        .unwrap();
}
