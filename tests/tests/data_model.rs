//! Data-model types as generated code will use them: struct fields of type `Bytes`, `CidLink`,
//! `Blob`, `BlobRef` and `Data` through JSON and DAG-CBOR, and property tests of `Data` round
//! trips.
//!
//! Run: `cargo test -p atlex-tests --test data_model`.

use std::collections::BTreeMap;

use atlex_types::data::{self, Data, MAX_DEPTH};
use atlex_types::{Blob, BlobRef, Bytes, CidLink};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

const RAW: &str = "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity";
const DAG: &str = "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a";

/// Shaped like a generated record struct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    #[serde(rename = "$type")]
    kind: String,
    text: String,
    payload: Bytes,
    link: CidLink,
    image: BlobRef,
    legacy_image: BlobRef,
    thumbs: Vec<Blob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    maybe_link: Option<CidLink>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    missing_link: Option<CidLink>,
    extra: Data,
}

fn record_json() -> serde_json::Value {
    json!({
        "$type": "com.example.record",
        "text": "hello ✨",
        "payload": {"$bytes": "AQID"},
        "link": {"$link": DAG},
        "image": {"$type": "blob", "ref": {"$link": RAW}, "mimeType": "image/jpeg", "size": 10000},
        "legacyImage": {"cid": RAW, "mimeType": "image/png"},
        "thumbs": [{"$type": "blob", "ref": {"$link": RAW}, "mimeType": "image/webp", "size": 1}],
        "maybeLink": {"$link": RAW},
        "extra": {"$type": "com.example.unknown", "n": [1, {"$bytes": "aGk"}, null]},
    })
}

#[test]
fn struct_fields_round_trip_through_json_and_dag_cbor() {
    let json = record_json();
    let record: Record = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(record.payload.as_slice(), &[1, 2, 3]);
    assert_eq!(record.link.to_string(), DAG);
    assert_eq!(record.image.size(), Some(10000));
    assert!(record.legacy_image.is_legacy());
    assert_eq!(record.thumbs[0].mime_type, "image/webp");
    assert_eq!(record.maybe_link, Some(CidLink::parse(RAW).unwrap()));
    assert_eq!(record.missing_link, None);
    assert_eq!(record.extra.type_name(), Some("com.example.unknown"));

    // JSON: the same value back.
    assert_eq!(serde_json::to_value(&record).unwrap(), json);
    let text = serde_json::to_string(&record).unwrap();
    assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), record);

    // DAG-CBOR: round trip, and the same bytes (hence the same CID) as the generic value.
    let cbor = data::to_dag_cbor(&record).unwrap();
    assert_eq!(data::from_dag_cbor::<Record>(&cbor).unwrap(), record);
    let generic = Data::from_json_object(&json).unwrap();
    assert_eq!(generic.to_dag_cbor().unwrap(), cbor);
    assert_eq!(data::record_cid(&record).unwrap(), generic.cid().unwrap());
    let decoded_generic = Data::from_dag_cbor(&cbor).unwrap();
    assert_eq!(decoded_generic, generic);
    assert_eq!(decoded_generic.to_json(), json);
}

#[test]
fn struct_fields_reject_bad_values() {
    for (field, bad) in [
        ("payload", json!("AQID")),
        ("payload", json!({"$bytes": "AQID", "x": 1})),
        ("link", json!(DAG)),
        (
            "link",
            json!({"$link": "QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR"}),
        ),
        (
            "image",
            json!({"$type": "blob", "ref": {"$link": RAW}, "mimeType": "", "size": 1}),
        ),
        ("image", json!({"cid": "nope", "mimeType": "image/png"})),
        ("thumbs", json!([{"cid": RAW, "mimeType": "image/png"}])),
        ("extra", json!({"$type": ""})),
        ("extra", json!({"a": 1.5})),
    ] {
        let mut json = record_json();
        json[field] = bad.clone();
        assert!(
            serde_json::from_value::<Record>(json.clone()).is_err(),
            "{field}: {bad} accepted"
        );
        assert!(serde_json::from_str::<Record>(&json.to_string()).is_err());
    }
}

#[test]
fn cbor_field_types_are_checked() {
    // A CBOR text string where a link (tag 42) is expected, and bytes where a string is.
    #[derive(Serialize)]
    struct Wrong<'a> {
        link: &'a str,
    }
    #[derive(Debug, Deserialize)]
    struct Right {
        #[allow(dead_code)] // Only decoded to see that it fails.
        link: CidLink,
    }
    let cbor = data::to_dag_cbor(&Wrong { link: DAG }).unwrap();
    assert!(data::from_dag_cbor::<Right>(&cbor).is_err());
}

