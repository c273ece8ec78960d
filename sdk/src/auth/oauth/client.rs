//! [`OAuthClient`]: the app-level object (built once), the authorization flow, restore and
//! revoke.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use atlex_types::{AtIdentifier, Did};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;
use url::Url;

use super::dpop::NonceCache;
use super::error::{DeleteCause, OAuthError};
use super::jose::{Es256Key, PrivateJwk, random_b64url, sha256_b64url};
use super::keyset::Keyset;
use super::metadata::{
    ATPROTO_SCOPE, AuthMethod, AuthorizationServerMetadata, ClientMetadata, check_issuer,
    check_oauth_url, is_valid_scope, scope_contains,
};
use super::server::{
    Context, ISSUER_CHECK_TIMEOUT, METADATA_CACHE_SIZE, METADATA_CACHE_TTL, METADATA_TIMEOUT,
    MetadataCache, REQUEST_TIMEOUT, TokenSet,
};
use super::session::{Events, KIND, OAuthSession, SessionEvent, SessionInfo, StoredSession};
use crate::auth::refresh::unix_now;
use crate::auth::session_key::{Lookup, SessionId, SessionKey};
use crate::auth::store::{DEFAULT_LOCK_TIMEOUT, SessionData, SessionStore};
use crate::identity::{HandleStatus, IdentityResolver};
use crate::net::fetch::Fetcher;
use crate::xrpc::{Client, Secret};

/// How long a pending authorization (the state of an unfinished sign-in) is kept by default.
pub const DEFAULT_STATE_TTL: Duration = Duration::from_secs(10 * 60);
/// The store key prefix of pending authorizations.
const STATE_PREFIX: &str = "oauth-state:";

/// Options of one [`OAuthClient::authorize`].
#[derive(Debug, Clone, Default)]
pub struct AuthorizeOptions {
    /// The scope to request (a subset of the client metadata's scope; default: all of it).
    pub scope: Option<String>,
    /// State the app wants back at the callback (never sent to the server: it stays in the
    /// state store).
    pub app_state: Option<String>,
    /// `prompt` (`login`, `consent`, `select_account`, `none`, `create`).
    pub prompt: Option<String>,
    /// `ui_locales`.
    pub ui_locales: Option<String>,
    /// `display`.
    pub display: Option<String>,
    /// The redirect URI (one of the registered ones; default the first).
    pub redirect_uri: Option<String>,
    /// The session id to store the session under, for several sessions per account (one
    /// per device or browser): `oauth:<did>#<session id>`. Default `None`: the account's
    /// default session, `oauth:<did>`. An authorization for an account and session id that
    /// already has a stored session replaces (and revokes) that one only.
    pub session_id: Option<SessionId>,
}

impl AuthorizeOptions {
    /// Default options.
    pub fn new() -> AuthorizeOptions {
        AuthorizeOptions::default()
    }

    /// Sets the scope.
    #[must_use]
    pub fn scope(mut self, scope: &str) -> Self {
        self.scope = Some(scope.to_owned());
        self
    }

    /// Sets the app state.
    #[must_use]
    pub fn app_state(mut self, state: &str) -> Self {
        self.app_state = Some(state.to_owned());
        self
    }

    /// Sets `prompt`.
    #[must_use]
    pub fn prompt(mut self, prompt: &str) -> Self {
        self.prompt = Some(prompt.to_owned());
        self
    }

    /// Sets `ui_locales`.
    #[must_use]
    pub fn ui_locales(mut self, locales: &str) -> Self {
        self.ui_locales = Some(locales.to_owned());
        self
    }

    /// Sets the redirect URI.
    #[must_use]
    pub fn redirect_uri(mut self, uri: &str) -> Self {
        self.redirect_uri = Some(uri.to_owned());
        self
    }

    /// Sets the session id (see [`SessionId::new`] and [`SessionId::generate`]).
    #[must_use]
    pub fn session_id(mut self, id: SessionId) -> Self {
        self.session_id = Some(id);
        self
    }
}

/// The query parameters of the redirect back to the app.
#[derive(Clone, Default)]
pub struct CallbackParams {
    pairs: Vec<(String, String)>,
}

