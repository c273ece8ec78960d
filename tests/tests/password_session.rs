//! Password sessions against a mock PDS (wiremock): login, restore, logout, proactive and
//! reactive refresh, single-flight under concurrency, failure handling, persistence, and
//! redaction of secrets.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use atlex::auth::{AuthError, PasswordSession, SessionId, SessionKey, SessionStore};
use atlex::types::Did;
use atlex::xrpc::{Client, Error, NoBody};
use serde_json::{Value, json};
use support::*;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const DID: &str = "did:plc:alice";
const KEY: &str = "password:did:plc:alice";
const PASSWORD: &str = "hunter2-app-password";
const CREATE: &str = "/xrpc/com.atproto.server.createSession";
const REFRESH: &str = "/xrpc/com.atproto.server.refreshSession";
const DELETE: &str = "/xrpc/com.atproto.server.deleteSession";
const GET_THING: &str = "/xrpc/com.example.getThing";
const GET_THING_NSID: &str = "com.example.getThing";
const REFRESH_NSID: &str = "com.atproto.server.refreshSession";

fn did() -> Did {
    Did::new(DID).unwrap()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A `createSession`/`refreshSession` answer whose DID document points at `pds`.
fn session_body(access: &str, refresh: &str, pds: &str) -> Value {
    json!({
        "accessJwt": access,
        "refreshJwt": refresh,
        "handle": "alice.test",
        "did": DID,
        "email": "alice@example.com",
        "active": true,
        "didDoc": {
            "@context": ["https://www.w3.org/ns/did/v1"],
            "id": DID,
            "alsoKnownAs": ["at://alice.test"],
            "service": [{
                "id": "#atproto_pds",
                "type": "AtprotoPersonalDataServer",
                "serviceEndpoint": pds
            }]
        }
    })
}

fn stored_session(access: &str, refresh: &str, pds: &str) -> Value {
    json!({
        "version": 1,
        "did": DID,
        "handle": "alice.test",
        "accessJwt": access,
        "refreshJwt": refresh,
        "serviceUrl": pds,
        "pdsUrl": pds,
    })
}

fn things(label: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "things": [label] }))
}

fn expired_token_400() -> ResponseTemplate {
    ResponseTemplate::new(400)
        .set_body_json(json!({"error": "ExpiredToken", "message": "Token has expired"}))
}

/// Answers `getThing` with `things([label])` for requests carrying `token`.
async fn accept(server: &MockServer, token: &str, label: &str) {
    Mock::given(path(GET_THING))
        .and(header("authorization", bearer(token).as_str()))
        .respond_with(things(label))
        .mount(server)
        .await;
}

