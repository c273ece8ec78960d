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
fn offline_without_a_shared_folder_the_step_skips_and_says_what_to_run() {
    let (root, _shared) = setup();
    let nowhere = root.path().join("no-shared");
    // The pin's git URL (`example.invalid`) cannot be fetched: the offline case.
    let (result, _, out) = run_step("lexicons", root.path(), &nowhere, |_| {});
    let Ok(Outcome::Skipped(note)) = result else {
        panic!("expected a skip, got {result:?}");
    };
    assert!(note.contains("lexicons/official is missing"), "{note}");
    assert!(
        note.contains("run `cargo xtask lexicons sync --from DIR`"),
        "{note}"
    );
    assert!(
        note.contains("tests that read the lexicons are skipped"),
        "{note}"
    );
    assert!(out.contains("fetching the pinned commit from"), "{out}");
    assert!(!root.path().join("lexicons/official").exists());

    // Then the codegen check is skipped, naming why.
    let (result, _, _) = run_step("codegen", root.path(), &nowhere, |suite| {
        suite.lexicons_missing = true;
    });
    assert!(
        matches!(&result, Ok(Outcome::Skipped(note)) if note.contains("lexicons/official/")),
        "{result:?}"
    );

    // Under CI=true it is a failure.
    let (result, _, _) = run_step("lexicons", root.path(), &nowhere, |suite| suite.ci = true);
    let error = result.unwrap_err();
    assert!(error.contains("lexicons/official is missing"), "{error}");
    assert!(
        error.contains("cargo xtask lexicons sync --from DIR"),
        "{error}"
    );
}

#[test]
fn without_a_shared_folder_the_lexicons_are_fetched_with_git() {
    let (root, shared) = setup();
    let upstream = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let output = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args([
                "-c",
                "commit.gpgsign=false",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(upstream.path())
            .output()
            .expect("git must be installed to run these tests");
        assert!(output.status.success(), "git {args:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    git(&["init", "--quiet"]);
    copy_dir(
        &shared.path().join("lexicons"),
        &upstream.path().join("lexicons"),
    );
    git(&["add", "-A"]);
    git(&["commit", "--quiet", "-m", "lexicons"]);
    let commit = git(&["rev-parse", "HEAD"]);
    let paths = LexiconPaths::new(root.path());
    let mut pin = Pin::load(&paths.pin_file).unwrap();
    pin.source.commit = commit;
    pin.write(&paths.pin_file).unwrap();

    let nowhere = root.path().join("no-shared");
    let (result, _, out) = run_step("lexicons", root.path(), &nowhere, |suite| {
        suite.lexicons_git_url = Some(upstream.path().display().to_string());
    });
    let Ok(Outcome::Done(note)) = result else {
        panic!("expected the fetch to work, got {result:?}\n{out}");
    };
    assert!(note.starts_with("fetched 2 files from "), "{note}");
    assert_eq!(
        tree::hash_tree(&paths.official).unwrap(),
        tree::hash_tree(&shared.path().join("lexicons")).unwrap()
    );
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
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
fn codegen_syncs_missing_lexicons_or_names_the_command_offline() {
    let (root, shared) = setup();
    let args = xtask::codegen::CodegenArgs::default();
    // Offline (no local copy, the pinned URL unreachable): the error names the fix.
    let offline = xtask::lexicons::AutoSync {
        local: root.path().join("no-shared/lexicons"),
        git_url: None,
    };
    let mut out = Vec::new();
    let error = xtask::codegen::run_with(root.path(), &args, &offline, &mut out)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("lexicons/official is missing and fetching the pinned lexicons"),
        "{error}"
    );
    assert!(
        error.contains("run `cargo xtask lexicons sync --from DIR`"),
        "{error}"
    );
    assert!(!root.path().join("lexicons/official").exists());

    // With a local copy, it is synced first (these two files are not lexicons, so generation
    // then fails on them: the sync is what is tested here).
    let local = xtask::lexicons::AutoSync {
        local: shared.path().join("lexicons"),
        git_url: None,
    };
    let mut out = Vec::new();
    let result = xtask::codegen::run_with(root.path(), &args, &local, &mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("lexicons/official is missing"), "{out}");
    assert!(out.contains("synced 2 files"), "{out}");
    assert!(result.is_err());
    assert_eq!(
        tree::hash_tree(&root.path().join("lexicons/official")).unwrap(),
        tree::hash_tree(&shared.path().join("lexicons")).unwrap()
    );
}
