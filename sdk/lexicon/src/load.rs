//! Reading lexicon documents from strings, files and directory trees.
//!
//! The directory walk is done with `std::fs` (sorted, recursive; symlinks are followed up to a
//! fixed depth so that a link cycle cannot loop forever), which is all this needs.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::convert::from_json_in;
use crate::model::LexiconDoc;
use crate::problem::Diagnostics;

/// Directory depth after which [`load_dir`] stops descending (guards against symlink cycles).
const MAX_DIR_DEPTH: usize = 64;

/// A document read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedDoc {
    /// The file it was read from.
    pub file: PathBuf,
    /// The document.
    pub doc: LexiconDoc,
}

/// Why a lexicon document could not be read.
#[derive(Debug)]
pub enum LoadError {
    /// The file or directory could not be read.
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The text is not valid JSON.
    Json {
        /// The file, when reading from a file.
        file: Option<PathBuf>,
        /// 1-based line of the error (0 when unknown).
        line: usize,
        /// 1-based column of the error (0 when unknown).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The JSON is not a lexicon document: every problem found, each naming file, NSID, def
    /// and field path.
    Invalid(Diagnostics),
    /// Two files define the same NSID (reported when loading into a catalog).
    Duplicate {
        /// The NSID.
        nsid: String,
        /// The file loaded first.
        first: Option<PathBuf>,
        /// The file that was rejected.
        second: Option<PathBuf>,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            LoadError::Json {
                file,
                line,
                column,
                message,
            } => {
                let name = file
                    .as_ref()
                    .map_or_else(|| "<input>".to_owned(), |p| p.display().to_string());
                write!(f, "{name}:{line}:{column}: invalid JSON: {message}")
            }
            LoadError::Invalid(d) => {
                let mut first = true;
                for p in d {
                    if !first {
                        f.write_str("\n")?;
                    }
                    first = false;
                    write!(f, "{p}")?;
                }
                Ok(())
            }
            LoadError::Duplicate {
                nsid,
                first,
                second,
            } => crate::catalog::CatalogError::Duplicate {
                nsid: nsid.clone(),
                first: first.clone(),
                second: second.clone(),
            }
            .fmt(f),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Io { source, .. } => Some(source),
            LoadError::Json { .. } | LoadError::Duplicate { .. } => None,
            LoadError::Invalid(d) => Some(d),
        }
    }
}

/// Every file that failed in a [`load_dir`] call.
#[derive(Debug)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} lexicon file(s) could not be loaded", self.0.len())?;
        for e in &self.0 {
            for line in e.to_string().lines() {
                write!(f, "\n  {line}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

impl From<LoadError> for LoadErrors {
    fn from(e: LoadError) -> Self {
        LoadErrors(vec![e])
    }
}

/// Parses one document from JSON text (no schema checks).
pub fn parse_str(text: &str) -> Result<LexiconDoc, LoadError> {
    parse_bytes(text.as_bytes(), None)
}

/// Parses one document from JSON bytes; `file` (if given) is named in every error.
pub fn parse_bytes(bytes: &[u8], file: Option<&Path>) -> Result<LexiconDoc, LoadError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| json_error(&e, file))?;
    from_json_in(&value, file).map_err(LoadError::Invalid)
}

/// Reads and parses one document from a file (no schema checks).
pub fn parse_file(path: impl AsRef<Path>) -> Result<LexiconDoc, LoadError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_bytes(&bytes, Some(path))
}

fn json_error(e: &serde_json::Error, file: Option<&Path>) -> LoadError {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
    LoadError::Json {
        file: file.map(Path::to_owned),
        line: e.line(),
        column: e.column(),
        message,
    }
}

/// Lists every `*.json` file under `dir`, recursively, in sorted order.
pub fn json_files(dir: impl AsRef<Path>) -> Result<Vec<PathBuf>, LoadError> {
    let mut out = Vec::new();
    walk(dir.as_ref(), 0, &mut out)?;
    Ok(out)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| LoadError::Io { path, source }
    };
    if depth > MAX_DIR_DEPTH {
        return Err(LoadError::Io {
            path: dir.to_owned(),
            source: io::Error::other(format!(
                "directory nesting deeper than {MAX_DIR_DEPTH} (symlink cycle?)"
            )),
        });
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_err(dir))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io_err(dir))?;
    entries.sort();
    for path in entries {
        let meta = std::fs::metadata(&path).map_err(io_err(&path))?;
        if meta.is_dir() {
            walk(&path, depth + 1, out)?;
        } else if meta.is_file() && path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// Loads every `*.json` file under `dir` (recursively, sorted by path).
///
/// Every file is tried; when any fails, all failures are returned together.
pub fn load_dir(dir: impl AsRef<Path>) -> Result<Vec<LoadedDoc>, LoadErrors> {
    let files = json_files(dir)?;
    let mut docs = Vec::with_capacity(files.len());
    let mut errors = Vec::new();
    for file in files {
        match parse_file(&file) {
            Ok(doc) => docs.push(LoadedDoc { file, doc }),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(docs)
    } else {
        Err(LoadErrors(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_syntax_error_names_file_line_and_column() {
        let err = parse_bytes(
            b"{\n  \"lexicon\": 1,\n  \"id\": }",
            Some(Path::new("a/b.json")),
        )
        .unwrap_err();
        match &err {
            LoadError::Json { line, column, .. } => {
                assert_eq!(*line, 3);
                assert!(*column > 0);
            }
            other => panic!("unexpected {other:?}"),
        }
        let text = err.to_string();
        assert!(text.starts_with("a/b.json:3:"), "{text}");
        assert!(!text.contains(" at line "), "{text}");
    }

    #[test]
    fn conversion_error_names_file_nsid_def_and_path() {
        let text = r#"{"lexicon":1,"id":"app.bsky.feed.post","defs":{"main":{"type":"record",
            "key":"tid","record":{"type":"object","properties":{"text":{"type":"string",
            "maxLength":"x"}}}}}}"#;
        let err =
            parse_bytes(text.as_bytes(), Some(Path::new("app/bsky/feed/post.json"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "app/bsky/feed/post.json: app.bsky.feed.post#main: \
             record.properties.text.maxLength: expected a non-negative integer, found \"x\""
        );
    }

    #[test]
    fn load_dir_is_recursive_and_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let doc =
            |id: &str| format!(r#"{{"lexicon":1,"id":"{id}","defs":{{"t":{{"type":"token"}}}}}}"#);
        std::fs::create_dir_all(dir.path().join("b/c")).unwrap();
        std::fs::write(dir.path().join("b/c/z.json"), doc("b.c.z")).unwrap();
        std::fs::write(dir.path().join("a.json"), doc("x.y.a")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not json").unwrap();
        let docs = load_dir(dir.path()).unwrap();
        let ids: Vec<_> = docs.iter().map(|d| d.doc.id.as_str()).collect();
        assert_eq!(ids, ["x.y.a", "b.c.z"]);

        std::fs::write(dir.path().join("b/bad.json"), "{").unwrap();
        std::fs::write(dir.path().join("b/worse.json"), "[]").unwrap();
        let errs = load_dir(dir.path()).unwrap_err();
        assert_eq!(errs.0.len(), 2);
        assert!(errs.to_string().contains("bad.json"));
        assert!(errs.to_string().contains("worse.json"));
    }

    #[test]
    fn missing_dir_is_an_io_error() {
        let err = load_dir("/definitely/not/here").unwrap_err();
        assert!(matches!(err.0.as_slice(), [LoadError::Io { .. }]));
    }
}
