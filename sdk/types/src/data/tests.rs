//! Unit tests for [`Data`]: JSON paths, the rules in each reader and writer, limits.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;

const RAW: &str = "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity";
const DAG: &str = "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a";

fn blob_json() -> Value {
    json!({"$type": "blob", "ref": {"$link": RAW}, "mimeType": "image/jpeg", "size": 10000})
}

/// Reads JSON text through serde (the path generated code takes).
fn from_text(text: &str) -> Result<Data, serde_json::Error> {
    serde_json::from_str(text)
}

/// Checks that a JSON value fails in both readers, and the error path of `from_json`.
#[track_caller]
fn assert_invalid(value: Value, path: &str) -> DataError {
    let error = Data::from_json(&value).unwrap_err();
    assert_eq!(error.path(), path, "{error}");
    assert!(
        from_text(&value.to_string()).is_err(),
        "serde accepted {value}"
    );
    assert!(
        serde_json::from_value::<Data>(value.clone()).is_err(),
        "{value}"
    );
    error
}

#[test]
fn json_paths() {
    let error = assert_invalid(json!({"a": {"b": [0, 1, 2, 1.5]}}), "$.a.b[3]");
    assert_eq!(error.kind(), &DataErrorKind::Float);
    assert_eq!(
        error.to_string(),
        "$.a.b[3]: floating-point numbers are not part of the data model (only integers are)"
    );
    assert_invalid(json!({"r": {"$type": null}}), "$.r.$type");
    assert_invalid(json!({"r": {"$type": 123}}), "$.r.$type");
    assert_invalid(json!({"r": {"$type": ""}}), "$.r.$type");
    assert_invalid(json!([{"$link": 1234}]), "$[0].$link");
    assert_invalid(json!({"l": {"$link": "."}}), "$.l.$link");
    assert_invalid(json!({"l": {"$bytes": [1]}}), "$.l.$bytes");
    assert_invalid(json!({"l": {"$bytes": "@@"}}), "$.l.$bytes");
    assert_invalid(json!({"l": {"$link": RAW, "x": 1}}), "$.l.$link");
    assert_invalid(json!({"l": {"$bytes": "aGk", "x": 1}}), "$.l.$bytes");
    assert_invalid(json!({"odd key": {"x": 1e300}}), r#"$["odd key"].x"#);
}

#[test]
fn blob_paths() {
    let mut blob = blob_json();
    blob["size"] = json!("10000");
    assert_invalid(json!({"b": blob}), "$.b.size");
    let mut blob = blob_json();
    blob["size"] = json!(-1);
    assert_invalid(json!({"b": blob}), "$.b.size");
    let mut blob = blob_json();
    blob["mimeType"] = json!("");
    assert_invalid(json!({"b": blob}), "$.b.mimeType");
    let mut blob = blob_json();
    blob["ref"] = json!(RAW);
    assert_invalid(json!({"b": blob}), "$.b.ref");
    let mut blob = blob_json();
    blob["extra"] = json!(1);
    assert_invalid(json!({"b": blob}), "$.b.extra");
    let mut blob = blob_json();
    blob.as_object_mut().unwrap().remove("ref");
    let error = assert_invalid(json!({"b": blob}), "$.b");
    assert!(error.to_string().contains("missing key \"ref\""), "{error}");
}

#[test]
fn special_values() {
    let value = json!({
        "link": {"$link": DAG},
        "bytes": {"$bytes": "aGk="},
        "blob": blob_json(),
        "typed": {"$type": "com.example.thing", "$other": 1},
        "legacy": {"cid": RAW, "mimeType": "image/png"},
    });
    let data = Data::from_json(&value).unwrap();
    assert_eq!(
        data.get("link"),
        Some(&Data::Link(CidLink::parse(DAG).unwrap()))
    );
    assert_eq!(data.get("bytes"), Some(&Data::Bytes(Bytes(b"hi".to_vec()))));
    assert!(matches!(data.get("blob"), Some(Data::Blob(blob)) if blob.size == 10000));
    assert_eq!(
        data.get("typed").and_then(Data::type_name),
        Some("com.example.thing")
    );
    // The legacy blob form is an ordinary object to the data model.
    assert!(matches!(data.get("legacy"), Some(Data::Object(_))));
    assert_eq!(from_text(&value.to_string()).unwrap(), data);

    // Output: canonical base64 (no padding); everything else as read.
    let mut expected = value.clone();
    expected["bytes"] = json!({"$bytes": "aGk"});
    assert_eq!(data.to_json(), expected);
    assert_eq!(serde_json::to_value(&data).unwrap(), expected);

    // And through DAG-CBOR.
    let cbor = data.to_dag_cbor().unwrap();
    assert_eq!(Data::from_dag_cbor(&cbor).unwrap(), data);
}

#[test]
fn lenient_base64_in_data() {
    let data = Data::from_json(&json!({"$bytes": "123"})).unwrap();
    assert_eq!(data, Data::Bytes(Bytes(vec![0xd7, 0x6d])));
    assert_eq!(from_text(r#"{"$bytes":"123"}"#).unwrap(), data);
}

#[test]
fn cid_v0_links_are_rejected() {
    let v0 = json!({"$link": "QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR"});
    let error = assert_invalid(json!({"a": v0}), "$.a.$link");
    assert!(error.to_string().contains("CIDv0"), "{error}");
}

#[test]
fn integers() {
    for (text, expected) in [
        ("9223372036854775807", Some(i64::MAX)),
        ("-9223372036854775808", Some(i64::MIN)),
        ("9223372036854775808", None),
        ("-9223372036854775809", None),
        ("18446744073709551616", None),
        ("123.0", Some(123)),
        ("-0.0", Some(0)),
        ("1e3", Some(1000)),
        ("9007199254740993.0", None),
        ("123.456", None),
    ] {
        let value: Value = serde_json::from_str(text).unwrap();
        let from_value = Data::from_json(&value).ok();
        let from_str = from_text(text).ok();
        let expected = expected.map(Data::Integer);
        assert_eq!(from_value, expected, "from_json {text}");
        assert_eq!(from_str, expected, "serde {text}");
    }
}

#[test]
fn duplicate_keys_are_rejected() {
    let error = from_text(r#"{"a":1,"b":2,"a":3}"#).unwrap_err();
    assert!(
        error.to_string().contains("duplicate object key \"a\""),
        "{error}"
    );
}

#[test]
fn top_level_objects() {
    assert!(Data::from_json(&json!("blah")).is_ok());
    let error = Data::from_json_object(&json!("blah")).unwrap_err();
    assert_eq!(error.kind(), &DataErrorKind::NotAnObject);
    assert!(Data::from_json_object(&json!({"$link": DAG})).is_err());
    assert!(Data::from_json_object(&blob_json()).is_err());
    assert!(Data::from_json_object(&json!({"a": 1})).is_ok());

    let mut de = serde_json::Deserializer::from_str(r#""blah""#);
    assert!(Data::deserialize_object(&mut de).is_err());
    let mut de = serde_json::Deserializer::from_str(r#"{"$type":""}"#);
    assert!(Data::deserialize_object(&mut de).is_err());
    let mut de = serde_json::Deserializer::from_str(r#"{"a":[]}"#);
    assert!(Data::deserialize_object(&mut de).is_ok());
}

fn nested_arrays(levels: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..levels {
        value = Value::Array(vec![value]);
    }
    value
}

fn nested_cbor(levels: usize) -> Vec<u8> {
    let mut bytes = vec![0x81; levels];
    bytes.push(0x01);
    bytes
}

#[test]
fn depth_limit() {
    // At the limit: accepted by every reader, and writable.
    let ok = nested_arrays(MAX_DEPTH);
    let data = Data::from_json(&ok).unwrap();
    assert_eq!(from_text(&ok.to_string()).unwrap(), data);
    assert_eq!(Data::from_dag_cbor(&nested_cbor(MAX_DEPTH)).unwrap(), data);
    assert!(data.validate().is_ok());
    assert_eq!(data.to_dag_cbor().unwrap(), nested_cbor(MAX_DEPTH));

    // One more level: rejected by every reader and writer.
    let deep = nested_arrays(MAX_DEPTH + 1);
    let error = Data::from_json(&deep).unwrap_err();
    assert_eq!(error.kind(), &DataErrorKind::TooDeep);
    assert_eq!(error.path(), format!("$[0]{}", "[0]".repeat(MAX_DEPTH - 1)));
    assert!(from_text(&deep.to_string()).is_err());
    let error = Data::from_dag_cbor(&nested_cbor(MAX_DEPTH + 1)).unwrap_err();
    assert!(error.to_string().contains("nested more than"), "{error}");
    let deep_data = Data::Array(vec![data]);
    assert_eq!(
        deep_data.validate().unwrap_err().kind(),
        &DataErrorKind::TooDeep
    );
    assert!(serde_json::to_string(&deep_data).is_err());
    assert!(deep_data.to_dag_cbor().is_err());

    // Hostile depth: an error, not a stack overflow.
    let hostile = "[".repeat(100_000);
    assert!(from_text(&hostile).is_err());
    assert!(Data::from_dag_cbor(&nested_cbor(100_000)).is_err());
    let hostile_objects = r#"{"a":"#.repeat(100_000);
    assert!(from_text(&hostile_objects).is_err());
    let hostile_links = r#"{"$link":"#.repeat(100_000);
    assert!(from_text(&hostile_links).is_err());
}

#[test]
fn cbor_rejects_json_only_keys() {
    for key in ["$link", "$bytes"] {
        let map = BTreeMap::from([(key, "x")]);
        let bytes = serde_ipld_dagcbor::to_vec(&map).unwrap();
        let error = Data::from_dag_cbor(&bytes).unwrap_err();
        assert!(error.to_string().contains("reserved"), "{error}");
    }
    let map = BTreeMap::from([("$type", "")]);
    let bytes = serde_ipld_dagcbor::to_vec(&map).unwrap();
    assert!(Data::from_dag_cbor(&bytes).is_err());
}

#[test]
fn cbor_floats_are_rejected_even_when_integral() {
    let bytes = serde_ipld_dagcbor::to_vec(&BTreeMap::from([("a", 123.0_f64)])).unwrap();
    let error = Data::from_dag_cbor(&bytes).unwrap_err();
    assert!(error.to_string().contains("floating-point"), "{error}");
}

#[test]
fn invalid_hand_built_values_do_not_serialize() {
    let link = CidLink::parse(RAW).unwrap();
    let cases = [
        Data::Object(BTreeMap::from([("$link".to_owned(), Data::from(DAG))])),
        Data::Object(BTreeMap::from([(
            "a".to_owned(),
            Data::Object(BTreeMap::from([("$bytes".to_owned(), Data::from("aGk"))])),
        )])),
        Data::Object(BTreeMap::from([("$type".to_owned(), Data::from(""))])),
        Data::Object(BTreeMap::from([("$type".to_owned(), Data::Integer(1))])),
        Data::Object(BTreeMap::from([("$type".to_owned(), Data::from("blob"))])),
        Data::Array(vec![Data::Blob(Blob {
            r#ref: link,
            mime_type: String::new(),
            size: 1,
        })]),
    ];
    for data in cases {
        assert!(data.validate().is_err(), "{data:?}");
        assert!(serde_json::to_string(&data).is_err(), "{data:?}");
        assert!(data.to_dag_cbor().is_err(), "{data:?}");
    }
    let error = Data::Object(BTreeMap::from([(
        "a".to_owned(),
        Data::Array(vec![Data::Object(BTreeMap::from([(
            "$type".to_owned(),
            Data::Null,
        )]))]),
    )]))
    .validate()
    .unwrap_err();
    assert_eq!(error.path(), "$.a[0].$type");
}

#[test]
fn blob_object_built_by_hand_reads_back_as_blob() {
    // An object that happens to be a well-formed blob is valid; it reads back as `Data::Blob`.
    let object = Data::Object(BTreeMap::from([
        ("$type".to_owned(), Data::from("blob")),
        ("ref".to_owned(), Data::Link(CidLink::parse(RAW).unwrap())),
        ("mimeType".to_owned(), Data::from("image/jpeg")),
        ("size".to_owned(), Data::Integer(10000)),
    ]));
    assert!(object.validate().is_ok());
    let blob = Data::from_json(&blob_json()).unwrap();
    assert_eq!(object.to_dag_cbor().unwrap(), blob.to_dag_cbor().unwrap());
    assert_eq!(Data::from_json(&object.to_json()).unwrap(), blob);
}

#[test]
fn accessors() {
    let data = Data::from_json(&json!({"a": [true, 1, "x", null]})).unwrap();
    let items = data.get("a").and_then(Data::as_array).unwrap();
    assert_eq!(items[0].as_bool(), Some(true));
    assert_eq!(items[1].as_integer(), Some(1));
    assert_eq!(items[2].as_str(), Some("x"));
    assert!(items[3].is_null());
    assert_eq!(data.kind_name(), "object");
    assert_eq!(data.type_name(), None);
    assert_eq!(
        Data::from_json(&blob_json()).unwrap().type_name(),
        Some("blob")
    );
    assert_eq!(data.cid().unwrap(), record_cid(&data).unwrap());
}
