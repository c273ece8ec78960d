//! The checks behind atlex's fuzz targets, one function per target: each takes the fuzzer's
//! bytes, feeds them to the code that reads network (or file) input, and panics only when
//! that code panics or breaks a stated property (a round trip, an invariant).
//!
//! The targets in `fuzz_targets/` are one-line wrappers, and the regression tests
//! (`tests/tests/fuzz_regressions.rs`) include this file by path and run every committed
//! crash input and seed through the same functions, so a fixed crash stays fixed without the
//! fuzzer. See `tests/fuzz/README.md`.

use std::fmt::Debug;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use atlex::__fuzz::{
    decode_response, encode_query, jwt_expiry, jwt_issued_at, rate_limit, refresh_time,
};
use atlex::app::bsky::actor::get_profile::GetProfile;
use atlex::app::bsky::actor::profile::Profile;
use atlex::app::bsky::feed::get_timeline::GetTimeline;
use atlex::app::bsky::feed::post::Post;
use atlex::app::bsky::graph::follow::Follow;
use atlex::com::atproto::label::subscribe_labels::SubscribeLabels;
use atlex::com::atproto::repo::get_record::GetRecord;
use atlex::com::atproto::server::create_session::CreateSession;
use atlex::com::atproto::server::describe_server::DescribeServer;
use atlex::com::atproto::sync::get_blob::GetBlob;
use atlex::com::atproto::sync::subscribe_repos::SubscribeRepos;
use atlex::lexicon::{Catalog, Def, LexiconDoc, check_document, parse_bytes};
use atlex::repo::{Car, CarLimits, Mst, Repo, decode_commit, verify_commit, verify_sync};
use atlex::types::crypto::{Algorithm, PrivateKey, PublicKey};
use atlex::types::data::{from_dag_cbor, to_dag_cbor};
use atlex::types::{Data, Record};
use atlex::xrpc::{Endpoint, Frame, decode_frame};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::percent_decode_str;
use serde_json::json;

/// A target's check: panics when the code under test misbehaves on the input.
pub type Check = fn(&[u8]);

/// Every target: its name (the binary in `fuzz_targets/`, the folder under
/// `regressions/` and `seeds/`) and its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("data_model", data_model),
    ("frames", frames),
    ("lexicon", lexicon),
    ("records", records),
    ("xrpc_response", xrpc_response),
    ("headers_query", headers_query),
    ("jwt", jwt),
    ("repo", repo),
];

/// `data_model`: any input that decodes as DAG-CBOR or as JSON into `Data` re-encodes, in
/// both formats, to something that decodes to the same value; DAG-CBOR encoding is stable;
/// the two JSON readers (serde and `Data::from_json`) agree.
pub fn data_model(bytes: &[u8]) {
    if let Ok(value) = Data::from_dag_cbor(bytes) {
        data_round_trip(&value);
    }
    if let Ok(value) = serde_json::from_slice::<Data>(bytes) {
        data_round_trip(&value);
        let json: serde_json::Value =
            serde_json::from_slice(bytes).expect("valid data-model JSON is JSON");
        assert_eq!(
            Data::from_json(&json).ok().as_ref(),
            Some(&value),
            "Data::from_json disagrees with serde"
        );
    }
}

fn data_round_trip(value: &Data) {
    let cbor = value
        .to_dag_cbor()
        .expect("a decoded value encodes as DAG-CBOR");
    let from_cbor = Data::from_dag_cbor(&cbor).expect("encoded DAG-CBOR decodes");
    assert_eq!(&from_cbor, value, "DAG-CBOR round trip");
    assert_eq!(
        from_cbor.to_dag_cbor().expect("re-encodes"),
        cbor,
        "DAG-CBOR encoding is stable"
    );
    let json = serde_json::to_vec(value).expect("a decoded value encodes as JSON");
    let from_json: Data = serde_json::from_slice(&json).expect("encoded JSON decodes");
    assert_eq!(&from_json, value, "JSON round trip");
    assert_eq!(
        Data::from_json(&value.to_json()).ok().as_ref(),
        Some(value),
        "Data::to_json round trip"
    );
}

