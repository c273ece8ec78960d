//! Event streams against local WebSocket servers: typed firehose frames, hostile frames and
//! servers (each a typed error, no panic, bounded memory), the consumer's reconnects, cursors,
//! gap reports and slow-consumer error, and Jetstream (plain and zstd-compressed).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use atlex::app::bsky::feed::post::Post;
use atlex::com::atproto::sync::subscribe_repos::{self, Message, SubscribeRepos};
use atlex::net::ws::{WsErrorKind, WsOptions};
use atlex::stream::jetstream::{Jetstream, JetstreamError, JetstreamOptions};
use atlex::stream::{
    Backoff, Consumer, ConsumerError, ConsumerEvent, ConsumerOptions, CursorStore, Firehose,
    MemoryCursor, RecordAction, RepoEvent,
};
use atlex::types::data::cbor::to_dag_cbor;
use atlex::xrpc::{Client, SubscribeError};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message as WsMsg;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use url::Url;

fn frame(header: serde_json::Value, payload: serde_json::Value) -> Vec<u8> {
    let mut bytes = to_dag_cbor(&atlex::types::Data::from_json(&header).unwrap()).unwrap();
    bytes.extend(to_dag_cbor(&atlex::types::Data::from_json(&payload).unwrap()).unwrap());
    bytes
}

fn identity(seq: i64) -> Vec<u8> {
    frame(
        json!({"op": 1, "t": "#identity"}),
        json!({"seq": seq, "did": "did:plc:abc", "time": "2024-05-01T12:00:00.000Z"}),
    )
}

/// What one connection of a test server does.
type Script = Arc<dyn Fn(Option<i64>, usize) -> Vec<Step> + Send + Sync>;

#[derive(Clone)]
enum Step {
    Send(WsMsg),
    /// Writes raw bytes on the socket (frames the WebSocket layer would not send).
    Raw(Vec<u8>),
    /// Closes the TCP connection without a close frame.
    Drop,
    /// Sends a normal close frame.
    Close,
    /// Stops sending and keeps the connection open until the client leaves.
    Hang,
}

/// A local WebSocket server on a free port; each connection runs `script(cursor, index)`.
/// The request URIs are recorded.
async fn server(script: Script) -> (Url, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let uris = Arc::new(Mutex::new(Vec::new()));
    let seen = uris.clone();
    tokio::spawn(async move {
        let mut index = 0;
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let script = script.clone();
            let seen = seen.clone();
            let this = index;
            index += 1;
            tokio::spawn(async move { serve(tcp, script, seen, this).await });
        }
    });
    (
        Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
        uris,
    )
}

#[allow(clippy::result_large_err)] // the callback type is tungstenite's
async fn serve(tcp: TcpStream, script: Script, seen: Arc<Mutex<Vec<String>>>, index: usize) {
    let uri = Arc::new(Mutex::new(String::new()));
    let record = uri.clone();
    let callback = move |request: &Request, response: Response| {
        *record.lock().unwrap() = request.uri().to_string();
        Ok(response)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
        return;
    };
    let uri = uri.lock().unwrap().clone();
    seen.lock().unwrap().push(uri.clone());
    let cursor = Url::parse(&format!("http://x{uri}"))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "cursor")
        .and_then(|(_, v)| v.parse().ok());
    for step in script(cursor, index) {
        match step {
            Step::Send(message) => {
                if ws.send(message).await.is_err() {
                    return;
                }
            }
            Step::Raw(bytes) => {
                let _ = ws.get_mut().write_all(&bytes).await;
                let _ = ws.get_mut().flush().await;
            }
            Step::Drop => {
                let _ = ws.get_mut().shutdown().await;
                return;
            }
            Step::Close => {
                let _ = ws.close(None).await;
                // Let the client's close answer arrive.
                while let Some(Ok(_)) = ws.next().await {}
                return;
            }
            Step::Hang => {
                // Never read: no pong either.
                std::future::pending::<()>().await;
            }
        }
    }
    let _ = ws.close(None).await;
    while let Some(Ok(_)) = ws.next().await {}
}

fn script(f: impl Fn(Option<i64>, usize) -> Vec<Step> + Send + Sync + 'static) -> Script {
    Arc::new(f)
}

