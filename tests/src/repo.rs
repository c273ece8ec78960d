//! A repository kept in memory that writes real, signed `#commit` events: what the repository
//! tests, the fuzz seeds and the benchmark use to make valid (and then broken) events.

use atlex::com::atproto::sync::subscribe_repos::{Commit, RepoOp, RepoOpAction};
use atlex::repo::car::write_car;
use atlex::repo::{Blocks, Mst, RepoError, UnsignedCommit};
use atlex::types::crypto::PrivateKey;
use atlex::types::format::TidGenerator;
use atlex::types::{Bytes, CidLink, Datetime, Did, Nullable, Tid};

/// One change of a commit.
#[derive(Debug, Clone)]
pub enum Change {
    /// Create `path` (`collection/rkey`) with the record's DAG-CBOR bytes.
    Create(String, Vec<u8>),
    /// Replace the record at `path`.
    Update(String, Vec<u8>),
    /// Delete the record at `path`.
    Delete(String),
}

/// A repository in memory: every block it ever had, its MST, its signing key.
pub struct MemoryRepo {
    /// The account.
    pub did: Did,
    /// The signing key.
    pub key: PrivateKey,
    /// The MST (fully in memory).
    pub mst: Mst,
    /// Every block (nodes, records, commits).
    pub blocks: Blocks,
    /// The last commit's CID and rev.
    pub head: Option<(CidLink, Tid)>,
    revs: TidGenerator,
    seq: i64,
    /// For reproducible events: the clock (µs) of the next rev, and a fixed event time.
    fixed_clock: Option<u64>,
}

impl MemoryRepo {
    /// An empty repository of `did`, signed with `key`.
    pub fn new(did: Did, key: PrivateKey) -> MemoryRepo {
        MemoryRepo {
            did,
            key,
            mst: Mst::new(),
            blocks: Blocks::new(),
            head: None,
            revs: TidGenerator::new(),
            seq: 0,
            fixed_clock: None,
        }
    }

    /// Like [`MemoryRepo::new`], but every event is the same from run to run: revs come from a
    /// clock starting at 2024-05-01 that ticks once per commit, the event time is fixed.
    pub fn reproducible(did: Did, key: PrivateKey) -> MemoryRepo {
        MemoryRepo {
            revs: TidGenerator::with_clock_id(7).unwrap_or_default(),
            fixed_clock: Some(1_714_564_800_000_000),
            ..MemoryRepo::new(did, key)
        }
    }

    /// Applies `changes` and returns the `#commit` event announcing them, whose blocks are the
    /// new commit, the new records and the MST nodes that prove the operations.
    pub fn commit(&mut self, changes: &[Change]) -> Result<Commit, RepoError> {
        let empty = Blocks::new();
        let prev_data = self.mst.root(&empty)?;
        let mut ops = Vec::new();
        let mut records = Vec::new();
        for change in changes {
            let op = match change {
                Change::Create(path, bytes) | Change::Update(path, bytes) => {
                    let cid = self.blocks.insert_dag_cbor(bytes.clone());
                    records.push(cid.clone());
                    let prev = self.mst.insert(path, cid.clone(), &empty)?;
                    let action = if prev.is_some() {
                        RepoOpAction::Update
                    } else {
                        RepoOpAction::Create
                    };
                    let op = RepoOp::new(action, path.clone(), Nullable::Value(cid));
                    match prev {
                        Some(prev) => op.prev(prev),
                        None => op,
                    }
                }
                Change::Delete(path) => {
                    let prev = self.mst.remove(path, &empty)?.ok_or_else(|| {
                        RepoError::InvalidMst(format!("{path} is not in the repository"))
                    })?;
                    RepoOp::new(RepoOpAction::Delete, path.clone(), Nullable::Null).prev(prev)
                }
            };
            ops.push(op);
        }
        let (data, nodes) = self.mst.root_and_nodes(&empty)?;
        let mut new_nodes = Vec::new();
        for (cid, bytes) in nodes {
            if !self.blocks.contains(&cid) {
                new_nodes.push(cid.clone());
            }
            self.blocks.insert_dag_cbor(bytes);
        }
        let rev = match &mut self.fixed_clock {
            Some(clock) => {
                *clock += 1_000;
                self.revs.next_tid_at(*clock)
            }
            None => self.revs.next_tid(),
        };
        let signed = UnsignedCommit {
            did: self.did.clone(),
            data: data.clone(),
            rev: rev.clone(),
            prev: None,
        }
        .sign(&self.key)?;
        let commit_cid = self.blocks.insert_dag_cbor(signed.to_block()?);

        // The proof: the new nodes, plus any old node the inversion turns out to need.
        let mut proof: Vec<CidLink> = new_nodes;
        loop {
            let mut carried = Blocks::new();
            for cid in &proof {
                if let Some(bytes) = self.blocks.get(cid) {
                    carried.insert_dag_cbor(bytes.clone());
                }
            }
            match invert(&data, &ops, &carried) {
                Ok(root) if root == prev_data => break,
                Ok(root) => {
                    return Err(RepoError::InvalidMst(format!(
                        "inverting gave {root}, not {prev_data}"
                    )));
                }
                Err(RepoError::MissingBlock { cid, .. }) if self.blocks.contains(&cid) => {
                    proof.push(cid);
                }
                Err(other) => return Err(other),
            }
        }
        let mut car_blocks = vec![commit_cid.clone()];
        car_blocks.extend(records);
        car_blocks.extend(proof);
        let car = write_car(
            std::slice::from_ref(&commit_cid),
            car_blocks
                .iter()
                .filter_map(|cid| self.blocks.get(cid).map(|b| (cid, b.as_ref()))),
        );
        self.seq += 1;
        let since = match &self.head {
            Some((_, rev)) => Nullable::Value(rev.clone()),
            None => Nullable::Null,
        };
        self.head = Some((commit_cid.clone(), rev.clone()));
        Ok(Commit::new(
            self.seq,
            false,
            false,
            self.did.clone(),
            commit_cid,
            rev,
            since,
            Bytes::new(car),
            ops,
            Vec::new(),
            match self.fixed_clock {
                Some(_) => Datetime::new("2024-05-01T12:00:00.000Z")
                    .map_err(|e| RepoError::InvalidCommit(e.to_string()))?,
                None => Datetime::now(),
            },
        )
        .prev_data(prev_data))
    }
}

fn invert(data: &CidLink, ops: &[RepoOp], blocks: &Blocks) -> Result<CidLink, RepoError> {
    let mut mst = Mst::load(data, blocks)?;
    for op in ops {
        match (&op.action, &op.prev) {
            (RepoOpAction::Create, _) => {
                mst.remove(&op.path, blocks)?;
            }
            (_, Some(prev)) => {
                mst.insert(&op.path, prev.clone(), blocks)?;
            }
            _ => {}
        }
    }
    mst.root(blocks)
}
