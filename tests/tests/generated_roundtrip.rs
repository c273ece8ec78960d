//! Real records from the reference PDS (`tests/fixtures/records/`, made by
//! `tests/pds/make-fixtures.mjs`) decode into the generated types and encode back to the same
//! JSON value, fields this version does not know included; their DAG-CBOR encoding and CID match
//! those of the untyped data model; and they pass the generated `validate()`.

use std::path::PathBuf;

use atlex::types::data::cbor;
use atlex::types::{Data, Record, Validate};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/records")
}

fn load(collection: &str) -> Vec<serde_json::Value> {
    let path = fixtures_dir().join(format!("{collection}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Checks every record of the collection; returns the number checked.
fn check<R: Record + Serialize + DeserializeOwned + Validate + PartialEq + std::fmt::Debug>()
-> usize {
    let records = load(R::NSID);
    assert!(!records.is_empty(), "{}: no fixtures", R::NSID);
    for (i, json) in records.iter().enumerate() {
        let what = format!("{}[{i}]", R::NSID);
        let typed: R = serde_json::from_value(json.clone())
            .unwrap_or_else(|e| panic!("{what}: decode failed: {e}\n{json:#}"));
        let back = serde_json::to_value(&typed).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(&back, json, "{what}: JSON round trip changed the record");

        // From bytes too (the borrowed-key path), not only from a Value.
        let text = serde_json::to_string(json).unwrap_or_else(|e| panic!("{what}: {e}"));
        let from_text: R = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(from_text, typed, "{what}: decoding from text differs");

        let data = Data::from_json(json).unwrap_or_else(|e| panic!("{what}: {e}"));
        let typed_cbor = cbor::to_dag_cbor(&typed).unwrap_or_else(|e| panic!("{what}: {e}"));
        let data_cbor = cbor::to_dag_cbor(&data).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            typed_cbor, data_cbor,
            "{what}: DAG-CBOR differs from the data model's"
        );
        assert_eq!(
            cbor::record_cid(&typed).unwrap_or_else(|e| panic!("{what}: {e}")),
            cbor::record_cid(&data).unwrap_or_else(|e| panic!("{what}: {e}")),
            "{what}: CID differs"
        );
        let from_cbor: R =
            cbor::from_dag_cbor(&typed_cbor).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            from_cbor, typed,
            "{what}: DAG-CBOR round trip changed the record"
        );

        if let Err(errors) = typed.validate() {
            panic!("{what}: the PDS accepted this record but validate() says: {errors}");
        }
    }
    records.len()
}

macro_rules! collections {
    ($($test:ident => $ty:path,)*) => {$(
        #[test]
        fn $test() {
            assert!(check::<$ty>() > 0);
        }
    )*};
}

collections! {
    actor_profile => atlex::app::bsky::actor::profile::Profile,
    actor_status => atlex::app::bsky::actor::status::Status,
    actor_content_visibility => atlex::app::bsky::actor::content_visibility_declaration::ContentVisibilityDeclaration,
    feed_generator => atlex::app::bsky::feed::generator::Generator,
    feed_like => atlex::app::bsky::feed::like::Like,
    feed_post => atlex::app::bsky::feed::post::Post,
    feed_postgate => atlex::app::bsky::feed::postgate::Postgate,
    feed_repost => atlex::app::bsky::feed::repost::Repost,
    feed_threadgate => atlex::app::bsky::feed::threadgate::Threadgate,
    graph_block => atlex::app::bsky::graph::block::Block,
    graph_follow => atlex::app::bsky::graph::follow::Follow,
    graph_list => atlex::app::bsky::graph::list::List,
    graph_listblock => atlex::app::bsky::graph::listblock::Listblock,
    graph_listitem => atlex::app::bsky::graph::listitem::Listitem,
    graph_starterpack => atlex::app::bsky::graph::starterpack::Starterpack,
    graph_verification => atlex::app::bsky::graph::verification::Verification,
    labeler_service => atlex::app::bsky::labeler::service::Service,
    notification_declaration => atlex::app::bsky::notification::declaration::Declaration,
    chat_actor_declaration => atlex::chat::bsky::actor::declaration::Declaration,
}

#[test]
fn list_records_page_decodes() {
    use atlex::com::atproto::repo::list_records::Output;
    let path = fixtures_dir().join("listRecords-app.bsky.feed.post.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let page: Output = serde_json::from_str(&text).unwrap();
    assert_eq!(page.records.len(), 100);
    assert!(page.cursor.is_some());
    assert_eq!(serde_json::to_value(&page).unwrap(), json);
    for record in &page.records {
        let post: atlex::app::bsky::feed::post::Post =
            serde_json::from_value(record.value.to_json()).unwrap();
        assert!(!post.created_at.as_str().is_empty());
    }
}

#[test]
fn unknown_fields_and_union_members_survive() {
    let mut post = load("app.bsky.feed.post").remove(0);
    post["futureField"] = serde_json::json!({"nested": [1, 2, {"$bytes": "AQI"}]});
    post["embed"] = serde_json::json!({
        "$type": "app.example.embed.hologram",
        "depth": 3
    });
    let typed: atlex::app::bsky::feed::post::Post = serde_json::from_value(post.clone()).unwrap();
    assert!(typed.extra.get("futureField").is_some());
    match &typed.embed {
        Some(atlex::app::bsky::feed::post::PostEmbed::Unknown(member)) => {
            assert_eq!(member.type_tag(), "app.example.embed.hologram")
        }
        other => panic!("expected an unknown embed, got {other:?}"),
    }
    assert_eq!(serde_json::to_value(&typed).unwrap(), post);
}