fn options() -> WsOptions {
    WsOptions {
        max_message_size: 64 * 1024,
        connect_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(30),
        ping_interval: Duration::from_secs(10),
        allow_http: false,
    }
}

async fn subscribe(url: &Url, options: WsOptions) -> atlex::xrpc::EventStream<SubscribeRepos> {
    let client = Client::anonymous(url.as_str()).unwrap();
    client
        .subscribe_with::<SubscribeRepos>(subscribe_repos::Params::new(), options)
        .await
        .unwrap()
}

#[tokio::test]
async fn typed_messages_unknown_types_and_the_generated_method() {
    let (url, uris) = server(script(|_, _| {
        vec![
            Step::Send(WsMsg::Binary(identity(7).into())),
            Step::Send(WsMsg::Binary(
                frame(json!({"op": 1, "t": "#hologram"}), json!({"seq": 8})).into(),
            )),
        ]
    }))
    .await;
    let client = Client::anonymous(url.as_str()).unwrap();
    // The generated method on the namespace client.
    let mut stream = client
        .sync()
        .subscribe_repos(subscribe_repos::Params::new().cursor(3))
        .await
        .unwrap();
    match stream.next().await.unwrap().unwrap() {
        Message::Identity(identity) => assert_eq!(identity.seq, 7),
        other => panic!("expected #identity, got {other:?}"),
    }
    match stream.next().await.unwrap().unwrap() {
        Message::Unknown(member) => {
            assert_eq!(
                member.type_tag(),
                "com.atproto.sync.subscribeRepos#hologram"
            )
        }
        other => panic!("expected an unknown member, got {other:?}"),
    }
    assert!(
        stream.next().await.is_none(),
        "a normal close ends the stream"
    );
    assert_eq!(
        uris.lock().unwrap().as_slice(),
        ["/xrpc/com.atproto.sync.subscribeRepos?cursor=3"]
    );
}

#[tokio::test]
async fn bad_frames_are_typed_errors_and_the_stream_goes_on() {
    let good = identity(1);
    let truncated = good[..good.len() - 3].to_vec();
    let (url, _) = server(script(move |_, _| {
        vec![
            Step::Send(WsMsg::Binary(truncated.clone().into())),
            Step::Send(WsMsg::Binary(vec![0xff, 0x00, 0x13].into())),
            Step::Send(WsMsg::Binary(
                frame(
                    json!({"op": 1, "t": "#identity"}),
                    json!({"seq": "not a number"}),
                )
                .into(),
            )),
            Step::Send(WsMsg::Text("{\"hello\":1}".into())),
            Step::Send(WsMsg::Binary(identity(2).into())),
        ]
    }))
    .await;
    let mut stream = subscribe(&url, options()).await;
    for what in ["truncated", "bad CBOR", "bad payload"] {
        match stream.next().await.unwrap() {
            Err(SubscribeError::Frame(error)) => assert!(!error.to_string().is_empty()),
            other => panic!("{what}: expected a frame error, got {other:?}"),
        }
    }
    assert!(matches!(
        stream.next().await.unwrap(),
        Err(SubscribeError::Text { len: 11 })
    ));
    assert!(matches!(
        stream.next().await.unwrap(),
        Ok(Message::Identity(i)) if i.seq == 2
    ));
}

