//! Verifying `com.atproto.sync.subscribeRepos` events: a `#commit`'s CAR, signature and
//! operations, and a `#sync`'s commit.
//!
//! For a `#commit` ([`verify_commit`]), following the sync spec:
//!
//! 1. `tooBig` events are refused ([`RepoError::TooBig`]): their blocks are incomplete;
//! 2. `blocks` is read as a CAR within [`CarLimits::EVENT`] (every block's hash checked); its
//!    first root must be the event's `commit` ([`RepoError::LyingRoots`]);
//! 3. the commit object is decoded; its `did` and `rev` must be the event's, its signature must
//!    verify with the account's key;
//! 4. each operation is checked against the new MST (`data`): a create or update has the op's
//!    CID at its path, a delete has nothing there;
//! 5. when `prevData` is given, the operations are *inverted* on the new MST (a create removed,
//!    an update and a delete set back to the op's `prev`) and the result's root must be
//!    `prevData`: the event then proves exactly what changed. Any block this needs that the
//!    event does not carry is [`RepoError::MissingBlock`];
//! 6. the records of creates and updates are decoded ([`AnyRecord`]: typed when the
//!    collection is known).
//!
//! [`decode_commit`] does 1, 2 and 6 only (no signature, no MST), for consumers that trust
//! their relay.

use std::collections::HashSet;

use atlex_types::crypto::PublicKey;
use atlex_types::{CidLink, Did, Nsid, RecordKey, Tid};
use bytes::Bytes;

use super::car::{Blocks, Car, CarLimits};
use super::commit::SignedCommit;
use super::error::RepoError;
use super::mst::Mst;
use super::typed::AnyRecord;
use crate::com::atproto::sync::subscribe_repos::{Commit, RepoOpAction, Sync};

/// The most operations a `#commit` may carry (the sync spec's limit).
pub const MAX_OPS: usize = 200;

/// What an operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// A new record.
    Create,
    /// A record replaced.
    Update,
    /// A record removed.
    Delete,
}

/// One operation of a commit, with its record.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordOp {
    /// What it did.
    pub action: Action,
    /// The record's collection.
    pub collection: Nsid,
    /// The record key.
    pub rkey: RecordKey,
    /// The new record's CID (creates and updates).
    pub cid: Option<CidLink>,
    /// The previous record's CID (updates and deletes, when the event gives it).
    pub prev: Option<CidLink>,
    /// The new record (creates and updates).
    pub record: Option<AnyRecord>,
    /// The new record's DAG-CBOR bytes (creates and updates), for decoding into a type of
    /// the caller's own ([`RecordOp::decode`]).
    pub bytes: Option<Bytes>,
}

impl RecordOp {
    /// The MST key, `collection/rkey`.
    pub fn path(&self) -> String {
        format!("{}/{}", self.collection.as_str(), self.rkey.as_str())
    }

    /// Decodes the new record as `R` (`None` for a delete).
    pub fn decode<R: atlex_types::Record>(
        &self,
    ) -> Option<Result<R, atlex_types::data::CborError>> {
        self.bytes
            .as_ref()
            .map(|bytes| atlex_types::data::from_dag_cbor::<R>(bytes))
    }
}

/// A decoded (and, from [`verify_commit`], verified) `#commit` event.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedCommit {
    /// The stream sequence number.
    pub seq: i64,
    /// The account.
    pub did: Did,
    /// The commit's revision.
    pub rev: Tid,
    /// The commit block's CID.
    pub commit: CidLink,
    /// The new MST root (`None` from [`decode_commit`], which does not read the commit).
    pub data: Option<CidLink>,
    /// The previous MST root, as the event claims it.
    pub prev_data: Option<CidLink>,
    /// The operations, in the event's order.
    pub ops: Vec<RecordOp>,
}

struct ParsedOp {
    action: Action,
    path: String,
    collection: Nsid,
    rkey: RecordKey,
    cid: Option<CidLink>,
    prev: Option<CidLink>,
}