/// `frames`: `decode_frame` of `com.atproto.sync.subscribeRepos` and
/// `com.atproto.label.subscribeLabels` never panics, and what it returns formats.
pub fn frames(bytes: &[u8]) {
    match decode_frame::<SubscribeRepos>(bytes) {
        Ok(Frame::Message(message)) => drop(format!("{message:?}")),
        Ok(Frame::Error(error)) => drop(format!("{error} {error:?}")),
        Err(error) => drop(error.to_string()),
    }
    match decode_frame::<SubscribeLabels>(bytes) {
        Ok(Frame::Message(message)) => drop(format!("{message:?}")),
        Ok(Frame::Error(error)) => drop(format!("{error} {error:?}")),
        Err(error) => drop(error.to_string()),
    }
}

/// `lexicon`: a document loaded from any bytes goes through every single-document check,
/// writes back to JSON that loads to a document with the same JSON, joins a catalog whose
/// cross-document checks run, and (when it defines a record) validates a sample record.
pub fn lexicon(bytes: &[u8]) {
    let Ok(doc) = parse_bytes(bytes, None) else {
        return;
    };
    drop(check_document(&doc, None).to_string());
    let written = doc.to_json();
    let again = LexiconDoc::from_json(&written).expect("a loaded document's JSON loads");
    assert_eq!(again.to_json(), written, "lexicon JSON round trip");

    let nsid = doc.nsid().to_owned();
    let has_record = matches!(doc.main(), Some(Def::Record(_)));
    let mut catalog = Catalog::new();
    if catalog.insert(doc, None).is_err() {
        return;
    }
    drop(catalog.check().to_string());
    if has_record {
        let record = json!({
            "$type": nsid,
            "text": "hello",
            "createdAt": "2024-01-01T00:00:00Z",
            "subject": "did:plc:abc",
            "items": [1, "two", {"$link": "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a"}],
        });
        if let Err(errors) = catalog.validate_record(&nsid, &record) {
            drop(errors.to_string());
        }
    }
}

/// `records`: `app.bsky.feed.post`, `app.bsky.actor.profile` and `app.bsky.graph.follow`
/// decoded from JSON or DAG-CBOR validate without panicking and re-encode, in both formats,
/// to the same record. JSON inputs are also converted to DAG-CBOR, so the CBOR decoders see
/// realistic records too.
pub fn records(bytes: &[u8]) {
    record::<Post>(bytes);
    record::<Profile>(bytes);
    record::<Follow>(bytes);
    if let Ok(data) = serde_json::from_slice::<Data>(bytes)
        && let Ok(cbor) = data.to_dag_cbor()
    {
        record::<Post>(&cbor);
        record::<Profile>(&cbor);
        record::<Follow>(&cbor);
    }
}

fn record<T: Record + PartialEq + Debug>(bytes: &[u8]) {
    if let Ok(record) = serde_json::from_slice::<T>(bytes) {
        record_round_trip(&record);
    }
    if let Ok(record) = from_dag_cbor::<T>(bytes) {
        record_round_trip(&record);
    }
}

fn record_round_trip<T: Record + PartialEq + Debug>(record: &T) {
    if let Err(errors) = record.validate() {
        drop(errors.to_string());
    }
    let json = serde_json::to_vec(record).expect("a decoded record encodes as JSON");
    let from_json: T = serde_json::from_slice(&json).expect("encoded JSON decodes");
    assert_eq!(&from_json, record, "JSON round trip");
    let cbor = to_dag_cbor(record).expect("a decoded record encodes as DAG-CBOR");
    let from_cbor: T = from_dag_cbor(&cbor).expect("encoded DAG-CBOR decodes");
    assert_eq!(&from_cbor, record, "DAG-CBOR round trip");
}

