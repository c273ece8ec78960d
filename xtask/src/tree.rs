//! File trees as maps from relative path to sha256, and the comparison of two such maps.
//!
//! Paths are relative to the tree's root and always use `/`, whatever the platform, so that
//! they can be compared with (and stored in) `lexicons/lexicons.toml`. Only regular files count;
//! a symbolic link or any other special file inside a tree is an error rather than something
//! silently followed or skipped.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Context, Error, Result};

/// Relative path (with `/` separators) to the lower-case hex sha256 of the file's bytes.
pub type FileHashes = BTreeMap<String, String>;

/// The lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Hashes every file under `root`.
pub fn hash_tree(root: &Path) -> Result<FileHashes> {
    let mut hashes = FileHashes::new();
    walk(root, &mut |relative, path| {
        let bytes = fs::read(path).context(|| format!("reading {}", path.display()))?;
        hashes.insert(relative.to_owned(), sha256_hex(&bytes));
        Ok(())
    })?;
    Ok(hashes)
}

/// Copies every file under `source` into `destination` (which must not exist yet) and returns
/// the hashes of the bytes written, so that what was copied is exactly what was hashed.
pub fn copy_tree(source: &Path, destination: &Path) -> Result<FileHashes> {
    let mut hashes = FileHashes::new();
    // Checked first so that a missing source is reported as such, not as a failed copy.
    check_is_dir(source)?;
    fs::create_dir(destination).context(|| format!("creating {}", destination.display()))?;
    walk(source, &mut |relative, path| {
        let bytes = fs::read(path).context(|| format!("reading {}", path.display()))?;
        let target = destination.join(relative);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).context(|| format!("creating {}", parent.display()))?;
        }
        fs::write(&target, &bytes).context(|| format!("writing {}", target.display()))?;
        hashes.insert(relative.to_owned(), sha256_hex(&bytes));
        Ok(())
    })?;
    Ok(hashes)
}

fn check_is_dir(root: &Path) -> Result<()> {
    let metadata = fs::metadata(root).context(|| format!("reading {}", root.display()))?;
    if metadata.is_dir() {
        Ok(())
    } else {
        Err(Error::new(format!("{} is not a directory", root.display())))
    }
}

/// Calls `visit(relative_path, full_path)` for every regular file under `root`, in sorted order.
fn walk(root: &Path, visit: &mut dyn FnMut(&str, &Path) -> Result<()>) -> Result<()> {
    check_is_dir(root)?;
    walk_dir(root, "", visit)
}

fn walk_dir(
    dir: &Path,
    prefix: &str,
    visit: &mut dyn FnMut(&str, &Path) -> Result<()>,
) -> Result<()> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).context(|| format!("listing {}", dir.display()))? {
        let entry = entry.context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(Error::new(format!(
                "{}: file name is not valid UTF-8",
                entry.path().display()
            )));
        };
        let file_type = entry
            .file_type()
            .context(|| format!("reading {}", entry.path().display()))?;
        entries.push((name.to_owned(), file_type));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, file_type) in entries {
        let path = dir.join(&name);
        let relative = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if file_type.is_dir() {
            walk_dir(&path, &relative, visit)?;
        } else if file_type.is_file() {
            visit(&relative, &path)?;
        } else if file_type.is_symlink() {
            return Err(Error::new(format!(
                "{} is a symbolic link; lexicon trees must hold only regular files",
                path.display()
            )));
        } else {
            return Err(Error::new(format!(
                "{} is not a regular file or directory",
                path.display()
            )));
        }
    }
    Ok(())
}

/// A file whose content differs from what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// Relative path.
    pub path: String,
    /// The expected (pinned) sha256.
    pub expected: String,
    /// The sha256 actually found.
    pub actual: String,
}

/// How a tree differs from the expected set of files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeDiff {
    /// Files present but not expected.
    pub added: Vec<String>,
    /// Files expected but absent.
    pub missing: Vec<String>,
    /// Files present with other content than expected.
    pub changed: Vec<Changed>,
}

impl TreeDiff {
    /// Compares `actual` against `expected`.
    pub fn between(expected: &FileHashes, actual: &FileHashes) -> TreeDiff {
        let mut diff = TreeDiff::default();
        for (path, expected_hash) in expected {
            match actual.get(path) {
                None => diff.missing.push(path.clone()),
                Some(actual_hash) if actual_hash != expected_hash => diff.changed.push(Changed {
                    path: path.clone(),
                    expected: expected_hash.clone(),
                    actual: actual_hash.clone(),
                }),
                Some(_) => {}
            }
        }
        diff.added = actual
            .keys()
            .filter(|path| !expected.contains_key(*path))
            .cloned()
            .collect();
        diff
    }

