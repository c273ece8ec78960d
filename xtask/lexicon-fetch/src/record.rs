//! The checks of one `com.atproto.lexicon.schema` record, shared by `fetch` (on what the PDS
//! answered) and `verify` (on the pinned file).

use std::collections::BTreeSet;

use atlex::types::{Data, Did, Nsid};
use serde_json::Value;

use crate::SCHEMA_COLLECTION;

/// What a record that passed the checks holds.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The NSIDs of other documents it refers to (sorted, without its own).
    pub refs: BTreeSet<String>,
    /// Warnings of the lexicon checks (the record is accepted with them).
    pub warnings: Vec<String>,
}

/// The record URI of `nsid`'s lexicon in the repository of `did`.
pub fn record_uri(did: &Did, nsid: &Nsid) -> String {
    format!("at://{did}/{SCHEMA_COLLECTION}/{nsid}")
}

/// The CID of a record value: DAG-CBOR of its data-model form (`$link`, `$bytes` decoded;
/// floats refused), SHA-256, CIDv1 `dag-cbor`.
pub fn value_cid(value: &Value) -> Result<String, String> {
    let data = Data::from_json_object(value)
        .map_err(|error| format!("the record is not atproto data: {error}"))?;
    data.cid()
        .map(|cid| cid.to_string())
        .map_err(|error| format!("the record has no DAG-CBOR encoding: {error}"))
}

/// Checks the record `value` with its `uri` and `cid` (as the PDS reported them or as pinned)
/// against the expected NSID and authority DID. `origin` (a URL or a file) is named in every
/// problem, as is the NSID and the field.
pub fn check(
    nsid: &Nsid,
    did: &Did,
    uri: &str,
    cid: &str,
    value: &Value,
    origin: &str,
) -> Result<Checked, Vec<String>> {
    let mut problems = Vec::new();
    let mut problem = |text: String| problems.push(format!("{nsid}: {origin}: {text}"));
    let expected_uri = record_uri(did, nsid);
    if uri != expected_uri {
        problem(format!(
            "`uri` is `{}`, expected `{expected_uri}` (the authority's repository, collection \
             {SCHEMA_COLLECTION}, record key = NSID)",
            shorten(uri)
        ));
    }
    let Some(object) = value.as_object() else {
        problem("the record value is not a JSON object".to_owned());
        return Err(problems);
    };
    match object.get("$type").and_then(Value::as_str) {
        Some(SCHEMA_COLLECTION) => {}
        Some(other) => problem(format!(
            "`$type` is `{}`, expected `{SCHEMA_COLLECTION}`",
            shorten(other)
        )),
        None => problem(format!(
            "`$type` is missing (expected `{SCHEMA_COLLECTION}`)"
        )),
    }
    match object.get("lexicon") {
        Some(Value::Number(number)) if number.as_u64() == Some(1) => {}
        Some(other) => problem(format!(
            "`lexicon` is {}, expected 1",
            shorten(&other.to_string())
        )),
        None => problem("`lexicon` is missing (expected 1)".to_owned()),
    }
    match object.get("id").and_then(Value::as_str) {
        Some(id) if id == nsid.as_str() => {}
        Some(id) => problem(format!(
            "`id` is `{}`, not the NSID the record is published under",
            shorten(id)
        )),
        None => problem("`id` is missing or not a string".to_owned()),
    }
    match value_cid(value) {
        Ok(computed) if computed == cid => {}
        Ok(computed) => problem(format!(
            "`cid` is `{}` but the record's DAG-CBOR encoding hashes to `{computed}`",
            shorten(cid)
        )),
        Err(error) => problem(error),
    }
    let mut refs = BTreeSet::new();
    let mut warnings = Vec::new();
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    match atlex_lexicon::parse_bytes(&bytes, None) {
        Err(error) => problem(format!("not a lexicon document: {error}")),
        Ok(doc) => {
            let diagnostics = atlex_lexicon::check_document(&doc, None);
            for error in diagnostics.errors() {
                problem(format!("lexicon check: {error}"));
            }
            for warning in diagnostics.warnings() {
                warnings.push(format!("{nsid}: {origin}: lexicon check: {warning}"));
            }
            for used in doc.refs() {
                if let Some(other) = used.reference.nsid()
                    && other != nsid.as_str()
                {
                    refs.insert(other.to_owned());
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(Checked { refs, warnings })
    } else {
        Err(problems)
    }
}

/// Shortens untrusted text for a message.
pub fn shorten(text: &str) -> String {
    const MAX: usize = 120;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", text.get(..at).unwrap_or_default()),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(id: &str) -> Value {
        json!({
            "$type": SCHEMA_COLLECTION,
            "lexicon": 1,
            "id": id,
            "defs": {"main": {"type": "object", "properties": {
                "tag": {"type": "ref", "ref": "org.example.tags.defs#tag"},
                "self": {"type": "ref", "ref": "#other"}
            }}, "other": {"type": "object", "properties": {}}}
        })
    }

    #[test]
    fn a_good_record_passes_and_lists_its_refs() {
        let nsid = Nsid::new("com.example.feed.thing").unwrap();
        let did = Did::new("did:plc:ewvi7nxzyoun6zhxrhs64oiz").unwrap();
        let value = doc("com.example.feed.thing");
        let cid = value_cid(&value).unwrap();
        let checked = check(&nsid, &did, &record_uri(&did, &nsid), &cid, &value, "x").unwrap();
        assert_eq!(
            checked.refs.into_iter().collect::<Vec<_>>(),
            ["org.example.tags.defs"]
        );
    }

    #[test]
    fn every_mismatch_is_named() {
        let nsid = Nsid::new("com.example.feed.thing").unwrap();
        let did = Did::new("did:plc:ewvi7nxzyoun6zhxrhs64oiz").unwrap();
        let mut value = doc("com.example.feed.other");
        value["lexicon"] = json!(2);
        value["$type"] = json!("app.bsky.feed.post");
        let cid = value_cid(&doc("com.example.feed.thing")).unwrap();
        let problems = check(
            &nsid,
            &did,
            "at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/com.atproto.lexicon.schema/com.example.feed.thing",
            &cid,
            &value,
            "https://pds.example/xrpc/x",
        )
        .unwrap_err();
        let all = problems.join("\n");
        for needle in [
            "`uri`",
            "`$type`",
            "`lexicon` is 2",
            "`id` is `com.example.feed.other`",
            "`cid`",
        ] {
            assert!(all.contains(needle), "{needle} in {all}");
        }
        assert!(
            problems
                .iter()
                .all(|p| p.starts_with("com.example.feed.thing: https://pds.example/xrpc/x: "))
        );
    }

    #[test]
    fn floats_have_no_cid() {
        let error = value_cid(&json!({"a": 1.5})).unwrap_err();
        assert!(error.contains("not atproto data"), "{error}");
    }
}
