//! Blob helpers against mock servers: `upload_blob` sends the blob's MIME type and streams
//! files, `get_blob` streams the body (the first chunk arrives before the server has sent the
//! rest), keeps the content type, maps error responses to typed errors and keeps auth refresh
//! and retries for the request part.

mod support;

use std::future::Future;
use std::time::Duration;

use atlex::auth::PasswordSession;
use atlex::com::atproto::sync::get_blob;
use atlex::types::{Blob, BlobRef, Cid, CidLink, Did};
use atlex::xrpc::{Client, Error, RawBody, TransportErrorKind};
use futures::{AsyncReadExt, StreamExt, TryStreamExt};
use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const UPLOAD: &str = "/xrpc/com.atproto.repo.uploadBlob";
const GET_BLOB: &str = "/xrpc/com.atproto.sync.getBlob";
const DID: &str = "did:plc:alice";

fn did() -> Did {
    Did::new(DID).unwrap()
}

/// Deterministic pseudo-random bytes (xorshift), so bodies are not trivially compressible.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

fn blob_json(content: &[u8], mime_type: &str) -> serde_json::Value {
    json!({
        "blob": {
            "$type": "blob",
            "ref": {"$link": CidLink::for_raw(content).to_string()},
            "mimeType": mime_type,
            "size": content.len(),
        }
    })
}

fn blob_cid(content: &[u8]) -> Cid {
    Cid::new(CidLink::for_raw(content).to_string()).unwrap()
}

async fn anonymous(server: &MockServer) -> Client {
    Client::builder(server.uri())
        .retry(fast_retry(2))
        .build()
        .unwrap()
}

#[tokio::test]
async fn upload_from_bytes_sends_the_mime_type_and_returns_the_blob_ref() {
    let server = MockServer::start().await;
    let content = pattern(4096, 1);
    Mock::given(method("POST"))
        .and(path(UPLOAD))
        .and(header("content-type", "image/png"))
        .respond_with(ResponseTemplate::new(200).set_body_json(blob_json(&content, "image/png")))
        .expect(1)
        .mount(&server)
        .await;
    let client = anonymous(&server).await;

    let (blob, _) = client
        .upload_blob(RawBody::new(content.clone(), "image/png"))
        .await
        .unwrap();
    assert_eq!(
        blob,
        BlobRef::Typed(Blob::for_content(&content, "image/png"))
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].body, content, "the bytes are sent as they are");
}

