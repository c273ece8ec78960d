//! `cargo xtask lexicons sync | pin | verify`: the pinned upstream lexicons in
//! `lexicons/official/`.
//!
//! * `sync` materialises the pinned files (from git, or `--from` a local folder) in a scratch
//!   folder next to `lexicons/official/`, checks every sha256 against `lexicons/lexicons.toml`,
//!   and only then swaps the folder in with renames. A failed sync leaves the previous tree as it
//!   was; a sync whose result equals the current tree changes nothing.
//! * `pin` rewrites `lexicons.toml` from a folder or a commit: it is how the pin moves.
//! * `verify` checks the current `lexicons/official/` against the pin.
//! * `fetch` and `verify DIR` (lexicons from the network) are run by the package
//!   `xtask-lexicon-fetch` ([`run_fetch_tool`]).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{Context, Error, Result};
use crate::git;
use crate::pin::{self, Pin, Source};
use crate::tree::{self, FileHashes, TreeDiff};

/// Environment variable that replaces the pinned git URL when fetching (a mirror, or a local
/// repository in tests). `--git-url` takes precedence over it.
pub const GIT_URL_ENV: &str = "ATLEX_LEXICONS_GIT_URL";

/// Prefix of the scratch folders created next to `official/` (git-ignored).
const SCRATCH_PREFIX: &str = ".official.";

/// The files and folders of `lexicons/` in one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexiconPaths {
    /// The repository root (used to print short paths).
    pub root: PathBuf,
    /// `lexicons/`.
    pub dir: PathBuf,
    /// `lexicons/lexicons.toml`.
    pub pin_file: PathBuf,
    /// `lexicons/official/`.
    pub official: PathBuf,
}

impl LexiconPaths {
    /// The paths for the repository at `root`.
    pub fn new(root: &Path) -> LexiconPaths {
        let dir = root.join("lexicons");
        LexiconPaths {
            root: root.to_owned(),
            pin_file: dir.join("lexicons.toml"),
            official: dir.join("official"),
            dir,
        }
    }

    /// `path` relative to the repository root when it is inside it.
    pub fn show(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

/// Where `sync` takes the files from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncSource {
    /// A local folder holding the pinned subfolder's files.
    Dir(PathBuf),
    /// The pinned commit, fetched with git from this URL.
    Git {
        /// The URL to fetch from.
        url: String,
    },
}

/// Options of `sync`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOptions {
    /// Where the files come from.
    pub source: SyncSource,
    /// Install the files even when they differ from the pin (the differences are still listed).
    pub allow_changes: bool,
    /// Fetch even when `official/` already matches the pin.
    pub force: bool,
}

/// What `sync` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// `official/` already held exactly these files; nothing was written.
    UpToDate {
        /// Number of files.
        files: usize,
    },
    /// `official/` was replaced.
    Replaced {
        /// Number of files installed.
        files: usize,
        /// How the installed files differ from the pin (empty unless `allow_changes`).
        diff: TreeDiff,
    },
}

/// The state of `official/` compared with the pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// `official/` does not exist.
    Missing,
    /// `official/` holds exactly the pinned files.
    Matches {
        /// Number of files.
        files: usize,
    },
    /// `official/` differs from the pin.
    Differs(TreeDiff),
    /// `official/` could not be read (the message says why).
    Unreadable(String),
}

/// The git URL to fetch from: `--git-url`, else `$ATLEX_LEXICONS_GIT_URL`, else the pin's.
pub fn resolve_git_url(flag: Option<&str>, env: Option<&str>, pin: &Pin) -> String {
    flag.or(env)
        .filter(|url| !url.is_empty())
        .unwrap_or(&pin.source.git)
        .to_owned()
}

/// Compares `official/` with the pin.
pub fn status(paths: &LexiconPaths, pin: &Pin) -> Status {
    match fs::symlink_metadata(&paths.official) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Status::Missing,
        Err(error) => {
            return Status::Unreadable(format!("{}: {error}", paths.show(&paths.official)));
        }
        Ok(_) => {}
    }
    match tree::hash_tree(&paths.official) {
        Ok(hashes) => {
            let diff = TreeDiff::between(&pin.files, &hashes);
            if diff.is_empty() {
                Status::Matches {
                    files: hashes.len(),
                }
            } else {
                Status::Differs(diff)
            }
        }
        Err(error) => Status::Unreadable(error.to_string()),
    }
}

