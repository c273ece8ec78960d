//! Snapshot tests of the generator: our fixture lexicons (`tests/lexicons/<set>/`, covering
//! every construct and the names that break naive generators) and the interop catalog are
//! generated into one file each, compared with the committed `tests/lexicons/<set>.rs`
//! (bless with `EXPECTORATE=overwrite cargo test -p atlex-codegen --test snapshots`), and every
//! snapshot is compiled with `#![deny(warnings)]` by trybuild.

use std::path::{Path, PathBuf};

use atlex_codegen::{Config, Layout};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn official_lexicons() -> Option<PathBuf> {
    atlex_tests::data::official_lexicons_dir()
}

fn interop_catalog() -> Option<PathBuf> {
    Some(atlex_tests::data::interop_dir()?.join("lexicon/catalog"))
}

/// Generates `dir` as one file rooted at `crate`, refs into the official lexicons pointing at
/// `::atlex`, wrapped as a binary crate that must compile without warnings.
fn snapshot(dir: &Path, official: &Path) -> String {
    let own = atlex_codegen::load_lexicons(dir)
        .unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()));
    let external = atlex_codegen::load_lexicons(official)
        .unwrap_or_else(|e| panic!("loading {}: {e}", official.display()));
    let mut config = Config::user_crate("crate");
    config.layout = Layout::SingleFile;
    let generated = atlex_codegen::generate(
        &own.doc_set("crate"),
        &[external.doc_set("::atlex")],
        &config,
    )
    .unwrap_or_else(|e| panic!("generating {}: {e}", dir.display()));
    assert_eq!(generated.files.len(), 1);
    format!(
        "// Snapshot of `{}`; compiled by tests/snapshots.rs.\n\
         #![deny(warnings)]\n\
         // A binary uses none of the generated items.\n\
         #![allow(dead_code)]\n\n{}\nfn main() {{}}\n",
        dir.strip_prefix(manifest_dir()).unwrap_or(dir).display(),
        generated.files[0].contents
    )
}

#[test]
fn fixture_snapshots() {
    let Some(official) = official_lexicons() else {
        return;
    };
    for set in ["kitchen_sink", "adversarial"] {
        let dir = manifest_dir().join("tests/lexicons").join(set);
        let text = snapshot(&dir, &official);
        expectorate::assert_contents(format!("tests/lexicons/{set}.rs"), &text);
    }
}

#[test]
fn interop_catalog_snapshot() {
    let (Some(official), Some(catalog)) = (official_lexicons(), interop_catalog()) else {
        return;
    };
    let text = snapshot(&catalog, &official).replace(
        &catalog.display().to_string(),
        "$ATLEX_INTEROP_DIR/lexicon/catalog",
    );
    expectorate::assert_contents("tests/lexicons/interop_catalog.rs", &text);
}

#[test]
fn snapshots_compile() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/lexicons/*.rs");
}
