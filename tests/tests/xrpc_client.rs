//! The XRPC client against a mock server (wiremock): encoding, validation, errors, retries,
//! rate limits, headers, the untyped calls, raw bodies and pagination.

mod support;

use std::time::{Duration, Instant};

use atlex::types::Did;
use atlex::xrpc::{
    CallOptions, Client, Error, Labeler, NoBody, NoParams, RawBody, RequestPart, TransportErrorKind,
};
use futures::StreamExt;
use serde_json::json;
use support::*;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const GET_THING: &str = "/xrpc/com.example.getThing";
const CREATE_THING: &str = "/xrpc/com.example.createThing";

async fn client(server: &MockServer) -> Client {
    Client::builder(server.uri())
        .retry(fast_retry(2))
        .build()
        .unwrap()
}

/// Matches a header's exact bytes (wiremock's `header` splits values at commas).
fn exact_header(name: &'static str, value: &'static str) -> impl Fn(&Request) -> bool {
    move |request: &Request| {
        request
            .headers
            .get(name)
            .is_some_and(|actual| actual.as_bytes() == value.as_bytes())
    }
}

fn ok_things(things: &[&str]) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "things": things }))
}

#[tokio::test]
async fn params_are_encoded_with_repeated_keys_and_escaping() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(GET_THING))
        .respond_with(ok_things(&["a"]))
        .mount(&server)
        .await;
    let client = client(&server).await;
    let params = GetThingParams {
        actor: "a b&c=d/é+".to_owned(),
        tags: vec!["x".to_owned(), "y z".to_owned()],
        limit: Some(5),
        cursor: None,
    };
    let (output, _client) = client.call::<GetThing>(params, NoBody).await.unwrap();
    assert_eq!(output.things, vec!["a"]);

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].url.query(),
        Some("actor=a%20b%26c%3Dd%2F%C3%A9%2B&tags=x&tags=y%20z&limit=5")
    );
    assert!(requests[0].headers.get("authorization").is_none());
}

