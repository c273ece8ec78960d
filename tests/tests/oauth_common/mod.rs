//! What the OAuth tests against the reference PDS share: an `OAuthClient` for the PDS
//! (loopback client, `allow_http`, identity through the PDS and its PLC), the sign-in driver,
//! and a hand-made DPoP request for what the client itself never sends (replays).

#![allow(dead_code)]

use std::sync::Arc;

use atlex::auth::oauth::dpop::{NonceCache, proof};
use atlex::auth::oauth::{
    AuthorizeOptions, Authorized, CallbackParams, ClientMetadata, Es256Key, OAuthClient,
};
use atlex::auth::{SessionKey, SessionStore, SqliteStore};
use atlex::identity::{HandleMethod, IdentityResolver};
use atlex::types::Did;
use atlex_pds_harness::oauth::{Callback, Decision, Driver};
use atlex_tests::pds::{Pds, TestAccount};
use serde_json::Value;
use url::Url;

/// The registered (portless) loopback redirect URI, and the one used (any port matches).
pub const REGISTERED: &str = "http://127.0.0.1/callback";
pub const REDIRECT: &str = "http://127.0.0.1:54321/callback";

pub fn resolver(pds: &Pds) -> IdentityResolver {
    IdentityResolver::builder()
        .plc_url(pds.plc_url())
        .handle_methods([HandleMethod::Xrpc(Url::parse(pds.url()).unwrap())])
        .allow_http(true)
        .build()
        .unwrap()
}

pub fn oauth(pds: &Pds, scope: &str, store: Arc<dyn SessionStore>) -> OAuthClient {
    let metadata = ClientMetadata::loopback(&[REGISTERED], scope).unwrap();
    OAuthClient::builder(metadata)
        .session_store(store)
        .identity_resolver(resolver(pds))
        .allow_http(true)
        .build()
        .unwrap()
}

pub async fn sqlite(dir: &tempfile::TempDir) -> Arc<SqliteStore> {
    Arc::new(
        SqliteStore::open(dir.path().join("oauth.sqlite"))
            .await
            .unwrap(),
    )
}

/// `authorize` → the driver signs in and decides → the callback parameters.
pub async fn sign_in(
    oauth: &OAuthClient,
    driver: &mut Driver,
    account: &TestAccount,
    options: AuthorizeOptions,
    decision: Decision,
) -> Callback {
    let url = oauth
        .authorize(&account.handle, options.redirect_uri(REDIRECT))
        .await
        .unwrap_or_else(|error| panic!("authorize: {error}"));
    let names: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    assert_eq!(names, ["client_id", "request_uri"], "{url}");
    driver
        .authorize(url.as_str(), &account.handle, &account.password, decision)
        .await
        .unwrap_or_else(|error| panic!("driver: {error}"))
}

pub async fn login(
    oauth: &OAuthClient,
    account: &TestAccount,
    options: AuthorizeOptions,
) -> Authorized {
    let mut driver = Driver::new().unwrap();
    let callback = sign_in(oauth, &mut driver, account, options, Decision::Accept).await;
    oauth
        .callback(CallbackParams::from_pairs(callback.params()))
        .await
        .unwrap_or_else(|error| panic!("callback: {error}"))
}

pub fn did(account: &TestAccount) -> Did {
    Did::new(account.did.clone()).unwrap()
}

/// The stored JSON of the account's default session (`oauth:<did>`).
pub async fn stored(store: &dyn SessionStore, did: &Did) -> Option<Value> {
    stored_at(store, &OAuthClient::session_key(did, None)).await
}

/// The stored JSON of the session under `key`.
pub async fn stored_at(store: &dyn SessionStore, key: &SessionKey) -> Option<Value> {
    store
        .get(&key.to_string())
        .await
        .unwrap()
        .map(|data| serde_json::from_str(data.as_str()).unwrap())
}

/// The session's DPoP key, from the store.
pub fn dpop_key(stored: &Value) -> Es256Key {
    Es256Key::from_jwk(&stored["dpop_key"]).unwrap()
}

/// A DPoP-signed request made by hand (one retry on a nonce challenge): a form POST to the
/// authorization server (`access_token` None) or a GET to the PDS with `Authorization: DPoP`.
pub async fn by_hand(
    key: &Es256Key,
    method: &str,
    url: &str,
    form: &[(&str, &str)],
    access_token: Option<&str>,
) -> (u16, Value, Option<String>) {
    let http = reqwest::Client::new();
    let nonces = NonceCache::new();
    let url = Url::parse(url).unwrap();
    let origin = url.origin().ascii_serialization();
    for _ in 0..2 {
        let (dpop, _) = proof(key, method, &url, &nonces, access_token).unwrap();
        let mut request = if method == "GET" {
            http.get(url.clone())
        } else {
            http.post(url.clone()).form(form)
        };
        request = request.header("DPoP", dpop);
        if let Some(token) = access_token {
            request = request.header("Authorization", format!("DPoP {token}"));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let www = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Some(nonce) = response.headers().get("dpop-nonce") {
            nonces.put(&origin, nonce.to_str().unwrap());
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let challenge = (status == 400 && body["error"] == "use_dpop_nonce")
            || (status == 401 && www.as_deref().is_some_and(|w| w.contains("use_dpop_nonce")));
        if !challenge {
            return (status, body, www);
        }
    }
    panic!("two nonce challenges in a row from {url}");
}

/// The authorization server's token endpoint (from the PDS's metadata).
pub async fn token_endpoint(pds: &Pds) -> String {
    let asm: Value = reqwest::get(format!(
        "{}/.well-known/oauth-authorization-server",
        pds.url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    asm["token_endpoint"].as_str().unwrap().to_owned()
}
