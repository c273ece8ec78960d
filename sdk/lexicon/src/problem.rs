//! Problems found in lexicon documents: what is wrong and exactly where.

use std::fmt;
use std::path::{Path, PathBuf};

/// How serious a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// The document is usable, but something is suspicious (e.g. a `.` in a def name).
    Warning,
    /// The document is invalid.
    Error,
}

/// One problem in a lexicon document, naming the file, the NSID, the def and the field path.
///
/// Displays as `file: nsid#def: field.path: message`, leaving out the parts that are unknown,
/// e.g. `app/bsky/feed/post.json: app.bsky.feed.post#main: record.properties.text.maxLength:
/// expected an integer, found "x"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// The file the document was read from, when known.
    pub file: Option<PathBuf>,
    /// The document's `id`, when it is a string.
    pub nsid: Option<String>,
    /// The def name, when the problem is inside a def.
    pub def: Option<String>,
    /// The field path inside the def (or inside the document for top-level keys); may be empty.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// Whether this is an error (not a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        match (&self.nsid, &self.def) {
            (Some(nsid), Some(def)) => write!(f, "{nsid}#{def}: ")?,
            (Some(nsid), None) => write!(f, "{nsid}: ")?,
            (None, Some(def)) => write!(f, "#{def}: ")?,
            (None, None) => {}
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

/// A list of problems (errors and warnings), as returned by the schema checks.
///
/// It is itself an error type, so `diagnostics.into_result()?` can be used to fail on errors.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostics {
    problems: Vec<Problem>,
}

impl Diagnostics {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a problem.
    pub fn push(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    /// Appends every problem of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.problems.extend(other.problems);
    }

    /// All problems, in the order they were found.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.is_error())
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| !p.is_error())
    }

    /// Whether there is at least one error.
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(Problem::is_error)
    }

    /// Whether there are no problems at all.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// The number of problems.
    pub fn len(&self) -> usize {
        self.problems.len()
    }

    /// `Ok(self)` (warnings only) when there is no error, else `Err(self)`.
    pub fn into_result(self) -> Result<Diagnostics, Diagnostics> {
        if self.has_errors() {
            Err(self)
        } else {
            Ok(self)
        }
    }

    /// Sets the file of every problem that has none.
    pub fn set_file(&mut self, file: &Path) {
        for p in &mut self.problems {
            if p.file.is_none() {
                p.file = Some(file.to_owned());
            }
        }
    }

    /// The problems as a vector.
    pub fn into_vec(self) -> Vec<Problem> {
        self.problems
    }
}

impl From<Vec<Problem>> for Diagnostics {
    fn from(problems: Vec<Problem>) -> Self {
        Diagnostics { problems }
    }
}

impl IntoIterator for Diagnostics {
    type Item = Problem;
    type IntoIter = std::vec::IntoIter<Problem>;
    fn into_iter(self) -> Self::IntoIter {
        self.problems.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Problem;
    type IntoIter = std::slice::Iter<'a, Problem>;
    fn into_iter(self) -> Self::IntoIter {
        self.problems.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.errors().count();
        let warnings = self.problems.len() - errors;
        write!(f, "{errors} error(s), {warnings} warning(s)")?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Collects problems for one document while walking it (shared by conversion and checks).
pub(crate) struct Sink<'a> {
    pub(crate) file: Option<&'a Path>,
    pub(crate) nsid: Option<String>,
    pub(crate) def: Option<String>,
    pub(crate) out: Diagnostics,
}

impl<'a> Sink<'a> {
    pub(crate) fn new(file: Option<&'a Path>, nsid: Option<String>) -> Self {
        Sink {
            file,
            nsid,
            def: None,
            out: Diagnostics::new(),
        }
    }

    fn push(&mut self, severity: Severity, path: &str, message: String) {
        self.out.push(Problem {
            severity,
            file: self.file.map(Path::to_owned),
            nsid: self.nsid.clone(),
            def: self.def.clone(),
            path: path.to_owned(),
            message,
        });
    }

    pub(crate) fn error(&mut self, path: &str, message: impl Into<String>) {
        self.push(Severity::Error, path, message.into());
    }

    pub(crate) fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.push(Severity::Warning, path, message.into());
    }
}

/// Appends a key to a field path (`a.b` + `c` → `a.b.c`).
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Appends an index to a field path (`a.b` + 2 → `a.b[2]`).
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_everything() {
        let p = Problem {
            severity: Severity::Error,
            file: Some(PathBuf::from("app/bsky/feed/post.json")),
            nsid: Some("app.bsky.feed.post".into()),
            def: Some("main".into()),
            path: "record.properties.text.maxLength".into(),
            message: "expected an integer, found \"x\"".into(),
        };
        assert_eq!(
            p.to_string(),
            "app/bsky/feed/post.json: app.bsky.feed.post#main: \
             record.properties.text.maxLength: expected an integer, found \"x\""
        );
        let w = Problem {
            severity: Severity::Warning,
            file: None,
            nsid: None,
            def: None,
            path: String::new(),
            message: "m".into(),
        };
        assert_eq!(w.to_string(), "warning: m");
        let d = Diagnostics::from(vec![p, w]);
        assert!(d.has_errors());
        assert_eq!(d.errors().count(), 1);
        assert_eq!(d.warnings().count(), 1);
        assert!(d.to_string().starts_with("1 error(s), 1 warning(s)"));
        assert!(d.into_result().is_err());
    }
}
