//! Hostile answers from a local server standing in for a PLC directory, a did:web host and a
//! handle's `/.well-known/atproto-did`: each is a clear error naming what is wrong, with no
//! panic and bounded memory.

mod identity_support;

use std::time::Duration;

use atlex::identity::{
    DocumentError, HandleMethod, HandleStatus, IdentityError, IdentityResolver, MethodKind,
};
use atlex::net::fetch::FetchErrorKind;
use atlex::types::{AtIdentifier, Did, Handle};
use identity_support::{HttpServer, Reply, SeenRequest, document};

const ALICE: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
const OTHER: &str = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb";
const NO_PDS: &str = "did:plc:cccccccccccccccccccccccc";
const BAD_PDS: &str = "did:plc:dddddddddddddddddddddddd";
const HTTP_PDS: &str = "did:plc:eeeeeeeeeeeeeeeeeeeeeeee";
const HUGE: &str = "did:plc:ffffffffffffffffffffffff";
const REDIRECT: &str = "did:plc:gggggggggggggggggggggggg";
const SLOW: &str = "did:plc:hhhhhhhhhhhhhhhhhhhhhhhh";
const NOT_JSON: &str = "did:plc:iiiiiiiiiiiiiiiiiiiiiiii";

async fn route(request: SeenRequest) -> Reply {
    let path = request.path.as_str();
    let host = request.host.unwrap_or_default();
    if path == "/.well-known/atproto-did" {
        return match host.as_str() {
            "alice.test" => Reply::text(format!("{ALICE}\n")),
            "huge.test" => Reply::text(vec![b'x'; 64 * 1024]),
            "redirect.test" => Reply::new(302, "").header("location", "http://127.0.0.1:1/"),
            "garbage.test" => Reply::text("<html>hello</html>"),
            "slow.test" => {
                let mut reply = Reply::text("");
                reply.content_length = false;
                reply.chunks = (0..20)
                    .map(|_| (Duration::from_millis(200), b"d".to_vec()))
                    .collect();
                reply
            }
            _ => Reply::new(404, ""),
        };
    }
    let pds = "https://pds.example.com";
    match path.trim_start_matches('/') {
        ALICE => Reply::new(200, document(ALICE, "alice.test", pds)),
        // Served at Alice's path by the test below, for another DID.
        OTHER => Reply::new(200, document(ALICE, "alice.test", pds)),
        NO_PDS => Reply::new(
            200,
            serde_json::json!({"id": NO_PDS, "alsoKnownAs": ["at://nopds.test"]}).to_string(),
        ),
        BAD_PDS => Reply::new(200, document(BAD_PDS, "bad.test", "javascript:alert(1)")),
        HTTP_PDS => Reply::new(
            200,
            document(HTTP_PDS, "http.test", "http://pds.example.com"),
        ),
        HUGE => {
            let mut doc: serde_json::Value =
                serde_json::from_str(&document(HUGE, "huge.test", pds)).unwrap();
            doc["padding"] = serde_json::Value::String("x".repeat(200 * 1024));
            Reply::new(200, doc.to_string())
        }
        REDIRECT => Reply::new(301, "").header("location", &format!("/{ALICE}")),
        SLOW => {
            let mut reply = Reply::new(200, "");
            reply.content_length = false;
            reply.chunks = (0..20)
                .map(|_| (Duration::from_millis(200), b" ".to_vec()))
                .collect();
            reply
        }
        NOT_JSON => Reply::new(200, "{\"id\": \"did:plc:iiii"),
        ".well-known/did.json" => Reply::new(
            200,
            document(
                &format!("did:web:{}", host.replace(':', "%3A")),
                "web.test",
                pds,
            ),
        ),
        _ => Reply::new(404, ""),
    }
}

async fn setup(allow_http: bool) -> (HttpServer, IdentityResolver) {
    let server = HttpServer::start(route).await;
    let base = reqwest::Url::parse(&server.url()).unwrap();
    let resolver = IdentityResolver::builder()
        .plc_url(server.url())
        .handle_methods([HandleMethod::WellKnown])
        .well_known_base(base)
        .allow_http(allow_http)
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    (server, resolver)
}

fn did(text: &str) -> Did {
    Did::new(text).unwrap()
}

#[tokio::test]
async fn a_good_identity_resolves_both_ways() {
    let (_server, resolver) = setup(false).await;
    let from_handle = resolver
        .resolve(&AtIdentifier::new("alice.test").unwrap())
        .await
        .unwrap();
    assert_eq!(from_handle.did.as_str(), ALICE);
    assert_eq!(
        from_handle.handle,
        HandleStatus::Verified(Handle::new("alice.test").unwrap())
    );
    assert_eq!(from_handle.pds.as_str(), "https://pds.example.com/");
    assert!(from_handle.signing_key.is_some());
    let from_did = resolver
        .resolve(&AtIdentifier::new(ALICE).unwrap())
        .await
        .unwrap();
    assert_eq!(from_did.handle, from_handle.handle);
}

#[tokio::test]
async fn a_document_for_another_did_is_refused() {
    let (_server, resolver) = setup(false).await;
    let error = resolver.resolve_did(&did(OTHER)).await.unwrap_err();
    assert!(
        matches!(error, IdentityError::WrongDocument { .. }),
        "{error}"
    );
    let text = error.to_string();
    assert!(text.contains(OTHER) && text.contains(ALICE), "{text}");
}