    /// True when the trees hold the same files with the same content.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.missing.is_empty() && self.changed.is_empty()
    }

    /// `"2 added, 1 missing, 0 changed"`.
    pub fn summary(&self) -> String {
        format!(
            "{} added, {} missing, {} changed",
            self.added.len(),
            self.missing.len(),
            self.changed.len()
        )
    }
}

/// How many files of each kind a listing names before summarising the rest.
const LISTED_PER_KIND: usize = 25;

/// One line per differing file, by kind then path; after 25 files of one kind, one line says
/// how many more there are.
impl fmt::Display for TreeDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn more(f: &mut fmt::Formatter<'_>, total: usize, kind: &str) -> fmt::Result {
            if total > LISTED_PER_KIND {
                writeln!(f, "  ... and {} more {kind} files", total - LISTED_PER_KIND)?;
            }
            Ok(())
        }
        for path in self.added.iter().take(LISTED_PER_KIND) {
            writeln!(f, "  added    {path}  (present but not pinned)")?;
        }
        more(f, self.added.len(), "added")?;
        for path in self.missing.iter().take(LISTED_PER_KIND) {
            writeln!(f, "  missing  {path}")?;
        }
        more(f, self.missing.len(), "missing")?;
        for changed in self.changed.iter().take(LISTED_PER_KIND) {
            writeln!(
                f,
                "  changed  {}  (sha256 {}, pinned {})",
                changed.path, changed.actual, changed.expected
            )?;
        }
        more(f, self.changed.len(), "changed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_inputs() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hash_tree_uses_slash_paths_and_skips_nothing() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("app/bsky")).unwrap();
        fs::write(dir.path().join("app/bsky/post.json"), "abc").unwrap();
        fs::write(dir.path().join(".hidden"), "").unwrap();
        let hashes = hash_tree(dir.path()).unwrap();
        let paths: Vec<&str> = hashes.keys().map(String::as_str).collect();
        assert_eq!(paths, [".hidden", "app/bsky/post.json"]);
        assert_eq!(hashes["app/bsky/post.json"], sha256_hex(b"abc"));
    }

    #[test]
    fn hash_tree_of_a_missing_dir_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let error = hash_tree(&missing).unwrap_err();
        assert!(error.message().contains("nope"), "{error}");
    }

    #[test]
    fn hash_tree_of_a_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        fs::write(&file, "x").unwrap();
        let error = hash_tree(&file).unwrap_err();
        assert!(error.message().contains("is not a directory"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("real.json"), "{}").unwrap();
        std::os::unix::fs::symlink(dir.path().join("real.json"), dir.path().join("link.json"))
            .unwrap();
        let error = hash_tree(dir.path()).unwrap_err();
        assert!(error.message().contains("symbolic link"), "{error}");
    }

    #[test]
    fn copy_tree_copies_and_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("src");
        fs::create_dir_all(source.join("a/b")).unwrap();
        fs::write(source.join("a/b/c.json"), "{\"c\":1}").unwrap();
        fs::write(source.join("top.json"), "{}").unwrap();
        let destination = dir.path().join("dst");
        let copied = copy_tree(&source, &destination).unwrap();
        assert_eq!(copied, hash_tree(&source).unwrap());
        assert_eq!(copied, hash_tree(&destination).unwrap());
        assert_eq!(
            fs::read_to_string(destination.join("a/b/c.json")).unwrap(),
            "{\"c\":1}"
        );
    }

    #[test]
    fn diff_reports_added_missing_changed() {
        let expected: FileHashes = [("a", "1"), ("b", "2"), ("c", "3")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let actual: FileHashes = [("b", "2"), ("c", "x"), ("d", "4")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let diff = TreeDiff::between(&expected, &actual);
        assert_eq!(diff.added, ["d"]);
        assert_eq!(diff.missing, ["a"]);
        assert_eq!(
            diff.changed,
            [Changed {
                path: "c".to_owned(),
                expected: "3".to_owned(),
                actual: "x".to_owned()
            }]
        );
        assert!(!diff.is_empty());
        assert_eq!(diff.summary(), "1 added, 1 missing, 1 changed");
        let text = diff.to_string();
        assert!(text.contains("added    d"), "{text}");
        assert!(text.contains("missing  a"), "{text}");
        assert!(text.contains("changed  c  (sha256 x, pinned 3)"), "{text}");
        assert!(TreeDiff::between(&expected, &expected).is_empty());
    }

    #[test]
    fn long_listings_are_summarised() {
        let actual: FileHashes = (0..30)
            .map(|i| (format!("f{i:02}"), "h".to_owned()))
            .collect();
        let diff = TreeDiff::between(&FileHashes::new(), &actual);
        let text = diff.to_string();
        assert_eq!(text.lines().count(), 26, "{text}");
        assert!(text.contains("added    f24"), "{text}");
        assert!(!text.contains("f25"), "{text}");
        assert!(text.ends_with("  ... and 5 more added files\n"), "{text}");
    }
}