/// Shaped like a union member of an internally tagged enum, the usual serde mapping of a
/// lexicon union. serde buffers such values and replays them through a deserializer that
/// reports `is_human_readable() == true` even for DAG-CBOR input; the leaf types must still
/// decode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "$type")]
enum Embed {
    #[serde(rename = "com.example.images")]
    Images(Images),
    #[serde(rename = "com.example.link")]
    Link { target: CidLink },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Images {
    images: Vec<BlobRef>,
    payload: Bytes,
    target: CidLink,
    extra: Data,
}

#[test]
fn internally_tagged_unions_round_trip_through_both_encodings() {
    let json = json!({
        "$type": "com.example.images",
        "images": [
            {"$type": "blob", "ref": {"$link": RAW}, "mimeType": "image/jpeg", "size": 3},
            {"cid": RAW, "mimeType": "image/png"},
        ],
        "payload": {"$bytes": "AQID"},
        "target": {"$link": DAG},
        "extra": {"l": {"$link": DAG}, "b": {"$bytes": "AQID"}},
    });
    let embed: Embed = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(serde_json::to_value(&embed).unwrap(), json);
    let cbor = data::to_dag_cbor(&embed).unwrap();
    assert_eq!(data::from_dag_cbor::<Embed>(&cbor).unwrap(), embed);
    // The encoding is the canonical one of the same data.
    assert_eq!(Data::from_json(&json).unwrap().to_dag_cbor().unwrap(), cbor);

    let link = Embed::Link {
        target: CidLink::parse(DAG).unwrap(),
    };
    let cbor = data::to_dag_cbor(&link).unwrap();
    assert_eq!(data::from_dag_cbor::<Embed>(&cbor).unwrap(), link);
}

fn link_strategy() -> impl Strategy<Value = CidLink> {
    (any::<bool>(), prop::collection::vec(any::<u8>(), 0..16)).prop_map(|(raw, bytes)| {
        if raw {
            CidLink::for_raw(&bytes)
        } else {
            CidLink::for_dag_cbor(&bytes)
        }
    })
}

fn blob_strategy() -> impl Strategy<Value = Blob> {
    (
        link_strategy(),
        "[a-z]{1,8}/[a-z0-9.+-]{1,12}",
        0..=i64::MAX,
    )
        .prop_map(|(r#ref, mime_type, size)| Blob {
            r#ref,
            mime_type,
            size: size as u64,
        })
}

fn leaf_strategy() -> impl Strategy<Value = Data> {
    prop_oneof![
        Just(Data::Null),
        any::<bool>().prop_map(Data::Boolean),
        any::<i64>().prop_map(Data::Integer),
        prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0), Just(-1)].prop_map(Data::Integer),
        any::<String>().prop_map(Data::String),
        prop::collection::vec(any::<u8>(), 0..24).prop_map(|bytes| Data::Bytes(Bytes(bytes))),
        link_strategy().prop_map(Data::Link),
        blob_strategy().prop_map(Data::Blob),
    ]
}

/// Object keys: anything but the reserved ones (a `$type` is added separately).
fn key_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z$_-][a-zA-Z0-9$_-]{0,8}",
        any::<String>(),
        Just(String::new()),
    ]
    .prop_filter("reserved key", |key| {
        !matches!(key.as_str(), "$link" | "$bytes" | "$type")
    })
}

fn type_strategy() -> impl Strategy<Value = Option<String>> {
    prop::option::of("[a-z]{1,6}(\\.[a-z]{1,6}){1,3}(#[a-z]{1,6})?")
}

fn data_strategy() -> impl Strategy<Value = Data> {
    leaf_strategy().prop_recursive(5, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Data::Array),
            (
                prop::collection::btree_map(key_strategy(), inner, 0..6),
                type_strategy()
            )
                .prop_map(|(mut object, kind)| {
                    if let Some(kind) = kind {
                        object.insert("$type".to_owned(), Data::String(kind));
                    }
                    Data::Object(object)
                }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn data_round_trips_through_json(data in data_strategy()) {
        prop_assert!(data.validate().is_ok());
        let value = data.to_json();
        prop_assert_eq!(&Data::from_json(&value).unwrap(), &data);
        prop_assert_eq!(&serde_json::to_value(&data).unwrap(), &value);
        let text = serde_json::to_string(&data).unwrap();
        prop_assert_eq!(&serde_json::from_str::<Data>(&text).unwrap(), &data);
    }

    #[test]
    fn data_round_trips_through_dag_cbor(data in data_strategy()) {
        let bytes = data.to_dag_cbor().unwrap();
        let decoded = Data::from_dag_cbor(&bytes).unwrap();
        prop_assert_eq!(&decoded, &data);
        // Canonical: re-encoding what was decoded gives the same bytes, hence the same CID.
        prop_assert_eq!(&decoded.to_dag_cbor().unwrap(), &bytes);
        prop_assert_eq!(data.cid().unwrap(), CidLink::for_dag_cbor(&bytes));
        // And JSON written from the decoded value reads back to it.
        prop_assert_eq!(&Data::from_json(&decoded.to_json()).unwrap(), &data);
    }

    #[test]
    fn cbor_encoding_does_not_depend_on_key_insertion_order(
        entries in prop::collection::vec((key_strategy(), any::<i64>()), 0..12)
    ) {
        // A map serialized in arbitrary order must come out in DAG-CBOR order.
        struct Unsorted<'a>(&'a [(String, i64)]);
        impl Serialize for Unsorted<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(Some(self.0.len()))?;
                for (key, value) in self.0 {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
        let unique: BTreeMap<String, i64> = entries.iter().cloned().collect();
        let mut shuffled: Vec<(String, i64)> = unique.clone().into_iter().collect();
        shuffled.reverse();
        let from_unsorted = data::to_dag_cbor(&Unsorted(&shuffled)).unwrap();
        let generic = Data::Object(
            unique.into_iter().map(|(key, value)| (key, Data::Integer(value))).collect(),
        );
        prop_assert_eq!(&from_unsorted, &generic.to_dag_cbor().unwrap());
        // The strict decoder accepts it, so the order is the DAG-CBOR one.
        prop_assert_eq!(Data::from_dag_cbor(&from_unsorted).unwrap(), generic);
    }
}

#[test]
fn nesting_is_bounded_on_both_sides() {
    let mut data = Data::Null;
    for _ in 0..MAX_DEPTH {
        data = Data::Array(vec![data]);
    }
    let bytes = data.to_dag_cbor().unwrap();
    assert_eq!(Data::from_dag_cbor(&bytes).unwrap(), data);
    let text = serde_json::to_string(&data).unwrap();
    assert_eq!(serde_json::from_str::<Data>(&text).unwrap(), data);
    let deeper = Data::Array(vec![data]);
    assert!(deeper.to_dag_cbor().is_err());
    assert!(serde_json::to_string(&deeper).is_err());
}
