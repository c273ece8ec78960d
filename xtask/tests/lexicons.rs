//! `lexicons sync | pin | verify` against temporary repositories: a local folder, and a local
//! git repository fetched by path (standing in for GitHub).

use std::fs;
use std::path::Path;
use std::process::Command;

use tempfile::TempDir;
use xtask::lexicons::{
    self, LexiconPaths, PinOptions, Status, SyncOptions, SyncOutcome, SyncSource,
};
use xtask::pin::{Pin, Source};
use xtask::tree::{self, FileHashes};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// The files of a small lexicon tree.
fn fixture() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "app/bsky/feed/post.json",
            r#"{"lexicon":1,"id":"app.bsky.feed.post"}"#,
        ),
        (
            "app/bsky/feed/like.json",
            r#"{"lexicon":1,"id":"app.bsky.feed.like"}"#,
        ),
        (
            "com/atproto/repo/strongRef.json",
            r#"{"lexicon":1,"id":"com.atproto.repo.strongRef"}"#,
        ),
    ]
}

fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let file = dir.join(path);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(file, content).unwrap();
    }
}

/// A repository root with `lexicons/lexicons.toml` pinning `files` at `commit` of `git`.
struct Repo {
    _dir: TempDir,
    paths: LexiconPaths,
}

impl Repo {
    fn new(git: &str, commit: &str, files: &FileHashes) -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let paths = LexiconPaths::new(dir.path());
        fs::create_dir_all(&paths.dir).unwrap();
        Pin {
            source: Source {
                git: git.to_owned(),
                commit: commit.to_owned(),
                path: "lexicons".to_owned(),
            },
            files: files.clone(),
        }
        .write(&paths.pin_file)
        .unwrap();
        Repo { _dir: dir, paths }
    }

    /// A repository pinning [`fixture`], and a folder holding it.
    fn with_fixture() -> (Repo, TempDir) {
        let source = tempfile::tempdir().unwrap();
        write_tree(source.path(), &fixture());
        let repo = Repo::new(
            "https://example.invalid/x.git",
            COMMIT,
            &tree::hash_tree(source.path()).unwrap(),
        );
        (repo, source)
    }

    fn sync(
        &self,
        source: SyncSource,
        allow_changes: bool,
        force: bool,
    ) -> (Result<SyncOutcome, String>, String) {
        let mut out = Vec::new();
        let options = SyncOptions {
            source,
            allow_changes,
            force,
        };
        let result = lexicons::sync(&self.paths, &options, &mut out).map_err(|e| e.to_string());
        (result, String::from_utf8(out).unwrap())
    }

    fn sync_dir(&self, dir: &Path) -> (Result<SyncOutcome, String>, String) {
        self.sync(SyncSource::Dir(dir.to_owned()), false, false)
    }

    fn official(&self) -> FileHashes {
        tree::hash_tree(&self.paths.official).unwrap()
    }

    /// Entries of `lexicons/` other than the pin and `official/`: there must be none after a
    /// sync, failed or not.
    fn leftovers(&self) -> Vec<String> {
        fs::read_dir(&self.paths.dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name != "lexicons.toml" && name != "official")
            .collect()
    }
}

#[test]
fn sync_from_a_folder_installs_the_verified_files() {
    let (repo, source) = Repo::with_fixture();
    let (result, out) = repo.sync_dir(source.path());
    assert_eq!(
        result,
        Ok(SyncOutcome::Replaced {
            files: 3,
            diff: Default::default()
        }),
        "{out}"
    );
    assert!(out.contains("synced 3 files"), "{out}");
    assert_eq!(repo.official(), tree::hash_tree(source.path()).unwrap());
    assert_eq!(
        fs::read_to_string(repo.paths.official.join("app/bsky/feed/post.json")).unwrap(),
        fixture()[0].1
    );
    assert!(repo.leftovers().is_empty(), "{:?}", repo.leftovers());
}

