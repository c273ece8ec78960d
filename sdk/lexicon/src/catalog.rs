//! A set of lexicon documents by NSID, with lazy reference resolution.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::check::{check_document, target_problem};
use crate::load::{self, LoadError, LoadErrors, LoadedDoc};
use crate::model::{Def, LexiconDoc, Ref, RefError, type_name_for};
use crate::problem::{Diagnostics, Sink};

/// Lexicon documents by NSID.
///
/// References are resolved lazily, when they are followed: a catalog may hold documents that
/// reference documents it does not have (the interop catalog references an absent
/// `app.bsky.actor.defs#preferences`), and that is an error only for the validation or lookup
/// that actually needs the target. [`Catalog::check`] reports such references as warnings.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    entries: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    doc: LexiconDoc,
    file: Option<PathBuf>,
}

/// A document could not be added to a catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogError {
    /// A document with the same NSID is already in the catalog.
    Duplicate {
        /// The NSID.
        nsid: String,
        /// The file of the document already in the catalog, if known.
        first: Option<PathBuf>,
        /// The file of the rejected document, if known.
        second: Option<PathBuf>,
    },
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogError::Duplicate {
                nsid,
                first,
                second,
            } => {
                let show = |p: &Option<PathBuf>| {
                    p.as_ref()
                        .map_or_else(|| "<unnamed>".to_owned(), |p| p.display().to_string())
                };
                write!(
                    f,
                    "duplicate lexicon {nsid}: defined in {} and in {}",
                    show(first),
                    show(second)
                )
            }
        }
    }
}

impl std::error::Error for CatalogError {}

/// A reference that could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// The reference string is malformed.
    InvalidRef(RefError),
    /// A local reference (`#name`) was given without the document that contains it.
    LocalWithoutBase(String),
    /// No document with this NSID is in the catalog.
    MissingDocument(String),
    /// The document exists but has no such definition.
    MissingDef {
        /// The document.
        nsid: String,
        /// The missing def name.
        name: String,
    },
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::InvalidRef(e) => e.fmt(f),
            ResolveError::LocalWithoutBase(r) => {
                write!(f, "local reference {r:?} needs the NSID of its document")
            }
            ResolveError::MissingDocument(nsid) => {
                write!(f, "lexicon {nsid} is not in the catalog")
            }
            ResolveError::MissingDef { nsid, name } => {
                write!(f, "lexicon {nsid} has no definition {name:?}")
            }
        }
    }
}

impl std::error::Error for ResolveError {}

/// A resolved reference: the def and the document that contains it (local references inside
/// the def resolve against that document).
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    /// The NSID of the containing document.
    pub nsid: &'a str,
    /// The def name.
    pub name: &'a str,
    /// The definition.
    pub def: &'a Def,
    /// The containing document.
    pub doc: &'a LexiconDoc,
}

