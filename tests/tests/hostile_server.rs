//! The client against a server that misbehaves on purpose: a raw TCP listener on 127.0.0.1
//! writing hand-made HTTP/1.1 answers (no HTTP library on the server side, so any byte can be
//! wrong).
//!
//! For every case: no panic, a typed error that says what happened, and nothing (no
//! credential, no request body) reaching a second origin, which is another listener that
//! records every request it gets. Memory is measured on a 1 GiB body generated on the fly: the
//! bytes the server managed to write before the client hung up, and the process's peak
//! resident memory (`VmHWM`), are printed and bounded.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atlex::auth::{
    AuthError, AuthHeaders, AuthSession, BoxFuture, MemoryStore, PasswordSession, RequestInfo,
    Secret,
};
use atlex::com::atproto::server::create_session;
use atlex::net::{self, RedirectPolicy};
use atlex::types::Did;
use atlex::xrpc::{CallOptions, Client, Error, GenericError, NoBody, NoParams, TransportErrorKind};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;
const ACCESS: &str = "Bearer ACCESS-SECRET-7f3a";
const DPOP: &str = "DPOP-PROOF-SECRET-91c2";

// ---------------------------------------------------------------------------------------------
// The hostile server.

/// A request as the server read it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    /// Header lines, names lower-cased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the server answers.
enum Reply {
    /// These bytes, then close.
    Bytes(Vec<u8>),
    /// `head` (status line and headers, ending in the blank line), then `total` generated
    /// bytes of body (chunked when `chunked`), as fast as the client takes them.
    Generated {
        head: String,
        total: u64,
        chunked: bool,
    },
    /// `head`, then `body` one byte every `every`.
    Slow {
        head: String,
        body: Vec<u8>,
        every: Duration,
    },
}

type Handler = Arc<dyn Fn(&Seen, u16) -> Reply + Send + Sync>;

/// A listener on 127.0.0.1 that answers every request with its handler and records them.
struct Hostile {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Body bytes of `Reply::Generated` answers written before the client hung up.
    written: Arc<AtomicU64>,
}

impl Hostile {
    async fn start(handler: impl Fn(&Seen, u16) -> Reply + Send + Sync + 'static) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let written = Arc::new(AtomicU64::new(0));
        let handler: Handler = Arc::new(handler);
        let (seen2, written2) = (seen.clone(), written.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (handler, seen, written) = (handler.clone(), seen2.clone(), written2.clone());
                tokio::spawn(async move {
                    serve(stream, port, handler, seen, written).await;
                });
            }
        });
        Hostile {
            port,
            seen,
            written,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }
}

