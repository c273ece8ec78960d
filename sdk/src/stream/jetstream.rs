//! Jetstream: the firehose as JSON, filtered by collection and DID, as a [`Source`] with the
//! same [`RepoEvent`] shape.
//!
//! A Jetstream server (`wss://jetstream2.us-east.bsky.network/subscribe`) sends one JSON
//! object per WebSocket message: `{did, time_us, kind, commit | identity | account}`.
//! `time_us` is the cursor.
//!
//! **Resuming.** Jetstream replays from the cursor *inclusively* (its README: reconnect with
//! the `time_us` of the last event processed), and a cursor is a time, not a position: two
//! events may carry the same microsecond (events of one instance are usually distinct, but
//! nothing promises it, and instances differ). Resuming at `time_us + 1` could therefore
//! skip an event. A [`Jetstream`] resumes *at* the last `time_us` and drops the events of that
//! one microsecond it has already delivered, recognised by their identity (the DID, and the
//! commit's rev, collection, rkey and operation, or the identity or account event's `seq`):
//! within one [`Jetstream`] (and its clones, which share what they delivered) a reconnect
//! delivers every event once. After a **restart** from a saved cursor nothing is known of
//! what was delivered, so the events of the saved microsecond come again (at least the last
//! one processed): process them idempotently, as Jetstream advises.
//!
//! **Compression** (feature `zstd`): with [`JetstreamOptions::zstd_dictionary`], the client asks
//! for `compress=true` and each message is a zstd frame compressed with Jetstream's shared
//! dictionary. atlex does not ship that dictionary: it is published by the Jetstream project
//! (the file `pkg/models/zstd_dictionary` of the `bluesky-social/jetstream` repository); the
//! app reads it and passes its bytes. A decompressed message may be at most
//! [`JetstreamOptions::max_message_size`] bytes, like an uncompressed one, so a small frame that
//! inflates hugely is refused without being inflated past the limit.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use serde::Deserialize;
use url::Url;

use super::consumer::{Connecting, Source, SourceStream};
use super::event::{CommitEvent, RecordAction, RecordData, RecordOp, RepoEvent};
use crate::com::atproto::sync::subscribe_repos;
use crate::net::ws::{WsConnection, WsError, WsMessage, WsOptions};
use crate::types::{CidLink, Data, Did, Nsid, RecordKey, Tid};

/// One Jetstream event: its cursor and the typed event.
#[derive(Debug, Clone, PartialEq)]
pub struct JetstreamEvent {
    /// The event's time in microseconds since the Unix epoch (the cursor).
    pub time_us: i64,
    /// The event.
    pub event: RepoEvent,
}

/// What went wrong reading Jetstream.
#[derive(Debug)]
#[non_exhaustive]
pub enum JetstreamError {
    /// The URL or a filter is invalid; nothing was sent.
    InvalidRequest(String),
    /// The connection failed, timed out, closed or sent an oversized message; it ends.
    Ws(WsError),
    /// A message is not a valid Jetstream event (JSON, fields, formats); the stream goes on.
    Decode(String),
    /// A compressed message could not be decompressed within the size limit; the stream
    /// goes on.
    Decompress(String),
    /// A binary message without compression, or a text message with it; the stream goes on.
    UnexpectedMessage(&'static str),
}

impl fmt::Display for JetstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JetstreamError::InvalidRequest(reason) => {
                write!(f, "invalid Jetstream request: {reason}")
            }
            JetstreamError::Ws(error) => error.fmt(f),
            JetstreamError::Decode(reason) => write!(f, "invalid Jetstream event: {reason}"),
            JetstreamError::Decompress(reason) => {
                write!(f, "cannot decompress a Jetstream message: {reason}")
            }
            JetstreamError::UnexpectedMessage(what) => {
                write!(f, "unexpected Jetstream message: {what}")
            }
        }
    }
}

impl std::error::Error for JetstreamError {}

/// What to ask Jetstream for, and the limits of the connection.
#[derive(Clone, Default)]
pub struct JetstreamOptions {
    collections: Vec<String>,
    dids: Vec<Did>,
    #[cfg(feature = "zstd")]
    dictionary: Option<Arc<Vec<u8>>>,
    ws: WsOptions,
}

impl fmt::Debug for JetstreamOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("JetstreamOptions");
        s.field("collections", &self.collections)
            .field("dids", &self.dids);
        #[cfg(feature = "zstd")]
        s.field("compressed", &self.dictionary.is_some());
        s.field("ws", &self.ws).finish()
    }
}

