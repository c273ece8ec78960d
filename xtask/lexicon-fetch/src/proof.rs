//! The proof of one record: what `com.atproto.sync.getRecord` answers (a CAR whose root is
//! the repository's signed commit, holding the MST nodes on the way to the record's key and
//! the record block), checked against the authority's signing key.
//!
//! [`verify_proof`] reads the CAR within [`proof_limits`] (every block's hash is checked by
//! [`Car::read`]), decodes its root as a [`SignedCommit`], requires the commit's `did` to be
//! the authority's and its signature to verify with the key of the authority's DID document,
//! walks the commit's MST from its root to `com.atproto.lexicon.schema/<nsid>` (a node the
//! path needs but the CAR lacks means the record is not proven), and requires the CID found
//! there to be the record CID the caller was told (the one `getRecord` reported, which is
//! also the CID of the record value's DAG-CBOR and the one pinned in the manifest). The record
//! block itself must be in the CAR, so the proven bytes are the ones that hash to the CID.
//!
//! Everything here is the SDK's repository code ([`atlex::repo`]): CAR reading, the commit
//! object and its signature, the partly loaded MST.

use atlex::repo::{Car, CarLimits, Mst, RepoError, SignedCommit};
use atlex::types::crypto::PublicKey;
use atlex::types::{CidLink, Did, Nsid};

use crate::SCHEMA_COLLECTION;

/// The most blocks a record proof may have: the commit, one MST node per level (a tree of
/// millions of keys is about a dozen levels deep at fan-out 4), the record.
pub const MAX_PROOF_BLOCKS: usize = 64;
/// Room for the commit and the MST nodes of a proof, on top of the record itself.
pub const PROOF_OVERHEAD_BYTES: u64 = 256 * 1024;

/// A record proven by its repository's signed commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proven {
    /// The commit block's CID.
    pub commit: CidLink,
    /// The commit's revision.
    pub rev: String,
    /// The record's CID, as the MST holds it.
    pub cid: CidLink,
}

/// The limits of a proof CAR for records of at most `max_record_bytes`.
pub fn proof_limits(max_record_bytes: u64) -> CarLimits {
    let total = max_record_bytes.saturating_add(PROOF_OVERHEAD_BYTES);
    CarLimits {
        max_size: usize::try_from(total).unwrap_or(usize::MAX),
        max_header_size: 4 << 10,
        // A block is a record (at most the record limit) or an MST node or commit (small).
        max_block_size: usize::try_from(max_record_bytes.max(64 << 10)).unwrap_or(usize::MAX),
        max_blocks: MAX_PROOF_BLOCKS,
        max_roots: 1,
    }
}

/// The MST key of `nsid`'s lexicon record: `com.atproto.lexicon.schema/<nsid>`.
pub fn record_path(nsid: &Nsid) -> String {
    format!("{SCHEMA_COLLECTION}/{nsid}")
}

/// Verifies the proof `car` of `nsid`'s record in the repository of `did`, signed with `key`,
/// and that it proves the record CID `cid` (see the module docs). The error says what does not
/// hold.
pub fn verify_proof(
    car: bytes::Bytes,
    did: &Did,
    key: &PublicKey,
    nsid: &Nsid,
    cid: &str,
    max_record_bytes: u64,
) -> Result<Proven, String> {
    let car = Car::read(car, &proof_limits(max_record_bytes))
        .map_err(|error| format!("the proof is not a readable CAR: {error}"))?;
    let blocks = car.blocks();
    let commit = SignedCommit::from_blocks(car.root(), blocks)
        .map_err(|error| format!("the proof's root is not a commit: {error}"))?;
    if commit.did() != did {
        return Err(format!(
            "the proof's commit is by {}, not the authority {did}",
            commit.did()
        ));
    }
    commit.verify_signature(key).map_err(|error| {
        format!(
            "the commit's signature does not verify with the signing key of {did} ({}): {error}",
            key.to_did_key()
        )
    })?;
    let path = record_path(nsid);
    let mut mst = Mst::load(commit.data(), blocks).map_err(|error| {
        format!(
            "the commit's MST root {} is not in the proof: {error}",
            commit.data()
        )
    })?;
    let found = match mst.get(&path, blocks) {
        Ok(found) => found,
        Err(RepoError::MissingBlock { cid, .. }) => {
            return Err(format!(
                "the MST does not prove `{path}`: the node {cid} on the way to it is not in the \
                 proof"
            ));
        }
        Err(error) => return Err(format!("the MST in the proof is not valid: {error}")),
    };
    let Some(found) = found else {
        return Err(format!(
            "the MST of the signed commit (rev {}) has no `{path}`",
            commit.rev()
        ));
    };
    if found.to_string() != cid {
        return Err(format!(
            "the signed MST holds {found} at `{path}`, but the record's `cid` is `{}`",
            crate::record::shorten(cid)
        ));
    }
    if !blocks.contains(&found) {
        return Err(format!("the record block {found} is not in the proof"));
    }
    Ok(Proven {
        commit: car.root().clone(),
        rev: commit.rev().as_str().to_owned(),
        cid: found,
    })
}
