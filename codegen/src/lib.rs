//! The lexicon-to-Rust generator behind `cargo xtask codegen`.
//!
//! Pipeline (design.md §2): documents loaded and checked by [`atlex_lexicon`] →
//! [`lower`] (names, refs, inline types, boxing) → [`ir`] → [`emit`] (tokens with `quote!`) →
//! [`output`] (prettyplease, one file per module). The generator does no I/O of its own: the
//! caller hands it documents and writes the files it returns (`cargo xtask codegen` does both).
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod docs;
pub mod emit;
pub mod ir;
pub mod lower;
pub mod naming;
pub mod output;
pub mod prune;
pub mod secrets;

use std::collections::{BTreeMap, BTreeSet};

use atlex_lexicon::Problem;

pub use lower::DocSet;
pub use output::{FileSink, GeneratedFile, Layout, RenderError};
pub use prune::{
    Cause, Collected, GeneratedValid, Pruned, collect_lexicons, generate_valid,
    generate_valid_streaming,
};

/// What to generate and where the generated code will live.
#[derive(Debug, Clone)]
pub struct Config {
    /// The Rust path of the generated modules' root as seen from the generated code:
    /// `::atlex` for the SDK itself, `crate` (or `crate::generated`) for a user's crate.
    pub root: String,
    /// The path of the runtime crate (`::atlex`).
    pub runtime: String,
    /// Gate each namespace behind a cargo feature (`app-bsky`, …; `com.atproto` always on).
    pub features: bool,
    /// File layout.
    pub layout: Layout,
}

impl Config {
    /// The configuration used for the SDK's own bindings (`sdk/src/generated/`).
    pub fn sdk() -> Config {
        Config {
            root: "::atlex".to_owned(),
            runtime: "::atlex".to_owned(),
            features: true,
            layout: Layout::Tree,
        }
    }

    /// A configuration for a user's crate whose generated modules sit at `root`
    /// (e.g. `crate`), with refs into the official lexicons pointing at `atlex`.
    pub fn user_crate(root: impl Into<String>) -> Config {
        Config {
            root: root.into(),
            runtime: "::atlex".to_owned(),
            features: false,
            layout: Layout::Tree,
        }
    }
}

/// The generator's result.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The files, relative to the output directory.
    pub files: Vec<GeneratedFile>,
    /// Cargo features per namespace and the features each needs (empty without `features`).
    pub features: BTreeMap<String, BTreeSet<String>>,
    /// How long the phases took (`lower` and `render` here; [`generate_valid`] adds `prune`).
    pub timings: Timings,
}

/// Wall time of the generator's phases, for `cargo xtask codegen --timings` and the
/// `codegen-scale` benchmark. A phase that did not run is zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// Reading and parsing the files into documents ([`collect_lexicons`]).
    pub parse: std::time::Duration,
    /// The schema checks of each document ([`collect_lexicons`]).
    pub check: std::time::Duration,
    /// Resolving refs across documents and pruning what is invalid or refers to what was
    /// left out ([`generate_valid`], without the generation it calls).
    pub prune: std::time::Duration,
    /// Lowering documents to the IR (names, refs, inline types).
    pub lower: std::time::Duration,
    /// Emitting tokens, parsing them with `syn` and pretty-printing (one thread per core).
    pub render: std::time::Duration,
}

/// Why generation failed.
#[derive(Debug)]
pub enum GenerateError {
    /// A lexicon folder could not be read or parsed (each error names the file).
    Load(atlex_lexicon::LoadErrors),
    /// Problems in the lexicons (each names file, NSID, def and field).
    Lexicon(Vec<Problem>),
    /// A generator bug: emitted tokens did not parse.
    Render(RenderError),
}

impl std::fmt::Display for GenerateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GenerateError::Load(errors) => errors.fmt(f),
            GenerateError::Lexicon(problems) => {
                write!(f, "{} problem(s) in the lexicons", problems.len())?;
                for problem in problems {
                    write!(f, "\n  {problem}")?;
                }
                Ok(())
            }
            GenerateError::Render(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for GenerateError {}

/// Lexicons loaded from a folder and checked: the documents, and the warnings the checks gave.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The documents, sorted by file.
    pub docs: Vec<atlex_lexicon::LoadedDoc>,
    /// Warnings (suspicious but usable); errors make [`load_lexicons`] fail.
    pub warnings: Vec<Problem>,
}

impl Loaded {
    /// The documents as a [`DocSet`] rooted at `root`.
    pub fn doc_set(&self, root: &str) -> DocSet<'_> {
        DocSet {
            docs: self
                .docs
                .iter()
                .map(|d| (&d.doc, Some(d.file.clone())))
                .collect(),
            root: root.to_owned(),
        }
    }
}

/// Loads every lexicon under `dir` and applies the schema checks; any error fails, naming the
/// file, NSID, def and field.
pub fn load_lexicons(dir: &std::path::Path) -> Result<Loaded, GenerateError> {
    let docs = atlex_lexicon::load_dir(dir).map_err(GenerateError::Load)?;
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for loaded in &docs {
        for problem in atlex_lexicon::check_document(&loaded.doc, Some(&loaded.file)) {
            if problem.is_error() {
                errors.push(problem);
            } else {
                warnings.push(problem);
            }
        }
    }
    if errors.is_empty() {
        Ok(Loaded { docs, warnings })
    } else {
        Err(GenerateError::Lexicon(errors))
    }
}

/// Generates Rust for `own`; refs into `external` (e.g. the official lexicons, rooted at
/// `::atlex`) resolve to paths in that crate.
pub fn generate(
    own: &DocSet<'_>,
    external: &[DocSet<'_>],
    config: &Config,
) -> Result<Generated, GenerateError> {
    generate_streaming(own, external, config, None)
}

/// [`generate`], handing each file to `sink` (when there is one) as soon as it is rendered, so
/// that the caller can write files while the others are still being rendered. A file reaches
/// the sink only once lowering has succeeded; the returned [`Generated`] still has them all.
pub fn generate_streaming(
    own: &DocSet<'_>,
    external: &[DocSet<'_>],
    config: &Config,
    sink: Option<&FileSink<'_>>,
) -> Result<Generated, GenerateError> {
    let own = DocSet {
        docs: own.docs.clone(),
        root: config.root.clone(),
    };
    let started = std::time::Instant::now();
    let krate = lower::lower(
        &own,
        external,
        &lower::LowerOptions {
            features: config.features,
        },
    )
    .map_err(GenerateError::Lexicon)?;
    let lowered = std::time::Instant::now();
    let files = output::render(
        &krate,
        &emit::EmitOptions {
            runtime: config.runtime.clone(),
            root: config.root.clone(),
        },
        config.layout,
        sink,
    )
    .map_err(GenerateError::Render)?;
    Ok(Generated {
        files,
        features: krate.features,
        timings: Timings {
            lower: lowered.duration_since(started),
            render: lowered.elapsed(),
            ..Timings::default()
        },
    })
}
