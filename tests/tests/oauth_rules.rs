//! The OAuth client's rules that `oauth_hostile.rs` does not reach, one test per checklist
//! row (`sdk/src/auth/oauth/CHECKLIST.md`), against mock servers (wiremock): one mock plays PLC
//! directory, handle resolver, PDS and authorization server, and each test bends one answer.
//!
//! Covered here: unverified handles (3) and invalid input (2), a DID document without a PDS
//! (5), the protected-resource-metadata 404 fallback (6), the authorization-server metadata
//! rules one field at a time (10, 11, 14), `expires_at` arithmetic (26), replacing a session
//! and a store that fails at login (27), a confidential client's key use (47, 48), the served
//! metadata document (51), proactive refresh (35), a cancelled caller during a refresh (37),
//! a stored value of another account (44), expanded `include:` scopes (53), timeouts (54) and
//! the metadata cache.

mod support;

mod oauth_mock;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use atlex::auth::oauth::{
    AuthorizeOptions, CLIENT_ASSERTION_TYPE, CallbackParams, ClientMetadata, DeleteCause, Keyset,
    OAuthClient, OAuthClientBuilder, OAuthError, SessionEvent,
};
use atlex::auth::{AuthError, MemoryStore, SessionData, SessionStore};
use atlex::identity::{HandleMethod, IdentityResolver};
use atlex::types::Did;
use atlex::xrpc::Client;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use url::Url;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use oauth_mock::*;

/// A bound no test comes near unless something hangs.
const HANG: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// The mock world.

fn builder(server: &MockServer, store: Arc<dyn SessionStore>) -> OAuthClientBuilder {
    builder_with(
        server,
        store,
        ClientMetadata::loopback(&[REDIRECT], SCOPE).unwrap(),
    )
}

fn builder_with(
    server: &MockServer,
    store: Arc<dyn SessionStore>,
    metadata: ClientMetadata,
) -> OAuthClientBuilder {
    OAuthClient::builder(metadata)
        .session_store(store)
        .identity_resolver(resolver(server))
        .allow_http(true)
        .xrpc_client(
            Client::builder(server.uri())
                .retry(atlex::xrpc::RetryPolicy::default().max_retries(0))
                .build()
                .unwrap(),
        )
}

fn proof_jwk(request: &Request) -> Value {
    let dpop = request.headers.get("dpop").unwrap().to_str().unwrap();
    jwt_part(dpop, 0)["jwk"].clone()
}

/// Mounts the world on `server` (routes mounted before it take precedence), builds a client on
/// a fresh memory store and authorizes `HANDLE`.
async fn authorize_in_world(server: &MockServer) -> Result<Url, OAuthError> {
    world(server).await;
    builder(server, Arc::new(MemoryStore::new()))
        .build()
        .unwrap()
        .authorize(HANDLE, AuthorizeOptions::new())
        .await
}

/// authorize (handle input) → the state the client sent in PAR.
async fn authorize(server: &MockServer, oauth: &OAuthClient) -> String {
    authorize_with(server, oauth, AuthorizeOptions::new()).await
}

async fn authorize_with(
    server: &MockServer,
    oauth: &OAuthClient,
    options: AuthorizeOptions,
) -> String {
    oauth.authorize(HANDLE, options).await.unwrap();
    let par = requests_to(server, "/oauth/par").await;
    field(par.last().unwrap(), "state").unwrap()
}

fn callback(state: &str, iss: &str) -> CallbackParams {
    CallbackParams::from_pairs([("state", state), ("iss", iss), ("code", "cod-1")])
}

/// The world, a token endpoint answering `acc-1`/`ref-1`, and a finished sign-in.
async fn signed_in(server: &MockServer, oauth: &OAuthClient) -> Client {
    world(server).await;
    mount_token(server, tokens("acc-1", "ref-1", DID), false).await;
    let state = authorize(server, oauth).await;
    oauth
        .callback(callback(&state, &server.uri()))
        .await
        .unwrap()
        .client
}

async fn mount_get_session(server: &MockServer) {
    Mock::given(path("/xrpc/com.atproto.server.getSession"))
        .respond_with(json_response(
            200,
            json!({"did": DID, "handle": HANDLE, "active": true}),
        ))
        .mount(server)
        .await;
}