/// Answers `refreshSession` with the Bearer `old` refresh token with new tokens.
async fn refreshes(server: &MockServer, old: &str, access: &str, refresh: &str) {
    Mock::given(method("POST"))
        .and(path(REFRESH))
        .and(header("authorization", bearer(old).as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(session_body(
            access,
            refresh,
            &server.uri(),
        )))
        .mount(server)
        .await;
}

/// A client restored from a store seeded with the given tokens.
async fn restored(
    server: &MockServer,
    store: &Arc<TestStore>,
    access: &str,
    refresh: &str,
) -> Client {
    store.put(KEY, stored_session(access, refresh, &server.uri()));
    let base = Client::builder(server.uri())
        .retry(fast_retry(2))
        .build()
        .unwrap();
    PasswordSession::restore_with(&base, store.clone(), &did())
        .await
        .unwrap()
}

fn stored_refresh(store: &TestStore) -> Option<String> {
    store
        .json(KEY)
        .and_then(|v| v["refreshJwt"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn login_restore_and_logout() {
    let server = MockServer::start().await;
    let (a1, r1) = (jwt("access-1", 7200), jwt("refresh-1", 86400));
    Mock::given(method("POST"))
        .and(path(CREATE))
        .and(body_json(
            json!({"identifier": "alice.test", "password": PASSWORD}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(session_body(
            &a1,
            &r1,
            &server.uri(),
        )))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(DELETE))
        .and(header("authorization", bearer(&r1).as_str()))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    accept(&server, &a1, "ok").await;
    let store = TestStore::new();

    let client = PasswordSession::login(&server.uri(), "alice.test", PASSWORD, store.clone())
        .await
        .unwrap();
    assert_eq!(client.did(), Some(did()));
    assert_eq!(
        client.service_url().as_str().trim_end_matches('/'),
        server.uri()
    );
    let stored = store
        .json(KEY)
        .expect("the session is stored under password:<did>");
    assert_eq!(stored["accessJwt"], json!(a1));
    assert_eq!(stored["refreshJwt"], json!(r1));

    let (output, client) = client.call::<GetThing>(params("a"), NoBody).await.unwrap();
    assert_eq!(output.things, vec!["ok"]);

    // Restoring (another run of the program) gives a working client.
    let restored = PasswordSession::restore(store.clone() as Arc<dyn SessionStore>, &did())
        .await
        .unwrap();
    assert_eq!(restored.did(), Some(did()));
    let (output, _) = restored
        .call::<GetThing>(params("a"), NoBody)
        .await
        .unwrap();
    assert_eq!(output.things, vec!["ok"]);

    // A session that was never created is a clear NoSession error.
    let stranger = Did::new("did:plc:stranger").unwrap();
    let error = PasswordSession::restore(store.clone(), &stranger)
        .await
        .unwrap_err();
    match &error {
        Error::Auth(auth @ AuthError::NoSession { .. }) => assert!(auth.requires_login()),
        other => panic!("expected NoSession, got {other:?}"),
    }
    assert!(error.to_string().contains("did:plc:stranger"), "{error}");

    // Logging out revokes the session at the server and removes it from the store, for every
    // handle of the session.
    let handle = client.clone();
    client.logout().await.unwrap();
    assert_eq!(
        hits_with_token(&server, "com.atproto.server.deleteSession", &r1).await,
        1
    );
    assert!(store.raw(KEY).is_none());
    let error = handle
        .call::<GetThing>(params("a"), NoBody)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Auth(AuthError::NoSession { .. })),
        "{error:?}"
    );
    let error = PasswordSession::restore(store.clone(), &did())
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Auth(AuthError::NoSession { .. })),
        "{error:?}"
    );
}

/// One account, two devices: each logs in under its own session id, is restored and logged
/// out on its own; the account's sessions are listed; restoring by DID alone picks the only
/// session left, and refuses to guess between several.
#[tokio::test]
async fn several_sessions_per_account_one_per_device() {
    let server = MockServer::start().await;
    let (a1, r1) = (jwt("access-phone", 7200), jwt("refresh-phone", 86400));
    let (a2, r2) = (jwt("access-laptop", 7200), jwt("refresh-laptop", 86400));
    for (access, refresh) in [(&a1, &r1), (&a2, &r2)] {
        Mock::given(method("POST"))
            .and(path(CREATE))
            .respond_with(ResponseTemplate::new(200).set_body_json(session_body(
                access,
                refresh,
                &server.uri(),
            )))
            .up_to_n_times(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path(DELETE))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    accept(&server, &a1, "phone").await;
    accept(&server, &a2, "laptop").await;
    let store = TestStore::new();
    let dyn_store = store.clone() as Arc<dyn SessionStore>;
    let base = Client::builder(server.uri())
        .retry(fast_retry(2))
        .build()
        .unwrap();
    let phone = SessionId::new("phone").unwrap();
    let laptop = SessionId::generate().unwrap();

    for id in [&phone, &laptop] {
        let client = PasswordSession::login_with_id(
            &base,
            "alice.test",
            PASSWORD,
            None,
            id,
            dyn_store.clone(),
        )
        .await
        .unwrap();
        assert_eq!(client.did(), Some(did()));
    }
    assert_eq!(
        store.json(&format!("{KEY}#phone")).unwrap()["refreshJwt"],
        json!(r1)
    );
    assert_eq!(
        store.json(&format!("{KEY}#{laptop}")).unwrap()["refreshJwt"],
        json!(r2)
    );
    assert!(store.raw(KEY).is_none(), "no default session was logged in");

    // The account's sessions, and none of another account whose DID starts with this one.
    store.put(
        "password:did:plc:alicex#phone",
        stored_session("x", "y", &server.uri()),
    );
    let listed = PasswordSession::sessions(&*store, &did()).await.unwrap();
    let mut expected = vec![
        PasswordSession::session_key(&did(), Some(&phone)),
        PasswordSession::session_key(&did(), Some(&laptop)),
    ];
    expected.sort();
    assert_eq!(listed, expected);
    assert!(listed.iter().all(|key| key.did() == &did()));

    // Each device gets its own tokens back.
    for (id, label) in [(&phone, "phone"), (&laptop, "laptop")] {
        let client = PasswordSession::restore_id_with(&base, dyn_store.clone(), &did(), id)
            .await
            .unwrap();
        let (output, _) = client.call::<GetThing>(params("a"), NoBody).await.unwrap();
        assert_eq!(output.things, vec![label]);
    }

    // By DID alone: two sessions and no default one, so no guess.
    let error = PasswordSession::restore(dyn_store.clone(), &did())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Auth(AuthError::NoSession { .. })),
        "{error:?}"
    );
    assert!(error.to_string().contains("2 sessions"), "{error}");

    // Logging out the phone ends its session only.
    let client = PasswordSession::restore_id_with(&base, dyn_store.clone(), &did(), &phone)
        .await
        .unwrap();
    client.logout().await.unwrap();
    assert_eq!(
        hits_with_token(&server, "com.atproto.server.deleteSession", &r1).await,
        1
    );
    assert_eq!(
        hits_with_token(&server, "com.atproto.server.deleteSession", &r2).await,
        0
    );
    assert!(store.raw(&format!("{KEY}#phone")).is_none());
    assert!(store.raw(&format!("{KEY}#{laptop}")).is_some());
    let error = PasswordSession::restore_id(dyn_store.clone(), &did(), &phone)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Auth(AuthError::NoSession { .. })),
        "{error:?}"
    );
    assert!(error.to_string().contains("phone"), "{error}");

    // One session left: restoring by DID alone finds it.
    let client = PasswordSession::restore_with(&base, dyn_store.clone(), &did())
        .await
        .unwrap();
    let (output, _) = client.call::<GetThing>(params("a"), NoBody).await.unwrap();
    assert_eq!(output.things, vec!["laptop"]);
    assert_eq!(
        SessionKey::list(&*store, PasswordSession::KIND, &did())
            .await
            .unwrap()
            .len(),
        1
    );

    // A default session, once there, is the one restored by DID alone.
    store.put(KEY, stored_session(&a1, &r1, &server.uri()));
    let client = PasswordSession::restore_with(&base, dyn_store.clone(), &did())
        .await
        .unwrap();
    let (output, _) = client.call::<GetThing>(params("a"), NoBody).await.unwrap();
    assert_eq!(output.things, vec!["phone"]);
}