impl CallbackParams {
    /// From a query string (`state=…&iss=…&code=…`, with or without the leading `?`).
    pub fn from_query(query: &str) -> CallbackParams {
        let query = query.strip_prefix('?').unwrap_or(query);
        CallbackParams {
            pairs: url::form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// From the full redirect URL.
    pub fn from_url(url: &Url) -> CallbackParams {
        CallbackParams::from_query(url.query().unwrap_or(""))
    }

    /// From name/value pairs (e.g. a web framework's parsed query).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> CallbackParams {
        CallbackParams {
            pairs: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `code` and `state` are secrets; the names are enough.
        f.debug_struct("CallbackParams")
            .field(
                "names",
                &self
                    .pairs
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A successful callback: the client for the new session and the app's state.
#[derive(Debug)]
pub struct Authorized {
    /// An XRPC client authenticated by the new session (typed calls, `get`/`post`, blobs).
    pub client: Client,
    /// The state the app passed to [`OAuthClient::authorize`].
    pub app_state: Option<String>,
    /// The session (account, granted scope, PDS).
    pub session: SessionInfo,
}

/// A pending authorization, stored under its `state` until the callback (single use).
#[derive(Serialize, Deserialize)]
struct PendingAuthorization {
    version: u32,
    issuer: String,
    dpop_key: PrivateJwk,
    auth_method: AuthMethod,
    verifier: Secret,
    redirect_uri: String,
    /// The DID the flow started from (handle or DID input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expected_did: Option<Did>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    app_state: Option<String>,
    /// Version 1 always wrote one, `default` for the default session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session_id: Option<SessionId>,
}

/// The `version` of pending authorizations written now (2: no `session_id` for the default
/// session).
const PENDING_VERSION: u32 = 2;

/// Builds an [`OAuthClient`].
pub struct OAuthClientBuilder {
    metadata: ClientMetadata,
    keyset: Option<Keyset>,
    sessions: Option<Arc<dyn SessionStore>>,
    states: Option<Arc<dyn SessionStore>>,
    resolver: Option<IdentityResolver>,
    allow_http: bool,
    state_ttl: Duration,
    xrpc: Option<Client>,
    timeouts: Timeouts,
    metadata_cache_ttl: Duration,
}

/// The time limits of an [`OAuthClient`] (see the builder's setters).
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    metadata: Duration,
    request: Duration,
    issuer_check: Duration,
}

impl OAuthClientBuilder {
    /// The time one metadata fetch (protected-resource or authorization-server metadata) may
    /// take, connecting included (default [`METADATA_TIMEOUT`](super::METADATA_TIMEOUT)).
    /// Identity lookups (handles, DID documents) follow the
    /// [`identity_resolver`](Self::identity_resolver)'s own timeouts.
    pub fn metadata_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.metadata = timeout;
        self
    }

    /// The time one request to an OAuth endpoint (PAR, token, revocation) may take (default
    /// [`REQUEST_TIMEOUT`](super::REQUEST_TIMEOUT)).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.request = timeout;
        self
    }

    /// The time the issuer check after each token response may take in all (DID document,
    /// protected-resource metadata; default
    /// [`ISSUER_CHECK_TIMEOUT`](super::ISSUER_CHECK_TIMEOUT)).
    pub fn issuer_check_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.issuer_check = timeout;
        self
    }

    /// How long validated authorization-server metadata (per issuer) and the sign-in input's
    /// protected-resource metadata (per PDS origin) are reused (default
    /// [`METADATA_CACHE_TTL`](super::METADATA_CACHE_TTL); at most
    /// [`METADATA_CACHE_SIZE`](super::METADATA_CACHE_SIZE) entries each). Zero turns the
    /// caches off. The issuer check after each token response never uses them.
    pub fn metadata_cache_ttl(mut self, ttl: Duration) -> Self {
        self.metadata_cache_ttl = ttl;
        self
    }

    /// The keyset of a confidential client (required for `private_key_jwt`).
    pub fn keyset(mut self, keyset: Keyset) -> Self {
        self.keyset = Some(keyset);
        self
    }

    /// Where sessions are kept (required). Any store: memory, file, SQLite, PostgreSQL,
    /// Redis, optionally encrypted.
    pub fn session_store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.sessions = Some(store);
        self
    }

    /// Where pending authorizations are kept (default: the session store). They expire after
    /// [`state_ttl`](Self::state_ttl).
    pub fn state_store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.states = Some(store);
        self
    }

    /// How long a pending authorization lives (default [`DEFAULT_STATE_TTL`]).
    pub fn state_ttl(mut self, ttl: Duration) -> Self {
        self.state_ttl = ttl;
        self
    }

    /// The identity resolver (default: [`IdentityResolver`] with default settings and this
    /// builder's `allow_http`). Configure its PLC URL and handle methods for development.
    pub fn identity_resolver(mut self, resolver: IdentityResolver) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// Allows plain `http` for metadata, authorization servers, PDSs and endpoints
    /// (development against a local PDS only; default off).
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// The XRPC client whose HTTP settings (timeouts, retries, user agent) the session
    /// clients use (default: a client with default settings).
    pub fn xrpc_client(mut self, client: Client) -> Self {
        self.xrpc = Some(client);
        self
    }

    /// Validates the metadata and keyset and builds the client.
    pub fn build(self) -> Result<OAuthClient, OAuthError> {
        self.metadata.validate()?;
        if self.metadata.is_confidential() && self.keyset.is_none() {
            return Err(OAuthError::InvalidKeyset {
                reason: "a confidential client (`private_key_jwt`) needs a keyset".to_owned(),
            });
        }
        if let (Some(keyset), Some(jwks)) = (&self.keyset, &self.metadata.jwks) {
            let listed: Vec<&str> = jwks
                .get("keys")
                .and_then(Value::as_array)
                .map(|keys| {
                    keys.iter()
                        .filter_map(|k| k.get("kid").and_then(Value::as_str))
                        .collect()
                })
                .unwrap_or_default();
            if let Some(first) = keyset.first()
                && !listed.contains(&first.kid())
            {
                return Err(OAuthError::InvalidKeyset {
                    reason: format!("the key {:?} is not in the metadata's `jwks`", first.kid()),
                });
            }
        }
        let sessions = self.sessions.ok_or_else(|| OAuthError::InvalidRequest {
            reason: "the OAuth client needs a session store".to_owned(),
        })?;
        let states = self.states.unwrap_or_else(|| Arc::clone(&sessions));
        let resolver = match self.resolver {
            Some(resolver) => resolver,
            None => IdentityResolver::builder()
                .allow_http(self.allow_http)
                .build()?,
        };
        let fetcher = Fetcher::builder()
            .allow_http(self.allow_http)
            .timeout(self.timeouts.metadata)
            .connect_timeout(self.timeouts.metadata.min(Duration::from_secs(5)))
            .max_body(super::server::MAX_METADATA_BYTES)
            .build()
            .map_err(|error| OAuthError::InvalidRequest {
                reason: error.to_string(),
            })?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.timeouts.request.min(Duration::from_secs(5)))
            .timeout(self.timeouts.request)
            .user_agent(concat!("atlex/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .build()
            .map_err(|error| OAuthError::InvalidRequest {
                reason: format!("cannot build the HTTP client: {error}"),
            })?;
        let (events, _) = broadcast::channel(256);
        Ok(OAuthClient {
            inner: Arc::new(Inner {
                ctx: Arc::new(Context {
                    metadata: self.metadata,
                    keyset: self.keyset,
                    resolver,
                    fetcher,
                    http,
                    allow_http: self.allow_http,
                    nonces: Arc::new(NonceCache::new()),
                    request_timeout: self.timeouts.request,
                    issuer_check_timeout: self.timeouts.issuer_check,
                    servers: MetadataCache::new(self.metadata_cache_ttl, METADATA_CACHE_SIZE),
                    resources: MetadataCache::new(self.metadata_cache_ttl, METADATA_CACHE_SIZE),
                }),
                sessions,
                states,
                state_ttl: self.state_ttl,
                xrpc: self.xrpc,
                events,
            }),
        })
    }
}