#[tokio::test]
async fn invalid_params_or_input_never_reach_the_server() {
    let server = MockServer::start().await;
    let client = client(&server).await;

    let mut bad = params("alice");
    bad.limit = Some(1000);
    let error = client.call::<GetThing>(bad, NoBody).await.unwrap_err();
    match &error {
        Error::Validation { part, errors } => {
            assert_eq!(*part, RequestPart::Params);
            assert_eq!(errors.errors()[0].path, "$.limit");
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    assert!(error.to_string().contains("$.limit"), "{error}");

    let error = client
        .call::<CreateThing>(
            NoParams,
            CreateThingInput {
                text: "much too long for ten bytes".to_owned(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            Error::Validation {
                part: RequestPart::Input,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 0);
}

#[tokio::test]
async fn xrpc_errors_map_to_the_typed_enum_and_keep_unknown_names() {
    let server = MockServer::start().await;
    Mock::given(path(GET_THING))
        .and(query_param("actor", "missing"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "ThingNotFound", "message": "no such thing"
        })))
        .mount(&server)
        .await;
    Mock::given(path(GET_THING))
        .and(query_param("actor", "weird"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "BrandNewError", "message": "added after this SDK shipped"
        })))
        .mount(&server)
        .await;
    let client = client(&server).await;

    let error = client
        .call::<GetThing>(params("missing"), NoBody)
        .await
        .unwrap_err();
    match &error {
        Error::Xrpc { status, error } => {
            assert_eq!(*status, 400);
            assert_eq!(
                *error,
                GetThingError::ThingNotFound(Some("no such thing".into()))
            );
        }
        other => panic!("expected an XRPC error, got {other:?}"),
    }
    assert_eq!(error.code(), Some("ThingNotFound"));
    assert_eq!(error.status(), Some(400));
    assert!(!error.is_transient());

    let error = client
        .call::<GetThing>(params("weird"), NoBody)
        .await
        .unwrap_err();
    match &error {
        Error::Xrpc {
            error: GetThingError::Other(body),
            ..
        } => {
            assert_eq!(body.error, "BrandNewError");
            assert_eq!(
                body.message.as_deref(),
                Some("added after this SDK shipped")
            );
        }
        other => panic!("expected an unknown XRPC error, got {other:?}"),
    }
    assert_eq!(error.code(), Some("BrandNewError"));
    // A 4xx XRPC error is not retried.
    assert_eq!(hits(&server, "com.example.getThing").await, 2);
}

#[tokio::test]
async fn malformed_json_keeps_the_body_in_the_error() {
    let server = MockServer::start().await;
    let body = br#"{"things": [1, 2"#;
    Mock::given(path(GET_THING))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body.to_vec(), "application/json"))
        .mount(&server)
        .await;
    let error = client(&server)
        .await
        .call::<GetThing>(params("a"), NoBody)
        .await
        .unwrap_err();
    match &error {
        Error::Decode(decode) => {
            assert_eq!(decode.status(), 200);
            assert_eq!(decode.content_type(), Some("application/json"));
            assert_eq!(decode.body(), body);
            assert!(decode.message().contains("JSON"), "{}", decode.message());
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    // Display and Debug name the problem but do not dump the body.
    assert!(!format!("{error} {error:?}").contains("things"));
}

#[tokio::test]
async fn non_xrpc_error_bodies_are_kept_as_raw_responses() {
    let server = MockServer::start().await;
    Mock::given(path(CREATE_THING))
        .respond_with(
            ResponseTemplate::new(502)
                .set_body_raw(b"<html>bad gateway</html>".to_vec(), "text/html"),
        )
        .mount(&server)
        .await;
    let error = client(&server)
        .await
        .call::<CreateThing>(NoParams, CreateThingInput { text: "hi".into() })
        .await
        .unwrap_err();
    match &error {
        Error::Status(response) => {
            assert_eq!(response.status, 502);
            assert_eq!(response.content_type.as_deref(), Some("text/html"));
            assert_eq!(response.text(), Some("<html>bad gateway</html>"));
        }
        other => panic!("expected a raw status error, got {other:?}"),
    }
    assert!(error.is_transient());
    // A procedure is never retried, even on 502.
    assert_eq!(hits(&server, "com.example.createThing").await, 1);
}

#[tokio::test]
async fn server_errors_are_retried_for_queries_only() {
    let server = MockServer::start().await;
    Mock::given(path(GET_THING))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"error": "Unavailable"})))
        .mount(&server)
        .await;
    Mock::given(path(CREATE_THING))
        .respond_with(
            ResponseTemplate::new(500).set_body_json(json!({"error": "InternalServerError"})),
        )
        .mount(&server)
        .await;
    let client = client(&server).await; // 2 retries

    let error = client
        .call::<GetThing>(params("a"), NoBody)
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(503));
    assert_eq!(hits(&server, "com.example.getThing").await, 3);

    let error = client
        .call::<CreateThing>(NoParams, CreateThingInput { text: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("InternalServerError"));
    assert_eq!(hits(&server, "com.example.createThing").await, 1);
}

#[tokio::test]
async fn a_query_succeeds_after_transient_failures() {
    let server = MockServer::start().await;
    Mock::given(path(GET_THING))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path(GET_THING))
        .respond_with(ResponseTemplate::new(504))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(path(GET_THING))
        .respond_with(ok_things(&["finally"]))
        .with_priority(3)
        .mount(&server)
        .await;
    let (output, _) = client(&server)
        .await
        .call::<GetThing>(params("a"), NoBody)
        .await
        .unwrap();
    assert_eq!(output.things, vec!["finally"]);
    assert_eq!(hits(&server, "com.example.getThing").await, 3);
}