#[tokio::test]
async fn login_sends_calls_to_the_pds_of_the_did_document() {
    let entryway = MockServer::start().await;
    let pds = MockServer::start().await;
    let (a1, r1) = (jwt("access-1", 7200), jwt("refresh-1", 86400));
    Mock::given(path(CREATE))
        .respond_with(ResponseTemplate::new(200).set_body_json(session_body(&a1, &r1, &pds.uri())))
        .mount(&entryway)
        .await;
    accept(&pds, &a1, "from the pds").await;
    let store = TestStore::new();

    let client = PasswordSession::login(&entryway.uri(), "alice.test", PASSWORD, store.clone())
        .await
        .unwrap();
    let (output, _) = client.call::<GetThing>(params("a"), NoBody).await.unwrap();
    assert_eq!(output.things, vec!["from the pds"]);
    assert_eq!(hits(&entryway, GET_THING_NSID).await, 0);
    assert_eq!(
        store.json(KEY).unwrap()["pdsUrl"]
            .as_str()
            .map(|u| u.trim_end_matches('/').to_owned()),
        Some(pds.uri())
    );

    // Restored sessions go to the PDS too.
    let restored = PasswordSession::restore(store.clone(), &did())
        .await
        .unwrap();
    let (output, _) = restored
        .call::<GetThing>(params("a"), NoBody)
        .await
        .unwrap();
    assert_eq!(output.things, vec!["from the pds"]);
}

