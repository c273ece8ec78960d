//! The typed event shape shared by the firehose and Jetstream.

use std::fmt;

use crate::com::atproto::sync::subscribe_repos;
use crate::types::{CidLink, Data, Datetime, Did, Nsid, Record, RecordKey, Tid};

/// One repository event, from the firehose or from Jetstream.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RepoEvent {
    /// A commit: record operations in one repository.
    Commit(CommitEvent),
    /// An account's identity (handle, DID document) may have changed.
    Identity(Box<subscribe_repos::Identity>),
    /// An account's hosting status changed.
    Account(Box<subscribe_repos::Account>),
    /// An event kind this version does not turn into a [`RepoEvent`] (a firehose `#sync` or
    /// `#info`, a message type it does not know, a Jetstream `kind` it does not know): its name
    /// and its data, kept.
    Other {
        /// The message type (`com.atproto.sync.subscribeRepos#sync`) or Jetstream `kind`.
        kind: String,
        /// Its payload.
        data: Data,
    },
}

/// A commit's record operations.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitEvent {
    /// The repository.
    pub did: Did,
    /// The commit's revision.
    pub rev: Tid,
    /// When the event was emitted, if the source says.
    pub time: Option<Datetime>,
    /// The operations, in commit order.
    pub ops: Vec<RecordOp>,
}

/// What an operation did to a record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordAction {
    /// The record was created.
    Create,
    /// The record was replaced.
    Update,
    /// The record was deleted.
    Delete,
    /// An action this version does not know.
    Other(String),
}

/// A record's value as the source sent it: JSON (Jetstream) or DAG-CBOR (a firehose block).
#[derive(Clone, PartialEq)]
pub enum RecordData {
    /// JSON, as Jetstream sends records.
    Json(serde_json::Value),
    /// DAG-CBOR bytes, as the firehose's CAR blocks hold records.
    Cbor(bytes::Bytes),
}

impl fmt::Debug for RecordData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordData::Json(value) => f.debug_tuple("Json").field(value).finish(),
            RecordData::Cbor(bytes) => write!(f, "Cbor({} bytes)", bytes.len()),
        }
    }
}

/// One record operation of a commit.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordOp {
    /// What happened.
    pub action: RecordAction,
    /// The record's collection (`app.bsky.feed.post`).
    pub collection: Nsid,
    /// The record's key.
    pub rkey: RecordKey,
    /// The new record's CID (creates and updates).
    pub cid: Option<CidLink>,
    /// The new record's value (creates and updates, when the source carried it).
    pub record: Option<RecordData>,
}

/// A record that did not decode into the type asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordDecodeError {
    collection: String,
    message: String,
}

impl fmt::Display for RecordDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} record does not decode: {}", self.collection, self.message)
    }
}

impl std::error::Error for RecordDecodeError {}

impl RecordOp {
    /// The record as the generated type `R` (`op.record_as::<Post>()`): `None` when the
    /// operation is not in `R`'s collection or carries no record, an error when it does not
    /// decode.
    pub fn record_as<R: Record>(&self) -> Option<Result<R, RecordDecodeError>> {
        if self.collection.as_str() != R::NSID {
            return None;
        }
        let error = |message: String| RecordDecodeError {
            collection: R::NSID.to_owned(),
            message,
        };
        Some(match self.record.as_ref()? {
            RecordData::Json(value) => {
                R::deserialize(value).map_err(|e| error(e.to_string()))
            }
            RecordData::Cbor(bytes) => {
                serde_ipld_dagcbor::from_slice(bytes).map_err(|e| error(e.to_string()))
            }
        })
    }

    /// The record as untyped data.
    pub fn record_data(&self) -> Option<Result<Data, RecordDecodeError>> {
        let error = |message: String| RecordDecodeError {
            collection: self.collection.as_str().to_owned(),
            message,
        };
        Some(match self.record.as_ref()? {
            RecordData::Json(value) => Data::from_json(value).map_err(|e| error(e.to_string())),
            RecordData::Cbor(bytes) => {
                crate::types::data::cbor::from_dag_cbor(bytes).map_err(|e| error(e.to_string()))
            }
        })
    }
}

impl From<&subscribe_repos::RepoOpAction> for RecordAction {
    fn from(action: &subscribe_repos::RepoOpAction) -> RecordAction {
        match action {
            subscribe_repos::RepoOpAction::Create => RecordAction::Create,
            subscribe_repos::RepoOpAction::Update => RecordAction::Update,
            subscribe_repos::RepoOpAction::Delete => RecordAction::Delete,
            subscribe_repos::RepoOpAction::Other(other) => RecordAction::Other(other.clone()),
        }
    }
}

impl RecordAction {
    /// Parses Jetstream's `operation`.
    pub(crate) fn parse(text: &str) -> RecordAction {
        match text {
            "create" => RecordAction::Create,
            "update" => RecordAction::Update,
            "delete" => RecordAction::Delete,
            other => RecordAction::Other(other.to_owned()),
        }
    }
}
