//! Generating the valid rest (`--skip-invalid`, [`atlex_codegen::prune`]) over
//! `tests/lexicons/broken/`: deliberately broken lexicons (a file that is not JSON, a bad NSID,
//! a def that breaks a schema rule, one the converter rejects, refs that resolve nowhere, a body
//! the generator cannot type) next to valid ones that refer to them, directly and transitively,
//! plus documents the reference implementation accepts and we accept with a warning.
//!
//! * every problem is named (what strict mode fails with), each with file, NSID, def and field;
//! * every pruned def is listed with its cause; the defs that are valid and refer only to valid
//!   defs are generated;
//! * the generated rest is the snapshot `tests/lexicons/broken.rs`, which `tests/snapshots.rs`
//!   compiles with `#![deny(warnings)]` (with the other snapshots); the report is
//!   `tests/lexicons/broken.report.txt` (bless both with `EXPECTORATE=overwrite`).

use std::path::PathBuf;

use atlex_codegen::{Config, Layout};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Outcome {
    errors: Vec<String>,
    warnings: Vec<String>,
    pruned: Vec<String>,
    code: String,
}

fn run() -> Option<Outcome> {
    let official = atlex_tests::data::official_lexicons_dir()?;
    let dir = manifest_dir().join("tests/lexicons/broken");
    let shown = |text: String| text.replace(&format!("{}/", dir.display()), "");
    let collected = atlex_codegen::collect_lexicons(&dir).unwrap();
    let external = atlex_codegen::load_lexicons(&official).unwrap();
    let mut config = Config::user_crate("crate");
    config.layout = Layout::SingleFile;
    let result = atlex_codegen::generate_valid(
        &collected.loaded.doc_set("crate"),
        &[external.doc_set("::atlex")],
        &config,
        &collected.pruned,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let errors = collected
        .errors
        .iter()
        .chain(&result.errors)
        .map(|p| shown(p.to_string()))
        .collect();
    let warnings = collected
        .loaded
        .warnings
        .iter()
        .map(|p| shown(p.to_string()))
        .collect();
    let pruned = collected
        .pruned
        .iter()
        .chain(&result.pruned)
        .map(|p| shown(p.to_string()))
        .collect();
    assert_eq!(result.generated.files.len(), 1);
    Some(Outcome {
        errors,
        warnings,
        pruned,
        code: result.generated.files[0].contents.clone(),
    })
}

#[test]
fn every_problem_is_named_and_every_pruned_def_has_its_cause() {
    let Some(outcome) = run() else { return };
    let mut report = String::from(
        "# `--skip-invalid` over tests/lexicons/broken (checked by tests/prune.rs)\n\n## errors\n",
    );
    for line in &outcome.errors {
        report.push_str(&format!("{line}\n"));
    }
    report.push_str("\n## warnings\n");
    for line in &outcome.warnings {
        report.push_str(&format!("{line}\n"));
    }
    report.push_str("\n## left out\n");
    for line in &outcome.pruned {
        report.push_str(&format!("{line}\n"));
    }
    expectorate::assert_contents("tests/lexicons/broken.report.txt", &report);

    // Every problem, by file and place (strict mode fails with exactly these).
    let expected_errors = [
        "badid.json: com.example.broken.bad id: id: ",
        "dangling.json: com.example.broken.dangling#main: output.schema.ref: unresolved reference \
         com.example.nowhere.defs#thing: no lexicon com.example.nowhere.defs is loaded",
        "dangling.json: com.example.broken.dangling#missingLocal: properties.x.ref: ",
        "defs.json: com.example.broken.defs#badString: ",
        "defs.json: com.example.broken.defs#badStruct: properties: ",
        "lowering.json: com.example.broken.lowering#main: input.schema.ref: a body must refer to \
         an object, record or union",
        "syntax.json: line ",
        "app.json: com.example.broken.app#usesSyntax: properties.x.ref: unresolved reference \
         com.example.broken.syntax#thing: no lexicon com.example.broken.syntax is loaded",
        "app.json: com.example.broken.app#usesBadId: properties.x.ref: unresolved reference",
    ];
    for needle in expected_errors {
        assert!(
            outcome.errors.iter().any(|e| e.starts_with(needle)),
            "no error starting with {needle:?} in {:#?}",
            outcome.errors
        );
    }
    assert_eq!(
        outcome.errors.len(),
        expected_errors.len(),
        "{:#?}",
        outcome.errors
    );

    // Every pruned def (and file), with its cause.
    let expected_pruned = [
        (
            "badid.json: com.example.broken.bad id: id: file left out",
            "",
        ),
        ("syntax.json: file left out: line ", "invalid JSON"),
        ("com.example.broken.defs#badString: ", "left out: "),
        (
            "com.example.broken.defs#badStruct: properties: left out: ",
            "",
        ),
        (
            "com.example.broken.defs#refersBadStruct: properties.b.ref: left out: refers to \
             com.example.broken.defs#badStruct, which was left out",
            "",
        ),
        (
            "com.example.broken.defs#chain: properties.r.ref: left out: refers to \
             com.example.broken.defs#refersBadStruct",
            "",
        ),
        (
            "com.example.broken.app#usesBadString: properties.name.ref: left out: refers to \
             com.example.broken.defs#badString",
            "",
        ),
        (
            "com.example.broken.app#usesChain: properties.u.refs[1]: left out: refers to \
             com.example.broken.defs#chain",
            "",
        ),
        (
            "com.example.broken.app#usesUsesChain: properties.x.items.ref: left out: refers to \
             com.example.broken.app#usesChain",
            "",
        ),
        (
            "com.example.broken.app#usesSyntax: properties.x.ref: left out: unresolved reference",
            "",
        ),
        (
            "com.example.broken.app#usesBadId: properties.x.ref: left out: unresolved reference",
            "",
        ),
        (
            "com.example.broken.dangling#main: output.schema.ref: left out: unresolved reference",
            "",
        ),
        (
            "com.example.broken.dangling#missingLocal: properties.x.ref: left out: ",
            "",
        ),
        (
            "com.example.broken.lowering#main: ",
            "left out: a body must refer to an object, record or union",
        ),
    ];
    for (needle, also) in expected_pruned {
        assert!(
            outcome
                .pruned
                .iter()
                .any(|p| p.contains(needle) && p.contains(also)),
            "no pruned entry with {needle:?} and {also:?} in {:#?}",
            outcome.pruned
        );
    }
    assert_eq!(
        outcome.pruned.len(),
        expected_pruned.len(),
        "{:#?}",
        outcome.pruned
    );

    // The relaxations: accepted with a warning naming the rule.
    for needle in [
        "warning: relaxed.json: com.example.broken.relaxed#main: record has no `key`",
        "warning: relaxed.json: com.example.broken.relaxed#main: record.nullable[0]: \"ghost\" \
         is listed in `nullable` but is not a property",
        "warning: relaxed_stream.json: com.example.broken.stream#main: subscription has no \
         `message`",
    ] {
        assert!(
            outcome.warnings.iter().any(|w| w.starts_with(needle)),
            "no warning {needle:?} in {:#?}",
            outcome.warnings
        );
    }
}

#[test]
fn the_valid_rest_is_generated() {
    let Some(outcome) = run() else { return };
    let code = &outcome.code;
    // Kept: valid defs, also in documents that lost others.
    for kept in [
        "pub struct App {",
        "pub struct Standalone {",
        "pub struct Good {",
        "pub type Name = ",
        "pub struct Fine {",
        "pub struct AlsoFine {",
        "pub struct Relaxed {",
        "pub struct Stream;",
    ] {
        assert!(code.contains(kept), "{kept:?} is missing");
    }
    // Left out.
    for gone in [
        "UsesBadString",
        "UsesChain",
        "UsesUsesChain",
        "UsesSyntax",
        "UsesBadId",
        "BadString",
        "BadStruct",
        "RefersBadStruct",
        "pub struct Chain",
        "MissingLocal",
        "pub struct Dangling",
        "pub struct Lowering",
    ] {
        assert!(!code.contains(gone), "{gone:?} was generated");
    }
    let text = format!(
        "// Snapshot of `tests/lexicons/broken` generated with `--skip-invalid` (tests/prune.rs);\n\
         // compiled by tests/snapshots.rs.\n\
         #![deny(warnings)]\n\
         // A binary uses none of the generated items.\n\
         #![allow(dead_code)]\n\n{code}\nfn main() {{}}\n"
    );
    expectorate::assert_contents("tests/lexicons/broken.rs", &text);
}

/// Streaming (`generate_valid_streaming`, what `cargo xtask codegen` writes files from while
/// the rest render): strict (`clean_only`) over lexicons with problems hands no file to the
/// sink, since the run will fail; otherwise the sink receives exactly the files returned, from
/// the rendering threads (tree layout: many files).
#[test]
fn streaming_hands_out_the_returned_files_and_none_for_a_strict_run_with_problems() {
    let Some(official) = atlex_tests::data::official_lexicons_dir() else {
        return;
    };
    let dir = manifest_dir().join("tests/lexicons/broken");
    let collected = atlex_codegen::collect_lexicons(&dir).unwrap();
    let external = atlex_codegen::load_lexicons(&official).unwrap();
    let config = Config::user_crate("crate");
    let seen = std::sync::Mutex::new(Vec::new());
    let sink = |file: &atlex_codegen::GeneratedFile| seen.lock().unwrap().push(file.clone());
    let run = |clean_only: bool| {
        atlex_codegen::generate_valid_streaming(
            &collected.loaded.doc_set("crate"),
            &[external.doc_set("::atlex")],
            &config,
            &collected.pruned,
            Some(&sink),
            clean_only,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let strict = run(true);
    assert!(!strict.generated.files.is_empty());
    assert!(
        seen.lock().unwrap().is_empty(),
        "a strict run with problems streamed files"
    );
    let mut returned = run(false).generated.files;
    let mut streamed = std::mem::take(&mut *seen.lock().unwrap());
    assert!(returned.len() > 1, "{} file(s)", returned.len());
    returned.sort_by(|a, b| a.path.cmp(&b.path));
    streamed.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(streamed, returned);
}
