//! Generating what is valid: the pipeline behind `cargo xtask codegen` in both of its modes.
//!
//! Every problem of every file is collected first — the file cannot be read, is not JSON, is not
//! a lexicon document ([`atlex_lexicon::parse_bytes`]), breaks a schema rule
//! ([`atlex_lexicon::check_document`]), refers to something that is not loaded, or is something
//! the generator cannot turn into Rust ([`crate::lower`]) — each naming file, NSID, def and field
//! like every other error of the generator.
//!
//! Strict mode (the default) then fails with all of them. With `--skip-invalid` the generator
//! instead **prunes per definition**: a def with a problem is left out, and so is every def that
//! refers to a left-out def, transitively (through `ref`s, union members, bodies and subscription
//! messages, in its own document or another). A problem outside any def (the document's `id`,
//! `lexicon` version, JSON syntax) leaves out the whole file. The rest is generated as usual,
//! and [`Pruned`] entries say what was left out and why, in the same `file: nsid#def: field:`
//! form.
//!
//! Pruning is a fixed point: after the reference closure, the remaining documents are lowered;
//! if lowering finds more problems (a body that refers to a token, a union member that is not an
//! object…), those defs are pruned too and the closure runs again. Each round removes at least
//! one def, so it ends.
//!
//! External documents (resolved against, not generated) are never reported as errors, but when
//! an own document shadows an external one and loses a def, external defs that refer to it can
//! no longer be lowered: they are left out of the external sets for this run (listed in the
//! report with their own cause), and own defs that refer to them are left out in turn.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use atlex_lexicon::{LexiconDoc, LoadError, LoadedDoc, Problem, Severity};
use serde_json::Value;

use crate::{Config, DocSet, GenerateError, Generated, Loaded};

/// One definition (or, with `def: None`, one whole file) left out by `--skip-invalid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    /// The file it was read from.
    pub file: Option<PathBuf>,
    /// The document's NSID, when it is known.
    pub nsid: Option<String>,
    /// The def, or `None` when the whole file was left out.
    pub def: Option<String>,
    /// The field path inside the def where the cause is (may be empty).
    pub path: String,
    /// Why: the def's own problem, or the left-out def it refers to.
    pub cause: Cause,
}

/// Why a def was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// It has a problem of its own (the message of its first one).
    Invalid(String),
    /// It refers (at [`Pruned::path`]) to a def that was left out: `nsid#def`.
    RefersTo(String),
}

impl fmt::Display for Pruned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
        match (&self.cause, &self.def) {
            (Cause::Invalid(message), Some(_)) => write!(f, "left out: {message}"),
            (Cause::Invalid(message), None) => write!(f, "file left out: {message}"),
            (Cause::RefersTo(target), _) => {
                write!(f, "left out: refers to {target}, which was left out")
            }
        }
    }
}

/// Lexicons loaded from a folder without failing on the first bad file: what could be read
/// (bad defs already removed), every error found, and what was left out.
#[derive(Debug, Clone)]
pub struct Collected {
    /// The documents that remain, with their warnings.
    pub loaded: Loaded,
    /// Every error, each naming file, NSID, def and field.
    pub errors: Vec<Problem>,
    /// The defs and files left out, with the reason.
    pub pruned: Vec<Pruned>,
    /// How long reading and parsing (`parse`) and the schema checks (`check`) took.
    pub timings: crate::Timings,
}

/// What [`generate_valid`] produced: the code for what remains, and what it left out.
#[derive(Debug, Clone)]
pub struct GeneratedValid {
    /// The generated files and features.
    pub generated: Generated,
    /// The errors found while resolving and lowering (in addition to those of loading).
    pub errors: Vec<Problem>,
    /// The defs left out while resolving and lowering.
    pub pruned: Vec<Pruned>,
}

fn error(file: &Path, nsid: Option<&str>, def: Option<&str>, path: &str, msg: String) -> Problem {
    Problem {
        severity: Severity::Error,
        file: Some(file.to_owned()),
        nsid: nsid.map(str::to_owned),
        def: def.map(str::to_owned),
        path: path.to_owned(),
        message: msg,
    }
}

