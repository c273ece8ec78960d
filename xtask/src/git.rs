//! Fetching one folder of one commit with the `git` command (no git library: every developer and
//! CI machine has `git`, and a fetch needs nothing more).
//!
//! The fetch is shallow (`--depth 1`) and blob-less (`--filter=blob:none`), so only the trees of
//! that commit and the blobs of the wanted folder are downloaded; a server that does not support
//! filters simply sends everything. Commits are fetched by id, which GitHub and local
//! repositories allow for any commit reachable from a branch or tag.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Context, Error, Result};

/// Fetches `commit` from `url` using `scratch` (an empty, existing folder) and checks out only
/// `subdir`. Returns the folder holding `subdir`'s files (inside `scratch`).
pub fn fetch_folder(url: &str, commit: &str, subdir: &str, scratch: &Path) -> Result<PathBuf> {
    let git_dir = scratch.join("repo.git");
    let work_tree = scratch.join("checkout");
    fs::create_dir_all(&work_tree).context(|| format!("creating {}", work_tree.display()))?;

    git(
        &[
            OsStr::new("init"),
            OsStr::new("--quiet"),
            OsStr::new("--bare"),
            git_dir.as_os_str(),
        ],
        "git init",
    )?;
    let in_repo = |args: &[&OsStr], what: &str| {
        let mut full: Vec<&OsStr> = vec![
            OsStr::new("--git-dir"),
            git_dir.as_os_str(),
            OsStr::new("--work-tree"),
            work_tree.as_os_str(),
        ];
        full.extend_from_slice(args);
        git(&full, what)
    };
    in_repo(
        &["remote", "add", "origin", url].map(OsStr::new),
        "git remote add",
    )?;
    in_repo(
        &[
            "fetch",
            "--quiet",
            "--no-tags",
            "--depth",
            "1",
            "--filter=blob:none",
            "origin",
            commit,
        ]
        .map(OsStr::new),
        &format!("fetching commit {commit} from {url}"),
    )?;
    let fetched = in_repo(
        &["rev-parse", "--verify", "FETCH_HEAD^{commit}"].map(OsStr::new),
        "git rev-parse FETCH_HEAD",
    )?;
    if fetched.trim() != commit {
        return Err(Error::new(format!(
            "fetching {commit} from {url} gave commit {} instead",
            fetched.trim()
        )));
    }
    let pathspec = if subdir.is_empty() { "." } else { subdir };
    in_repo(
        &["checkout", "--quiet", commit, "--", pathspec].map(OsStr::new),
        &format!("checking out `{pathspec}` of commit {commit} from {url}"),
    )?;
    let folder = if subdir.is_empty() {
        work_tree
    } else {
        work_tree.join(subdir)
    };
    if !folder.is_dir() {
        return Err(Error::new(format!(
            "commit {commit} of {url} has no folder `{subdir}`"
        )));
    }
    Ok(folder)
}

/// Runs `git` with `args`; returns its standard output, or an error with its standard error.
fn git(args: &[&OsStr], what: &str) -> Result<String> {
    let mut command = Command::new("git");
    // Line-ending conversion would change the bytes that are hashed.
    command.args(["-c", "core.autocrlf=false", "-c", "core.eol=lf"]);
    command.args(args);
    // Never prompt for credentials (the fetch is of a public repository), and do not let the
    // caller's repository (e.g. when run from a git hook) leak in through the environment.
    command.env("GIT_TERMINAL_PROMPT", "0");
    for variable in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_NAMESPACE",
    ] {
        command.env_remove(variable);
    }
    let output = command.output().map_err(|error| {
        Error::new(format!(
            "{what}: could not run `git` ({error}); is git installed and on PATH?"
        ))
    })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(Error::new(format!(
            "{what}: git failed ({}):\n{}",
            output.status,
            stderr.trim_end()
        )))
    }
}