#[tokio::test]
async fn upload_from_a_file_streams_it_with_its_length_and_type() {
    let server = MockServer::start().await;
    let content = pattern(300 * 1024, 2);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blob.bin");
    std::fs::write(&file, &content).unwrap();
    Mock::given(method("POST"))
        .and(path(UPLOAD))
        .and(header("content-type", "application/octet-stream"))
        .and(header("content-length", content.len().to_string().as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(blob_json(&content, "application/octet-stream")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = anonymous(&server).await;

    let (blob, _) = client
        .upload_blob(RawBody::from_file(&file, "application/octet-stream"))
        .await
        .unwrap();
    assert_eq!(blob.cid().unwrap(), CidLink::for_raw(&content));
    assert_eq!(blob.size(), Some(content.len() as u64));
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests[0].body, content);

    // A file that cannot be read fails before anything is sent.
    let error = client
        .upload_blob(RawBody::from_file(dir.path().join("missing"), "image/png"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Encode(_)), "{error:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn upload_rejects_a_content_type_that_is_not_a_concrete_mime_type() {
    let server = MockServer::start().await;
    let client = anonymous(&server).await;
    for content_type in ["", "*/*", "image/*", "png"] {
        let error = client
            .upload_blob(RawBody::new(vec![1, 2, 3], content_type))
            .await
            .unwrap_err();
        match &error {
            Error::InvalidRequest(message) => {
                assert!(message.contains("content type"), "{message}")
            }
            other => panic!("{content_type:?}: expected InvalidRequest, got {other:?}"),
        }
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn upload_errors_are_mapped() {
    let server = MockServer::start().await;
    Mock::given(path(UPLOAD))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": "InvalidRequest", "message": "blob too big"})),
        )
        .mount(&server)
        .await;
    let client = anonymous(&server).await;
    let error = client
        .upload_blob(RawBody::new(vec![0; 10], "image/png"))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(400));
    assert_eq!(error.code(), Some("InvalidRequest"));
}

#[tokio::test]
async fn get_blob_returns_the_content_type_and_every_chunk() {
    let server = MockServer::start().await;
    // Large enough that it arrives in several chunks.
    let content = pattern(1024 * 1024, 3);
    Mock::given(method("GET"))
        .and(path(GET_BLOB))
        .and(query_param("did", DID))
        .and(query_param("cid", blob_cid(&content).as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "image/png")
                .set_body_bytes(content.clone()),
        )
        .mount(&server)
        .await;
    let client = anonymous(&server).await;

    let (download, _) = client.get_blob(did(), blob_cid(&content)).await.unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.content_type(), Some("image/png"));
    assert_eq!(download.content_length(), Some(content.len() as u64));
    let chunks: Vec<_> = download.try_collect().await.unwrap();
    assert!(
        chunks.len() > 1,
        "a 1 MiB body comes in several chunks, got {}",
        chunks.len()
    );
    assert_eq!(chunks.concat(), content);

    // The other ways to read it give the same bytes.
    let (download, _) = client.get_blob(did(), blob_cid(&content)).await.unwrap();
    assert_eq!(download.bytes().await.unwrap(), content);
    let (download, _) = client.get_blob(did(), blob_cid(&content)).await.unwrap();
    let mut read = Vec::new();
    download
        .into_async_read()
        .read_to_end(&mut read)
        .await
        .unwrap();
    assert_eq!(read, content);
}

#[tokio::test]
async fn get_blob_error_responses_are_typed() {
    let server = MockServer::start().await;
    let missing = pattern(10, 4);
    let broken = pattern(10, 5);
    Mock::given(path(GET_BLOB))
        .and(query_param("cid", blob_cid(&missing).as_str()))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": "BlobNotFound", "message": "Blob not found"})),
        )
        .mount(&server)
        .await;
    Mock::given(path(GET_BLOB))
        .and(query_param("cid", blob_cid(&broken).as_str()))
        .respond_with(
            ResponseTemplate::new(502)
                .insert_header("content-type", "text/html")
                .set_body_string("<html>bad gateway</html>"),
        )
        .mount(&server)
        .await;
    let client = anonymous(&server).await;

    match client.get_blob(did(), blob_cid(&missing)).await {
        Err(Error::Xrpc {
            status: 400,
            error: get_blob::Error::BlobNotFound(message),
        }) => assert_eq!(message.as_deref(), Some("Blob not found")),
        other => panic!("expected BlobNotFound, got {other:?}"),
    }
    // A 5xx without an XRPC body is retried (a query), then kept whole as Error::Status.
    match client.get_blob(did(), blob_cid(&broken)).await {
        Err(Error::Status(response)) => {
            assert_eq!(response.status, 502);
            assert_eq!(response.text(), Some("<html>bad gateway</html>"));
        }
        other => panic!("expected Error::Status, got {other:?}"),
    }
    assert_eq!(
        hits(&server, "com.atproto.sync.getBlob").await,
        1 + 3,
        "one try for the 400, three (two retries) for the 502"
    );
}

#[tokio::test]
async fn get_blob_refreshes_a_rejected_token_before_streaming() {
    let server = MockServer::start().await;
    let (a1, r1) = (jwt("access-1", 7200), jwt("refresh-1", 86400));
    let (a2, r2) = (jwt("access-2", 7200), jwt("refresh-2", 86400));
    let session = |access: &str, refresh: &str| json!({"accessJwt": access, "refreshJwt": refresh, "handle": "alice.test", "did": DID});
    Mock::given(path("/xrpc/com.atproto.server.createSession"))
        .respond_with(ResponseTemplate::new(200).set_body_json(session(&a1, &r1)))
        .mount(&server)
        .await;
    Mock::given(path("/xrpc/com.atproto.server.refreshSession"))
        .and(header("authorization", format!("Bearer {r1}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(session(&a2, &r2)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path(GET_BLOB))
        .and(header("authorization", format!("Bearer {a1}").as_str()))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": "ExpiredToken", "message": "Token has expired"})),
        )
        .mount(&server)
        .await;
    let content = pattern(64 * 1024, 6);
    Mock::given(path(GET_BLOB))
        .and(header("authorization", format!("Bearer {a2}").as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "video/mp4")
                .set_body_bytes(content.clone()),
        )
        .mount(&server)
        .await;
    let client = PasswordSession::login(&server.uri(), "alice.test", "pw", TestStore::new())
        .await
        .unwrap();

    let (download, _) = client.get_blob(did(), blob_cid(&content)).await.unwrap();
    assert_eq!(download.content_type(), Some("video/mp4"));
    assert_eq!(download.bytes().await.unwrap(), content);
}

/// A one-connection HTTP/1.1 server: reads a request's head, then hands the socket to
/// `respond`. Returns its base URL.
async fn raw_server<F, Fut>(respond: F) -> String
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if socket.read(&mut byte).await.unwrap() == 0 {
                return;
            }
            head.push(byte[0]);
        }
        respond(socket).await;
    });
    format!("http://{address}")
}

fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

#[tokio::test]
async fn get_blob_hands_over_the_body_before_it_has_all_arrived() {
    let first = pattern(1000, 7);
    let second = pattern(2000, 8);
    let (release, released) = oneshot::channel::<()>();
    let (first_out, second_out) = (first.clone(), second.clone());
    let url = raw_server(move |mut socket| async move {
        socket
            .write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n\
                  transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        socket.write_all(&chunk(&first_out)).await.unwrap();
        socket.flush().await.unwrap();
        // The rest is only sent once the client has seen the first chunk.
        if released.await.is_err() {
            return;
        }
        socket.write_all(&chunk(&second_out)).await.unwrap();
        socket.write_all(b"0\r\n\r\n").await.unwrap();
        socket.flush().await.unwrap();
    })
    .await;
    let client = Client::anonymous(&url).unwrap();

    let (mut download, _) = tokio::time::timeout(
        Duration::from_secs(10),
        client.get_blob(did(), blob_cid(&first)),
    )
    .await
    .expect("get_blob waited for the whole body instead of returning after the headers")
    .unwrap();
    assert_eq!(download.content_type(), Some("application/octet-stream"));
    assert_eq!(download.content_length(), None, "chunked: no length");
    let mut received = Vec::new();
    while received.len() < first.len() {
        let piece = tokio::time::timeout(Duration::from_secs(10), download.next())
            .await
            .expect("the first chunk was not handed over before the rest was sent")
            .expect("a chunk")
            .unwrap();
        received.extend_from_slice(&piece);
    }
    assert_eq!(received, first);
    release.send(()).unwrap();
    let rest: Vec<_> = download.try_collect().await.unwrap();
    assert_eq!(rest.concat(), second);
}

#[tokio::test]
async fn a_body_cut_short_ends_the_stream_with_a_transport_error() {
    let url = raw_server(|mut socket| async move {
        socket
            .write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ncontent-length: 5000\r\n\
                  connection: close\r\n\r\n",
            )
            .await
            .unwrap();
        socket.write_all(&[7u8; 100]).await.unwrap();
        socket.flush().await.unwrap();
        // Dropping the socket closes the connection 4900 bytes early.
    })
    .await;
    let client = Client::anonymous(&url).unwrap();
    let (mut download, _) = client.get_blob(did(), blob_cid(b"whatever")).await.unwrap();
    assert_eq!(download.content_length(), Some(5000));
    let mut received = 0;
    let error = loop {
        match download.next().await {
            Some(Ok(piece)) => received += piece.len(),
            Some(Err(error)) => break error,
            None => panic!("the stream ended without an error after {received} bytes"),
        }
    };
    assert!(received <= 100);
    assert_eq!(error.kind(), TransportErrorKind::Network);
    assert_eq!(error.nsid(), "com.atproto.sync.getBlob");
    assert!(
        download.next().await.is_none(),
        "the stream ends after an error"
    );
}
