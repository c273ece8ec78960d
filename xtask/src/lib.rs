//! `cargo xtask`: atlex project automation.
//!
//! * `cargo xtask lexicons sync | pin | verify`: the pinned, hash-checked upstream lexicons in
//!   `lexicons/official/` ([`lexicons`], [`pin`]).
//! * `cargo xtask lexicons fetch … --into DIR` and `lexicons verify DIR`: lexicons from the
//!   network, verified and pinned; run by the package `xtask-lexicon-fetch`
//!   (`xtask/lexicon-fetch/`), which needs the SDK, so xtask itself does not.
//! * `cargo xtask codegen [--check]`: regenerate the SDK's bindings ([`codegen`]).
//! * `cargo xtask test`: the whole test suite as CI runs it ([`suite`]).
//! * `cargo xtask bench [NAME…] [--quick]`: the speed targets as ratios measured in one run
//!   ([`bench`]).
//! * `cargo xtask fuzz [--time SECS] [--smoke] [TARGET…]`: the coverage-guided fuzz targets
//!   of `tests/fuzz` ([`fuzz`]).
//!
//! Run `cargo xtask --help` for the commands. The crate is a library plus a thin `main` so the
//! commands can be tested against temporary folders.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod bench;
pub mod cli;
pub mod codegen;
pub mod error;
pub mod fuzz;
pub mod git;
pub mod lexicons;
/// The reference PDS of `cargo xtask test` (shared with the tests, which spawn it the same way
/// when run on their own).
pub use atlex_pds_harness as pds;
pub mod pin;
pub mod suite;
pub mod synth;
pub mod tree;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::Command;
use crate::error::{Error, Result};
use crate::lexicons::{LexiconPaths, PinOptions, SyncOptions, SyncSource};
use crate::pin::Pin;

/// The repository root: the parent of this crate's folder.
pub fn project_root() -> Result<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| Error::new("the xtask crate has no parent folder"))
}

/// Runs a parsed command (other than help) for the repository at `root`; progress goes to `out`.
pub fn run(command: Command, root: &Path, out: &mut dyn Write) -> Result<()> {
    let paths = LexiconPaths::new(root);
    let env_git_url = std::env::var(lexicons::GIT_URL_ENV).ok();
    match command {
        Command::Help(topic) => {
            let _ = write!(out, "{}", topic.text());
            Ok(())
        }
        Command::LexiconsSync(args) => {
            let source = match args.from {
                Some(dir) => SyncSource::Dir(dir),
                None => {
                    let pin = Pin::load(&paths.pin_file)?;
                    SyncSource::Git {
                        url: lexicons::resolve_git_url(
                            args.git_url.as_deref(),
                            env_git_url.as_deref(),
                            &pin,
                        ),
                    }
                }
            };
            let options = SyncOptions {
                source,
                allow_changes: args.allow_changes,
                force: args.force,
            };
            lexicons::sync(&paths, &options, out).map(drop)
        }
        Command::LexiconsPin(args) => {
            let options = PinOptions {
                from: args.from,
                commit: args.commit,
                git_url: args.git_url,
                path: args.path,
                fetch_url: env_git_url.filter(|url| !url.is_empty()),
            };
            lexicons::pin(&paths, &options, out).map(drop)
        }
        Command::LexiconsVerify => lexicons::verify(&paths, out).map(drop),
        Command::LexiconsVerifyDir(dir) => {
            let mut args = vec![std::ffi::OsString::from("verify")];
            args.push(dir.into_os_string());
            lexicons::run_fetch_tool(root, &args)
        }
        Command::LexiconsFetch(args) => {
            let mut all = vec![std::ffi::OsString::from("fetch")];
            all.extend(args);
            lexicons::run_fetch_tool(root, &all)
        }
        Command::Codegen(args) => codegen::run(root, &args, out),
        Command::Bench(args) => bench::run(root, &args, out),
        Command::Fuzz(args) => fuzz::run(root, &args, out),
        Command::Test(args) => {
            let mut suite = suite::Suite::from_env(root.to_path_buf(), args, out);
            suite::run(&mut suite)
        }
    }
}
