//! Inputs shared by the atlex benchmarks (`benches/*.rs`): the real `app.bsky.feed.post`
//! records of `tests/fixtures/records/`, and a minimal local XRPC server for the client
//! throughput comparison.
//!
//! The benchmarks are run by `cargo xtask bench`, which reads criterion's estimates and prints
//! the ratios against the comparisons named in the issues; see `tests/bench/README.md`.
//!
//! Record values are cut out of the page with `serde_json`'s `RawValue`, so the benchmarks
//! decode the PDS's bytes (key order included), not a re-encoding.
//!
//! The server is `hyper` (already in the dependency tree through `reqwest`): a well-kept HTTP/1.1
//! implementation, so the measurement is about the clients and not a hand-rolled parser. It runs
//! on its own thread and single-threaded runtime, answers every request with a fixed body, and
//! is the same for both clients compared.
#![deny(missing_docs)]

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// The `listRecords` page of 100 real posts (see `tests/fixtures/records/README.md`).
pub const LIST_PAGE_FIXTURE: &str = "listRecords-app.bsky.feed.post.json";

/// Why an input could not be prepared.
#[derive(Debug)]
pub struct InputError(String);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// The folder of record fixtures, `tests/fixtures/records/`.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("fixtures")
        .join("records")
}

/// The raw bytes of the `listRecords` page fixture.
pub fn list_page_bytes() -> Result<Vec<u8>, InputError> {
    let path = fixtures_dir().join(LIST_PAGE_FIXTURE);
    std::fs::read(&path).map_err(|error| InputError(format!("reading {}: {error}", path.display())))
}

/// One record of a `listRecords` page, its `value` kept as the page's own bytes.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RawRecord {
    /// The record's AT URI.
    pub uri: String,
    /// The record's CID.
    pub cid: String,
    /// The record value, byte for byte (keys in the PDS's order).
    pub value: Box<serde_json::value::RawValue>,
}

/// A `listRecords` page with raw record values.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RawPage {
    /// The cursor of the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// The records.
    pub records: Vec<RawRecord>,
}

impl RawPage {
    /// Splits the page bytes into records, keeping each value's bytes.
    pub fn parse(page: &[u8]) -> Result<RawPage, InputError> {
        serde_json::from_slice(page)
            .map_err(|error| InputError(format!("{LIST_PAGE_FIXTURE}: {error}")))
    }

    /// The page as JSON (with the values' original bytes).
    pub fn to_bytes(&self) -> Result<Vec<u8>, InputError> {
        serde_json::to_vec(self).map_err(|error| InputError(format!("encoding the page: {error}")))
    }

    /// The records' values as one JSON array, each value's bytes unchanged.
    pub fn values_array(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(
            self.records
                .iter()
                .map(|r| r.value.get().len() + 1)
                .sum::<usize>()
                + 2,
        );
        bytes.push(b'[');
        for (index, record) in self.records.iter().enumerate() {
            if index > 0 {
                bytes.push(b',');
            }
            bytes.extend_from_slice(record.value.get().as_bytes());
        }
        bytes.push(b']');
        bytes
    }
}

/// The DID of the account the local server pretends to host.
pub const SERVER_DID: &str = "did:plc:benchbenchbenchbenchbenc";
/// The handle of that account.
pub const SERVER_HANDLE: &str = "bench.test";

/// A compact JWT (unsigned; the client only reads `exp`) valid for a day from now.
pub fn access_token() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256K","typ":"at+jwt"}"#);
    let claims = format!(
        r#"{{"scope":"com.atproto.access","sub":"{SERVER_DID}","iat":{now},"exp":{}}}"#,
        now + 86_400
    );
    let payload = URL_SAFE_NO_PAD.encode(claims.as_bytes());
    format!("{header}.{payload}.c2lnbmF0dXJl")
}