#[tokio::test]
async fn a_failed_login_stores_nothing_and_never_shows_the_password() {
    let server = MockServer::start().await;
    Mock::given(path(CREATE))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": "AuthenticationRequired", "message": "Invalid identifier or password"
        })))
        .mount(&server)
        .await;
    let store = TestStore::new();
    let error = PasswordSession::login(&server.uri(), "alice.test", PASSWORD, store.clone())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("AuthenticationRequired"));
    assert_eq!(error.status(), Some(401));
    assert!(store.raw(KEY).is_none());
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(PASSWORD), "{shown}");
}

#[tokio::test]
async fn expired_token_400_refreshes_once_and_retries() {
    let server = MockServer::start().await;
    let (a1, r1) = (jwt("access-1", 7200), jwt("refresh-1", 86400));
    let (a2, r2) = (jwt("access-2", 7200), jwt("refresh-2", 86400));
    Mock::given(path(GET_THING))
        .and(header("authorization", bearer(&a1).as_str()))
        .respond_with(expired_token_400())
        .mount(&server)
        .await;
    accept(&server, &a2, "fresh").await;
    refreshes(&server, &r1, &a2, &r2).await;
    let store = TestStore::new();
    // The local expiry says the token is fine; the server says otherwise, and wins.
    let client = restored(&server, &store, &a1, &r1).await;

    let (output, client) = client.call::<GetThing>(params("a"), NoBody).await.unwrap();
    assert_eq!(output.things, vec!["fresh"]);
    assert_eq!(hits(&server, REFRESH_NSID).await, 1);
    assert_eq!(hits_with_token(&server, GET_THING_NSID, &a1).await, 1);
    assert_eq!(hits_with_token(&server, GET_THING_NSID, &a2).await, 1);
    // Persisted before the call returned.
    assert_eq!(stored_refresh(&store), Some(r2.clone()));
    assert_eq!(store.json(KEY).unwrap()["accessJwt"], json!(a2));

    // The returned client (and every other handle) uses the new token directly.
    let (_, _) = client.call::<GetThing>(params("a"), NoBody).await.unwrap();
    assert_eq!(hits(&server, REFRESH_NSID).await, 1);
    assert_eq!(hits_with_token(&server, GET_THING_NSID, &a2).await, 2);
}

#[tokio::test]
async fn a_streamed_upload_is_sent_again_in_full_after_a_refresh() {
    let server = MockServer::start().await;
    let (a1, r1) = (jwt("access-1", 7200), jwt("refresh-1", 86400));
    let (a2, r2) = (jwt("access-2", 7200), jwt("refresh-2", 86400));
    Mock::given(path("/xrpc/com.example.uploadThing"))
        .and(header("authorization", bearer(&a1).as_str()))
        .respond_with(expired_token_400())
        .mount(&server)
        .await;
    Mock::given(path("/xrpc/com.example.uploadThing"))
        .and(header("authorization", bearer(&a2).as_str()))
        .respond_with(|request: &wiremock::Request| {
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": format!("{} bytes", request.body.len()) }))
        })
        .mount(&server)
        .await;
    refreshes(&server, &r1, &a2, &r2).await;
    let store = TestStore::new();
    let client = restored(&server, &store, &a1, &r1).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("video.mp4");
    std::fs::write(&file, vec![7u8; 50_000]).unwrap();

    let (output, _) = client
        .call::<UploadThing>(
            atlex::xrpc::NoParams,
            atlex::xrpc::RawBody::from_file(&file, "video/mp4"),
        )
        .await
        .unwrap();
    assert_eq!(output.id, "50000 bytes");
    assert_eq!(hits(&server, REFRESH_NSID).await, 1);
    let requests = server.received_requests().await.unwrap();
    let uploads: Vec<_> = requests
        .iter()
        .filter(|r| r.url.path() == "/xrpc/com.example.uploadThing")
        .collect();
    assert_eq!(uploads.len(), 2);
    assert!(uploads.iter().all(|r| r.body.len() == 50_000));
}

