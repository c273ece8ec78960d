//! A `com.atproto.sync.subscribeRepos` stream recorded from the reference PDS:
//! `tests/fixtures/firehose/recorded.bin.zst`, written by `tests/tests/firehose_pds.rs` with
//! `ATLEX_RECORD=1` and read by that test (which checks it still decodes and verifies in
//! order) and by the `firehose` benchmark (`tests/bench/benches/firehose.rs`).
//!
//! The file is one zstd frame (the frames repeat many CIDs, so it is about 7× smaller
//! compressed); inside, every integer little-endian:
//!
//! ```text
//! "atlex-firehose-recording/1\n"
//! u32 number of accounts, then per account:  u16 length, DID;  u16 length, did:key
//! u32 number of frames,   then per frame:    u32 length, the WebSocket binary message
//! ```
//!
//! A frame is the message exactly as the PDS sent it (CBOR header, CBOR payload). The keys
//! are the accounts' signing keys from their DID documents (the PDS's PLC directory), so the
//! commits verify without the PDS. Reading is bounded: at most [`MAX_SIZE`] bytes
//! decompressed, [`MAX_FRAMES`] frames of at most [`MAX_FRAME`] bytes; anything else is an
//! error, not a panic.

use std::path::PathBuf;

use atlex::types::crypto::PublicKey;

/// The first bytes of a recording.
pub const MAGIC: &[u8] = b"atlex-firehose-recording/1\n";

/// The most frames a recording may hold.
pub const MAX_FRAMES: usize = 100_000;

/// The largest frame a recording may hold, in bytes (the event limit of the sync spec is
/// 2 MB of blocks; 5 MiB leaves room for the rest of the frame).
pub const MAX_FRAME: usize = 5 << 20;

/// The most bytes a recording may hold decompressed.
pub const MAX_SIZE: usize = 256 << 20;

/// A recorded stream: the accounts' keys and the frames, in the order they arrived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recording {
    /// `(DID, did:key)` of every account whose events the recording holds.
    pub keys: Vec<(String, String)>,
    /// The binary WebSocket messages, in order.
    pub frames: Vec<Vec<u8>>,
}

/// The committed recording: `tests/fixtures/firehose/recorded.bin.zst`.
pub fn fixture_path() -> PathBuf {
    crate::data::workspace_root().join("tests/fixtures/firehose/recorded.bin.zst")
}

impl Recording {
    /// Reads, decompresses and parses the file at `path`.
    pub fn read(path: &std::path::Path) -> Result<Recording, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let bytes = zstd::bulk::decompress(&bytes, MAX_SIZE)
            .map_err(|e| format!("{}: not zstd within {MAX_SIZE} bytes: {e}", path.display()))?;
        Recording::decode(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Encodes, compresses and writes the recording to `path`.
    pub fn write(&self, path: &std::path::Path) -> Result<(), String> {
        let bytes = zstd::bulk::compress(&self.encode()?, 19).map_err(|e| e.to_string())?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))
    }

    /// Parses a recording (decompressed).
    pub fn decode(bytes: &[u8]) -> Result<Recording, String> {
        let mut reader = Reader { bytes, pos: 0 };
        if reader.take(MAGIC.len())? != MAGIC {
            return Err("not an atlex firehose recording (bad magic)".into());
        }
        let accounts = reader.u32()? as usize;
        if accounts > MAX_FRAMES {
            return Err(format!("{accounts} accounts"));
        }
        let mut keys = Vec::with_capacity(accounts);
        for _ in 0..accounts {
            let did = reader.text()?;
            let key = reader.text()?;
            keys.push((did, key));
        }
        let count = reader.u32()? as usize;
        if count > MAX_FRAMES {
            return Err(format!("{count} frames (at most {MAX_FRAMES})"));
        }
        let mut frames = Vec::with_capacity(count);
        for index in 0..count {
            let len = reader.u32()? as usize;
            if len > MAX_FRAME {
                return Err(format!(
                    "frame {index} has {len} bytes (at most {MAX_FRAME})"
                ));
            }
            frames.push(reader.take(len)?.to_vec());
        }
        if reader.pos != bytes.len() {
            return Err(format!(
                "{} bytes after the last frame",
                bytes.len() - reader.pos
            ));
        }
        Ok(Recording { keys, frames })
    }

    /// Encodes the recording (the format of the module docs, before compression).
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let mut out = MAGIC.to_vec();
        let count =
            |n: usize, what: &str| u32::try_from(n).map_err(|_| format!("too many {what}: {n}"));
        out.extend(count(self.keys.len(), "accounts")?.to_le_bytes());
        for (did, key) in &self.keys {
            for text in [did, key] {
                let len = u16::try_from(text.len()).map_err(|_| format!("{text:?} is too long"))?;
                out.extend(len.to_le_bytes());
                out.extend(text.as_bytes());
            }
        }
        out.extend(count(self.frames.len(), "frames")?.to_le_bytes());
        for frame in &self.frames {
            out.extend(count(frame.len(), "bytes in a frame")?.to_le_bytes());
            out.extend(frame);
        }
        Ok(out)
    }

    /// The signing key of `did`, if the recording has it.
    pub fn key(&self, did: &str) -> Option<PublicKey> {
        self.keys
            .iter()
            .find(|(d, _)| d == did)
            .and_then(|(_, key)| PublicKey::from_did_key(key).ok())
    }

    /// The total size of the frames, in bytes.
    pub fn frame_bytes(&self) -> usize {
        self.frames.iter().map(Vec::len).sum()
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn text(&mut self) -> Result<String, String> {
        let len = self.take(2)?;
        let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "a DID or key is not UTF-8".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_hostile_input() {
        let recording = Recording {
            keys: vec![("did:plc:a".into(), "did:key:zQ3sh".into())],
            frames: vec![vec![1, 2, 3], vec![]],
        };
        let bytes = recording.encode().unwrap();
        assert_eq!(Recording::decode(&bytes).unwrap(), recording);
        for cut in 0..bytes.len() {
            assert!(Recording::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(Recording::decode(&extra).is_err());
    }
}