/// `xrpc_response`: the client's decode path for a received response (the code
/// `Client::call` runs, through `atlex::__fuzz::decode_response`) for JSON outputs, a raw
/// (blob) output, typed error enums and the generic error, under success and error statuses,
/// with and without a content type. Nothing panics; every output and error formats.
pub fn xrpc_response(bytes: &[u8]) {
    response::<GetTimeline>(bytes);
    response::<GetProfile>(bytes);
    response::<GetRecord>(bytes);
    response::<CreateSession>(bytes);
    response::<DescribeServer>(bytes);
    response::<GetBlob>(bytes);
}

fn response<E: Endpoint>(bytes: &[u8])
where
    E::Output: Debug,
{
    for (status, content_type) in [
        (200, Some("application/json")),
        (200, None),
        (400, Some("application/json")),
        (401, None),
        (502, Some("text/html")),
    ] {
        match decode_response::<E>(status, content_type.map(str::to_owned), bytes.to_vec()) {
            Ok(output) => drop(format!("{output:?}")),
            Err(error) => {
                drop(format!("{error} {error:?}"));
                let _ = (
                    error.status(),
                    error.code().map(str::len),
                    error.is_transient(),
                );
            }
        }
    }
}

/// `headers_query`: the input as lines `name: value` (raw bytes) is the header block of a 429
/// answer, read by the client's `rate_limit` at several clocks; the wait and the message must
/// not panic. The same lines as UTF-8 pairs go through the client's query encoder: the query
/// uses only unreserved characters, `%XX`, `=` and `&`, and decodes to the same pairs.
pub fn headers_query(bytes: &[u8]) {
    let headers: Vec<(&[u8], &[u8])> = bytes
        .split(|&b| b == b'\n')
        .map(|line| match line.iter().position(|&b| b == b':') {
            Some(colon) => (&line[..colon], trim(&line[colon + 1..])),
            None => (line, &b""[..]),
        })
        .collect();
    for now in [
        UNIX_EPOCH,
        UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        SystemTime::now(),
    ] {
        let limit = rate_limit(headers.iter().copied(), bytes, now);
        let _ = limit.wait(now);
        drop(format!("{limit} {limit:?}"));
    }

    let text = String::from_utf8_lossy(bytes);
    let pairs: Vec<(&str, &str)> = text
        .split('\n')
        .map(|line| line.split_once(':').unwrap_or((line, "")))
        .collect();
    let query = encode_query(pairs.iter().copied());
    assert!(
        query
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%=&".contains(&b)),
        "query {query:?} has a character that needs escaping"
    );
    let decoded: Vec<(String, String)> = query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').expect("every pair has `=`");
            (percent_decoded(name), percent_decoded(value))
        })
        .collect();
    let expected: Vec<(String, String)> = pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    assert_eq!(
        decoded, expected,
        "query {query:?} does not decode to its pairs"
    );
}

fn trim(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &value[start..end]
}

fn percent_decoded(text: &str) -> String {
    percent_decode_str(text)
        .decode_utf8()
        .expect("an encoded UTF-8 string decodes to UTF-8")
        .into_owned()
}

