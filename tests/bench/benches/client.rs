//! Calls through an authenticated atlex client against bare `reqwest` (`cargo xtask bench client`).
//!
//! Both sides call `GET /xrpc/com.atproto.server.getSession` on the same local server
//! (`atlex_bench::start_server`), with HTTP clients built the same way, and decode the same body
//! into the same type (`atlex::com::atproto::server::get_session::Output`):
//!
//! * `atlex`: a [`PasswordSession`] restored from a [`MemoryStore`] (logged in once against the
//!   server's `createSession`; the access token is valid for a day, so no refresh happens), then
//!   `client.call::<GetSession>(NoParams, NoBody)`.
//! * `reqwest`: one `reqwest::Client`, the same URL, `Authorization: Bearer <the same token>`
//!   as a static header, `bytes()` then `serde_json::from_slice`.
//!
//! `client-seq/*` makes one call per iteration; `client-concurrent/*` makes [`CONCURRENT`]
//! calls at once per iteration. The client side runs on a single-threaded tokio runtime, the
//! server on another thread.

use std::hint::black_box;
use std::process::ExitCode;
use std::sync::Arc;

use atlex::auth::{MemoryStore, PasswordSession, SessionStore};
use atlex::com::atproto::server::get_session::{GetSession, Output};
use atlex::types::Did;
use atlex::xrpc::{Client, NoBody, NoParams};
use criterion::{Criterion, Throughput};
use futures::future::try_join_all;

/// Calls in flight at once in `client-concurrent`.
const CONCURRENT: usize = 16;

/// The bare side: a request with a static `Authorization` header, decoded like atlex decodes.
#[derive(Clone)]
struct Bare {
    http: reqwest::Client,
    url: String,
    authorization: reqwest::header::HeaderValue,
}

impl Bare {
    async fn call(&self) -> Result<Output, String> {
        let response = self
            .http
            .get(&self.url)
            .header(reqwest::header::AUTHORIZATION, self.authorization.clone())
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
        .call::<GetSession>(NoParams, NoBody)
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

struct Sides {
    atlex: Client,
    bare: Bare,
}

async fn prepare() -> Result<Sides, String> {
    let server = atlex_bench::start_server().map_err(|e| format!("starting the server: {e}"))?;
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let base = Client::builder(server.url())
        .http(http_client()?)
        .build()
        .map_err(|e| e.to_string())?;
    let logged_in =
        PasswordSession::login_with(&base, "bench.test", "password", None, store.clone())
            .await
            .map_err(|e| format!("createSession: {e}"))?;
    let did = Did::new(atlex_bench::SERVER_DID).map_err(|e| e.to_string())?;
    drop(logged_in);
    let atlex = PasswordSession::restore_with(&base, store, &did)
        .await
        .map_err(|e| format!("restoring the session: {e}"))?;
    let bare = Bare {
        http: http_client()?,
        url: server.get_session_url(),
        authorization: reqwest::header::HeaderValue::from_str(&format!("Bearer {}", server.token))
            .map_err(|e| e.to_string())?,
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
    Ok(Sides { atlex, bare })
}

fn sequential(c: &mut Criterion, runtime: &tokio::runtime::Runtime, sides: &Sides) {
    let mut group = c.benchmark_group("client-seq");
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
    let mut group = c.benchmark_group("client-concurrent");
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
            eprintln!("error: the client benchmark cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut criterion = Criterion::default().configure_from_args();
    sequential(&mut criterion, &runtime, &sides);
    concurrent(&mut criterion, &runtime, &sides);
    criterion.final_summary();
    ExitCode::SUCCESS
}
