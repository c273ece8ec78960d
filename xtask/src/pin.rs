//! `lexicons/lexicons.toml`: where the upstream lexicons come from and what every file hashes to.
//!
//! ```toml
//! [source]
//! git = "https://github.com/bluesky-social/atproto.git"
//! commit = "d6296a1cfdb40a773319cb59061300e4e8e52f26"
//! path = "lexicons"
//!
//! [files]
//! "app/bsky/feed/post.json" = "<sha256 hex>"
//! ```
//!
//! The file is written by `cargo xtask lexicons pin` and read by `sync`; it is parsed strictly
//! (unknown keys, malformed commits, hashes or paths are errors that name the file and key).

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};
use crate::tree::FileHashes;

/// The upstream repository of the official lexicons.
pub const DEFAULT_GIT_URL: &str = "https://github.com/bluesky-social/atproto.git";

/// The folder of the upstream repository that holds the lexicons.
pub const DEFAULT_PATH: &str = "lexicons";

const HEADER: &str = "\
# The upstream lexicons atlex is generated from: `path` of the `git` repository at `commit`,
# and the sha256 of every file in it. `cargo xtask lexicons sync` fetches them into
# lexicons/official/ and checks every hash. Written by `cargo xtask lexicons pin`; to move the
# pin, run `cargo xtask lexicons pin --commit <sha>` rather than editing this file.
";

/// The parsed `lexicons.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    /// Where the files come from.
    pub source: Source,
    /// The sha256 of every file, by path relative to `source.path`.
    pub files: FileHashes,
}

/// The upstream location of the pinned files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Git URL of the repository.
    pub git: String,
    /// Full (40 hex digit) commit id.
    pub commit: String,
    /// Folder inside the repository (`""` for the whole repository).
    pub path: String,
}

impl Pin {
    /// Reads and checks the pin file at `file`.
    pub fn load(file: &Path) -> Result<Pin> {
        let text = fs::read_to_string(file).context(|| format!("reading {}", file.display()))?;
        Pin::parse(&text, file)
    }

    /// Parses and checks pin text; `origin` names the file in error messages.
    pub fn parse(text: &str, origin: &Path) -> Result<Pin> {
        let pin: Pin = toml::from_str(text).context(|| format!("parsing {}", origin.display()))?;
        pin.check()
            .map_err(|error| Error::new(format!("{}: {error}", origin.display())))?;
        Ok(pin)
    }

    /// Checks every field: a well-formed commit and path, and for every file a safe relative path
    /// and a well-formed sha256.
    pub fn check(&self) -> Result<()> {
        if self.source.git.trim().is_empty() {
            return Err(Error::new("source.git is empty"));
        }
        check_commit(&self.source.commit).context(|| "source.commit".to_owned())?;
        check_subdir(&self.source.path).context(|| "source.path".to_owned())?;
        if self.files.is_empty() {
            return Err(Error::new("[files] is empty"));
        }
        for (path, hash) in &self.files {
            check_relative_path(path).context(|| format!("files.\"{path}\""))?;
            check_sha256(hash).context(|| format!("files.\"{path}\""))?;
        }
        Ok(())
    }

    /// The file's text: a header comment, then `[source]` and `[files]` sorted by path.
    pub fn to_toml(&self) -> Result<String> {
        let body = toml::to_string(self).context(|| "serialising lexicons.toml".to_owned())?;
        Ok(format!("{HEADER}\n{body}"))
    }

    /// Writes the pin to `file` (through a temporary file and a rename, so a failure never leaves
    /// a half-written pin).
    pub fn write(&self, file: &Path) -> Result<()> {
        self.check()?;
        let text = self.to_toml()?;
        let temporary = sibling(file, ".tmp");
        fs::write(&temporary, text).context(|| format!("writing {}", temporary.display()))?;
        if let Err(error) = fs::rename(&temporary, file) {
            let _ = fs::remove_file(&temporary);
            return Err(Error::new(format!("replacing {}: {error}", file.display())));
        }
        Ok(())
    }
}

fn sibling(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    file.with_file_name(name)
}

/// Checks a full git commit id (40 lower-case hex digits; abbreviations are not pins).
pub fn check_commit(commit: &str) -> Result<()> {
    if commit.len() == 40
        && commit
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(Error::new(format!(
            "`{commit}` is not a full commit id (40 lower-case hex digits)"
        )))
    }
}

fn check_sha256(hash: &str) -> Result<()> {
    if hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(Error::new(format!(
            "`{hash}` is not a sha256 (64 lower-case hex digits)"
        )))
    }
}

/// Checks a folder inside the repository: `""` (the root) or a relative path.
pub fn check_subdir(path: &str) -> Result<()> {
    if path.is_empty() {
        Ok(())
    } else {
        check_relative_path(path)
    }
}

