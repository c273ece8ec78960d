//! `cargo xtask codegen`: regenerate typed Rust from lexicons.
//!
//! Without options it regenerates the SDK's bindings: every lexicon in `lexicons/official/` into
//! `sdk/src/generated/`, and the namespace features in `sdk/Cargo.toml` (between the
//! `@generated features` markers). With `--lexicons DIR --out DIR` it generates a user crate's
//! own lexicons; refs into the official lexicons then become `::atlex::…` paths.
//!
//! Files are written only when their content changed; files the generator no longer produces
//! are removed. `--check` writes nothing and fails, naming each stale file, when anything would
//! change (CI runs it).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use atlex_codegen::{Config, DocSet, Layout};

use crate::error::{Context, Error, Result};

/// Options of `cargo xtask codegen`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodegenArgs {
    /// `--check`: fail instead of writing when anything is stale.
    pub check: bool,
    /// `--lexicons DIR`: generate these lexicons instead of the official ones.
    pub lexicons: Option<PathBuf>,
    /// `--out DIR`: where to write.
    pub out: Option<PathBuf>,
    /// `--root PATH`: the Rust path of the generated modules inside their crate.
    pub root: Option<String>,
    /// `--no-official`: do not resolve refs against the official lexicons.
    pub no_official: bool,
    /// `--single-file`: write one `lib.rs` with inline modules.
    pub single_file: bool,
}

const FEATURES_BEGIN: &str = "# @generated features begin (cargo xtask codegen)";
const FEATURES_END: &str = "# @generated features end";

/// Runs the command for the repository at `root`.
pub fn run(root: &Path, args: &CodegenArgs, out: &mut dyn Write) -> Result<()> {
    let started = Instant::now();
    let official_dir = root.join("lexicons").join("official");
    let sdk_mode = args.lexicons.is_none();
    let own_dir = match &args.lexicons {
        Some(dir) => resolve(root, dir),
        None => official_dir.clone(),
    };
    if !own_dir.is_dir() {
        return Err(if sdk_mode {
            Error::new(format!(
                "{} does not exist: the official lexicons are not synced yet; run \
                 `cargo xtask lexicons sync` (or `cargo xtask lexicons sync --from ../shared/lexicons`) first",
                own_dir.display()
            ))
        } else {
            Error::new(format!(
                "lexicon folder {} does not exist",
                own_dir.display()
            ))
        });
    }
    let out_dir = match &args.out {
        Some(dir) => resolve(root, dir),
        None if sdk_mode => root.join("sdk").join("src").join("generated"),
        None => {
            return Err(Error::new(
                "--lexicons needs --out: the folder to write the generated modules to",
            ));
        }
    };

    let own = load_checked(&own_dir, out)?;
    let external = if sdk_mode || args.no_official {
        None
    } else if official_dir.is_dir() {
        Some(load_checked(&official_dir, out)?)
    } else {
        return Err(Error::new(format!(
            "refs into the official lexicons need {}; run `cargo xtask lexicons sync` first \
             (or pass --no-official)",
            official_dir.display()
        )));
    };

    let mut config = if sdk_mode {
        Config::sdk()
    } else {
        Config::user_crate(args.root.clone().unwrap_or_else(|| "crate".to_owned()))
    };
    if let Some(root_path) = &args.root {
        config.root = root_path.clone();
    }
    if args.single_file {
        config.layout = Layout::SingleFile;
    }
    let own_set = own.doc_set(&config.root);
    let external_sets: Vec<DocSet<'_>> = external
        .iter()
        .map(|loaded| loaded.doc_set("::atlex"))
        .collect();
    let generated = atlex_codegen::generate(&own_set, &external_sets, &config)
        .map_err(|e| Error::new(e.to_string()))?;

    let mut stale = Vec::new();
    let mut produced = BTreeSet::new();
    for file in &generated.files {
        let path = out_dir.join(&file.path);
        produced.insert(path.clone());
        if ensure_file(&path, &file.contents, args.check)? {
            stale.push(path);
        }
    }
    for path in rust_files(&out_dir)? {
        if !produced.contains(&path) {
            stale.push(path.clone());
            if !args.check {
                std::fs::remove_file(&path)
                    .context(|| format!("removing stale generated file {}", path.display()))?;
            }
        }
    }
    if !args.check {
        remove_empty_dirs(&out_dir)?;
    }
    if sdk_mode {
        let manifest = root.join("sdk").join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest)
            .context(|| format!("reading {}", manifest.display()))?;
        let updated =
            replace_features(&text, &features_block(&generated.features)).ok_or_else(|| {
                Error::new(format!(
                    "{} has no `{FEATURES_BEGIN}` … `{FEATURES_END}` block in [features]",
                    manifest.display()
                ))
            })?;
        if ensure_file(&manifest, &updated, args.check)? {
            stale.push(manifest);
        }
    }
    let elapsed = started.elapsed();
    if args.check {
        if stale.is_empty() {
            let _ = writeln!(
                out,
                "codegen: {} files are fresh ({} lexicons, {:.2?})",
                generated.files.len(),
                own.docs.len(),
                elapsed
            );
            Ok(())
        } else {
            let list: Vec<String> = stale
                .iter()
                .map(|p| format!("  {}", display_relative(root, p)))
                .collect();
            Err(Error::new(format!(
                "generated code is stale ({} file(s)); run `cargo xtask codegen{}` and commit the result:\n{}",
                stale.len(),
                reproduce_args(args),
                list.join("\n")
            )))
        }
    } else {
        let _ = writeln!(
            out,
            "codegen: {} lexicons → {} files in {} ({} changed, {:.2?})",
            own.docs.len(),
            generated.files.len(),
            display_relative(root, &out_dir),
            stale.len(),
            elapsed
        );
        Ok(())
    }
}

