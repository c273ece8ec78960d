//! [`Repo`]: a whole repository read from a CAR (`com.atproto.sync.getRepo`), walked in key
//! order with its records decoded.

use atlex_types::crypto::PublicKey;
use atlex_types::{CidLink, Nsid, RecordKey};
use bytes::Bytes;

use super::car::{Car, CarLimits};
use super::commit::SignedCommit;
use super::error::RepoError;
use super::mst::{self, Mst};
use super::typed::AnyRecord;

/// A repository: its signed commit and the blocks of its MST and records.
#[derive(Debug, Clone)]
pub struct Repo {
    car: Car,
    commit: SignedCommit,
}

/// One record of a [`Repo`].
#[derive(Debug, Clone, PartialEq)]
pub struct RepoRecord {
    /// The collection.
    pub collection: Nsid,
    /// The record key.
    pub rkey: RecordKey,
    /// The record's CID.
    pub cid: CidLink,
    /// The record, typed when its collection is known.
    pub record: AnyRecord,
    /// The record's DAG-CBOR bytes.
    pub bytes: Bytes,
}

impl Repo {
    /// Reads a repository CAR within [`CarLimits::REPO`]; the first root must be a commit.
    pub fn from_car(bytes: impl Into<Bytes>) -> Result<Repo, RepoError> {
        Repo::from_car_with_limits(bytes, &CarLimits::REPO)
    }

    /// Reads a repository CAR within `limits`.
    pub fn from_car_with_limits(
        bytes: impl Into<Bytes>,
        limits: &CarLimits,
    ) -> Result<Repo, RepoError> {
        let car = Car::read(bytes, limits)?;
        let commit = SignedCommit::from_blocks(car.root(), car.blocks())?;
        Ok(Repo { car, commit })
    }

    /// The commit.
    pub fn commit(&self) -> &SignedCommit {
        &self.commit
    }

    /// The CID of the commit block.
    pub fn commit_cid(&self) -> &CidLink {
        self.car.root()
    }

    /// The CAR it was read from.
    pub fn car(&self) -> &Car {
        &self.car
    }

    /// Checks the commit's signature with the account's key.
    pub fn verify_signature(&self, key: &PublicKey) -> Result<(), RepoError> {
        self.commit.verify_signature(key)
    }

    /// Every MST entry `(collection/rkey, record CID)`, in key order.
    pub fn entries(&self) -> mst::Walk<'_> {
        mst::walk(self.commit.data(), self.car.blocks())
    }

    /// The whole MST, loaded.
    pub fn mst(&self) -> Result<Mst, RepoError> {
        Mst::load_all(self.commit.data(), self.car.blocks())
    }

    /// Every record, in key order, decoded; an error (a missing block, a bad node or record)
    /// ends the iteration.
    pub fn records(&self) -> impl Iterator<Item = Result<RepoRecord, RepoError>> + '_ {
        let mut failed = false;
        self.entries().map_while(move |entry| {
            if failed {
                return None;
            }
            let result = entry.and_then(|(key, cid)| self.record_at(&key, cid));
            failed = result.is_err();
            Some(result)
        })
    }

    /// The record `collection/rkey`, if the repository holds it.
    pub fn get_record(
        &self,
        collection: &Nsid,
        rkey: &RecordKey,
    ) -> Result<Option<RepoRecord>, RepoError> {
        let key = format!("{}/{}", collection.as_str(), rkey.as_str());
        let mut mst = Mst::load(self.commit.data(), self.car.blocks())?;
        match mst.get(&key, self.car.blocks())? {
            Some(cid) => self.record_at(&key, cid).map(Some),
            None => Ok(None),
        }
    }

    fn record_at(&self, key: &str, cid: CidLink) -> Result<RepoRecord, RepoError> {
        let bad = |reason: String| RepoError::InvalidMst(format!("key {key:?}: {reason}"));
        let (collection, rkey) = key
            .split_once('/')
            .ok_or_else(|| bad("not collection/rkey".into()))?;
        let collection = Nsid::new(collection).map_err(|e| bad(e.to_string()))?;
        let rkey = RecordKey::new(rkey).map_err(|e| bad(e.to_string()))?;
        let bytes = self
            .car
            .blocks()
            .get(&cid)
            .ok_or_else(|| RepoError::missing(&cid, format!("the record {key}")))?
            .clone();
        let record = AnyRecord::decode(&collection, &cid, &bytes)?;
        Ok(RepoRecord {
            collection,
            rkey,
            cid,
            record,
            bytes,
        })
    }
}
