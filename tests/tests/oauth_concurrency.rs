//! OAuth sessions under load: 1,000 concurrent typed calls through one session whose access
//! token has expired reach the authorization server as exactly one refresh, and all succeed;
//! then the same with 8 OS processes sharing one PostgreSQL store (checklist item 38).
//!
//! Two mock servers play the world, as strict as the reference servers are:
//!
//! * the **authorization server** (also the PLC directory and the handle resolver): PAR and
//!   token endpoint check every DPoP proof (ES256 signature over the embedded key, `htm`,
//!   `htu`, `iat`, a `jti` never seen before, no `ath`, the key bound to the session) and
//!   demand the server's nonce (`400 use_dpop_nonce` with `DPoP-Nonce`); refresh tokens rotate
//!   and an old one used again kills the whole session (every token it issued);
//! * the **PDS** (resource server, another origin, so it has its own nonce): `getSession`
//!   checks `Authorization: DPoP <token>` (a live, unexpired token), the proof (as above plus
//!   `ath` and the PDS's nonce: `401` `WWW-Authenticate: DPoP error="use_dpop_nonce"`).
//!
//! The session is signed in through the real flow (PAR, callback, code exchange) with a token
//! that lives one second; the test waits until it has expired. The client has never talked to
//! the PDS, so the calls sent before the PDS's first answer are all challenged for its nonce
//! and must each retry once with it — also those whose challenge found the nonce already
//! cached by a concurrent one (the client used to accept those as failures: 1 of 1,000 calls
//! failed in one process, 236 across 8). The refresh, with the issuer re-verified from the DID
//! document, must happen once, before any call is sent.
//!
//! The cross-process test starts child processes of this same test binary (the test
//! `child_process_entry`, which does nothing unless `ATLEX_OAUTH_CHILD` is set), as
//! `store_processes.rs` does. Under `CI=true` it fails when PostgreSQL is unreachable.
//! `cargo test -p atlex-tests --test oauth_concurrency -- --nocapture --test-threads=1` prints
//! the table.