/// `cargo xtask lexicons verify`: Ok when `official/` matches the pin, otherwise an error that
/// lists the differences and says how to fix them.
pub fn verify(paths: &LexiconPaths, out: &mut dyn Write) -> Result<usize> {
    let pin = Pin::load(&paths.pin_file)?;
    let official = paths.show(&paths.official);
    match status(paths, &pin) {
        Status::Matches { files } => {
            say(
                out,
                format_args!(
                    "{official} matches {} ({files} files, commit {})",
                    paths.show(&paths.pin_file),
                    pin.source.commit
                ),
            );
            Ok(files)
        }
        Status::Missing => Err(Error::new(format!(
            "{official} does not exist; run `cargo xtask lexicons sync` \
             (or `cargo xtask lexicons sync --from ../shared/lexicons`)"
        ))),
        Status::Differs(diff) => Err(Error::new(format!(
            "{official} differs from {} ({}):\n{diff}run `cargo xtask lexicons sync` to restore it",
            paths.show(&paths.pin_file),
            diff.summary()
        ))),
        Status::Unreadable(message) => Err(Error::new(format!(
            "{message}\nrun `cargo xtask lexicons sync` to restore {official}"
        ))),
    }
}

/// `cargo xtask lexicons sync`.
pub fn sync(
    paths: &LexiconPaths,
    options: &SyncOptions,
    out: &mut dyn Write,
) -> Result<SyncOutcome> {
    let pin = Pin::load(&paths.pin_file)?;
    let official = paths.show(&paths.official);
    remove_stale_scratch(&paths.dir);

    // What is installed now (None when missing or unreadable): a fetch is skipped when it
    // already matches the pin, and the install when it matches what was fetched.
    let current = tree::hash_tree(&paths.official).ok();
    if let SyncSource::Git { .. } = options.source
        && !options.force
        && current.as_ref() == Some(&pin.files)
    {
        say(
            out,
            format_args!(
                "{official} is up to date ({} files, commit {}); nothing fetched \
                 (use --force to fetch anyway)",
                pin.files.len(),
                pin.source.commit
            ),
        );
        return Ok(SyncOutcome::UpToDate {
            files: pin.files.len(),
        });
    }

    let scratch = Scratch::create(&paths.dir, "staging")?;
    let (tree, hashes) = match &options.source {
        SyncSource::Dir(dir) => {
            say(out, format_args!("copying lexicons from {}", dir.display()));
            let tree = scratch.path.join("tree");
            let hashes = tree::copy_tree(dir, &tree)
                .context(|| format!("copying lexicons from {}", dir.display()))?;
            (tree, hashes)
        }
        SyncSource::Git { url } => {
            say(
                out,
                format_args!(
                    "fetching `{}` of commit {} from {url}",
                    pin.source.path, pin.source.commit
                ),
            );
            let tree = git::fetch_folder(url, &pin.source.commit, &pin.source.path, &scratch.path)?;
            let hashes = tree::hash_tree(&tree)?;
            (tree, hashes)
        }
    };

    let diff = TreeDiff::between(&pin.files, &hashes);
    if !diff.is_empty() {
        let origin = match &options.source {
            SyncSource::Dir(dir) => format!("the files of {}", dir.display()),
            SyncSource::Git { url } => format!("commit {} of {url}", pin.source.commit),
        };
        let what = format!(
            "{origin} differ from {} ({}):\n{}{diff}",
            paths.show(&paths.pin_file),
            diff.summary(),
            wrong_level_hint(&options.source, &pin, &diff),
        );
        if !options.allow_changes {
            return Err(Error::new(format!(
                "{what}{official} was left unchanged. If the new files are intended, move the \
                 pin with `cargo xtask lexicons pin` (see `cargo xtask lexicons pin --help`), \
                 or pass --allow-changes to install them without changing the pin"
            )));
        }
        say(
            out,
            format_args!("warning: {what}installing them anyway (--allow-changes)"),
        );
    }

    if current.as_ref() == Some(&hashes) {
        say(
            out,
            format_args!(
                "{official} is up to date ({} files, commit {})",
                hashes.len(),
                pin.source.commit
            ),
        );
        return Ok(SyncOutcome::UpToDate {
            files: hashes.len(),
        });
    }

    install(&tree, &paths.official, &paths.dir)?;
    say(
        out,
        format_args!(
            "synced {} files (commit {}) into {official}",
            hashes.len(),
            pin.source.commit
        ),
    );
    Ok(SyncOutcome::Replaced {
        files: hashes.len(),
        diff,
    })
}