/// Loads every lexicon under `dir`, collecting every problem instead of stopping: a file that
/// cannot be read or parsed is left out whole; a def with a structural or schema error is left
/// out alone (the other defs of its document stay). Only a folder that cannot be listed fails.
pub fn collect_lexicons(dir: &Path) -> Result<Collected, GenerateError> {
    let files = atlex_lexicon::json_files(dir).map_err(|e| GenerateError::Load(e.into()))?;
    let mut docs: Vec<LoadedDoc> = Vec::with_capacity(files.len());
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut pruned = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    let mut timings = crate::Timings::default();
    for file in files {
        let started = std::time::Instant::now();
        let read = read_partial(&file, &mut errors, &mut pruned);
        timings.parse += started.elapsed();
        let Some(mut doc) = read else {
            continue;
        };
        if let Some(first) = seen.get(&doc.id) {
            let message = format!("NSID defined twice (also in {})", first.display());
            errors.push(error(&file, Some(&doc.id), None, "", message.clone()));
            pruned.push(Pruned {
                file: Some(file),
                nsid: Some(doc.id.clone()),
                def: None,
                path: String::new(),
                cause: Cause::Invalid(message),
            });
            continue;
        }
        let started = std::time::Instant::now();
        let kept = check_partial(&mut doc, &file, &mut errors, &mut warnings, &mut pruned);
        timings.check += started.elapsed();
        if kept {
            seen.insert(doc.id.clone(), file.clone());
            docs.push(LoadedDoc { file, doc });
        }
    }
    Ok(Collected {
        loaded: Loaded { docs, warnings },
        errors,
        pruned,
        timings,
    })
}

/// Reads one file into a document, removing the defs the converter rejects. `None` when the
/// whole file is left out (recorded in `errors` and `pruned`).
fn read_partial(
    file: &Path,
    errors: &mut Vec<Problem>,
    pruned: &mut Vec<Pruned>,
) -> Option<LexiconDoc> {
    let whole = |errors: &mut Vec<Problem>, pruned: &mut Vec<Pruned>, p: Problem| {
        pruned.push(Pruned {
            file: Some(file.to_owned()),
            nsid: p.nsid.clone(),
            def: None,
            path: p.path.clone(),
            cause: Cause::Invalid(p.message.clone()),
        });
        errors.push(p);
    };
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) => {
            whole(errors, pruned, error(file, None, None, "", e.to_string()));
            return None;
        }
    };
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let mut value: Value = match serde_json::from_slice(text) {
        Ok(value) => value,
        Err(_) => {
            // The loader's own message (line, column, what is wrong).
            let message = match atlex_lexicon::parse_bytes(text, None) {
                Err(LoadError::Json {
                    line,
                    column,
                    message,
                    ..
                }) => format!("line {line} column {column}: invalid JSON: {message}"),
                Err(other) => other.to_string(),
                Ok(_) => "invalid JSON".to_owned(),
            };
            whole(errors, pruned, error(file, None, None, "", message));
            return None;
        }
    };
    let nsid = value.get("id").and_then(Value::as_str).map(str::to_owned);
    // Each round removes at least one def, or gives up on the file.
    loop {
        let diagnostics = match LexiconDoc::from_json(&value) {
            Ok(doc) => return Some(doc),
            Err(mut diagnostics) => {
                diagnostics.set_file(file);
                diagnostics.into_vec()
            }
        };
        let mut bad: BTreeMap<String, Problem> = BTreeMap::new();
        let mut doc_level = None;
        for problem in diagnostics.into_iter().filter(Problem::is_error) {
            match &problem.def {
                Some(def) => {
                    bad.entry(def.clone()).or_insert_with(|| problem.clone());
                }
                None => {
                    doc_level.get_or_insert_with(|| problem.clone());
                }
            }
            errors.push(problem);
        }
        let defs = value.get_mut("defs").and_then(Value::as_object_mut);
        match (doc_level, defs) {
            (None, Some(defs)) if !bad.is_empty() => {
                for (def, problem) in bad {
                    defs.remove(&def);
                    pruned.push(Pruned {
                        file: Some(file.to_owned()),
                        nsid: nsid.clone(),
                        def: Some(def),
                        path: problem.path,
                        cause: Cause::Invalid(problem.message),
                    });
                }
            }
            (Some(problem), _) => {
                pruned.push(Pruned {
                    file: Some(file.to_owned()),
                    nsid: problem.nsid.or_else(|| nsid.clone()),
                    def: None,
                    path: problem.path,
                    cause: Cause::Invalid(problem.message),
                });
                return None;
            }
            _ => {
                pruned.push(Pruned {
                    file: Some(file.to_owned()),
                    nsid: nsid.clone(),
                    def: None,
                    path: String::new(),
                    cause: Cause::Invalid("not a lexicon document".to_owned()),
                });
                return None;
            }
        }
    }
}