/// Checks a relative `/`-separated path that stays inside its root: no leading `/`, no empty,
/// `.` or `..` segment, no `\`.
pub fn check_relative_path(path: &str) -> Result<()> {
    let problem = if path.is_empty() {
        Some("is empty")
    } else if path.starts_with('/') {
        Some("is absolute")
    } else if path.contains('\\') {
        Some("contains `\\` (use `/`)")
    } else if path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        Some("has an empty, `.` or `..` segment")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(Error::new(format!("path `{path}` {problem}"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMIT: &str = "d6296a1cfdb40a773319cb59061300e4e8e52f26";
    const HASH: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn sample() -> Pin {
        Pin {
            source: Source {
                git: DEFAULT_GIT_URL.to_owned(),
                commit: COMMIT.to_owned(),
                path: DEFAULT_PATH.to_owned(),
            },
            files: [
                ("app/bsky/feed/post.json".to_owned(), HASH.to_owned()),
                ("com/atproto/repo/defs.json".to_owned(), HASH.to_owned()),
            ]
            .into_iter()
            .collect(),
        }
    }

    fn parse(text: &str) -> Result<Pin> {
        Pin::parse(text, Path::new("lexicons.toml"))
    }

    #[test]
    fn round_trips_through_toml() {
        let pin = sample();
        let text = pin.to_toml().unwrap();
        assert!(text.starts_with("# The upstream lexicons"), "{text}");
        assert!(text.contains("[source]"), "{text}");
        assert!(
            text.contains(&format!("\"app/bsky/feed/post.json\" = \"{HASH}\"")),
            "{text}"
        );
        assert_eq!(parse(&text).unwrap(), pin);
    }

    #[test]
    fn parses_hand_written_text() {
        let text = format!(
            "[source]\ngit = \"file:///x\"\ncommit = \"{COMMIT}\"\npath = \"\"\n\n\
             [files]\n\"a.json\" = \"{HASH}\"\n"
        );
        let pin = parse(&text).unwrap();
        assert_eq!(pin.source.path, "");
        assert_eq!(pin.files.len(), 1);
    }

    #[test]
    fn write_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lexicons.toml");
        sample().write(&file).unwrap();
        assert_eq!(Pin::load(&file).unwrap(), sample());
        assert!(!dir.path().join("lexicons.toml.tmp").exists());
    }

    fn rejects(text: &str, needle: &str) {
        let error = parse(text).unwrap_err();
        let message = error.message();
        assert!(message.contains("lexicons.toml"), "{message}");
        assert!(
            message.contains(needle),
            "expected `{needle}` in: {message}"
        );
    }

    fn with(source: &str, files: &str) -> String {
        format!("[source]\n{source}\n[files]\n{files}\n")
    }

    #[test]
    fn rejects_bad_files() {
        let source = format!("git = \"g\"\ncommit = \"{COMMIT}\"\npath = \"lexicons\"");
        rejects(&with(&source, "\"a.json\" = \"abc\""), "files.\"a.json\"");
        rejects(
            &with(
                &source,
                &format!("\"a.json\" = \"{}\"", HASH.to_uppercase()),
            ),
            "sha256",
        );
        rejects(
            &with(&source, &format!("\"../a.json\" = \"{HASH}\"")),
            "`..`",
        );
        rejects(
            &with(&source, &format!("\"/a.json\" = \"{HASH}\"")),
            "absolute",
        );
        rejects(
            &with(&source, &format!("\"a//b.json\" = \"{HASH}\"")),
            "empty",
        );
        rejects(
            &with(&source, &format!("\"a\\\\b.json\" = \"{HASH}\"")),
            "`\\`",
        );
        rejects(&with(&source, ""), "[files] is empty");
        rejects(&with(&source, "\"a.json\" = 3"), "parsing lexicons.toml");
    }

    #[test]
    fn rejects_bad_source() {
        let files = format!("\"a.json\" = \"{HASH}\"");
        rejects(
            &with(
                "git = \"g\"\ncommit = \"d6296a1\"\npath = \"lexicons\"",
                &files,
            ),
            "source.commit",
        );
        rejects(
            &with(
                &format!("git = \"\"\ncommit = \"{COMMIT}\"\npath = \"x\""),
                &files,
            ),
            "source.git is empty",
        );
        rejects(
            &with(
                &format!("git = \"g\"\ncommit = \"{COMMIT}\"\npath = \"../x\""),
                &files,
            ),
            "source.path",
        );
        rejects(
            &with(&format!("git = \"g\"\ncommit = \"{COMMIT}\""), &files),
            "path",
        );
        rejects(
            &with(
                &format!("git = \"g\"\ncommit = \"{COMMIT}\"\npath = \"x\"\nbranch = \"main\""),
                &files,
            ),
            "branch",
        );
    }

    #[test]
    fn checks_commits() {
        assert!(check_commit(COMMIT).is_ok());
        assert!(check_commit(&COMMIT.to_uppercase()).is_err());
        assert!(check_commit(&COMMIT[..39]).is_err());
        assert!(check_commit("main").is_err());
    }
}