#[tokio::test]
async fn invalid_token_401_with_www_authenticate_refreshes_once() {
    let server = MockServer::start().await;
    let (a1, r1) = (jwt("access-1", 7200), jwt("refresh-1", 86400));
    let (a2, r2) = (jwt("access-2", 7200), jwt("refresh-2", 86400));
    Mock::given(path(GET_THING))
        .and(header("authorization", bearer(&a1).as_str()))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header(
                    "www-authenticate",
                    r#"Bearer error="invalid_token", error_description="revoked""#,
                )
                .set_body_json(json!({"error": "AuthenticationRequired"})),
        )
        .mount(&server)
        .await;
    accept(&server, &a2, "fresh").await;
    refreshes(&server, &r1, &a2, &r2).await;
    let store = TestStore::new();
    let client = restored(&server, &store, &a1, &r1).await;

    let (output, _) = client.call::<GetThing>(params("a"), NoBody).await.unwrap();
    assert_eq!(output.things, vec!["fresh"]);
    assert_eq!(hits(&server, REFRESH_NSID).await, 1);
}

#[tokio::test]
async fn a_token_rejected_after_refresh_is_not_refreshed_again() {
    let server = MockServer::start().await;
    let (a1, r1) = (jwt("access-1", 7200), jwt("refresh-1", 86400));
    let (a2, r2) = (jwt("access-2", 7200), jwt("refresh-2", 86400));
    Mock::given(path(GET_THING))
        .respond_with(expired_token_400())
        .mount(&server)
        .await;
    refreshes(&server, &r1, &a2, &r2).await;
    let store = TestStore::new();
    let client = restored(&server, &store, &a1, &r1).await;

    let error = client
        .call::<GetThing>(params("a"), NoBody)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("ExpiredToken"));
    assert_eq!(
        hits(&server, REFRESH_NSID).await,
        1,
        "refresh once, never loop"
    );
    assert_eq!(hits(&server, GET_THING_NSID).await, 2, "retry once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_with_an_expired_token_share_one_refresh() {
    let server = MockServer::start().await;
    // Expired ten seconds ago: every call wants a proactive refresh.
    let (a1, r1) = (jwt("access-1", -10), jwt("refresh-1", 86400));
    let (a2, r2) = (jwt("access-2", 7200), jwt("refresh-2", 86400));
    refreshes(&server, &r1, &a2, &r2).await;
    accept(&server, &a2, "fresh").await;
    let store = TestStore::new();
    let client = restored(&server, &store, &a1, &r1).await;

    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.call::<GetThing>(params("a"), NoBody).await })
        })
        .collect();
    for task in tasks {
        let (output, _) = task.await.unwrap().unwrap();
        assert_eq!(output.things, vec!["fresh"]);
    }
    assert_eq!(hits(&server, REFRESH_NSID).await, 1);
    assert_eq!(hits_with_token(&server, GET_THING_NSID, &a1).await, 0);
    assert_eq!(hits_with_token(&server, GET_THING_NSID, &a2).await, 100);
    assert_eq!(stored_refresh(&store), Some(r2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rejections_share_one_refresh() {
    let server = MockServer::start().await;
    // Locally valid, but the server has revoked it: the reactive path.
    let (a1, r1) = (jwt("access-1", 7200), jwt("refresh-1", 86400));
    let (a2, r2) = (jwt("access-2", 7200), jwt("refresh-2", 86400));
    Mock::given(path(GET_THING))
        .and(header("authorization", bearer(&a1).as_str()))
        .respond_with(expired_token_400().set_delay(Duration::from_millis(20)))
        .mount(&server)
        .await;
    refreshes(&server, &r1, &a2, &r2).await;
    accept(&server, &a2, "fresh").await;
    let store = TestStore::new();
    let client = restored(&server, &store, &a1, &r1).await;

    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.call::<GetThing>(params("a"), NoBody).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(hits(&server, REFRESH_NSID).await, 1);
    assert_eq!(hits_with_token(&server, GET_THING_NSID, &a2).await, 100);
}

#[tokio::test]
async fn another_process_refresh_is_adopted_from_the_store() {
    let server = MockServer::start().await;
    let (a1, r1) = (jwt("access-1", 7200), jwt("refresh-1", 86400));
    let (a2, r2) = (jwt("access-2", 7200), jwt("refresh-2", 86400));
    Mock::given(path(GET_THING))
        .and(header("authorization", bearer(&a1).as_str()))
        .respond_with(expired_token_400())
        .mount(&server)
        .await;
    refreshes(&server, &r1, &a2, &r2).await;
    accept(&server, &a2, "fresh").await;
    let store = TestStore::new();
    // Two independent sessions over one store, as two processes would have.
    let first = restored(&server, &store, &a1, &r1).await;
    let second = PasswordSession::restore_with(
        &Client::anonymous(server.uri()).unwrap(),
        store.clone(),
        &did(),
    )
    .await
    .unwrap();

    let first = first.refresh().await.unwrap();
    assert_eq!(hits(&server, REFRESH_NSID).await, 1);
    // The second still holds the old tokens, is told they expired, and finds newer ones in
    // the store instead of refreshing again (which would fail: r1 was rotated away).
    let (output, _) = second.call::<GetThing>(params("a"), NoBody).await.unwrap();
    assert_eq!(output.things, vec!["fresh"]);
    assert_eq!(hits(&server, REFRESH_NSID).await, 1);
    let (_, _) = first.call::<GetThing>(params("a"), NoBody).await.unwrap();
}

#[tokio::test]
async fn a_transient_refresh_failure_keeps_the_stored_session() {
    let server = MockServer::start().await;
    let (a1, r1) = (jwt("access-1", -10), jwt("refresh-1", 86400));
    Mock::given(path(REFRESH))
        .respond_with(
            ResponseTemplate::new(500).set_body_json(json!({"error": "InternalServerError"})),
        )
        .mount(&server)
        .await;
    let store = TestStore::new();
    let client = restored(&server, &store, &a1, &r1).await;

    let error = client
        .call::<GetThing>(params("a"), NoBody)
        .await
        .unwrap_err();
    match &error {
        Error::Auth(auth @ AuthError::RefreshFailed { transient, .. }) => {
            assert!(*transient, "{auth}");
            assert!(auth.is_transient());
            assert!(!auth.requires_login());
        }
        other => panic!("expected a transient refresh failure, got {other:?}"),
    }
    assert!(error.is_transient());
    assert_eq!(
        stored_refresh(&store),
        Some(r1.clone()),
        "the session is kept"
    );
    assert_eq!(hits(&server, GET_THING_NSID).await, 0);
    assert_eq!(
        hits(&server, REFRESH_NSID).await,
        1,
        "refreshSession is a procedure: no retry"
    );
    assert!(!format!("{error} {error:?}").contains("sig-"), "{error:?}");
}

#[tokio::test]
async fn a_transient_refresh_failure_before_expiry_still_sends_the_call() {
    let server = MockServer::start().await;
    // Inside the refresh margin but not expired yet.
    let (a1, r1) = (jwt("access-1", 30), jwt("refresh-1", 86400));
    Mock::given(path(REFRESH))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    accept(&server, &a1, "still valid").await;
    let store = TestStore::new();
    let client = restored(&server, &store, &a1, &r1).await;

    let (output, _) = client.call::<GetThing>(params("a"), NoBody).await.unwrap();
    assert_eq!(output.things, vec!["still valid"]);
    assert_eq!(hits(&server, REFRESH_NSID).await, 1);
}

#[tokio::test]
async fn a_rejected_refresh_token_removes_the_session() {
    let server = MockServer::start().await;
    let (a1, r1) = (jwt("access-1", -10), jwt("refresh-1", 86400));
    Mock::given(path(REFRESH))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(
                json!({"error": "ExpiredToken", "message": "Token has been revoked"}),
            ),
        )
        .mount(&server)
        .await;
    let store = TestStore::new();
    let client = restored(&server, &store, &a1, &r1).await;

    let error = client
        .call::<GetThing>(params("a"), NoBody)
        .await
        .unwrap_err();
    match &error {
        Error::Auth(auth @ AuthError::SessionExpired { .. }) => {
            assert!(auth.requires_login());
            assert!(!auth.is_transient());
        }
        other => panic!("expected SessionExpired, got {other:?}"),
    }
    assert!(store.raw(KEY).is_none(), "the rejected session is removed");
    let error = client
        .call::<GetThing>(params("a"), NoBody)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Auth(auth) if auth.requires_login()),
        "{error:?}"
    );
    assert_eq!(hits(&server, REFRESH_NSID).await, 1);
}

