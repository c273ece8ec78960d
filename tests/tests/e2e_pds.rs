//! End-to-end tests of the SDK against the reference PDS (`tests/pds/`, see its README):
//! password login into a SQLite store, typed records, blobs, pagination, typed errors, refresh,
//! restore, namespace accessors, untyped calls and client-side validation.
//!
//! Each test creates its own account, so the tests can share one PDS (and run in parallel).
//! Without a PDS they are skipped with a note, except under `CI=true`, where they fail.

use std::collections::HashSet;
use std::fmt::Display;
use std::sync::Arc;

use atlex::app::bsky::actor::defs::{AdultContentPref, PreferencesItem};
use atlex::app::bsky::actor::profile::Profile;
use atlex::app::bsky::actor::{get_preferences, put_preferences};
use atlex::app::bsky::embed::images::{Image, Images};
use atlex::app::bsky::feed::post::{Post, PostEmbed};
use atlex::auth::{AuthError, PasswordSession, SessionStore, SqliteStore};
use atlex::com::atproto::repo::{apply_writes, describe_repo, get_record, list_records};
use atlex::com::atproto::sync::get_blob;
use atlex::repo::{ListRecordsOptions, Write};
use atlex::types::{AtIdentifier, BlobRef, Cid, CidLink, Datetime, Did, RecordKey, TidGenerator};
use atlex::xrpc::{Client, Error, RawBody, RequestPart};
use atlex_tests::pds::{Pds, TestAccount};
use atlex_tests::require_pds;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use tempfile::TempDir;

/// Unwraps `result`, failing with what was being done and the PDS's recent log.
fn ok<T, E: Display>(pds: &Pds, result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!(
            "{what}: {error}\n--- PDS stderr (tail) ---\n{}",
            pds.stderr_tail()
        ),
    }
}

/// A fresh account, logged in with `PasswordSession::login` into a SQLite store in a temp dir.
struct Session {
    account: TestAccount,
    did: Did,
    client: Client,
    store: Arc<SqliteStore>,
    dir: TempDir,
}

async fn login(pds: &Pds) -> Session {
    let account = ok(pds, pds.create_account().await, "createAccount");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(ok(
        pds,
        SqliteStore::open(dir.path().join("sessions.sqlite")).await,
        "open the SQLite store",
    ));
    let client = ok(
        pds,
        PasswordSession::login(
            pds.url(),
            &account.handle,
            account.password.clone(),
            store.clone(),
        )
        .await,
        "PasswordSession::login",
    );
    let did = Did::new(account.did.clone()).expect("the PDS returns a valid DID");
    Session {
        account,
        did,
        client,
        store,
        dir,
    }
}

fn created_at() -> Datetime {
    Datetime::new("2025-01-02T03:04:05.678Z").expect("valid datetime")
}

fn post(text: &str) -> Post {
    Post::new(text, created_at())
}

fn rkey_of(uri: &atlex::types::AtUri) -> RecordKey {
    uri.record_key().expect("a record URI has a record key")
}

/// The `jti` claim of a JWT (read without verifying).
fn jti(jwt: &str) -> String {
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    let bytes = URL_SAFE_NO_PAD.decode(payload).expect("base64url payload");
    let claims: Value = serde_json::from_slice(&bytes).expect("JSON claims");
    claims["jti"].as_str().expect("a jti claim").to_owned()
}

/// The tokens held in the store for `did`'s password session.
async fn stored_tokens(store: &SqliteStore, did: &Did) -> (String, String) {
    let data = store
        .get(&PasswordSession::storage_key(did))
        .await
        .expect("read the store")
        .expect("a stored session");
    let json: Value = serde_json::from_str(data.as_str()).expect("stored JSON");
    (
        json["accessJwt"].as_str().expect("accessJwt").to_owned(),
        json["refreshJwt"].as_str().expect("refreshJwt").to_owned(),
    )
}