/// Reads one request (head and a `Content-Length` body), records it, writes the reply, closes.
async fn serve(
    mut stream: TcpStream,
    port: u16,
    handler: Handler,
    seen: Arc<Mutex<Vec<Seen>>>,
    written: Arc<AtomicU64>,
) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or("").split(' ');
    let method = request_line.next().unwrap_or("").to_owned();
    let target = request_line.next().unwrap_or("").to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let request = Seen {
        method,
        target,
        headers,
        body,
    };
    seen.lock().unwrap().push(request.clone());
    match handler(&request, port) {
        Reply::Bytes(bytes) => {
            let _ = stream.write_all(&bytes).await;
        }
        Reply::Generated {
            head,
            total,
            chunked,
        } => {
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let block = vec![b'x'; 64 * 1024];
            let mut left = total;
            while left > 0 {
                let n = left.min(block.len() as u64) as usize;
                let result = if chunked {
                    let mut framed = format!("{n:x}\r\n").into_bytes();
                    framed.extend_from_slice(&block[..n]);
                    framed.extend_from_slice(b"\r\n");
                    stream.write_all(&framed).await
                } else {
                    stream.write_all(&block[..n]).await
                };
                if result.is_err() {
                    return;
                }
                written.fetch_add(n as u64, Ordering::SeqCst);
                left -= n as u64;
            }
            if chunked {
                let _ = stream.write_all(b"0\r\n\r\n").await;
            }
        }
        Reply::Slow { head, body, every } => {
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for byte in body {
                tokio::time::sleep(every).await;
                if stream.write_all(&[byte]).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = stream.shutdown().await;
}

/// A complete answer with a `Content-Length`.
fn answer(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut out = format!("HTTP/1.1 {status}\r\nconnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    Reply::Bytes(bytes)
}

fn json_ok(body: &str) -> Reply {
    answer(
        "200 OK",
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
}

fn head(status: &str, headers: &[(&str, &str)]) -> String {
    let mut out = format!("HTTP/1.1 {status}\r\nconnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out
}

// ---------------------------------------------------------------------------------------------
// Client side.

/// Credentials in `Authorization` and `DPoP`, as an OAuth session would send them.
#[derive(Debug)]
struct StaticAuth;

impl AuthSession for StaticAuth {
    fn did(&self) -> Option<Did> {
        None
    }

    fn service_url(&self) -> Option<reqwest::Url> {
        None
    }

    fn before_request<'a>(
        &'a self,
        _request: &'a RequestInfo<'a>,
    ) -> BoxFuture<'a, Result<AuthHeaders, AuthError>> {
        Box::pin(async {
            Ok(AuthHeaders::none()
                .with_header("authorization", Secret::new(ACCESS))
                .with_header("dpop", Secret::new(DPOP)))
        })
    }
}

fn builder(server: &Hostile) -> atlex::xrpc::ClientBuilder {
    Client::builder(server.url())
        .retry(fast_retry(1))
        .timeout(Some(Duration::from_secs(20)))
}

fn client(server: &Hostile) -> Client {
    builder(server).build().unwrap()
}

fn authed(server: &Hostile, redirects: RedirectPolicy) -> Client {
    builder(server)
        .session(Arc::new(StaticAuth))
        .redirects(redirects)
        .proxy(&atlex::did!("did:web:proxy.example"), "svc")
        .build()
        .unwrap()
}

async fn get(client: &Client) -> Result<GetThingOutput, Error<GetThingError>> {
    client
        .call::<GetThing>(params("alice"), NoBody)
        .await
        .map(|(output, _)| output)
}

async fn post(client: &Client, body: &str) -> Result<CreateThingOutput, Error<GenericError>> {
    client
        .call::<CreateThing>(
            NoParams,
            CreateThingInput {
                text: body.to_owned(),
            },
        )
        .await
        .map(|(output, _)| output)
}

fn transport_kind<E>(error: &Error<E>) -> Option<TransportErrorKind> {
    match error {
        Error::Transport(error) => Some(error.kind()),
        _ => None,
    }
}

/// The error and its whole source chain, as text.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(error) = source {
        out.push_str(" <- ");
        out.push_str(&error.to_string());
        source = error.source();
    }
    out
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn fake_jwt(claims: &str) -> String {
    format!(
        "{}.{}.sig",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256K"}"#),
        URL_SAFE_NO_PAD.encode(claims.as_bytes())
    )
}

// ---------------------------------------------------------------------------------------------
// Numbers in headers and tokens.

#[tokio::test]
async fn rate_limit_headers_at_and_past_their_limits() {
    let values = [
        "0",
        "18446744073709551615", // u64::MAX
        "18446744073709551616", // u64::MAX + 1
        "9223372036854775807",  // i64::MAX
        "9223372036854775808",  // i64::MAX + 1
        "-1",                   // negative
        "-9223372036854775808", // i64::MIN
        "1e400",                // float syntax
        "NaN",                  // garbage
        "99999999999999999999999999999999999999999",
        "Fri, 31 Dec 9999 23:59:59 GMT", // a date far ahead
        "315360000",                     // ten years, in seconds
    ];
    for value in values {
        for name in ["ratelimit-reset", "retry-after", "ratelimit-remaining"] {
            let server = Hostile::start(move |_, _| {
                answer(
                    "429 Too Many Requests",
                    &[
                        ("content-type", "application/json"),
                        ("ratelimit-limit", value),
                        ("ratelimit-remaining", "0"),
                        (name, value),
                    ],
                    br#"{"error":"RateLimitExceeded","message":"slow down"}"#,
                )
            })
            .await;
            let client = builder(&server)
                .retry(fast_retry(1).max_rate_limit_wait(Duration::from_millis(50)))
                .build()
                .unwrap();
            let error = get(&client).await.unwrap_err();
            match &error {
                Error::RateLimited(limit) => {
                    // Whatever the header said, the wait is computed without panicking and is
                    // either absent or a plain duration.
                    let _ = limit.wait(std::time::SystemTime::now());
                }
                other => panic!("{name}: {value}: expected RateLimited, got {other:?}"),
            }
            let shown = error.to_string();
            assert!(shown.contains("rate limited"), "{name}: {value}: {shown}");
            // A wait longer than the policy accepts is not sat out: at most one retry happened
            // (for waits of zero or unknown length), never a sleep of years.
            assert!(server.seen().len() <= 2, "{name}: {value}");
        }
    }
}

#[tokio::test]
async fn content_length_headers_that_cannot_be_numbers() {
    for value in [
        "18446744073709551616",
        "18446744073709551615",
        "-1",
        "abc",
        "10, 20",
        "1e3",
        "",
    ] {
        let server = Hostile::start(move |_, _| {
            let text = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {value}\r\nconnection: close\r\n\r\n{{\"things\":[]}}"
            );
            Reply::Bytes(text.into_bytes())
        })
        .await;
        let error = get(&client(&server)).await.err();
        // Either the HTTP parser refuses the header (a network error), or the declared length
        // is over the limit (u64::MAX): both typed, neither a panic.
        match &error {
            Some(Error::Transport(error)) => {
                assert!(
                    matches!(
                        error.kind(),
                        TransportErrorKind::Network | TransportErrorKind::TooLarge
                    ),
                    "{value}: {error:?}"
                );
                println!("content-length {value:?}: {}", chain(error));
            }
            other => panic!("content-length {value:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn jwt_claims_at_their_extremes() {
    let claims = [
        r#"{"exp":9223372036854775807,"iat":-9223372036854775808}"#,
        r#"{"exp":-9223372036854775808,"iat":9223372036854775807}"#,
        r#"{"exp":18446744073709551615,"iat":0}"#,
        r#"{"exp":1e308,"iat":-1e308}"#,
        r#"{"exp":-1e308}"#,
        r#"{"exp":"tomorrow","iat":[]}"#,
        r#"{"exp":0.5,"iat":1e-300}"#,
        r#"{"exp":99999999999999999999999999999999}"#,
    ];
    for claim in claims {
        let token = fake_jwt(claim);
        let server = Hostile::start(move |seen, _| {
            if seen.target.contains("createSession") || seen.target.contains("refreshSession") {
                json_ok(&format!(
                    r#"{{"accessJwt":"{token}","refreshJwt":"{token}","handle":"alice.test","did":"did:plc:alice"}}"#
                ))
            } else {
                json_ok(r#"{"things":["ok"]}"#)
            }
        })
        .await;
        let client = PasswordSession::login_with(
            &client(&server),
            "alice.test",
            "pw",
            None,
            Arc::new(MemoryStore::new()),
        )
        .await
        .unwrap_or_else(|error| panic!("{claim}: {error}"));
        let output = get(&client)
            .await
            .unwrap_or_else(|error| panic!("{claim}: {error}"));
        assert_eq!(output.things, vec!["ok"], "{claim}");
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies far over the limit.

/// Set in the child process that measures memory alone.
const MEMORY_CHILD: &str = "ATLEX_HOSTILE_MEMORY_CHILD";

/// Runs the measurement in a process of its own, so that the peak resident memory it reads is
/// not the other tests' (which run in parallel threads of this one).
#[test]
fn a_gibibyte_body_is_abandoned_near_the_limit_and_memory_stays_bounded() {
    if std::env::var_os(MEMORY_CHILD).is_some() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(measure_gibibyte_bodies());
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "a_gibibyte_body_is_abandoned_near_the_limit_and_memory_stays_bounded",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(MEMORY_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    print!("{stdout}");
    assert!(
        output.status.success(),
        "the measuring process failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("memory: peak RSS"),
        "no measurement: {stdout}"
    );
}

async fn measure_gibibyte_bodies() {
    let before = peak_rss_kib();
    let mut report = Vec::new();
    for chunked in [false, true] {
        let server = Hostile::start(move |_, _| Reply::Generated {
            head: if chunked {
                head(
                    "200 OK",
                    &[
                        ("content-type", "application/json"),
                        ("transfer-encoding", "chunked"),
                    ],
                )
            } else {
                // No Content-Length and no chunking: the body runs to the end of the
                // connection, so only counting can stop it.
                head("200 OK", &[("content-type", "application/json")])
            },
            total: GIB,
            chunked,
        })
        .await;
        let error = get(&client(&server)).await.unwrap_err();
        assert_eq!(
            transport_kind(&error),
            Some(TransportErrorKind::TooLarge),
            "{error:?}"
        );
        let shown = error.to_string();
        assert!(shown.contains("8388608 bytes"), "{shown}");
        assert!(shown.contains(&server.url()), "the URL is named: {shown}");
        // Give the server a moment to notice the closed connection.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let written = server.written();
        report.push(format!(
            "{}: server wrote {:.1} MiB of 1024 MiB before the client hung up",
            if chunked {
                "chunked"
            } else {
                "close-delimited"
            },
            written as f64 / MIB as f64
        ));
        // The limit (8 MiB) plus what the kernel's socket buffers absorbed.
        assert!(written < 64 * MIB, "{written} bytes written");
    }

    // With a Content-Length over the limit nothing of the body is read.
    let server = Hostile::start(|_, _| Reply::Generated {
        head: head(
            "200 OK",
            &[
                ("content-type", "application/json"),
                ("content-length", "1073741824"),
            ],
        ),
        total: GIB,
        chunked: false,
    })
    .await;
    let error = get(&client(&server)).await.unwrap_err();
    assert_eq!(transport_kind(&error), Some(TransportErrorKind::TooLarge));
    assert!(
        error
            .to_string()
            .contains("1073741824 bytes (Content-Length)"),
        "{error}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    report.push(format!(
        "content-length 1 GiB: server wrote {:.1} MiB before the client hung up",
        server.written() as f64 / MIB as f64
    ));
    assert!(server.written() < 64 * MIB);

    let after = peak_rss_kib();
    if let (Some(before), Some(after)) = (before, after) {
        report.push(format!(
            "peak RSS (VmHWM): {:.1} MiB before, {:.1} MiB after (+{:.1} MiB) for three 1 GiB bodies",
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            after.saturating_sub(before) as f64 / 1024.0
        ));
        // Reading any of the bodies whole would have added 1 GiB; the limit is 8 MiB.
        assert!(
            after.saturating_sub(before) < 64 * 1024,
            "peak RSS grew by {} KiB",
            after - before
        );
    }
    for line in report {
        println!("memory: {line}");
    }
}

#[tokio::test]
async fn per_call_and_per_client_limits() {
    let big = format!(r#"{{"things":["{}"]}}"#, "y".repeat(10_000));
    let server = Hostile::start(move |_, _| json_ok(&big)).await;
    // The per-call limit.
    let error = client(&server)
        .call_with::<GetThing>(
            params("alice"),
            NoBody,
            &CallOptions::new().max_response_size(1000),
        )
        .await
        .unwrap_err();
    assert_eq!(transport_kind(&error), Some(TransportErrorKind::TooLarge));
    assert!(error.to_string().contains("limit of 1000 bytes"), "{error}");
    // The client's.
    let small = builder(&server).max_response_size(2000).build().unwrap();
    let error = get(&small).await.unwrap_err();
    assert!(error.to_string().contains("limit of 2000 bytes"), "{error}");
    // Within the limit all is well; a body over the limit is not retried.
    assert_eq!(get(&client(&server)).await.unwrap().things[0].len(), 10_000);
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn error_bodies_are_bounded_too() {
    let server = Hostile::start(|_, _| Reply::Generated {
        head: head(
            "500 Internal Server Error",
            &[("content-type", "text/html")],
        ),
        total: GIB,
        chunked: true,
    })
    .await;
    let error = get(&client(&server)).await.unwrap_err();
    assert_eq!(
        transport_kind(&error),
        Some(TransportErrorKind::TooLarge),
        "{error:?}"
    );
    assert!(error.to_string().contains("65536 bytes"), "{error}");
    assert!(!error.is_transient());
}

#[tokio::test]
async fn streamed_bodies_stay_streamed_and_can_be_capped() {
    let server = Hostile::start(|_, _| Reply::Generated {
        head: head(
            "200 OK",
            &[
                ("content-type", "application/octet-stream"),
                ("transfer-encoding", "chunked"),
            ],
        ),
        total: GIB,
        chunked: true,
    })
    .await;
    let did = atlex::did!("did:plc:alice");
    let cid = atlex::cid!("bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy");
    // Uncapped: 20 MiB (past the 8 MiB in-memory limit) arrive as a stream.
    let (mut blob, _) = client(&server)
        .get_blob(did.clone(), cid.clone())
        .await
        .unwrap();
    let mut read = 0u64;
    while read < 20 * MIB {
        read += blob.next().await.unwrap().unwrap().len() as u64;
    }
    drop(blob);
    // Capped at 1 MiB: the stream fails once more arrived, and ends.
    let capped = builder(&server)
        .max_streamed_size(Some(MIB))
        .build()
        .unwrap();
    let (mut blob, _) = capped.get_blob(did, cid).await.unwrap();
    let mut read = 0u64;
    let error = loop {
        match blob.next().await {
            Some(Ok(chunk)) => read += chunk.len() as u64,
            Some(Err(error)) => break error,
            None => panic!("the stream ended without an error after {read} bytes"),
        }
    };
    assert!(read <= MIB, "{read}");
    assert_eq!(error.kind(), TransportErrorKind::TooLarge);
    assert!(error.to_string().contains("1048576 bytes"), "{error}");
    assert!(blob.next().await.is_none());
}

// ---------------------------------------------------------------------------------------------
// Malformed bodies, headers and content types.

#[tokio::test]
async fn deep_nesting_is_a_decode_error_not_a_stack_overflow() {
    let depth = 1_000_000;
    let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let nested_object = format!(r#"{{"things":{}}}"#, "{\"a\":".repeat(100_000));
    let bodies = [deep.clone(), nested_object];
    for body in bodies {
        let body2 = body.clone();
        let server = Hostile::start(move |_, _| json_ok(&body2)).await;
        let error = get(&client(&server)).await.unwrap_err();
        assert!(matches!(error, Error::Decode(_)), "{error:?}");
        // The untyped call (serde_json::Value) has the same recursion limit.
        let error = client(&server)
            .get("com.example.getThing", serde_json::json!({"actor": "a"}))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Decode(_)), "{error:?}");
    }
    // As an error body (within the 64 KiB error limit).
    let deep = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000));
    let server = Hostile::start(move |_, _| {
        answer(
            "400 Bad Request",
            &[("content-type", "application/json")],
            deep.as_bytes(),
        )
    })
    .await;
    let error = get(&client(&server)).await.unwrap_err();
    assert!(
        matches!(error, Error::Status(ref r) if r.status == 400),
        "{error:?}"
    );
}

#[tokio::test]
async fn wrong_and_missing_content_types() {
    type Case = (&'static [(&'static str, &'static str)], &'static [u8], bool);
    let cases: [Case; 5] = [
        (
            &[("content-type", "text/html")],
            b"<html>not json</html>",
            false,
        ),
        (&[], b"<html>not json</html>", false),
        (
            &[("content-type", "application/json")],
            b"\xff\xfe\x00garbage",
            false,
        ),
        (
            &[("content-type", "image/png")],
            b"\x89PNG\r\n\x1a\n",
            false,
        ),
        // A valid JSON body is read whatever the label says.
        (&[], br#"{"things":["ok"]}"#, true),
    ];
    for (headers, body, ok) in cases {
        let server = Hostile::start(move |_, _| answer("200 OK", headers, body)).await;
        let result = get(&client(&server)).await;
        match (&result, ok) {
            (Ok(_), true) => {}
            (Err(Error::Decode(error)), false) => {
                let shown = error.to_string();
                let label = headers.first().map_or("no content type", |(_, v)| v);
                assert!(shown.contains(label), "{shown}");
            }
            other => panic!("{headers:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn truncated_bodies() {
    let cases: [&[u8]; 4] = [
        // Promises 100 bytes, sends 12.
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"things\":[",
        // A chunk cut short, no final chunk.
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n20\r\n{\"things\":[",
        // Headers cut short.
        b"HTTP/1.1 200 OK\r\ncontent-type: appl",
        // Nothing at all.
        b"",
    ];
    for bytes in cases {
        let server = Hostile::start(move |_, _| Reply::Bytes(bytes.to_vec())).await;
        let error = get(&client(&server)).await.unwrap_err();
        assert_eq!(
            transport_kind(&error),
            Some(TransportErrorKind::Network),
            "{:?}: {error:?}",
            String::from_utf8_lossy(bytes)
        );
        // A query is retried on a network error (once here), then fails.
        assert_eq!(server.seen().len(), 2);
    }
}

#[tokio::test]
async fn garbage_status_lines_and_headers() {
    let huge_header = format!(
        "HTTP/1.1 200 OK\r\nx-junk: {}\r\ncontent-length: 0\r\n\r\n",
        "a".repeat(2 * 1024 * 1024)
    );
    let many_headers = format!(
        "HTTP/1.1 200 OK\r\n{}content-length: 0\r\n\r\n",
        (0..10_000)
            .map(|i| format!("x-{i}: {i}\r\n"))
            .collect::<String>()
    );
    let cases: Vec<Vec<u8>> = vec![
        b"HTTP/1.1 abc OK\r\ncontent-length: 0\r\n\r\n".to_vec(),
        b"SMTP ready\r\n\r\n".to_vec(),
        b"HTTP/1.1 200 OK\r\nbad header line\r\n\r\n".to_vec(),
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"
            .to_vec(),
        huge_header.into_bytes(),
        many_headers.into_bytes(),
    ];
    for bytes in cases {
        let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(60)]).into_owned();
        let server = Hostile::start(move |_, _| Reply::Bytes(bytes.clone())).await;
        let error = get(&client(&server)).await.unwrap_err();
        assert!(
            matches!(error, Error::Transport(_) | Error::Decode(_)),
            "{shown:?}: {error:?}"
        );
    }
    // A status out of the usual range is just an error status.
    let server = Hostile::start(|_, _| answer("999 WAT", &[], b"")).await;
    let error = get(&client(&server)).await.unwrap_err();
    assert_eq!(error.status(), Some(999), "{error:?}");
}

#[tokio::test]
async fn slow_bodies_and_silent_servers_time_out() {
    // A byte per second of a 100-byte body.
    let server = Hostile::start(|_, _| Reply::Slow {
        head: head(
            "200 OK",
            &[
                ("content-type", "application/json"),
                ("content-length", "100"),
            ],
        ),
        body: vec![b' '; 100],
        every: Duration::from_secs(1),
    })
    .await;
    let client = builder(&server)
        .timeout(Some(Duration::from_secs(2)))
        .retry(fast_retry(0))
        .build()
        .unwrap();
    let error = get(&client).await.unwrap_err();
    assert_eq!(
        transport_kind(&error),
        Some(TransportErrorKind::Timeout),
        "{error:?}"
    );
    assert!(error.is_transient());

    // Headers that never come.
    let server = Hostile::start(|_, _| Reply::Slow {
        head: String::new(),
        body: vec![b'H'; 1000],
        every: Duration::from_secs(10),
    })
    .await;
    let client = builder(&server)
        .timeout(Some(Duration::from_millis(500)))
        .retry(fast_retry(0))
        .build()
        .unwrap();
    let error = get(&client).await.unwrap_err();
    assert_eq!(
        transport_kind(&error),
        Some(TransportErrorKind::Timeout),
        "{error:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Redirects.

/// A second origin that records what it receives and answers a valid output.
async fn other_origin() -> Hostile {
    Hostile::start(|_, _| json_ok(r#"{"things":["elsewhere"],"id":"elsewhere"}"#)).await
}

fn assert_nothing_leaked(other: &Hostile) {
    for request in other.seen() {
        assert!(request.header("authorization").is_none(), "{request:?}");
        assert!(request.header("dpop").is_none(), "{request:?}");
        assert!(request.header("atproto-proxy").is_none(), "{request:?}");
        assert!(request.body.is_empty(), "{request:?}");
    }
}

#[tokio::test]
async fn redirects_are_not_followed_by_default() {
    let other = other_origin().await;
    let target = format!("{}/xrpc/com.example.getThing", other.url());
    for status in [
        "301 Moved Permanently",
        "302 Found",
        "303 See Other",
        "307 Temporary Redirect",
        "308 Permanent Redirect",
    ] {
        let location = target.clone();
        let server =
            Hostile::start(move |_, _| answer(status, &[("location", &location)], b"")).await;
        let client = authed(&server, RedirectPolicy::None);
        for error in [
            get(&client).await.map(|_| ()).unwrap_err().into_generic(),
            post(&client, "BODY-SECR").await.map(|_| ()).unwrap_err(),
        ] {
            assert_eq!(
                transport_kind(&error),
                Some(TransportErrorKind::Redirect),
                "{error:?}"
            );
            let shown = error.to_string();
            assert!(shown.contains("redirects are not followed"), "{shown}");
            assert!(
                shown.contains(&other.url()),
                "names where it pointed: {shown}"
            );
            assert!(!shown.contains("actor="), "no query string: {shown}");
        }
    }
    // Without a Location header.
    let server = Hostile::start(|_, _| answer("302 Found", &[], b"")).await;
    let error = get(&authed(&server, RedirectPolicy::None))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("no Location header"), "{error}");
    assert!(other.seen().is_empty(), "{:?}", other.seen());
}

#[tokio::test]
async fn same_origin_policy_never_leaves_the_origin() {
    let other = other_origin().await;
    let other_port = other.port;
    let targets = [
        // Another origin on the same machine.
        format!("http://127.0.0.1:{other_port}/xrpc/com.example.getThing"),
        // The same port under another name: another origin, though the same socket.
        format!("http://localhost:{other_port}/xrpc/com.example.getThing"),
        // Another scheme on the same host and port.
        format!("https://127.0.0.1:{other_port}/xrpc/com.example.getThing"),
        // Not HTTP at all.
        "ftp://127.0.0.1/x".to_owned(),
        "javascript:alert(1)".to_owned(),
        "file:///etc/passwd".to_owned(),
    ];
    for target in targets {
        for status in [
            "301 Moved Permanently",
            "302 Found",
            "303 See Other",
            "307 Temporary Redirect",
            "308 Permanent Redirect",
        ] {
            let location = target.clone();
            let server =
                Hostile::start(move |_, _| answer(status, &[("location", &location)], b"")).await;
            let client = authed(&server, RedirectPolicy::same_origin());
            for error in [
                get(&client).await.map(|_| ()).unwrap_err().into_generic(),
                post(&client, "BODY-SECR").await.map(|_| ()).unwrap_err(),
            ] {
                assert_eq!(
                    transport_kind(&error),
                    Some(TransportErrorKind::Redirect),
                    "{status} to {target}: {error:?}"
                );
                let shown = error.to_string();
                assert!(
                    shown.contains("leaves the origin") || shown.contains("redirect"),
                    "{shown}"
                );
            }
        }
    }
    assert!(other.seen().is_empty(), "{:?}", other.seen());
    assert_nothing_leaked(&other);
}

#[tokio::test]
async fn same_origin_redirects_are_followed_relative_or_absolute() {
    let server = Hostile::start(|seen, port| {
        if seen.target.starts_with("/moved/") {
            json_ok(r#"{"things":["moved"],"id":"moved"}"#)
        } else if seen.target.contains("getThing") {
            // Relative.
            answer("302 Found", &[("location", "/moved/get")], b"")
        } else {
            // Absolute, keeping the method and body.
            let location = format!("http://127.0.0.1:{port}/moved/post");
            answer("307 Temporary Redirect", &[("location", &location)], b"")
        }
    })
    .await;
    let client = authed(&server, RedirectPolicy::same_origin());
    assert_eq!(get(&client).await.unwrap().things, vec!["moved"]);
    post(&client, "hello").await.unwrap();
    let seen = server.seen();
    let moved_post = seen.iter().find(|s| s.target == "/moved/post").unwrap();
    assert_eq!(moved_post.method, "POST");
    assert_eq!(moved_post.body, br#"{"text":"hello"}"#);
    // Same origin: the credentials may follow.
    assert_eq!(moved_post.header("authorization"), Some(ACCESS));
}

#[tokio::test]
async fn redirect_loops_and_chains_stop() {
    // A to A.
    let server = Hostile::start(|seen, _| {
        let target = seen.target.clone();
        answer("302 Found", &[("location", &target)], b"")
    })
    .await;
    let error = get(&authed(&server, RedirectPolicy::same_origin()))
        .await
        .unwrap_err();
    assert_eq!(transport_kind(&error), Some(TransportErrorKind::Redirect));
    assert!(error.to_string().contains("loops"), "{error}");
    // An endless chain of new URLs.
    let server = Hostile::start(|seen, _| {
        let next = format!("{}x", seen.target);
        answer("302 Found", &[("location", &next)], b"")
    })
    .await;
    let error = get(&authed(&server, RedirectPolicy::same_origin()))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("too many redirects"), "{error}");
    assert!(server.seen().len() <= 7, "{}", server.seen().len());
}

#[test]
fn reqwest_alone_would_leak_custom_headers_cross_origin() {
    // Why atlex has its own policy: reqwest strips `Authorization` on a cross-host redirect but
    // keeps `DPoP` and `atproto-proxy`. Shown with reqwest's default policy.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let other = other_origin().await;
        let location = format!("http://localhost:{}/elsewhere", other.port);
        let server =
            Hostile::start(move |_, _| answer("302 Found", &[("location", &location)], b"")).await;
        let http = reqwest::Client::new();
        let _ = http
            .get(format!("{}/start", server.url()))
            .header("authorization", ACCESS)
            .header("dpop", DPOP)
            .send()
            .await
            .unwrap();
        let seen = other.seen();
        assert_eq!(seen.len(), 1);
        assert!(seen[0].header("authorization").is_none());
        assert_eq!(seen[0].header("dpop"), Some(DPOP), "reqwest forwards DPoP");
    });
}

// ---------------------------------------------------------------------------------------------
// Plain HTTP and credentials in errors.

#[tokio::test]
async fn plain_http_only_for_loopback_unless_allowed() {
    for url in [
        "http://example.com",
        "http://10.0.0.1:2583",
        "http://[::2]/",
        "http://localhost.example/",
    ] {
        let error = Client::builder(url).build().unwrap_err();
        let shown = error.to_string();
        assert!(shown.contains("plain http"), "{shown}");
        assert!(Client::builder(url).allow_http(true).build().is_ok());
    }
    for url in ["ftp://example.com", "file:///tmp/x", "data:text/plain,hi"] {
        assert!(
            Client::builder(url).allow_http(true).build().is_err(),
            "{url}"
        );
    }
    let error = Client::builder("http://example.com/?token=SECRET-Q")
        .build()
        .unwrap_err();
    assert!(!error.to_string().contains("SECRET-Q"), "{error}");

    // A PDS taken from the DID document the server returns.
    let server = Hostile::start(|seen, _| {
        if seen.target.contains("createSession") {
            let token = fake_jwt(r#"{"exp":4102444800}"#);
            json_ok(&format!(
                r##"{{"accessJwt":"{token}","refreshJwt":"{token}","handle":"alice.test","did":"did:plc:alice",
                "didDoc":{{"id":"did:plc:alice","service":[{{"id":"#atproto_pds","type":"AtprotoPersonalDataServer","serviceEndpoint":"http://pds.example.com"}}]}}}}"##
            ))
        } else {
            json_ok(r#"{"things":[]}"#)
        }
    })
    .await;
    let error = PasswordSession::login_with(
        &client(&server),
        "alice.test",
        "pw",
        None,
        Arc::new(MemoryStore::new()),
    )
    .await
    .unwrap_err();
    let shown = error.to_string();
    assert!(matches!(error, Error::InvalidRequest(_)), "{error:?}");
    assert!(
        shown.contains("http://pds.example.com/") && shown.contains("plain http"),
        "{shown}"
    );
    assert_eq!(server.seen().len(), 1, "nothing sent after the refusal");
    // Allowed, the session moves to it (and the call then fails to connect: no such host here).
    let allowed = builder(&server).allow_http(true).build().unwrap();
    let client = PasswordSession::login_with(
        &allowed,
        "alice.test",
        "pw",
        None,
        Arc::new(MemoryStore::new()),
    )
    .await
    .unwrap();
    assert_eq!(client.service_url().as_str(), "http://pds.example.com/");
}

#[tokio::test]
async fn decode_errors_of_credential_outputs_keep_no_secret() {
    const { assert!(<create_session::CreateSession as atlex::xrpc::Endpoint>::OUTPUT_HAS_SECRETS) };
    let bodies = [
        // A wrong type next to the tokens.
        r#"{"accessJwt":"ACCESS-SECRET-1","refreshJwt":"REFRESH-SECRET-1","handle":"alice.test","did":42}"#,
        // An invalid value that the parser would quote.
        r#"{"accessJwt":"ACCESS-SECRET-1","refreshJwt":"REFRESH-SECRET-1","handle":"alice.test","did":"REFRESH-SECRET-2"}"#,
        // The token itself of the wrong type.
        r#"{"accessJwt":["ACCESS-SECRET-1"],"refreshJwt":"REFRESH-SECRET-1","handle":"alice.test","did":"did:plc:a"}"#,
        // Truncated.
        r#"{"accessJwt":"ACCESS-SECRET-1","refreshJwt":"REFRESH-SEC"#,
    ];
    for body in bodies {
        let server = Hostile::start(move |_, _| json_ok(body)).await;
        let error = client(&server)
            .call::<create_session::CreateSession>(
                NoParams,
                create_session::Input::new("alice.test", "PASSWORD-SECRET"),
            )
            .await
            .unwrap_err();
        let Error::Decode(decode) = &error else {
            panic!("{error:?}");
        };
        assert!(decode.body().is_empty());
        let shown = format!("{error} {error:?} {}", chain(&error));
        for secret in ["SECRET", "alice"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("line 1, column"), "position given: {shown}");
        println!("createSession decode error: {error}");
    }
    // A method without credentials keeps the body for debugging.
    let server = Hostile::start(|_, _| json_ok(r#"{"things":"not-a-list"}"#)).await;
    let Error::Decode(decode) = get(&client(&server)).await.unwrap_err() else {
        panic!("expected a decode error");
    };
    assert_eq!(decode.body(), br#"{"things":"not-a-list"}"#);
}

#[tokio::test]
async fn net_helpers_directly() {
    // The bounded reader on its own, as identity and OAuth use it.
    let server = Hostile::start(|_, _| Reply::Generated {
        head: head("200 OK", &[("transfer-encoding", "chunked")]),
        total: 10 * MIB,
        chunked: true,
    })
    .await;
    let http = reqwest::Client::builder()
        .redirect(RedirectPolicy::None.to_reqwest())
        .build()
        .unwrap();
    let url = format!("{}/doc?secret=QUERY-SECRET", server.url());
    let response = http.get(&url).send().await.unwrap();
    let error = net::read_limited(response, 1000).await.unwrap_err();
    let shown = error.to_string();
    assert!(shown.contains("limit of 1000 bytes"), "{shown}");
    assert!(!shown.contains("QUERY-SECRET"), "{shown}");
    let response = http.get(&url).send().await.unwrap();
    assert_eq!(
        net::read_limited(response, 10 * MIB).await.unwrap().len() as u64,
        10 * MIB
    );
}