#[test]
fn sync_twice_is_idempotent() {
    let (repo, source) = Repo::with_fixture();
    repo.sync_dir(source.path()).0.unwrap();
    let marker = repo.paths.official.join("app/bsky/feed/post.json");
    let modified = fs::metadata(&marker).unwrap().modified().unwrap();
    let (result, out) = repo.sync_dir(source.path());
    assert_eq!(result, Ok(SyncOutcome::UpToDate { files: 3 }), "{out}");
    assert!(out.contains("is up to date"), "{out}");
    // Nothing was rewritten.
    assert_eq!(fs::metadata(&marker).unwrap().modified().unwrap(), modified);
    assert!(repo.leftovers().is_empty());
}

#[test]
fn a_changed_file_is_an_error_and_leaves_official_untouched() {
    let (repo, source) = Repo::with_fixture();
    repo.sync_dir(source.path()).0.unwrap();
    let before = repo.official();

    fs::write(source.path().join("app/bsky/feed/like.json"), "{}").unwrap();
    fs::write(source.path().join("app/bsky/feed/post.json"), "{}").unwrap();
    let (result, _) = repo.sync_dir(source.path());
    let error = result.unwrap_err();
    assert!(error.contains("(0 added, 0 missing, 2 changed)"), "{error}");
    assert!(
        error.contains("changed  app/bsky/feed/like.json  (sha256 "),
        "{error}"
    );
    assert!(
        error.contains("changed  app/bsky/feed/post.json  (sha256 "),
        "{error}"
    );
    assert!(
        error.contains("lexicons/official was left unchanged"),
        "{error}"
    );
    assert!(error.contains("cargo xtask lexicons pin"), "{error}");
    assert_eq!(repo.official(), before);
    assert!(repo.leftovers().is_empty(), "{:?}", repo.leftovers());
}

#[test]
fn missing_and_added_files_are_errors_named_by_path() {
    let (repo, source) = Repo::with_fixture();
    fs::remove_file(source.path().join("com/atproto/repo/strongRef.json")).unwrap();
    fs::write(source.path().join("app/bsky/feed/extra.json"), "{}").unwrap();
    let (result, _) = repo.sync_dir(source.path());
    let error = result.unwrap_err();
    assert!(error.contains("(1 added, 1 missing, 0 changed)"), "{error}");
    assert!(
        error.contains("added    app/bsky/feed/extra.json  (present but not pinned)"),
        "{error}"
    );
    assert!(
        error.contains("missing  com/atproto/repo/strongRef.json"),
        "{error}"
    );
    // No official tree existed, and none was created.
    assert!(!repo.paths.official.exists());
    assert!(repo.leftovers().is_empty(), "{:?}", repo.leftovers());
}