#[tokio::test]
async fn proactive_refresh_before_the_token_expires() {
    let server = MockServer::start().await;
    // Expires in 30 s: inside the refresh margin.
    let (a1, r1) = (jwt("access-1", 30), jwt("refresh-1", 86400));
    let (a2, r2) = (jwt("access-2", 7200), jwt("refresh-2", 86400));
    refreshes(&server, &r1, &a2, &r2).await;
    accept(&server, &a1, "old").await;
    accept(&server, &a2, "fresh").await;
    let store = TestStore::new();
    let client = restored(&server, &store, &a1, &r1).await;

    let (output, _) = client.call::<GetThing>(params("a"), NoBody).await.unwrap();
    assert_eq!(output.things, vec!["fresh"]);
    assert_eq!(hits(&server, REFRESH_NSID).await, 1);
    assert_eq!(hits_with_token(&server, GET_THING_NSID, &a1).await, 0);
    assert_eq!(stored_refresh(&store), Some(r2));

    // Far from expiry: no refresh.
    let (_, _) = client.call::<GetThing>(params("a"), NoBody).await.unwrap();
    assert_eq!(hits(&server, REFRESH_NSID).await, 1);
}

#[tokio::test]
async fn refreshed_tokens_that_cannot_be_persisted_are_not_used() {
    let server = MockServer::start().await;
    let (a1, r1) = (jwt("access-1", -10), jwt("refresh-1", 86400));
    let (a2, r2) = (jwt("access-2", 7200), jwt("refresh-2", 86400));
    refreshes(&server, &r1, &a2, &r2).await;
    accept(&server, &a2, "fresh").await;
    let store = TestStore::new();
    let client = restored(&server, &store, &a1, &r1).await;
    store.fail_set.store(true, Ordering::SeqCst);

    let error = client
        .call::<GetThing>(params("a"), NoBody)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Auth(AuthError::Store(_))),
        "{error:?}"
    );
    assert!(error.to_string().contains("disk full"), "{error}");
    assert_eq!(
        hits(&server, GET_THING_NSID).await,
        0,
        "the new token was not used"
    );
    assert_eq!(stored_refresh(&store), Some(r1));

    // Nor kept in memory: once the store works again, the next call refreshes from the stored
    // (old) refresh token and persists the result.
    store.fail_set.store(false, Ordering::SeqCst);
    let (output, _) = client.call::<GetThing>(params("a"), NoBody).await.unwrap();
    assert_eq!(output.things, vec!["fresh"]);
    assert_eq!(hits(&server, REFRESH_NSID).await, 2);
    assert_eq!(stored_refresh(&store), Some(r2));
}