/// `jwt`: the claims the password session reads (`exp`, `iat`) and the refresh time it
/// computes from them. The input is tried as a whole compact token; as the claims JSON of a
/// token (base64url-encoded into its middle part), so the fuzzer reaches the claim parser
/// directly; and, when it has 16 bytes, as two big-endian `i64`s written as the `exp` and
/// `iat` claims, so every pair of numbers reaches the refresh arithmetic. Nothing panics or
/// overflows, and the refresh is never after the expiry.
pub fn jwt(bytes: &[u8]) {
    if let Ok(token) = std::str::from_utf8(bytes) {
        refresh_schedule(token);
    }
    refresh_schedule(&token_with_claims(bytes));
    if let (Some(exp), Some(iat)) = (bytes.get(..8), bytes.get(8..16)) {
        let number = |part: &[u8]| i64::from_be_bytes(part.try_into().expect("8 bytes"));
        let claims = format!(r#"{{"exp":{},"iat":{}}}"#, number(exp), number(iat));
        refresh_schedule(&token_with_claims(claims.as_bytes()));
    }
}

fn token_with_claims(claims: &[u8]) -> String {
    format!(
        "eyJhbGciOiJFUzI1NksifQ.{}.sig",
        URL_SAFE_NO_PAD.encode(claims)
    )
}

fn refresh_schedule(token: &str) {
    let issued = jwt_issued_at(token);
    if let Some(exp) = jwt_expiry(token) {
        for jitter in [0, 60] {
            let at = refresh_time(exp, issued, jitter);
            assert!(at <= exp, "refresh at {at} is after expiry {exp}");
        }
    }
}

/// The key the `repo` seeds are signed with (`tests/tests/fuzz_regressions.rs` writes them),
/// so that mutated events whose commit still verifies go on to the MST proof.
pub fn repo_seed_key() -> PrivateKey {
    PrivateKey::from_bytes(Algorithm::K256, &[7; 32]).expect("a valid fixed key")
}

/// `repo`: the input as a `subscribeRepos` frame (a `#commit` decoded and verified with the
/// seeds' key, a `#sync` verified) and as a CAR (read within the event limits, walked as a
/// repository, its MST loaded lazily, searched, changed and rebuilt). Nothing panics, what
/// comes out formats, and a verified commit's operations are consistent with its MST.
pub fn repo(bytes: &[u8]) {
    let key: PublicKey = repo_seed_key().public_key();
    if let Ok(Frame::Message(message)) = decode_frame::<SubscribeRepos>(bytes) {
        use atlex::com::atproto::sync::subscribe_repos::Message;
        match message {
            Message::Commit(event) => {
                match decode_commit(&event) {
                    Ok(decoded) => drop(format!("{decoded:?}")),
                    Err(error) => drop(error.to_string()),
                }
                match verify_commit(&event, &key) {
                    Ok(verified) => {
                        let car = Car::read(event.blocks.0.clone(), &CarLimits::EVENT)
                            .expect("a verified event's CAR reads");
                        let data = verified.data.clone().expect("a verified commit has data");
                        let mut mst = Mst::load(&data, car.blocks()).expect("its MST loads");
                        for op in &verified.ops {
                            assert_eq!(
                                mst.get(&op.path(), car.blocks())
                                    .expect("proven ops are found"),
                                op.cid,
                                "a verified op disagrees with the MST"
                            );
                        }
                    }
                    Err(error) => drop(error.to_string()),
                }
            }
            Message::Sync(event) => match verify_sync(&event, &key) {
                Ok(commit) => drop(format!("{commit:?}")),
                Err(error) => drop(error.to_string()),
            },
            _ => {}
        }
    }
    let Ok(car) = Car::read(bytes.to_vec(), &CarLimits::EVENT) else {
        return;
    };
    if let Ok(repo) = Repo::from_car(bytes.to_vec()) {
        for record in repo.records().take(10_000) {
            match record {
                Ok(record) => drop(format!("{record:?}")),
                Err(error) => drop(error.to_string()),
            }
        }
    }
    for root in car.roots() {
        let blocks = car.blocks();
        let Ok(mut mst) = Mst::load(root, blocks) else {
            continue;
        };
        let keys: Vec<String> = mst.known_entries().map(|(k, _)| k.to_owned()).collect();
        let before = mst.root(blocks);
        if let (Ok(before), Some(first)) = (&before, keys.first()) {
            // Removing and putting back an entry gives the same root.
            let mut changed = mst.clone();
            if let Ok(Some(value)) = changed.remove(first, blocks)
                && changed.insert(first, value, blocks).is_ok()
                && let Ok(after) = changed.root(blocks)
            {
                assert_eq!(&after, before, "remove + insert changed the root");
            }
        }
        let _ = mst.get("app.bsky.feed.post/3k2a", blocks);
    }
}