#[tokio::test]
async fn timeouts_are_retried_for_queries_only() {
    let server = MockServer::start().await;
    let slow = |body: serde_json::Value| {
        ResponseTemplate::new(200)
            .set_body_json(body)
            .set_delay(Duration::from_millis(800))
    };
    Mock::given(path(GET_THING))
        .respond_with(slow(json!({"things": []})))
        .mount(&server)
        .await;
    Mock::given(path(CREATE_THING))
        .respond_with(slow(json!({"id": "1"})))
        .mount(&server)
        .await;
    let client = Client::builder(server.uri())
        .retry(fast_retry(1))
        .timeout(Some(Duration::from_millis(100)))
        .build()
        .unwrap();

    let error = client
        .call::<GetThing>(params("a"), NoBody)
        .await
        .unwrap_err();
    match &error {
        Error::Transport(transport) => {
            assert!(transport.is_timeout());
            assert_eq!(transport.kind(), TransportErrorKind::Timeout);
            assert_eq!(transport.nsid(), "com.example.getThing");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(error.is_transient());
    assert!(
        std::error::Error::source(&error).is_some(),
        "the cause is kept"
    );
    assert_eq!(hits(&server, "com.example.getThing").await, 2);

    let error = client
        .call::<CreateThing>(NoParams, CreateThingInput { text: "x".into() })
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Transport(t) if t.is_timeout()),
        "{error:?}"
    );
    assert_eq!(hits(&server, "com.example.createThing").await, 1);

    // A per-call timeout overrides the client's.
    let (output, _) = client
        .call_with::<GetThing>(
            params("a"),
            NoBody,
            &CallOptions::new().timeout(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    assert!(output.things.is_empty());
}

#[tokio::test]
async fn connection_failures_are_transport_errors() {
    // Nothing listens on port 9 of localhost (discard); the connection is refused.
    let client = Client::builder("http://127.0.0.1:9")
        .retry(fast_retry(1))
        .build()
        .unwrap();
    let error = client
        .call::<GetThing>(params("a"), NoBody)
        .await
        .unwrap_err();
    assert!(matches!(&error, Error::Transport(_)), "{error:?}");
}

#[tokio::test]
async fn rate_limited_calls_wait_for_the_reset_and_retry() {
    let server = MockServer::start().await;
    let reset = now() + 1;
    Mock::given(path(GET_THING))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("ratelimit-limit", "3000")
                .insert_header("ratelimit-remaining", "0")
                .insert_header("ratelimit-reset", reset.to_string().as_str())
                .insert_header("ratelimit-policy", "3000;w=300")
                .set_body_json(json!({"error": "RateLimitExceeded", "message": "slow down"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path(GET_THING))
        .respond_with(ok_things(&["after the wait"]))
        .with_priority(2)
        .mount(&server)
        .await;
    let started = Instant::now();
    let (output, _) = client(&server)
        .await
        .call::<GetThing>(params("a"), NoBody)
        .await
        .unwrap();
    assert_eq!(output.things, vec!["after the wait"]);
    assert_eq!(hits(&server, "com.example.getThing").await, 2);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn rate_limits_longer_than_the_limit_fail_at_once() {
    let server = MockServer::start().await;
    let reset = now() + 3600;
    Mock::given(path(CREATE_THING))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("ratelimit-limit", "100")
                .insert_header("ratelimit-remaining", "0")
                .insert_header("ratelimit-reset", reset.to_string().as_str())
                .set_body_json(json!({"error": "RateLimitExceeded"})),
        )
        .mount(&server)
        .await;
    let error = client(&server)
        .await
        .call::<CreateThing>(NoParams, CreateThingInput { text: "x".into() })
        .await
        .unwrap_err();
    match &error {
        Error::RateLimited(limit) => {
            assert_eq!(limit.limit, Some(100));
            assert_eq!(limit.remaining, Some(0));
            let wait = limit.wait(std::time::SystemTime::now()).unwrap();
            assert!(wait > Duration::from_secs(3500), "{wait:?}");
            assert_eq!(
                limit.body.as_ref().map(|b| b.error.as_str()),
                Some("RateLimitExceeded")
            );
        }
        other => panic!("expected a rate-limit error, got {other:?}"),
    }
    assert_eq!(error.status(), Some(429));
    assert_eq!(hits(&server, "com.example.createThing").await, 1);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = MockServer::start().await;
    Mock::given(path(GET_THING))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path(GET_THING))
        .respond_with(ok_things(&["ok"]))
        .with_priority(2)
        .mount(&server)
        .await;
    let (output, _) = client(&server)
        .await
        .call::<GetThing>(params("a"), NoBody)
        .await
        .unwrap();
    assert_eq!(output.things, vec!["ok"]);
}

#[tokio::test]
async fn rate_limited_procedures_are_retried_too() {
    // A 429 means the server did not run the request, so even a procedure may be sent again.
    let server = MockServer::start().await;
    Mock::given(path(CREATE_THING))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path(CREATE_THING))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "42"})))
        .with_priority(2)
        .mount(&server)
        .await;
    let (output, _) = client(&server)
        .await
        .call::<CreateThing>(NoParams, CreateThingInput { text: "x".into() })
        .await
        .unwrap();
    assert_eq!(output.id, "42");
    assert_eq!(hits(&server, "com.example.createThing").await, 2);
}