impl JetstreamOptions {
    /// No filters, no compression, default limits.
    pub fn new() -> JetstreamOptions {
        JetstreamOptions::default()
    }

    /// Only commits in `collection` (an NSID, or a prefix ending in `.*`, e.g.
    /// `app.bsky.graph.*`); may be given several times (Jetstream allows up to 100).
    pub fn collection(mut self, collection: impl Into<String>) -> Result<Self, JetstreamError> {
        let collection = collection.into();
        let valid = match collection.strip_suffix(".*") {
            Some(prefix) => !prefix.is_empty() && Nsid::new(format!("{prefix}.x")).is_ok(),
            None => Nsid::new(&collection).is_ok(),
        };
        if !valid {
            return Err(JetstreamError::InvalidRequest(format!(
                "collection filter {collection:?} is neither an NSID nor a prefix ending in `.*`"
            )));
        }
        self.collections.push(collection);
        Ok(self)
    }

    /// Only events of `did`; may be given several times (Jetstream allows up to 10,000).
    #[must_use]
    pub fn did(mut self, did: Did) -> Self {
        self.dids.push(did);
        self
    }

    /// Asks for zstd-compressed messages, decompressed with `dictionary` (Jetstream's
    /// published dictionary; see the module docs).
    #[cfg(feature = "zstd")]
    #[must_use]
    pub fn zstd_dictionary(mut self, dictionary: Vec<u8>) -> Self {
        self.dictionary = Some(Arc::new(dictionary));
        self
    }

    /// Connection limits and timeouts (the message size limit applies to decompressed
    /// messages too).
    #[must_use]
    pub fn ws(mut self, ws: WsOptions) -> Self {
        self.ws = ws;
        self
    }

    fn compressed(&self) -> bool {
        #[cfg(feature = "zstd")]
        {
            self.dictionary.is_some()
        }
        #[cfg(not(feature = "zstd"))]
        {
            false
        }
    }
}

/// A Jetstream server as a [`Source`].
///
/// Clones share the record of the events delivered at the last microsecond (see the module
/// docs on resuming).
#[derive(Debug, Clone)]
pub struct Jetstream {
    url: Url,
    options: JetstreamOptions,
    delivered: Arc<Mutex<Delivered>>,
}

/// The most events of one microsecond remembered for dropping replays (far more than ever
/// share one in practice; past it, everything remembered for that microsecond is forgotten
/// and counting starts again, so a replay of those events would then be delivered again).
const MAX_DELIVERED: usize = 4096;

/// The events delivered at the latest `time_us` seen, by identity.
#[derive(Debug, Default)]
struct Delivered {
    time_us: Option<i64>,
    keys: HashSet<String>,
}

impl Delivered {
    /// Whether `event` was delivered before; if not, remembers it.
    fn is_replay(&mut self, event: &JetstreamEvent) -> bool {
        match self.time_us {
            Some(last) if event.time_us < last => false,
            Some(last) if event.time_us == last => {
                let key = event_key(event);
                if self.keys.contains(&key) {
                    return true;
                }
                if self.keys.len() >= MAX_DELIVERED {
                    self.keys.clear();
                }
                self.keys.insert(key);
                false
            }
            _ => {
                self.time_us = Some(event.time_us);
                self.keys.clear();
                self.keys.insert(event_key(event));
                false
            }
        }
    }
}

/// What tells two events of one microsecond apart.
fn event_key(event: &JetstreamEvent) -> String {
    match &event.event {
        RepoEvent::Commit(commit) => {
            let mut key = format!("commit {} {}", commit.did.as_str(), commit.rev.as_str());
            for op in &commit.ops {
                key.push_str(&format!(
                    " {:?} {}/{}",
                    op.action,
                    op.collection.as_str(),
                    op.rkey.as_str()
                ));
            }
            key
        }
        RepoEvent::Identity(identity) => {
            format!("identity {} {}", identity.did.as_str(), identity.seq)
        }
        RepoEvent::Account(account) => format!("account {} {}", account.did.as_str(), account.seq),
        other => format!("{other:?}"),
    }
}

