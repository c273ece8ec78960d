//! Password-session refresh against the real session stores (memory, file, SQLite): one
//! refresh for many concurrent callers, adoption of tokens refreshed through another store
//! instance on the same file or database (as another process would), removal on rejection.

mod support;

use std::sync::Arc;

use atlex::auth::{AuthError, FileStore, MemoryStore, PasswordSession, SessionStore, SqliteStore};
use atlex::types::Did;
use atlex::xrpc::{Client, Error, NoBody};
use serde_json::json;
use support::*;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const DID: &str = "did:plc:alice";
const KEY: &str = "password:did:plc:alice";

fn did() -> Did {
    Did::new(DID).unwrap()
}

struct Tokens {
    a1: String,
    r1: String,
    a2: String,
    r2: String,
}

/// A mock PDS whose `getThing` accepts only the second access token and whose
/// `refreshSession` swaps the first refresh token for the second pair.
async fn pds(expired: bool) -> (MockServer, Tokens) {
    let server = MockServer::start().await;
    let tokens = Tokens {
        a1: jwt("access-1", if expired { -10 } else { 7200 }),
        r1: jwt("refresh-1", 86400),
        a2: jwt("access-2", 7200),
        r2: jwt("refresh-2", 86400),
    };
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.server.refreshSession"))
        .and(header(
            "authorization",
            format!("Bearer {}", tokens.r1).as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "accessJwt": tokens.a2, "refreshJwt": tokens.r2, "handle": "alice.test", "did": DID,
        })))
        .mount(&server)
        .await;
    Mock::given(path("/xrpc/com.example.getThing"))
        .and(header(
            "authorization",
            format!("Bearer {}", tokens.a2).as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"things": ["fresh"]})))
        .mount(&server)
        .await;
    Mock::given(path("/xrpc/com.example.getThing"))
        .and(header(
            "authorization",
            format!("Bearer {}", tokens.a1).as_str(),
        ))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": "ExpiredToken"})))
        .mount(&server)
        .await;
    (server, tokens)
}

async fn seed(store: &dyn SessionStore, server: &MockServer, tokens: &Tokens) {
    let session = json!({
        "version": 1, "did": DID, "handle": "alice.test",
        "accessJwt": tokens.a1, "refreshJwt": tokens.r1,
        "serviceUrl": server.uri(), "pdsUrl": server.uri(),
    });
    store
        .set(KEY, &atlex::auth::SessionData::new(session.to_string()))
        .await
        .unwrap();
}

async fn restore(server: &MockServer, store: Arc<dyn SessionStore>) -> Client {
    let base = Client::builder(server.uri())
        .retry(fast_retry(1))
        .build()
        .unwrap();
    PasswordSession::restore_with(&base, store, &did())
        .await
        .unwrap()
}

async fn stored_refresh(store: &dyn SessionStore) -> Option<String> {
    let data = store.get(KEY).await.unwrap()?;
    let value: serde_json::Value = serde_json::from_str(data.as_str()).unwrap();
    value["refreshJwt"].as_str().map(str::to_owned)
}

/// Opens a second handle on the same storage, as another process would.
type Opener = Box<dyn Fn() -> futures::future::BoxFuture<'static, Arc<dyn SessionStore>>>;

fn memory() -> (Arc<dyn SessionStore>, Opener) {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let shared = store.clone();
    let opener: Opener = Box::new(move || {
        let shared = shared.clone();
        Box::pin(async move { shared })
    });
    (store, opener)
}

async fn file(dir: &tempfile::TempDir) -> (Arc<dyn SessionStore>, Opener) {
    let path = dir.path().to_owned();
    let store: Arc<dyn SessionStore> = Arc::new(FileStore::open(&path).await.unwrap());
    let opener: Opener = Box::new(move || {
        let path = path.clone();
        Box::pin(
            async move { Arc::new(FileStore::open(&path).await.unwrap()) as Arc<dyn SessionStore> },
        )
    });
    (store, opener)
}

async fn sqlite(dir: &tempfile::TempDir) -> (Arc<dyn SessionStore>, Opener) {
    let path = dir.path().join("sessions.db");
    let store: Arc<dyn SessionStore> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let opener: Opener = Box::new(move || {
        let path = path.clone();
        Box::pin(async move {
            Arc::new(SqliteStore::open(&path).await.unwrap()) as Arc<dyn SessionStore>
        })
    });
    (store, opener)
}

async fn single_flight(store: Arc<dyn SessionStore>) {
    let (server, tokens) = pds(true).await;
    seed(&*store, &server, &tokens).await;
    let client = restore(&server, store.clone()).await;
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
    assert_eq!(hits(&server, "com.atproto.server.refreshSession").await, 1);
    assert_eq!(stored_refresh(&*store).await, Some(tokens.r2));
}

async fn adoption_across_instances(store: Arc<dyn SessionStore>, open_again: Opener) {
    let (server, tokens) = pds(false).await;
    seed(&*store, &server, &tokens).await;
    let first = restore(&server, store.clone()).await;
    let second = restore(&server, open_again().await).await;
    first.refresh().await.unwrap();
    // The second instance is told its token expired, re-reads the shared storage under the
    // lock and adopts the rotated tokens instead of refreshing with a dead refresh token.
    let (output, _) = second.call::<GetThing>(params("a"), NoBody).await.unwrap();
    assert_eq!(output.things, vec!["fresh"]);
    assert_eq!(hits(&server, "com.atproto.server.refreshSession").await, 1);
}

async fn rejection_removes(store: Arc<dyn SessionStore>) {
    let server = MockServer::start().await;
    let tokens = Tokens {
        a1: jwt("access-1", -10),
        r1: jwt("refresh-1", 86400),
        a2: String::new(),
        r2: String::new(),
    };
    Mock::given(path("/xrpc/com.atproto.server.refreshSession"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "InvalidToken"})))
        .mount(&server)
        .await;
    seed(&*store, &server, &tokens).await;
    let client = restore(&server, store.clone()).await;
    let error = client
        .call::<GetThing>(params("a"), NoBody)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Auth(AuthError::SessionExpired { .. })),
        "{error:?}"
    );
    assert!(store.get(KEY).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store() {
    let (store, _) = memory();
    single_flight(store).await;
    let (store, open_again) = memory();
    adoption_across_instances(store, open_again).await;
    let (store, _) = memory();
    rejection_removes(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_store() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = file(&dir).await;
    single_flight(store).await;
    let dir = tempfile::tempdir().unwrap();
    let (store, open_again) = file(&dir).await;
    adoption_across_instances(store, open_again).await;
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = file(&dir).await;
    rejection_removes(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = sqlite(&dir).await;
    single_flight(store).await;
    let dir = tempfile::tempdir().unwrap();
    let (store, open_again) = sqlite(&dir).await;
    adoption_across_instances(store, open_again).await;
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = sqlite(&dir).await;
    rejection_removes(store).await;
}