#[tokio::test]
async fn proxy_and_labeler_headers_per_client_and_per_call() {
    let server = MockServer::start().await;
    Mock::given(path(GET_THING))
        .and(header("atproto-proxy", "did:web:api.bsky.chat#bsky_chat"))
        .and(exact_header(
            "atproto-accept-labelers",
            "did:plc:labeler1, did:plc:labeler2;redact",
        ))
        .respond_with(ok_things(&["client-level"]))
        .mount(&server)
        .await;
    Mock::given(path(GET_THING))
        .and(header(
            "atproto-proxy",
            "did:web:other.example#atproto_labeler",
        ))
        .and(exact_header("atproto-accept-labelers", "did:plc:labeler3"))
        .respond_with(ok_things(&["call-level"]))
        .mount(&server)
        .await;
    Mock::given(path(GET_THING))
        .respond_with(ok_things(&["plain"]))
        .with_priority(10)
        .mount(&server)
        .await;

    let plain = client(&server).await;
    let chat = Did::new("did:web:api.bsky.chat").unwrap();
    let labeler1 = Did::new("did:plc:labeler1").unwrap();
    let labeler2 = Did::new("did:plc:labeler2").unwrap();
    let proxied = plain
        .with_proxy(&chat, "bsky_chat")
        .with_labelers([Labeler::new(labeler1), Labeler::new(labeler2).redact()]);

    let (output, returned) = proxied.call::<GetThing>(params("a"), NoBody).await.unwrap();
    assert_eq!(output.things, vec!["client-level"]);
    // The returned client keeps the handle's settings.
    let (output, _) = returned
        .call::<GetThing>(params("a"), NoBody)
        .await
        .unwrap();
    assert_eq!(output.things, vec!["client-level"]);

    // The original handle is unchanged.
    let (output, _) = plain.call::<GetThing>(params("a"), NoBody).await.unwrap();
    assert_eq!(output.things, vec!["plain"]);

    // Per-call options override the handle's.
    let other = Did::new("did:web:other.example").unwrap();
    let options = CallOptions::new()
        .proxy(&other, "#atproto_labeler")
        .labelers([Did::new("did:plc:labeler3").unwrap()]);
    let (output, _) = proxied
        .call_with::<GetThing>(params("a"), NoBody, &options)
        .await
        .unwrap();
    assert_eq!(output.things, vec!["call-level"]);

    // Headers also apply to the untyped calls.
    let (value, _) = proxied
        .get("com.example.getThing", json!({"actor": "a"}))
        .await
        .unwrap();
    assert_eq!(value, json!({"things": ["client-level"]}));
}