fn parse_ops(event: &Commit) -> Result<Vec<ParsedOp>, RepoError> {
    if event.ops.len() > MAX_OPS {
        return Err(RepoError::too_large(
            "number of operations",
            event.ops.len() as u64,
            MAX_OPS as u64,
        ));
    }
    let mut seen = HashSet::new();
    let mut ops = Vec::with_capacity(event.ops.len());
    for op in &event.ops {
        let path = op.path.clone();
        let bad = |reason: String| RepoError::unproven(&path, reason);
        let (collection, rkey) = path
            .split_once('/')
            .ok_or_else(|| bad("the path is not collection/rkey".into()))?;
        let collection = Nsid::new(collection).map_err(|e| bad(format!("bad collection: {e}")))?;
        let rkey = RecordKey::new(rkey).map_err(|e| bad(format!("bad record key: {e}")))?;
        if !seen.insert(path.clone()) {
            return Err(bad("two operations on one path".into()));
        }
        let cid = op.cid.clone().into_option();
        let action = match &op.action {
            RepoOpAction::Create => Action::Create,
            RepoOpAction::Update => Action::Update,
            RepoOpAction::Delete => Action::Delete,
            RepoOpAction::Other(other) => return Err(bad(format!("unknown action {other:?}"))),
        };
        match (action, &cid) {
            (Action::Create | Action::Update, None) => {
                return Err(bad("a create or update without a CID".into()));
            }
            (Action::Delete, Some(_)) => return Err(bad("a delete with a CID".into())),
            _ => {}
        }
        if action == Action::Create && op.prev.is_some() {
            return Err(bad("a create with a previous CID".into()));
        }
        ops.push(ParsedOp {
            action,
            path,
            collection,
            rkey,
            cid,
            prev: op.prev.clone(),
        });
    }
    Ok(ops)
}

fn read_car(event: &Commit) -> Result<Car, RepoError> {
    if event.too_big {
        return Err(RepoError::TooBig);
    }
    let car = Car::read(Bytes::copy_from_slice(&event.blocks), &CarLimits::EVENT)?;
    if car.root() != &event.commit {
        return Err(RepoError::LyingRoots(format!(
            "the first root is {}, the event's commit is {}",
            car.root(),
            event.commit
        )));
    }
    Ok(car)
}

fn with_records(ops: Vec<ParsedOp>, blocks: &Blocks) -> Result<Vec<RecordOp>, RepoError> {
    ops.into_iter()
        .map(|op| {
            let (record, bytes) = match &op.cid {
                Some(cid) => {
                    let bytes = blocks.get(cid).ok_or_else(|| {
                        RepoError::missing(cid, format!("the record {}", op.path))
                    })?;
                    (
                        Some(AnyRecord::decode(&op.collection, cid, bytes)?),
                        Some(bytes.clone()),
                    )
                }
                None => (None, None),
            };
            Ok(RecordOp {
                action: op.action,
                collection: op.collection,
                rkey: op.rkey,
                cid: op.cid,
                prev: op.prev,
                record,
                bytes,
            })
        })
        .collect()
}

/// Decodes a `#commit` event's operations and records without checking the signature or the
/// MST (the CAR's hashes and roots are still checked).
pub fn decode_commit(event: &Commit) -> Result<VerifiedCommit, RepoError> {
    let ops = parse_ops(event)?;
    let car = read_car(event)?;
    Ok(VerifiedCommit {
        seq: event.seq,
        did: event.repo.clone(),
        rev: event.rev.clone(),
        commit: event.commit.clone(),
        data: None,
        prev_data: event.prev_data.clone(),
        ops: with_records(ops, car.blocks())?,
    })
}