/// Calls `com.atproto.server.refreshSession` by hand (plain HTTP, no body) with `refresh_jwt`;
/// returns the status and the JSON body.
async fn refresh_by_hand(pds: &Pds, refresh_jwt: &str) -> (u16, Value) {
    let response = pds
        .http()
        .post(pds.xrpc_url("com.atproto.server.refreshSession"))
        .bearer_auth(refresh_jwt)
        .send()
        .await
        .unwrap_or_else(|error| panic!("refreshSession by hand: {error}"));
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// Deterministic pseudo-random bytes behind a PNG signature (the content is not an image, but
/// the PDS takes the declared type when it does not recognise the content).
fn blob_bytes(len: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

fn cid_of(blob: &BlobRef) -> Cid {
    let link = blob.cid().expect("blob CID");
    Cid::new(link.to_string()).expect("a CID string")
}

#[tokio::test]
async fn password_login_stores_the_session_in_sqlite() {
    let pds = require_pds!();
    let session = login(pds).await;
    assert_eq!(session.client.did(), Some(session.did.clone()));
    assert_eq!(
        session.client.service_url().as_str().trim_end_matches('/'),
        pds.url(),
        "the DID document names this PDS"
    );
    let (access, refresh) = stored_tokens(&session.store, &session.did).await;
    assert!(!access.is_empty() && !refresh.is_empty());
    assert!(session.dir.path().join("sessions.sqlite").exists());

    let (me, _) = ok(
        pds,
        session.client.server().get_session().await,
        "getSession",
    );
    assert_eq!(me.did, session.did);
    assert_eq!(me.handle.as_str(), session.account.handle);
    assert_eq!(me.email.as_deref(), Some(session.account.email.as_str()));
}

#[tokio::test]
async fn typed_records_round_trip() {
    let pds = require_pds!();
    let session = login(pds).await;
    let (client, did) = (&session.client, &session.did);

    // create_record / get_record.
    let first = post("hello from atlex").langs(vec!["en".parse().expect("language")]);
    let (created, client) = ok(pds, client.create_record(&first).await, "createRecord");
    assert_eq!(created.uri.authority(), did.as_str());
    assert_eq!(created.uri.collection(), Some("app.bsky.feed.post"));
    let rkey = rkey_of(&created.uri);
    let (entry, client) = ok(
        pds,
        client.get_record::<Post>(did.clone(), rkey.clone()).await,
        "getRecord",
    );
    assert_eq!(entry.value, first);
    assert_eq!(entry.uri, created.uri);
    assert_eq!(entry.cid.as_ref(), Some(&created.cid));

    // list_records.
    let (page, client) = ok(
        pds,
        client
            .list_records::<Post>(did.clone(), ListRecordsOptions::new().limit(10))
            .await,
        "listRecords",
    );
    assert_eq!(page.records.len(), 1);
    assert_eq!(page.records[0].value, first);
    assert_eq!(page.records[0].cid.as_ref(), Some(&created.cid));

    // put_record replaces it.
    let edited = post("hello again, edited");
    let (put, client) = ok(
        pds,
        client.put_record(rkey.clone(), &edited).await,
        "putRecord",
    );
    assert_eq!(put.uri, created.uri);
    assert_ne!(put.cid, created.cid);
    let (entry, client) = ok(
        pds,
        client.get_record::<Post>(did.clone(), rkey.clone()).await,
        "getRecord after putRecord",
    );
    assert_eq!(entry.value, edited);
    assert_eq!(entry.cid.as_ref(), Some(&put.cid));

    // A profile, whose key is always `self`.
    let mut profile = Profile::new();
    profile.display_name = Some("Atlex Tester".to_owned());
    profile.description = Some("Written by the atlex end-to-end tests 🦀".to_owned());
    profile.created_at = Some(created_at());
    let self_key = RecordKey::new("self").expect("record key");
    let (_, client) = ok(
        pds,
        client.put_record(self_key.clone(), &profile).await,
        "putRecord profile",
    );
    let (entry, client) = ok(
        pds,
        client
            .get_record::<Profile>(did.clone(), self_key.clone())
            .await,
        "getRecord profile",
    );
    assert_eq!(entry.value, profile);

    // delete_record.
    let (_, client) = ok(
        pds,
        client.delete_record::<Post>(rkey.clone()).await,
        "deleteRecord",
    );
    match client.get_record::<Post>(did.clone(), rkey.clone()).await {
        Err(Error::Xrpc {
            error: get_record::Error::RecordNotFound(_),
            ..
        }) => {}
        other => panic!("expected RecordNotFound after deleteRecord, got {other:?}"),
    }

    // apply_writes: create two (one with a chosen key), update one, delete one, in one commit.
    let mut tids = TidGenerator::new();
    let (a_key, b_key) = (
        RecordKey::new(tids.next_tid().as_str()).expect("rkey"),
        RecordKey::new(tids.next_tid().as_str()).expect("rkey"),
    );
    let (a, b) = (post("batch a"), post("batch b"));
    let (_, client) = ok(
        pds,
        client
            .apply_writes(vec![
                Write::create(&a, Some(a_key.clone())).expect("write"),
                Write::create(&b, Some(b_key.clone())).expect("write"),
            ])
            .await,
        "applyWrites (create)",
    );
    let a_updated = post("batch a, updated");
    let (output, client) = ok(
        pds,
        client
            .apply_writes(vec![
                Write::update(a_key.clone(), &a_updated).expect("write"),
                Write::delete::<Post>(b_key.clone()).expect("write"),
            ])
            .await,
        "applyWrites (update + delete)",
    );
    let results = output.results.expect("applyWrites returns results");
    assert!(matches!(
        results.as_slice(),
        [
            apply_writes::OutputResultsItem::UpdateResult(_),
            apply_writes::OutputResultsItem::DeleteResult(_)
        ]
    ));
    let (page, client) = ok(
        pds,
        client
            .list_records::<Post>(did.clone(), ListRecordsOptions::new())
            .await,
        "listRecords after applyWrites",
    );
    let values: Vec<&Post> = page.records.iter().map(|entry| &entry.value).collect();
    assert_eq!(values, vec![&a_updated], "only the updated record is left");
    assert_eq!(rkey_of(&page.records[0].uri), a_key);

    // The profile is still there, untouched by the post writes.
    let (entry, _) = ok(
        pds,
        client.get_record::<Profile>(did.clone(), self_key).await,
        "getRecord profile at the end",
    );
    assert_eq!(entry.value, profile);
}

#[tokio::test]
async fn blobs_upload_and_download_byte_identical() {
    let pds = require_pds!();
    let session = login(pds).await;
    let (client, did) = (&session.client, &session.did);
    let content = blob_bytes(300 * 1024);

    // From bytes…
    let (blob, client) = ok(
        pds,
        client
            .upload_blob(RawBody::new(content.clone(), "image/png"))
            .await,
        "uploadBlob (bytes)",
    );
    assert_eq!(blob.mime_type(), "image/png");
    assert_eq!(blob.size(), Some(content.len() as u64));
    assert_eq!(blob.cid().expect("cid"), CidLink::for_raw(&content));
    // …and streamed from a file: the same blob.
    let file = session.dir.path().join("avatar.png");
    std::fs::write(&file, &content).expect("write the blob file");
    let (from_file, client) = ok(
        pds,
        client
            .upload_blob(RawBody::from_file(&file, "image/png"))
            .await,
        "uploadBlob (file)",
    );
    assert_eq!(from_file, blob);

    // Referenced from the profile's avatar and from a post's image embed.
    let mut profile = Profile::new();
    profile.display_name = Some("Blob Tester".to_owned());
    profile.avatar = Some(blob.clone());
    let self_key = RecordKey::new("self").expect("record key");
    let (_, client) = ok(
        pds,
        client.put_record(self_key.clone(), &profile).await,
        "putRecord profile with avatar",
    );
    let with_image =
        post("a post with an image").embed(PostEmbed::Images(Box::new(Images::new(vec![
            Image::new(blob.clone(), "generated test bytes"),
        ]))));
    let (created, client) = ok(
        pds,
        client.create_record(&with_image).await,
        "createRecord with image",
    );
    let (entry, client) = ok(
        pds,
        client.get_record::<Profile>(did.clone(), self_key).await,
        "getRecord profile",
    );
    assert_eq!(entry.value.avatar.as_ref(), Some(&blob));
    let (entry, client) = ok(
        pds,
        client
            .get_record::<Post>(did.clone(), rkey_of(&created.uri))
            .await,
        "getRecord post",
    );
    assert_eq!(entry.value, with_image);

    // Downloaded as a stream, byte-identical, with its MIME type.
    let (download, client) = ok(
        pds,
        client.get_blob(did.clone(), cid_of(&blob)).await,
        "getBlob",
    );
    assert_eq!(download.content_type(), Some("image/png"));
    let chunks: Vec<_> = ok(pds, download.try_collect().await, "read the blob");
    let downloaded = chunks.concat();
    assert_eq!(downloaded.len(), content.len());
    assert!(downloaded == content, "the downloaded blob differs");

    // An unknown blob. The lexicon declares `BlobNotFound`, but the reference PDS (0.6.7)
    // answers `InvalidRequest` with the message "Blob not found"; accept either.
    let unknown = Cid::new(CidLink::for_raw(b"never uploaded").to_string()).expect("cid");
    match client.get_blob(did.clone(), unknown).await {
        Err(Error::Xrpc {
            status: 400,
            error: get_blob::Error::BlobNotFound(_),
        }) => {}
        Err(Error::Xrpc {
            status: 400,
            error: get_blob::Error::Other(body),
        }) if body.error == "InvalidRequest"
            && body.message.as_deref() == Some("Blob not found") => {}
        other => panic!("expected a blob-not-found error, got {other:?}"),
    }
}

#[tokio::test]
async fn pagination_returns_250_records_once_in_order() {
    const COUNT: usize = 250;
    let pds = require_pds!();
    let session = login(pds).await;
    let (mut client, did) = (session.client.clone(), session.did.clone());

    // Keys from one TID generator, so key order is creation order.
    let mut tids = TidGenerator::new();
    let records: Vec<(RecordKey, Post)> = (0..COUNT)
        .map(|i| {
            let key = RecordKey::new(tids.next_tid().as_str()).expect("rkey");
            (key, post(&format!("post {i:03}")))
        })
        .collect();
    for batch in records.chunks(125) {
        let writes = batch
            .iter()
            .map(|(key, post)| Write::create(post, Some(key.clone())).expect("write"))
            .collect();
        client = ok(pds, client.apply_writes(writes).await, "applyWrites").1;
    }

    // Typed records, oldest first, pages of 100.
    let listed: Vec<_> = ok(
        pds,
        client
            .list_all_records::<Post>(
                did.clone(),
                ListRecordsOptions::new().limit(100).reverse(true),
            )
            .try_collect::<Vec<_>>()
            .await,
        "list_all_records",
    );
    assert_eq!(listed.len(), COUNT);
    let keys: Vec<RecordKey> = listed.iter().map(|entry| rkey_of(&entry.uri)).collect();
    let unique: HashSet<&RecordKey> = keys.iter().collect();
    assert_eq!(unique.len(), COUNT, "every record comes back once");
    for (entry, (key, post)) in listed.iter().zip(&records) {
        assert_eq!(&rkey_of(&entry.uri), key, "oldest first");
        assert_eq!(&entry.value, post);
    }

    // The generated endpoint with `client.paginate`, newest first (the default order).
    let mut params = list_records::Params::new(
        AtIdentifier::Did(did.clone()),
        atlex::types::Nsid::new("app.bsky.feed.post").expect("nsid"),
    );
    params.limit = Some(100);
    let items: Vec<_> = ok(
        pds,
        client
            .paginate::<list_records::ListRecords>(params.clone())
            .try_collect::<Vec<_>>()
            .await,
        "paginate listRecords",
    );
    let newest_first: Vec<RecordKey> = items.iter().map(|record| rkey_of(&record.uri)).collect();
    let mut expected: Vec<RecordKey> = records.iter().map(|(key, _)| key.clone()).collect();
    expected.reverse();
    assert_eq!(newest_first, expected);

    // Pages of 100, 100 and 50. The PDS sends a cursor with every non-empty page, so the
    // stream asks once more and gets an empty last page without one.
    let sizes: Vec<usize> = client
        .pages::<list_records::ListRecords>(params)
        .map(|page| page.expect("page").records.len())
        .collect()
        .await;
    assert_eq!(sizes, vec![100, 100, 50, 0]);
}

#[tokio::test]
async fn a_missing_record_is_record_not_found() {
    let pds = require_pds!();
    let session = login(pds).await;
    let missing = RecordKey::new(TidGenerator::new().next_tid().as_str()).expect("rkey");
    match session
        .client
        .get_record::<Post>(session.did.clone(), missing)
        .await
    {
        Err(error @ Error::Xrpc { .. }) => {
            assert_eq!(error.status(), Some(400));
            assert_eq!(error.code(), Some("RecordNotFound"));
            assert!(
                matches!(
                    error.xrpc(),
                    Some(get_record::Error::RecordNotFound(Some(_)))
                ),
                "{error:?}"
            );
        }
        other => panic!("expected RecordNotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn explicit_refresh_rotates_the_tokens() {
    let pds = require_pds!();
    let session = login(pds).await;
    let (old_access, old_refresh) = stored_tokens(&session.store, &session.did).await;

    let client = ok(pds, session.client.refresh().await, "refresh");
    let (new_access, new_refresh) = stored_tokens(&session.store, &session.did).await;
    // The access token may come out byte-identical (its claims have one-second resolution and
    // no `jti`), so only the refresh token is compared.
    let _ = (old_access, new_access);
    assert_ne!(new_refresh, old_refresh, "a new refresh token is stored");
    assert_ne!(jti(&new_refresh), jti(&old_refresh));
    // Calls after the refresh work, with the new token.
    let (me, client) = ok(pds, client.server().get_session().await, "getSession");
    assert_eq!(me.did, session.did);

    // The old refresh token, by hand. The reference PDS keeps a rotated refresh token usable
    // for a grace period (two hours, bluesky-social/atproto#657) but only to re-issue the
    // *same* session: what it returns carries the jti of the token the client now holds, so
    // no second session can be forked from the old token.
    let (status, reused) = refresh_by_hand(pds, &old_refresh).await;
    match status {
        200 => {
            let reissued = reused["refreshJwt"].as_str().expect("refreshJwt");
            assert_eq!(
                jti(reissued),
                jti(&new_refresh),
                "the old refresh token forked a second session"
            );
        }
        // A PDS without the grace period rejects it outright, which is also fine.
        400 | 401 => assert!(
            matches!(
                reused["error"].as_str(),
                Some("ExpiredToken" | "InvalidToken")
            ),
            "{reused}"
        ),
        other => panic!("refreshSession with the old token: HTTP {other}: {reused}"),
    }

    // Logging out revokes the current refresh token: the PDS rejects it afterwards.
    ok(pds, client.logout().await, "logout");
    let (status, rejected) = refresh_by_hand(pds, &new_refresh).await;
    assert_eq!(
        status, 400,
        "a revoked refresh token was accepted: {rejected}"
    );
    assert_eq!(rejected["error"], json!("ExpiredToken"), "{rejected}");
    assert_eq!(
        rejected["message"],
        json!("Token has been revoked"),
        "{rejected}"
    );
    assert!(
        session
            .store
            .get(&PasswordSession::storage_key(&session.did))
            .await
            .expect("read the store")
            .is_none(),
        "logout removes the stored session"
    );
}

#[tokio::test]
async fn a_session_restored_from_sqlite_works_in_a_new_client() {
    let pds = require_pds!();
    let session = login(pds).await;
    let path = session.dir.path().join("sessions.sqlite");
    let Session {
        client, store, did, ..
    } = session;
    drop(client);
    drop(store);

    // Another "run of the program": a new store handle on the same file, a new client.
    let store: Arc<dyn SessionStore> = Arc::new(ok(
        pds,
        SqliteStore::open(&path).await,
        "reopen the SQLite store",
    ));
    let client = ok(
        pds,
        PasswordSession::restore(store.clone(), &did).await,
        "PasswordSession::restore",
    );
    assert_eq!(client.did(), Some(did.clone()));
    let (me, client) = ok(pds, client.server().get_session().await, "getSession");
    assert_eq!(me.did, did);
    let (created, _) = ok(
        pds,
        client
            .create_record(&post("written by a restored session"))
            .await,
        "createRecord",
    );
    assert_eq!(created.uri.authority(), did.as_str());

    // A DID that never logged in here.
    let stranger = Did::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").expect("did");
    match PasswordSession::restore(store, &stranger).await {
        Err(Error::Auth(error @ AuthError::NoSession { .. })) => {
            assert!(error.requires_login());
            assert!(error.to_string().contains(stranger.as_str()), "{error}");
        }
        other => panic!("expected NoSession, got {other:?}"),
    }
}

#[tokio::test]
async fn namespace_accessors_work_against_the_pds() {
    let pds = require_pds!();
    let session = login(pds).await;
    let (client, did) = (&session.client, &session.did);
    let (_, client) = ok(
        pds,
        client
            .create_record(&post("so describeRepo lists a collection"))
            .await,
        "createRecord",
    );

    let (repo, client) = ok(
        pds,
        client
            .repo()
            .describe_repo(describe_repo::Params::new(AtIdentifier::Did(did.clone())))
            .await,
        "describeRepo",
    );
    assert_eq!(repo.did, *did);
    assert_eq!(repo.handle.as_str(), session.account.handle);
    assert!(repo.handle_is_correct);
    assert!(
        repo.collections
            .iter()
            .any(|nsid| nsid.as_str() == "app.bsky.feed.post"),
        "{:?}",
        repo.collections
    );
    assert_eq!(
        repo.did_doc.get("id").and_then(|id| id.as_str()),
        Some(did.as_str())
    );

    let (me, client) = ok(pds, client.server().get_session().await, "getSession");
    assert_eq!(me.did, *did);
    let (server, client) = ok(
        pds,
        client.server().describe_server().await,
        "describeServer",
    );
    assert!(
        server
            .available_user_domains
            .iter()
            .any(|domain| domain == pds.handle_domain())
    );

    // Preferences live on the PDS (no AppView needed): write one, read it back.
    let (_, client) = ok(
        pds,
        client
            .app_bsky()
            .actor()
            .put_preferences(put_preferences::Input::new(vec![
                PreferencesItem::AdultContentPref(Box::new(AdultContentPref::new(true))),
            ]))
            .await,
        "putPreferences",
    );
    let (prefs, _) = ok(
        pds,
        client
            .app_bsky()
            .actor()
            .get_preferences(get_preferences::Params::new())
            .await,
        "getPreferences",
    );
    assert_eq!(
        prefs.preferences,
        vec![PreferencesItem::AdultContentPref(Box::new(
            AdultContentPref::new(true)
        ))]
    );
}

#[tokio::test]
async fn untyped_get_and_post_work_against_the_pds() {
    let pds = require_pds!();
    let session = login(pds).await;
    let (client, did) = (&session.client, &session.did);

    let (created, client) = ok(
        pds,
        client
            .post(
                "com.atproto.repo.createRecord",
                json!({
                    "repo": did.as_str(),
                    "collection": "app.bsky.feed.post",
                    "record": {
                        "$type": "app.bsky.feed.post",
                        "text": "untyped hello",
                        "createdAt": "2025-01-02T03:04:05.678Z",
                    },
                }),
            )
            .await,
        "post createRecord",
    );
    let uri = created["uri"].as_str().expect("uri").to_owned();
    let rkey = uri.rsplit('/').next().expect("rkey").to_owned();

    let (record, client) = ok(
        pds,
        client
            .get(
                "com.atproto.repo.getRecord",
                json!({"repo": did.as_str(), "collection": "app.bsky.feed.post", "rkey": rkey}),
            )
            .await,
        "get getRecord",
    );
    assert_eq!(record["uri"], json!(uri));
    assert_eq!(record["value"]["text"], json!("untyped hello"));
    assert_eq!(record["cid"], created["cid"]);

    // And the typed view of the same record agrees.
    let (entry, client) = ok(
        pds,
        client
            .get_record::<Post>(did.clone(), RecordKey::new(rkey.clone()).expect("rkey"))
            .await,
        "getRecord typed",
    );
    assert_eq!(entry.value, post("untyped hello"));

    // An XRPC error through the untyped path keeps its name.
    let error = client
        .get(
            "com.atproto.repo.getRecord",
            json!({"repo": did.as_str(), "collection": "app.bsky.feed.post", "rkey": "3zzzzzzzzzzzz"}),
        )
        .await
        .expect_err("a missing record");
    assert_eq!(error.code(), Some("RecordNotFound"), "{error}");
}

#[tokio::test]
async fn invalid_input_is_rejected_before_sending() {
    let pds = require_pds!();
    let session = login(pds).await;
    let (client, did) = (&session.client, &session.did);

    // 301 graphemes (each `e` + a combining acute accent: 602 code points, 903 bytes, under the
    // 3000-byte limit) break `maxGraphemes: 300`.
    let too_long = post(&"e\u{301}".repeat(301));
    match client.create_record(&too_long).await {
        Err(Error::Validation { part, errors }) => {
            assert_eq!(part, RequestPart::Input);
            assert!(errors.to_string().contains("text"), "{errors}");
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    match Write::create(&too_long, None) {
        Err(Error::Validation {
            part: RequestPart::Input,
            ..
        }) => {}
        other => panic!("expected Write::create to reject the post, got {other:?}"),
    }
    // Parameters too: `limit` is at most 100.
    match client
        .list_records::<Post>(did.clone(), ListRecordsOptions::new().limit(101))
        .await
    {
        Err(Error::Validation { part, errors }) => {
            assert_eq!(part, RequestPart::Params);
            assert!(errors.to_string().contains("limit"), "{errors}");
        }
        other => panic!("expected a validation error, got {other:?}"),
    }

    // Exactly 300 graphemes is fine, and it is the only post that reached the PDS.
    let longest = post(&"e\u{301}".repeat(300));
    let (_, client) = ok(pds, client.create_record(&longest).await, "createRecord");
    let (page, _) = ok(
        pds,
        client
            .list_records::<Post>(did.clone(), ListRecordsOptions::new())
            .await,
        "listRecords",
    );
    let values: Vec<&Post> = page.records.iter().map(|entry| &entry.value).collect();
    assert_eq!(values, vec![&longest]);
}