/// Applies the schema checks to one document; defs with errors are removed. Errors that only
/// say a local ref points at a def removed by the converter are not repeated (the reference
/// closure reports those defs as referring to a left-out def). Returns whether the document
/// stays.
fn check_partial(
    doc: &mut LexiconDoc,
    file: &Path,
    errors: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
    pruned: &mut Vec<Pruned>,
) -> bool {
    if doc.defs.is_empty() {
        // Every def was left out by the converter (each already reported).
        return false;
    }
    let problems = atlex_lexicon::check_document(doc, Some(file)).into_vec();
    let mut bad: BTreeMap<String, Problem> = BTreeMap::new();
    let mut doc_level: Option<Problem> = None;
    // Local refs whose target is gone: the consequence of an earlier removal, not a new error.
    let dangling: BTreeSet<(String, String)> = doc
        .refs()
        .into_iter()
        .filter_map(|r| {
            let (nsid, def) = r.reference.resolve(&doc.id);
            (nsid == doc.id && !doc.defs.contains_key(def))
                .then(|| (r.def.to_owned(), r.path.clone()))
        })
        .collect();
    for problem in problems {
        if !problem.is_error() {
            warnings.push(problem);
            continue;
        }
        if let Some(def) = &problem.def
            && dangling.contains(&(def.clone(), problem.path.clone()))
        {
            continue;
        }
        match &problem.def {
            Some(def) => {
                bad.entry(def.clone()).or_insert_with(|| problem.clone());
            }
            None => {
                doc_level.get_or_insert_with(|| problem.clone());
            }
        }
        errors.push(problem);
    }
    if let Some(problem) = doc_level {
        pruned.push(Pruned {
            file: Some(file.to_owned()),
            nsid: Some(doc.id.clone()),
            def: None,
            path: problem.path,
            cause: Cause::Invalid(problem.message),
        });
        return false;
    }
    for (def, problem) in bad {
        doc.defs.remove(&def);
        pruned.push(Pruned {
            file: Some(file.to_owned()),
            nsid: Some(doc.id.clone()),
            def: Some(def),
            path: problem.path,
            cause: Cause::Invalid(problem.message),
        });
    }
    true
}