/// The `DPoP-Nonce` the local server sends with its answers to DPoP requests.
pub const DPOP_NONCE: &str = "bench-nonce-0123456789abcdef";

/// A running local XRPC server.
#[derive(Debug, Clone)]
pub struct LocalServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The access token `createSession` hands out and `getSession` expects.
    pub token: String,
}

impl LocalServer {
    /// The service URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The full URL of `getSession`.
    pub fn get_session_url(&self) -> String {
        format!("{}/xrpc/com.atproto.server.getSession", self.url())
    }
}

/// The fixed `getSession` body.
fn get_session_body() -> String {
    format!(
        r#"{{"handle":"{SERVER_HANDLE}","did":"{SERVER_DID}","email":"bench@example.test","emailConfirmed":true,"emailAuthFactor":false,"active":true}}"#
    )
}

/// Starts the server on a loopback port, on its own thread with a single-threaded runtime.
///
/// * `POST /xrpc/com.atproto.server.createSession`: a session for [`SERVER_DID`] with
///   [`LocalServer::token`] as both tokens.
/// * `GET /xrpc/com.atproto.server.getSession`: a fixed body when the request carries
///   `Authorization: Bearer <token>`, or (an OAuth session, the `oauth` benchmark)
///   `Authorization: DPoP <token>` with a `DPoP` header, answered with a `DPoP-Nonce`
///   ([`DPOP_NONCE`]) as a PDS does; else `401`. The proof is not verified: verifying it would
///   cost the same on both sides of the comparison and only hide the client's cost.
/// * anything else: `404`.
pub fn start_server() -> std::io::Result<LocalServer> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let token = access_token();
    let state = ServerState {
        authorization: Bytes::from(format!("Bearer {token}")),
        dpop_authorization: Bytes::from(format!("DPoP {token}")),
        session: Bytes::from(get_session_body()),
        created: Bytes::from(format!(
            r#"{{"accessJwt":"{token}","refreshJwt":"{token}","handle":"{SERVER_HANDLE}","did":"{SERVER_DID}","active":true}}"#
        )),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("bench-server".to_owned())
        .spawn(move || runtime.block_on(serve(listener, state)))?;
    Ok(LocalServer { addr, token })
}

#[derive(Clone)]
struct ServerState {
    authorization: Bytes,
    dpop_authorization: Bytes,
    session: Bytes,
    created: Bytes,
}

async fn serve(listener: std::net::TcpListener, state: ServerState) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| respond(request, state.clone()));
            // A connection that breaks ends here; the client reports the failure.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn respond(
    request: Request<Incoming>,
    state: ServerState,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let json = |status: StatusCode, body: Bytes| {
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
        );
        response
    };
    let authorized = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .is_some_and(|value| value.as_bytes() == state.authorization.as_ref());
    let dpop = request.headers().contains_key("dpop")
        && request
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .is_some_and(|value| value.as_bytes() == state.dpop_authorization.as_ref());
    let response = match (request.method().as_str(), request.uri().path()) {
        ("POST", "/xrpc/com.atproto.server.createSession") => json(StatusCode::OK, state.created),
        ("GET", "/xrpc/com.atproto.server.getSession") if authorized => {
            json(StatusCode::OK, state.session)
        }
        ("GET", "/xrpc/com.atproto.server.getSession") if dpop => {
            let mut response = json(StatusCode::OK, state.session);
            response.headers_mut().insert(
                "dpop-nonce",
                hyper::header::HeaderValue::from_static(DPOP_NONCE),
            );
            response
        }
        ("GET", "/xrpc/com.atproto.server.getSession") => json(
            StatusCode::UNAUTHORIZED,
            Bytes::from_static(br#"{"error":"AuthMissing","message":"no or wrong token"}"#),
        ),
        _ => json(
            StatusCode::NOT_FOUND,
            Bytes::from_static(br#"{"error":"MethodNotImplemented"}"#),
        ),
    };
    Ok(response)
}
