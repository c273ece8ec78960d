//! The typed event shape shared by the firehose and Jetstream.

use std::fmt;

use crate::com::atproto::sync::subscribe_repos;
use crate::repo::RepoError;
use crate::types::crypto::PublicKey;
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
    /// Whether the commit's signature and operations were checked
    /// ([`RepoEvent::from_firehose`] with the account's key: signature, MST proof of every
    /// operation). Jetstream events are never verified: Jetstream does not carry proofs.
    pub verified: bool,
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
        write!(
            f,
            "a {} record does not decode: {}",
            self.collection, self.message
        )
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
            RecordData::Json(value) => R::deserialize(value).map_err(|e| error(e.to_string())),
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

impl RepoEvent {
    /// The typed event of a firehose message. With the account's signing `key`, a `#commit` is
    /// verified ([`crate::repo::verify_commit`]: CAR roots, signature, every operation proven
    /// by the MST); without it, its CAR is only read and its records decoded
    /// ([`crate::repo::decode_commit`]), for consumers that trust their relay.
    pub fn from_firehose(
        message: subscribe_repos::Message,
        key: Option<&PublicKey>,
    ) -> Result<RepoEvent, RepoError> {
        Ok(match message {
            subscribe_repos::Message::Commit(commit) => {
                let checked = match key {
                    Some(key) => crate::repo::verify_commit(&commit, key)?,
                    None => crate::repo::decode_commit(&commit)?,
                };
                RepoEvent::Commit(CommitEvent {
                    did: checked.did,
                    rev: checked.rev,
                    time: Some(commit.time.clone()),
                    ops: checked.ops.into_iter().map(RecordOp::from).collect(),
                    verified: key.is_some(),
                })
            }
            subscribe_repos::Message::Identity(identity) => RepoEvent::Identity(identity),
            subscribe_repos::Message::Account(account) => RepoEvent::Account(account),
            subscribe_repos::Message::Unknown(member) => RepoEvent::Other {
                kind: member.type_tag().to_owned(),
                data: member.into_data(),
            },
            other @ (subscribe_repos::Message::Sync(_) | subscribe_repos::Message::Info(_)) => {
                let kind = match &other {
                    subscribe_repos::Message::Sync(_) => "com.atproto.sync.subscribeRepos#sync",
                    _ => "com.atproto.sync.subscribeRepos#info",
                };
                let json = serde_json::to_value(&other)
                    .map_err(|e| RepoError::InvalidCommit(format!("{kind}: {e}")))?;
                let data = Data::from_json(&json)
                    .map_err(|e| RepoError::InvalidCommit(format!("{kind}: {e}")))?;
                RepoEvent::Other {
                    kind: kind.to_owned(),
                    data,
                }
            }
        })
    }
}

impl From<crate::repo::RecordOp> for RecordOp {
    fn from(op: crate::repo::RecordOp) -> RecordOp {
        RecordOp {
            action: match op.action {
                crate::repo::Action::Create => RecordAction::Create,
                crate::repo::Action::Update => RecordAction::Update,
                crate::repo::Action::Delete => RecordAction::Delete,
            },
            collection: op.collection,
            rkey: op.rkey,
            cid: op.cid,
            record: op.bytes.map(RecordData::Cbor),
        }
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
