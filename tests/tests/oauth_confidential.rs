//! A confidential OAuth client (`private_key_jwt`, ES256 keyset) end to end against the
//! reference PDS (checklist rows 47, 48, 51). The app is a discoverable client named
//! `https://conf.atlex.internal:<port>/…`: `tests/pds/start.mjs` makes the PDS fetch such URLs
//! from `http://127.0.0.1:<port>/…`, where a local server serves the client's metadata
//! document and public JWKS exactly as an app would (`OAuthClient::client_metadata_document`,
//! `OAuthClient::jwks`). Sign-in and consent are driven headless by
//! `atlex_pds_harness::oauth::Driver`.
//!
//! * Row 47: every request to the authorization server (PAR, token, refresh, revocation)
//!   carries a client assertion, and the PDS verifies each one (signature with the JWKS key
//!   named by `kid`, `iss`/`sub` = client id, `aud`, freshness, a `jti` never seen before):
//!   sign-in, two refreshes and sign-out succeeding is only possible with a fresh assertion
//!   per request. The claims themselves are checked by `keyset::tests::assertion_claims`.
//! * Row 48: the `{method, kid}` negotiated at sign-in is stored with the session and reused
//!   by every refresh, even by a process whose keyset puts another key first (the PDS binds
//!   the session to the key it was created with and refuses any other); a session whose key
//!   left the keyset is deleted on refresh with a typed error and a `Deleted` event.
//! * Row 51: the metadata document the app serves has its own URL as `client_id` and
//!   validates, both for the test's app and for the `oauth_webapp` example, which is also
//!   run headless: two browsers sign in to one account, one signs out, the other stays
//!   signed in (one OAuth session per browser).
//!
//! Without a PDS these are skipped with a note, except under `CI=true`, where they fail. The
//! example test also needs the example built (`cargo build -p atlex --example oauth_webapp
//! --features sqlite,app-bsky`, or `$ATLEX_OAUTH_WEBAPP_BIN`), with the same rule.

mod oauth_common;

use std::sync::Arc;

use atlex::auth::oauth::{
    AuthorizeOptions, CallbackParams, ClientMetadata, DeleteCause, Keyset, OAuthClient, OAuthError,
    SessionEvent,
};
use atlex::auth::{AuthError, SessionStore};
use atlex_pds_harness::oauth::{Decision, Driver};
use atlex_tests::pds::{Pds, TestAccount};
use atlex_tests::require_pds;
use oauth_common::{did, resolver, sqlite, stored};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SCOPE: &str = "atproto transition:generic";

/// The app's web server: its client metadata document and JWKS, on 127.0.0.1 under the
/// loopback-domain name the PDS maps there.
struct App {
    server: MockServer,
    metadata: ClientMetadata,
    /// Both keys, `k1` and `k2` (private JWKS).
    keys: Value,
}

impl App {
    /// Serves the metadata of a confidential client whose JWKS lists `k1` and `k2`.
    async fn start() -> App {
        let server = MockServer::start().await;
        let base = format!("https://conf.atlex.internal:{}", server.address().port());
        let metadata = ClientMetadata::discoverable(
            &format!("{base}/client-metadata.json"),
            &[format!("{base}/callback")],
            SCOPE,
        )
        .confidential(&format!("{base}/jwks.json"))
        .with_name("atlex confidential client test");
        let private = |keyset: &Keyset| -> Value {
            serde_json::from_str(keyset.to_private_jwks().expose()).unwrap()
        };
        let k1 = private(&Keyset::generate("k1").unwrap());
        let k2 = private(&Keyset::generate("k2").unwrap());
        let keys = json!({ "keys": [k1["keys"][0], k2["keys"][0]] });
        let app = App {
            server,
            metadata,
            keys,
        };
        // What the app serves: the client's own document and the public half of its keys.
        let oauth_document = app.metadata.to_document();
        let public = app.keyset(&["k1", "k2"]).public_jwks();
        Mock::given(method("GET"))
            .and(path("/client-metadata.json"))
            .respond_with(ResponseTemplate::new(200).set_body_json(oauth_document))
            .mount(&app.server)
            .await;
        Mock::given(method("GET"))
            .and(path("/jwks.json"))
            .respond_with(ResponseTemplate::new(200).set_body_json(public))
            .mount(&app.server)
            .await;
        app
    }

