//! The OAuth client against mock servers (wiremock), for what the reference PDS cannot be made
//! to do: one mock plays PLC directory, PDS and authorization server; each test bends one
//! answer (issuer mismatch, `sub` mismatch, redirects and oversize bodies on metadata, a token
//! response with an `id_token`, a wrong `token_type`, no `atproto` scope, nonce challenges,
//! `invalid_token`, 5xx on refresh, `ScopeMissingError`) and checks what the client does.

mod oauth_mock;

use std::sync::Arc;

use atlex::auth::oauth::{
    AuthorizeOptions, CallbackParams, ClientMetadata, DeleteCause, OAuthClient, OAuthError,
    SessionEvent, scope_missing,
};
use atlex::auth::{AuthError, MemoryStore, SessionStore};
use atlex::identity::{HandleMethod, IdentityResolver};
use atlex::types::Did;
use atlex::xrpc::{Client, Error};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use oauth_mock::*;

fn client_for(server: &MockServer, store: Arc<dyn SessionStore>, allow_http: bool) -> OAuthClient {
    let resolver = IdentityResolver::builder()
        .plc_url(server.uri())
        .handle_methods([HandleMethod::Xrpc(Url::parse(&server.uri()).unwrap())])
        .allow_http(true)
        .build()
        .unwrap();
    OAuthClient::builder(ClientMetadata::loopback(&[REDIRECT], SCOPE).unwrap())
        .session_store(store)
        .identity_resolver(resolver)
        .allow_http(allow_http)
        .xrpc_client(
            Client::builder(server.uri())
                .retry(atlex::xrpc::RetryPolicy::default().max_retries(0))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

fn proof_of(request: &Request) -> (Value, Value) {
    let dpop = request.headers.get("dpop").unwrap().to_str().unwrap();
    (jwt_part(dpop, 0), jwt_part(dpop, 1))
}

/// authorize → the state the client sent in PAR.
async fn authorize(server: &MockServer, oauth: &OAuthClient, input: &str) -> String {
    oauth
        .authorize(input, AuthorizeOptions::new().app_state("app"))
        .await
        .unwrap();
    let par = requests_to(server, "/oauth/par").await;
    field(par.last().unwrap(), "state").unwrap()
}

fn callback(state: &str, iss: &str) -> CallbackParams {
    CallbackParams::from_pairs([("state", state), ("iss", iss), ("code", "cod-1")])
}

/// A full sign-in against the mock: the client for the session.
async fn signed_in(server: &MockServer, store: Arc<dyn SessionStore>) -> (OAuthClient, Client) {
    world(server).await;
    mount_token(server, tokens("acc-1", "ref-1", DID), false).await;
    let oauth = client_for(server, store, true);
    let state = authorize(server, &oauth, HANDLE).await;
    let done = oauth
        .callback(callback(&state, &server.uri()))
        .await
        .unwrap();
    (oauth, done.client)
}

#[tokio::test]
async fn flow_checks_par_token_and_nonce_retries() {
    let server = MockServer::start().await;
    // The first PAR is a nonce challenge.
    Mock::given(method("POST"))
        .and(path("/oauth/par"))
        .respond_with(
            json_response(400, json!({"error": "use_dpop_nonce"}))
                .insert_header("DPoP-Nonce", "n1"),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let store = Arc::new(MemoryStore::new());
    let (oauth, client) = signed_in(&server, store.clone()).await;
    let par = requests_to(&server, "/oauth/par").await;
    assert_eq!(par.len(), 2, "one retry after the nonce challenge");
    let (h0, c0) = proof_of(&par[0]);
    let (_, c1) = proof_of(&par[1]);
    assert_eq!(h0["typ"], "dpop+jwt");
    assert_eq!(h0["alg"], "ES256");
    assert!(h0["jwk"].get("d").is_none());
    assert!(h0.get("kid").is_none());
    assert!(c0.get("nonce").is_none());
    assert_eq!(c1["nonce"], "n1");
    assert_ne!(c0["jti"], c1["jti"], "a retry is a new proof");
    assert!(
        c0.get("ath").is_none() && c1.get("ath").is_none(),
        "no ath toward the AS"
    );
    assert_eq!(c0["htm"], "POST");
    assert_eq!(c0["htu"], format!("{}/oauth/par", server.uri()));
    let par_form = form(&par[1]);
    let get = |n: &str| {
        par_form
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("response_type").as_deref(), Some("code"));
    assert_eq!(get("code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(get("login_hint").as_deref(), Some(HANDLE));
    assert_eq!(get("redirect_uri").as_deref(), Some(REDIRECT));
    assert_eq!(get("scope").as_deref(), Some(SCOPE));
    assert_eq!(get("client_id").as_deref(), Some(oauth.client_id()));
    assert_eq!(get("state").unwrap().len(), 22, "128-bit state");
    assert!(
        get("code_verifier").is_none(),
        "the verifier stays home until the token call"
    );

    let token = requests_to(&server, "/oauth/token").await;
    assert_eq!(token.len(), 1);
    let verifier = field(&token[0], "code_verifier").unwrap();
    assert_eq!(verifier.len(), 43);
    assert_eq!(
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        get("code_challenge").unwrap(),
        "S256 challenge"
    );
    assert_eq!(field(&token[0], "redirect_uri").as_deref(), Some(REDIRECT));
    assert_eq!(
        field(&token[0], "grant_type").as_deref(),
        Some("authorization_code")
    );
    let (th, tc) = proof_of(&token[0]);
    assert_eq!(th["jwk"], h0["jwk"], "the token call uses the PAR DPoP key");
    assert_eq!(
        tc["nonce"], "n1",
        "the cached nonce is sent without a new challenge"
    );

    // The resource server's nonce challenge, then success.
    Mock::given(path("/xrpc/com.atproto.server.getSession"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header(
                    "WWW-Authenticate",
                    r#"DPoP algs="ES256", error="use_dpop_nonce", error_description="nonce""#,
                )
                .insert_header("DPoP-Nonce", "n2")
                .set_body_json(json!({"error": "use_dpop_nonce", "message": "nonce"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/xrpc/com.atproto.server.getSession"))
        .respond_with(json_response(
            200,
            json!({"did": DID, "handle": HANDLE, "active": true}),
        ))
        .mount(&server)
        .await;
    let (me, _) = client.server().get_session().await.unwrap();
    assert_eq!(me.did.as_str(), DID);
    let calls = requests_to(&server, "/xrpc/com.atproto.server.getSession").await;
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[1]
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap(),
        "DPoP acc-1"
    );
    let (_, r0) = proof_of(&calls[0]);
    let (_, r1) = proof_of(&calls[1]);
    assert_eq!(r1["nonce"], "n2");
    assert_eq!(r1["htm"], "GET");
    assert_eq!(
        r1["ath"],
        URL_SAFE_NO_PAD.encode(Sha256::digest(b"acc-1")),
        "ath toward the resource server"
    );
    assert_ne!(r0["jti"], r1["jti"]);
    assert!(!r1["htu"].as_str().unwrap().contains('?'));
}

#[tokio::test]
async fn metadata_issuer_mismatch_is_refused() {
    let server = MockServer::start().await;
    Mock::given(path("/.well-known/oauth-authorization-server"))
        .respond_with(json_response(200, as_metadata("https://evil.example")))
        .with_priority(1)
        .mount(&server)
        .await;
    world(&server).await;
    let oauth = client_for(&server, Arc::new(MemoryStore::new()), true);
    let error = oauth
        .authorize(HANDLE, AuthorizeOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(error, OAuthError::IssuerMismatch { .. }),
        "{error}"
    );
    assert!(requests_to(&server, "/oauth/par").await.is_empty());
}

#[tokio::test]
async fn metadata_redirects_wrong_type_oversize_and_two_servers_are_refused() {
    let cases = |uri: &str| -> Vec<(&'static str, ResponseTemplate)> {
        vec![
            (
                "redirect",
                ResponseTemplate::new(302).insert_header("Location", "https://evil.example/prm"),
            ),
            (
                "content type",
                ResponseTemplate::new(200)
                    .insert_header("content-type", "text/html")
                    .set_body_string("{}"),
            ),
            (
                "oversize",
                ResponseTemplate::new(200)
                    .insert_header("content-type", "application/json")
                    .set_body_string(format!(r#"{{"resource":"{}"}}"#, "x".repeat(200_000))),
            ),
            (
                "two servers",
                json_response(
                    200,
                    json!({"resource": uri, "authorization_servers": ["https://a.example", "https://b.example"]}),
                ),
            ),
            (
                "other resource",
                json_response(
                    200,
                    json!({"resource": "https://other.example", "authorization_servers": [uri]}),
                ),
            ),
            // A 404 is not here: it is the legacy fallback (the PDS is its own issuer),
            // tested in `oauth_rules.rs`.
            ("server error", ResponseTemplate::new(500)),
        ]
    };
    for index in 0..6 {
        let server = MockServer::start().await;
        let (name, response) = cases(&server.uri()).swap_remove(index);
        Mock::given(path("/.well-known/oauth-protected-resource"))
            .respond_with(response)
            .with_priority(1)
            .mount(&server)
            .await;
        world(&server).await;
        let oauth = client_for(&server, Arc::new(MemoryStore::new()), true);
        let error = oauth
            .authorize(HANDLE, AuthorizeOptions::new())
            .await
            .unwrap_err();
        assert!(
            matches!(error, OAuthError::Metadata { .. }),
            "{name}: {error}"
        );
        assert!(
            requests_to(&server, "/oauth/par").await.is_empty(),
            "{name}"
        );
        assert!(
            requests_to(&server, "/.well-known/oauth-authorization-server")
                .await
                .is_empty(),
            "{name}: nothing after a bad PRM"
        );
    }
}

#[tokio::test]
async fn http_without_allow_http_and_unregistered_redirects_send_nothing_to_oauth() {
    let server = MockServer::start().await;
    world(&server).await;
    let oauth = client_for(&server, Arc::new(MemoryStore::new()), false);
    let error = oauth
        .authorize(HANDLE, AuthorizeOptions::new())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("allow_http"), "{error}");
    assert!(
        requests_to(&server, "/.well-known/oauth-protected-resource")
            .await
            .is_empty()
    );
    let error = oauth
        .authorize(&server.uri(), AuthorizeOptions::new())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("allow_http"), "{error}");

    let before = server.received_requests().await.unwrap().len();
    let oauth = client_for(&server, Arc::new(MemoryStore::new()), true);
    for options in [
        AuthorizeOptions::new().redirect_uri("http://127.0.0.1/other"),
        AuthorizeOptions::new().redirect_uri("https://evil.example/callback"),
        AuthorizeOptions::new().scope("atproto transition:chat.bsky"),
        AuthorizeOptions::new().scope("transition:generic"),
    ] {
        let error = oauth.authorize(HANDLE, options).await.unwrap_err();
        assert!(
            matches!(error, OAuthError::InvalidRequest { .. }),
            "{error}"
        );
    }
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        before,
        "refused before any network call"
    );
}

#[tokio::test]
async fn bad_token_responses_are_refused_and_nothing_is_stored() {
    let cases = [
        ("id_token", {
            let mut t = tokens("a", "r", DID);
            t["id_token"] = json!("eyJ.x.y");
            t
        }),
        ("token_type", {
            let mut t = tokens("a", "r", DID);
            t["token_type"] = json!("Bearer");
            t
        }),
        ("scope", {
            let mut t = tokens("a", "r", DID);
            t["scope"] = json!("transition:generic");
            t
        }),
        ("sub", tokens("a", "r", OTHER_DID)),
    ];
    for (name, body) in cases {
        let server = MockServer::start().await;
        world(&server).await;
        mount_token(&server, body, false).await;
        let store = Arc::new(MemoryStore::new());
        let oauth = client_for(&server, store.clone(), true);
        let state = authorize(&server, &oauth, HANDLE).await;
        let error = oauth
            .callback(callback(&state, &server.uri()))
            .await
            .unwrap_err();
        match name {
            "sub" => assert!(
                matches!(error, OAuthError::SubjectMismatch { .. }),
                "{error}"
            ),
            _ => assert!(
                matches!(error, OAuthError::InvalidTokenResponse { .. }),
                "{name}: {error}"
            ),
        }
        assert!(store.list("oauth:").await.unwrap().is_empty(), "{name}");
    }
}

#[tokio::test]
async fn issuer_re_verification_from_the_did_fails_and_revokes() {
    // The flow starts from the server URL (no expected DID); the token's `sub` resolves to a
    // PDS whose authorization server is another issuer.
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(path("/.well-known/oauth-protected-resource"))
        .respond_with(json_response(
            200,
            json!({"resource": elsewhere.uri(), "authorization_servers": ["https://other-issuer.example"]}),
        ))
        .mount(&elsewhere)
        .await;
    Mock::given(path(format!("/{OTHER_DID}")))
        .respond_with(json_response(200, did_doc(OTHER_DID, &elsewhere.uri())))
        .mount(&server)
        .await;
    world(&server).await;
    mount_token(&server, tokens("a", "r", OTHER_DID), false).await;
    let store = Arc::new(MemoryStore::new());
    let oauth = client_for(&server, store.clone(), true);
    let state = authorize(&server, &oauth, &server.uri()).await;
    let par = requests_to(&server, "/oauth/par").await;
    assert!(
        field(&par[0], "login_hint").is_none(),
        "no login_hint for a server URL"
    );
    let error = oauth
        .callback(callback(&state, &server.uri()))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OAuthError::IssuerMismatch { .. }),
        "{error}"
    );
    let revoked = requests_to(&server, "/oauth/revoke").await;
    assert_eq!(revoked.len(), 1, "the token is revoked");
    assert!(store.list("oauth:").await.unwrap().is_empty());
}

#[tokio::test]
async fn callback_parameters_are_checked_and_state_is_single_use() {
    let server = MockServer::start().await;
    world(&server).await;
    mount_token(&server, tokens("a", "r", DID), false).await;
    let oauth = client_for(&server, Arc::new(MemoryStore::new()), true);
    let invalid = |e: &OAuthError| matches!(e, OAuthError::InvalidCallback { .. });

    let e = oauth
        .callback(CallbackParams::from_pairs([("code", "c")]))
        .await
        .unwrap_err();
    assert!(invalid(&e), "{e}");
    let e = oauth
        .callback(CallbackParams::from_pairs([
            ("state", "nope"),
            ("code", "c"),
        ]))
        .await
        .unwrap_err();
    assert!(invalid(&e), "{e}");
    let state = authorize(&server, &oauth, HANDLE).await;
    let e = oauth
        .callback(CallbackParams::from_pairs([
            ("state", state.as_str()),
            ("response", "jwt"),
        ]))
        .await
        .unwrap_err();
    assert!(invalid(&e), "JARM: {e}");

    let state = authorize(&server, &oauth, HANDLE).await;
    let e = oauth
        .callback(callback(&state, "https://evil.example"))
        .await
        .unwrap_err();
    assert!(matches!(e, OAuthError::IssuerMismatch { .. }), "{e}");
    // The state was consumed by the failed attempt too.
    let e = oauth
        .callback(callback(&state, &server.uri()))
        .await
        .unwrap_err();
    assert!(invalid(&e), "{e}");

    let state = authorize(&server, &oauth, HANDLE).await;
    let e = oauth
        .callback(CallbackParams::from_pairs([
            ("state", state.as_str()),
            ("code", "c"),
        ]))
        .await
        .unwrap_err();
    assert!(invalid(&e), "missing iss although advertised: {e}");

    let state = authorize(&server, &oauth, HANDLE).await;
    let e = oauth
        .callback(CallbackParams::from_pairs([
            ("state", state.as_str()),
            ("iss", &server.uri()),
        ]))
        .await
        .unwrap_err();
    assert!(invalid(&e), "no code: {e}");

    let state = authorize(&server, &oauth, HANDLE).await;
    let e = oauth
        .callback(CallbackParams::from_pairs([
            ("state", state.as_str()),
            ("error", "access_denied"),
            ("error_description", "The user rejected the request"),
        ]))
        .await
        .unwrap_err();
    assert_eq!(e.app_state(), Some("app"));
    assert!(requests_to(&server, "/oauth/token").await.is_empty());
}

#[tokio::test]
async fn invalid_token_refreshes_once_then_a_second_rejection_deletes_the_session() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let (oauth, client) = signed_in(&server, store.clone()).await;
    let mut events = oauth.events();
    // Refresh answers with new tokens; the PDS rejects every token.
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(json_response(200, tokens("acc-2", "ref-2", DID)))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/xrpc/com.atproto.server.getSession"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header(
                    "WWW-Authenticate",
                    r#"DPoP error="invalid_token", error_description="bad""#,
                )
                .set_body_json(json!({"error": "InvalidToken", "message": "bad"})),
        )
        .mount(&server)
        .await;
    let error = client.server().get_session().await.unwrap_err();
    assert_eq!(error.status(), Some(401), "{error}");
    let calls = requests_to(&server, "/xrpc/com.atproto.server.getSession").await;
    assert_eq!(calls.len(), 2, "retried once after the refresh");
    assert_eq!(
        calls[1]
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap(),
        "DPoP acc-2"
    );
    let token_calls = requests_to(&server, "/oauth/token").await;
    assert_eq!(token_calls.len(), 2, "code exchange + one refresh");
    assert_eq!(
        field(&token_calls[1], "grant_type").as_deref(),
        Some("refresh_token")
    );
    assert_eq!(
        field(&token_calls[1], "refresh_token").as_deref(),
        Some("ref-1")
    );
    let (_, claims) = proof_of(&token_calls[1]);
    assert!(claims.get("ath").is_none());
    // Issuer re-verified before the refresh: the DID document was fetched again.
    assert!(requests_to(&server, &format!("/{DID}")).await.len() >= 3);
    let mut saw_update = false;
    loop {
        match events.recv().await.unwrap() {
            SessionEvent::Updated(_) => saw_update = true,
            SessionEvent::Deleted { cause, .. } => {
                assert_eq!(cause, DeleteCause::InvalidToken);
                break;
            }
            _ => {}
        }
    }
    assert!(saw_update);
    assert!(store.list("oauth:").await.unwrap().is_empty());
    let error = client.server().get_session().await.unwrap_err();
    assert!(
        matches!(error, Error::Auth(AuthError::NoSession { .. })),
        "{error}"
    );
}

#[tokio::test]
async fn a_5xx_on_refresh_keeps_the_session_and_a_rejection_deletes_it() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let (oauth, client) = signed_in(&server, store.clone()).await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(json_response(503, json!({"error": "server_error"})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let error = client.refresh().await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert_eq!(store.list("oauth:").await.unwrap().len(), 1, "kept");

    let mut events = oauth.events();
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(json_response(
            400,
            json!({"error": "invalid_grant", "error_description": "Refresh token replayed"}),
        ))
        .with_priority(1)
        .mount(&server)
        .await;
    let error = client.refresh().await.unwrap_err();
    assert!(matches!(error, AuthError::SessionExpired { .. }), "{error}");
    assert!(store.list("oauth:").await.unwrap().is_empty(), "deleted");
    match events.recv().await.unwrap() {
        SessionEvent::Deleted {
            cause: DeleteCause::RefreshRejected(_),
            ..
        } => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_refresh_for_another_sub_ends_the_session() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let (_oauth, client) = signed_in(&server, store.clone()).await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(json_response(200, tokens("x", "y", OTHER_DID)))
        .with_priority(1)
        .mount(&server)
        .await;
    let error = client.refresh().await.unwrap_err();
    assert!(matches!(error, AuthError::SessionExpired { .. }), "{error}");
    assert!(store.list("oauth:").await.unwrap().is_empty());
}

#[tokio::test]
async fn scope_missing_is_a_permission_error_without_refresh() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let (_oauth, client) = signed_in(&server, store.clone()).await;
    Mock::given(path("/xrpc/com.atproto.server.getSession"))
        .respond_with(json_response(
            403,
            json!({"error": "ScopeMissingError", "message": "Missing required scope \"x\""}),
        ))
        .mount(&server)
        .await;
    let error = client.server().get_session().await.unwrap_err();
    assert!(scope_missing(&error).is_some(), "{error}");
    assert_eq!(
        requests_to(&server, "/oauth/token").await.len(),
        1,
        "no refresh"
    );
    assert_eq!(store.list("oauth:").await.unwrap().len(), 1, "no sign-out");
}

#[tokio::test]
async fn restore_sign_out_and_revoke_when_the_server_is_gone() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let (oauth, _client) = signed_in(&server, store.clone()).await;
    let did = Did::new(DID).unwrap();
    assert_eq!(
        oauth.sessions(&did).await.unwrap(),
        [OAuthClient::session_key(&did, None)]
    );
    let client = oauth.restore(&did).await.unwrap();
    assert_eq!(client.did(), Some(did.clone()));
    client.logout().await.unwrap();
    let revoked = requests_to(&server, "/oauth/revoke").await;
    assert_eq!(field(&revoked[0], "token").as_deref(), Some("acc-1"));
    assert!(matches!(
        oauth.restore(&did).await,
        Err(OAuthError::NoSession { .. })
    ));

    // A second session, then the server disappears: revoke still deletes locally.
    let server2 = MockServer::start().await;
    let (oauth2, _c) = signed_in(&server2, store.clone()).await;
    drop(server2);
    oauth2.revoke(&did).await.unwrap();
    assert!(store.list("oauth:").await.unwrap().is_empty());
}