/// Where a missing `official/` is synced from without being asked (by `cargo xtask codegen`
/// and `cargo xtask test`): a local copy when there is one, else the pinned commit with git.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoSync {
    /// A folder holding the pinned files (`$ATLEX_SHARED_DIR/lexicons`, default
    /// `<repo>/../shared/lexicons`); used when it exists.
    pub local: PathBuf,
    /// `$ATLEX_LEXICONS_GIT_URL` when set: fetch from there instead of the pinned URL.
    pub git_url: Option<String>,
}

impl AutoSync {
    /// The sources for the repository at `root`, from the process environment.
    pub fn from_env(root: &Path) -> AutoSync {
        let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        let shared = non_empty(SHARED_DIR_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("..").join("shared"));
        AutoSync {
            local: shared.join("lexicons"),
            git_url: non_empty(GIT_URL_ENV).map(|url| url.to_string_lossy().into_owned()),
        }
    }
}

/// Environment variable naming the folder of shared data (`lexicons/`, `interop/`); default
/// `<repo>/../shared`.
pub const SHARED_DIR_ENV: &str = "ATLEX_SHARED_DIR";

/// The one command that installs the lexicons without a network, for error messages.
pub fn offline_fix(pin: &Pin) -> String {
    format!(
        "run `cargo xtask lexicons sync --from DIR`, where DIR holds the `{}` folder of {} at \
         commit {} (for example ../shared/lexicons)",
        pin.source.path, pin.source.git, pin.source.commit
    )
}

/// Syncs `official/` from [`AutoSync::local`] when that folder exists, else with git from the
/// pinned commit (as `cargo xtask lexicons sync` does); returns the number of files. When the
/// fetch fails (no network), the error says so and names the command that fixes it.
pub fn auto_sync(paths: &LexiconPaths, auto: &AutoSync, out: &mut dyn Write) -> Result<usize> {
    let pin = Pin::load(&paths.pin_file)?;
    let official = paths.show(&paths.official);
    let (source, how) = if auto.local.is_dir() {
        (
            SyncSource::Dir(auto.local.clone()),
            format!(
                "`cargo xtask lexicons sync --from {}`",
                auto.local.display()
            ),
        )
    } else {
        let url = resolve_git_url(None, auto.git_url.as_deref(), &pin);
        (
            SyncSource::Git { url },
            "`cargo xtask lexicons sync`".to_owned(),
        )
    };
    say(out, format_args!("syncing {official} ({how})"));
    let options = SyncOptions {
        source: source.clone(),
        allow_changes: false,
        force: false,
    };
    match sync(paths, &options, out) {
        Ok(SyncOutcome::UpToDate { files } | SyncOutcome::Replaced { files, .. }) => Ok(files),
        Err(error) => match source {
            SyncSource::Git { url } => Err(Error::new(format!(
                "{official} is missing and fetching the pinned lexicons from {url} failed \
                 (no network?); {}.\n{error}",
                offline_fix(&pin)
            ))),
            SyncSource::Dir(_) => Err(error),
        },
    }
}