#[test]
fn allow_changes_installs_and_still_lists_the_differences() {
    let (repo, source) = Repo::with_fixture();
    fs::write(source.path().join("app/bsky/feed/extra.json"), "{}").unwrap();
    let (result, out) = repo.sync(SyncSource::Dir(source.path().to_owned()), true, false);
    match result {
        Ok(SyncOutcome::Replaced { files: 4, diff }) => {
            assert_eq!(diff.added, ["app/bsky/feed/extra.json"])
        }
        other => panic!("{other:?}\n{out}"),
    }
    assert!(out.contains("warning:"), "{out}");
    assert!(out.contains("added    app/bsky/feed/extra.json"), "{out}");
    assert!(
        repo.paths
            .official
            .join("app/bsky/feed/extra.json")
            .is_file()
    );
    match lexicons::status(&repo.paths, &Pin::load(&repo.paths.pin_file).unwrap()) {
        Status::Differs(diff) => assert_eq!(diff.added, ["app/bsky/feed/extra.json"]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn sync_replaces_a_stale_tree_completely() {
    let (repo, source) = Repo::with_fixture();
    write_tree(
        &repo.paths.official,
        &[
            ("app/bsky/feed/post.json", "old"),
            ("stale/file.json", "{}"),
        ],
    );
    let (result, out) = repo.sync_dir(source.path());
    assert!(
        matches!(result, Ok(SyncOutcome::Replaced { files: 3, .. })),
        "{result:?} {out}"
    );
    assert_eq!(repo.official(), tree::hash_tree(source.path()).unwrap());
    assert!(!repo.paths.official.join("stale").exists());
    assert!(repo.leftovers().is_empty(), "{:?}", repo.leftovers());
}

#[test]
fn a_missing_source_folder_is_named() {
    let (repo, source) = Repo::with_fixture();
    let missing = source.path().join("nope");
    let error = repo.sync_dir(&missing).0.unwrap_err();
    assert!(error.contains(&missing.display().to_string()), "{error}");
    assert!(!repo.paths.official.exists());
    assert!(repo.leftovers().is_empty());
}

#[test]
fn the_repository_root_instead_of_its_lexicon_folder_gets_a_hint() {
    let (repo, source) = Repo::with_fixture();
    let upstream = tempfile::tempdir().unwrap();
    let nested: Vec<_> = fixture()
        .into_iter()
        .map(|(path, content)| (format!("lexicons/{path}"), content))
        .collect();
    let nested: Vec<_> = nested.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    write_tree(upstream.path(), &nested);
    drop(source);
    let error = repo.sync_dir(upstream.path()).0.unwrap_err();
    assert!(error.contains("did you mean --from"), "{error}");
}

#[test]
fn scratch_folders_of_dead_syncs_are_removed() {
    if !Path::new("/proc/self").exists() {
        eprintln!("skipped: needs /proc to tell which processes are alive");
        return;
    }
    let (repo, source) = Repo::with_fixture();
    // Linux pids stay below 2^22, so this process cannot be alive.
    let stale = repo.paths.dir.join(".official.staging-999999999");
    write_tree(&stale, &[("tree/x.json", "{}")]);
    repo.sync_dir(source.path()).0.unwrap();
    assert!(!stale.exists());
}

#[test]
fn verify_reports_missing_matching_and_differing_trees() {
    let (repo, source) = Repo::with_fixture();
    let mut out = Vec::new();
    let error = lexicons::verify(&repo.paths, &mut out)
        .unwrap_err()
        .to_string();
    assert!(error.contains("does not exist"), "{error}");
    assert!(
        error.contains("cargo xtask lexicons sync --from ../shared/lexicons"),
        "{error}"
    );

    repo.sync_dir(source.path()).0.unwrap();
    assert_eq!(lexicons::verify(&repo.paths, &mut out).unwrap(), 3);

    fs::remove_file(repo.paths.official.join("app/bsky/feed/like.json")).unwrap();
    let error = lexicons::verify(&repo.paths, &mut out)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("missing  app/bsky/feed/like.json"),
        "{error}"
    );
}

#[test]
fn pin_from_a_folder_writes_every_hash_and_reports_changes() {
    let (repo, source) = Repo::with_fixture();
    fs::write(
        source.path().join("app/bsky/feed/like.json"),
        "{\"new\":true}",
    )
    .unwrap();
    fs::write(source.path().join("app/bsky/feed/repost.json"), "{}").unwrap();
    let new_commit = "fedcba9876543210fedcba9876543210fedcba98";
    let mut out = Vec::new();
    let options = PinOptions {
        from: Some(source.path().to_owned()),
        commit: Some(new_commit.to_owned()),
        ..PinOptions::default()
    };
    let pin = lexicons::pin(&repo.paths, &options, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("(1 added, 0 missing, 1 changed)"), "{out}");
    assert!(out.contains("added    app/bsky/feed/repost.json"), "{out}");
    assert!(
        out.contains(&format!("-> https://example.invalid/x.git @ {new_commit}")),
        "{out}"
    );

    let written = Pin::load(&repo.paths.pin_file).unwrap();
    assert_eq!(written, pin);
    assert_eq!(written.source.commit, new_commit);
    assert_eq!(written.source.git, "https://example.invalid/x.git");
    assert_eq!(written.files, tree::hash_tree(source.path()).unwrap());
    // The moved pin accepts the new files.
    repo.sync_dir(source.path()).0.unwrap();
}

#[test]
fn pin_without_a_file_needs_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    let paths = LexiconPaths::new(dir.path());
    let source = tempfile::tempdir().unwrap();
    write_tree(source.path(), &fixture());
    let mut out = Vec::new();
    let mut options = PinOptions {
        from: Some(source.path().to_owned()),
        ..PinOptions::default()
    };
    let error = lexicons::pin(&paths, &options, &mut out)
        .unwrap_err()
        .to_string();
    assert!(error.contains("--commit"), "{error}");
    options.commit = Some("abc".to_owned());
    let error = lexicons::pin(&paths, &options, &mut out)
        .unwrap_err()
        .to_string();
    assert!(error.contains("not a full commit id"), "{error}");
    options.commit = Some(COMMIT.to_owned());
    let pin = lexicons::pin(&paths, &options, &mut out).unwrap();
    assert_eq!(pin.source.git, xtask::pin::DEFAULT_GIT_URL);
    assert_eq!(pin.source.path, xtask::pin::DEFAULT_PATH);
    assert_eq!(pin.files.len(), 3);
}

// ---- git ----

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(["-c", "user.name=test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git must be installed to run these tests");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// An upstream repository with the fixture under `lexicons/` (plus files outside it) at the
/// returned commit, and a later commit on top that changes a lexicon, so the pinned commit is
/// not the branch tip.
fn upstream() -> (TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "--quiet"]);
    let nested: Vec<_> = fixture()
        .into_iter()
        .map(|(path, content)| (format!("lexicons/{path}"), content))
        .collect();
    let mut files: Vec<_> = nested.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    files.push(("README.md", "not a lexicon"));
    files.push(("packages/api/index.ts", "export {}"));
    write_tree(dir.path(), &files);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "--quiet", "-m", "lexicons"]);
    let pinned = git(dir.path(), &["rev-parse", "HEAD"]);
    write_tree(
        dir.path(),
        &[("lexicons/app/bsky/feed/post.json", "{\"changed\":true}")],
    );
    git(dir.path(), &["commit", "--quiet", "-am", "later"]);
    (dir, pinned)
}

