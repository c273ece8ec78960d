//! The headless sign-in and consent driver (`atlex_pds_harness::oauth`) against the reference
//! PDS, with a raw pushed authorization request (no OAuth client of ours involved): accepting
//! gives a code that the token endpoint exchanges for the account's tokens, rejecting gives
//! `access_denied` with the state, and a wrong password fails at sign-in without showing it.
//!
//! The DPoP proofs the token endpoint requires are made by hand here (ES256 over the
//! atlex-types key, the JWK from p256), so the test depends on nothing but the harness.

use atlex_pds_harness::oauth::{Decision, Driver};
use atlex_tests::pds::{Pds, TestAccount};
use atlex_tests::require_pds;
use atlex_types::crypto::{Algorithm, PrivateKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const SCOPE: &str = "atproto transition:generic";
/// The registered redirect URI is portless; a loopback client may use any port (RFC 8252).
const REDIRECT_URI: &str = "http://127.0.0.1:54321/callback";

fn client_id() -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("redirect_uri", "http://127.0.0.1/callback")
        .append_pair("scope", SCOPE)
        .finish();
    format!("http://localhost?{query}")
}

fn random_b64(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).unwrap();
    B64.encode(bytes)
}

fn sha256_b64(text: &str) -> String {
    B64.encode(Sha256::digest(text.as_bytes()))
}

/// A DPoP key and the one nonce the PDS handed out.
struct Dpop {
    key: PrivateKey,
    jwk: Value,
    nonce: Option<String>,
}

impl Dpop {
    fn new() -> Dpop {
        let key = PrivateKey::generate(Algorithm::P256).unwrap();
        let signing = p256::ecdsa::SigningKey::from_slice(&key.to_bytes()).unwrap();
        let point = signing.verifying_key().to_sec1_point(false);
        let bytes = point.as_bytes();
        assert_eq!(bytes.len(), 65);
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": B64.encode(&bytes[1..33]),
            "y": B64.encode(&bytes[33..65]),
        });
        Dpop {
            key,
            jwk,
            nonce: None,
        }
    }

    fn proof(&self, method: &str, url: &str) -> String {
        let header = json!({ "alg": "ES256", "typ": "dpop+jwt", "jwk": self.jwk });
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut payload = json!({ "jti": random_b64(16), "htm": method, "htu": url, "iat": now });
        if let Some(nonce) = &self.nonce {
            payload["nonce"] = json!(nonce);
        }
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(payload.to_string())
        );
        let signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", B64.encode(signature))
    }

    /// POSTs a form to the authorization server with a proof, retrying once on
    /// `use_dpop_nonce`.
    async fn post_form(
        &mut self,
        http: &reqwest::Client,
        url: &str,
        form: &[(&str, &str)],
    ) -> (u16, Value) {
        for _ in 0..2 {
            let response = http
                .post(url)
                .header("DPoP", self.proof("POST", url))
                .form(form)
                .send()
                .await
                .unwrap();
            if let Some(nonce) = response.headers().get("dpop-nonce") {
                self.nonce = Some(nonce.to_str().unwrap().to_owned());
            }
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            if status == 400 && body["error"] == "use_dpop_nonce" {
                continue;
            }
            return (status, body);
        }
        panic!("{url}: two use_dpop_nonce answers in a row");
    }
}

/// One pending authorization: what the client keeps between PAR and the callback.
struct Pending {
    authorize_url: String,
    state: String,
    verifier: String,
    issuer: String,
    token_endpoint: String,
    dpop: Dpop,
}

