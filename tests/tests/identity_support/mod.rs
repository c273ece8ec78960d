//! Servers for the identity tests, bound to 127.0.0.1: a DNS responder (UDP, messages parsed
//! and written with hickory-proto) and a small HTTP/1.1 server whose handler is an async
//! closure (so a test can hold an answer back, or trickle a body).

#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// What the DNS responder answers for one name.
#[derive(Clone, Debug)]
pub enum DnsAnswer {
    /// These TXT records (each one character-string).
    Txt(Vec<String>),
    /// NXDOMAIN.
    NxDomain,
    /// No answer at all (the client times out).
    Silent,
}

type Hook = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A DNS server on 127.0.0.1 (UDP). Names not in its table get NXDOMAIN.
pub struct DnsServer {
    pub addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    table: Arc<Mutex<HashMap<String, DnsAnswer>>>,
}

impl DnsServer {
    /// Starts a server; `before_answer` runs (awaited) before each answer is sent.
    pub async fn start(before_answer: Option<Hook>) -> DnsServer {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = socket.local_addr().unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let table: Arc<Mutex<HashMap<String, DnsAnswer>>> = Arc::default();
        let (q, t) = (queries.clone(), table.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(request) = Message::from_vec(&buf[..len]) else {
                    continue;
                };
                q.fetch_add(1, Ordering::SeqCst);
                let Some(query) = request.queries.first().cloned() else {
                    continue;
                };
                let name = query
                    .name()
                    .to_ascii()
                    .trim_end_matches('.')
                    .to_ascii_lowercase();
                let answer = t
                    .lock()
                    .unwrap()
                    .get(&name)
                    .cloned()
                    .unwrap_or(DnsAnswer::NxDomain);
                let (socket, hook) = (socket.clone(), before_answer.clone());
                tokio::spawn(async move {
                    if let Some(hook) = hook {
                        hook().await;
                    }
                    let mut response = Message::new(
                        request.metadata.id,
                        MessageType::Response,
                        request.metadata.op_code,
                    );
                    response.metadata.recursion_desired = request.metadata.recursion_desired;
                    response.metadata.recursion_available = true;
                    response.add_query(query.clone());
                    match answer {
                        DnsAnswer::Silent => return,
                        DnsAnswer::NxDomain => {
                            response.metadata.response_code = ResponseCode::NXDomain;
                        }
                        DnsAnswer::Txt(records) => {
                            if query.query_type() == RecordType::TXT {
                                for text in records {
                                    response.add_answer(Record::from_rdata(
                                        query.name().clone(),
                                        60,
                                        RData::TXT(TXT::new(vec![text])),
                                    ));
                                }
                            }
                        }
                    }
                    let bytes = response.to_vec().unwrap();
                    let _ = socket.send_to(&bytes, peer).await;
                });
            }
        });
        DnsServer {
            addr,
            queries,
            table,
        }
    }

    /// Sets the answer for `name` (e.g. `_atproto.alice.test`).
    pub fn set(&self, name: &str, answer: DnsAnswer) {
        self.table
            .lock()
            .unwrap()
            .insert(name.to_ascii_lowercase(), answer);
    }

    /// How many queries arrived.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

/// A request as the HTTP server saw it.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub path: String,
    pub host: Option<String>,
}

/// What the handler answers.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Body chunks, each sent after its delay.
    pub chunks: Vec<(Duration, Vec<u8>)>,
    /// Whether to send a Content-Length (else the body ends with the connection).
    pub content_length: bool,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            chunks: vec![(Duration::ZERO, body.into())],
            content_length: true,
        }
    }

    pub fn text(body: impl Into<Vec<u8>>) -> Reply {
        let mut reply = Reply::new(200, body);
        reply.headers = vec![("content-type".into(), "text/plain".into())];
        reply
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Handler =
    Arc<dyn Fn(SeenRequest) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

/// An HTTP/1.1 server on 127.0.0.1 (one request per connection).
pub struct HttpServer {
    pub addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

impl HttpServer {
    pub async fn start<F, Fut>(handler: F) -> HttpServer
    where
        F: Fn(SeenRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |request| Box::pin(handler(request)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let (handler, counter) = (handler.clone(), counter.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                        if head.len() > 16 * 1024 {
                            return;
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let text = String::from_utf8_lossy(&head).to_string();
                    let mut lines = text.split("\r\n");
                    let path = lines
                        .next()
                        .and_then(|line| line.split(' ').nth(1))
                        .unwrap_or("/")
                        .to_owned();
                    let host = lines
                        .filter_map(|line| line.split_once(':'))
                        .find(|(name, _)| name.trim().eq_ignore_ascii_case("host"))
                        .map(|(_, value)| value.trim().to_owned());
                    let reply = handler(SeenRequest { path, host }).await;
                    let mut out = format!("HTTP/1.1 {} X\r\nconnection: close\r\n", reply.status);
                    for (name, value) in &reply.headers {
                        out.push_str(&format!("{name}: {value}\r\n"));
                    }
                    if reply.content_length {
                        let total: usize = reply.chunks.iter().map(|(_, c)| c.len()).sum();
                        out.push_str(&format!("content-length: {total}\r\n"));
                    }
                    out.push_str("\r\n");
                    if stream.write_all(out.as_bytes()).await.is_err() {
                        return;
                    }
                    for (delay, chunk) in reply.chunks {
                        tokio::time::sleep(delay).await;
                        if stream.write_all(&chunk).await.is_err() {
                            return;
                        }
                        let _ = stream.flush().await;
                    }
                    let _ = stream.shutdown().await;
                });
            }
        });
        HttpServer { addr, requests }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// A DID document for `did` with a PDS at `pds` and handle `handle`.
pub fn document(did: &str, handle: &str, pds: &str) -> String {
    serde_json::json!({
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": did,
        "alsoKnownAs": [format!("at://{handle}")],
        "verificationMethod": [{
            "id": format!("{did}#atproto"),
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": "zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc"
        }],
        "service": [{
            "id": "#atproto_pds",
            "type": "AtprotoPersonalDataServer",
            "serviceEndpoint": pds
        }]
    })
    .to_string()
}