mod oauth_mock;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atlex::auth::oauth::{AuthorizeOptions, CallbackParams, ClientMetadata, OAuthClient};
use atlex::auth::{MemoryStore, PostgresStore, PostgresStoreOptions, SessionStore};
use atlex::identity::{HandleMethod, IdentityResolver};
use atlex::types::Did;
use atlex::xrpc::{Client, Error, RetryPolicy};
use atlex_types::crypto::{Algorithm, PublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use oauth_mock::{DID, HANDLE, REDIRECT, SCOPE, as_metadata_for, did_doc, json_response};

const AS_NONCE: &str = "as-nonce-1";
const RS_NONCE: &str = "rs-nonce-1";
const CALLS: usize = 1000;
const PROCESSES: usize = 8;
const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

const CHILD: &str = "ATLEX_OAUTH_CHILD";
const CHILD_AS: &str = "ATLEX_OAUTH_CHILD_AS";
const CHILD_SCHEMA: &str = "ATLEX_OAUTH_CHILD_SCHEMA";
const CHILD_TASKS: &str = "ATLEX_OAUTH_CHILD_TASKS";
const CHILD_GO: &str = "ATLEX_OAUTH_CHILD_GO";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

// ---------------------------------------------------------------------------------------------
// The mock world

/// What the servers saw, for the assertions and the table.
#[derive(Default, Debug, Clone)]
struct Counts {
    token_requests: u64,
    refresh_grants: u64,
    as_nonce_challenges: u64,
    rs_nonce_challenges: u64,
    /// An old refresh token used again (the session dies).
    reuses: u64,
    did_fetches: u64,
    calls_ok: u64,
    /// Calls with an unknown, dead or expired access token.
    token_rejections: u64,
    /// Proofs that failed a check other than the nonce (the first few reasons are kept).
    bad_proofs: u64,
}

#[derive(Default)]
struct WorldState {
    counts: Counts,
    bad_reasons: Vec<String>,
    /// The DPoP key thumbprint the session is bound to (from PAR).
    jkt: Option<String>,
    /// The `state` of the last PAR.
    last_state: Option<String>,
    /// The current refresh token, and every older one.
    refresh: Option<String>,
    old_refresh: HashSet<String>,
    generation: u64,
    /// Live access tokens → expiry (Unix seconds).
    access: HashMap<String, i64>,
    dead: bool,
    jtis: HashSet<String>,
}

#[derive(Clone)]
struct World {
    state: Arc<Mutex<WorldState>>,
    as_uri: String,
    rs_uri: String,
}

/// A verified DPoP proof's claims and key thumbprint.
struct Proof {
    claims: Value,
    jkt: String,
}

/// Checks the signature and shape of the request's DPoP proof (not the nonce).
fn verify_proof(request: &Request, method: &str, htu: &str) -> Result<Proof, String> {
    let proof = request
        .headers
        .get("dpop")
        .and_then(|v| v.to_str().ok())
        .ok_or("no DPoP header")?;
    let parts: Vec<&str> = proof.split('.').collect();
    if parts.len() != 3 {
        return Err("not a compact JWS".into());
    }
    let decode = |part: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|e| e.to_string())?;
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    };
    let header = decode(parts[0])?;
    let claims = decode(parts[1])?;
    if header["typ"] != "dpop+jwt" || header["alg"] != "ES256" {
        return Err(format!("header {header}"));
    }
    let jwk = &header["jwk"];
    if jwk.get("d").is_some() || jwk["kty"] != "EC" || jwk["crv"] != "P-256" {
        return Err("bad jwk".into());
    }
    let (x, y) = (
        jwk["x"].as_str().ok_or("no x")?,
        jwk["y"].as_str().ok_or("no y")?,
    );
    let mut sec1 = vec![4u8];
    sec1.extend(URL_SAFE_NO_PAD.decode(x).map_err(|e| e.to_string())?);
    sec1.extend(URL_SAFE_NO_PAD.decode(y).map_err(|e| e.to_string())?);
    let key = PublicKey::from_sec1_bytes(Algorithm::P256, &sec1).map_err(|e| e.to_string())?;
    let signature = URL_SAFE_NO_PAD
        .decode(parts[2])
        .map_err(|e| e.to_string())?;
    key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .map_err(|e| format!("signature: {e}"))?;
    if claims["htm"] != method {
        return Err(format!("htm {}", claims["htm"]));
    }
    if claims["htu"] != htu {
        return Err(format!("htu {} (expected {htu})", claims["htu"]));
    }
    let iat = claims["iat"].as_i64().ok_or("no iat")?;
    if (iat - now()).abs() > 60 {
        return Err("iat out of range".into());
    }
    if claims["jti"].as_str().is_none_or(|jti| jti.len() < 16) {
        return Err("weak or missing jti".into());
    }
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    Ok(Proof {
        claims,
        jkt: b64(&Sha256::digest(canonical.as_bytes())),
    })
}