/// Verifies a `#commit` event with the account's signing key (see the module docs).
pub fn verify_commit(event: &Commit, key: &PublicKey) -> Result<VerifiedCommit, RepoError> {
    let ops = parse_ops(event)?;
    let car = read_car(event)?;
    let blocks = car.blocks();
    let commit = SignedCommit::from_blocks(&event.commit, blocks)?;
    if commit.did() != &event.repo {
        return Err(RepoError::InvalidCommit(format!(
            "the commit is by {}, the event says {}",
            commit.did(),
            event.repo
        )));
    }
    if commit.rev() != &event.rev {
        return Err(RepoError::InvalidCommit(format!(
            "the commit's rev is {}, the event's {}",
            commit.rev(),
            event.rev
        )));
    }
    commit.verify_signature(key)?;
    prove_ops(commit.data(), event.prev_data.as_ref(), &ops, blocks)?;
    Ok(VerifiedCommit {
        seq: event.seq,
        did: event.repo.clone(),
        rev: event.rev.clone(),
        commit: event.commit.clone(),
        data: Some(commit.data().clone()),
        prev_data: event.prev_data.clone(),
        ops: with_records(ops, blocks)?,
    })
}

fn prove_ops(
    data: &CidLink,
    prev_data: Option<&CidLink>,
    ops: &[ParsedOp],
    blocks: &Blocks,
) -> Result<(), RepoError> {
    let mut mst = Mst::load(data, blocks)?;
    for op in ops {
        let found = mst
            .get(&op.path, blocks)
            .map_err(|e| prove_error(&op.path, e))?;
        if found != op.cid {
            return Err(RepoError::unproven(
                &op.path,
                match (&found, &op.cid) {
                    (None, _) => "the key is not in the new MST".to_owned(),
                    (Some(found), None) => format!("deleted, yet the new MST holds {found}"),
                    (Some(found), Some(cid)) => {
                        format!("the new MST holds {found}, the operation says {cid}")
                    }
                },
            ));
        }
    }
    let Some(prev_data) = prev_data else {
        return Ok(());
    };
    for op in ops {
        let undone = match op.action {
            Action::Create => mst.remove(&op.path, blocks),
            Action::Update | Action::Delete => {
                let prev = op.prev.clone().ok_or_else(|| {
                    RepoError::unproven(&op.path, "no `prev` CID to invert the operation with")
                })?;
                mst.insert(&op.path, prev, blocks)
            }
        }
        .map_err(|e| prove_error(&op.path, e))?;
        if undone != op.cid {
            return Err(RepoError::unproven(
                &op.path,
                "inverting it found another value",
            ));
        }
    }
    let root = mst
        .root(blocks)
        .map_err(|e| RepoError::unproven("(all operations)", format!("inverting them: {e}")))?;
    if &root != prev_data {
        return Err(RepoError::unproven(
            "(all operations)",
            format!("inverted, the MST's root is {root}, not prevData {prev_data}"),
        ));
    }
    Ok(())
}

fn prove_error(path: &str, error: RepoError) -> RepoError {
    match error {
        RepoError::MissingBlock { .. } => RepoError::unproven(path, error.to_string()),
        other => other,
    }
}

/// Verifies a `#sync` event: its CAR holds the commit as the first root, whose `did` and
/// `rev` are the event's and whose signature verifies. Returns the commit (its `data` is the
/// repository's new MST root).
pub fn verify_sync(event: &Sync, key: &PublicKey) -> Result<SignedCommit, RepoError> {
    let car = Car::read(Bytes::copy_from_slice(&event.blocks), &CarLimits::EVENT)?;
    let commit = SignedCommit::from_blocks(car.root(), car.blocks())?;
    if commit.did() != &event.did || commit.rev().as_str() != event.rev {
        return Err(RepoError::InvalidCommit(format!(
            "the commit is {} at {}, the event says {} at {}",
            commit.did(),
            commit.rev(),
            event.did,
            event.rev
        )));
    }
    commit.verify_signature(key)?;
    Ok(commit)
}