impl Resolved<'_> {
    /// The `$type` string for data of this def: the NSID for `main`, else `nsid#name`.
    pub fn type_name(&self) -> String {
        type_name_for(self.nsid, self.name)
    }
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a document (read from `file`, if known); fails when its NSID is already present.
    pub fn insert(&mut self, doc: LexiconDoc, file: Option<PathBuf>) -> Result<(), CatalogError> {
        if let Some(existing) = self.entries.get(&doc.id) {
            return Err(CatalogError::Duplicate {
                nsid: doc.id.clone(),
                first: existing.file.clone(),
                second: file,
            });
        }
        self.entries.insert(doc.id.clone(), Entry { doc, file });
        Ok(())
    }

    /// Builds a catalog from loaded documents.
    pub fn from_loaded(docs: impl IntoIterator<Item = LoadedDoc>) -> Result<Self, CatalogError> {
        let mut c = Catalog::new();
        for d in docs {
            c.insert(d.doc, Some(d.file))?;
        }
        Ok(c)
    }

    /// Loads every `*.json` file under `dir` (see [`load::load_dir`]) into a new catalog.
    /// Duplicate NSIDs are reported as [`LoadError::Duplicate`].
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Self, LoadErrors> {
        let mut c = Catalog::new();
        c.add_dir(dir)?;
        Ok(c)
    }

    /// Loads every `*.json` file under `dir` into this catalog; returns how many were added.
    pub fn add_dir(&mut self, dir: impl AsRef<Path>) -> Result<usize, LoadErrors> {
        let docs = load::load_dir(dir)?;
        let n = docs.len();
        let mut errors = Vec::new();
        for d in docs {
            if let Err(CatalogError::Duplicate {
                nsid,
                first,
                second,
            }) = self.insert(d.doc, Some(d.file))
            {
                errors.push(LoadError::Duplicate {
                    nsid,
                    first,
                    second,
                });
            }
        }
        if errors.is_empty() {
            Ok(n)
        } else {
            Err(LoadErrors(errors))
        }
    }

    /// The document with this NSID.
    pub fn get(&self, nsid: &str) -> Option<&LexiconDoc> {
        self.entries.get(nsid).map(|e| &e.doc)
    }

    /// The file the document with this NSID was read from.
    pub fn file(&self, nsid: &str) -> Option<&Path> {
        self.entries.get(nsid).and_then(|e| e.file.as_deref())
    }

    /// Whether a document with this NSID is present.
    pub fn contains(&self, nsid: &str) -> bool {
        self.entries.contains_key(nsid)
    }

    /// All documents, sorted by NSID.
    pub fn docs(&self) -> impl Iterator<Item = &LexiconDoc> {
        self.entries.values().map(|e| &e.doc)
    }

    /// All documents with their files, sorted by NSID.
    pub fn entries(&self) -> impl Iterator<Item = (&LexiconDoc, Option<&Path>)> {
        self.entries.values().map(|e| (&e.doc, e.file.as_deref()))
    }

    /// The number of documents.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the catalog is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Looks up def `name` of document `nsid`.
    pub fn lookup(&self, nsid: &str, name: &str) -> Result<Resolved<'_>, ResolveError> {
        let (nsid, entry) = self
            .entries
            .get_key_value(nsid)
            .ok_or_else(|| ResolveError::MissingDocument(nsid.to_owned()))?;
        let (name, def) =
            entry
                .doc
                .defs
                .get_key_value(name)
                .ok_or_else(|| ResolveError::MissingDef {
                    nsid: nsid.clone(),
                    name: name.to_owned(),
                })?;
        Ok(Resolved {
            nsid,
            name,
            def,
            doc: &entry.doc,
        })
    }

    /// Resolves a reference found in document `base` (a local `#name` resolves against it).
    pub fn resolve(&self, reference: &Ref, base: &str) -> Result<Resolved<'_>, ResolveError> {
        let (nsid, name) = reference.resolve(base);
        self.lookup(nsid, name)
    }

    /// Resolves a full reference string: `nsid` (meaning `nsid#main`) or `nsid#name`.
    pub fn resolve_str(&self, reference: &str) -> Result<Resolved<'_>, ResolveError> {
        let r = Ref::parse(reference).map_err(ResolveError::InvalidRef)?;
        match r.parts() {
            (None, _) => Err(ResolveError::LocalWithoutBase(reference.to_owned())),
            (Some(nsid), name) => self.lookup(nsid, name),
        }
    }

    /// Runs the schema checks of every document ([`check_document`]) and the checks that need
    /// other documents: every reference into another document must point at an existing def
    /// of an allowed type.
    ///
    /// A reference to a document that is not in the catalog is a warning (it may simply not
    /// have been loaded); a reference to a missing def of a present document, or to a def of
    /// the wrong type, is an error.
    pub fn check(&self) -> Diagnostics {
        let mut out = Diagnostics::new();
        for entry in self.entries.values() {
            out.extend(check_document(&entry.doc, entry.file.as_deref()));
        }
        for entry in self.entries.values() {
            let doc = &entry.doc;
            let mut s = Sink::new(entry.file.as_deref(), Some(doc.id.clone()));
            for u in doc.refs() {
                let Some(nsid) = u.reference.nsid() else {
                    continue;
                };
                if nsid == doc.id {
                    continue; // local: covered by check_document
                }
                s.def = Some(u.def.to_owned());
                match self.resolve(u.reference, &doc.id) {
                    Ok(target) => {
                        if let Some(msg) = target_problem(u.kind, u.reference, target.def) {
                            s.error(&u.path, msg);
                        }
                    }
                    Err(e @ ResolveError::MissingDocument(_)) => {
                        s.warn(
                            &u.path,
                            format!("cannot resolve {:?}: {e}", u.reference.as_str()),
                        );
                    }
                    Err(e) => {
                        s.error(
                            &u.path,
                            format!("cannot resolve {:?}: {e}", u.reference.as_str()),
                        );
                    }
                }
            }
            out.extend(s.out);
        }
        out
    }
}
