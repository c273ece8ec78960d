//! CAR v1 reading: a header (`{version: 1, roots: [CID…]}`) and blocks (`CID ‖ bytes`), each
//! behind an unsigned-varint length.
//!
//! Written here rather than taken from a crate: the CAR crates (`iroh-car`, `rs-car`) are
//! asynchronous streaming readers over `AsyncRead`, while atproto CARs arrive whole in memory
//! (a `#commit` event's `blocks`, a bounded `getRepo` body). Reading a slice needs ~150 lines,
//! no executor and no copies: every block is a [`bytes::Bytes`] slice of the input.
//!
//! Everything is bounded by [`CarLimits`]: varints are at most 9 bytes, the header, each
//! block and the number of blocks have limits, and every block's SHA-256 is checked against
//! its CID ([`RepoError::HashMismatch`]). Every root named in the header must be one of the
//! blocks ([`RepoError::LyingRoots`]).

use std::collections::HashMap;

use atlex_types::CidLink;
use atlex_types::data::{DAG_CBOR_CODEC, RAW_CODEC, SHA2_256_CODE};
use bytes::Bytes;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::error::RepoError;

/// Limits on a CAR file being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CarLimits {
    /// The whole file, in bytes.
    pub max_size: usize,
    /// The header, in bytes.
    pub max_header_size: usize,
    /// One block (CID and data), in bytes.
    pub max_block_size: usize,
    /// The number of blocks.
    pub max_blocks: usize,
    /// The number of roots in the header.
    pub max_roots: usize,
}

impl CarLimits {
    /// Limits for a `#commit` (or `#sync`) event's `blocks`: 4 MiB, 1 MiB per block (records
    /// are limited to 1 MiB), 10 000 blocks.
    pub const EVENT: CarLimits = CarLimits {
        max_size: 4 << 20,
        max_header_size: 4 << 10,
        max_block_size: 1 << 20,
        max_blocks: 10_000,
        max_roots: 4,
    };

    /// Limits for a whole repository (`com.atproto.sync.getRepo`): 1 GiB, 1 MiB per block,
    /// 4 million blocks. The body must still be read with a bound (`atlex::net`).
    pub const REPO: CarLimits = CarLimits {
        max_size: 1 << 30,
        max_header_size: 4 << 10,
        max_block_size: 1 << 20,
        max_blocks: 4_000_000,
        max_roots: 4,
    };
}

impl Default for CarLimits {
    fn default() -> CarLimits {
        CarLimits::REPO
    }
}

/// Blocks by CID; every block's SHA-256 matches its CID.
#[derive(Debug, Clone, Default)]
pub struct Blocks {
    map: HashMap<CidLink, Bytes>,
}

impl Blocks {
    /// No blocks.
    pub fn new() -> Blocks {
        Blocks::default()
    }

    /// The block with this CID.
    pub fn get(&self, cid: &CidLink) -> Option<&Bytes> {
        self.map.get(cid)
    }

    /// Whether the block is present.
    pub fn contains(&self, cid: &CidLink) -> bool {
        self.map.contains_key(cid)
    }

    /// The number of blocks.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Adds DAG-CBOR `bytes` under their own CID (computed here) and returns it.
    pub fn insert_dag_cbor(&mut self, bytes: impl Into<Bytes>) -> CidLink {
        let bytes = bytes.into();
        let cid = CidLink::for_dag_cbor(&bytes);
        self.map.insert(cid.clone(), bytes);
        cid
    }

    /// Iterates over the blocks, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&CidLink, &Bytes)> {
        self.map.iter()
    }

    /// Keeps only the blocks `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&CidLink) -> bool) {
        self.map.retain(|cid, _| keep(cid));
    }
}

/// A CAR v1 file: its roots and its (verified) blocks.
#[derive(Debug, Clone)]
pub struct Car {
    root: CidLink,
    roots: Vec<CidLink>,
    blocks: Blocks,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    version: u64,
    roots: Vec<CidLink>,
}

impl Car {
    /// Reads a CAR v1 file within `limits`.
    pub fn read(bytes: impl Into<Bytes>, limits: &CarLimits) -> Result<Car, RepoError> {
        let bytes: Bytes = bytes.into();
        if bytes.len() > limits.max_size {
            return Err(RepoError::too_large(
                "CAR file",
                bytes.len() as u64,
                limits.max_size as u64,
            ));
        }
        let mut pos = 0usize;
        let header_len = read_length(&bytes, &mut pos, || "header length".to_owned())?;
        if header_len > limits.max_header_size {
            return Err(RepoError::too_large(
                "CAR header",
                header_len as u64,
                limits.max_header_size as u64,
            ));
        }
        let header_bytes = take(&bytes, &mut pos, header_len, || "header".to_owned())?;
        let header: Header = serde_ipld_dagcbor::from_slice(&header_bytes)
            .map_err(|e| RepoError::BadHeader(e.to_string()))?;
        if header.version != 1 {
            return Err(RepoError::BadHeader(format!(
                "version {} (only CAR v1 is read)",
                header.version
            )));
        }
        let Some(root) = header.roots.first().cloned() else {
            return Err(RepoError::LyingRoots("the header names no root".into()));
        };
        if header.roots.len() > limits.max_roots {
            return Err(RepoError::too_large(
                "CAR roots",
                header.roots.len() as u64,
                limits.max_roots as u64,
            ));
        }
        let mut blocks = Blocks::new();
        let mut index = 0usize;
        while pos < bytes.len() {
            if index >= limits.max_blocks {
                return Err(RepoError::too_large(
                    "number of CAR blocks",
                    index as u64 + 1,
                    limits.max_blocks as u64,
                ));
            }
            // Named only when something is wrong: no allocation per block otherwise.
            let what = || format!("block {index}");
            let len = read_length(&bytes, &mut pos, what)?;
            if len > limits.max_block_size {
                return Err(RepoError::too_large(
                    what(),
                    len as u64,
                    limits.max_block_size as u64,
                ));
            }
            let section = take(&bytes, &mut pos, len, what)?;
            let (cid, data) = split_block(section, index)?;
            blocks.map.entry(cid).or_insert(data);
            index += 1;
        }
        for root in &header.roots {
            if !blocks.contains(root) {
                return Err(RepoError::LyingRoots(format!(
                    "root {root} is not among the blocks"
                )));
            }
        }
        Ok(Car {
            root,
            roots: header.roots,
            blocks,
        })
    }