#[tokio::test]
async fn error_frames_are_typed_and_end_the_stream() {
    let (url, _) = server(script(|_, _| {
        vec![
            Step::Send(WsMsg::Binary(
                frame(
                    json!({"op": -1}),
                    json!({"error": "FutureCursor", "message": "no"}),
                )
                .into(),
            )),
            Step::Send(WsMsg::Binary(identity(1).into())),
        ]
    }))
    .await;
    let mut stream = subscribe(&url, options()).await;
    match stream.next().await.unwrap() {
        Err(SubscribeError::Server(subscribe_repos::Error::FutureCursor(message))) => {
            assert_eq!(message.as_deref(), Some("no"))
        }
        other => panic!("expected FutureCursor, got {other:?}"),
    }
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn oversized_messages_are_refused_from_the_header() {
    // A frame header announcing 1 GiB, and no payload: refused before anything is buffered.
    let mut huge = vec![0x82, 127];
    huge.extend((1u64 << 30).to_be_bytes());
    let big = vec![0u8; 100 * 1024];
    let (url, _) = server(script(move |_, index| match index {
        0 => vec![Step::Raw(huge.clone()), Step::Hang],
        _ => vec![Step::Send(WsMsg::Binary(big.clone().into())), Step::Hang],
    }))
    .await;
    for _ in 0..2 {
        let mut stream = subscribe(&url, options()).await;
        match stream.next().await.unwrap() {
            Err(SubscribeError::Ws(error)) => {
                assert_eq!(
                    error.kind(),
                    &WsErrorKind::TooLarge { limit: 64 * 1024 },
                    "{error}"
                );
                assert!(error.to_string().contains("127.0.0.1"), "{error}");
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert!(stream.next().await.is_none());
    }
}

#[tokio::test]
async fn a_server_closing_mid_frame_is_a_reset() {
    // A binary frame of 1000 bytes, cut after 10, then the socket closes.
    let mut cut = vec![0x82, 126, 0x03, 0xe8];
    cut.extend([0u8; 10]);
    let (url, _) = server(script(move |_, _| vec![Step::Raw(cut.clone()), Step::Drop])).await;
    let mut stream = subscribe(&url, options()).await;
    match stream.next().await.unwrap() {
        Err(SubscribeError::Ws(error)) => {
            assert!(matches!(error.kind(), WsErrorKind::Reset(_)), "{error}")
        }
        other => panic!("expected a reset, got {other:?}"),
    }
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let (url, _) = server(script(|_, _| vec![Step::Hang])).await;
    let options = WsOptions {
        idle_timeout: Duration::from_millis(300),
        ping_interval: Duration::from_millis(100),
        ..options()
    };
    let mut stream = subscribe(&url, options).await;
    match stream.next().await.unwrap() {
        Err(SubscribeError::Ws(error)) => {
            assert!(matches!(error.kind(), WsErrorKind::Idle(_)), "{error}")
        }
        other => panic!("expected an idle timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_that_never_upgrades_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts TCP, never answers the upgrade.
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let client = Client::anonymous(format!("http://127.0.0.1:{port}")).unwrap();
    let options = WsOptions {
        connect_timeout: Duration::from_millis(300),
        ..options()
    };
    let error = client
        .subscribe_with::<SubscribeRepos>(subscribe_repos::Params::new(), options)
        .await
        .unwrap_err();
    match error {
        SubscribeError::Ws(error) => {
            assert!(
                matches!(error.kind(), WsErrorKind::ConnectTimeout(_)),
                "{error}"
            )
        }
        other => panic!("expected a connect timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn plain_ws_to_a_remote_host_is_refused() {
    let client = Client::builder("https://example.com").build().unwrap();
    let url = atlex::xrpc::subscription_url::<SubscribeRepos>(
        &Url::parse("http://example.com").unwrap(),
        &subscribe_repos::Params::new(),
    )
    .unwrap();
    assert_eq!(url.scheme(), "ws");
    let error = atlex::xrpc::subscribe_url::<SubscribeRepos>(&url, WsOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SubscribeError::Ws(e) if matches!(e.kind(), WsErrorKind::Url(_))),
        "{error}"
    );
    drop(client);
}

fn firehose(url: &Url) -> Firehose<SubscribeRepos> {
    Firehose::at(url.clone(), subscribe_repos::Params::new(), options())
}

fn fast_backoff() -> ConsumerOptions {
    ConsumerOptions {
        backoff: Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
            max_attempts: Some(5),
        },
        ..ConsumerOptions::default()
    }
}

#[tokio::test]
async fn the_consumer_reconnects_and_resumes_from_the_last_cursor() {
    // Each connection sends the three frames after the cursor, then fails in a different way.
    let (url, uris) = server(script(|cursor, index| {
        let start = cursor.unwrap_or(0);
        let mut steps: Vec<Step> = (start + 1..=start + 3)
            .map(|seq| Step::Send(WsMsg::Binary(identity(seq).into())))
            .collect();
        steps.push(match index {
            0 => Step::Drop,
            1 => Step::Close,
            _ => Step::Hang,
        });
        steps
    }))
    .await;
    let store = MemoryCursor::new(Some(10));
    let mut consumer =
        Consumer::start(firehose(&url), Arc::new(store.clone()), fast_backoff()).unwrap();
    let mut seqs = Vec::new();
    let mut reconnects = Vec::new();
    while seqs.len() < 9 {
        match consumer.next().await.unwrap() {
            Ok(ConsumerEvent::Message { cursor, message }) => {
                let Message::Identity(identity) = message else {
                    panic!("expected #identity")
                };
                assert_eq!(cursor, Some(identity.seq));
                seqs.push(identity.seq);
            }
            Ok(ConsumerEvent::Reconnected { cursor, .. }) => reconnects.push(cursor),
            Ok(other) => panic!("unexpected {other:?}"),
            // The dropped connection is reported, then the consumer reconnects.
            Err(ConsumerError::Source(SubscribeError::Ws(_))) => {}
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!(
        seqs,
        (11..=19).collect::<Vec<_>>(),
        "no loss, no duplicates"
    );
    assert_eq!(reconnects, [Some(13), Some(16)]);
    // The app finished with 18 when it asked for 19; 19 is saved at the next ask.
    assert_eq!(store.get(), Some(18));
    let uris = uris.lock().unwrap().clone();
    assert_eq!(
        uris,
        [
            "/xrpc/com.atproto.sync.subscribeRepos?cursor=10",
            "/xrpc/com.atproto.sync.subscribeRepos?cursor=13",
            "/xrpc/com.atproto.sync.subscribeRepos?cursor=16",
        ]
    );
}

#[tokio::test]
async fn gaps_and_out_of_order_sequence_numbers_are_reported() {
    let (url, _) = server(script(|_, _| {
        [1, 2, 5, 4]
            .into_iter()
            .map(|seq| Step::Send(WsMsg::Binary(identity(seq).into())))
            .chain([Step::Hang])
            .collect()
    }))
    .await;
    let mut consumer = Consumer::start(
        firehose(&url),
        Arc::new(MemoryCursor::default()),
        fast_backoff(),
    )
    .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 6 {
        seen.push(match consumer.next().await.unwrap().unwrap() {
            ConsumerEvent::Message { cursor, .. } => format!("m{}", cursor.unwrap()),
            ConsumerEvent::Gap { after, next } => format!("gap {after}->{next}"),
            ConsumerEvent::OutOfOrder { after, next } => format!("order {after}->{next}"),
            other => panic!("unexpected {other:?}"),
        });
    }
    assert_eq!(seen, ["m1", "m2", "gap 2->5", "m5", "order 5->4", "m4"]);
}

#[tokio::test]
async fn a_consumer_too_slow_gets_an_error_not_unbounded_memory() {
    let (url, _) = server(script(|_, _| {
        (1..=50)
            .map(|seq| Step::Send(WsMsg::Binary(identity(seq).into())))
            .chain([Step::Hang])
            .collect()
    }))
    .await;
    let options = ConsumerOptions {
        buffer: 4,
        max_stall: Duration::from_millis(100),
        ..fast_backoff()
    };
    let mut consumer =
        Consumer::start(firehose(&url), Arc::new(MemoryCursor::default()), options).unwrap();
    // The app is busy elsewhere for much longer than `max_stall`.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(consumer.queued() <= 4);
    let mut messages = 0;
    loop {
        match consumer.next().await {
            Some(Ok(ConsumerEvent::Message { .. })) => messages += 1,
            Some(Err(ConsumerError::TooSlow { buffered, .. })) => {
                assert_eq!(buffered, 4);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(messages, 4, "only the buffered messages were held");
    assert!(consumer.next().await.is_none());
}

#[tokio::test]
async fn a_failing_cursor_store_ends_the_consumer() {
    struct Broken;
    impl CursorStore for Broken {
        fn load(&self) -> Result<Option<i64>, atlex::xrpc::BoxError> {
            Ok(None)
        }
        fn save(&self, _: i64) -> Result<(), atlex::xrpc::BoxError> {
            Err("disk full".into())
        }
    }
    let (url, _) = server(script(|_, _| {
        vec![
            Step::Send(WsMsg::Binary(identity(1).into())),
            Step::Send(WsMsg::Binary(identity(2).into())),
            Step::Hang,
        ]
    }))
    .await;
    let mut consumer = Consumer::start(firehose(&url), Arc::new(Broken), fast_backoff()).unwrap();
    assert!(matches!(
        consumer.next().await,
        Some(Ok(ConsumerEvent::Message { .. }))
    ));
    match consumer.next().await {
        Some(Err(ConsumerError::Cursor(error))) => assert_eq!(error.to_string(), "disk full"),
        other => panic!("expected a cursor error, got {other:?}"),
    }
    assert!(consumer.next().await.is_none());
}

// --- Jetstream ---

fn jetstream_events() -> Vec<serde_json::Value> {
    vec![
        json!({
            "did": "did:plc:eygmaihciaxprqvxpfvl6flk", "time_us": 1725911162329308_i64,
            "kind": "commit",
            "commit": {
                "rev": "3l3qo2vutsw2b", "operation": "create", "collection": "app.bsky.feed.post",
                "rkey": "3l3qo2vuowo2b",
                "record": {"$type": "app.bsky.feed.post", "createdAt": "2024-09-09T19:46:02.102Z",
                           "langs": ["en"], "text": "hello from jetstream"},
                "cid": "bafyreidwaivazkwu67xztlmuobx35hs2lzfh3kolmgfmucldvhd3sgzcqi"
            }
        }),
        json!({
            "did": "did:plc:eygmaihciaxprqvxpfvl6flk", "time_us": 1725911162329309_i64,
            "kind": "commit",
            "commit": {"rev": "3l3qo2vutsw2c", "operation": "delete",
                       "collection": "app.bsky.feed.post", "rkey": "3l3qo2vuowo2b"}
        }),
        json!({
            "did": "did:plc:eygmaihciaxprqvxpfvl6flk", "time_us": 1725911162329310_i64,
            "kind": "identity",
            "identity": {"did": "did:plc:eygmaihciaxprqvxpfvl6flk", "handle": "alice.test",
                         "seq": 1409752997, "time": "2024-09-05T06:11:04.870Z"}
        }),
        json!({
            "did": "did:plc:eygmaihciaxprqvxpfvl6flk", "time_us": 1725911162329311_i64,
            "kind": "account",
            "account": {"active": true, "did": "did:plc:eygmaihciaxprqvxpfvl6flk",
                        "seq": 1409753013, "time": "2024-09-05T06:11:04.870Z"}
        }),
        json!({"did": "did:plc:eygmaihciaxprqvxpfvl6flk", "time_us": 1725911162329312_i64,
               "kind": "hologram", "hologram": {"x": 1}}),
    ]
}

async fn check_jetstream_events(consumer: &mut Consumer<Jetstream>) {
    let mut events = Vec::new();
    while events.len() < 5 {
        match consumer.next().await.unwrap().unwrap() {
            ConsumerEvent::Message { message, .. } => events.push(message),
            other => panic!("unexpected {other:?}"),
        }
    }
    let RepoEvent::Commit(create) = &events[0].event else {
        panic!("expected a commit")
    };
    assert_eq!(events[0].time_us, 1725911162329308);
    let op = &create.ops[0];
    assert_eq!(op.action, RecordAction::Create);
    let post: Post = op.record_as::<Post>().unwrap().unwrap();
    assert_eq!(post.text, "hello from jetstream");
    let RepoEvent::Commit(delete) = &events[1].event else {
        panic!("expected a commit")
    };
    assert_eq!(delete.ops[0].action, RecordAction::Delete);
    assert!(delete.ops[0].record_as::<Post>().is_none());
    assert!(
        matches!(&events[2].event, RepoEvent::Identity(i) if i.handle.as_ref().map(|h| h.as_str()) == Some("alice.test"))
    );
    assert!(matches!(&events[3].event, RepoEvent::Account(a) if a.active));
    assert!(matches!(&events[4].event, RepoEvent::Other { kind, .. } if kind == "hologram"));
}

#[tokio::test]
async fn jetstream_plain_json_with_filters_and_cursor() {
    let events = jetstream_events();
    let (url, uris) = server(script(move |_, index| {
        let mut steps: Vec<Step> = Vec::new();
        if index == 0 {
            steps.push(Step::Send(WsMsg::Text("{not json".into())));
        }
        steps.extend(
            events
                .iter()
                .skip(index * 3)
                .take(3)
                .map(|e| Step::Send(WsMsg::Text(e.to_string().into()))),
        );
        steps.push(Step::Drop);
        steps
    }))
    .await;
    let ws_url = url.as_str().replacen("http", "ws", 1);
    let options = JetstreamOptions::new()
        .collection("app.bsky.feed.post")
        .unwrap()
        .did(atlex::did!("did:plc:eygmaihciaxprqvxpfvl6flk"))
        .ws(options());
    let source = Jetstream::new(&ws_url, options).unwrap();
    let mut consumer =
        Consumer::start(source, Arc::new(MemoryCursor::default()), fast_backoff()).unwrap();
    match consumer.next().await.unwrap() {
        Err(ConsumerError::Source(JetstreamError::Decode(_))) => {}
        other => panic!("expected a decode error, got {other:?}"),
    }
    // Skip the reconnect's report and the reset; keep the messages.
    let mut kept = Vec::new();
    while kept.len() < 5 {
        match consumer.next().await.unwrap() {
            Ok(ConsumerEvent::Message { message, cursor }) => {
                assert_eq!(cursor, Some(message.time_us));
                kept.push(message)
            }
            Ok(ConsumerEvent::Reconnected { .. })
            | Err(ConsumerError::Source(JetstreamError::Ws(_))) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let events = kept;
    assert!(
        matches!(&events[0].event, RepoEvent::Commit(c) if c.ops[0].record_as::<Post>().unwrap().unwrap().text == "hello from jetstream")
    );
    assert!(matches!(&events[4].event, RepoEvent::Other { kind, .. } if kind == "hologram"));
    let uris = uris.lock().unwrap().clone();
    assert_eq!(
        uris[0],
        "/subscribe?wantedCollections=app.bsky.feed.post&wantedDids=did%3Aplc%3Aeygmaihciaxprqvxpfvl6flk"
    );
    // Resumed at the last time_us received on the first connection (Jetstream's cursor is
    // inclusive).
    assert!(uris[1].ends_with("&cursor=1725911162329310"), "{}", uris[1]);
}

/// A Jetstream-like server: it replays, from the cursor inclusively, a log in which several
/// events share a microsecond, and drops connection `n` after `n + 2` events, so that every
/// connection ends inside a microsecond and replays some events the consumer already has.
#[tokio::test]
async fn jetstream_resumes_at_a_shared_microsecond_without_loss_or_duplicates() {
    let commit = |time_us: i64, rkey: &str| {
        json!({"did": "did:plc:eygmaihciaxprqvxpfvl6flk", "time_us": time_us, "kind": "commit",
               "commit": {"rev": "3l3qo2vutsw2b", "operation": "delete",
                          "collection": "app.bsky.feed.like", "rkey": rkey}})
    };
    // Three events at 100 and two at 101.
    let log = vec![
        commit(100, "3kaaaaaaaaaa2"),
        commit(100, "3kaaaaaaaaab2"),
        commit(100, "3kaaaaaaaaac2"),
        commit(101, "3kaaaaaaaaad2"),
        json!({"did": "did:plc:eygmaihciaxprqvxpfvl6flk", "time_us": 101, "kind": "identity",
               "identity": {"did": "did:plc:eygmaihciaxprqvxpfvl6flk", "handle": "alice.test",
                            "seq": 7, "time": "2024-09-05T06:11:04.870Z"}}),
        commit(102, "3kaaaaaaaaae2"),
    ];
    let served = log.clone();
    let (url, uris) = server(script(move |cursor, index| {
        let mut steps: Vec<Step> = served
            .iter()
            .filter(|e| cursor.is_none_or(|c| e["time_us"].as_i64().unwrap() >= c))
            .take(index + 2)
            .map(|e| Step::Send(WsMsg::Text(e.to_string().into())))
            .collect();
        steps.push(Step::Drop);
        steps
    }))
    .await;
    let ws_url = url.as_str().replacen("http", "ws", 1);
    let source = Jetstream::new(&ws_url, JetstreamOptions::new().ws(options())).unwrap();
    let mut consumer =
        Consumer::start(source, Arc::new(MemoryCursor::default()), fast_backoff()).unwrap();
    let mut received = Vec::new();
    while received.len() < log.len() {
        match consumer.next().await.unwrap() {
            Ok(ConsumerEvent::Message { message, cursor }) => {
                assert_eq!(cursor, Some(message.time_us));
                let key = match &message.event {
                    RepoEvent::Commit(c) => c.ops[0].rkey.as_str().to_owned(),
                    RepoEvent::Identity(i) => format!("identity {}", i.seq),
                    other => panic!("unexpected {other:?}"),
                };
                received.push((message.time_us, key));
            }
            Ok(ConsumerEvent::Reconnected { .. })
            | Err(ConsumerError::Source(JetstreamError::Ws(_))) => {}
            other => panic!("unexpected {other:?} (a shared microsecond is not out of order)"),
        }
    }
    let expected: Vec<(i64, String)> = log
        .iter()
        .map(|e| {
            let key = match e["commit"]["rkey"].as_str() {
                Some(rkey) => rkey.to_owned(),
                None => format!("identity {}", e["identity"]["seq"]),
            };
            (e["time_us"].as_i64().unwrap(), key)
        })
        .collect();
    assert_eq!(received, expected, "every event once, in order");
    drop(consumer);
    let uris = uris.lock().unwrap().clone();
    // Every reconnect resumed at the microsecond it stopped in.
    assert_eq!(
        uris[..4],
        [
            "/subscribe",
            "/subscribe?cursor=100",
            "/subscribe?cursor=100",
            "/subscribe?cursor=101"
        ],
    );
}

#[tokio::test]
async fn jetstream_zstd_with_a_dictionary() {
    // Any bytes make a raw-content zstd dictionary; Jetstream's own is passed the same way.
    let dictionary: Vec<u8> = jetstream_events()
        .iter()
        .map(|e| e.to_string())
        .collect::<String>()
        .into_bytes();
    let compress = {
        let dictionary = dictionary.clone();
        move |bytes: &[u8]| {
            zstd::bulk::Compressor::with_dictionary(3, &dictionary)
                .unwrap()
                .compress(bytes)
                .unwrap()
        }
    };
    let events = jetstream_events();
    let bomb = compress(&vec![b' '; 1024 * 1024]);
    let (url, uris) = server(script(move |_, _| {
        let mut steps = vec![
            Step::Send(WsMsg::Binary(bomb.clone().into())),
            Step::Send(WsMsg::Binary(vec![1, 2, 3].into())),
            Step::Send(WsMsg::Text("{}".into())),
        ];
        steps.extend(
            events
                .iter()
                .map(|e| Step::Send(WsMsg::Binary(compress(e.to_string().as_bytes()).into()))),
        );
        steps.push(Step::Hang);
        steps
    }))
    .await;
    let ws_url = url.as_str().replacen("http", "ws", 1);
    let options = JetstreamOptions::new()
        .zstd_dictionary(dictionary)
        .ws(options());
    let source = Jetstream::new(&ws_url, options).unwrap();
    let mut consumer =
        Consumer::start(source, Arc::new(MemoryCursor::default()), fast_backoff()).unwrap();
    // The bomb inflates past the 64 KiB limit and is refused; garbage and text are errors.
    for what in ["bomb", "garbage"] {
        match consumer.next().await.unwrap() {
            Err(ConsumerError::Source(JetstreamError::Decompress(_))) => {}
            other => panic!("{what}: expected a decompression error, got {other:?}"),
        }
    }
    match consumer.next().await.unwrap() {
        Err(ConsumerError::Source(JetstreamError::UnexpectedMessage(_))) => {}
        other => panic!("expected an unexpected-message error, got {other:?}"),
    }
    check_jetstream_events(&mut consumer).await;
    assert_eq!(uris.lock().unwrap()[0], "/subscribe?compress=true");
}