#[tokio::test]
async fn untyped_get_and_post() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/xrpc/com.example.anything"))
        .and(query_param("actor", "alice.test"))
        .and(query_param("limit", "3"))
        .and(query_param("flag", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"echo": "get"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/xrpc/com.example.doIt"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({"text": "hello", "n": 1})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"done": true})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/xrpc/com.example.noOutput"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/xrpc/com.example.fails"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": "InvalidRequest", "message": "nope"})),
        )
        .mount(&server)
        .await;
    let client = client(&server).await;

    let (value, client) = client
        .get(
            "com.example.anything",
            json!({"actor": "alice.test", "limit": 3, "flag": true, "tags": ["a", "b"], "none": null}),
        )
        .await
        .unwrap();
    assert_eq!(value, json!({"echo": "get"}));
    let requests = server.received_requests().await.unwrap();
    let query = requests[0].url.query().unwrap_or_default().to_owned();
    assert!(query.contains("tags=a&tags=b"), "{query}");
    assert!(!query.contains("none"), "{query}");

    let (value, client) = client
        .post("com.example.doIt", json!({"text": "hello", "n": 1}))
        .await
        .unwrap();
    assert_eq!(value, json!({"done": true}));

    let (value, client) = client
        .post("com.example.noOutput", serde_json::Value::Null)
        .await
        .unwrap();
    assert_eq!(value, serde_json::Value::Null);

    let error = client
        .post("com.example.fails", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("InvalidRequest"));
    assert_eq!(
        error.xrpc().and_then(|e| e.0.message.as_deref()),
        Some("nope")
    );

    let before = server.received_requests().await.unwrap().len();
    let error = client.get("not an nsid", json!({})).await.unwrap_err();
    assert!(matches!(error, Error::InvalidRequest(_)), "{error:?}");
    let error = client
        .get("com.example.anything", json!({"nested": {"a": 1}}))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidRequest(_)), "{error:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), before);
}

#[tokio::test]
async fn raw_bodies_go_through_call() {
    let server = MockServer::start().await;
    let png = vec![0x89, b'P', b'N', b'G', 0, 1, 2, 3];
    Mock::given(method("POST"))
        .and(path("/xrpc/com.example.uploadThing"))
        .and(header("content-type", "image/png"))
        .respond_with(|request: &Request| {
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": format!("{} bytes", request.body.len()) }))
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/xrpc/com.example.getBlob"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(png.clone(), "image/png"))
        .mount(&server)
        .await;
    let client = client(&server).await;

    let (output, client) = client
        .call::<UploadThing>(NoParams, RawBody::new(png.clone(), "image/png"))
        .await
        .unwrap();
    assert_eq!(output.id, "8 bytes");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests[0].body, png);

    let (blob, client) = client.call::<GetBlob>(NoParams, NoBody).await.unwrap();
    assert_eq!(blob.bytes(), Some(&png[..]));
    assert_eq!(blob.content_type(), "image/png");

    // A file is streamed, with its length.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.bin");
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &content).unwrap();
    let (output, client) = client
        .call::<UploadThing>(NoParams, RawBody::from_file(&file, "image/png"))
        .await
        .unwrap();
    assert_eq!(output.id, "200000 bytes");
    let requests = server.received_requests().await.unwrap();
    let upload = requests.last().unwrap();
    assert_eq!(upload.body, content);
    assert_eq!(
        upload
            .headers
            .get("content-length")
            .and_then(|v| v.to_str().ok()),
        Some("200000")
    );

    // A file that cannot be read fails before anything is sent.
    let before = server.received_requests().await.unwrap().len();
    let error = client
        .call::<UploadThing>(
            NoParams,
            RawBody::from_file(dir.path().join("missing.bin"), "image/png"),
        )
        .await
        .unwrap_err();
    assert!(matches!(&error, Error::Encode(_)), "{error:?}");
    assert!(error.to_string().contains("missing.bin"), "{error}");
    assert_eq!(server.received_requests().await.unwrap().len(), before);
}

