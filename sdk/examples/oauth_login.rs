//! Sign in with OAuth from the command line (a loopback client), keep the session in SQLite,
//! and list the account's records. A second run restores the stored session without signing
//! in again.
//!
//! ```sh
//! cargo run -p atlex --example oauth_login -- --handle alice.bsky.social
//! cargo run -p atlex --example oauth_login -- --handle alice.bsky.social   # restored
//! ```
//!
//! The first run starts a callback server on `127.0.0.1` (a free port), prints the URL to open,
//! and opens it with `$BROWSER` (or `xdg-open` when there is a display); sign in and allow the
//! app there, and the browser comes back to the callback server. Options:
//!
//! * `--handle HANDLE` (or a DID; else `$ATLEX_HANDLE`);
//! * `--store PATH`: the SQLite file for the session (else `$ATLEX_OAUTH_STORE`, else
//!   `atlex-oauth.sqlite3`);
//! * `--collection NSID`: list only that collection (default: each collection of the repo);
//! * `--limit N`: records per collection (default 10);
//! * `--restore-only`: fail instead of signing in when no session is stored;
//! * `--sign-out`: revoke the stored session and delete it;
//! * `--timeout SECONDS`: how long to wait for the browser (default 300).
//!
//! With `$ATLEX_PDS_URL` set (a development PDS such as the reference PDS of the tests, with
//! `$ATLEX_PLC_URL`), handles are resolved by that PDS and plain `http` is allowed.

mod common;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use atlex::auth::oauth::{
    AuthorizeOptions, CallbackParams, ClientMetadata, OAuthClient, OAuthError,
};
use atlex::auth::{SessionStore, SqliteStore};
use atlex::com::atproto::repo::{describe_repo, list_records};
use atlex::types::{AtIdentifier, Did, Nsid};
use atlex::xrpc::Client;
use axum::extract::{RawQuery, State};
use axum::response::Html;
use tokio::sync::mpsc;

const USAGE: &str = "usage: oauth_login [--handle HANDLE] [--store PATH] [--collection NSID] \
                     [--limit N] [--restore-only] [--sign-out] [--timeout SECONDS]";
/// The scope asked for: the atproto base scope plus the transitional full access.
const SCOPE: &str = "atproto transition:generic";

struct Options {
    handle: String,
    store: String,
    collection: Option<String>,
    limit: i64,
    restore_only: bool,
    sign_out: bool,
    timeout: Duration,
}

fn options() -> Result<Options, String> {
    let mut handle = std::env::var("ATLEX_HANDLE").ok().filter(|v| !v.is_empty());
    let mut options = Options {
        handle: String::new(),
        store: std::env::var("ATLEX_OAUTH_STORE")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "atlex-oauth.sqlite3".to_owned()),
        collection: None,
        limit: 10,
        restore_only: false,
        sign_out: false,
        timeout: Duration::from_secs(300),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--handle" => handle = Some(value()?),
            "--store" => options.store = value()?,
            "--collection" => options.collection = Some(value()?),
            "--limit" => {
                options.limit = value()?
                    .parse()
                    .map_err(|_| format!("--limit needs a number\n{USAGE}"))?
            }
            "--timeout" => {
                options.timeout = Duration::from_secs(
                    value()?
                        .parse()
                        .map_err(|_| format!("--timeout needs a number of seconds\n{USAGE}"))?,
                )
            }
            "--restore-only" => options.restore_only = true,
            "--sign-out" => options.sign_out = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            _ => return Err(format!("unknown argument {arg:?}\n{USAGE}")),
        }
    }
    options.handle =
        handle.ok_or_else(|| format!("no --handle (or ATLEX_HANDLE) given\n{USAGE}"))?;
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("oauth_login: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), Box<dyn std::error::Error>> {
    let store: Arc<dyn SessionStore> = Arc::new(SqliteStore::open(&options.store).await?);
    let (resolver, dev) = common::oauth::resolver()?;
    // A loopback client: the redirect URI is registered without a port, so the callback
    // server may take any free one.
    let metadata = ClientMetadata::loopback(&["http://127.0.0.1/callback"], SCOPE)?;
    let oauth = OAuthClient::builder(metadata)
        .session_store(store.clone())
        .state_store(store)
        .identity_resolver(resolver)
        .allow_http(dev)
        .build()?;

    let did = oauth
        .identity_resolver()
        .resolve_str(&options.handle)
        .await?
        .did;
    if options.sign_out {
        oauth.revoke(&did).await?;
        println!("signed out {did}: the session is revoked and deleted");
        return Ok(());
    }
    let client = match oauth.restore(&did).await {
        Ok(client) => {
            println!(
                "restored the stored session of {did} from {}",
                options.store
            );
            client
        }
        Err(OAuthError::NoSession { .. }) if !options.restore_only => {
            let client = sign_in(&oauth, &options).await?;
            println!(
                "signed in as {did}; the session is stored in {}",
                options.store
            );
            client
        }
        Err(error) => return Err(error.into()),
    };
    list(&client, &did, &options).await
}