#[tokio::test]
async fn oversize_documents_and_answers_are_refused() {
    let (_server, resolver) = setup(false).await;
    let error = resolver.resolve_did(&did(HUGE)).await.unwrap_err();
    match &error {
        IdentityError::Fetch { error, .. } => {
            assert!(
                matches!(error.kind(), FetchErrorKind::TooLarge { limit: 65536 }),
                "{error}"
            )
        }
        other => panic!("{other}"),
    }
    let trace = resolver
        .trace_handle(&Handle::new("huge.test").unwrap())
        .await;
    assert!(trace.result.is_err());
    let reason = format!("{:?}", trace.attempts[0].outcome);
    assert!(reason.contains("limit of 4096 bytes"), "{reason}");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let (_server, resolver) = setup(false).await;
    let error = resolver.resolve_did(&did(REDIRECT)).await.unwrap_err();
    match &error {
        IdentityError::Fetch { error, .. } => {
            assert!(
                matches!(error.kind(), FetchErrorKind::Redirect(_)),
                "{error}"
            )
        }
        other => panic!("{other}"),
    }
    let trace = resolver
        .trace_handle(&Handle::new("redirect.test").unwrap())
        .await;
    let reason = trace.result.unwrap_err().to_string();
    assert!(reason.contains("redirect"), "{reason}");
}

#[tokio::test]
async fn slow_bodies_time_out() {
    let (_server, resolver) = setup(false).await;
    let error = resolver.resolve_did(&did(SLOW)).await.unwrap_err();
    match &error {
        IdentityError::Fetch { error, .. } => {
            assert!(matches!(error.kind(), FetchErrorKind::Timeout), "{error}")
        }
        other => panic!("{other}"),
    }
    assert!(error.is_transient());
    let trace = resolver
        .trace_handle(&Handle::new("slow.test").unwrap())
        .await;
    assert!(
        matches!(
            &trace.attempts[0].outcome,
            Err(IdentityError::MethodFailed {
                method: MethodKind::WellKnown,
                transient: true,
                ..
            })
        ),
        "{:?}",
        trace.attempts[0].outcome
    );
}

#[tokio::test]
async fn documents_without_a_usable_pds_are_errors() {
    let (_server, resolver) = setup(false).await;
    let error = resolver
        .resolve(&AtIdentifier::new(NO_PDS).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::Document(DocumentError::NoPds { .. })),
        "{error}"
    );
    let error = resolver
        .resolve(&AtIdentifier::new(BAD_PDS).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            IdentityError::Document(DocumentError::BadPdsEndpoint { .. })
        ),
        "{error}"
    );
    let error = resolver.resolve_did(&did(NOT_JSON)).await.unwrap_err();
    assert!(
        matches!(error, IdentityError::BadDocument { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn an_http_pds_needs_allow_http() {
    let (_server, resolver) = setup(false).await;
    let error = resolver
        .resolve(&AtIdentifier::new(HTTP_PDS).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, IdentityError::PdsRefused { .. }), "{error}");
    assert!(error.to_string().contains("allow_http"), "{error}");
    let (_server, resolver) = setup(true).await;
    let identity = resolver
        .resolve(&AtIdentifier::new(HTTP_PDS).unwrap())
        .await
        .unwrap();
    assert_eq!(identity.pds.as_str(), "http://pds.example.com/");
    // http.test does not resolve back, so the handle is not verified.
    assert_eq!(identity.handle, HandleStatus::Invalid);
}

#[tokio::test]
async fn did_web_rules() {
    let (server, resolver) = setup(false).await;
    for (bad, needle) in [
        ("did:web:example.com:user:alice", "path"),
        ("did:web:example.com%3A8443", "localhost"),
    ] {
        let error = resolver.resolve_did(&did(bad)).await.unwrap_err();
        assert!(
            matches!(error, IdentityError::InvalidDidSyntax { .. }),
            "{bad}: {error}"
        );
        assert!(error.to_string().contains(needle), "{error}");
    }
    // localhost with a port is fetched over http from /.well-known/did.json.
    let web = format!("did:web:localhost%3A{}", server.addr.port());
    let document = resolver.resolve_did(&did(&web)).await.unwrap();
    assert_eq!(document.id.as_str(), web);
    let error = resolver
        .resolve_did(&did(
            "did:key:zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc",
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::UnsupportedMethod { .. }),
        "{error}"
    );
    let error = resolver
        .resolve_did(&did("did:plc:tooshort"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::InvalidDidSyntax { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn well_known_garbage_is_an_invalid_did() {
    let (_server, resolver) = setup(false).await;
    let error = resolver
        .resolve_handle(&Handle::new("garbage.test").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            IdentityError::InvalidDid {
                method: MethodKind::WellKnown,
                ..
            }
        ),
        "{error}"
    );
    assert!(
        !error.to_string().contains("<html>"),
        "no body in errors: {error}"
    );
    let error = resolver
        .resolve_handle(&Handle::new("nobody.test").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::HandleNotFound { .. }),
        "{error}"
    );
}
