//! `verify DIR`: the folder against its manifest, offline.
//!
//! For every pinned entry: the file exists where the NSID puts it, its sha256 is the pinned
//! one, and its content passes the record checks of [`crate::record::check`] with the pinned
//! DID, URI and CID (so a file edited together with its sha256 still fails: it no longer
//! hashes to the record CID that was fetched). `*.json` files in the folder that the manifest
//! does not list are errors too (they would be generated without a pin).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use atlex::types::{Did, Nsid};
use serde_json::Value;

use crate::manifest::{MANIFEST, Manifest};
use crate::{Error, document_path, record, sha256_hex};

/// Checks `dir` against `dir/lexicons.pin.toml`; returns the number of pinned files.
pub fn verify(dir: &Path, out: &mut dyn Write) -> Result<usize, Error> {
    let manifest = Manifest::load(dir)?.ok_or_else(|| {
        Error::new(format!(
            "{}: no {MANIFEST} (write one with `cargo xtask lexicons fetch … --into {}`)",
            dir.display(),
            dir.display()
        ))
    })?;
    let mut problems = Vec::new();
    let mut listed = BTreeSet::new();
    for pin in &manifest.lexicons {
        let (Ok(nsid), Ok(did)) = (Nsid::new(pin.nsid.as_str()), Did::new(pin.did.as_str())) else {
            // Manifest::parse has reported these.
            continue;
        };
        let expected = document_path(&nsid);
        if pin.file != expected {
            problems.push(format!(
                "{nsid}: {MANIFEST}: `file` is `{}`, expected `{expected}`",
                pin.file
            ));
            continue;
        }
        listed.insert(dir.join(&pin.file));
        let path = dir.join(&pin.file);
        let shown = path.display().to_string();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) => {
                problems.push(format!("{nsid}: {shown}: {error}"));
                continue;
            }
        };
        let sha256 = sha256_hex(&bytes);
        if sha256 != pin.sha256 {
            problems.push(format!(
                "{nsid}: {shown}: sha256 is {sha256}, pinned {} (the file changed since it was \
                 fetched; fetch it again to update the pin)",
                pin.sha256
            ));
        }
        let value: Value = match serde_json::from_slice(&bytes) {
            Ok(value) => value,
            Err(error) => {
                problems.push(format!("{nsid}: {shown}: not JSON: {error}"));
                continue;
            }
        };
        if let Err(found) = record::check(&nsid, &did, &pin.uri, &pin.cid, &value, &shown) {
            problems.extend(found);
        }
    }
    match atlex_lexicon::json_files(dir) {
        Ok(files) => {
            for file in files {
                if !listed.contains(&file) {
                    problems.push(format!(
                        "{}: not pinned in {MANIFEST} (fetch it, or remove it)",
                        file.display()
                    ));
                }
            }
        }
        Err(error) => problems.push(format!("listing {}: {error}", dir.display())),
    }
    if !problems.is_empty() {
        return Err(Error { problems });
    }
    let _ = writeln!(
        out,
        "{}: {} pinned lexicon(s) match {MANIFEST}",
        dir.display(),
        manifest.lexicons.len()
    );
    Ok(manifest.lexicons.len())
}