impl Jetstream {
    /// Jetstream at `url` (`wss://host` or `wss://host/subscribe`; `/subscribe` is added to a
    /// URL without a path).
    pub fn new(url: &str, options: JetstreamOptions) -> Result<Jetstream, JetstreamError> {
        let mut url =
            Url::parse(url).map_err(|e| JetstreamError::InvalidRequest(format!("{url:?}: {e}")))?;
        if url.path().is_empty() || url.path() == "/" {
            url.set_path("/subscribe");
        }
        url.set_query(None);
        Ok(Jetstream {
            url,
            options,
            delivered: Arc::default(),
        })
    }

    /// The URL for a connection resuming at `cursor` (a `time_us`; Jetstream replays from it
    /// inclusively).
    pub fn url(&self, cursor: Option<i64>) -> Url {
        let mut url = self.url.clone();
        {
            let mut query = url.query_pairs_mut();
            for collection in &self.options.collections {
                query.append_pair("wantedCollections", collection);
            }
            for did in &self.options.dids {
                query.append_pair("wantedDids", did.as_str());
            }
            // Jetstream replays from the cursor itself: resume at it (not after it, which
            // could skip an event of the same microsecond); the replays are dropped.
            if let Some(cursor) = cursor {
                query.append_pair("cursor", &cursor.to_string());
            }
            if self.options.compressed() {
                query.append_pair("compress", "true");
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        url
    }

    /// Opens one connection resuming at `cursor`, without the events this [`Jetstream`]
    /// already delivered at that microsecond (no reconnects: see
    /// [`Consumer`](super::Consumer) for those).
    pub async fn connect_once(
        &self,
        cursor: Option<i64>,
    ) -> Result<SourceStream<JetstreamEvent, JetstreamError>, JetstreamError> {
        let connection = WsConnection::connect(&self.url(cursor), self.options.ws)
            .await
            .map_err(JetstreamError::Ws)?;
        let decoder = Decoder::new(&self.options)?;
        let delivered = self.delivered.clone();
        Ok(
            futures::stream::unfold(Some((connection, decoder, delivered)), |state| async move {
                let (mut connection, mut decoder, delivered) = state?;
                loop {
                    let item = match connection.next_message().await? {
                        Err(error) => return Some((Err(JetstreamError::Ws(error)), None)),
                        Ok(message) => decoder.decode(message),
                    };
                    if let Ok(event) = &item {
                        let replay = match delivered.lock() {
                            Ok(mut guard) => guard.is_replay(event),
                            Err(poisoned) => poisoned.into_inner().is_replay(event),
                        };
                        if replay {
                            tracing::debug!(time_us = event.time_us, "jetstream replay dropped");
                            continue;
                        }
                    }
                    return Some((item, Some((connection, decoder, delivered))));
                }
            })
            .boxed(),
        )
    }
}

/// Turns messages into events (and decompresses them).
struct Decoder {
    #[cfg(feature = "zstd")]
    max: usize,
    #[cfg(feature = "zstd")]
    zstd: Option<zstd::bulk::Decompressor<'static>>,
}

impl Decoder {
    fn new(options: &JetstreamOptions) -> Result<Decoder, JetstreamError> {
        #[cfg(not(feature = "zstd"))]
        let _ = options;
        Ok(Decoder {
            #[cfg(feature = "zstd")]
            max: options.ws.max_message_size,
            #[cfg(feature = "zstd")]
            zstd: match &options.dictionary {
                Some(dictionary) => Some(
                    zstd::bulk::Decompressor::with_dictionary(dictionary).map_err(|e| {
                        JetstreamError::InvalidRequest(format!("the zstd dictionary: {e}"))
                    })?,
                ),
                None => None,
            },
        })
    }

    fn decode(&mut self, message: WsMessage) -> Result<JetstreamEvent, JetstreamError> {
        match message {
            WsMessage::Text(text) => {
                #[cfg(feature = "zstd")]
                if self.zstd.is_some() {
                    return Err(JetstreamError::UnexpectedMessage(
                        "a text message on a compressed stream",
                    ));
                }
                parse_event(text.as_bytes())
            }
            WsMessage::Binary(bytes) => {
                #[cfg(feature = "zstd")]
                if let Some(zstd) = self.zstd.as_mut() {
                    let json = zstd.decompress(&bytes, self.max).map_err(|e| {
                        JetstreamError::Decompress(format!("{e} (limit {} bytes)", self.max))
                    })?;
                    return parse_event(&json);
                }
                let _ = bytes;
                Err(JetstreamError::UnexpectedMessage(
                    "a binary message on an uncompressed stream",
                ))
            }
        }
    }
}

#[derive(Deserialize)]
struct RawEvent {
    did: Did,
    time_us: i64,
    kind: String,
    #[serde(default)]
    commit: Option<RawCommit>,
    #[serde(default)]
    identity: Option<serde_json::Value>,
    #[serde(default)]
    account: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawCommit {
    rev: Tid,
    operation: String,
    collection: Nsid,
    rkey: RecordKey,
    #[serde(default)]
    record: Option<serde_json::Value>,
    #[serde(default)]
    cid: Option<String>,
}

/// Parses one Jetstream JSON event.
pub fn parse_event(json: &[u8]) -> Result<JetstreamEvent, JetstreamError> {
    let raw: RawEvent = serde_json::from_slice(json)
        .map_err(|e| JetstreamError::Decode(crate::xrpc::describe_json_error(&e)))?;
    let decode = |what: &str, e: serde_json::Error| {
        JetstreamError::Decode(format!("{what}: {}", crate::xrpc::describe_json_error(&e)))
    };
    let event = match raw.kind.as_str() {
        "commit" => {
            let commit = raw
                .commit
                .ok_or_else(|| JetstreamError::Decode("a commit event without `commit`".into()))?;
            let cid = match commit.cid.as_deref() {
                Some(text) => Some(
                    CidLink::parse(text)
                        .map_err(|e| JetstreamError::Decode(format!("commit.cid: {e}")))?,
                ),
                None => None,
            };
            let action = RecordAction::parse(&commit.operation);
            RepoEvent::Commit(CommitEvent {
                did: raw.did,
                rev: commit.rev,
                time: None,
                ops: vec![RecordOp {
                    action,
                    collection: commit.collection,
                    rkey: commit.rkey,
                    cid,
                    record: commit.record.map(RecordData::Json),
                }],
                verified: false,
            })
        }
        "identity" => {
            let value = raw.identity.ok_or_else(|| {
                JetstreamError::Decode("an identity event without `identity`".into())
            })?;
            let identity: subscribe_repos::Identity =
                serde_json::from_value(value).map_err(|e| decode("identity", e))?;
            RepoEvent::Identity(Box::new(identity))
        }
        "account" => {
            let value = raw.account.ok_or_else(|| {
                JetstreamError::Decode("an account event without `account`".into())
            })?;
            let account: subscribe_repos::Account =
                serde_json::from_value(value).map_err(|e| decode("account", e))?;
            RepoEvent::Account(Box::new(account))
        }
        other => {
            let data: serde_json::Value =
                serde_json::from_slice(json).map_err(|e| decode("event", e))?;
            RepoEvent::Other {
                kind: other.to_owned(),
                data: Data::from_json(&data)
                    .map_err(|e| JetstreamError::Decode(format!("event: {e}")))?,
            }
        }
    };
    Ok(JetstreamEvent {
        time_us: raw.time_us,
        event,
    })
}

impl Source for Jetstream {
    type Message = JetstreamEvent;
    type Error = JetstreamError;
    const CONTIGUOUS: bool = false;

    fn connect(&self, cursor: Option<i64>) -> Connecting<JetstreamEvent, JetstreamError> {
        let this = self.clone();
        Box::pin(async move { this.connect_once(cursor).await })
    }

    fn cursor(message: &JetstreamEvent) -> Option<i64> {
        Some(message.time_us)
    }

    fn ends_connection(error: &JetstreamError) -> bool {
        matches!(
            error,
            JetstreamError::Ws(_) | JetstreamError::InvalidRequest(_)
        )
    }

    fn is_terminal(error: &JetstreamError) -> bool {
        match error {
            JetstreamError::InvalidRequest(_) => true,
            JetstreamError::Ws(ws) => matches!(ws.kind(), crate::net::ws::WsErrorKind::Url(_)),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_filters_and_cursor() {
        let js = Jetstream::new(
            "wss://jetstream.example",
            JetstreamOptions::new()
                .collection("app.bsky.feed.post")
                .unwrap()
                .collection("app.bsky.graph.*")
                .unwrap()
                .did(crate::did!("did:plc:abc")),
        )
        .unwrap();
        assert_eq!(
            js.url(Some(41)).as_str(),
            "wss://jetstream.example/subscribe?wantedCollections=app.bsky.feed.post&wantedCollections=app.bsky.graph.*&wantedDids=did%3Aplc%3Aabc&cursor=41"
        );
        assert!(JetstreamOptions::new().collection("not an nsid").is_err());
        assert!(JetstreamOptions::new().collection(".*").is_err());
    }
}