    /// A keyset of the named keys, in that order (the first is the one new sign-ins use).
    fn keyset(&self, kids: &[&str]) -> Keyset {
        let keys: Vec<Value> = kids
            .iter()
            .map(|kid| {
                self.keys["keys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|key| key["kid"] == *kid)
                    .unwrap()
                    .clone()
            })
            .collect();
        Keyset::from_private_jwks(&json!({ "keys": keys })).unwrap()
    }

    /// An OAuth client process of the app with the keys `kids`.
    fn client(&self, pds: &Pds, kids: &[&str], store: Arc<dyn SessionStore>) -> OAuthClient {
        OAuthClient::builder(self.metadata.clone())
            .keyset(self.keyset(kids))
            .session_store(store)
            .identity_resolver(resolver(pds))
            .allow_http(true)
            .build()
            .unwrap()
    }

    /// How many times the PDS fetched `path` from the app.
    async fn fetches(&self, path: &str) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|request| request.url.path() == path)
            .count()
    }
}

/// Authorize → sign in and consent → the callback, for a client redirecting to the app's
/// `https` callback.
async fn sign_in(oauth: &OAuthClient, account: &TestAccount) -> atlex::auth::oauth::Authorized {
    let url = oauth
        .authorize(&account.handle, AuthorizeOptions::new())
        .await
        .unwrap_or_else(|error| panic!("authorize: {error}"));
    let callback = Driver::new()
        .unwrap()
        .authorize(
            url.as_str(),
            &account.handle,
            &account.password,
            Decision::Accept,
        )
        .await
        .unwrap_or_else(|error| panic!("driver: {error}"));
    assert!(
        callback
            .url
            .as_str()
            .starts_with(&format!("{}?", oauth.metadata().redirect_uris[0])),
        "{}",
        callback.url
    );
    oauth
        .callback(CallbackParams::from_pairs(callback.params()))
        .await
        .unwrap_or_else(|error| panic!("callback: {error}"))
}

#[tokio::test]
async fn a_confidential_client_signs_in_calls_and_refreshes_with_its_session_key() {
    let pds = require_pds!();
    let account = pds.create_account().await.unwrap();
    let did = did(&account);
    let app = App::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;

    // Sign-in negotiates private_key_jwt with the keyset's first key, stored with the session.
    let first = app.client(pds, &["k1", "k2"], store.clone());
    let done = sign_in(&first, &account).await;
    assert_eq!(done.session.did, did);
    assert!(app.fetches("/client-metadata.json").await >= 1);
    assert!(
        app.fetches("/jwks.json").await >= 1,
        "the PDS verified the assertion with the served JWKS"
    );
    let signed_in = stored(store.as_ref(), &did).await.unwrap();
    assert_eq!(
        signed_in["auth_method"],
        json!({"method": "private_key_jwt", "kid": "k1"})
    );

    let (me, client) = done.client.server().get_session().await.unwrap();
    assert_eq!(me.did, did);
    let (value, client) = client
        .get(
            "com.atproto.repo.describeRepo",
            json!({ "repo": did.as_str() }),
        )
        .await
        .unwrap();
    assert_eq!(value["did"], did.as_str());

    // Two refreshes: each token request with a new assertion (the PDS refuses a replayed
    // `jti`), each keeping `{method, kid}`.
    let client = client.refresh().await.unwrap();
    let client = client.refresh().await.unwrap();
    let refreshed = stored(store.as_ref(), &did).await.unwrap();
    assert_ne!(signed_in["refresh_token"], refreshed["refresh_token"]);
    assert_eq!(refreshed["auth_method"], signed_in["auth_method"]);
    let (me, _client) = client.server().get_session().await.unwrap();
    assert_eq!(me.did, did);

    // Another process of the app whose keyset puts `k2` first (a key rotation under way):
    // it refreshes the session with `k1`, the key the session is bound to; the PDS would
    // refuse `k2` for it.
    let rotated = app.client(pds, &["k2", "k1"], store.clone());
    let client = rotated.restore(&did).await.unwrap();
    let client = client.refresh().await.unwrap();
    let (me, client) = client.server().get_session().await.unwrap();
    assert_eq!(me.did, did);
    assert_eq!(
        stored(store.as_ref(), &did).await.unwrap()["auth_method"],
        json!({"method": "private_key_jwt", "kid": "k1"})
    );

    // Sign-out (revocation, with an assertion too) ends it at the server.
    client.logout().await.unwrap();
    assert!(stored(store.as_ref(), &did).await.is_none());
    assert!(matches!(
        rotated.restore(&did).await,
        Err(OAuthError::NoSession { .. })
    ));
}

