//! The manifest that pins fetched lexicons: `DIR/lexicons.pin.toml`.
//!
//! ```toml
//! [[lexicon]]
//! nsid = "com.example.feed.post"
//! did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
//! uri = "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/com.atproto.lexicon.schema/com.example.feed.post"
//! cid = "bafyrei…"
//! file = "com/example/feed/post.json"
//! sha256 = "<hex>"
//! rev = "3lbq…"   # the revision of the signed commit that proved the record
//! ```
//!
//! Entries are sorted by NSID; the file is parsed strictly (unknown keys, malformed NSIDs,
//! DIDs, hashes or paths are errors naming the entry and key).

use std::collections::BTreeMap;
use std::path::Path;

use atlex::types::{Did, Nsid};
use serde::{Deserialize, Serialize};

use crate::Error;

/// The manifest's file name inside the output folder.
pub const MANIFEST: &str = "lexicons.pin.toml";

const HEADER: &str = "\
# Lexicons fetched from the network by `cargo xtask lexicons fetch`: for each NSID, the DID
# that is its authority (DNS TXT _lexicon.<authority>), the com.atproto.lexicon.schema record
# it was read from, that record's CID (proven by the repository's signed commit of revision
# `rev`), and the sha256 of the file written here.
# `cargo xtask lexicons verify DIR` checks the folder against this file. Do not edit by hand:
# fetch again to update.
";

/// The parsed manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// One entry per document, by NSID.
    #[serde(default, rename = "lexicon")]
    pub lexicons: Vec<Pin>,
}

/// One pinned document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    /// The NSID.
    pub nsid: String,
    /// The authority's DID (whose repository holds the record).
    pub did: String,
    /// The record URI.
    pub uri: String,
    /// The record CID the PDS reported (and that the file's content hashes to).
    pub cid: String,
    /// The file, relative to the folder.
    pub file: String,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
    /// The revision of the repository's signed commit that proved the record when it was
    /// fetched (absent in manifests written before fetch verified proofs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rev: Option<String>,
}

impl Manifest {
    /// Reads `dir/lexicons.pin.toml`; `Ok(None)` when there is none.
    pub fn load(dir: &Path) -> Result<Option<Manifest>, Error> {
        let path = dir.join(MANIFEST);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(Error::new(format!("reading {}: {error}", path.display()))),
        };
        Manifest::parse(&text, &path).map(Some)
    }

    /// Parses and checks manifest text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Manifest, Error> {
        let manifest: Manifest = toml::from_str(text)
            .map_err(|error| Error::new(format!("parsing {}: {error}", origin.display())))?;
        let mut problems = Vec::new();
        let mut seen = BTreeMap::new();
        for (index, pin) in manifest.lexicons.iter().enumerate() {
            let at = format!("{}: lexicon[{index}]", origin.display());
            if let Err(error) = Nsid::new(pin.nsid.as_str()) {
                problems.push(format!("{at}: `nsid` {:?}: {error}", pin.nsid));
            } else if seen.insert(pin.nsid.clone(), index).is_some() {
                problems.push(format!("{at}: `nsid` {} is listed twice", pin.nsid));
            }
            if let Err(error) = Did::new(pin.did.as_str()) {
                problems.push(format!("{at}: `did` {:?}: {error}", pin.did));
            }
            if !is_sha256(&pin.sha256) {
                problems.push(format!(
                    "{at}: `sha256` is not 64 lower-case hex digits: {:?}",
                    pin.sha256
                ));
            }
            if !is_safe_relative(&pin.file) {
                problems.push(format!(
                    "{at}: `file` {:?} is not a relative path inside the folder",
                    pin.file
                ));
            }
        }
        if problems.is_empty() {
            Ok(manifest)
        } else {
            Err(Error { problems })
        }
    }

    /// The manifest text (entries sorted by NSID).
    pub fn to_text(&self) -> Result<String, Error> {
        let mut sorted = self.clone();
        sorted.lexicons.sort_by(|a, b| a.nsid.cmp(&b.nsid));
        let body = toml::to_string(&sorted)
            .map_err(|error| Error::new(format!("writing {MANIFEST}: {error}")))?;
        Ok(format!("{HEADER}\n{body}"))
    }

    /// Adds or replaces the entry of `pin.nsid`.
    pub fn upsert(&mut self, pin: Pin) {
        self.lexicons.retain(|old| old.nsid != pin.nsid);
        self.lexicons.push(pin);
    }
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// A `/`-separated relative path of plain segments (no `..`, `.`, empty or absolute parts).
fn is_safe_relative(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && !segment.contains('\\')
                && !segment.contains('\0')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(nsid: &str) -> Pin {
        Pin {
            nsid: nsid.to_owned(),
            did: "did:plc:ewvi7nxzyoun6zhxrhs64oiz".to_owned(),
            uri: format!("at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/com.atproto.lexicon.schema/{nsid}"),
            cid: "bafyreib2rxk3rh6kzwq".to_owned(),
            file: format!("{}.json", nsid.replace('.', "/")),
            sha256: "0".repeat(64),
            rev: Some("3lbqzzzzzzz22".to_owned()),
        }
    }

    #[test]
    fn round_trip_sorted() {
        let mut manifest = Manifest::default();
        manifest.upsert(pin("org.example.b.x"));
        manifest.upsert(pin("com.example.a.y"));
        manifest.upsert(pin("org.example.b.x"));
        let text = manifest.to_text().unwrap();
        let parsed = Manifest::parse(&text, Path::new("m.toml")).unwrap();
        assert_eq!(parsed.lexicons.len(), 2);
        assert_eq!(parsed.lexicons[0].nsid, "com.example.a.y");
    }

    #[test]
    fn bad_entries_are_named() {
        let mut bad = pin("com.example.a.y");
        bad.file = "../../etc/passwd".to_owned();
        bad.sha256 = "xyz".to_owned();
        bad.did = "nope".to_owned();
        let text = Manifest {
            lexicons: vec![bad, pin("com.example.a.y")],
        }
        .to_text()
        .unwrap();
        let error = Manifest::parse(&text, Path::new("m.toml")).unwrap_err();
        let all = error.to_string();
        for needle in ["`file`", "`sha256`", "`did`", "listed twice"] {
            assert!(all.contains(needle), "{needle} in {all}");
        }
        let unknown = Manifest::parse("[[lexicon]]\nnsid = \"a.b.c\"\nextra = 1\n", Path::new("m"))
            .unwrap_err();
        assert!(unknown.to_string().contains("extra"), "{unknown}");
    }
}