struct Inner {
    ctx: Arc<Context>,
    sessions: Arc<dyn SessionStore>,
    states: Arc<dyn SessionStore>,
    state_ttl: Duration,
    xrpc: Option<Client>,
    events: Events,
}

/// The atproto OAuth client of an app. Build it once ([`OAuthClient::builder`]) and share it
/// (clones share everything). See the [module docs](super) for the flow.
#[derive(Clone)]
pub struct OAuthClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.inner.ctx.metadata.client_id)
            .field("allow_http", &self.inner.ctx.allow_http)
            .field("confidential", &self.inner.ctx.keyset.is_some())
            .finish_non_exhaustive()
    }
}

impl OAuthClient {
    /// Starts a builder for a client with `metadata`.
    pub fn builder(metadata: ClientMetadata) -> OAuthClientBuilder {
        OAuthClientBuilder {
            metadata,
            keyset: None,
            sessions: None,
            states: None,
            resolver: None,
            allow_http: false,
            state_ttl: DEFAULT_STATE_TTL,
            xrpc: None,
            timeouts: Timeouts {
                metadata: METADATA_TIMEOUT,
                request: REQUEST_TIMEOUT,
                issuer_check: ISSUER_CHECK_TIMEOUT,
            },
            metadata_cache_ttl: METADATA_CACHE_TTL,
        }
    }

    /// The client metadata.
    pub fn metadata(&self) -> &ClientMetadata {
        &self.inner.ctx.metadata
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.inner.ctx.metadata.client_id
    }

    /// The metadata document a discoverable client serves at its `client_id` (status 200,
    /// `Content-Type: application/json`, no redirect).
    pub fn client_metadata_document(&self) -> Value {
        self.inner.ctx.metadata.to_document()
    }

    /// The public JWKS a confidential client serves at its `jwks_uri` (an empty set for a
    /// public client).
    pub fn jwks(&self) -> Value {
        match &self.inner.ctx.keyset {
            Some(keyset) => keyset.public_jwks(),
            None => serde_json::json!({ "keys": [] }),
        }
    }

    /// Subscribes to session events (updated after each login and refresh, deleted with the
    /// cause). Events from before the subscription are not seen.
    pub fn events(&self) -> broadcast::Receiver<SessionEvent> {
        self.inner.events.subscribe()
    }

    /// The identity resolver.
    pub fn identity_resolver(&self) -> &IdentityResolver {
        &self.inner.ctx.resolver
    }

