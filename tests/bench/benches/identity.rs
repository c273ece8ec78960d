//! Identity resolution (`cargo xtask bench identity`), against local servers on 127.0.0.1:
//! a DNS server (UDP, answers `_atproto.<handle>` after [`DNS_DELAY`]), a handle's
//! `/.well-known/atproto-did` (after [`WELL_KNOWN_DELAY`]) and a PLC directory (after
//! [`PLC_DELAY`]). The delays stand in for network round trips so that the structure of a cold
//! lookup shows: DNS and HTTPS run concurrently, then the document is fetched.
//!
//! * `identity-cached/atlex`: `resolver.resolve(handle)` with a warm cache (one call per
//!   iteration; throughput).
//! * `identity-cold/atlex`: `clear_cache()` then `resolve(handle)`: handle → DID by DNS ‖ HTTPS,
//!   DID → document from the PLC, bidirectional check.
//! * `identity-legs/{dns,well-known,plc}`: each leg alone with a bare client (a hand-built DNS
//!   query over UDP; `reqwest` GETs), whose sum is what a resolver doing the legs one after
//!   the other would take.

use std::hint::black_box;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use atlex::identity::{HandleMethod, IdentityResolver};
use atlex::types::AtIdentifier;
use criterion::{Criterion, Throughput};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

const DNS_DELAY: Duration = Duration::from_millis(20);
const WELL_KNOWN_DELAY: Duration = Duration::from_millis(20);
const PLC_DELAY: Duration = Duration::from_millis(5);
const DID: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
const HANDLE: &str = "bench.test";

fn document() -> String {
    serde_json::json!({
        "id": DID,
        "alsoKnownAs": [format!("at://{HANDLE}")],
        "verificationMethod": [{"id": "#atproto", "type": "Multikey", "controller": DID,
            "publicKeyMultibase": "zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc"}],
        "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
            "serviceEndpoint": "https://pds.example.com"}]
    })
    .to_string()
}

async fn dns_server() -> std::io::Result<SocketAddr> {
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
    let addr = socket.local_addr()?;
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((len, peer)) = socket.recv_from(&mut buf).await {
            let Ok(request) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            let socket = socket.clone();
            tokio::spawn(async move {
                tokio::time::sleep(DNS_DELAY).await;
                let Some(query) = request.queries.first().cloned() else {
                    return;
                };
                let mut response =
                    Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
                response.metadata.recursion_available = true;
                response.metadata.recursion_desired = request.metadata.recursion_desired;
                response.add_query(query.clone());
                if query.query_type() == RecordType::TXT {
                    response.add_answer(Record::from_rdata(
                        query.name().clone(),
                        60,
                        RData::TXT(TXT::new(vec![format!("did={DID}")])),
                    ));
                } else {
                    response.metadata.response_code = ResponseCode::NXDomain;
                }
                if let Ok(bytes) = response.to_vec() {
                    let _ = socket.send_to(&bytes, peer).await;
                }
            });
        }
    });
    Ok(addr)
}

/// An HTTP/1.1 server (keep-alive) answering the well-known path and the PLC path.
async fn http_server() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let doc = Arc::new(document());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let doc = doc.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buffer[..end]).to_string();
                    buffer.drain(..end + 4);
                    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                    let (status, body) = if path == "/.well-known/atproto-did" {
                        tokio::time::sleep(WELL_KNOWN_DELAY).await;
                        ("200 OK", DID.to_owned())
                    } else if path == format!("/{DID}") {
                        tokio::time::sleep(PLC_DELAY).await;
                        ("200 OK", doc.to_string())
                    } else {
                        ("404 Not Found", String::new())
                    };
                    let reply = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// One bare DNS TXT query over UDP.
async fn bare_dns(socket: &UdpSocket, id: u16) -> Result<(), String> {
    let name = Name::from_ascii(format!("_atproto.{HANDLE}.")).map_err(|e| e.to_string())?;
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(name, RecordType::TXT));
    message.metadata.recursion_desired = true;
    socket
        .send(&message.to_vec().map_err(|e| e.to_string())?)
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4096];
    loop {
        let len = socket.recv(&mut buf).await.map_err(|e| e.to_string())?;
        let answer = Message::from_vec(&buf[..len]).map_err(|e| e.to_string())?;
        if answer.metadata.id == id {
            return if answer.answers.is_empty() {
                Err("no answer".into())
            } else {
                Ok(())
            };
        }
    }
}

async fn bare_get(http: &reqwest::Client, url: &str, host: Option<&str>) -> Result<(), String> {
    let mut request = http.get(url);
    if let Some(host) = host {
        request = request.header(reqwest::header::HOST, host);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    black_box(response.bytes().await.map_err(|e| e.to_string())?);
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("identity benchmark: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    // Servers on their own runtime and threads; the client side on a current-thread runtime.
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let dns = servers.block_on(dns_server()).map_err(|e| e.to_string())?;
    let http = servers.block_on(http_server()).map_err(|e| e.to_string())?;
    let base = format!("http://127.0.0.1:{}", http.port());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let resolver = IdentityResolver::builder()
        .handle_methods([HandleMethod::Dns, HandleMethod::WellKnown])
        .dns_server(dns)
        .well_known_base(reqwest::Url::parse(&base).map_err(|e| e.to_string())?)
        .plc_url(base.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let handle = AtIdentifier::new(HANDLE).map_err(|e| e.to_string())?;
    // Check once that it resolves (a benchmark of errors would measure nothing).
    let identity = runtime
        .block_on(resolver.resolve(&handle))
        .map_err(|e| e.to_string())?;
    if identity.did.as_str() != DID || identity.handle.verified().is_none() {
        return Err(format!("unexpected identity {identity:?}"));
    }
    let http_client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let socket = runtime
        .block_on(async {
            let socket = UdpSocket::bind("127.0.0.1:0").await?;
            socket.connect(dns).await?;
            Ok::<_, std::io::Error>(socket)
        })
        .map_err(|e| e.to_string())?;
    runtime.block_on(bare_dns(&socket, 1))?;
    let well_known = format!("{base}/.well-known/atproto-did");
    let plc = format!("{base}/{DID}");

    let mut criterion = Criterion::default().configure_from_args();
    {
        let mut group = criterion.benchmark_group("identity-cached");
        group.throughput(Throughput::Elements(1));
        group.bench_function("atlex", |b| {
            b.to_async(&runtime).iter(|| async {
                black_box(resolver.resolve(&handle).await.map(|identity| identity.did))
            })
        });
        group.finish();
    }
    {
        let mut group = criterion.benchmark_group("identity-cold");
        group.sample_size(20);
        group.bench_function("atlex", |b| {
            b.to_async(&runtime).iter(|| async {
                resolver.clear_cache();
                black_box(resolver.resolve(&handle).await.map(|identity| identity.did))
            })
        });
        group.finish();
    }
    {
        let mut group = criterion.benchmark_group("identity-legs");
        group.sample_size(20);
        let mut id = 2u16;
        group.bench_function("dns", |b| {
            b.to_async(&runtime).iter(|| {
                id = id.wrapping_add(1);
                let id = id;
                let socket = &socket;
                async move { black_box(bare_dns(socket, id).await) }
            })
        });
        group.bench_function("well-known", |b| {
            b.to_async(&runtime).iter(|| async {
                black_box(bare_get(&http_client, &well_known, Some(HANDLE)).await)
            })
        });
        group.bench_function("plc", |b| {
            b.to_async(&runtime)
                .iter(|| async { black_box(bare_get(&http_client, &plc, None).await) })
        });
        group.finish();
    }
    criterion.final_summary();
    Ok(())
}
