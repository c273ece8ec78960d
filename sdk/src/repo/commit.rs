//! The signed commit object at the top of a repository: `{did, version: 3, data, rev, prev,
//! sig}`, `data` the MST root, `sig` the account's signature over the DAG-CBOR of the object
//! without `sig` (SHA-256, then ECDSA P-256 or secp256k1, compact low-S).

use std::collections::BTreeMap;

use atlex_types::crypto::{PrivateKey, PublicKey};
use atlex_types::{Bytes, CidLink, Data, Did, Tid};

use super::car::Blocks;
use super::error::RepoError;

/// The commit version this crate reads and writes.
pub const COMMIT_VERSION: i64 = 3;

/// A commit without its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedCommit {
    /// The account.
    pub did: Did,
    /// The MST root.
    pub data: CidLink,
    /// The revision (a TID, increasing with every commit).
    pub rev: Tid,
    /// The previous commit (usually `None`: v3 commits need not link back).
    pub prev: Option<CidLink>,
}

impl UnsignedCommit {
    fn fields(&self) -> BTreeMap<String, Data> {
        let mut map = BTreeMap::new();
        map.insert("did".to_owned(), Data::String(self.did.as_str().to_owned()));
        map.insert("version".to_owned(), Data::Integer(COMMIT_VERSION));
        map.insert("data".to_owned(), Data::Link(self.data.clone()));
        map.insert("rev".to_owned(), Data::String(self.rev.as_str().to_owned()));
        map.insert(
            "prev".to_owned(),
            self.prev.clone().map_or(Data::Null, Data::Link),
        );
        map
    }

    /// Signs the commit with the account's key.
    pub fn sign(self, key: &PrivateKey) -> Result<SignedCommit, RepoError> {
        let fields = self.fields();
        let unsigned = encode(&fields)?;
        let sig = key.sign(&unsigned).to_vec();
        Ok(SignedCommit {
            commit: self,
            sig: Bytes::new(sig),
            unsigned,
        })
    }
}

fn encode(map: &BTreeMap<String, Data>) -> Result<Vec<u8>, RepoError> {
    atlex_types::data::to_dag_cbor(map)
        .map_err(|e| RepoError::InvalidCommit(format!("cannot encode: {e}")))
}

/// A commit and its signature, as read from its block (or made by [`UnsignedCommit::sign`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCommit {
    /// The signed fields.
    pub commit: UnsignedCommit,
    /// The signature (64 bytes for a valid one).
    pub sig: Bytes,
    /// The bytes the signature covers: the object without `sig`, as DAG-CBOR.
    unsigned: Vec<u8>,
}

impl SignedCommit {
    /// Decodes the commit block `cid` of `blocks`.
    pub fn from_blocks(cid: &CidLink, blocks: &Blocks) -> Result<SignedCommit, RepoError> {
        let bytes = blocks
            .get(cid)
            .ok_or_else(|| RepoError::missing(cid, "the commit"))?;
        SignedCommit::decode(cid, bytes)
    }

    /// Decodes a commit block (`cid` only names it in errors).
    pub fn decode(cid: &CidLink, bytes: &[u8]) -> Result<SignedCommit, RepoError> {
        let mut map: BTreeMap<String, Data> = atlex_types::data::from_dag_cbor(bytes)
            .map_err(|e| RepoError::bad_block(cid, format!("not a commit object: {e}")))?;
        let bad = |reason: String| RepoError::bad_block(cid, format!("commit: {reason}"));
        let sig = match map.remove("sig") {
            Some(Data::Bytes(sig)) => sig,
            Some(other) => return Err(bad(format!("`sig` is {}, not bytes", other.kind_name()))),
            None => return Err(bad("no `sig`".into())),
        };
        let text = |key: &str| match map.get(key) {
            Some(Data::String(s)) => Ok(s.clone()),
            Some(other) => Err(bad(format!(
                "`{key}` is {}, not a string",
                other.kind_name()
            ))),
            None => Err(bad(format!("no `{key}`"))),
        };
        let did = Did::new(text("did")?).map_err(|e| bad(format!("`did`: {e}")))?;
        let rev = Tid::new(text("rev")?).map_err(|e| bad(format!("`rev`: {e}")))?;
        match map.get("version") {
            Some(Data::Integer(COMMIT_VERSION)) => {}
            Some(Data::Integer(v)) => {
                return Err(RepoError::InvalidCommit(format!(
                    "version {v} (only version {COMMIT_VERSION} is read)"
                )));
            }
            _ => return Err(bad("`version` is not an integer".into())),
        }
        let data = match map.get("data") {
            Some(Data::Link(link)) => link.clone(),
            _ => return Err(bad("`data` is not a link".into())),
        };
        let prev = match map.get("prev") {
            None | Some(Data::Null) => None,
            Some(Data::Link(link)) => Some(link.clone()),
            Some(other) => return Err(bad(format!("`prev` is {}", other.kind_name()))),
        };
        // The signed bytes are the rest of the object as it was (unknown fields included).
        let unsigned = encode(&map)?;
        Ok(SignedCommit {
            commit: UnsignedCommit {
                did,
                data,
                rev,
                prev,
            },
            sig,
            unsigned,
        })
    }

    /// The account.
    pub fn did(&self) -> &Did {
        &self.commit.did
    }

    /// The MST root.
    pub fn data(&self) -> &CidLink {
        &self.commit.data
    }

    /// The revision.
    pub fn rev(&self) -> &Tid {
        &self.commit.rev
    }

    /// Checks the signature with the account's key (from its DID document:
    /// `atlex::identity`'s `ResolvedIdentity::signing_key`).
    pub fn verify_signature(&self, key: &PublicKey) -> Result<(), RepoError> {
        key.verify(&self.unsigned, &self.sig)
            .map_err(RepoError::Signature)
    }

    /// The commit block, DAG-CBOR.
    pub fn to_block(&self) -> Result<Vec<u8>, RepoError> {
        let mut map = self.commit.fields();
        map.insert("sig".to_owned(), Data::Bytes(self.sig.clone()));
        encode(&map)
    }
}