fn form(request: &Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(&request.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

impl World {
    async fn start() -> (MockServer, MockServer, World) {
        let authorization = MockServer::builder()
            .disable_request_recording()
            .start()
            .await;
        let pds = MockServer::builder()
            .disable_request_recording()
            .start()
            .await;
        let world = World {
            state: Arc::new(Mutex::new(WorldState::default())),
            as_uri: authorization.uri(),
            rs_uri: pds.uri(),
        };
        Mock::given(wiremock::matchers::any())
            .respond_with(AuthorizationServer(world.clone()))
            .mount(&authorization)
            .await;
        Mock::given(wiremock::matchers::any())
            .respond_with(ResourceServer(world.clone()))
            .mount(&pds)
            .await;
        (authorization, pds, world)
    }

    fn counts(&self) -> Counts {
        self.state.lock().unwrap().counts.clone()
    }

    fn bad_reasons(&self) -> Vec<String> {
        self.state.lock().unwrap().bad_reasons.clone()
    }

    fn last_state(&self) -> String {
        self.state.lock().unwrap().last_state.clone().unwrap()
    }

    fn bad(state: &mut WorldState, reason: String) -> ResponseTemplate {
        state.counts.bad_proofs += 1;
        if state.bad_reasons.len() < 5 {
            state.bad_reasons.push(reason.clone());
        }
        json_response(
            400,
            json!({"error": "invalid_dpop_proof", "error_description": reason}),
        )
    }

    /// The checks every proof gets at both servers after the signature: nonce, fresh jti.
    /// `Some` is the response to send instead of the answer.
    fn check_nonce_and_jti(
        state: &mut WorldState,
        proof: &Proof,
        nonce: &str,
        challenge: ResponseTemplate,
        resource: bool,
    ) -> Option<ResponseTemplate> {
        if proof.claims["nonce"] != nonce {
            if resource {
                state.counts.rs_nonce_challenges += 1;
            } else {
                state.counts.as_nonce_challenges += 1;
            }
            return Some(challenge);
        }
        let jti = proof.claims["jti"].as_str().unwrap_or("").to_owned();
        if !state.jtis.insert(jti) {
            return Some(World::bad(state, "jti replayed".into()));
        }
        None
    }

    /// A new generation of tokens: access token valid `lifetime` seconds.
    fn issue(state: &mut WorldState, lifetime: i64) -> Value {
        state.generation += 1;
        let access = format!("acc-{}", state.generation);
        let refresh = format!("ref-{}", state.generation);
        if let Some(old) = state.refresh.replace(refresh.clone()) {
            state.old_refresh.insert(old);
        }
        state.access.insert(access.clone(), now() + lifetime);
        json!({"access_token": access, "token_type": "DPoP", "refresh_token": refresh,
               "scope": SCOPE, "expires_in": lifetime, "sub": DID})
    }
}

/// PLC directory, handle resolution, authorization server metadata, PAR, token, revoke.
struct AuthorizationServer(World);

impl Respond for AuthorizationServer {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let world = &self.0;
        let path = request.url.path().to_owned();
        let with_nonce = |r: ResponseTemplate| r.insert_header("DPoP-Nonce", AS_NONCE);
        let challenge = || {
            with_nonce(json_response(
                400,
                json!({"error": "use_dpop_nonce", "error_description": "nonce required"}),
            ))
        };
        if path == format!("/{DID}") {
            world.state.lock().unwrap().counts.did_fetches += 1;
            return json_response(200, did_doc(DID, &world.rs_uri));
        }
        match path.as_str() {
            "/xrpc/com.atproto.identity.resolveHandle" => {
                return json_response(200, json!({ "did": DID }));
            }
            "/.well-known/oauth-authorization-server" => {
                let issuer = &world.as_uri;
                return json_response(200, as_metadata_for(issuer, &world.rs_uri));
            }
            "/oauth/revoke" => return with_nonce(json_response(200, json!({}))),
            "/oauth/par" | "/oauth/token" => {}
            _ => return json_response(404, json!({"error": "not_found"})),
        }
        let htu = format!("{}{path}", world.as_uri);
        let verified = verify_proof(request, "POST", &htu);
        let fields = form(request);
        let mut state = world.state.lock().unwrap();
        if path == "/oauth/token" {
            state.counts.token_requests += 1;
        }
        let proof = match verified {
            Ok(proof) => proof,
            Err(reason) => return with_nonce(World::bad(&mut state, reason)),
        };
        if proof.claims.get("ath").is_some() {
            return with_nonce(World::bad(&mut state, "ath toward the AS".into()));
        }
        if let Some(response) =
            World::check_nonce_and_jti(&mut state, &proof, AS_NONCE, challenge(), false)
        {
            return response;
        }
        if path == "/oauth/par" {
            state.jkt = Some(proof.jkt);
            state.last_state = fields.get("state").cloned();
            return with_nonce(json_response(
                201,
                json!({"request_uri": "urn:ietf:params:oauth:request_uri:req-1", "expires_in": 299}),
            ));
        }
        if state.jkt.as_deref() != Some(proof.jkt.as_str()) {
            return with_nonce(World::bad(
                &mut state,
                "the proof key is not the bound key".into(),
            ));
        }
        let invalid_grant = |description: &str| {
            with_nonce(json_response(
                400,
                json!({"error": "invalid_grant", "error_description": description}),
            ))
        };
        match fields.get("grant_type").map(String::as_str) {
            // The first token lives one second: the tests wait until it has expired.
            Some("authorization_code") => {
                with_nonce(json_response(200, World::issue(&mut state, 1)))
            }
            Some("refresh_token") => {
                let presented = fields.get("refresh_token").cloned().unwrap_or_default();
                if state.dead {
                    return invalid_grant("session revoked");
                }
                if state.refresh.as_deref() == Some(presented.as_str()) {
                    state.counts.refresh_grants += 1;
                    return with_nonce(json_response(200, World::issue(&mut state, 3600)));
                }
                if state.old_refresh.contains(&presented) {
                    // Replayed: the whole session dies, as at the reference server.
                    state.counts.reuses += 1;
                    state.dead = true;
                    state.access.clear();
                    return invalid_grant("refresh token replayed");
                }
                invalid_grant("unknown refresh token")
            }
            _ => with_nonce(json_response(
                400,
                json!({"error": "unsupported_grant_type"}),
            )),
        }
    }
}

/// The PDS: protected-resource metadata and `getSession`.
struct ResourceServer(World);

impl Respond for ResourceServer {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let world = &self.0;
        let path = request.url.path().to_owned();
        let with_nonce = |r: ResponseTemplate| r.insert_header("DPoP-Nonce", RS_NONCE);
        if path == "/.well-known/oauth-protected-resource" {
            return json_response(
                200,
                json!({"resource": world.rs_uri, "authorization_servers": [world.as_uri]}),
            );
        }
        if path != "/xrpc/com.atproto.server.getSession" {
            return json_response(404, json!({"error": "MethodNotImplemented"}));
        }
        let token = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("DPoP "))
            .unwrap_or("")
            .to_owned();
        let htu = format!("{}{path}", world.rs_uri);
        let verified = verify_proof(request, "GET", &htu);
        let mut state = world.state.lock().unwrap();
        let proof = match verified {
            Ok(proof) => proof,
            Err(reason) => return with_nonce(World::bad(&mut state, reason)),
        };
        if proof.claims["ath"] != b64(&Sha256::digest(token.as_bytes())) {
            return with_nonce(World::bad(
                &mut state,
                "ath does not match the token".into(),
            ));
        }
        let challenge = with_nonce(
            ResponseTemplate::new(401)
                .insert_header(
                    "WWW-Authenticate",
                    r#"DPoP algs="ES256", error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#,
                )
                .insert_header("content-type", "application/json")
                .set_body_json(json!({"error": "use_dpop_nonce", "message": "nonce required"})),
        );
        if let Some(response) =
            World::check_nonce_and_jti(&mut state, &proof, RS_NONCE, challenge, true)
        {
            return response;
        }
        if state.jkt.as_deref() != Some(proof.jkt.as_str()) {
            return with_nonce(World::bad(
                &mut state,
                "the proof key is not the bound key".into(),
            ));
        }
        match state.access.get(&token) {
            Some(exp) if *exp > now() && !state.dead => {
                state.counts.calls_ok += 1;
                with_nonce(json_response(
                    200,
                    json!({"did": DID, "handle": HANDLE, "active": true}),
                ))
            }
            _ => {
                state.counts.token_rejections += 1;
                with_nonce(
                    ResponseTemplate::new(401)
                        .insert_header(
                            "WWW-Authenticate",
                            r#"DPoP error="invalid_token", error_description="token expired or unknown""#,
                        )
                        .insert_header("content-type", "application/json")
                        .set_body_json(json!({"error": "InvalidToken", "message": "bad token"})),
                )
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The client side

fn oauth_client(as_uri: &str, store: Arc<dyn SessionStore>) -> OAuthClient {
    let resolver = IdentityResolver::builder()
        .plc_url(as_uri)
        .handle_methods([HandleMethod::Xrpc(Url::parse(as_uri).unwrap())])
        .allow_http(true)
        .build()
        .unwrap();
    OAuthClient::builder(ClientMetadata::loopback(&[REDIRECT], SCOPE).unwrap())
        .session_store(store)
        .identity_resolver(resolver)
        .allow_http(true)
        .xrpc_client(
            // No transport retries: every failure counts.
            Client::builder(as_uri)
                .retry(RetryPolicy::default().max_retries(0))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

/// Signs in through the flow; returns once the (one-second) access token has expired.
async fn sign_in_and_expire(world: &World, oauth: &OAuthClient) {
    oauth
        .authorize(HANDLE, AuthorizeOptions::new())
        .await
        .unwrap();
    let state = world.last_state();
    let done = oauth
        .callback(CallbackParams::from_pairs([
            ("state", state.as_str()),
            ("iss", world.as_uri.as_str()),
            ("code", "code-1"),
        ]))
        .await
        .unwrap();
    let expires_at = done.session.expires_at.unwrap();
    // Past both the client's idea of the expiry and the server's.
    while now() <= expires_at + 1 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `tasks` concurrent typed calls through `client`: (ok, failed, first failure).
async fn burst(client: &Client, tasks: usize) -> (u64, u64, String) {
    let calls: Vec<_> = (0..tasks)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.server().get_session().await.map(|(me, _)| me) })
        })
        .collect();
    let (mut ok, mut failed, mut first) = (0, 0, String::new());
    for call in calls {
        match call.await.unwrap() {
            Ok(me) if me.did.as_str() == DID => ok += 1,
            Ok(me) => {
                failed += 1;
                first = format!("wrong did {}", me.did);
            }
            Err(error) => {
                failed += 1;
                if first.is_empty() {
                    first = describe(&error);
                }
            }
        }
    }
    (ok, failed, first)
}

fn describe<E: std::fmt::Display>(error: &Error<E>) -> String {
    format!("{error} (status {:?})", error.status())
}

fn table_header() {
    println!(
        "| run | calls | ok | failed | token requests (AS nonce challenges) | refresh grants | reuses | PDS nonce challenges | issuer re-verifications | wall |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
}

fn table_row(run: &str, calls: usize, ok: u64, failed: u64, delta: &Counts, wall: Duration) {
    println!(
        "| {run} | {calls} | {ok} | {failed} | {} ({}) | {} | {} | {} | {} | {:.2} s |",
        delta.token_requests,
        delta.as_nonce_challenges,
        delta.refresh_grants,
        delta.reuses,
        delta.rs_nonce_challenges,
        delta.did_fetches,
        wall.as_secs_f64()
    );
}

fn delta(after: &Counts, before: &Counts) -> Counts {
    Counts {
        token_requests: after.token_requests - before.token_requests,
        refresh_grants: after.refresh_grants - before.refresh_grants,
        as_nonce_challenges: after.as_nonce_challenges - before.as_nonce_challenges,
        rs_nonce_challenges: after.rs_nonce_challenges - before.rs_nonce_challenges,
        reuses: after.reuses - before.reuses,
        did_fetches: after.did_fetches - before.did_fetches,
        calls_ok: after.calls_ok - before.calls_ok,
        token_rejections: after.token_rejections - before.token_rejections,
        bad_proofs: after.bad_proofs - before.bad_proofs,
    }
}

/// What every burst must show: all calls succeeded, one refresh (one token request, plus at
/// most one nonce challenge from a client that never talked to the AS), the issuer
/// re-verified once, no reuse, no bad proof, no call with a dead token.
fn check_burst(
    world: &World,
    d: &Counts,
    ok: u64,
    failed: u64,
    first: &str,
    max_as_challenges: u64,
) {
    assert_eq!(
        world.counts().bad_proofs,
        0,
        "bad proofs: {:?}",
        world.bad_reasons()
    );
    assert_eq!(
        (ok, failed),
        (CALLS as u64, 0),
        "calls failed; first: {first}"
    );
    assert_eq!(d.calls_ok, CALLS as u64, "the PDS served every call");
    assert_eq!(d.refresh_grants, 1, "exactly one refresh");
    assert_eq!(d.reuses, 0, "a refresh token was used twice");
    assert!(
        d.as_nonce_challenges <= max_as_challenges,
        "{} AS nonce challenges",
        d.as_nonce_challenges
    );
    assert_eq!(
        d.token_requests,
        d.refresh_grants + d.as_nonce_challenges,
        "token requests beyond the one refresh (and its nonce challenge)"
    );
    assert_eq!(
        d.did_fetches, 1,
        "the issuer is re-verified once per refresh"
    );
    assert_eq!(
        d.token_rejections, 0,
        "a call went out with the expired token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_on_an_expired_session_make_one_refresh() {
    let (_as_server, _pds_server, world) = World::start().await;
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let oauth = oauth_client(&world.as_uri, store);
    sign_in_and_expire(&world, &oauth).await;
    let did = Did::new(DID).unwrap();
    // A fresh client for the stored session (its token expired), on the same OAuth client:
    // the authorization server's nonce is known from the sign-in, the PDS's is not.
    let client = oauth.restore(&did).await.unwrap();
    let before = world.counts();
    let started = Instant::now();
    let (ok, failed, first) = burst(&client, CALLS).await;
    let wall = started.elapsed();
    let d = delta(&world.counts(), &before);
    table_header();
    table_row("1 process, memory store", CALLS, ok, failed, &d, wall);
    check_burst(&world, &d, ok, failed, &first, 0);
    assert_eq!(d.token_requests, 1, "exactly one token request");
    // The PDS's nonce was unknown: the calls sent before its first answer came back were
    // all challenged (how many depends on the machine's speed; shown in the table), and each
    // retried once with the nonce, although only the first challenge changed the cache.
    assert!(
        d.rs_nonce_challenges >= 1,
        "the PDS's nonce was never asked for"
    );
    // The session stays usable: the next calls carry the cached nonce, no challenge.
    let (ok, failed, first) = burst(&client, 10).await;
    assert_eq!((ok, failed), (10, 0), "{first}");
    assert_eq!(
        world.counts().rs_nonce_challenges,
        before.rs_nonce_challenges + d.rs_nonce_challenges
    );
}

// ---------------------------------------------------------------------------------------------
// Across processes

/// Whether PostgreSQL is reachable; a skip with a note locally, a failure under `CI=true`.
fn postgres_available() -> bool {
    let addr = "127.0.0.1:5432";
    if std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)).is_ok()
    {
        return true;
    }
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("PostgreSQL is not reachable at {addr}, and CI=true requires it");
    }
    eprintln!("note: skipped, PostgreSQL is not reachable at {addr}");
    false
}

async fn postgres(schema: &str) -> Arc<dyn SessionStore> {
    let options = PostgresStoreOptions::new()
        .schema(schema)
        .operation_timeout(Duration::from_secs(5));
    Arc::new(PostgresStore::connect_with(PG_URL, options).await.unwrap())
}

/// Drops the test's schema when the test ends, however it ends.
struct Schema(String);

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc"])
            .arg(format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.0))
            .output();
    }
}

