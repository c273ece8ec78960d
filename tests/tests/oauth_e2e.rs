//! The OAuth client end to end against the reference PDS (`tests/pds/`), sign-in and consent
//! driven headless by `atlex_pds_harness::oauth::Driver`: PAR (with the nonce challenge) →
//! authorize → sign-in → consent → callback → token → typed calls (getSession, createRecord,
//! listRecords, blob upload, untyped get) → forced refresh → the session works with the new tokens → a replay of
//! the old refresh token is rejected (the PDS then revokes the grant, and the client ends the
//! session cleanly) → sign-out → the API answers 401 and the session is
//! gone. Also: consent rejected (`access_denied` with the app state), a replayed state, a
//! replayed code, a scope without write permission (403 keeps the session), a second
//! client restoring the session from the shared store, and two sessions of one account
//! (session ids) restored and signed out on their own.
//!
//! Without a PDS these are skipped with a note, except under `CI=true`, where they fail.

mod oauth_common;

use atlex::app::bsky::feed::post::Post;
use atlex::auth::oauth::{
    AuthorizeOptions, CallbackParams, DeleteCause, OAuthClient, OAuthError, SessionEvent,
    scope_missing,
};
use atlex::auth::{AuthError, SessionId, SessionStore};
use atlex::repo::ListRecordsOptions;
use atlex::types::Datetime;
use atlex::xrpc::{Error, RawBody};
use atlex_pds_harness::oauth::{Decision, Driver};
use atlex_tests::require_pds;
use oauth_common::*;

const SCOPE: &str = "atproto transition:generic";

fn post(text: &str) -> Post {
    Post::new(text, Datetime::new("2025-01-02T03:04:05.678Z").unwrap())
}

