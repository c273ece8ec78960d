//! What the examples share: the account to use (from arguments or the environment) and a
//! password login into an in-memory session store.

// Each example uses a different subset of these helpers.
#![allow(dead_code)]

pub mod oauth;

use std::error::Error;
use std::sync::Arc;

use atlex::auth::{MemoryStore, PasswordSession};
use atlex::xrpc::Client;

/// The service and account an example runs against, and its other arguments.
pub struct Args {
    /// `--pds URL`, else `$ATLEX_PDS_URL`, else `https://bsky.social`.
    pub pds: String,
    /// `--handle HANDLE` (or a DID or email), else `$ATLEX_HANDLE`.
    pub handle: String,
    /// `--password PASSWORD` (an app password), else `$ATLEX_PASSWORD`.
    pub password: String,
    /// Everything else, in order, for the example to read.
    pub rest: Vec<String>,
}

/// Reads [`Args`] from the command line and the environment; the error names what is missing
/// and shows `usage`.
pub fn args(usage: &str) -> Result<Args, String> {
    let env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let (mut pds, mut handle, mut password) = (None, None, None);
    let mut rest = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "--pds" => &mut pds,
            "--handle" => &mut handle,
            "--password" => &mut password,
            "-h" | "--help" => return Err(usage.to_owned()),
            _ => {
                rest.push(arg);
                continue;
            }
        };
        *slot = Some(
            args.next()
                .ok_or_else(|| format!("{arg} needs a value\n{usage}"))?,
        );
    }
    let missing = |what: &str| format!("no {what} given\n{usage}");
    Ok(Args {
        pds: pds
            .or_else(|| env("ATLEX_PDS_URL"))
            .unwrap_or_else(|| "https://bsky.social".to_owned()),
        handle: handle
            .or_else(|| env("ATLEX_HANDLE"))
            .ok_or_else(|| missing("--handle (or ATLEX_HANDLE)"))?,
        password: password
            .or_else(|| env("ATLEX_PASSWORD"))
            .ok_or_else(|| missing("--password (or ATLEX_PASSWORD)"))?,
        rest,
    })
}

/// The value after `flag` in `rest` parsed as a number, else `default`.
pub fn number(rest: &[String], flag: &str, default: i64) -> Result<i64, String> {
    match rest.iter().position(|arg| arg == flag) {
        None => Ok(default),
        Some(at) => rest
            .get(at + 1)
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| format!("{flag} needs a number")),
    }
}

/// Logs in with the password; the session lives in memory for this run.
pub async fn login(args: &Args) -> Result<Client, Box<dyn Error>> {
    let store = Arc::new(MemoryStore::new());
    let client =
        PasswordSession::login(&args.pds, &args.handle, args.password.clone(), store).await?;
    Ok(client)
}