/// When every pinned file is missing and the extra files sit under `<pin.path>/`, the user most
/// likely gave the repository root instead of its lexicon folder.
fn wrong_level_hint(source: &SyncSource, pin: &Pin, diff: &TreeDiff) -> String {
    let SyncSource::Dir(dir) = source else {
        return String::new();
    };
    let prefix = format!("{}/", pin.source.path);
    let all_missing = diff.missing.len() == pin.files.len();
    let nested = pin
        .files
        .keys()
        .any(|path| diff.added.contains(&format!("{prefix}{path}")));
    if pin.source.path.is_empty() || !all_missing || !nested {
        return String::new();
    }
    format!(
        "  (the pinned files are under `{}` in that folder: did you mean --from {}?)\n",
        pin.source.path,
        dir.join(&pin.source.path).display()
    )
}

/// Options of `pin`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinOptions {
    /// Hash this local folder instead of fetching.
    pub from: Option<PathBuf>,
    /// The new commit (default: the current pin's).
    pub commit: Option<String>,
    /// The new git URL to record (default: the current pin's, else upstream).
    pub git_url: Option<String>,
    /// The new folder inside the repository (default: the current pin's, else `lexicons`).
    pub path: Option<String>,
    /// Where to fetch from when not `from` and different from the recorded URL (the
    /// `ATLEX_LEXICONS_GIT_URL` override).
    pub fetch_url: Option<String>,
}

/// `cargo xtask lexicons pin`: writes `lexicons.toml` for the files of a folder or commit and
/// returns the new pin.
pub fn pin(paths: &LexiconPaths, options: &PinOptions, out: &mut dyn Write) -> Result<Pin> {
    let previous = if paths.pin_file.exists() {
        Some(Pin::load(&paths.pin_file).map_err(|error| {
            Error::new(format!(
                "{error}\n(fix or delete {} to write a new pin)",
                paths.show(&paths.pin_file)
            ))
        })?)
    } else {
        None
    };
    let previous_source = previous.as_ref().map(|pin| &pin.source);
    let git_url = options
        .git_url
        .clone()
        .or_else(|| previous_source.map(|s| s.git.clone()))
        .unwrap_or_else(|| pin::DEFAULT_GIT_URL.to_owned());
    let subdir = options
        .path
        .clone()
        .or_else(|| previous_source.map(|s| s.path.clone()))
        .unwrap_or_else(|| pin::DEFAULT_PATH.to_owned());
    let commit = options
        .commit
        .clone()
        .or_else(|| previous_source.map(|s| s.commit.clone()))
        .ok_or_else(|| {
            Error::new(format!(
                "{} does not exist yet: give the commit with --commit <sha>",
                paths.show(&paths.pin_file)
            ))
        })?;
    pin::check_commit(&commit).context(|| "--commit".to_owned())?;
    pin::check_subdir(&subdir).context(|| "--path".to_owned())?;

    fs::create_dir_all(&paths.dir).context(|| format!("creating {}", paths.show(&paths.dir)))?;
    let files: FileHashes = match &options.from {
        Some(dir) => {
            say(out, format_args!("hashing {}", dir.display()));
            tree::hash_tree(dir)?
        }
        None => {
            remove_stale_scratch(&paths.dir);
            let scratch = Scratch::create(&paths.dir, "pin")?;
            let url = options.fetch_url.as_deref().unwrap_or(&git_url);
            say(
                out,
                format_args!("fetching `{subdir}` of commit {commit} from {url}"),
            );
            let tree = git::fetch_folder(url, &commit, &subdir, &scratch.path)?;
            tree::hash_tree(&tree)?
        }
    };
    if files.is_empty() {
        return Err(Error::new("no files to pin: the folder is empty"));
    }

    let new = Pin {
        source: Source {
            git: git_url,
            commit,
            path: subdir,
        },
        files,
    };
    if let Some(previous) = &previous {
        let diff = TreeDiff::between(&previous.files, &new.files);
        if previous.source != new.source {
            say(
                out,
                format_args!(
                    "source: {} @ {} `{}` -> {} @ {} `{}`",
                    previous.source.git,
                    previous.source.commit,
                    previous.source.path,
                    new.source.git,
                    new.source.commit,
                    new.source.path
                ),
            );
        }
        if diff.is_empty() {
            say(out, format_args!("files: unchanged"));
        } else {
            say(
                out,
                format_args!(
                    "files compared with the previous pin ({}):\n{}",
                    diff.summary(),
                    diff.to_string().trim_end()
                ),
            );
        }
    }
    new.write(&paths.pin_file)?;
    say(
        out,
        format_args!(
            "wrote {} ({} files, commit {}); next: `cargo xtask lexicons sync`",
            paths.show(&paths.pin_file),
            new.files.len(),
            new.source.commit
        ),
    );
    Ok(new)
}