    /// Starts an authorization: resolves `input` (a handle, a DID, or a PDS / entryway URL),
    /// pushes the authorization request (PAR, PKCE S256, a fresh DPoP key) and returns the URL
    /// to send the user to (it carries only `client_id` and `request_uri`).
    pub async fn authorize(
        &self,
        input: &str,
        options: AuthorizeOptions,
    ) -> Result<Url, OAuthError> {
        let ctx = &self.inner.ctx;
        let metadata = &ctx.metadata;
        // Local checks first: nothing is sent for a request the app may not make.
        let redirect_uri = match &options.redirect_uri {
            Some(uri) => uri.clone(),
            None => metadata.redirect_uris.first().cloned().ok_or_else(|| {
                OAuthError::InvalidRequest {
                    reason: "no redirect URI".to_owned(),
                }
            })?,
        };
        if !metadata.accepts_redirect(&redirect_uri) {
            return Err(OAuthError::InvalidRequest {
                reason: format!("the redirect URI {redirect_uri:?} is not registered"),
            });
        }
        let scope = options
            .scope
            .clone()
            .unwrap_or_else(|| metadata.scope.clone());
        if !is_valid_scope(&scope) || !scope_contains(&scope, ATPROTO_SCOPE) {
            return Err(OAuthError::InvalidRequest {
                reason: "the scope must be space-separated tokens including `atproto`".to_owned(),
            });
        }
        if let Some(undeclared) = scope
            .split(' ')
            .find(|token| !scope_contains(&metadata.scope, token))
        {
            return Err(OAuthError::InvalidRequest {
                reason: format!("the scope `{undeclared}` is not declared in the client metadata"),
            });
        }

        let input = input.trim();
        let (server, expected_did, login_hint) = self.resolve_input(input).await?;
        let auth_method = server.negotiate(metadata, ctx.keyset.as_ref())?;

        let crypto = |error: super::jose::JoseError| OAuthError::Crypto(error.to_string());
        let verifier = random_b64url(32).map_err(crypto)?;
        let challenge = sha256_b64url(&verifier);
        let state = random_b64url(16).map_err(crypto)?;
        let dpop_key = Es256Key::generate().map_err(crypto)?;
        if let Some(keyset) = &ctx.keyset
            && keyset.thumbprints().contains(&dpop_key.thumbprint())
        {
            return Err(OAuthError::Crypto(
                "the DPoP key equals a client key".to_owned(),
            ));
        }
        let pending = PendingAuthorization {
            version: PENDING_VERSION,
            issuer: server.issuer.clone(),
            dpop_key: dpop_key.to_stored(None),
            auth_method: auth_method.clone(),
            verifier: Secret::new(verifier),
            redirect_uri: redirect_uri.clone(),
            expected_did,
            app_state: options.app_state.clone(),
            session_id: options.session_id.clone(),
        };
        let state_key = format!("{STATE_PREFIX}{state}");
        let encoded = serde_json::to_string(&pending).map_err(|error| {
            OAuthError::Crypto(format!("cannot encode the pending authorization: {error}"))
        })?;
        self.inner
            .states
            .set_expiring(&state_key, &SessionData::new(encoded), self.inner.state_ttl)
            .await?;

        let par_endpoint = server
            .pushed_authorization_request_endpoint
            .clone()
            .unwrap_or_default();
        let mut fields: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("redirect_uri", &redirect_uri),
            ("scope", &scope),
            ("state", &state),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("response_mode", "query"),
        ];
        if let Some(hint) = &login_hint {
            fields.push(("login_hint", hint));
        }
        for (name, value) in [
            ("prompt", &options.prompt),
            ("ui_locales", &options.ui_locales),
            ("display", &options.display),
        ] {
            if let Some(value) = value {
                fields.push((name, value));
            }
        }
        let result = ctx
            .post_form(
                &par_endpoint,
                &dpop_key,
                &auth_method,
                &server.issuer,
                &fields,
            )
            .await;
        let request_uri = match result {
            Ok((status, json)) if status == 201 || status == 200 => {
                let request_uri = json.get("request_uri").and_then(Value::as_str);
                let expires_in = json.get("expires_in").and_then(Value::as_i64);
                match (request_uri, expires_in) {
                    (Some(uri), Some(expires)) if !uri.is_empty() && expires > 0 => {
                        Ok(uri.to_owned())
                    }
                    _ => Err(OAuthError::Metadata {
                        url: par_endpoint.clone(),
                        reason: "the PAR response lacks `request_uri` or a positive `expires_in`"
                            .to_owned(),
                    }),
                }
            }
            Ok((status, json)) => Err(Context::server_error(&par_endpoint, status, &json)),
            Err(error) => Err(error),
        };
        let request_uri = match request_uri {
            Ok(uri) => uri,
            Err(error) => {
                let _ = self.inner.states.delete(&state_key).await;
                return Err(error);
            }
        };
        let mut url =
            Url::parse(&server.authorization_endpoint).map_err(|_| OAuthError::Metadata {
                url: server.issuer.clone(),
                reason: "`authorization_endpoint` is not a URL".to_owned(),
            })?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(OAuthError::Metadata {
                url: server.issuer.clone(),
                reason: "`authorization_endpoint` is not http(s)".to_owned(),
            });
        }
        url.set_query(None);
        url.query_pairs_mut()
            .append_pair("client_id", &metadata.client_id)
            .append_pair("request_uri", &request_uri);
        Ok(url)
    }

    /// Classifies and resolves the sign-in input (checklist items 1–7): the authorization
    /// server, the DID the flow starts from, and the `login_hint`.
    async fn resolve_input(
        &self,
        input: &str,
    ) -> Result<(AuthorizationServerMetadata, Option<Did>, Option<String>), OAuthError> {
        let ctx = &self.inner.ctx;
        if input.starts_with("https://") || input.starts_with("http://") {
            let url = Url::parse(input).map_err(|_| OAuthError::InvalidInput {
                reason: "not a URL".to_owned(),
            })?;
            check_oauth_url(&url, ctx.allow_http, "the server URL")?;
            // A PDS (resource server) first; else the URL as an issuer (an entryway).
            let server = match ctx.issuer_of_pds(&url, false, true).await {
                Ok((resource, issuer)) => {
                    ctx.authorization_server(&issuer, Some(&resource)).await?
                }
                Err(first) => {
                    let issuer = input.trim_end_matches('/');
                    if check_issuer(issuer, ctx.allow_http).is_err() {
                        return Err(first);
                    }
                    ctx.authorization_server(issuer, None)
                        .await
                        .map_err(|_| first)?
                }
            };
            return Ok((server, None, None));
        }
        let identifier = AtIdentifier::new(input).map_err(|error| OAuthError::InvalidInput {
            reason: format!("not a handle, DID or http(s) URL: {error}"),
        })?;
        let identity = ctx.resolver.resolve(&identifier).await?;
        if let AtIdentifier::Handle(handle) = &identifier
            && identity.handle.verified() != Some(handle)
        {
            return Err(OAuthError::HandleNotVerified {
                handle: handle.to_string(),
                did: identity.did.to_string(),
            });
        }
        if matches!(identity.handle, HandleStatus::Invalid) {
            tracing::debug!(did = %identity.did, "the DID's handle does not verify");
        }
        let (resource, issuer) = ctx.issuer_of_pds(&identity.pds, true, true).await?;
        let server = ctx.authorization_server(&issuer, Some(&resource)).await?;
        Ok((server, Some(identity.did), Some(input.to_owned())))
    }

    /// Finishes an authorization from the redirect's query parameters (checklist items
    /// 19–27): single-use state, `iss`, the code exchange with the same DPoP key and redirect
    /// URI, the token response's shape, `sub` = the DID the flow started from, the issuer
    /// re-verified from `sub`'s DID document; then the session is stored (replacing, and
    /// revoking, an earlier one with the same account and session id).
    ///
    /// The user rejecting consent is [`OAuthError::AuthorizationDenied`], carrying the app
    /// state.
    pub async fn callback(&self, params: CallbackParams) -> Result<Authorized, OAuthError> {
        let ctx = &self.inner.ctx;
        if params.get("response").is_some() {
            return Err(OAuthError::InvalidCallback {
                reason: "JARM `response` is not supported".to_owned(),
            });
        }
        let state = params
            .get("state")
            .ok_or_else(|| OAuthError::InvalidCallback {
                reason: "no `state`".to_owned(),
            })?;
        let pending = self.take_state(state).await?;
        if let Some(error) = params.get("error") {
            return Err(OAuthError::AuthorizationDenied {
                error: error.chars().take(100).collect(),
                description: params
                    .get("error_description")
                    .map(|d| d.chars().take(300).collect()),
                app_state: pending.app_state,
            });
        }
        let code = params
            .get("code")
            .ok_or_else(|| OAuthError::InvalidCallback {
                reason: "no `code`".to_owned(),
            })?;
        let key = Es256Key::from_stored(&pending.dpop_key)
            .map_err(|error| OAuthError::Crypto(error.to_string()))?;
        let server = ctx.authorization_server(&pending.issuer, None).await?;
        match params.get("iss") {
            Some(iss) if iss != pending.issuer => {
                return Err(OAuthError::IssuerMismatch {
                    expected: pending.issuer.clone(),
                    found: iss.chars().take(200).collect(),
                });
            }
            None if server.authorization_response_iss_parameter_supported => {
                return Err(OAuthError::InvalidCallback {
                    reason: "no `iss`, which the authorization server promises".to_owned(),
                });
            }
            _ => {}
        }
        let started = unix_now();
        let (status, json) = ctx
            .post_form(
                &server.token_endpoint,
                &key,
                &pending.auth_method,
                &pending.issuer,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("code_verifier", pending.verifier.expose()),
                    ("redirect_uri", &pending.redirect_uri),
                ],
            )
            .await?;
        if status != 200 {
            return Err(Context::server_error(&server.token_endpoint, status, &json));
        }
        let tokens = Context::token_set(&server.token_endpoint, &json)?;
        let revoke = |tokens: &TokenSet| {
            let token = tokens
                .refresh_token
                .clone()
                .unwrap_or_else(|| tokens.access_token.clone());
            let key = &key;
            let method = &pending.auth_method;
            let issuer = &pending.issuer;
            async move { ctx.revoke_token(issuer, key, method, &token).await }
        };
        if let Some(expected) = &pending.expected_did
            && *expected != tokens.sub
        {
            revoke(&tokens).await;
            return Err(OAuthError::SubjectMismatch {
                expected: expected.to_string(),
                found: tokens.sub.to_string(),
            });
        }
        let pds = match ctx.verify_issuer(&tokens.sub, &pending.issuer).await {
            Ok(pds) => pds,
            Err(error) => {
                revoke(&tokens).await;
                return Err(error);
            }
        };
        let stored = StoredSession {
            version: StoredSession::version(),
            did: tokens.sub.clone(),
            session_id: pending.session_id.clone(),
            issuer: pending.issuer.clone(),
            aud: pds.to_string(),
            client_id: ctx.metadata.client_id.clone(),
            auth_method: pending.auth_method.clone(),
            dpop_key: pending.dpop_key.clone(),
            access_token: tokens.access_token.clone(),
            refresh_token: tokens.refresh_token.clone(),
            token_type: "DPoP".to_owned(),
            scope: tokens.scope.clone(),
            issued_at: started,
            expires_at: tokens.expires_in.map(|s| started.saturating_add(s)),
        };
        if let Err(error) = self.store_new(&stored).await {
            revoke(&tokens).await;
            return Err(error);
        }
        let info = stored.info();
        let _ = self.inner.events.send(SessionEvent::Updated(info.clone()));
        let client = self.client_for(stored)?;
        Ok(Authorized {
            client,
            app_state: pending.app_state,
            session: info,
        })
    }

    /// Reads and consumes (compare-and-set to absent) the pending authorization of `state`.
    async fn take_state(&self, state: &str) -> Result<PendingAuthorization, OAuthError> {
        let unknown = || OAuthError::InvalidCallback {
            reason: "unknown, expired or already used `state`".to_owned(),
        };
        if state.is_empty() || state.len() > 128 {
            return Err(unknown());
        }
        let key = format!("{STATE_PREFIX}{state}");
        let states = &self.inner.states;
        let data = states.get(&key).await?.ok_or_else(unknown)?;
        if !states
            .compare_and_set(&key, Some(&data), None, None)
            .await?
        {
            return Err(unknown());
        }
        let mut pending: PendingAuthorization =
            serde_json::from_str(data.as_str()).map_err(|error| OAuthError::InvalidCallback {
                reason: format!(
                    "the pending authorization is unreadable ({})",
                    crate::xrpc::describe_json_error(&error)
                ),
            })?;
        match pending.version {
            // Written before sessions had `SessionKey`s: `default` was the default session.
            1 if pending.session_id.as_ref().map(SessionId::as_str) == Some("default") => {
                pending.session_id = None;
            }
            1 | PENDING_VERSION => {}
            other => {
                return Err(OAuthError::InvalidCallback {
                    reason: format!("unsupported pending authorization version {other}"),
                });
            }
        }
        Ok(pending)
    }

    /// Stores a new session under the store lock (checklist item 27), then revokes the one it
    /// replaced (same account and session id) and emits `Deleted(Replaced)` for it. The new
    /// session is written first: when the write fails, the earlier session is left as it was
    /// (stored and valid) and the caller revokes the new grant, so nothing is half-replaced.
    async fn store_new(&self, stored: &StoredSession) -> Result<(), OAuthError> {
        let store = &self.inner.sessions;
        let session_key = stored.key();
        let key = session_key.to_string();
        let lock = store.lock(&key, DEFAULT_LOCK_TIMEOUT).await?;
        let previous = store.get(&key).await?;
        let encoded = stored.encode()?;
        let swapped = store
            .compare_and_set(&key, previous.as_ref(), Some(&encoded), Some(&lock))
            .await?;
        drop(lock);
        if !swapped {
            return Err(OAuthError::Store(crate::xrpc::StoreError::new(
                format!("the session {key} changed while it was being stored"),
                None,
            )));
        }
        if let Some(data) = &previous
            && let Ok(old) = StoredSession::decode(data, &session_key)
        {
            self.revoke_stored(&old).await;
            let _ = self.inner.events.send(SessionEvent::Deleted {
                did: old.did.clone(),
                session_id: old.session_id.clone(),
                cause: DeleteCause::Replaced,
            });
        }
        Ok(())
    }

    async fn revoke_stored(&self, stored: &StoredSession) {
        match Es256Key::from_stored(&stored.dpop_key) {
            Ok(key) => {
                let token = stored
                    .refresh_token
                    .as_ref()
                    .unwrap_or(&stored.access_token);
                self.inner
                    .ctx
                    .revoke_token(&stored.issuer, &key, &stored.auth_method, token)
                    .await;
            }
            Err(error) => tracing::warn!(%error, "cannot revoke: unreadable DPoP key"),
        }
    }

    fn client_for(&self, stored: StoredSession) -> Result<Client, OAuthError> {
        let base = match &self.inner.xrpc {
            Some(client) => client.without_session(),
            None => Client::builder(&stored.aud)
                .allow_http(self.inner.ctx.allow_http)
                .build()
                .map_err(|error| OAuthError::InvalidRequest {
                    reason: error.to_string(),
                })?,
        };
        let session = OAuthSession::new(
            Arc::clone(&self.inner.ctx),
            Arc::clone(&self.inner.sessions),
            self.inner.events.clone(),
            stored,
        )?;
        Ok(base.with_session(Arc::new(session)))
    }

    /// The session kind in the store keys of OAuth sessions (see [`SessionKey`]).
    pub const KIND: &'static str = KIND;

    /// The store key of one of `did`'s OAuth sessions: `oauth:<did>#<id>`, or the default
    /// session's `oauth:<did>` when `id` is `None`.
    pub fn session_key(did: &Did, id: Option<&SessionId>) -> SessionKey {
        SessionKey::new(KIND, did.clone(), id.cloned())
    }

    /// The OAuth sessions stored for `did`: the default one first (when stored), then one per
    /// [`SessionId`], sorted. Sessions stored by atlex before the [`SessionKey`] scheme (under
    /// `oauth:<did>:<session id>`) are moved to their keys first.
    pub async fn sessions(&self, did: &Did) -> Result<Vec<SessionKey>, OAuthError> {
        self.migrate_legacy(did).await?;
        Ok(SessionKey::list(&*self.inner.sessions, KIND, did).await?)
    }

    /// A client for `did`'s default OAuth session (authorized without a
    /// [`session_id`](AuthorizeOptions::session_id)). When no default session is stored but
    /// exactly one session with a [`SessionId`] is, that one is restored. Fails with
    /// [`OAuthError::NoSession`] when none is stored (never authorized, signed out, revoked),
    /// or when several are and none is the default (restore one with
    /// [`restore_id`](Self::restore_id)). Never refreshes.
    pub async fn restore(&self, did: &Did) -> Result<Client, OAuthError> {
        self.restore_inner(did, None).await
    }

    /// A client for `did`'s session `id` (authorized with that
    /// [`session_id`](AuthorizeOptions::session_id)). Fails with [`OAuthError::NoSession`]
    /// when it is not stored.
    pub async fn restore_id(&self, did: &Did, id: &SessionId) -> Result<Client, OAuthError> {
        self.restore_inner(did, Some(id)).await
    }

    async fn restore_inner(&self, did: &Did, id: Option<&SessionId>) -> Result<Client, OAuthError> {
        let stored = self.find_stored(did, id).await?;
        self.client_for(stored)
    }

    /// The stored session `restore` / `restore_id` mean.
    async fn find_stored(
        &self,
        did: &Did,
        id: Option<&SessionId>,
    ) -> Result<StoredSession, OAuthError> {
        let store = &*self.inner.sessions;
        let mut found = SessionKey::find(store, KIND, "OAuth", did, id).await?;
        // Not found: perhaps stored before the `SessionKey` scheme.
        if matches!(found, Lookup::Missing(_)) && self.migrate_legacy(did).await? > 0 {
            found = SessionKey::find(store, KIND, "OAuth", did, id).await?;
        }
        match found {
            Lookup::Found(key, data) => Ok(StoredSession::decode(&data, &key)?),
            Lookup::Missing(what) => Err(OAuthError::NoSession { what }),
        }
    }

    /// Moves `did`'s sessions stored under the keys of atlex before the [`SessionKey`]
    /// scheme, `oauth:<did>:<session id>` (`default` for the default session, JSON version
    /// 1), to `oauth:<did>` / `oauth:<did>#<session id>` (version 2). A session already stored
    /// under the new key wins (the old copy is dropped). Returns how many were moved.
    async fn migrate_legacy(&self, did: &Did) -> Result<usize, OAuthError> {
        let store = &self.inner.sessions;
        let prefix = format!("{KIND}:{did}:");
        let mut moved = 0;
        for legacy in store.list(&prefix).await? {
            // Another DID that starts with this one (`did:web:host:path`) leaves a `:` in the
            // rest, which no session id has.
            let Some(old_id) = legacy.strip_prefix(&prefix) else {
                continue;
            };
            if SessionId::new(old_id).is_err() {
                continue;
            }
            let Some(data) = store.get(&legacy).await? else {
                continue;
            };
            let stored = match StoredSession::from_legacy(&data, did, old_id) {
                Ok(stored) => stored,
                Err(error) => {
                    tracing::warn!(%error, "leaving an unreadable version 1 OAuth session");
                    continue;
                }
            };
            let key = stored.key().to_string();
            let lock = store.lock(&key, DEFAULT_LOCK_TIMEOUT).await?;
            let encoded = stored.encode()?;
            if store
                .compare_and_set(&key, None, Some(&encoded), Some(&lock))
                .await?
            {
                moved += 1;
            }
            store
                .compare_and_set(&legacy, Some(&data), None, None)
                .await?;
            tracing::debug!(from = %legacy, to = %key, "moved a version 1 OAuth session");
        }
        Ok(moved)
    }

    /// Signs `did` out everywhere: every stored session (see [`sessions`](Self::sessions))
    /// is revoked at its authorization server (best effort: errors are logged) and deleted
    /// locally, even when the server cannot be reached.
    pub async fn revoke(&self, did: &Did) -> Result<(), OAuthError> {
        for key in self.sessions(did).await? {
            self.revoke_session(&key).await?;
        }
        Ok(())
    }

    /// Signs one session out (see [`revoke`](Self::revoke)); the account's other sessions
    /// are left alone. `key` is one of [`sessions`](Self::sessions) or
    /// [`OAuthClient::session_key`]; a session that is not stored is not an error.
    pub async fn revoke_session(&self, key: &SessionKey) -> Result<(), OAuthError> {
        if key.kind() != KIND {
            return Err(OAuthError::InvalidRequest {
                reason: format!("{key} is not the key of an OAuth session"),
            });
        }
        let store = &self.inner.sessions;
        let name = key.to_string();
        let lock = store.lock(&name, DEFAULT_LOCK_TIMEOUT).await?;
        let Some(data) = store.get(&name).await? else {
            return Ok(());
        };
        match StoredSession::decode(&data, key) {
            Ok(stored) => {
                if let Ok(dpop) = Es256Key::from_stored(&stored.dpop_key) {
                    self.inner
                        .ctx
                        .revoke_token(
                            &stored.issuer,
                            &dpop,
                            &stored.auth_method,
                            &stored.access_token,
                        )
                        .await;
                }
            }
            Err(error) => tracing::warn!(%error, "deleting an unreadable OAuth session"),
        }
        store
            .compare_and_set(&name, Some(&data), None, Some(&lock))
            .await?;
        let _ = self.inner.events.send(SessionEvent::Deleted {
            did: key.did().clone(),
            session_id: key.session_id().cloned(),
            cause: DeleteCause::SignedOut,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::MemoryStore;
    use crate::xrpc::AuthError;

    const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";

    fn did() -> Did {
        Did::new(DID).unwrap()
    }

    fn client(store: Arc<dyn SessionStore>) -> OAuthClient {
        let metadata = ClientMetadata::loopback(&["http://127.0.0.1/callback"], "atproto").unwrap();
        OAuthClient::builder(metadata)
            .session_store(store)
            .allow_http(true)
            .build()
            .unwrap()
    }

    /// A stored session whose issuer is nowhere (a revocation fails at once, offline).
    fn session(id: Option<&str>, token: &str) -> StoredSession {
        StoredSession {
            version: StoredSession::version(),
            did: did(),
            session_id: id.map(|id| SessionId::new(id).unwrap()),
            issuer: "http://127.0.0.1:9".to_owned(),
            aud: "https://pds.example".to_owned(),
            client_id: "http://localhost".to_owned(),
            auth_method: AuthMethod::None,
            dpop_key: Es256Key::generate().unwrap().to_stored(None),
            access_token: Secret::new(format!("access-{token}")),
            refresh_token: Some(Secret::new(format!("refresh-{token}"))),
            token_type: "DPoP".to_owned(),
            scope: "atproto".to_owned(),
            issued_at: 1,
            expires_at: None,
        }
    }

    /// What version 1 wrote: the same JSON with `version: 1` and a `session_id` always.
    fn legacy(id: &str, token: &str) -> SessionData {
        let mut value = serde_json::to_value(session(None, token)).unwrap();
        value["version"] = 1.into();
        value["session_id"] = id.into();
        SessionData::new(value.to_string())
    }

    async fn put(store: &MemoryStore, stored: &StoredSession) {
        store
            .set(&stored.key().to_string(), &stored.encode().unwrap())
            .await
            .unwrap();
    }

    /// The access token of the session `restore` (`id` None) or `restore_id` brings back,
    /// after checking that it restores.
    async fn restored(oauth: &OAuthClient, id: Option<&str>) -> Result<String, OAuthError> {
        let id = id.map(|id| SessionId::new(id).unwrap());
        let client = match &id {
            Some(id) => oauth.restore_id(&did(), id).await?,
            None => oauth.restore(&did()).await?,
        };
        assert_eq!(client.did(), Some(did()));
        let stored = oauth.find_stored(&did(), id.as_ref()).await?;
        Ok(stored.access_token.expose().to_owned())
    }

    #[tokio::test]
    async fn several_sessions_restore_by_id_and_sign_out_one() {
        let store = Arc::new(MemoryStore::new());
        let oauth = client(store.clone());
        put(&store, &session(Some("phone"), "p")).await;
        put(&store, &session(Some("laptop"), "l")).await;
        let keys = oauth.sessions(&did()).await.unwrap();
        let shown: Vec<String> = keys.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [format!("oauth:{DID}#laptop"), format!("oauth:{DID}#phone")]
        );

        // Two sessions with ids and no default: `restore` says to restore by id.
        match oauth.restore(&did()).await {
            Err(OAuthError::NoSession { what }) => {
                assert!(what.contains("restore one by its id"), "{what}");
                assert!(what.contains("2 sessions"), "{what}");
            }
            other => panic!("{other:?}"),
        }
        let phone = SessionId::new("phone").unwrap();
        assert_eq!(restored(&oauth, Some("phone")).await.unwrap(), "access-p");
        assert_eq!(restored(&oauth, Some("laptop")).await.unwrap(), "access-l");

        // Signing the phone out leaves the laptop; then the laptop is the only one.
        oauth
            .revoke_session(&OAuthClient::session_key(&did(), Some(&phone)))
            .await
            .unwrap();
        assert!(matches!(
            oauth.restore_id(&did(), &phone).await,
            Err(OAuthError::NoSession { .. })
        ));
        assert_eq!(oauth.sessions(&did()).await.unwrap().len(), 1);
        assert_eq!(restored(&oauth, None).await.unwrap(), "access-l");

        // A default session is what `restore` means, whatever else is stored.
        put(&store, &session(None, "d")).await;
        assert_eq!(restored(&oauth, None).await.unwrap(), "access-d");
        oauth.revoke(&did()).await.unwrap();
        assert!(store.list("oauth:").await.unwrap().is_empty());
        match oauth.restore(&did()).await {
            Err(OAuthError::NoSession { what }) => assert!(what.contains(DID), "{what}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_session_copied_under_another_key_is_refused() {
        let store = Arc::new(MemoryStore::new());
        let oauth = client(store.clone());
        let phone = session(Some("phone"), "p");
        store
            .set(&format!("oauth:{DID}#tablet"), &phone.encode().unwrap())
            .await
            .unwrap();
        match restored(&oauth, Some("tablet")).await {
            Err(OAuthError::Auth(AuthError::InvalidSession { reason })) => {
                assert!(reason.contains("#phone"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn version_1_sessions_move_to_their_session_keys() {
        let store = Arc::new(MemoryStore::new());
        let oauth = client(store.clone());
        store
            .set(&format!("oauth:{DID}:default"), &legacy("default", "d"))
            .await
            .unwrap();
        store
            .set(&format!("oauth:{DID}:phone"), &legacy("phone", "p"))
            .await
            .unwrap();
        // Not this account's: a did:web DID that merely starts with another one, and a value
        // naming another id than its key.
        let web = Did::new("did:web:example.com").unwrap();
        store
            .set(
                "oauth:did:web:example.com:user:default",
                &legacy("default", "w"),
            )
            .await
            .unwrap();
        store
            .set(&format!("oauth:{DID}:tablet"), &legacy("phone", "t"))
            .await
            .unwrap();

        // `restore_id` finds the old phone session (and moves the account's sessions).
        assert_eq!(restored(&oauth, Some("phone")).await.unwrap(), "access-p");
        let keys = store.list("oauth:").await.unwrap();
        assert_eq!(
            keys,
            [
                "oauth:did:plc:ewvi7nxzyoun6zhxrhs64oiz".to_owned(),
                format!("oauth:{DID}#phone"),
                format!("oauth:{DID}:tablet"),
                "oauth:did:web:example.com:user:default".to_owned(),
            ]
        );
        // The default one became the default session, version 2, without a session id.
        let data = store.get(&format!("oauth:{DID}")).await.unwrap().unwrap();
        let value: Value = serde_json::from_str(data.as_str()).unwrap();
        assert_eq!(value["version"], 2);
        assert!(value.get("session_id").is_none(), "{value}");
        assert_eq!(restored(&oauth, None).await.unwrap(), "access-d");
        assert!(oauth.sessions(&web).await.unwrap().is_empty());

        // A newer session at the new key wins over an old copy.
        put(&store, &session(Some("laptop"), "new")).await;
        store
            .set(&format!("oauth:{DID}:laptop"), &legacy("laptop", "old"))
            .await
            .unwrap();
        assert_eq!(oauth.sessions(&did()).await.unwrap().len(), 3);
        assert!(
            store
                .get(&format!("oauth:{DID}:laptop"))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            restored(&oauth, Some("laptop")).await.unwrap(),
            "access-new"
        );
    }

    #[tokio::test]
    async fn version_1_pending_authorizations_keep_their_session() {
        let store = Arc::new(MemoryStore::new());
        let oauth = client(store.clone());
        for (state, id, expected) in [("s1", "default", None), ("s2", "phone", Some("phone"))] {
            let pending = PendingAuthorization {
                version: 1,
                issuer: "https://as.example".to_owned(),
                dpop_key: Es256Key::generate().unwrap().to_stored(None),
                auth_method: AuthMethod::None,
                verifier: Secret::new("v"),
                redirect_uri: "http://127.0.0.1/callback".to_owned(),
                expected_did: None,
                app_state: None,
                session_id: Some(SessionId::new(id).unwrap()),
            };
            let json = serde_json::to_string(&pending).unwrap();
            store
                .set(&format!("{STATE_PREFIX}{state}"), &SessionData::new(json))
                .await
                .unwrap();
            let taken = oauth.take_state(state).await.unwrap();
            assert_eq!(taken.session_id.as_ref().map(SessionId::as_str), expected);
        }
    }
}