#[tokio::test]
async fn forced_refresh_rotates_the_tokens() {
    let server = MockServer::start().await;
    let (a1, r1) = (jwt("access-1", 7200), jwt("refresh-1", 86400));
    let (a2, r2) = (jwt("access-2", 7200), jwt("refresh-2", 86400));
    refreshes(&server, &r1, &a2, &r2).await;
    accept(&server, &a2, "fresh").await;
    let store = TestStore::new();
    let client = restored(&server, &store, &a1, &r1).await;
    let other_handle = client.clone();

    let client = client.refresh().await.unwrap();
    assert_eq!(hits(&server, REFRESH_NSID).await, 1);
    assert_eq!(stored_refresh(&store), Some(r2));
    assert_eq!(store.json(KEY).unwrap()["accessJwt"], json!(a2));
    let (output, _) = client.call::<GetThing>(params("a"), NoBody).await.unwrap();
    assert_eq!(output.things, vec!["fresh"]);
    // Handles made before the refresh are not stale.
    let (output, _) = other_handle
        .call::<GetThing>(params("a"), NoBody)
        .await
        .unwrap();
    assert_eq!(output.things, vec!["fresh"]);
    assert_eq!(hits_with_token(&server, GET_THING_NSID, &a1).await, 0);

    // Refreshing an anonymous client is a NoSession error.
    let error = Client::anonymous(server.uri())
        .unwrap()
        .refresh()
        .await
        .unwrap_err();
    assert!(matches!(error, AuthError::NoSession { .. }), "{error:?}");
}