#[tokio::test]
async fn full_flow_calls_refresh_replay_and_sign_out() {
    let pds = require_pds!();
    let account = pds.create_account().await.unwrap();
    let did = did(&account);
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let oauth = oauth(pds, SCOPE, store.clone());
    let mut events = oauth.events();

    let done = login(
        &oauth,
        &account,
        AuthorizeOptions::new().app_state("/after-login"),
    )
    .await;
    assert_eq!(done.app_state.as_deref(), Some("/after-login"));
    assert_eq!(done.session.did, did);
    assert_eq!(done.session.scope, SCOPE, "the granted scope is exposed");
    assert!(matches!(events.recv().await.unwrap(), SessionEvent::Updated(info) if info.did == did));
    let client = done.client;

    // Typed calls over the OAuth session.
    let (me, client) = client.server().get_session().await.unwrap();
    assert_eq!(me.did, did);
    let (created, client) = client
        .create_record(&post("hello over OAuth"))
        .await
        .unwrap();
    assert_eq!(created.uri.authority(), did.as_str());
    let (page, client) = client
        .list_records::<Post>(did.clone(), ListRecordsOptions::new().limit(10))
        .await
        .unwrap();
    assert!(page.records.iter().any(|r| r.uri == created.uri));
    let bytes: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let (blob, client) = client
        .upload_blob(RawBody::new(bytes.clone(), "image/png"))
        .await
        .unwrap();
    assert_eq!(blob.size(), Some(bytes.len() as u64));
    let (value, client) = client
        .get(
            "com.atproto.repo.describeRepo",
            serde_json::json!({ "repo": did.as_str() }),
        )
        .await
        .unwrap();
    assert_eq!(value["did"], did.as_str());

    // Forced refresh: new tokens persisted, an `updated` event.
    let before = stored(store.as_ref(), &did).await.unwrap();
    let client = client.refresh().await.unwrap();
    let after = stored(store.as_ref(), &did).await.unwrap();
    assert_ne!(before["refresh_token"], after["refresh_token"]);
    assert_ne!(before["access_token"], after["access_token"]);
    assert_eq!(
        before["dpop_key"], after["dpop_key"],
        "one DPoP key per session"
    );
    assert!(matches!(
        events.recv().await.unwrap(),
        SessionEvent::Updated(_)
    ));

    let (me, client) = client.server().get_session().await.unwrap();
    assert_eq!(me.did, did, "the session works with the refreshed tokens");

    // The old refresh token, replayed (by someone without the session's DPoP key): rejected.
    // The reference PDS treats a replay as theft and revokes the whole grant (checklist §3,
    // verified), so the session cannot go on working: the client's next call gets
    // `invalid_token`, refreshes once, the refresh is rejected, and the session is deleted
    // cleanly (typed error, `deleted` event, nothing left in the store).
    let foreign = atlex::auth::oauth::Es256Key::generate().unwrap();
    let endpoint = token_endpoint(pds).await;
    let (status, body, _) = by_hand(
        &foreign,
        "POST",
        &endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", before["refresh_token"].as_str().unwrap()),
            ("client_id", oauth.client_id()),
        ],
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    let error = client.server().get_session().await.unwrap_err();
    assert!(
        matches!(error, Error::Auth(AuthError::SessionExpired { .. })),
        "{error}"
    );
    match events.recv().await.unwrap() {
        SessionEvent::Deleted { cause, .. } => {
            assert!(
                matches!(cause, DeleteCause::RefreshRejected(_)),
                "{cause:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(stored(store.as_ref(), &did).await.is_none());
}

#[tokio::test]
async fn sign_out_revokes_at_the_server_and_deletes_the_session() {
    let pds = require_pds!();
    let account = pds.create_account().await.unwrap();
    let did = did(&account);
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let oauth = oauth(pds, SCOPE, store.clone());
    let client = login(&oauth, &account, AuthorizeOptions::new())
        .await
        .client;
    let mut events = oauth.events();
    let (_, client) = client.server().get_session().await.unwrap();

    // Sign-out: revoked at the server, gone locally, a `deleted` event.
    let after = stored(store.as_ref(), &did).await.unwrap();
    let access = after["access_token"].as_str().unwrap().to_owned();
    let refresh = after["refresh_token"].as_str().unwrap().to_owned();
    let key = dpop_key(&after);
    client.logout().await.unwrap();
    match events.recv().await.unwrap() {
        SessionEvent::Deleted {
            did: gone, cause, ..
        } => {
            assert_eq!(gone, did);
            assert_eq!(cause, DeleteCause::SignedOut);
        }
        other => panic!("{other:?}"),
    }
    assert!(stored(store.as_ref(), &did).await.is_none());
    // The API refuses the revoked token (with the session's own DPoP key), and so does the
    // token endpoint its refresh token.
    let (status, _, www) = by_hand(
        &key,
        "GET",
        &format!("{}/xrpc/com.atproto.server.getSession", pds.url()),
        &[],
        Some(&access),
    )
    .await;
    assert_eq!(status, 401, "revoked token: {www:?}");
    let endpoint = token_endpoint(pds).await;
    let (status, body, _) = by_hand(
        &key,
        "POST",
        &endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", oauth.client_id()),
        ],
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(matches!(
        oauth.restore(&did).await,
        Err(OAuthError::NoSession { .. })
    ));
}

#[tokio::test]
async fn rejected_consent_reaches_the_app_with_its_state() {
    let pds = require_pds!();
    let account = pds.create_account().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let oauth = oauth(pds, SCOPE, store.clone());
    let mut driver = Driver::new().unwrap();
    let callback = sign_in(
        &oauth,
        &mut driver,
        &account,
        AuthorizeOptions::new().app_state("keep-me"),
        Decision::Reject,
    )
    .await;
    match oauth
        .callback(CallbackParams::from_pairs(callback.params()))
        .await
    {
        Err(OAuthError::AuthorizationDenied {
            error, app_state, ..
        }) => {
            assert_eq!(error, "access_denied");
            assert_eq!(app_state.as_deref(), Some("keep-me"));
        }
        other => panic!("{other:?}"),
    }
    assert!(stored(store.as_ref(), &did(&account)).await.is_none());
}

#[tokio::test]
async fn replayed_state_and_replayed_code_are_refused() {
    let pds = require_pds!();
    let account = pds.create_account().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let oauth = oauth(pds, SCOPE, store.clone());
    let mut driver = Driver::new().unwrap();
    let callback = sign_in(
        &oauth,
        &mut driver,
        &account,
        AuthorizeOptions::new(),
        Decision::Accept,
    )
    .await;
    let state = callback.param("state").unwrap();
    let state_key = format!("oauth-state:{state}");
    let pending = store.get(&state_key).await.unwrap().unwrap();
    let params = CallbackParams::from_pairs(callback.params());
    let done = oauth.callback(params.clone()).await.unwrap();
    // The same redirect again: the state was consumed.
    assert!(matches!(
        oauth.callback(params.clone()).await,
        Err(OAuthError::InvalidCallback { .. })
    ));
    // Put the pending authorization back by hand: the code itself is single use at the server.
    store.set(&state_key, &pending).await.unwrap();
    match oauth.callback(params).await {
        Err(OAuthError::Server { status, error, .. }) => {
            assert_eq!(status, 400);
            assert_eq!(error, "invalid_grant");
        }
        other => panic!("{other:?}"),
    }
    drop(done);
}

#[tokio::test]
async fn a_scope_without_write_permission_is_a_403_that_keeps_the_session() {
    let pds = require_pds!();
    let account = pds.create_account().await.unwrap();
    let did = did(&account);
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let oauth = oauth(pds, "atproto", store.clone());
    let mut events = oauth.events();
    let done = login(&oauth, &account, AuthorizeOptions::new()).await;
    assert!(matches!(
        events.recv().await.unwrap(),
        SessionEvent::Updated(_)
    ));
    let before = stored(store.as_ref(), &did).await.unwrap();
    let error = done
        .client
        .create_record(&post("not allowed"))
        .await
        .err()
        .unwrap();
    assert_eq!(error.status(), Some(403), "{error}");
    assert!(scope_missing(&error).is_some(), "{error}");
    // No refresh, no sign-out.
    let after = stored(store.as_ref(), &did).await.unwrap();
    assert_eq!(before["refresh_token"], after["refresh_token"]);
    assert!(events.try_recv().is_err(), "no session event");
    let client = oauth.restore(&did).await.unwrap();
    let (me, _) = client.server().get_session().await.unwrap();
    assert_eq!(me.did, did);
}

#[tokio::test]
async fn a_second_client_restores_from_the_shared_store() {
    let pds = require_pds!();
    let account = pds.create_account().await.unwrap();
    let did = did(&account);
    let dir = tempfile::tempdir().unwrap();
    let first = oauth(pds, SCOPE, sqlite(&dir).await);
    let done = login(&first, &account, AuthorizeOptions::new()).await;

    // Another client (its own store handle on the same file, its own caches).
    let second = oauth(pds, SCOPE, sqlite(&dir).await);
    let client = second.restore(&did).await.unwrap();
    let (me, client) = client.server().get_session().await.unwrap();
    assert_eq!(me.did, did);
    // It refreshes; the first client adopts the new tokens from the store.
    let _client = client.refresh().await.unwrap();
    let (me, _) = done.client.server().get_session().await.unwrap();
    assert_eq!(me.did, did);
    // Unknown accounts have no session.
    let other = pds.create_account().await.unwrap();
    match second.restore(&oauth_common::did(&other)).await {
        Err(OAuthError::NoSession { .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn two_sessions_of_one_account_restore_and_sign_out_on_their_own() {
    let pds = require_pds!();
    let account = pds.create_account().await.unwrap();
    let did = did(&account);
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let oauth = oauth(pds, SCOPE, store.clone());
    let phone = SessionId::new("phone").unwrap();
    let laptop = SessionId::generate().unwrap();
    let on_phone = login(
        &oauth,
        &account,
        AuthorizeOptions::new().session_id(phone.clone()),
    )
    .await;
    assert_eq!(on_phone.session.session_id.as_ref(), Some(&phone));
    let on_laptop = login(
        &oauth,
        &account,
        AuthorizeOptions::new().session_id(laptop.clone()),
    )
    .await;
    assert_eq!(on_laptop.session.session_id.as_ref(), Some(&laptop));

    // Two sessions, each with its own tokens and DPoP key, under `oauth:<did>#<id>`.
    let phone_key = OAuthClient::session_key(&did, Some(&phone));
    let laptop_key = OAuthClient::session_key(&did, Some(&laptop));
    let mut listed = oauth.sessions(&did).await.unwrap();
    listed.sort();
    let mut expected = vec![phone_key.clone(), laptop_key.clone()];
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(phone_key.to_string(), format!("oauth:{did}#phone"));
    let phone_stored = stored_at(store.as_ref(), &phone_key).await.unwrap();
    let laptop_stored = stored_at(store.as_ref(), &laptop_key).await.unwrap();
    assert_ne!(phone_stored["access_token"], laptop_stored["access_token"]);
    assert_ne!(phone_stored["dpop_key"], laptop_stored["dpop_key"]);
    assert!(
        stored(store.as_ref(), &did).await.is_none(),
        "no default session"
    );

    // `restore` without an id cannot choose; each restores by its id and works.
    match oauth.restore(&did).await {
        Err(OAuthError::NoSession { what }) => {
            assert!(what.contains("restore one by its id"), "{what}")
        }
        other => panic!("{other:?}"),
    }
    let phone_client = oauth.restore_id(&did, &phone).await.unwrap();
    let (me, phone_client) = phone_client.server().get_session().await.unwrap();
    assert_eq!(me.did, did);
    let laptop_client = oauth.restore_id(&did, &laptop).await.unwrap();
    let (me, laptop_client) = laptop_client.server().get_session().await.unwrap();
    assert_eq!(me.did, did);

    // The phone signs out: its token is revoked at the server, its session deleted; the
    // laptop's session is untouched and keeps working, refresh included.
    let mut events = oauth.events();
    let phone_access = phone_stored["access_token"].as_str().unwrap().to_owned();
    phone_client.logout().await.unwrap();
    match events.recv().await.unwrap() {
        SessionEvent::Deleted {
            session_id, cause, ..
        } => {
            assert_eq!(session_id.as_ref(), Some(&phone));
            assert_eq!(cause, DeleteCause::SignedOut);
        }
        other => panic!("{other:?}"),
    }
    let (status, _, _) = by_hand(
        &dpop_key(&phone_stored),
        "GET",
        &format!("{}/xrpc/com.atproto.server.getSession", pds.url()),
        &[],
        Some(&phone_access),
    )
    .await;
    assert_eq!(status, 401, "the phone's token is revoked");
    assert!(matches!(
        oauth.restore_id(&did, &phone).await,
        Err(OAuthError::NoSession { .. })
    ));
    assert_eq!(
        oauth.sessions(&did).await.unwrap(),
        std::slice::from_ref(&laptop_key)
    );
    let (me, laptop_client) = laptop_client.server().get_session().await.unwrap();
    assert_eq!(me.did, did);
    let laptop_client = laptop_client.refresh().await.unwrap();
    let (me, _) = laptop_client.server().get_session().await.unwrap();
    assert_eq!(me.did, did);
    // The original handle of the laptop's sign-in adopts the refreshed tokens.
    let (me, _) = on_laptop.client.server().get_session().await.unwrap();
    assert_eq!(me.did, did);
    // With one session left, `restore` without an id finds it.
    let only = oauth.restore(&did).await.unwrap();
    let (me, _) = only.server().get_session().await.unwrap();
    assert_eq!(me.did, did);

    // Revoking one session by key, then the account: nothing is left.
    oauth.revoke_session(&laptop_key).await.unwrap();
    assert!(oauth.sessions(&did).await.unwrap().is_empty());
    oauth.revoke(&did).await.unwrap();
    drop(on_phone);
}