fn fixture_hashes() -> FileHashes {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &fixture());
    tree::hash_tree(dir.path()).unwrap()
}

fn url(dir: &Path) -> String {
    dir.display().to_string()
}

#[test]
fn sync_fetches_the_pinned_folder_of_a_non_tip_commit() {
    let (upstream, commit) = upstream();
    let repo = Repo::new(&url(upstream.path()), &commit, &fixture_hashes());
    let (result, out) = repo.sync(
        SyncSource::Git {
            url: url(upstream.path()),
        },
        false,
        false,
    );
    assert_eq!(
        result,
        Ok(SyncOutcome::Replaced {
            files: 3,
            diff: Default::default()
        }),
        "{out}"
    );
    assert!(
        out.contains(&format!("fetching `lexicons` of commit {commit}")),
        "{out}"
    );
    assert_eq!(repo.official(), fixture_hashes());
    assert!(!repo.paths.official.join("README.md").exists());
    assert!(repo.leftovers().is_empty(), "{:?}", repo.leftovers());

    // A second sync sees the tree is current and fetches nothing: an unreachable URL is fine.
    let (result, out) = repo.sync(
        SyncSource::Git {
            url: "/nonexistent/repo".to_owned(),
        },
        false,
        false,
    );
    assert_eq!(result, Ok(SyncOutcome::UpToDate { files: 3 }), "{out}");
    assert!(out.contains("nothing fetched"), "{out}");

    // --force fetches; a failing fetch leaves the tree as it was.
    let (result, _) = repo.sync(
        SyncSource::Git {
            url: "/nonexistent/repo".to_owned(),
        },
        false,
        true,
    );
    let error = result.unwrap_err();
    assert!(
        error.contains(&format!("fetching commit {commit} from /nonexistent/repo")),
        "{error}"
    );
    assert_eq!(repo.official(), fixture_hashes());
    assert!(repo.leftovers().is_empty(), "{:?}", repo.leftovers());
}

#[test]
fn sync_works_with_a_server_that_filters_blobs() {
    let (upstream, commit) = upstream();
    git(
        upstream.path(),
        &["config", "uploadpack.allowFilter", "true"],
    );
    let repo = Repo::new(&url(upstream.path()), &commit, &fixture_hashes());
    let (result, out) = repo.sync(
        SyncSource::Git {
            url: format!("file://{}", url(upstream.path())),
        },
        false,
        false,
    );
    assert!(
        matches!(result, Ok(SyncOutcome::Replaced { files: 3, .. })),
        "{result:?} {out}"
    );
    assert_eq!(repo.official(), fixture_hashes());
}