/// Replaces `official` by `tree` (both inside `dir`, so on one file system) with renames: the old
/// tree is moved aside, the new one moved in, then the old one deleted. If moving the new tree in
/// fails, the old one is put back.
fn install(tree: &Path, official: &Path, dir: &Path) -> Result<()> {
    let old = dir.join(format!("{SCRATCH_PREFIX}old-{}", std::process::id()));
    remove_any(&old).context(|| format!("removing {}", old.display()))?;
    let had_old = match fs::symlink_metadata(official) {
        Ok(_) => {
            fs::rename(official, &old)
                .context(|| format!("moving {} aside", official.display()))?;
            true
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => false,
        Err(error) => {
            return Err(Error::new(format!(
                "reading {}: {error}",
                official.display()
            )));
        }
    };
    if let Err(error) = fs::rename(tree, official) {
        if had_old {
            let _ = fs::rename(&old, official);
        }
        return Err(Error::new(format!(
            "moving the new lexicons into {}: {error}",
            official.display()
        )));
    }
    // The new tree is in place; failing to delete the old one only leaves a git-ignored folder
    // that the next sync removes.
    let _ = remove_any(&old);
    Ok(())
}

/// Removes a file, symbolic link or folder tree; a missing path is fine.
fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// A scratch folder `lexicons/.official.<kind>-<pid>`, removed when dropped.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn create(dir: &Path, kind: &str) -> Result<Scratch> {
        let path = dir.join(format!("{SCRATCH_PREFIX}{kind}-{}", std::process::id()));
        remove_any(&path).context(|| format!("removing {}", path.display()))?;
        fs::create_dir(&path).context(|| format!("creating {}", path.display()))?;
        Ok(Scratch { path })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = remove_any(&self.path);
    }
}

/// Removes scratch folders left by syncs that were killed: those whose process no longer runs.
/// Only where `/proc` tells (Linux); elsewhere they stay until removed by hand (they are
/// git-ignored).
fn remove_stale_scratch(dir: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let own = std::process::id().to_string();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(SCRATCH_PREFIX) else {
            continue;
        };
        let Some((_, pid)) = rest.rsplit_once('-') else {
            continue;
        };
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) || pid == own {
            continue;
        }
        if !Path::new("/proc").join(pid).exists() {
            let _ = remove_any(&entry.path());
        }
    }
}

/// Writes one line of progress; a closed output is not worth failing a sync for.
fn say(out: &mut dyn Write, line: std::fmt::Arguments<'_>) {
    let _ = writeln!(out, "{line}");
}

/// The package that runs `lexicons fetch` and `lexicons verify DIR` (it needs the SDK, which
/// xtask must not: `cargo xtask codegen` regenerates the SDK's code).
pub const FETCH_PACKAGE: &str = "xtask-lexicon-fetch";

/// Runs `cargo run -p xtask-lexicon-fetch -- ARGS` in `root` (`$CARGO`, else `cargo`); its
/// output goes straight to the terminal.
pub fn run_fetch_tool(root: &Path, args: &[std::ffi::OsString]) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(&cargo)
        .current_dir(root)
        .args(["run", "--quiet", "--package", FETCH_PACKAGE, "--"])
        .args(args)
        .status()
        .context(|| format!("running {} run -p {FETCH_PACKAGE}", cargo.to_string_lossy()))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::new(format!(
            "`cargo run -p {FETCH_PACKAGE}` failed ({status}); its output is above"
        )))
    }
}
