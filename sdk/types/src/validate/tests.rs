use super::*;

#[test]
fn string_lengths_are_utf8_bytes_and_graphemes() {
    let rules = StringRules {
        max_length: Some(5),
        max_graphemes: Some(2),
        ..StringRules::NONE
    };
    assert!(rules.check("ab").is_empty());
    // "é" is two bytes; three of them is 6 bytes and 3 graphemes.
    let errs = rules.check("ééé");
    assert_eq!(
        errs,
        vec![
            Constraint::MaxLength { max: 5, actual: 6 },
            Constraint::MaxGraphemes { max: 2, actual: 3 }
        ]
    );
    // A family emoji is one grapheme made of many code points.
    let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}";
    assert_eq!(grapheme_count(family), 1);
    let min = StringRules {
        min_graphemes: Some(2),
        ..StringRules::NONE
    };
    assert_eq!(
        min.check(family),
        vec![Constraint::MinGraphemes { min: 2, actual: 1 }]
    );
    // A combining accent joins its letter; a flag is one cluster of two code points.
    assert_eq!(grapheme_count("e\u{301}ab"), 3);
    assert_eq!(grapheme_count("\u{1F1E9}\u{1F1EA}"), 1);
    assert_eq!(grapheme_count(""), 0);
}

#[test]
fn integers() {
    let rules = IntegerRules {
        minimum: Some(10),
        maximum: Some(20),
        allowed: Some(&[10, 15]),
        constant: None,
    };
    assert!(rules.check(15).is_empty());
    assert_eq!(rules.check(21).len(), 2);
    assert!(matches!(
        rules.check(9)[0],
        Constraint::Minimum { min: 10, actual: 9 }
    ));
    // Limits are inclusive.
    assert!(rules.check(10).is_empty());
    let c = IntegerRules {
        constant: Some(3),
        ..IntegerRules::NONE
    };
    assert!(c.check(3).is_empty());
    assert_eq!(
        c.check(4),
        vec![Constraint::Const {
            expected: "3".into(),
            actual: "4".into()
        }]
    );
    assert_eq!(
        rules.check(12),
        vec![Constraint::Enum {
            allowed: vec!["10".into(), "15".into()],
            actual: "12".into()
        }]
    );
}