#[tokio::test]
async fn no_secret_appears_in_debug_display_or_errors() {
    let server = MockServer::start().await;
    let (a1, r1) = (jwt("access-1", -10), jwt("refresh-1", 86400));
    Mock::given(path(CREATE))
        .respond_with(ResponseTemplate::new(200).set_body_json(session_body(
            &a1,
            &r1,
            &server.uri(),
        )))
        .mount(&server)
        .await;
    // A refreshSession answer that is not a session: its body (which would hold tokens) must
    // not survive into the error.
    Mock::given(path(REFRESH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "accessJwt": jwt("access-2", 7200), "refreshJwt": 42
        })))
        .mount(&server)
        .await;
    let store = TestStore::new();
    let client = PasswordSession::login(&server.uri(), "alice.test", PASSWORD, store.clone())
        .await
        .unwrap();

    let mut shown = vec![format!("{client:?}"), format!("{:?}", client.session())];
    let error = client
        .call::<GetThing>(params("a"), NoBody)
        .await
        .unwrap_err();
    shown.push(format!("{error} | {error:?}"));
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        shown.push(format!("{cause} | {cause:?}"));
        source = cause.source();
    }
    match &error {
        Error::Auth(AuthError::RefreshFailed {
            source: Some(inner),
            transient: false,
            ..
        }) => match inner.downcast_ref::<Error>() {
            Some(Error::Decode(decode)) => {
                assert_eq!(decode.status(), 200);
                assert!(
                    decode.body().is_empty(),
                    "the body of an auth response is dropped"
                );
            }
            other => panic!("expected a decode error inside, got {other:?}"),
        },
        other => panic!("expected a refresh failure, got {other:?}"),
    }
    store.fail_set.store(true, Ordering::SeqCst);
    if let Err(error) = client.refresh().await {
        shown.push(format!("{error} | {error:?}"));
    }
    let all = shown.join("\n");
    for secret in [
        a1.as_str(),
        r1.as_str(),
        "sig-access",
        "sig-refresh",
        PASSWORD,
    ] {
        assert!(!all.contains(secret), "{secret} leaked into:\n{all}");
    }
    assert!(all.contains(DID), "the output is still useful:\n{all}");
}
