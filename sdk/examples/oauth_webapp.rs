//! A small web app that signs its users in with atproto OAuth as a **confidential client**,
//! shows their recent posts and lets them post.
//!
//! ```sh
//! cargo run -p atlex --example oauth_webapp -- \
//!     --public-url https://app.example.com --listen 127.0.0.1:8080 \
//!     --keys webapp-keys.json --generate-keys --store sqlite:webapp.sqlite3
//! ```
//!
//! * It serves its client metadata document at `<public-url>/client-metadata.json` (that URL is
//!   its `client_id`) and its public JWKS at `<public-url>/jwks.json`; the authorization server
//!   fetches both. The private keys (`private_key_jwt`, ES256) are in `--keys` (a private JWK
//!   set; `--generate-keys` creates the file when it is missing). Every process of the app must
//!   use the same keys: the server binds each session to the key it was created with.
//! * `/` shows a handle form; `POST /login` sends the browser to the user's authorization
//!   server; `/callback` finishes the sign-in and sets the app's own session cookie; `/` then
//!   lists the user's recent posts with a form to post (`POST /post`); `POST /logout` revokes.
//!   Each browser's sign-in is its own OAuth session of the account (a random
//!   [`SessionId`](atlex::auth::SessionId) kept in the app's cookie session): a user signed in
//!   from two browsers signs out of one and stays signed in on the other.
//! * `--store` holds the OAuth sessions, the pending authorizations and the app's cookie
//!   sessions: `sqlite:PATH` (default `sqlite:atlex-webapp.sqlite3`), or with the `postgres`
//!   feature a `postgres://…` URL (`--pg-schema NAME`, default `atlex`), or with the `redis`
//!   feature a `redis://…` URL (`--redis-prefix P`). Several processes behind one PostgreSQL or
//!   Redis store serve the same users: a user may sign in through one and post through another
//!   (refreshes are locked across processes by the store).
//! * `--public-url` is the `https` origin the browser and the authorization server use (a
//!   TLS-terminating proxy in front of `--listen`); `--name` is shown in the page footer, to
//!   tell processes apart.
//!
//! With `$ATLEX_PDS_URL` set (a development PDS, with `$ATLEX_PLC_URL`), handles are resolved
//! by that PDS and plain `http` is allowed toward it.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use atlex::app::bsky::feed::post::Post;
use atlex::auth::oauth::{
    AuthorizeOptions, CallbackParams, ClientMetadata, Keyset, OAuthClient, OAuthError,
};
use atlex::auth::{SessionData, SessionId, SessionStore, SqliteStore};
use atlex::com::atproto::repo::list_records;
use atlex::types::{AtIdentifier, Datetime, Did};
use atlex::xrpc::Client;
use axum::extract::{Form, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

const USAGE: &str = "usage: oauth_webapp --public-url URL [--listen ADDR] [--keys PATH] \
                     [--generate-keys] [--store sqlite:PATH|postgres://…|redis://…] \
                     [--pg-schema NAME] [--redis-prefix PREFIX] [--name NAME]";
const SCOPE: &str = "atproto transition:generic";
/// The app's cookie: a random id naming an app session in the store.
const COOKIE: &str = "atlex_webapp";
/// How long an app session (the browser's sign-in to this app) lasts.
const APP_SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest post text accepted from the form (the lexicon then checks graphemes).
const MAX_POST_BYTES: usize = 3000;

struct Options {
    public_url: String,
    listen: SocketAddr,
    keys: PathBuf,
    generate_keys: bool,
    store: String,
    pg_schema: String,
    redis_prefix: String,
    name: String,
}

fn options() -> Result<Options, String> {
    let mut public_url = None;
    let mut options = Options {
        public_url: String::new(),
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        keys: PathBuf::from("atlex-webapp-keys.json"),
        generate_keys: false,
        store: "sqlite:atlex-webapp.sqlite3".to_owned(),
        pg_schema: "atlex".to_owned(),
        redis_prefix: "atlex:".to_owned(),
        name: "atlex web app".to_owned(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--public-url" => public_url = Some(value()?),
            "--listen" => {
                options.listen = value()?
                    .parse()
                    .map_err(|e| format!("--listen: {e}\n{USAGE}"))?
            }
            "--keys" => options.keys = PathBuf::from(value()?),
            "--generate-keys" => options.generate_keys = true,
            "--store" => options.store = value()?,
            "--pg-schema" => options.pg_schema = value()?,
            "--redis-prefix" => options.redis_prefix = value()?,
            "--name" => options.name = value()?,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            _ => return Err(format!("unknown argument {arg:?}\n{USAGE}")),
        }
    }
    options.public_url = public_url
        .ok_or_else(|| format!("no --public-url given\n{USAGE}"))?
        .trim_end_matches('/')
        .to_owned();
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
            eprintln!("oauth_webapp: {error}");
            ExitCode::FAILURE
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
struct App {
    oauth: OAuthClient,
    store: Arc<dyn SessionStore>,
    name: Arc<str>,
    secure_cookie: bool,
}

async fn run(options: Options) -> Result<(), Box<dyn std::error::Error>> {
    let store = open_store(&options).await?;
    let keyset = load_keys(&options.keys, options.generate_keys)?;
    let (resolver, dev) = common::oauth::resolver()?;
    let base = &options.public_url;
    let metadata = ClientMetadata::discoverable(
        &format!("{base}/client-metadata.json"),
        &[format!("{base}/callback")],
        SCOPE,
    )
    .confidential(&format!("{base}/jwks.json"))
    .with_name(&options.name)
    .with_client_uri(base);
    let oauth = OAuthClient::builder(metadata)
        .keyset(keyset)
        .session_store(store.clone())
        .state_store(store.clone())
        .identity_resolver(resolver)
        .allow_http(dev)
        .build()?;
    let app = App {
        oauth,
        store,
        name: Arc::from(options.name.as_str()),
        secure_cookie: base.starts_with("https://"),
    };
    let router = axum::Router::new()
        .route("/", get(home))
        .route("/client-metadata.json", get(client_metadata))
        .route("/jwks.json", get(jwks))
        .route("/login", post(login))
        .route("/callback", get(callback))
        .route("/post", post(create_post))
        .route("/logout", post(logout))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    // The line a supervisor (or the browser test) waits for.
    println!(
        "listening on http://{} as {base} ({})",
        listener.local_addr()?,
        options.name
    );
    axum::serve(listener, router).await?;
    Ok(())
}

async fn open_store(
    options: &Options,
) -> Result<Arc<dyn SessionStore>, Box<dyn std::error::Error>> {
    let url = options.store.as_str();
    if let Some(path) = url.strip_prefix("sqlite:") {
        return Ok(Arc::new(SqliteStore::open(path).await?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        {
            let store = atlex::auth::PostgresStore::connect_with(
                url,
                atlex::auth::PostgresStoreOptions::new().schema(options.pg_schema.clone()),
            )
            .await?;
            return Ok(Arc::new(store));
        }
        #[cfg(not(feature = "postgres"))]
        return Err(format!("{url}: build the example with --features postgres").into());
    }
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        #[cfg(feature = "redis")]
        {
            let store = atlex::auth::RedisStore::connect_with(
                url,
                atlex::auth::RedisStoreOptions::new().prefix(options.redis_prefix.clone()),
            )
            .await?;
            return Ok(Arc::new(store));
        }
        #[cfg(not(feature = "redis"))]
        return Err(format!("{url}: build the example with --features redis").into());
    }
    let _ = (&options.pg_schema, &options.redis_prefix);
    Err(format!("--store {url:?}: expected sqlite:PATH, postgres://… or redis://…").into())
}

/// Reads the private JWK set at `path`; with `generate`, creates it first when it is missing
/// (written to a temporary file and linked into place, so processes started together all end
/// up with the one set that won).
fn load_keys(path: &Path, generate: bool) -> Result<Keyset, Box<dyn std::error::Error>> {
    if generate && !path.exists() {
        let keyset = Keyset::generate("webapp-key-1")?;
        let temporary = path.with_extension(format!("tmp.{}", std::process::id()));
        write_private(&temporary, keyset.to_private_jwks().expose().as_bytes())?;
        let linked = std::fs::hard_link(&temporary, path);
        let _ = std::fs::remove_file(&temporary);
        match linked {
            Ok(()) => println!("generated the client keys in {}", path.display()),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(format!("{}: {error}", path.display()).into()),
        }
    }
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("reading the client keys {}: {error}", path.display()))?;
    let jwks: serde_json::Value = serde_json::from_str(&text)
        .map_err(|error| format!("{}: not JSON: {error}", path.display()))?;
    Ok(Keyset::from_private_jwks(&jwks)?)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

// ---- the app's own sessions (cookie → DID), kept in the same store ----

#[derive(serde::Serialize, Deserialize)]
struct AppSession {
    did: String,
    /// The browser's own OAuth session of the account (`oauth:<did>#<id>`): a user signed in
    /// from two browsers has two, and signing out of one leaves the other.
    #[serde(default)]
    oauth_session: Option<String>,
    /// Sent back by the forms (with the SameSite=Lax cookie, against cross-site posts).
    csrf: String,
}

fn random_id() -> Result<String, String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|error| format!("no random source: {error}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn cookie_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|id| id.len() == 48 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

async fn app_session(
    app: &App,
    headers: &HeaderMap,
) -> Result<Option<(String, AppSession)>, String> {
    let Some(id) = cookie_id(headers) else {
        return Ok(None);
    };
    let Some(data) = app
        .store
        .get(&format!("webapp:{id}"))
        .await
        .map_err(|error| error.to_string())?
    else {
        return Ok(None);
    };
    let session: AppSession = serde_json::from_str(data.as_str()).map_err(|e| e.to_string())?;
    Ok(Some((id, session)))
}

// ---- pages ----

fn page(app: &App, title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>{title}</title>\
         <style>body{{font-family:sans-serif;max-width:40em;margin:2em auto}}\
         li{{margin:.4em 0}} footer{{margin-top:3em;color:#777}}</style></head>\
         <body><h1>{title}</h1>{body}<footer>served by <span id=served-by>{}</span></footer>\
         </body></html>",
        escape(&app.name)
    ))
}

fn error_page(app: &App, status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<p id=error>{}</p><p><a href=\"/\">Back</a></p>",
        escape(message)
    );
    (status, page(app, "Something went wrong", &body)).into_response()
}

async fn home(State(app): State<App>, headers: HeaderMap) -> Response {
    let session = match app_session(&app, &headers).await {
        Ok(session) => session,
        Err(error) => return error_page(&app, StatusCode::INTERNAL_SERVER_ERROR, &error),
    };
    let Some((_, session)) = session else {
        let body = "<form method=post action=/login>\
                    <label>Your handle <input id=handle name=handle required \
                    placeholder=alice.bsky.social></label> \
                    <button id=sign-in type=submit>Sign in</button></form>";
        return page(&app, "Sign in", body).into_response();
    };
    match recent_posts(&app, &session).await {
        Ok(posts) => {
            let items: String = posts
                .iter()
                .map(|(uri, text)| {
                    format!(
                        "<li class=post data-uri=\"{}\">{}</li>",
                        escape(uri),
                        escape(text)
                    )
                })
                .collect();
            let body = format!(
                "<p>Signed in as <code id=did>{did}</code></p>\
                 <form method=post action=/post><input type=hidden name=csrf value={csrf}>\
                 <textarea id=text name=text rows=3 cols=50 required></textarea><br>\
                 <button id=post type=submit>Post</button></form>\
                 <h2>Recent posts</h2><ul id=posts>{items}</ul>\
                 <form method=post action=/logout><input type=hidden name=csrf value={csrf}>\
                 <button id=sign-out type=submit>Sign out</button></form>",
                did = escape(&session.did),
                csrf = escape(&session.csrf),
            );
            page(&app, "Your posts", &body).into_response()
        }
        Err(Failure::SignedOut) => signed_out(&app, &headers).await,
        Err(Failure::Other(error)) => error_page(&app, StatusCode::BAD_GATEWAY, &error),
    }
}

enum Failure {
    /// The OAuth session is gone (revoked, expired refresh, never there): sign in again.
    SignedOut,
    Other(String),
}

impl From<OAuthError> for Failure {
    fn from(error: OAuthError) -> Failure {
        match error {
            OAuthError::NoSession { .. } => Failure::SignedOut,
            other => Failure::Other(other.to_string()),
        }
    }
}

/// The browser's OAuth session (the account's default one for app sessions from before
/// session ids).
async fn oauth_client(app: &App, session: &AppSession) -> Result<(Did, Client), Failure> {
    let did = Did::new(session.did.as_str()).map_err(|error| Failure::Other(error.to_string()))?;
    let client = match session.oauth_session.as_deref().map(SessionId::new) {
        Some(Ok(id)) => app.oauth.restore_id(&did, &id).await?,
        Some(Err(error)) => return Err(Failure::Other(error.to_string())),
        None => app.oauth.restore(&did).await?,
    };
    Ok((did, client))
}

/// The account's latest `app.bsky.feed.post` records: (URI, text), newest first.
async fn recent_posts(app: &App, session: &AppSession) -> Result<Vec<(String, String)>, Failure> {
    let (did, client) = oauth_client(app, session).await?;
    let params =
        list_records::Params::new(AtIdentifier::Did(did), atlex::nsid!("app.bsky.feed.post"))
            .limit(20);
    let (page, _client) = client
        .com_atproto()
        .repo()
        .list_records(params)
        .await
        .map_err(|error| Failure::Other(error.to_string()))?;
    Ok(page
        .records
        .iter()
        .map(|record| {
            let text = serde_json::to_value(&record.value)
                .ok()
                .and_then(|value| value.get("text")?.as_str().map(str::to_owned))
                .unwrap_or_default();
            (record.uri.to_string(), text)
        })
        .collect())
}

async fn signed_out(app: &App, headers: &HeaderMap) -> Response {
    if let Some(id) = cookie_id(headers) {
        let _ = app.store.delete(&format!("webapp:{id}")).await;
    }
    let mut response = Redirect::to("/").into_response();
    set_cookie(&mut response, app, "", Duration::ZERO);
    response
}

async fn client_metadata(State(app): State<App>) -> Response {
    axum::Json(app.oauth.client_metadata_document()).into_response()
}

async fn jwks(State(app): State<App>) -> Response {
    axum::Json(app.oauth.jwks()).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    handle: String,
}

async fn login(State(app): State<App>, Form(form): Form<LoginForm>) -> Response {
    let handle = form.handle.trim().trim_start_matches('@');
    // Each browser signs in to its own OAuth session of the account.
    let id = match SessionId::generate() {
        Ok(id) => id,
        Err(error) => {
            return error_page(&app, StatusCode::INTERNAL_SERVER_ERROR, &error.to_string());
        }
    };
    match app
        .oauth
        .authorize(handle, AuthorizeOptions::new().session_id(id))
        .await
    {
        Ok(url) => Redirect::to(url.as_str()).into_response(),
        Err(error) => error_page(
            &app,
            StatusCode::BAD_REQUEST,
            &format!("Cannot sign in {handle}: {error}"),
        ),
    }
}

async fn callback(State(app): State<App>, RawQuery(query): RawQuery) -> Response {
    let params = CallbackParams::from_query(query.as_deref().unwrap_or(""));
    let authorized = match app.oauth.callback(params).await {
        Ok(authorized) => authorized,
        Err(OAuthError::AuthorizationDenied { .. }) => {
            return error_page(&app, StatusCode::FORBIDDEN, "You did not allow the app.");
        }
        Err(error) => {
            return error_page(
                &app,
                StatusCode::BAD_REQUEST,
                &format!("Sign-in failed: {error}"),
            );
        }
    };
    let (id, csrf) = match (random_id(), random_id()) {
        (Ok(id), Ok(csrf)) => (id, csrf),
        (Err(error), _) | (_, Err(error)) => {
            return error_page(&app, StatusCode::INTERNAL_SERVER_ERROR, &error);
        }
    };
    let session = AppSession {
        did: authorized.session.did.to_string(),
        oauth_session: authorized.session.session_id.map(|id| id.to_string()),
        csrf,
    };
    let stored = match serde_json::to_string(&session) {
        Ok(json) => {
            app.store
                .set_expiring(
                    &format!("webapp:{id}"),
                    &SessionData::new(json),
                    APP_SESSION_TTL,
                )
                .await
        }
        Err(error) => {
            return error_page(&app, StatusCode::INTERNAL_SERVER_ERROR, &error.to_string());
        }
    };
    if let Err(error) = stored {
        return error_page(&app, StatusCode::INTERNAL_SERVER_ERROR, &error.to_string());
    }
    let mut response = Redirect::to("/").into_response();
    set_cookie(&mut response, &app, &id, APP_SESSION_TTL);
    response
}

#[derive(Deserialize)]
struct PostForm {
    csrf: String,
    text: String,
}

async fn create_post(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<PostForm>,
) -> Response {
    let session = match app_session(&app, &headers).await {
        Ok(Some((_, session))) if session.csrf == form.csrf => session,
        Ok(_) => return error_page(&app, StatusCode::FORBIDDEN, "Not signed in."),
        Err(error) => return error_page(&app, StatusCode::INTERNAL_SERVER_ERROR, &error),
    };
    let text = form.text.trim();
    if text.is_empty() || text.len() > MAX_POST_BYTES {
        return error_page(
            &app,
            StatusCode::BAD_REQUEST,
            "A post needs 1 to 300 characters.",
        );
    }
    let result: Result<(), Failure> = async {
        let (_, client) = oauth_client(&app, &session).await?;
        let post = Post::new(text.to_owned(), Datetime::now());
        client
            .create_record(&post)
            .await
            .map_err(|error| Failure::Other(error.to_string()))?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Redirect::to("/").into_response(),
        Err(Failure::SignedOut) => signed_out(&app, &headers).await,
        Err(Failure::Other(error)) => error_page(
            &app,
            StatusCode::BAD_GATEWAY,
            &format!("Posting failed: {error}"),
        ),
    }
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: String,
}

async fn logout(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    match app_session(&app, &headers).await {
        Ok(Some((_, session))) if session.csrf == form.csrf => {
            if let Ok(did) = Did::new(session.did.as_str()) {
                // This browser's session only: revoked at the server (best effort), always
                // deleted from the store.
                let id = session
                    .oauth_session
                    .as_deref()
                    .and_then(|id| SessionId::new(id).ok());
                let key = OAuthClient::session_key(&did, id.as_ref());
                let _ = app.oauth.revoke_session(&key).await;
            }
            signed_out(&app, &headers).await
        }
        Ok(_) => error_page(&app, StatusCode::FORBIDDEN, "Not signed in."),
        Err(error) => error_page(&app, StatusCode::INTERNAL_SERVER_ERROR, &error),
    }
}

fn set_cookie(response: &mut Response, app: &App, value: &str, max_age: Duration) {
    let secure = if app.secure_cookie { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        max_age.as_secs()
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