#[test]
fn string_enum_and_const() {
    let rules = StringChoice {
        allowed: Some(&["a", "b"]),
        constant: None,
    };
    assert!(rules.check("a").is_empty());
    let errs = rules.check("c");
    assert_eq!(
        errs,
        vec![Constraint::Enum {
            allowed: vec!["\"a\"".into(), "\"b\"".into()],
            actual: "\"c\"".into()
        }]
    );
    assert_eq!(errs[0].to_string(), r#"enum: "c" is not one of ["a", "b"]"#);
    // An empty enum allows nothing.
    let none = StringChoice {
        allowed: Some(&[]),
        constant: None,
    };
    assert_eq!(none.check("a").len(), 1);
    let c = StringChoice {
        constant: Some("x"),
        ..StringChoice::NONE
    };
    assert!(c.check("x").is_empty());
    assert_eq!(
        c.check("y")[0].to_string(),
        r#"const: expected "x", found "y""#
    );
    assert!(StringChoice::NONE.check("anything").is_empty());

    let mut v = Validator::new();
    v.string_enum("z", &["a"]);
    v.constant(&true, &false);
    let errs = v.finish().unwrap_err().into_vec();
    assert_eq!(errs[0].constraint.name(), "enum");
    assert_eq!(
        errs[1].constraint,
        Constraint::Const {
            expected: "false".into(),
            actual: "true".into()
        }
    );
}

#[test]
fn mime_patterns() {
    let matching = [
        ("image/*", "image/png"),
        ("*/*", "anything/else"),
        ("image/png", "image/png"),
        // Other wildcards are not globs: they only match themselves.
        ("text/ht*", "text/ht*"),
        // `type/*` is a prefix match on `type/` in Go and TypeScript, so an empty subtype
        // matches too.
        ("image/*", "image/"),
    ];
    let not_matching = [
        ("image/*", "imagex/png"),
        ("image/*", "image"),
        ("image/*", "video/mp4"),
        ("image/png", "image/jpeg"),
        // Case-sensitive, in both the pattern and the value.
        ("image/png", "IMAGE/PNG"),
        ("IMAGE/*", "image/png"),
        // Only `*/*` and a whole `type/*` subtype are wildcards.
        ("text/ht*", "text/html"),
        ("*", "text/html"),
        ("/*", "/x"),
        ("*/png", "image/png"),
        // An empty MIME type matches nothing, not even `*/*` (as in Go).
        ("*/*", ""),
        ("", ""),
        ("", "text/plain"),
    ];
    for (pattern, mime) in matching {
        assert!(
            mime_matches(pattern, mime),
            "{pattern} should match {mime:?}"
        );
    }
    for (pattern, mime) in not_matching {
        assert!(
            !mime_matches(pattern, mime),
            "{pattern} should not match {mime:?}"
        );
    }
}

#[test]
fn blob_rules() {
    let rules = BlobRules {
        accept: Some(&["image/*"]),
        max_size: Some(20),
    };
    assert!(rules.check("image/png", Some(20)).is_empty());
    assert_eq!(
        rules.check("text/plain", Some(21)),
        vec![
            Constraint::BlobMaxSize {
                max: 20,
                actual: 21
            },
            Constraint::BlobAccept {
                accept: vec!["image/*".into()],
                actual: "text/plain".into()
            }
        ]
    );
    // Legacy blobs carry no size.
    assert!(rules.check("image/png", None).is_empty());
}

#[test]
fn empty_accept_list_accepts_everything() {
    // `accept: []` is "no restriction", as in the Go validator (which skips an empty list) and
    // the same as a missing `accept`.
    let empty = BlobRules {
        accept: Some(&[]),
        max_size: None,
    };
    assert!(empty.check("text/plain", Some(1)).is_empty());
    assert!(empty.check("image/png", None).is_empty());
    let mut v = Validator::new();
    v.blob("application/x-anything", Some(5), &empty);
    assert!(v.finish().is_ok());
}

#[test]
fn paths_and_collection() {
    let mut v = Validator::new();
    v.field("embed", |v| {
        v.field("images", |v| {
            v.push_index(0);
            v.field("alt", |v| v.report(Constraint::Required));
            v.pop();
        })
    });
    v.field("cid-link", |v| v.report(Constraint::NotNullable));
    v.field("9", |v| {
        v.field("$type", |v| v.report(Constraint::Required))
    });
    v.field("quote\"d", |v| v.report(Constraint::Required));
    let errs = v.finish().unwrap_err();
    assert_eq!(errs.errors()[0].path, "$.embed.images[0].alt");
    assert_eq!(errs.errors()[1].path, "$[\"cid-link\"]");
    assert_eq!(errs.errors()[2].path, "$[\"9\"].$type");
    assert_eq!(errs.errors()[3].path, r#"$["quote\"d"]"#);
    assert!(
        errs.to_string()
            .starts_with("4 lexicon constraint violations")
    );
    assert!(errs.has("$.embed.images[0].alt", "required"));
    assert!(errs.has("$[\"cid-link\"]", "nullable"));
    assert!(!errs.has("$[\"cid-link\"]", "required"));
}

#[test]
fn path_keys_match_the_data_model_paths() {
    assert_eq!(path_key("$", "embed"), "$.embed");
    assert_eq!(path_key("$.a", "$type"), "$.a.$type");
    assert_eq!(path_key("$", "cid-link"), "$[\"cid-link\"]");
    assert_eq!(path_key("$", "9"), "$[\"9\"]");
    assert_eq!(path_key("$", ""), "$[\"\"]");
    assert_eq!(path_key("$", "_x9"), "$._x9");
    // A data-model error deep in a value uses the same spelling.
    let value = serde_json::json!({"cid-link": [{"9": 1.5}]});
    let error = Data::from_json(&value).unwrap_err();
    assert_eq!(error.path(), "$[\"cid-link\"][0][\"9\"]");
    let error = ValidationError::from(error);
    assert_eq!(error.path, "$[\"cid-link\"][0][\"9\"]");
    assert_eq!(error.constraint.name(), "data-model");
}

#[test]
fn counts() {
    let mut v = Validator::new();
    v.array_len(6, Some(2), Some(5));
    v.array_len(1, Some(2), Some(5));
    v.bytes_len(3, Some(10), None);
    let errs = v.finish().unwrap_err().into_vec();
    assert_eq!(errs.len(), 3);
    assert!(matches!(errs[2].constraint, Constraint::MinBytes { .. }));
    assert!(errs.iter().all(|e| e.path == "$"));
}

#[test]
fn types_and_formats() {
    let mut v = Validator::new();
    v.unknown_object(&Data::Integer(1));
    v.unknown_object(&Data::Object(Default::default()));
    v.format("did:Plc:abc", Format::Did);
    v.format("did:plc:abc", Format::Did);
    let errs = v.finish().unwrap_err().into_vec();
    assert_eq!(errs.len(), 2);
    assert_eq!(
        errs[0].constraint,
        Constraint::Type {
            expected: "object".into(),
            found: "integer".into()
        }
    );
    assert!(matches!(
        &errs[1].constraint,
        Constraint::Format { format: "did", reason } if reason.contains("did:Plc:abc")
    ));
}

#[test]
fn every_constraint_has_its_lexicon_name_and_an_informative_message() {
    use Constraint::*;
    // Each message starts with the rule's lexicon name, then the limit and what was found.
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cases = [
        (
            MaxLength { max: 2, actual: 3 },
            "maxLength 2: string is 3 UTF-8 bytes long",
        ),
        (
            MinLength { min: 2, actual: 1 },
            "minLength 2: string is 1 UTF-8 bytes long",
        ),
        (
            MaxGraphemes { max: 2, actual: 3 },
            "maxGraphemes 2: string has 3 graphemes",
        ),
        (
            MinGraphemes { min: 2, actual: 1 },
            "minGraphemes 2: string has 1 graphemes",
        ),
        (MaxBytes { max: 2, actual: 3 }, "maxLength 2: 3 bytes"),
        (MinBytes { min: 2, actual: 1 }, "minLength 2: 1 bytes"),
        (
            MaxItems { max: 2, actual: 3 },
            "maxLength 2: array has 3 items",
        ),
        (
            MinItems { min: 2, actual: 1 },
            "minLength 2: array has 1 items",
        ),
        (Maximum { max: 5, actual: 6 }, "maximum 5: found 6"),
        (
            Minimum {
                min: -2,
                actual: -3,
            },
            "minimum -2: found -3",
        ),
        (
            Enum {
                allowed: strings(&["1", "3"]),
                actual: "2".into(),
            },
            "enum: 2 is not one of [1, 3]",
        ),
        (
            Const {
                expected: "7".into(),
                actual: "8".into(),
            },
            "const: expected 7, found 8",
        ),
        (
            BlobMaxSize {
                max: 100,
                actual: 101,
            },
            "maxSize 100: blob is 101 bytes",
        ),
        (
            BlobAccept {
                accept: strings(&["image/*"]),
                actual: "text/plain".into(),
            },
            r#"accept: MIME type "text/plain" matches none of ["image/*"]"#,
        ),
        (Required, "required: missing"),
        (NotNullable, "nullable: null is not allowed here"),
        (
            Type {
                expected: "string".into(),
                found: "integer".into(),
            },
            "type: expected string, found integer",
        ),
        (
            Format {
                format: "did",
                reason: "bad".into(),
            },
            "format did: bad",
        ),
        (
            TypeTag {
                reason: "missing".into(),
            },
            "$type: missing",
        ),
        (
            ClosedUnion {
                found: "a.b.c".into(),
                allowed: strings(&["x.y.z#o"]),
            },
            r#"closed: $type "a.b.c" is not one of ["x.y.z#o"]"#,
        ),
        (
            DataModel {
                reason: "float".into(),
            },
            "data-model: float",
        ),
        (
            UnresolvedRef {
                reference: "#x".into(),
                reason: "absent".into(),
            },
            r##"ref: cannot resolve "#x": absent"##,
        ),
        (
            Token {
                name: "a.b.c#t".into(),
            },
            "token: a.b.c#t is a token, which has no data representation",
        ),
        (
            SchemaMismatch {
                reason: "not a record".into(),
            },
            "schema: not a record",
        ),
        (
            UnparsableParam {
                expected: "integer",
                raw: "x".into(),
            },
            r#"params: expected integer, found "x""#,
        ),
        (
            RepeatedParam { count: 2 },
            "params: given 2 times but not an array",
        ),
    ];
    for (constraint, message) in cases {
        let name = message.split([' ', ':']).next().unwrap_or_default();
        assert_eq!(constraint.name(), name, "{constraint:?}");
        assert_eq!(constraint.to_string(), message, "{constraint:?}");
        let error = ValidationError::new("$.f", constraint);
        assert_eq!(error.to_string(), format!("$.f: {message}"));
    }
}

#[test]
fn errors_collection() {
    assert!(ValidationErrors::from_vec(Vec::new()).is_none());
    let one = ValidationErrors::from(ValidationError::new("$", Constraint::Required));
    assert_eq!(one.errors().len(), 1);
    assert_eq!(
        one.to_string(),
        "1 lexicon constraint violation; $: required: missing"
    );
    let all: Vec<ValidationError> = one.into_iter().collect();
    assert_eq!(all[0].path, "$");
}