#[tokio::test]
async fn pagination_follows_cursors_across_three_pages() {
    let server = MockServer::start().await;
    Mock::given(path(GET_THING))
        .and(query_param("cursor", "c1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"cursor": "c2", "things": ["d", "e", "f"]})),
        )
        .mount(&server)
        .await;
    Mock::given(path(GET_THING))
        .and(query_param("cursor", "c2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"things": ["g", "h"]})))
        .mount(&server)
        .await;
    Mock::given(path(GET_THING))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"cursor": "c1", "things": ["a", "b", "c"]})),
        )
        .with_priority(10)
        .mount(&server)
        .await;
    let client = client(&server).await;

    let items: Vec<String> = client
        .paginate::<GetThing>(params("alice"))
        .map(|item| item.unwrap())
        .collect()
        .await;
    assert_eq!(items, ["a", "b", "c", "d", "e", "f", "g", "h"]);
    assert_eq!(hits(&server, "com.example.getThing").await, 3);

    let pages: Vec<_> = client.pages::<GetThing>(params("alice")).collect().await;
    assert_eq!(pages.len(), 3);
    assert!(pages.iter().all(Result::is_ok));
}

#[tokio::test]
async fn pagination_stops_on_a_repeated_cursor_and_after_an_error() {
    let server = MockServer::start().await;
    // The "loop" actor: every page says cursor "same".
    Mock::given(path(GET_THING))
        .and(query_param("actor", "loop"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"cursor": "same", "things": ["x"]})),
        )
        .mount(&server)
        .await;
    // The "broken" actor: page 1 fine, page 2 fails.
    Mock::given(path(GET_THING))
        .and(query_param("actor", "broken"))
        .and(query_param("cursor", "next"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": "ThingNotFound"})))
        .mount(&server)
        .await;
    Mock::given(path(GET_THING))
        .and(query_param("actor", "broken"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"cursor": "next", "things": ["y"]})),
        )
        .with_priority(10)
        .mount(&server)
        .await;
    let client = client(&server).await;

    let items: Vec<_> = client.paginate::<GetThing>(params("loop")).collect().await;
    assert_eq!(
        items.len(),
        2,
        "the first page, then the repeated cursor's page, then stop"
    );
    assert_eq!(hits(&server, "com.example.getThing").await, 2);

    let items: Vec<_> = client
        .paginate::<GetThing>(params("broken"))
        .collect()
        .await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_ref().unwrap(), "y");
    assert!(
        matches!(
            &items[1],
            Err(Error::Xrpc {
                error: GetThingError::ThingNotFound(_),
                ..
            })
        ),
        "{:?}",
        items[1]
    );
}

#[test]
fn call_futures_and_streams_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let client = Client::anonymous("https://example.com").unwrap();
    assert_send(&client.call::<GetThing>(params("a"), NoBody));
    assert_send(&client.call::<CreateThing>(NoParams, CreateThingInput { text: "x".into() }));
    assert_send(&client.get("com.example.getThing", json!({})));
    assert_send(&client.post("com.example.doIt", json!({})));
    assert_send(&client.refresh());
    assert_send(&client.paginate::<GetThing>(params("a")));
    fn assert_sync<T: Send + Sync + Clone>(_: &T) {}
    assert_sync(&client);
}

#[test]
fn invalid_service_urls_are_build_errors() {
    assert!(Client::anonymous("not a url").is_err());
    assert!(Client::anonymous("ftp://example.com").is_err());
    let error = Client::anonymous("mailto:someone@example.com").unwrap_err();
    assert!(error.to_string().contains("mailto"), "{error}");
}