fn authorization_of(request: &Request) -> String {
    request
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

/// The one stored OAuth session: its key and JSON.
async fn stored(store: &dyn SessionStore) -> (String, Value) {
    let keys = store.list("oauth:").await.unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let data = store.get(&keys[0]).await.unwrap().unwrap();
    (
        keys[0].clone(),
        serde_json::from_str(data.as_str()).unwrap(),
    )
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn unix_of(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The next event that is not an `Updated` (those are skipped), within [`HANG`].
async fn next_deleted(events: &mut broadcast::Receiver<SessionEvent>) -> (Did, DeleteCause) {
    tokio::time::timeout(HANG, async {
        loop {
            match events.recv().await.unwrap() {
                SessionEvent::Deleted { did, cause, .. } => return (did, cause),
                _ => continue,
            }
        }
    })
    .await
    .expect("no Deleted event")
}

// ---------------------------------------------------------------------------------------------
// Rows 2, 3, 5: the sign-in input and the identity behind it.

#[tokio::test]
async fn invalid_input_and_an_unconfirmed_handle_are_refused_before_any_oauth_request() {
    let server = MockServer::start().await;
    world(&server).await;
    let oauth = builder(&server, Arc::new(MemoryStore::new()))
        .build()
        .unwrap();

    // Row 2: not a handle, DID or URL → refused before anything is sent.
    for input in ["not a handle", "alice..test", "-alice.test", "did:plc:"] {
        let error = oauth
            .authorize(input, AuthorizeOptions::new())
            .await
            .unwrap_err();
        assert!(
            matches!(error, OAuthError::InvalidInput { .. }),
            "{input}: {error}"
        );
    }
    assert!(server.received_requests().await.unwrap().is_empty());

    // Row 3: `bob.test` resolves to the DID, whose document names `alice.test`.
    let error = oauth
        .authorize("bob.test", AuthorizeOptions::new())
        .await
        .unwrap_err();
    match &error {
        OAuthError::HandleNotVerified { handle, did } => {
            assert_eq!(handle, "bob.test");
            assert_eq!(did, DID);
        }
        other => panic!("{other}"),
    }
    assert!(
        requests_to(&server, PRM).await.is_empty() && requests_to(&server, ASM).await.is_empty(),
        "nothing OAuth after an unconfirmed handle"
    );
    assert!(requests_to(&server, "/oauth/par").await.is_empty());

    // The confirmed handle goes through.
    oauth
        .authorize(HANDLE, AuthorizeOptions::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_did_document_without_a_pds_is_a_clear_error() {
    // At authorize (DID input).
    let server = MockServer::start().await;
    let mut doc = did_doc(DID, &server.uri());
    doc["service"] = json!([{"id": "#atproto_labeler", "type": "AtprotoLabeler",
                             "serviceEndpoint": server.uri()}]);
    Mock::given(path(format!("/{DID}")))
        .respond_with(json_response(200, doc.clone()))
        .with_priority(1)
        .mount(&server)
        .await;
    world(&server).await;
    let oauth = builder(&server, Arc::new(MemoryStore::new()))
        .build()
        .unwrap();
    let error = oauth
        .authorize(DID, AuthorizeOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(error, OAuthError::Identity(_)), "{error}");
    let text = error.to_string();
    assert!(
        text.contains("#atproto_pds") && text.contains(DID),
        "{text}"
    );
    assert!(requests_to(&server, PRM).await.is_empty());

    // At the issuer check after the token response: the account's document lost its PDS
    // between authorize and callback → the grant is revoked, nothing is stored.
    let server = MockServer::start().await;
    Mock::given(path(format!("/{DID}")))
        .respond_with(json_response(200, did_doc(DID, &server.uri())))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let mut doc = did_doc(DID, &server.uri());
    doc["service"] = json!([]);
    Mock::given(path(format!("/{DID}")))
        .respond_with(json_response(200, doc))
        .with_priority(2)
        .mount(&server)
        .await;
    world(&server).await;
    mount_token(&server, tokens("acc-1", "ref-1", DID), false).await;
    let store = Arc::new(MemoryStore::new());
    let oauth = builder(&server, store.clone()).build().unwrap();
    let state = authorize(&server, &oauth).await;
    let error = oauth
        .callback(callback(&state, &server.uri()))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("#atproto_pds"), "{error}");
    let revoked = requests_to(&server, "/oauth/revoke").await;
    assert_eq!(revoked.len(), 1, "the new grant is revoked");
    assert_eq!(field(&revoked[0], "token").as_deref(), Some("ref-1"));
    assert!(store.list("oauth:").await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Row 6: protected-resource metadata that is not there at all (404).

#[tokio::test]
async fn a_pds_without_protected_resource_metadata_is_its_own_issuer() {
    let server = MockServer::start().await;
    Mock::given(path(PRM))
        .respond_with(ResponseTemplate::new(404))
        .with_priority(1)
        .mount(&server)
        .await;
    let store = Arc::new(MemoryStore::new());
    let oauth = builder(&server, store.clone()).build().unwrap();
    // The whole flow from a handle: PRM 404 at authorize and at the issuer check; the PDS
    // origin is the issuer both times.
    let client = signed_in(&server, &oauth).await;
    assert_eq!(
        requests_to(&server, PRM).await.len(),
        2,
        "authorize + check"
    );
    // The AS metadata of the PDS origin (this mock server: `requests_to` filters by path).
    assert_eq!(requests_to(&server, ASM).await.len(), 1);
    let (_, json) = stored(store.as_ref()).await;
    assert_eq!(json["issuer"], server.uri());
    // Refresh: the issuer check falls back the same way.
    mount_token(&server, tokens("acc-2", "ref-2", DID), true).await;
    client.refresh().await.unwrap();
    assert_eq!(requests_to(&server, PRM).await.len(), 3);

    // Only a 404 falls back: any other failure stays an error, with nothing after it.
    for response in [
        ResponseTemplate::new(500),
        ResponseTemplate::new(403),
        ResponseTemplate::new(200)
            .insert_header("content-type", "text/html")
            .set_body_string("<html></html>"),
    ] {
        let server = MockServer::start().await;
        Mock::given(path(PRM))
            .respond_with(response)
            .with_priority(1)
            .mount(&server)
            .await;
        let error = authorize_in_world(&server).await.unwrap_err();
        assert!(matches!(error, OAuthError::Metadata { .. }), "{error}");
        assert!(requests_to(&server, ASM).await.is_empty(), "{error}");
    }

    // The fallback issuer is still held to the AS metadata rules: here it does not list the
    // PDS among its protected resources.
    let server = MockServer::start().await;
    Mock::given(path(PRM))
        .respond_with(ResponseTemplate::new(404))
        .with_priority(1)
        .mount(&server)
        .await;
    let mut metadata = as_metadata(&server.uri());
    metadata["protected_resources"] = json!(["https://pds.example"]);
    Mock::given(path(ASM))
        .respond_with(json_response(200, metadata))
        .with_priority(1)
        .mount(&server)
        .await;
    let error = authorize_in_world(&server).await.unwrap_err();
    assert!(error.to_string().contains("protected_resources"), "{error}");
    assert!(requests_to(&server, "/oauth/par").await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Rows 10, 11, 14: authorization-server metadata, one broken rule at a time.

#[tokio::test]
async fn authorization_server_metadata_rules_are_enforced_one_by_one() {
    type Bend = fn(&mut Value);
    let cases: [(&str, Bend); 12] = [
        ("client_id_metadata_document_supported false", |m| {
            m["client_id_metadata_document_supported"] = json!(false)
        }),
        ("client_id_metadata_document_supported absent", |m| {
            m.as_object_mut()
                .unwrap()
                .remove("client_id_metadata_document_supported");
        }),
        ("no authorization_endpoint", |m| {
            m.as_object_mut().unwrap().remove("authorization_endpoint");
        }),
        ("no token_endpoint", |m| {
            m.as_object_mut().unwrap().remove("token_endpoint");
        }),
        ("token_endpoint not a URL", |m| {
            m["token_endpoint"] = json!("not a url")
        }),
        ("authorization_endpoint not http(s)", |m| {
            m["authorization_endpoint"] = json!("ftp://as.example/authorize")
        }),
        ("PAR required without an endpoint", |m| {
            m.as_object_mut()
                .unwrap()
                .remove("pushed_authorization_request_endpoint");
        }),
        ("no PAR endpoint (atproto requires PAR)", |m| {
            m["require_pushed_authorization_requests"] = json!(false);
            m.as_object_mut()
                .unwrap()
                .remove("pushed_authorization_request_endpoint");
        }),
        ("`none` among the signing algs", |m| {
            m["token_endpoint_auth_signing_alg_values_supported"] = json!(["ES256", "none"])
        }),
        ("protected_resources without the PDS", |m| {
            m["protected_resources"] = json!(["https://other-pds.example"])
        }),
        ("ES256 not among the DPoP algs", |m| {
            m["dpop_signing_alg_values_supported"] = json!(["RS256", "ES384"])
        }),
        ("no S256 PKCE", |m| {
            m["code_challenge_methods_supported"] = json!(["plain"])
        }),
    ];
    for (name, bend) in cases {
        let server = MockServer::start().await;
        let mut metadata = as_metadata(&server.uri());
        bend(&mut metadata);
        Mock::given(path(ASM))
            .respond_with(json_response(200, metadata))
            .with_priority(1)
            .mount(&server)
            .await;
        let error = authorize_in_world(&server).await.unwrap_err();
        assert!(
            matches!(error, OAuthError::Metadata { .. }),
            "{name}: {error}"
        );
        assert!(
            requests_to(&server, "/oauth/par").await.is_empty(),
            "{name}: nothing is pushed"
        );
    }

    // The control: the unbent document is accepted.
    let server = MockServer::start().await;
    authorize_in_world(&server).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Row 26: `expires_at` counts from before the token request.

/// Answers with `body` after `delay`, noting when each request arrived.
struct Stamped {
    body: Value,
    delay: Duration,
    arrived: Arc<Mutex<Vec<SystemTime>>>,
}

impl Respond for Stamped {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.arrived.lock().unwrap().push(SystemTime::now());
        json_response(200, self.body.clone()).set_delay(self.delay)
    }
}

#[tokio::test]
async fn expires_at_counts_from_before_the_token_request() {
    // The token endpoint takes 1.2 s to answer: a client that took the time after the
    // response would be at least one whole second later than the request's arrival.
    let server = MockServer::start().await;
    world(&server).await;
    let arrived = Arc::new(Mutex::new(Vec::new()));
    let mut body = tokens("acc-1", "ref-1", DID);
    body["expires_in"] = json!(600);
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(Stamped {
            body,
            delay: Duration::from_millis(1200),
            arrived: arrived.clone(),
        })
        .mount(&server)
        .await;
    let store = Arc::new(MemoryStore::new());
    let oauth = builder(&server, store.clone()).build().unwrap();
    let state = authorize(&server, &oauth).await;
    let before = unix_now();
    let done = oauth
        .callback(callback(&state, &server.uri()))
        .await
        .unwrap();
    let arrival = unix_of(arrived.lock().unwrap()[0]);
    let expires_at = done.session.expires_at.unwrap();
    let issued = expires_at - 600;
    assert!(
        before <= issued && issued <= arrival,
        "issued {issued}: between {before} (before the callback) and {arrival} (the request)"
    );
    let (_, json) = stored(store.as_ref()).await;
    assert_eq!(json["expires_at"], expires_at);
    assert_eq!(json["issued_at"], issued);
    assert_eq!(
        json["aud"].as_str().unwrap().trim_end_matches('/'),
        server.uri(),
        "aud = the resolved PDS"
    );

    // The same for a refresh.
    let mut events = oauth.events();
    let before = unix_now();
    done.client.refresh().await.unwrap();
    let arrival = unix_of(arrived.lock().unwrap()[1]);
    let info = match tokio::time::timeout(HANG, events.recv()).await.unwrap() {
        Ok(SessionEvent::Updated(info)) => info,
        other => panic!("{other:?}"),
    };
    let issued = info.expires_at.unwrap() - 600;
    assert!(
        before <= issued && issued <= arrival,
        "refresh: issued {issued}, between {before} and {arrival}"
    );
}

// ---------------------------------------------------------------------------------------------
// Row 27: a second login for the same account, and a store that fails at login.

#[tokio::test]
async fn a_second_login_revokes_and_replaces_the_first() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let oauth = builder(&server, store.clone()).build().unwrap();
    let first = signed_in(&server, &oauth).await;
    mount_get_session(&server).await;
    first.server().get_session().await.unwrap();

    // The second login: new tokens, a new DPoP key.
    mount_token(&server, tokens("acc-2", "ref-2", DID), true).await;
    let mut events = oauth.events();
    let state = authorize(&server, &oauth).await;
    let second = oauth
        .callback(callback(&state, &server.uri()))
        .await
        .unwrap();
    let (did, cause) = next_deleted(&mut events).await;
    assert_eq!((did.as_str(), cause), (DID, DeleteCause::Replaced));
    let revoked = requests_to(&server, "/oauth/revoke").await;
    assert_eq!(revoked.len(), 1, "the replaced session is revoked");
    assert_eq!(field(&revoked[0], "token").as_deref(), Some("ref-1"));
    let (_, json) = stored(store.as_ref()).await;
    assert_eq!(json["access_token"], "acc-2", "the new session replaced it");
    assert_eq!(json["refresh_token"], "ref-2");
    second.client.server().get_session().await.unwrap();
    let calls = requests_to(&server, "/xrpc/com.atproto.server.getSession").await;
    assert_eq!(authorization_of(calls.last().unwrap()), "DPoP acc-2");
    let par = requests_to(&server, "/oauth/par").await;
    let new_key = proof_jwk(&par[1]);
    assert_ne!(
        proof_jwk(&par[0]),
        new_key,
        "a fresh DPoP key per authorization"
    );
    assert_eq!(proof_jwk(calls.last().unwrap()), new_key);

    // A handle on the first session: its token was revoked (the PDS says so), the refresh
    // adopts the stored session, and the retry is signed with the *new* session's DPoP key.
    Mock::given(path("/xrpc/com.atproto.server.getSession"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("WWW-Authenticate", r#"DPoP error="invalid_token""#)
                .set_body_json(json!({"error": "InvalidToken", "message": "revoked"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let token_calls = requests_to(&server, "/oauth/token").await.len();
    first.server().get_session().await.unwrap();
    assert_eq!(
        requests_to(&server, "/oauth/token").await.len(),
        token_calls,
        "adopted from the store, not refreshed with the revoked token"
    );
    let calls = requests_to(&server, "/xrpc/com.atproto.server.getSession").await;
    let retry = calls.last().unwrap();
    assert_eq!(authorization_of(retry), "DPoP acc-2");
    assert_eq!(
        proof_jwk(retry),
        new_key,
        "the adopted tokens' own DPoP key"
    );
    assert_eq!(stored(store.as_ref()).await.1["access_token"], "acc-2");
}

#[tokio::test]
async fn a_store_that_fails_at_login_revokes_the_new_grant_and_keeps_nothing_half_stored() {
    let server = MockServer::start().await;
    world(&server).await;
    mount_token(&server, tokens("acc-1", "ref-1", DID), false).await;
    let sessions = support::TestStore::new();
    let oauth = builder(&server, sessions.clone())
        .state_store(Arc::new(MemoryStore::new()))
        .build()
        .unwrap();

    // A first login that cannot be stored.
    let state = authorize(&server, &oauth).await;
    sessions
        .fail_set
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let mut events = oauth.events();
    let error = oauth
        .callback(callback(&state, &server.uri()))
        .await
        .unwrap_err();
    assert!(matches!(error, OAuthError::Store(_)), "{error}");
    assert!(error.to_string().contains("disk full"), "{error}");
    let revoked = requests_to(&server, "/oauth/revoke").await;
    assert_eq!(revoked.len(), 1, "the unstored grant is revoked");
    assert_eq!(field(&revoked[0], "token").as_deref(), Some("ref-1"));
    assert!(sessions.list("oauth:").await.unwrap().is_empty());
    assert!(
        events.try_recv().is_err(),
        "no event for a session never stored"
    );

    // A stored session, then a second login that cannot be stored: the first stays as it
    // was, unrevoked; only the new grant is revoked.
    sessions
        .fail_set
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let state = authorize(&server, &oauth).await;
    oauth
        .callback(callback(&state, &server.uri()))
        .await
        .unwrap();
    mount_token(&server, tokens("acc-2", "ref-2", DID), true).await;
    let state = authorize(&server, &oauth).await;
    sessions
        .fail_set
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let mut events = oauth.events();
    let error = oauth
        .callback(callback(&state, &server.uri()))
        .await
        .unwrap_err();
    assert!(matches!(error, OAuthError::Store(_)), "{error}");
    let revoked = requests_to(&server, "/oauth/revoke").await;
    assert_eq!(revoked.len(), 2);
    assert_eq!(field(&revoked[1], "token").as_deref(), Some("ref-2"));
    let (_, json) = stored(sessions.as_ref()).await;
    assert_eq!(
        json["access_token"], "acc-1",
        "the earlier session is intact"
    );
    assert!(events.try_recv().is_err(), "nothing was replaced");
}

// ---------------------------------------------------------------------------------------------
// Rows 47, 48, 51: a confidential client.

#[tokio::test]
async fn a_confidential_client_uses_its_negotiated_key_everywhere_and_an_unusable_key_ends_the_session()
 {
    const CLIENT_ID: &str = "https://app.example.com/oauth-client-metadata.json";
    let server = MockServer::start().await;
    world(&server).await;
    mount_token(&server, tokens("acc-1", "ref-1", DID), false).await;
    let metadata =
        ClientMetadata::discoverable(CLIENT_ID, &["https://app.example.com/callback"], SCOPE)
            .confidential("https://app.example.com/jwks.json");
    let keyset = Keyset::generate("k1").unwrap();
    let store = Arc::new(MemoryStore::new());
    let oauth = builder_with(&server, store.clone(), metadata.clone())
        .keyset(keyset.clone())
        .build()
        .unwrap();

    // Row 51: the served document is the metadata, with exactly this client_id; the JWKS
    // is the public half of the keyset.
    let document = oauth.client_metadata_document();
    assert_eq!(document["client_id"], CLIENT_ID);
    assert_eq!(ClientMetadata::from_document(&document).unwrap(), metadata);
    let jwks = oauth.jwks();
    assert_eq!(jwks, keyset.public_jwks());
    assert_eq!(jwks["keys"][0]["kid"], "k1");
    assert!(jwks["keys"][0].get("d").is_none());

    let state = authorize(&server, &oauth).await;
    let done = oauth
        .callback(callback(&state, &server.uri()))
        .await
        .unwrap();
    mount_token(&server, tokens("acc-2", "ref-2", DID), true).await;
    done.client.refresh().await.unwrap();
    done.client.logout().await.unwrap();

    // Row 47/48: PAR, code exchange, refresh and revoke each carry a fresh assertion, all
    // signed with the negotiated key `k1`.
    let mut requests = requests_to(&server, "/oauth/par").await;
    requests.extend(requests_to(&server, "/oauth/token").await);
    requests.extend(requests_to(&server, "/oauth/revoke").await);
    assert_eq!(requests.len(), 4);
    let mut jtis = Vec::new();
    for request in &requests {
        assert_eq!(field(request, "client_id").as_deref(), Some(CLIENT_ID));
        assert_eq!(
            field(request, "client_assertion_type").as_deref(),
            Some(CLIENT_ASSERTION_TYPE)
        );
        let assertion = field(request, "client_assertion").unwrap();
        let header = jwt_part(&assertion, 0);
        let claims = jwt_part(&assertion, 1);
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], "k1");
        assert_eq!(claims["iss"], CLIENT_ID);
        assert_eq!(claims["sub"], CLIENT_ID);
        assert_eq!(claims["aud"], server.uri());
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            60
        );
        jtis.push(claims["jti"].as_str().unwrap().to_owned());
    }
    jtis.sort();
    jtis.dedup();
    assert_eq!(jtis.len(), 4, "a fresh assertion per request");

    // Row 48: the app's keyset lost `k1` (key rotation gone wrong): the stored session's
    // method cannot be used, so the refresh ends it.
    let state = authorize(&server, &oauth).await;
    oauth
        .callback(callback(&state, &server.uri()))
        .await
        .unwrap();
    let rotated = builder_with(&server, store.clone(), metadata)
        .keyset(Keyset::generate("k2").unwrap())
        .build()
        .unwrap();
    let mut events = rotated.events();
    let client = rotated.restore(&Did::new(DID).unwrap()).await.unwrap();
    let token_calls = requests_to(&server, "/oauth/token").await.len();
    let error = client.refresh().await.unwrap_err();
    assert!(matches!(error, AuthError::SessionExpired { .. }), "{error}");
    assert_eq!(
        requests_to(&server, "/oauth/token").await.len(),
        token_calls,
        "nothing is sent with an unusable key"
    );
    assert!(store.list("oauth:").await.unwrap().is_empty(), "deleted");
    let (_, cause) = next_deleted(&mut events).await;
    assert!(
        matches!(&cause, DeleteCause::ClientKeyRemoved { kid } if kid == "k1"),
        "{cause:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Rows 35, 37: refresh before the call, and a caller that goes away during a refresh.

/// Rewrites the stored session's lifetime: issued long ago, expiring in `left` seconds.
async fn age_stored_session(store: &dyn SessionStore, left: i64) {
    let (key, mut json) = stored(store).await;
    json["issued_at"] = json!(unix_now() - 3500);
    json["expires_at"] = json!(unix_now() + left);
    store
        .set(&key, &SessionData::new(json.to_string()))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_session_near_expiry_is_refreshed_before_the_call_and_a_fresh_one_is_not() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let oauth = builder(&server, store.clone()).build().unwrap();
    let fresh = signed_in(&server, &oauth).await;
    mount_get_session(&server).await;
    mount_token(&server, tokens("acc-2", "ref-2", DID), true).await;

    // Plenty of time left (3600 s): no refresh.
    fresh.server().get_session().await.unwrap();
    fresh.server().get_session().await.unwrap();
    assert_eq!(
        requests_to(&server, "/oauth/token").await.len(),
        1,
        "no refresh"
    );

    // 100 s left, less than the refresh margin: the call refreshes first, then goes out with
    // the new token.
    age_stored_session(store.as_ref(), 100).await;
    let did = Did::new(DID).unwrap();
    let near = oauth.restore(&did).await.unwrap();
    near.server().get_session().await.unwrap();
    let token_calls = requests_to(&server, "/oauth/token").await;
    assert_eq!(token_calls.len(), 2, "one proactive refresh");
    assert_eq!(
        field(&token_calls[1], "grant_type").as_deref(),
        Some("refresh_token")
    );
    let calls = requests_to(&server, "/xrpc/com.atproto.server.getSession").await;
    assert_eq!(
        calls.len(),
        3,
        "the call itself went out once, after the refresh"
    );
    assert_eq!(authorization_of(&calls[2]), "DPoP acc-2");
    assert_eq!(stored(store.as_ref()).await.1["access_token"], "acc-2");
}

#[tokio::test]
async fn a_caller_cancelled_during_a_refresh_does_not_cancel_it() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let oauth = builder(&server, store.clone()).build().unwrap();
    let client = signed_in(&server, &oauth).await;
    // The refresh answer takes 2 s; the caller gives up as soon as the request is in flight.
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(
            json_response(200, tokens("acc-2", "ref-2", DID)).set_delay(Duration::from_secs(2)),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let mut events = oauth.events();
    let in_flight = async {
        while requests_to(&server, "/oauth/token").await.len() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::select! {
        result = client.refresh() => panic!("the refresh finished before it was seen in flight: {result:?}"),
        () = in_flight => {}
    }
    // The caller's future is gone; the refresh still finishes and is stored.
    match tokio::time::timeout(HANG, events.recv()).await.unwrap() {
        Ok(SessionEvent::Updated(info)) => assert_eq!(info.did.as_str(), DID),
        other => panic!("{other:?}"),
    }
    let (_, json) = stored(store.as_ref()).await;
    assert_eq!(json["access_token"], "acc-2");
    assert_eq!(json["refresh_token"], "ref-2");
    // And the handle uses it without another refresh.
    mount_get_session(&server).await;
    client.server().get_session().await.unwrap();
    let calls = requests_to(&server, "/xrpc/com.atproto.server.getSession").await;
    assert_eq!(authorization_of(&calls[0]), "DPoP acc-2");
    assert_eq!(requests_to(&server, "/oauth/token").await.len(), 2);

    // The same with `tokio::time::timeout` around the call.
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(
            json_response(200, tokens("acc-3", "ref-3", DID)).set_delay(Duration::from_secs(1)),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let result = tokio::time::timeout(Duration::from_millis(100), client.refresh()).await;
    assert!(result.is_err(), "the answer takes a second");
    match tokio::time::timeout(HANG, events.recv()).await.unwrap() {
        Ok(SessionEvent::Updated(_)) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(stored(store.as_ref()).await.1["access_token"], "acc-3");
}

// ---------------------------------------------------------------------------------------------
// Row 44: the store is keyed by account; a value of another account is refused.

#[tokio::test]
async fn a_stored_session_of_another_account_is_refused_at_restore() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let oauth = builder(&server, store.clone()).build().unwrap();
    signed_in(&server, &oauth).await;
    let (key, json) = stored(store.as_ref()).await;
    assert!(key.contains(DID), "{key}");
    // The same value, filed under another account.
    let other_key = key.replace(DID, OTHER_DID);
    store
        .set(&other_key, &SessionData::new(json.to_string()))
        .await
        .unwrap();
    let other = Did::new(OTHER_DID).unwrap();
    let error = oauth.restore(&other).await.unwrap_err();
    assert!(
        matches!(error, OAuthError::Auth(AuthError::InvalidSession { .. })),
        "{error}"
    );
    let text = error.to_string();
    assert!(text.contains(OTHER_DID) && text.contains(DID), "{text}");
    assert!(
        !text.contains("acc-1") && !text.contains("ref-1"),
        "no token in the error: {text}"
    );
    // The account's own session restores.
    oauth.restore(&Did::new(DID).unwrap()).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Row 53: granular scopes, `include:` expanded by the server.

#[tokio::test]
async fn an_expanded_include_scope_is_accepted_and_stored_as_granted() {
    const REQUESTED: &str = "atproto include:com.example.authBasicFeatures";
    const GRANTED: &str = "atproto repo:com.example.post?action=create&action=delete \
                           rpc:com.example.getThing?aud=did:web:api.example.com%23svc \
                           blob:image/* account:email?action=read identity:handle";
    let server = MockServer::start().await;
    world(&server).await;
    let mut body = tokens("acc-1", "ref-1", DID);
    body["scope"] = json!(GRANTED);
    mount_token(&server, body, false).await;
    let store = Arc::new(MemoryStore::new());
    let metadata = ClientMetadata::loopback(&[REDIRECT], REQUESTED).unwrap();
    let oauth = builder_with(&server, store.clone(), metadata)
        .build()
        .unwrap();
    let state = authorize(&server, &oauth).await;
    let par = requests_to(&server, "/oauth/par").await;
    assert_eq!(field(&par[0], "scope").as_deref(), Some(REQUESTED));
    let done = oauth
        .callback(callback(&state, &server.uri()))
        .await
        .unwrap();
    assert_eq!(done.session.scope, GRANTED, "the granted scope, as given");
    assert_eq!(stored(store.as_ref()).await.1["scope"], GRANTED);
    let restored = oauth.restore(&Did::new(DID).unwrap()).await.unwrap();
    assert_eq!(restored.did().unwrap().as_str(), DID);
}

// ---------------------------------------------------------------------------------------------
// Row 54: servers that never answer.

/// A response that would come after the test is long over.
fn never() -> ResponseTemplate {
    json_response(200, json!({})).set_delay(Duration::from_secs(600))
}

fn assert_timed_out(error: &OAuthError, what: &str) {
    assert!(error.is_transient(), "{what}: {error}");
    assert!(
        error.to_string().contains("timed out"),
        "{what}: a timeout error: {error}"
    );
}

#[tokio::test]
async fn metadata_and_identity_servers_that_never_answer_time_out() {
    let short = Duration::from_millis(200);
    // Protected-resource, then authorization-server metadata.
    for route in [PRM, ASM] {
        let server = MockServer::start().await;
        Mock::given(path(route))
            .respond_with(never())
            .with_priority(1)
            .mount(&server)
            .await;
        world(&server).await;
        let oauth = builder(&server, Arc::new(MemoryStore::new()))
            .metadata_timeout(short)
            .build()
            .unwrap();
        let error = tokio::time::timeout(HANG, oauth.authorize(HANDLE, AuthorizeOptions::new()))
            .await
            .expect("the metadata timeout bounds authorize")
            .unwrap_err();
        assert!(
            matches!(error, OAuthError::Transport { .. }),
            "{route}: {error}"
        );
        assert_timed_out(&error, route);
    }

    // The PLC directory (identity): the resolver's own timeout.
    let server = MockServer::start().await;
    Mock::given(path(format!("/{DID}")))
        .respond_with(never())
        .with_priority(1)
        .mount(&server)
        .await;
    world(&server).await;
    let oauth = builder(&server, Arc::new(MemoryStore::new()))
        .identity_resolver(
            IdentityResolver::builder()
                .plc_url(server.uri())
                .handle_methods([HandleMethod::Xrpc(Url::parse(&server.uri()).unwrap())])
                .allow_http(true)
                .timeout(short)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let error = tokio::time::timeout(HANG, oauth.authorize(HANDLE, AuthorizeOptions::new()))
        .await
        .expect("the resolver timeout bounds authorize")
        .unwrap_err();
    assert!(matches!(error, OAuthError::Identity(_)), "{error}");
    assert_timed_out(&error, "PLC");

    // The issuer check after the token response (the DID document answered at authorize,
    // then hangs): bounded by the issuer-check timeout, and the grant is revoked.
    let server = MockServer::start().await;
    Mock::given(path(format!("/{DID}")))
        .respond_with(json_response(200, did_doc(DID, &server.uri())))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path(format!("/{DID}")))
        .respond_with(never())
        .with_priority(2)
        .mount(&server)
        .await;
    world(&server).await;
    mount_token(&server, tokens("acc-1", "ref-1", DID), false).await;
    let store = Arc::new(MemoryStore::new());
    let oauth = builder(&server, store.clone())
        .issuer_check_timeout(short)
        .build()
        .unwrap();
    let state = authorize(&server, &oauth).await;
    let error = tokio::time::timeout(HANG, oauth.callback(callback(&state, &server.uri())))
        .await
        .expect("the issuer-check timeout bounds the callback")
        .unwrap_err();
    assert!(error.to_string().contains("issuer check"), "{error}");
    assert_timed_out(&error, "issuer check");
    assert_eq!(requests_to(&server, "/oauth/revoke").await.len(), 1);
    assert!(store.list("oauth:").await.unwrap().is_empty());

    // A token endpoint that never answers: the request timeout.
    let server = MockServer::start().await;
    world(&server).await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(never())
        .mount(&server)
        .await;
    let oauth = builder(&server, Arc::new(MemoryStore::new()))
        .request_timeout(short)
        .build()
        .unwrap();
    let state = authorize(&server, &oauth).await;
    let error = tokio::time::timeout(HANG, oauth.callback(callback(&state, &server.uri())))
        .await
        .expect("the request timeout bounds the callback")
        .unwrap_err();
    assert!(matches!(error, OAuthError::Transport { .. }), "{error}");
    assert_timed_out(&error, "token endpoint");
}

// ---------------------------------------------------------------------------------------------
// The metadata cache.

#[tokio::test]
async fn a_steady_app_fetches_authorization_server_metadata_once() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    // A TTL no test run comes near (the default is 60 s).
    let oauth = builder(&server, store.clone())
        .metadata_cache_ttl(Duration::from_secs(3600))
        .build()
        .unwrap();
    // authorize, callback, two refreshes, a second sign-in, sign-out.
    let client = signed_in(&server, &oauth).await;
    mount_token(&server, tokens("acc-2", "ref-2", DID), true).await;
    client.refresh().await.unwrap();
    mount_token(&server, tokens("acc-3", "ref-3", DID), true).await;
    client.refresh().await.unwrap();
    let state = authorize(&server, &oauth).await;
    let again = oauth
        .callback(callback(&state, &server.uri()))
        .await
        .unwrap();
    again.client.logout().await.unwrap();
    assert_eq!(
        requests_to(&server, ASM).await.len(),
        1,
        "one authorization-server metadata fetch for all of it"
    );
    // The protected-resource metadata: once for the two sign-in inputs (cached), and once
    // per issuer check (two callbacks, two refreshes), which never uses the cache.
    assert_eq!(requests_to(&server, PRM).await.len(), 1 + 4);
    assert_eq!(requests_to(&server, "/oauth/token").await.len(), 4);

    // With the cache off, every step fetches again.
    let server = MockServer::start().await;
    let oauth = builder(&server, Arc::new(MemoryStore::new()))
        .metadata_cache_ttl(Duration::ZERO)
        .build()
        .unwrap();
    let client = signed_in(&server, &oauth).await;
    mount_token(&server, tokens("acc-2", "ref-2", DID), true).await;
    client.refresh().await.unwrap();
    // authorize, callback, refresh.
    assert_eq!(requests_to(&server, ASM).await.len(), 3);
    assert_eq!(requests_to(&server, PRM).await.len(), 3);
}

#[tokio::test]
async fn metadata_is_cached_per_issuer() {
    // Two PDSs with their own authorization servers, behind one client.
    let a = MockServer::start().await;
    let b = MockServer::start().await;
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    for server in [&a, &b] {
        world(server).await;
    }
    let oauth_a = builder(&a, Arc::clone(&store))
        .metadata_cache_ttl(Duration::from_secs(3600))
        .build()
        .unwrap();
    oauth_a
        .authorize(HANDLE, AuthorizeOptions::new())
        .await
        .unwrap();
    oauth_a
        .authorize(HANDLE, AuthorizeOptions::new())
        .await
        .unwrap();
    assert_eq!(requests_to(&a, ASM).await.len(), 1);
    // The URL input of the other server, through the same client: its own entry.
    oauth_a
        .authorize(&b.uri(), AuthorizeOptions::new())
        .await
        .unwrap();
    oauth_a
        .authorize(&b.uri(), AuthorizeOptions::new())
        .await
        .unwrap();
    assert_eq!(requests_to(&b, ASM).await.len(), 1);
    assert_eq!(requests_to(&a, ASM).await.len(), 1);
}