/// The authorization server's metadata, found from the PDS as a client would.
async fn as_metadata(pds: &Pds) -> Value {
    let http = pds.http();
    let prm: Value = http
        .get(format!(
            "{}/.well-known/oauth-protected-resource",
            pds.url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let issuer = prm["authorization_servers"][0].as_str().unwrap().to_owned();
    let asm: Value = http
        .get(format!("{issuer}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(asm["issuer"], json!(issuer), "{asm}");
    asm
}

/// A pushed authorization request for `account` (PKCE S256, with a DPoP proof, as a real
/// client sends it), and the authorization URL to send the user to.
async fn par(pds: &Pds, account: &TestAccount) -> Pending {
    par_for(pds, account, &client_id(), REDIRECT_URI).await
}

async fn par_for(pds: &Pds, account: &TestAccount, client_id: &str, redirect_uri: &str) -> Pending {
    let asm = as_metadata(pds).await;
    let verifier = random_b64(32);
    let state = random_b64(16);
    let challenge = sha256_b64(&verifier);
    let mut dpop = Dpop::new();
    let par_endpoint = asm["pushed_authorization_request_endpoint"]
        .as_str()
        .unwrap();
    let (status, body) = dpop
        .post_form(
            &pds.http(),
            par_endpoint,
            &[
                ("client_id", client_id),
                ("response_type", "code"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("state", &state),
                ("redirect_uri", redirect_uri),
                ("scope", SCOPE),
                ("login_hint", &account.handle),
                ("response_mode", "query"),
            ],
        )
        .await;
    assert_eq!(status, 201, "PAR: {body}");
    let request_uri = body["request_uri"].as_str().unwrap();
    let mut authorize_url =
        url::Url::parse(asm["authorization_endpoint"].as_str().unwrap()).unwrap();
    authorize_url
        .query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("request_uri", request_uri);
    Pending {
        authorize_url: authorize_url.to_string(),
        state,
        verifier,
        issuer: asm["issuer"].as_str().unwrap().to_owned(),
        token_endpoint: asm["token_endpoint"].as_str().unwrap().to_owned(),
        dpop,
    }
}

#[tokio::test]
async fn accepting_gives_a_code_the_token_endpoint_exchanges() {
    let pds = require_pds!();
    let account = pds.create_account().await.unwrap();
    let mut pending = par(pds, &account).await;

    let mut driver = Driver::new().unwrap();
    let callback = driver
        .authorize(
            &pending.authorize_url,
            &account.handle,
            &account.password,
            Decision::Accept,
        )
        .await
        .unwrap_or_else(|error| panic!("{error}\n{}", pds.stderr_tail()));

    // The PDS redirects to the redirect URI of the request, port included.
    assert_eq!(
        format!(
            "{}://{}{}",
            callback.url.scheme(),
            callback.url.host_str().unwrap(),
            callback.url.path()
        ),
        "http://127.0.0.1/callback"
    );
    assert_eq!(callback.url.port(), Some(54321));
    assert_eq!(callback.param("state"), Some(pending.state.clone()));
    assert_eq!(callback.param("iss"), Some(pending.issuer.clone()));
    assert_eq!(callback.param("error"), None, "{}", callback.url);
    let code = callback.param("code").expect("a code");
    assert!(callback.params().iter().any(|(k, _)| k == "code"));

    // The code is real: the token endpoint exchanges it for this account's tokens.
    let client_id = client_id();
    let (status, token) = pending
        .dpop
        .post_form(
            &pds.http(),
            &pending.token_endpoint.clone(),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &pending.verifier),
                ("client_id", &client_id),
            ],
        )
        .await;
    assert_eq!(status, 200, "token: {token}");
    assert_eq!(token["token_type"], "DPoP");
    assert_eq!(token["sub"], json!(account.did));
    assert!(token["access_token"].is_string() && token["refresh_token"].is_string());

    // A second authorization with the same driver (the device is remembered) works too.
    let pending2 = par(pds, &account).await;
    let callback2 = driver
        .authorize(
            &pending2.authorize_url,
            &account.did,
            &account.password,
            Decision::Accept,
        )
        .await
        .unwrap_or_else(|error| panic!("{error}\n{}", pds.stderr_tail()));
    assert_eq!(callback2.param("state"), Some(pending2.state));
    assert!(callback2.param("code").is_some_and(|c| c != code));
}

#[tokio::test]
async fn rejecting_gives_access_denied_with_the_state() {
    let pds = require_pds!();
    let account = pds.create_account().await.unwrap();
    let pending = par(pds, &account).await;
    let callback = Driver::new()
        .unwrap()
        .authorize(
            &pending.authorize_url,
            &account.handle,
            &account.password,
            Decision::Reject,
        )
        .await
        .unwrap_or_else(|error| panic!("{error}\n{}", pds.stderr_tail()));
    assert_eq!(callback.param("error").as_deref(), Some("access_denied"));
    assert_eq!(callback.param("state"), Some(pending.state));
    assert_eq!(callback.param("code"), None);
}

#[tokio::test]
async fn a_wrong_password_fails_at_sign_in_without_showing_it() {
    let pds = require_pds!();
    let account = pds.create_account().await.unwrap();
    let pending = par(pds, &account).await;
    let wrong = format!("{}-wrong", account.password);
    let mut driver = Driver::new().unwrap();
    let error = driver
        .authorize(
            &pending.authorize_url,
            &account.handle,
            &wrong,
            Decision::Accept,
        )
        .await
        .unwrap_err();
    assert_eq!(error.step, "sign-in", "{error}");
    let shown = format!("{error} {error:?} {driver:?}");
    assert!(!shown.contains(&wrong), "{shown}");
    assert!(!shown.contains(&account.password), "{shown}");
}

#[tokio::test]
async fn a_url_that_is_not_an_authorization_page_fails_clearly() {
    let pds = require_pds!();
    let url = format!(
        "{}/oauth/authorize?client_id=x&request_uri=urn:nope",
        pds.url()
    );
    let error = Driver::new()
        .unwrap()
        .authorize(&url, "nobody.test", "pw", Decision::Accept)
        .await
        .unwrap_err();
    assert_eq!(error.step, "authorize page", "{error}");
    assert!(error.message.contains("/oauth/authorize"), "{error}");
}

/// A web app on 127.0.0.1 can be a discoverable client: the harness's PDS fetches
/// `https://<name>.atlex.internal:<port>/…` from `http://127.0.0.1:<port>/…` (see
/// `tests/pds/start.mjs`), and redirects the browser to the app's `https` redirect URI there.
#[tokio::test]
async fn a_discoverable_client_on_the_loopback_domain_is_served_from_127_0_0_1() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let pds = require_pds!();
    let account = pds.create_account().await.unwrap();
    let app = MockServer::start().await;
    let port = app.address().port();
    let base = format!("https://webapp.atlex.internal:{port}");
    let client_id = format!("{base}/client-metadata.json");
    let redirect_uri = format!("{base}/callback");
    Mock::given(method("GET"))
        .and(path("/client-metadata.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "client_id": client_id,
            "client_name": "atlex driver test",
            "redirect_uris": [redirect_uri],
            "scope": SCOPE,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "dpop_bound_access_tokens": true,
            "token_endpoint_auth_method": "none",
            "application_type": "web",
        })))
        .expect(1..)
        .mount(&app)
        .await;

    let pending = par_for(pds, &account, &client_id, &redirect_uri).await;
    let callback = Driver::new()
        .unwrap()
        .authorize(
            &pending.authorize_url,
            &account.handle,
            &account.password,
            Decision::Accept,
        )
        .await
        .unwrap_or_else(|error| panic!("{error}\n{}", pds.stderr_tail()));
    assert!(
        callback
            .url
            .as_str()
            .starts_with(&format!("{redirect_uri}?")),
        "{}",
        callback.url
    );
    assert_eq!(callback.param("state"), Some(pending.state));
    assert!(callback.param("code").is_some());
}