    /// The roots named in the header (at least one; each is among the blocks).
    pub fn roots(&self) -> &[CidLink] {
        &self.roots
    }

    /// The first root (for atproto CARs: the commit).
    pub fn root(&self) -> &CidLink {
        &self.root
    }

    /// The blocks.
    pub fn blocks(&self) -> &Blocks {
        &self.blocks
    }

    /// The blocks, owned.
    pub fn into_blocks(self) -> Blocks {
        self.blocks
    }
}

/// Reads an unsigned varint (at most 9 bytes, as multiformats allows) as a length.
fn read_length(
    bytes: &[u8],
    pos: &mut usize,
    what: impl Fn() -> String,
) -> Result<usize, RepoError> {
    let value = read_varint(bytes, pos).map_err(|e| match e {
        VarintError::Truncated => RepoError::truncated(what()),
        VarintError::TooLong => RepoError::too_large(format!("varint of {}", what()), 10, 9),
    })?;
    usize::try_from(value).map_err(|_| RepoError::too_large(what(), value, usize::MAX as u64))
}

enum VarintError {
    Truncated,
    TooLong,
}

fn read_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, VarintError> {
    let mut value = 0u64;
    for i in 0..9 {
        let byte = *bytes.get(*pos).ok_or(VarintError::Truncated)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(VarintError::TooLong)
}

fn take(
    bytes: &Bytes,
    pos: &mut usize,
    len: usize,
    what: impl Fn() -> String,
) -> Result<Bytes, RepoError> {
    let end = pos
        .checked_add(len)
        .filter(|end| *end <= bytes.len())
        .ok_or_else(|| RepoError::truncated(what()))?;
    let out = bytes.slice(*pos..end);
    *pos = end;
    Ok(out)
}

/// Splits a block section into its CID and data, and checks the data's SHA-256.
fn split_block(section: Bytes, index: usize) -> Result<(CidLink, Bytes), RepoError> {
    let bad = |reason: &str| RepoError::BadCid {
        block: index,
        reason: reason.to_owned(),
    };
    let mut pos = 0usize;
    let mut field = |name: &str| {
        read_varint(&section, &mut pos).map_err(|_| bad(&format!("unreadable {name}")))
    };
    let version = field("version")?;
    if version != 1 {
        // A CIDv0 starts with 0x12 (the SHA-256 multihash); atproto writes only CIDv1.
        return Err(bad("not a CIDv1"));
    }
    let codec = field("codec")?;
    if codec != DAG_CBOR_CODEC && codec != RAW_CODEC {
        return Err(bad(&format!(
            "codec 0x{codec:x} (atproto uses DAG-CBOR or raw)"
        )));
    }
    let hash = field("hash code")?;
    if hash != SHA2_256_CODE {
        return Err(bad(&format!("hash 0x{hash:x} (atproto uses SHA-256)")));
    }
    let digest_len = field("digest length")?;
    if digest_len != 32 {
        return Err(bad(&format!("SHA-256 digest of {digest_len} bytes")));
    }
    let digest_end = pos + 32;
    let digest = section
        .get(pos..digest_end)
        .ok_or_else(|| bad("truncated digest"))?;
    let cid_bytes = section.get(..digest_end).ok_or_else(|| bad("truncated"))?;
    let cid = CidLink::from_bytes(cid_bytes).map_err(|e| bad(&e.to_string()))?;
    let data = section.slice(digest_end..);
    if Sha256::digest(&data).as_slice() != digest {
        return Err(RepoError::HashMismatch { cid });
    }
    Ok((cid, data))
}

/// Writes a CAR v1 file (roots, then the blocks in the order given).
pub fn write_car<'a>(
    roots: &[CidLink],
    blocks: impl IntoIterator<Item = (&'a CidLink, &'a [u8])>,
) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct HeaderOut<'r> {
        version: u64,
        roots: &'r [CidLink],
    }
    let mut out = Vec::new();
    // A header of CIDs and an integer always encodes.
    let header = serde_ipld_dagcbor::to_vec(&HeaderOut { version: 1, roots }).unwrap_or_default();
    write_varint(&mut out, header.len() as u64);
    out.extend_from_slice(&header);
    for (cid, data) in blocks {
        let cid = cid.to_bytes();
        write_varint(&mut out, (cid.len() + data.len()) as u64);
        out.extend_from_slice(&cid);
        out.extend_from_slice(data);
    }
    out
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
