//! OAuth: DPoP proofs, and calls through an OAuth session against bare `reqwest`
//! (`cargo xtask bench oauth`).
//!
//! * `oauth-proof/dpop-proof`: one DPoP proof toward a resource server, as every call makes it
//!   (`atlex::auth::oauth::dpop::proof`: fresh `jti`, `htm`, `htu`, `iat`, the cached nonce,
//!   `ath` of a real-sized access token, ES256 over the embedded public JWK).
//! * `oauth-proof/es256-sign`: one ES256 signature alone over a signing input of the same
//!   length, by `ring` (the signer the proofs use): the floor of any proof, and of any call
//!   that needs one. `oauth-proof/es256-sign-p256`: the same signature by RustCrypto's `p256`
//!   (what atlex signed with before), shown for comparison.
//! * `oauth-seq/*` and `oauth-concurrent/*` ([`CONCURRENT`] at once): `GET getSession` on the
//!   local server (`atlex_bench::start_server`), decoded into the same type by both sides:
//!   * `atlex`: an [`OAuthClient`] session restored from a [`MemoryStore`] (the stored
//!     session is written here, as a sign-in would have stored it: the token is valid for a
//!     day, so no refresh happens), then `client.server().get_session()` — a new DPoP proof
//!     per call, with the server's nonce cached after the first answer;
//!   * `reqwest`: one `reqwest::Client` sending the same request with static headers
//!     (`Authorization: DPoP <token>`, and one `DPoP` proof made once), `bytes()` then
//!     `serde_json::from_slice`.
//!
//! The client side runs on a single-threaded tokio runtime, the server on another thread
//! (as in `client.rs`).

use std::hint::black_box;
use std::process::ExitCode;
use std::sync::Arc;

use atlex::auth::oauth::dpop::{NonceCache, proof};
use atlex::auth::oauth::{ClientMetadata, Es256Key, OAuthClient};
use atlex::auth::{MemoryStore, SessionData, SessionStore};
use atlex::com::atproto::server::get_session::Output;
use atlex::types::Did;
use atlex::types::crypto::{Algorithm, PrivateKey};
use atlex::xrpc::Client;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, Throughput};
use futures::future::try_join_all;
use url::Url;

/// Calls in flight at once in `oauth-concurrent`.
const CONCURRENT: usize = 16;
const SCOPE: &str = "atproto transition:generic";

/// The bare side: the same request with static headers, decoded like atlex decodes.
struct Bare {
    http: reqwest::Client,
    url: String,
    authorization: reqwest::header::HeaderValue,
    dpop: reqwest::header::HeaderValue,
}

impl Bare {
    async fn call(&self) -> Result<Output, String> {
        let response = self
            .http
            .get(&self.url)
            .header(reqwest::header::AUTHORIZATION, self.authorization.clone())
            .header("dpop", self.dpop.clone())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        serde_json::from_slice(&body).map_err(|e| e.to_string())
    }
}

async fn atlex_call(client: &Client) -> Result<Output, String> {
    client
        .server()
        .get_session()
        .await
        .map(|(output, _)| output)
        .map_err(|e| e.to_string())
}

/// The HTTP client both sides use (built the same way, once per side).
fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .user_agent("atlex-bench")
        .build()
        .map_err(|e| e.to_string())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

/// A new P-256 key as the session's DPoP key, and its private JWK.
fn dpop_key() -> Result<(Es256Key, serde_json::Value), String> {
    let private = PrivateKey::generate(Algorithm::P256).map_err(|e| e.to_string())?;
    let d = URL_SAFE_NO_PAD.encode(private.to_bytes());
    let key = Es256Key::from_private(private).map_err(|e| e.to_string())?;
    let mut jwk = key.public_jwk();
    jwk["d"] = serde_json::Value::from(d);
    Ok((key, jwk))
}

struct Sides {
    atlex: Client,
    bare: Bare,
    key: Es256Key,
    nonces: NonceCache,
    url: Url,
    token: String,
}