/// The child side: restore the shared session, report `READY`, wait for the go file, run the
/// burst, report `RESULT ok=… failed=… first=…`. Does nothing in a normal test run.
#[test]
fn child_process_entry() {
    if std::env::var(CHILD).is_err() {
        return;
    }
    let as_uri = std::env::var(CHILD_AS).unwrap();
    let schema = std::env::var(CHILD_SCHEMA).unwrap();
    let tasks: usize = std::env::var(CHILD_TASKS).unwrap().parse().unwrap();
    let go = PathBuf::from(std::env::var(CHILD_GO).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let oauth = oauth_client(&as_uri, postgres(&schema).await);
        let client = oauth.restore(&Did::new(DID).unwrap()).await.unwrap();
        println!("READY");
        let wait = Instant::now() + Duration::from_secs(120);
        while !go.exists() {
            assert!(Instant::now() < wait, "no go from the parent");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (ok, failed, first) = burst(&client, tasks).await;
        println!(
            "RESULT ok={ok} failed={failed} first={}",
            first.replace(' ', "_")
        );
    });
}

/// A running child, its stdout lines arriving on a channel.
struct ChildProc {
    child: Child,
    lines: Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl ChildProc {
    fn spawn(env: &[(&str, String)]) -> ChildProc {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "child_process_entry",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        ChildProc {
            child,
            lines,
            stderr: Some(stderr),
        }
    }

    /// The rest of the first line containing `prefix` (the harness may print before it).
    fn wait_for(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(at) = line.find(prefix) {
                        return line[at + prefix.len()..].trim().to_owned();
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let stderr = self.stderr.take().map(|h| h.join().unwrap_or_default());
                    panic!(
                        "child never printed {prefix:?}: {}",
                        stderr.unwrap_or_default()
                    );
                }
            }
        }
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        // Never leave a child running when a test fails.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|part| part.strip_prefix(&format!("{name}=")))
        .unwrap_or("")
}

