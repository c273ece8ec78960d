//! The command line of the `xtask-lexicon-fetch` binary, which `cargo xtask lexicons fetch`
//! and `cargo xtask lexicons verify DIR` run (their help is xtask's).

use std::ffi::OsString;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fetch::{FetchOptions, Target};
use crate::{Error, fetch, verify};

/// A parsed command line.
#[derive(Debug, Clone)]
pub enum Command {
    /// `fetch`.
    Fetch(FetchOptions),
    /// `verify DIR`.
    Verify(PathBuf),
}

const FETCH_HELP: &str = "cargo xtask lexicons fetch --help";

/// Parses `fetch …` or `verify DIR`. `root` is the repository (its `lexicons/official/` is the
/// default `--known` folder).
pub fn parse(args: Vec<OsString>, root: &Path) -> Result<Command, String> {
    let mut args = args.into_iter();
    let Some(command) = args.next() else {
        return Err(format!("expected `fetch` or `verify` (see `{FETCH_HELP}`)"));
    };
    let mut rest: Vec<String> = Vec::new();
    for arg in args {
        rest.push(
            arg.into_string()
                .map_err(|arg| format!("`{}` is not valid UTF-8", arg.to_string_lossy()))?,
        );
    }
    match command.to_str() {
        Some("verify") => match rest.as_slice() {
            [dir] if !dir.starts_with('-') => Ok(Command::Verify(PathBuf::from(dir))),
            _ => Err(
                "usage: cargo xtask lexicons verify DIR (see `cargo xtask lexicons verify --help`)"
                    .to_owned(),
            ),
        },
        Some("fetch") => parse_fetch(rest, root).map(Command::Fetch),
        _ => Err(format!(
            "unknown command `{}` (see `{FETCH_HELP}`)",
            command.to_string_lossy()
        )),
    }
}

fn parse_fetch(args: Vec<String>, root: &Path) -> Result<FetchOptions, String> {
    let mut options = FetchOptions::new(Vec::new(), PathBuf::new());
    let mut into: Option<PathBuf> = None;
    let mut known: Option<PathBuf> = None;
    let mut no_official = false;
    let mut seen: Vec<String> = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if !arg.starts_with("--") {
            options
                .targets
                .push(Target::parse(&arg).map_err(|e| format!("{e} (see `{FETCH_HELP}`)"))?);
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        if seen.contains(&flag) {
            return Err(format!("{flag} given twice (see `{FETCH_HELP}`)"));
        }
        seen.push(flag.clone());
        if flag == "--locked" {
            if inline.is_some() {
                return Err(format!("--locked takes no value (see `{FETCH_HELP}`)"));
            }
            options.locked = true;
            continue;
        }
        if flag == "--no-official" {
            if inline.is_some() {
                return Err(format!("--no-official takes no value (see `{FETCH_HELP}`)"));
            }
            no_official = true;
            continue;
        }
        let value = match inline.or_else(|| args.next()) {
            Some(value) if !value.is_empty() => value,
            _ => return Err(format!("{flag} needs a value (see `{FETCH_HELP}`)")),
        };
        let number = |value: &str| {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag} takes a number, not `{value}` (see `{FETCH_HELP}`)"))
        };
        match flag.as_str() {
            "--into" => into = Some(PathBuf::from(value)),
            "--known" => known = Some(PathBuf::from(value)),
            "--dns" => options.dns = Some(value.parse::<SocketAddr>().map_err(|_| {
                format!(
                    "--dns takes IP:PORT (e.g. 127.0.0.1:5353), not `{value}` (see `{FETCH_HELP}`)"
                )
            })?),
            "--plc" => options.plc = Some(value),
            "--max-depth" => {
                options.max_depth = usize::try_from(number(&value)?).map_err(|e| e.to_string())?
            }
            "--max-docs" => {
                options.max_docs = usize::try_from(number(&value)?).map_err(|e| e.to_string())?
            }
            "--max-record-bytes" => options.max_record_bytes = number(&value)?,
            "--timeout" => match number(&value)? {
                0 => {
                    return Err(format!(
                        "--timeout takes a positive number of seconds (see `{FETCH_HELP}`)"
                    ));
                }
                secs => {
                    options.timeout = Duration::from_secs(secs);
                    options.dns_timeout = Duration::from_secs(secs);
                }
            },
            _ => return Err(format!("unknown flag `{flag}` (see `{FETCH_HELP}`)")),
        }
    }
    if options.targets.is_empty() {
        return Err(format!(
            "give at least one NSID or pattern (see `{FETCH_HELP}`)"
        ));
    }
    options.into = into.ok_or_else(|| format!("--into DIR is required (see `{FETCH_HELP}`)"))?;
    if no_official && known.is_some() {
        return Err(format!(
            "--no-official and --known cannot be used together (see `{FETCH_HELP}`)"
        ));
    }
    options.known = match known {
        Some(dir) => Some(dir),
        None if no_official => None,
        None => Some(root.join("lexicons/official")).filter(|dir| dir.is_dir()),
    };
    Ok(options)
}

/// Runs a parsed command; progress goes to `out`.
pub fn run(command: &Command, out: &mut dyn Write) -> Result<(), Error> {
    match command {
        Command::Verify(dir) => verify::verify(dir, out).map(drop),
        Command::Fetch(options) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| Error::new(format!("starting the async runtime: {error}")))?;
            runtime.block_on(fetch(options, out)).map(drop)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn fetch_flags() {
        let root = Path::new("/nonexistent");
        let Command::Fetch(options) = parse(
            args(&[
                "fetch",
                "com.example.feed.post",
                "org.example.*",
                "--into",
                "out",
                "--dns=127.0.0.1:53",
                "--plc",
                "http://localhost:2582",
                "--max-depth",
                "2",
                "--no-official",
                "--locked",
            ]),
            root,
        )
        .unwrap() else {
            panic!("not fetch")
        };
        assert_eq!(options.targets.len(), 2);
        assert_eq!(options.into, PathBuf::from("out"));
        assert_eq!(options.dns, Some("127.0.0.1:53".parse().unwrap()));
        assert_eq!(options.max_depth, 2);
        assert_eq!(options.known, None);
        assert!(options.locked);
    }

    #[test]
    fn usage_errors() {
        let root = Path::new("/nonexistent");
        for (line, needle) in [
            (&["fetch", "com.example.a.b"][..], "--into"),
            (&["fetch", "--into", "x"][..], "at least one"),
            (&["fetch", "com.*.b", "--into", "x"][..], "trailing"),
            (
                &[
                    "fetch",
                    "com.example.a.b",
                    "--into",
                    "x",
                    "--dns",
                    "localhost",
                ][..],
                "IP:PORT",
            ),
            (
                &["fetch", "com.example.a.b", "--into", "x", "--into", "y"][..],
                "twice",
            ),
            (
                &["fetch", "com.example.a.b", "--into", "x", "--frob", "y"][..],
                "unknown flag",
            ),
            (&["fetch", "not an nsid", "--into", "x"][..], "not an NSID"),
            (&["verify"][..], "usage"),
        ] {
            let error = parse(args(line), root).unwrap_err();
            assert!(error.contains(needle), "{line:?}: {error}");
        }
    }
}