/// Generates every def of `own` that can be generated: defs whose references do not resolve
/// (to `own` or `external`), or that refer to a left-out def, are left out, and so are the defs
/// lowering rejects, until what remains generates. `pruned` are the defs already left out while
/// loading (so that refs to them are reported as such).
pub fn generate_valid(
    own: &DocSet<'_>,
    external: &[DocSet<'_>],
    config: &Config,
    already_pruned: &[Pruned],
) -> Result<GeneratedValid, GenerateError> {
    generate_valid_streaming(own, external, config, already_pruned, None, false)
}

/// [`generate_valid`], handing each file to `sink` as soon as it is rendered (see
/// [`crate::generate_streaming`]). With `clean_only`, files reach the sink only when no problem
/// was found (neither in `already_pruned` nor while pruning): a strict caller fails on any
/// problem and must not have written part of a tree.
pub fn generate_valid_streaming(
    own: &DocSet<'_>,
    external: &[DocSet<'_>],
    config: &Config,
    already_pruned: &[Pruned],
    sink: Option<&crate::FileSink<'_>>,
    clean_only: bool,
) -> Result<GeneratedValid, GenerateError> {
    let started = std::time::Instant::now();
    let mut docs: Vec<(LexiconDoc, Option<PathBuf>)> = own
        .docs
        .iter()
        .map(|(doc, file)| ((*doc).clone(), file.clone()))
        .collect();
    let mut errors = Vec::new();
    let mut pruned = Vec::new();
    let mut gone: BTreeSet<(String, Option<String>)> = already_pruned
        .iter()
        .filter_map(|p| Some((p.nsid.clone()?, p.def.clone())))
        .collect();
    // External defs that cannot be lowered here because they refer to one of `own`'s left-out
    // defs (an `own` document that shadows an external one, with defs pruned): they are left out
    // of the external sets handed to the lowering, and `own` defs that refer to them go too.
    let mut external_removed: BTreeSet<(String, String)> = BTreeSet::new();
    let own_ids: BTreeSet<String> = docs.iter().map(|(doc, _)| doc.id.clone()).collect();
    loop {
        let copies: Vec<Vec<(LexiconDoc, Option<PathBuf>)>> = external
            .iter()
            .map(|set| {
                set.docs
                    .iter()
                    .filter(|(doc, _)| external_removed.iter().any(|(nsid, _)| *nsid == doc.id))
                    .map(|(doc, file)| {
                        let mut doc = (*doc).clone();
                        let id = doc.id.clone();
                        doc.defs.retain(|name, _| {
                            !external_removed.contains(&(id.clone(), name.clone()))
                        });
                        (doc, file.clone())
                    })
                    .collect()
            })
            .collect();
        let external_now: Vec<DocSet<'_>> = external
            .iter()
            .zip(&copies)
            .map(|(set, copied)| DocSet {
                docs: set
                    .docs
                    .iter()
                    .map(|(doc, file)| {
                        let replaced = copied.iter().find(|(c, _)| c.id == doc.id);
                        (replaced.map_or(*doc, |(c, _)| c), file.clone())
                    })
                    .collect(),
                root: set.root.clone(),
            })
            .collect();
        let external_defs: BTreeSet<(String, String)> = external_now
            .iter()
            .flat_map(|set| set.docs.iter())
            .flat_map(|(doc, _)| doc.defs.keys().map(|d| (doc.id.clone(), d.clone())))
            .collect();
        prune_closure(
            &mut docs,
            &external_defs,
            &mut gone,
            &mut errors,
            &mut pruned,
        );
        docs.retain(|(doc, _)| !doc.defs.is_empty());
        let set = DocSet {
            docs: docs.iter().map(|(d, f)| (d, f.clone())).collect(),
            root: own.root.clone(),
        };
        let streaming = if clean_only
            && (!errors.is_empty() || !pruned.is_empty() || !already_pruned.is_empty())
        {
            None
        } else {
            sink
        };
        match crate::generate_streaming(&set, &external_now, config, streaming) {
            Ok(mut generated) => {
                // Everything but the final lowering and rendering (a lowering retried after
                // pruning counts here).
                generated.timings.prune = started
                    .elapsed()
                    .saturating_sub(generated.timings.lower + generated.timings.render);
                return Ok(GeneratedValid {
                    generated,
                    errors,
                    pruned,
                });
            }
            Err(GenerateError::Lexicon(problems)) => {
                let before = pruned.len();
                for problem in problems {
                    match (&problem.nsid, &problem.def) {
                        (Some(nsid), Some(def)) if !own_ids.contains(nsid) => {
                            if external_removed.insert((nsid.clone(), def.clone())) {
                                gone.insert((nsid.clone(), Some(def.clone())));
                                pruned.push(Pruned {
                                    file: problem.file.clone(),
                                    nsid: Some(nsid.clone()),
                                    def: Some(def.clone()),
                                    path: problem.path.clone(),
                                    cause: Cause::Invalid(problem.message.clone()),
                                });
                            }
                        }
                        _ => {
                            prune_for(&mut docs, &problem, &mut gone, &mut pruned);
                            errors.push(problem);
                        }
                    }
                }
                if pruned.len() == before {
                    // Nothing could be removed: the problems are not tied to a def.
                    return Err(GenerateError::Lexicon(errors));
                }
            }
            Err(other) => return Err(other),
        }
    }
}

/// Removes the def (or document) a lowering problem names.
fn prune_for(
    docs: &mut [(LexiconDoc, Option<PathBuf>)],
    problem: &Problem,
    gone: &mut BTreeSet<(String, Option<String>)>,
    pruned: &mut Vec<Pruned>,
) {
    let Some(nsid) = &problem.nsid else { return };
    for (doc, file) in docs.iter_mut().filter(|(d, _)| &d.id == nsid) {
        let removed = match &problem.def {
            Some(def) => doc.defs.remove(def).is_some(),
            None => {
                let any = !doc.defs.is_empty();
                doc.defs.clear();
                any
            }
        };
        if removed {
            gone.insert((nsid.clone(), problem.def.clone()));
            pruned.push(Pruned {
                file: file.clone(),
                nsid: Some(nsid.clone()),
                def: problem.def.clone(),
                path: problem.path.clone(),
                cause: Cause::Invalid(problem.message.clone()),
            });
        }
    }
}

/// Leaves out every def whose references do not resolve, transitively.
fn prune_closure(
    docs: &mut [(LexiconDoc, Option<PathBuf>)],
    external: &BTreeSet<(String, String)>,
    gone: &mut BTreeSet<(String, Option<String>)>,
    errors: &mut Vec<Problem>,
    pruned: &mut Vec<Pruned>,
) {
    struct Edge {
        doc: usize,
        def: String,
        path: String,
    }
    // Which defs exist now, and who refers to what.
    let mut present: BTreeSet<(String, String)> = BTreeSet::new();
    for (doc, _) in docs.iter() {
        for def in doc.defs.keys() {
            present.insert((doc.id.clone(), def.clone()));
        }
    }
    let mut referrers: HashMap<(String, String), Vec<Edge>> = HashMap::new();
    let mut queue: Vec<(String, String)> = Vec::new();
    let mut removed: BTreeSet<(String, String)> = BTreeSet::new();
    for (i, (doc, file)) in docs.iter().enumerate() {
        for r in doc.refs() {
            let (nsid, def) = r.reference.resolve(&doc.id);
            let target = (nsid.to_owned(), def.to_owned());
            if present.contains(&target) || external.contains(&target) {
                referrers.entry(target).or_default().push(Edge {
                    doc: i,
                    def: r.def.to_owned(),
                    path: r.path.clone(),
                });
                continue;
            }
            let source = (doc.id.clone(), r.def.to_owned());
            if removed.contains(&source) {
                continue;
            }
            let was_pruned = gone.contains(&(target.0.clone(), Some(target.1.clone())))
                || gone.contains(&(target.0.clone(), None));
            let cause = if was_pruned {
                Cause::RefersTo(atlex_lexicon::model::type_name_for(nsid, def))
            } else {
                let docs_has = docs.iter().any(|(d, _)| d.id == nsid);
                let message = if docs_has || external.iter().any(|(n, _)| *n == nsid) {
                    format!(
                        "unresolved reference {}: {nsid} has no def {def}",
                        r.reference.as_str()
                    )
                } else {
                    format!(
                        "unresolved reference {}: no lexicon {nsid} is loaded",
                        r.reference.as_str()
                    )
                };
                if let Some(file) = file {
                    errors.push(error(
                        file,
                        Some(&doc.id),
                        Some(r.def),
                        &r.path,
                        message.clone(),
                    ));
                }
                Cause::Invalid(message)
            };
            removed.insert(source.clone());
            pruned.push(Pruned {
                file: file.clone(),
                nsid: Some(doc.id.clone()),
                def: Some(r.def.to_owned()),
                path: r.path.clone(),
                cause,
            });
            queue.push(source);
        }
    }
    // Everything that refers to a removed def goes too.
    while let Some(target) = queue.pop() {
        let Some(edges) = referrers.remove(&target) else {
            continue;
        };
        for edge in edges {
            let source = (docs[edge.doc].0.id.clone(), edge.def.clone());
            if !removed.insert(source.clone()) {
                continue;
            }
            pruned.push(Pruned {
                file: docs[edge.doc].1.clone(),
                nsid: Some(source.0.clone()),
                def: Some(edge.def.clone()),
                path: edge.path,
                cause: Cause::RefersTo(atlex_lexicon::model::type_name_for(&target.0, &target.1)),
            });
            queue.push(source);
        }
    }
    for (nsid, def) in removed {
        for (doc, _) in docs.iter_mut().filter(|(d, _)| d.id == nsid) {
            doc.defs.remove(&def);
        }
        gone.insert((nsid, Some(def)));
    }
}