async fn prepare() -> Result<Sides, String> {
    let server = atlex_bench::start_server().map_err(|e| format!("starting the server: {e}"))?;
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let metadata = ClientMetadata::loopback(&["http://127.0.0.1/callback"], SCOPE)
        .map_err(|e| e.to_string())?;
    let base = Client::builder(server.url())
        .http(http_client()?)
        .allow_http(true)
        .build()
        .map_err(|e| e.to_string())?;
    let oauth = OAuthClient::builder(metadata)
        .session_store(store.clone())
        .allow_http(true)
        .xrpc_client(base)
        .build()
        .map_err(|e| e.to_string())?;
    let (key, jwk) = dpop_key()?;
    let issued = now();
    // The session as a sign-in stores it (the account's default session, `oauth:<did>`).
    let stored = serde_json::json!({
        "version": 2,
        "did": atlex_bench::SERVER_DID,
        "issuer": server.url(),
        "aud": server.url(),
        "client_id": oauth.client_id(),
        "auth_method": {"method": "none"},
        "dpop_key": jwk,
        "access_token": server.token,
        "refresh_token": "bench-refresh-token",
        "token_type": "DPoP",
        "scope": SCOPE,
        "issued_at": issued,
        "expires_at": issued + 86_400,
    });
    store
        .set(
            &format!("oauth:{}", atlex_bench::SERVER_DID),
            &SessionData::new(stored.to_string()),
        )
        .await
        .map_err(|e| e.to_string())?;
    let did = Did::new(atlex_bench::SERVER_DID).map_err(|e| e.to_string())?;
    let atlex = oauth
        .restore(&did)
        .await
        .map_err(|e| format!("restoring the OAuth session: {e}"))?;
    let url = Url::parse(&server.get_session_url()).map_err(|e| e.to_string())?;
    let nonces = NonceCache::new();
    nonces.put(&url.origin().ascii_serialization(), atlex_bench::DPOP_NONCE);
    let (static_proof, _) =
        proof(&key, "GET", &url, &nonces, Some(&server.token)).map_err(|e| e.to_string())?;
    let bare = Bare {
        http: http_client()?,
        url: server.get_session_url(),
        authorization: reqwest::header::HeaderValue::from_str(&format!("DPoP {}", server.token))
            .map_err(|e| e.to_string())?,
        dpop: reqwest::header::HeaderValue::from_str(&static_proof).map_err(|e| e.to_string())?,
    };
    // Both sides must get the same answer before anything is measured.
    let from_atlex = atlex_call(&atlex)
        .await
        .map_err(|e| format!("atlex getSession: {e}"))?;
    let from_bare = bare
        .call()
        .await
        .map_err(|e| format!("reqwest getSession: {e}"))?;
    if from_atlex != from_bare || from_atlex.did.as_str() != atlex_bench::SERVER_DID {
        return Err(format!(
            "the two sides decoded different sessions: {from_atlex:?} / {from_bare:?}"
        ));
    }
    Ok(Sides {
        atlex,
        bare,
        key,
        nonces,
        url,
        token: server.token,
    })
}

fn proofs(c: &mut Criterion, sides: &Sides) {
    let mut group = c.benchmark_group("oauth-proof");
    group.bench_function("dpop-proof", |b| {
        b.iter(|| {
            black_box(proof(
                &sides.key,
                "GET",
                black_box(&sides.url),
                &sides.nonces,
                Some(&sides.token),
            ))
        })
    });
    // The floor: one signature over an input as long as a proof's header and claims.
    let (made, _) = proof(
        &sides.key,
        "GET",
        &sides.url,
        &sides.nonces,
        Some(&sides.token),
    )
    .unwrap_or_default();
    let input_len = made.rfind('.').unwrap_or(made.len());
    let input = made.as_bytes()[..input_len].to_vec();
    let rng = ring::rand::SystemRandom::new();
    let signer = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .ok()
    .and_then(|pkcs8| {
        ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .ok()
    });
    if let Some(signer) = signer {
        group.bench_function("es256-sign", |b| {
            b.iter(|| black_box(signer.sign(&rng, black_box(&input))))
        });
    }
    if let Ok(private) = PrivateKey::generate(Algorithm::P256) {
        group.bench_function("es256-sign-p256", |b| {
            b.iter(|| black_box(private.sign(black_box(&input))))
        });
    }
    group.finish();
}

fn sequential(c: &mut Criterion, runtime: &tokio::runtime::Runtime, sides: &Sides) {
    let mut group = c.benchmark_group("oauth-seq");
    group.throughput(Throughput::Elements(1));
    group.bench_function("atlex", |b| {
        b.to_async(runtime)
            .iter(|| async { black_box(atlex_call(&sides.atlex).await) })
    });
    group.bench_function("reqwest", |b| {
        b.to_async(runtime)
            .iter(|| async { black_box(sides.bare.call().await) })
    });
    group.finish();
}

fn concurrent(c: &mut Criterion, runtime: &tokio::runtime::Runtime, sides: &Sides) {
    let mut group = c.benchmark_group("oauth-concurrent");
    group.throughput(Throughput::Elements(CONCURRENT as u64));
    group.bench_function("atlex", |b| {
        b.to_async(runtime).iter(|| async {
            black_box(try_join_all((0..CONCURRENT).map(|_| atlex_call(&sides.atlex))).await)
        })
    });
    group.bench_function("reqwest", |b| {
        b.to_async(runtime).iter(|| async {
            black_box(try_join_all((0..CONCURRENT).map(|_| sides.bare.call())).await)
        })
    });
    group.finish();
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let sides = match runtime.block_on(prepare()) {
        Ok(sides) => sides,
        Err(error) => {
            eprintln!("error: the oauth benchmark cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut criterion = Criterion::default().configure_from_args();
    proofs(&mut criterion, &sides);
    sequential(&mut criterion, &runtime, &sides);
    concurrent(&mut criterion, &runtime, &sides);
    criterion.final_summary();
    ExitCode::SUCCESS
}
