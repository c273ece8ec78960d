//! A stand-in for the user's browser, for OAuth examples run without one: the `examples` step
//! of `cargo xtask test` sets `BROWSER` to this program, so `oauth_login` "opens" its
//! authorization URL here. It signs in on the reference PDS as `$ATLEX_HANDLE` with
//! `$ATLEX_PASSWORD` and allows the app (`atlex_pds_harness::oauth`), then follows the final
//! redirect to the app's callback server, as a browser would.
//!
//! ```sh
//! ATLEX_HANDLE=… ATLEX_PASSWORD=… cargo run -q -p atlex-tests --bin oauth-browser -- URL
//! ```
//!
//! `--reject` denies the request instead; `--print` prints the callback URL on stdout instead
//! of following it. Exits non-zero when a step fails (the password is
//! never shown).

use std::process::ExitCode;

use atlex_pds_harness::oauth::{Decision, Driver};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut url = None;
    let mut decision = Decision::Accept;
    let mut print = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--reject" => decision = Decision::Reject,
            "--print" => print = true,
            _ if url.is_none() => url = Some(arg),
            _ => {
                eprintln!("oauth-browser: unexpected argument {arg:?}");
                return ExitCode::from(2);
            }
        }
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(url), Some(handle), Some(password)) =
        (url, env("ATLEX_HANDLE"), env("ATLEX_PASSWORD"))
    else {
        eprintln!("usage: ATLEX_HANDLE=… ATLEX_PASSWORD=… oauth-browser [--reject] [--print] URL");
        return ExitCode::from(2);
    };
    let mut driver = match Driver::new() {
        Ok(driver) => driver,
        Err(error) => {
            eprintln!("oauth-browser: {error}");
            return ExitCode::FAILURE;
        }
    };
    let callback = match driver.authorize(&url, &handle, &password, decision).await {
        Ok(callback) => callback,
        Err(error) => {
            eprintln!("oauth-browser: {error}");
            return ExitCode::FAILURE;
        }
    };
    if print {
        println!("{}", callback.url);
        return ExitCode::SUCCESS;
    }
    match driver.deliver(&callback).await {
        Ok((status, _)) if (200..300).contains(&status) => {
            eprintln!("oauth-browser: signed in as {handle}; the app's callback answered {status}");
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            eprintln!("oauth-browser: the app's callback answered {status}: {body}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("oauth-browser: {error}");
            ExitCode::FAILURE
        }
    }
}