#[tokio::test]
async fn a_session_whose_client_key_left_the_keyset_is_deleted_on_refresh() {
    let pds = require_pds!();
    let account = pds.create_account().await.unwrap();
    let did = did(&account);
    let app = App::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let old = app.client(pds, &["k1"], store.clone());
    let done = sign_in(&old, &account).await;
    let (me, _) = done.client.server().get_session().await.unwrap();
    assert_eq!(me.did, did);

    // The app now runs with `k2` only: the session, bound to `k1`, cannot be refreshed.
    let new = app.client(pds, &["k2"], store.clone());
    let mut events = new.events();
    let client = new.restore(&did).await.unwrap();
    let error = client.refresh().await.unwrap_err();
    match &error {
        AuthError::SessionExpired { reason } => {
            assert!(reason.contains("\"k1\""), "{reason}");
            assert!(reason.contains("no longer in the keyset"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(error.requires_login(), "{error}");
    match events.recv().await.unwrap() {
        SessionEvent::Deleted {
            did: gone, cause, ..
        } => {
            assert_eq!(gone, did);
            assert_eq!(
                cause,
                DeleteCause::ClientKeyRemoved {
                    kid: "k1".to_owned()
                }
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(stored(store.as_ref(), &did).await.is_none(), "deleted");
    assert!(matches!(
        new.restore(&did).await,
        Err(OAuthError::NoSession { .. })
    ));

    // Signing in again binds the new session to `k2`, which refreshes.
    let done = sign_in(&new, &account).await;
    assert_eq!(
        stored(store.as_ref(), &did).await.unwrap()["auth_method"],
        json!({"method": "private_key_jwt", "kid": "k2"})
    );
    let client = done.client.refresh().await.unwrap();
    let (me, _) = client.server().get_session().await.unwrap();
    assert_eq!(me.did, did);
}

/// Row 51: what the app serves at its `client_id` URL is a valid metadata document naming
/// that URL, and its `jwks_uri` serves the public keys only.
#[tokio::test]
async fn the_served_metadata_document_names_its_own_url_and_validates() {
    let app = App::start().await;
    let client_id = app.metadata.client_id.clone();
    // The app's URL as the PDS reaches it (the loopback-domain mapping of `start.mjs`).
    let local = |url: &str| {
        let url = url::Url::parse(url).unwrap();
        format!("http://127.0.0.1:{}{}", url.port().unwrap(), url.path())
    };
    let response = reqwest::get(local(&client_id)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json")),
        "{:?}",
        response.headers()
    );
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["client_id"], client_id.as_str());
    let served = ClientMetadata::from_document(&document).unwrap();
    assert_eq!(served, app.metadata);
    assert!(served.is_confidential());

    let jwks: Value = reqwest::get(local(served.jwks_uri.as_deref().unwrap()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for key in keys {
        assert!(key.get("d").is_none(), "a private part is served: {key}");
        assert_eq!(key["alg"], "ES256");
    }

    // The check can fail: a document breaking a rule does not validate.
    let mut broken = document.clone();
    broken["dpop_bound_access_tokens"] = json!(false);
    assert!(ClientMetadata::from_document(&broken).is_err());
}

/// The `oauth_webapp` example process (killed when dropped).
struct WebApp(std::process::Child);

impl Drop for WebApp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An app session cookie: what a browser sends back.
async fn browser_sign_in(http: &reqwest::Client, local: &str, account: &TestAccount) -> String {
    let login = http
        .post(format!("{local}/login"))
        .form(&[("handle", account.handle.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303, "POST /login");
    let authorize = login.headers()["location"].to_str().unwrap().to_owned();
    let callback = Driver::new()
        .unwrap()
        .authorize(
            &authorize,
            &account.handle,
            &account.password,
            Decision::Accept,
        )
        .await
        .unwrap_or_else(|error| panic!("driver: {error}"));
    // The browser follows the PDS's redirect to the app's https callback, which the
    // loopback-domain mapping sends to the app's plain-HTTP listener.
    let back = http
        .get(format!(
            "{local}{}?{}",
            callback.url.path(),
            callback.url.query().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 303, "GET /callback");
    let cookie = back.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

/// The app's home page as the browser with `cookie` sees it.
async fn home(http: &reqwest::Client, local: &str, cookie: &str) -> String {
    let page = http
        .get(format!("{local}/"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    page.text().await.unwrap()
}

/// The `oauth_webapp` example (a confidential client) without a browser: it serves its
/// metadata at its `client_id` (row 51, the app itself), two browsers sign in to one account,
/// and signing out of one leaves the other signed in (one OAuth session per browser).
/// Needs the example built (`cargo build -p atlex --example oauth_webapp --features
/// sqlite,app-bsky`; `$ATLEX_OAUTH_WEBAPP_BIN`); skipped without it, failing under `CI=true`.
#[tokio::test(flavor = "multi_thread")]
async fn the_web_app_example_serves_its_metadata_and_keeps_one_session_per_browser() {
    let pds = require_pds!();
    let bin = std::env::var_os("ATLEX_OAUTH_WEBAPP_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            atlex_tests::data::workspace_root().join("target/debug/examples/oauth_webapp")
        });
    if !bin.exists() {
        let reason = format!(
            "no web-app binary at {} (cargo build -p atlex --example oauth_webapp --features \
             sqlite,app-bsky)",
            bin.display()
        );
        assert!(!atlex_tests::data::is_ci(), "CI=true: {reason}");
        eprintln!("skipping: {reason}");
        atlex_tests::data::note_skip(&reason);
        return;
    }
    let account = pds.create_account().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let public = format!("https://webapp.atlex.internal:{port}");
    let local = format!("http://127.0.0.1:{port}");
    let mut child = std::process::Command::new(&bin)
        .args([
            "--public-url",
            &public,
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--keys",
            dir.path().join("keys.json").to_str().unwrap(),
            "--generate-keys",
            "--store",
            &format!("sqlite:{}", dir.path().join("app.sqlite3").display()),
        ])
        .envs(pds.env_vars())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _app = WebApp(child);
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    loop {
        match lines.next() {
            Some(Ok(line)) if line.starts_with("listening on ") => break,
            Some(Ok(_)) => {}
            other => panic!("the web app exited before listening: {other:?}"),
        }
    }
    std::thread::spawn(move || lines.for_each(drop));

    // Row 51, the app itself: its document at its client_id names that URL and validates.
    let client_id = format!("{public}/client-metadata.json");
    let document: Value = reqwest::get(format!("{local}/client-metadata.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(document["client_id"], client_id.as_str());
    let served = ClientMetadata::from_document(&document).unwrap();
    assert!(served.is_confidential());
    assert_eq!(
        served.jwks_uri.as_deref(),
        Some(&*format!("{public}/jwks.json"))
    );
    let jwks: Value = reqwest::get(format!("{local}/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(jwks["keys"][0]["kid"].is_string(), "{jwks}");
    assert!(jwks["keys"][0].get("d").is_none(), "{jwks}");

    // Two browsers, one account.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let first = browser_sign_in(&http, &local, &account).await;
    let second = browser_sign_in(&http, &local, &account).await;
    assert_ne!(first, second);
    let signed_in = format!("<code id=did>{}</code>", account.did);
    let page = home(&http, &local, &first).await;
    assert!(page.contains(&signed_in), "{page}");
    assert!(home(&http, &local, &second).await.contains(&signed_in));

    // The first browser signs out; the second stays signed in, its calls still working.
    let csrf = page
        .split("name=csrf value=")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .unwrap()
        .to_owned();
    let out = http
        .post(format!("{local}/logout"))
        .header("cookie", &first)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let page = home(&http, &local, &first).await;
    assert!(page.contains("id=sign-in"), "signed out: {page}");
    let page = home(&http, &local, &second).await;
    assert!(page.contains(&signed_in), "the other browser: {page}");
    assert!(page.contains("<ul id=posts>"), "{page}");
}