/// The loopback flow: a callback server on 127.0.0.1, the browser, the callback.
async fn sign_in(
    oauth: &OAuthClient,
    options: &Options,
) -> Result<Client, Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let redirect_uri = format!(
        "http://127.0.0.1:{}/callback",
        listener.local_addr()?.port()
    );
    let url = oauth
        .authorize(
            &options.handle,
            AuthorizeOptions::new().redirect_uri(&redirect_uri),
        )
        .await?;
    println!("Open this URL in a browser to sign in:\n\n  {url}\n");
    open_browser(url.as_str());

    // The callback handler finishes the flow itself, so the browser sees the outcome.
    let (done, mut outcome) = mpsc::channel::<Result<Client, OAuthError>>(1);
    let app = axum::Router::new()
        .route("/callback", axum::routing::get(callback))
        .with_state((oauth.clone(), done));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let result = tokio::time::timeout(options.timeout, outcome.recv()).await;
    server.abort();
    match result {
        Err(_) => Err(format!(
            "no callback within {} s (open the URL above)",
            options.timeout.as_secs()
        )
        .into()),
        Ok(None) => Err("the callback server stopped".into()),
        Ok(Some(result)) => Ok(result?),
    }
}

async fn callback(
    State((oauth, done)): State<(OAuthClient, mpsc::Sender<Result<Client, OAuthError>>)>,
    RawQuery(query): RawQuery,
) -> Html<String> {
    let result = oauth
        .callback(CallbackParams::from_query(query.as_deref().unwrap_or("")))
        .await;
    let page = match &result {
        Ok(_) => "<h1>Signed in</h1><p>You can close this tab and go back to the terminal.</p>"
            .to_owned(),
        Err(error) => format!(
            "<h1>Sign-in failed</h1><p>{}</p>",
            escape(&error.to_string())
        ),
    };
    let _ = done.send(result.map(|authorized| authorized.client)).await;
    Html(page)
}

/// Opens `url` with `$BROWSER`, else with `xdg-open` when there is a display; otherwise the
/// printed URL is all there is.
fn open_browser(url: &str) {
    let program = match std::env::var("BROWSER").ok().filter(|b| !b.is_empty()) {
        Some(browser) => browser,
        None if std::env::var_os("DISPLAY").is_some()
            || std::env::var_os("WAYLAND_DISPLAY").is_some() =>
        {
            "xdg-open".to_owned()
        }
        None => return,
    };
    match std::process::Command::new(&program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .spawn()
    {
        Ok(_) => println!("(opened with {program})"),
        Err(error) => eprintln!("could not run {program}: {error}; open the URL by hand"),
    }
}

/// Lists the account's records: each collection of the repo (or the one asked for).
async fn list(
    client: &Client,
    did: &Did,
    options: &Options,
) -> Result<(), Box<dyn std::error::Error>> {
    let (repo, client) = client
        .com_atproto()
        .repo()
        .describe_repo(describe_repo::Params::new(AtIdentifier::Did(did.clone())))
        .await?;
    let collections: Vec<Nsid> = match &options.collection {
        Some(nsid) => vec![Nsid::new(nsid.as_str())?],
        None => repo.collections,
    };
    println!("@{} has {} collection(s)", repo.handle, collections.len());
    let mut client = client;
    for collection in collections {
        let params = list_records::Params::new(AtIdentifier::Did(did.clone()), collection.clone())
            .limit(options.limit);
        let (page, next) = client.com_atproto().repo().list_records(params).await?;
        client = next;
        println!("--- {collection}: {} record(s)", page.records.len());
        for record in &page.records {
            println!("{}", record.uri);
        }
    }
    Ok(())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