#[test]
fn a_hash_mismatch_from_git_is_an_error() {
    let (upstream, _) = upstream();
    // Pin the tip commit, whose post.json differs from the hashes pinned.
    let tip = git(upstream.path(), &["rev-parse", "HEAD"]);
    let repo = Repo::new(&url(upstream.path()), &tip, &fixture_hashes());
    let (result, _) = repo.sync(
        SyncSource::Git {
            url: url(upstream.path()),
        },
        false,
        false,
    );
    let error = result.unwrap_err();
    assert!(error.contains(&format!("commit {tip} of")), "{error}");
    assert!(
        error.contains("changed  app/bsky/feed/post.json"),
        "{error}"
    );
    assert!(!repo.paths.official.exists());
    assert!(repo.leftovers().is_empty(), "{:?}", repo.leftovers());
}

#[test]
fn an_unknown_commit_or_folder_is_an_error() {
    let (upstream, commit) = upstream();
    let repo = Repo::new(&url(upstream.path()), COMMIT, &fixture_hashes());
    let error = repo
        .sync(
            SyncSource::Git {
                url: url(upstream.path()),
            },
            false,
            false,
        )
        .0
        .unwrap_err();
    assert!(
        error.contains(&format!("fetching commit {COMMIT}")),
        "{error}"
    );

    let mut pin = Pin::load(&repo.paths.pin_file).unwrap();
    pin.source.commit = commit;
    pin.source.path = "no/such/folder".to_owned();
    pin.write(&repo.paths.pin_file).unwrap();
    let error = repo
        .sync(
            SyncSource::Git {
                url: url(upstream.path()),
            },
            false,
            false,
        )
        .0
        .unwrap_err();
    assert!(error.contains("no/such/folder"), "{error}");
    assert!(repo.leftovers().is_empty(), "{:?}", repo.leftovers());
}

#[test]
fn pin_a_new_commit_fetched_with_git_then_sync_it() {
    let (upstream, commit) = upstream();
    let repo = Repo::new(&url(upstream.path()), &commit, &fixture_hashes());
    repo.sync(
        SyncSource::Git {
            url: url(upstream.path()),
        },
        false,
        false,
    )
    .0
    .unwrap();

    let tip = git(upstream.path(), &["rev-parse", "HEAD"]);
    let mut out = Vec::new();
    let options = PinOptions {
        commit: Some(tip.clone()),
        ..PinOptions::default()
    };
    let pin = lexicons::pin(&repo.paths, &options, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("(0 added, 0 missing, 1 changed)"), "{out}");
    assert!(out.contains("changed  app/bsky/feed/post.json"), "{out}");
    assert_eq!(pin.source.commit, tip);
    assert!(repo.leftovers().is_empty(), "{:?}", repo.leftovers());

    // The tree no longer matches the moved pin; sync fetches the new commit.
    let (result, out) = repo.sync(
        SyncSource::Git {
            url: url(upstream.path()),
        },
        false,
        false,
    );
    assert!(
        matches!(result, Ok(SyncOutcome::Replaced { files: 3, .. })),
        "{result:?} {out}"
    );
    assert_eq!(
        fs::read_to_string(repo.paths.official.join("app/bsky/feed/post.json")).unwrap(),
        "{\"changed\":true}"
    );
}

#[test]
fn the_git_url_override_is_used_for_fetching_only() {
    let (upstream, commit) = upstream();
    let repo = Repo::new(
        "https://example.invalid/upstream.git",
        &commit,
        &fixture_hashes(),
    );
    let pin = Pin::load(&repo.paths.pin_file).unwrap();
    assert_eq!(
        lexicons::resolve_git_url(None, None, &pin),
        "https://example.invalid/upstream.git"
    );
    assert_eq!(lexicons::resolve_git_url(None, Some("/env"), &pin), "/env");
    assert_eq!(
        lexicons::resolve_git_url(Some("/flag"), Some("/env"), &pin),
        "/flag"
    );
    assert_eq!(
        lexicons::resolve_git_url(None, Some(""), &pin),
        "https://example.invalid/upstream.git"
    );

    let mut out = Vec::new();
    let options = PinOptions {
        fetch_url: Some(url(upstream.path())),
        ..PinOptions::default()
    };
    let pinned = lexicons::pin(&repo.paths, &options, &mut out).unwrap();
    assert_eq!(pinned.source.git, "https://example.invalid/upstream.git");
    assert_eq!(pinned.files, fixture_hashes());
}