#[test]
fn eight_processes_sharing_a_postgres_store_make_one_refresh() {
    if !postgres_available() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut random = [0u8; 4];
    getrandom::fill(&mut random).unwrap();
    let schema = Schema(format!(
        "atlex_oauth_{}_{:08x}",
        std::process::id(),
        u32::from_le_bytes(random)
    ));
    let (_as_server, _pds_server, world) = runtime.block_on(World::start());
    runtime.block_on(async {
        let oauth = oauth_client(&world.as_uri, postgres(&schema.0).await);
        sign_in_and_expire(&world, &oauth).await;
    });
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let tasks = CALLS / PROCESSES;
    let env = [
        (CHILD_AS, world.as_uri.clone()),
        (CHILD_SCHEMA, schema.0.clone()),
        (CHILD_TASKS, tasks.to_string()),
        (CHILD_GO, go.display().to_string()),
    ];
    let mut children: Vec<ChildProc> = (0..PROCESSES).map(|_| ChildProc::spawn(&env)).collect();
    for child in &mut children {
        child.wait_for("READY", Duration::from_secs(120));
    }
    let before = world.counts();
    let started = Instant::now();
    std::fs::write(&go, b"go").unwrap();
    let (mut ok, mut failed, mut firsts) = (0u64, 0u64, Vec::new());
    for child in &mut children {
        let line = child.wait_for("RESULT", Duration::from_secs(180));
        ok += field(&line, "ok").parse::<u64>().unwrap();
        failed += field(&line, "failed").parse::<u64>().unwrap();
        let first = field(&line, "first");
        if !first.is_empty() {
            firsts.push(first.to_owned());
        }
    }
    let wall = started.elapsed();
    for mut child in children {
        let status = child.child.wait().unwrap();
        assert!(status.success(), "a child failed");
    }
    let d = delta(&world.counts(), &before);
    table_header();
    table_row(
        &format!("{PROCESSES} processes × {tasks}, PostgreSQL store"),
        tasks * PROCESSES,
        ok,
        failed,
        &d,
        wall,
    );
    // Only the process that refreshes talks to the AS; it never did before, so its first
    // token request is challenged for the nonce.
    check_burst(&world, &d, ok, failed, &firsts.join("; "), 1);
    // The store holds the rotated session.
    let stored = runtime.block_on(async {
        let store = postgres(&schema.0).await;
        let keys = store.list("oauth:").await.unwrap();
        assert_eq!(keys.len(), 1, "{keys:?}");
        store.get(&keys[0]).await.unwrap().unwrap()
    });
    let stored: Value = serde_json::from_str(stored.as_str()).unwrap();
    assert_eq!(
        stored["refresh_token"], "ref-2",
        "the store holds the rotated refresh token"
    );
}
