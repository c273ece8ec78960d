//! The `lexicons`, `codegen` and `interop data` steps of `cargo xtask test`, against temporary
//! folders. (The `tests`, `doc tests` and `feature matrix` steps run cargo; their command lines
//! are unit-tested in `src/suite.rs`, as are the PDS steps, against a fake PDS.)

use std::ffi::OsString;
use std::fs;
use std::path::Path;

use tempfile::TempDir;
use xtask::cli::TestArgs;
use xtask::lexicons::LexiconPaths;
use xtask::pin::{Pin, Source};
use xtask::suite::{self, Outcome, Suite};
use xtask::tree;

/// A repository root pinning two files, and a shared folder holding them under `lexicons/`.
fn setup() -> (TempDir, TempDir) {
    let shared = tempfile::tempdir().unwrap();
    let lexicons = shared.path().join("lexicons");
    fs::create_dir_all(lexicons.join("app/bsky")).unwrap();
    fs::write(lexicons.join("app/bsky/a.json"), "{\"a\":1}").unwrap();
    fs::write(lexicons.join("app/bsky/b.json"), "{\"b\":2}").unwrap();
    let root = tempfile::tempdir().unwrap();
    let paths = LexiconPaths::new(root.path());
    fs::create_dir_all(&paths.dir).unwrap();
    Pin {
        source: Source {
            git: "https://example.invalid/x.git".to_owned(),
            commit: "0123456789abcdef0123456789abcdef01234567".to_owned(),
            path: "lexicons".to_owned(),
        },
        files: tree::hash_tree(&lexicons).unwrap(),
    }
    .write(&paths.pin_file)
    .unwrap();
    (root, shared)
}

fn run_step(
    name: &str,
    root: &Path,
    shared: &Path,
    configure: impl FnOnce(&mut Suite<'_>),
) -> (Result<Outcome, String>, Vec<(OsString, OsString)>, String) {
    let mut out = Vec::new();
    let mut suite = Suite::new(
        root.to_owned(),
        shared.to_owned(),
        TestArgs::default(),
        &mut out,
    );
    configure(&mut suite);
    let step = suite::steps()
        .into_iter()
        .find(|step| step.name == name)
        .unwrap();
    let result = (step.run)(&mut suite).map_err(|error| error.to_string());
    let env = std::mem::take(&mut suite.child_env);
    drop(suite);
    (result, env, String::from_utf8(out).unwrap())
}

#[test]
fn missing_lexicons_are_synced_from_the_shared_folder() {
    let (root, shared) = setup();
    let (result, _, out) = run_step("lexicons", root.path(), shared.path(), |_| {});
    assert_eq!(
        result,
        Ok(Outcome::Done(
            "synced 2 files into lexicons/official".to_owned()
        )),
        "{out}"
    );
    assert!(
        out.contains("lexicons/official is missing; syncing it from"),
        "{out}"
    );
    let official = root.path().join("lexicons/official");
    assert_eq!(
        tree::hash_tree(&official).unwrap(),
        tree::hash_tree(&shared.path().join("lexicons")).unwrap()
    );

    let (result, _, out) = run_step("lexicons", root.path(), shared.path(), |_| {});
    assert_eq!(
        result,
        Ok(Outcome::Done(
            "lexicons/official matches the pin (2 files)".to_owned()
        )),
        "{out}"
    );
}

#[test]
fn stale_lexicons_are_resynced() {
    let (root, shared) = setup();
    run_step("lexicons", root.path(), shared.path(), |_| {})
        .0
        .unwrap();
    fs::write(root.path().join("lexicons/official/app/bsky/a.json"), "{}").unwrap();
    let (result, _, out) = run_step("lexicons", root.path(), shared.path(), |_| {});
    assert!(matches!(result, Ok(Outcome::Done(_))), "{result:?}");
    assert!(
        out.contains("differs from the pin (0 added, 0 missing, 1 changed); syncing it"),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(root.path().join("lexicons/official/app/bsky/a.json")).unwrap(),
        "{\"a\":1}"
    );
}

#[test]
fn without_a_shared_folder_the_step_says_what_to_run() {
    let (root, _shared) = setup();
    let nowhere = root.path().join("no-shared");
    let (result, _, _) = run_step("lexicons", root.path(), &nowhere, |_| {});
    let error = result.unwrap_err();
    assert!(error.contains("lexicons/official is missing"), "{error}");
    assert!(
        error.contains("cargo xtask lexicons sync --from ../shared/lexicons"),
        "{error}"
    );
    assert!(!root.path().join("lexicons/official").exists());
}

#[test]
fn no_sync_skips_the_lexicons_step() {
    let (root, shared) = setup();
    let (result, _, _) = run_step("lexicons", root.path(), shared.path(), |suite| {
        suite.args.no_sync = true;
    });
    assert_eq!(result, Ok(Outcome::Skipped("--no-sync".to_owned())));
    assert!(!root.path().join("lexicons/official").exists());
}

#[test]
fn interop_dir_defaults_to_the_shared_folder() {
    let (root, shared) = setup();
    fs::create_dir(shared.path().join("interop")).unwrap();
    let (result, env, _) = run_step("interop data", root.path(), shared.path(), |_| {});
    assert!(matches!(result, Ok(Outcome::Done(_))), "{result:?}");
    assert_eq!(
        env,
        [(
            OsString::from("ATLEX_INTEROP_DIR"),
            shared.path().join("interop").into_os_string()
        )]
    );
}

#[test]
fn an_explicit_interop_dir_is_left_alone() {
    let (root, shared) = setup();
    fs::create_dir(shared.path().join("interop")).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let (result, env, _) = run_step("interop data", root.path(), shared.path(), |suite| {
        suite.interop_dir = Some(elsewhere.path().as_os_str().to_owned());
    });
    assert!(matches!(result, Ok(Outcome::Done(note)) if note.contains("from the environment")));
    assert!(env.is_empty());
}

#[test]
fn missing_interop_data_fails_only_under_ci() {
    let (root, shared) = setup();
    let (result, env, _) = run_step("interop data", root.path(), shared.path(), |_| {});
    assert!(matches!(result, Ok(Outcome::Skipped(_))), "{result:?}");
    assert!(env.is_empty());
    let (result, _, _) = run_step("interop data", root.path(), shared.path(), |suite| {
        suite.ci = true;
    });
    let error = result.unwrap_err();
    assert!(
        error.contains("CI is set but ATLEX_INTEROP_DIR is unset"),
        "{error}"
    );
}

#[test]
fn the_codegen_step_needs_the_lexicons() {
    let (root, shared) = setup();
    let (result, _, _) = run_step("codegen", root.path(), shared.path(), |_| {});
    let error = result.unwrap_err();
    assert!(error.contains("run `cargo xtask lexicons sync"), "{error}");
}