fn resolve(root: &Path, dir: &Path) -> PathBuf {
    if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(dir))
            .unwrap_or_else(|_| root.join(dir))
    }
}

fn display_relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn reproduce_args(args: &CodegenArgs) -> String {
    let mut s = String::new();
    if let Some(dir) = &args.lexicons {
        s.push_str(&format!(" --lexicons {}", dir.display()));
    }
    if let Some(dir) = &args.out {
        s.push_str(&format!(" --out {}", dir.display()));
    }
    if let Some(root) = &args.root {
        s.push_str(&format!(" --root {root}"));
    }
    if args.no_official {
        s.push_str(" --no-official");
    }
    if args.single_file {
        s.push_str(" --single-file");
    }
    s
}

/// Loads a folder of lexicons and applies the schema checks; warnings are printed.
fn load_checked(dir: &Path, out: &mut dyn Write) -> Result<atlex_codegen::Loaded> {
    let loaded = atlex_codegen::load_lexicons(dir)
        .map_err(|e| Error::new(format!("lexicons under {}: {e}", dir.display())))?;
    for warning in &loaded.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    Ok(loaded)
}

/// Writes `contents` to `path` when it differs (CRLF-insensitive). Returns whether it differed.
pub fn ensure_file(path: &Path, contents: &str, check: bool) -> Result<bool> {
    let current = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::new(format!("reading {}: {e}", path.display()))),
    };
    let normalised = |s: &str| s.replace("\r\n", "\n");
    if current.as_deref().map(normalised).as_deref() == Some(contents) {
        return Ok(false);
    }
    if !check {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(path, contents).context(|| format!("writing {}", path.display()))?;
    }
    Ok(true)
}

fn rust_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if !dir.is_dir() {
        return Ok(files);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let entries =
            std::fs::read_dir(&current).context(|| format!("listing {}", current.display()))?;
        for entry in entries {
            let entry = entry.context(|| format!("listing {}", current.display()))?;
            let path = entry.path();
            let kind = entry
                .file_type()
                .context(|| format!("inspecting {}", path.display()))?;
            if kind.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn remove_empty_dirs(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let entry = entry.context(|| format!("listing {}", dir.display()))?;
        let path = entry.path();
        if path.is_dir() {
            remove_empty_dirs(&path)?;
            let empty = std::fs::read_dir(&path)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            if empty {
                std::fs::remove_dir(&path).context(|| format!("removing {}", path.display()))?;
            }
        }
    }
    Ok(())
}

fn features_block(features: &std::collections::BTreeMap<String, BTreeSet<String>>) -> String {
    let mut block = String::new();
    for (feature, deps) in features {
        let deps: Vec<String> = deps.iter().map(|d| format!("{d:?}")).collect();
        block.push_str(&format!("{feature} = [{}]\n", deps.join(", ")));
    }
    let all: Vec<String> = features.keys().map(|f| format!("{f:?}")).collect();
    block.push_str("# Every namespace.\n");
    block.push_str(&format!("full = [{}]\n", all.join(", ")));
    block
}

/// Replaces the text between the feature markers; `None` when the markers are missing.
fn replace_features(manifest: &str, block: &str) -> Option<String> {
    let begin = manifest.find(FEATURES_BEGIN)?;
    let after_begin = begin + FEATURES_BEGIN.len();
    let end = after_begin + manifest[after_begin..].find(FEATURES_END)?;
    Some(format!(
        "{}\n{}{}",
        &manifest[..after_begin],
        block,
        &manifest[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_replaced_between_markers() {
        let manifest = format!(
            "[features]\ndefault = []\n{FEATURES_BEGIN}\nold = []\n{FEATURES_END}\n\n[deps]\n"
        );
        let mut features = std::collections::BTreeMap::new();
        features.insert("app-bsky".to_owned(), BTreeSet::new());
        features.insert(
            "chat-bsky".to_owned(),
            ["app-bsky".to_owned()].into_iter().collect(),
        );
        let updated = replace_features(&manifest, &features_block(&features)).unwrap();
        assert!(updated.contains("chat-bsky = [\"app-bsky\"]\n"));
        assert!(updated.contains("full = [\"app-bsky\", \"chat-bsky\"]\n"));
        assert!(!updated.contains("old = []"));
        assert!(updated.ends_with(&format!("{FEATURES_END}\n\n[deps]\n")));
        assert_eq!(replace_features("[features]\n", "x"), None);
    }

    #[test]
    fn ensure_file_writes_only_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b.rs");
        assert!(ensure_file(&path, "x\n", true).unwrap());
        assert!(!path.exists());
        assert!(ensure_file(&path, "x\n", false).unwrap());
        assert!(!ensure_file(&path, "x\n", false).unwrap());
        std::fs::write(&path, "x\r\n").unwrap();
        assert!(!ensure_file(&path, "x\n", true).unwrap());
    }
}
