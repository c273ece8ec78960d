//! Password sessions: `createSession` / `refreshSession` / `deleteSession` with Bearer tokens.
//!
//! ```no_run
//! # async fn example(store: std::sync::Arc<dyn atlex::auth::SessionStore>) -> Result<(), atlex::xrpc::Error> {
//! use atlex::auth::PasswordSession;
//! let client = PasswordSession::login("https://bsky.social", "alice.bsky.social", "app-password", store.clone()).await?;
//! let did = client.did();
//! // Later, or in another process:
//! # let did = did.unwrap();
//! let client = PasswordSession::restore(store, &did).await?;
//! client.logout().await?;
//! # Ok(()) }
//! ```
//!
//! # Refresh
//!
//! * **Proactive**: before a request, when the access JWT's `exp` (read without verifying) is
//!   less than two minutes away, plus up to a minute of jitter (at most half the token's
//!   lifetime). If that refresh fails transiently while the token is still valid, the request
//!   goes out with the current token.
//! * **Reactive**: a `400`/`401` with `ExpiredToken`/`InvalidToken`, or a `401` whose
//!   `WWW-Authenticate` says `error="invalid_token"`, makes the transport refresh once and retry
//!   once, whatever the local expiry says.
//! * **Single-flight**: a refresh takes an in-process gate and the store's lock on the session
//!   key, then re-reads the store. When the stored refresh token differs from the one the caller
//!   used, another task or process already refreshed: the stored tokens are adopted. Otherwise
//!   `refreshSession` is called and the new tokens are **persisted before they are used** — a
//!   failed write is returned as [`AuthError::Store`] and the new tokens are dropped.
//! * **Failures**: a network error, timeout, 429 or 5xx is transient and keeps the stored
//!   session; the server rejecting the refresh token (`ExpiredToken`, `InvalidToken`,
//!   `AuthRequired`, or any 401) removes it and returns [`AuthError::SessionExpired`].
//!
//! Auth calls (`refreshSession`, `deleteSession`) go to the PDS named in the session's DID
//! document (as data calls do), or to the login URL when the document names none.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use atlex_types::{Data, Did, Handle};
use serde::{Deserialize, Serialize};
use url::Url;

use super::jwt;
use super::store::{BoxFuture, DEFAULT_LOCK_TIMEOUT, SessionData, SessionStore};
use crate::com::atproto::server::{create_session, delete_session, refresh_session};
use crate::xrpc::client::parse_service_url;
use crate::xrpc::{
    AfterResponse, AuthError, AuthHeaders, AuthSession, CallOptions, Client, DecodeError, Error,
    GenericError, NoBody, NoParams, RawResponse, RequestInfo, ResponseInfo, Secret, XrpcErrorKind,
};

/// Refresh this long before the access token expires…
const REFRESH_MARGIN_SECS: i64 = 120;
/// …plus up to this much random extra, so that many clients do not refresh in lockstep.
const REFRESH_JITTER_SECS: i64 = 60;
/// The `version` written into stored sessions.
const STORED_VERSION: u32 = 1;

/// A password session (an app password or the account password), shared by every
/// [`Client`] handle made from it.
///
/// Create one with [`PasswordSession::login`], bring a stored one back with
/// [`PasswordSession::restore`], end it with [`Client::logout`]. See the
/// [module docs](self) for how refresh works.
pub struct PasswordSession {
    did: Did,
    key: String,
    store: Arc<dyn SessionStore>,
    /// An anonymous client (HTTP client, timeout, retry policy; no proxy or labelers) used for
    /// the auth calls.
    base: Client,
    state: RwLock<State>,
    /// Serialises refreshes within this process before the store's lock serialises them
    /// across processes.
    gate: tokio::sync::Mutex<()>,
}

struct State {
    /// `None` once the session has ended (logged out, or its refresh token was rejected).
    tokens: Option<Arc<Tokens>>,
    /// Where calls go.
    pds: Url,
}

struct Tokens {
    stored: StoredSession,
    /// The access token's `exp`, when readable.
    expires_at: Option<i64>,
    /// When to refresh proactively.
    refresh_at: Option<i64>,
}

/// The JSON kept in the store under `password:<did>`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredSession {
    version: u32,
    did: Did,
    handle: String,
    access_jwt: Secret,
    refresh_jwt: Secret,
    /// The URL the session was created at (an entryway or a PDS).
    service_url: String,
    /// The PDS from the DID document, when it named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pds_url: Option<String>,
}

/// What a session keeps of a `createSession` or `refreshSession` output (the two generated
/// outputs have the same fields but are distinct types). The tokens become [`Secret`]s at once.
struct IssuedSession {
    access_jwt: Secret,
    refresh_jwt: Secret,
    handle: Handle,
    did: Did,
    did_doc: Option<Data>,
}

impl From<create_session::Output> for IssuedSession {
    fn from(output: create_session::Output) -> IssuedSession {
        IssuedSession {
            access_jwt: Secret::new(output.access_jwt),
            refresh_jwt: Secret::new(output.refresh_jwt),
            handle: output.handle,
            did: output.did,
            did_doc: output.did_doc,
        }
    }
}

impl From<refresh_session::Output> for IssuedSession {
    fn from(output: refresh_session::Output) -> IssuedSession {
        IssuedSession {
            access_jwt: Secret::new(output.access_jwt),
            refresh_jwt: Secret::new(output.refresh_jwt),
            handle: output.handle,
            did: output.did,
            did_doc: output.did_doc,
        }
    }
}

impl StoredSession {
    fn from_output(output: IssuedSession, service_url: &Url, previous_pds: Option<&str>) -> Self {
        let pds_url = output
            .did_doc
            .as_ref()
            .and_then(|doc| pds_endpoint(doc, &output.did))
            .map(String::from)
            .or_else(|| previous_pds.map(str::to_owned));
        StoredSession {
            version: STORED_VERSION,
            did: output.did,
            handle: output.handle.into_string(),
            access_jwt: output.access_jwt,
            refresh_jwt: output.refresh_jwt,
            service_url: service_url.to_string(),
            pds_url,
        }
    }

    /// Where calls go: the PDS, else the login URL.
    fn pds(&self) -> Result<Url, AuthError> {
        let text = self.pds_url.as_deref().unwrap_or(&self.service_url);
        parse_service_url(text).map_err(|error| AuthError::InvalidSession {
            reason: error.to_string(),
        })
    }

    fn encode(&self) -> Result<SessionData, AuthError> {
        serde_json::to_string(self)
            .map(SessionData::new)
            .map_err(|error| AuthError::InvalidSession {
                reason: format!("cannot encode the session: {error}"),
            })
    }

    fn decode(data: &SessionData, did: &Did) -> Result<StoredSession, AuthError> {
        // serde_json's messages name the field and position, never the value of a string.
        let stored: StoredSession =
            serde_json::from_str(data.as_str()).map_err(|error| AuthError::InvalidSession {
                reason: format!("not a password session ({})", describe_json_error(&error)),
            })?;
        if stored.version != STORED_VERSION {
            return Err(AuthError::InvalidSession {
                reason: format!("unsupported session version {}", stored.version),
            });
        }
        if stored.did != *did {
            return Err(AuthError::InvalidSession {
                reason: format!("the session stored for {did} belongs to {}", stored.did),
            });
        }
        Ok(stored)
    }
}

impl Tokens {
    fn new(stored: StoredSession) -> Tokens {
        let expires_at = jwt::expiry(stored.access_jwt.expose());
        let refresh_at = expires_at.map(|exp| {
            let mut lead = REFRESH_MARGIN_SECS + fastrand::i64(0..=REFRESH_JITTER_SECS);
            if let Some(issued) = jwt::issued_at(stored.access_jwt.expose()) {
                // Never spend more than half of a short-lived token's life waiting to refresh.
                lead = lead.min((exp - issued).max(0) / 2);
            }
            exp - lead
        });
        Tokens {
            stored,
            expires_at,
            refresh_at,
        }
    }

    fn wants_refresh(&self, now: i64) -> bool {
        self.refresh_at.is_some_and(|at| now >= at)
    }

    fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|exp| now >= exp)
    }
}

impl PasswordSession {
    /// The store key of `did`'s password session: `password:<did>`.
    pub fn storage_key(did: &Did) -> String {
        format!("password:{did}")
    }

    /// Logs in at `service_url` (a PDS or an entryway such as `https://bsky.social`) with a
    /// handle, DID or email and a password, stores the session in `store`, and returns a client
    /// for the account's PDS (from the DID document the server returns, else `service_url`).
    pub async fn login(
        service_url: &str,
        identifier: &str,
        password: impl Into<Secret>,
        store: Arc<dyn SessionStore>,
    ) -> Result<Client, Error> {
        let client = Client::anonymous(service_url)?;
        PasswordSession::login_with(&client, identifier, password, None, store).await
    }

    /// [`PasswordSession::login`] at `client`'s service, using its HTTP client and settings
    /// (timeouts, retries; the returned client also keeps its proxy and labelers), with the
    /// emailed sign-in code when the account has two-factor sign-in on (the server answers
    /// `AuthFactorTokenRequired` without it).
    pub async fn login_with(
        client: &Client,
        identifier: &str,
        password: impl Into<Secret>,
        auth_factor_token: Option<Secret>,
        store: Arc<dyn SessionStore>,
    ) -> Result<Client, Error> {
        let base = client.without_session().without_proxy().without_labelers();
        // The generated input holds the password as a plain `String`; it lives only for this
        // call and is never logged (the transport records no bodies).
        let mut input = create_session::Input::new(identifier, password.into().expose());
        input.auth_factor_token = auth_factor_token.map(|token| token.expose().to_owned());
        let output = base
            .send::<create_session::CreateSession>(&NoParams, &input, &CallOptions::default())
            .await
            .map_err(|error| without_body(error.into_generic()))?;
        let stored = StoredSession::from_output(output.into(), &base.service_url(), None);
        let key = PasswordSession::storage_key(&stored.did);
        {
            let _lock = store
                .lock(&key, DEFAULT_LOCK_TIMEOUT)
                .await
                .map_err(AuthError::Store)?;
            store
                .set(&key, &stored.encode()?)
                .await
                .map_err(AuthError::Store)?;
        }
        let session = PasswordSession::new(stored, key, store, base)?;
        Ok(client.with_session(Arc::new(session)))
    }

    /// A client for `did`'s stored password session, with default settings. Fails with
    /// [`AuthError::NoSession`] when none is stored.
    pub async fn restore(store: Arc<dyn SessionStore>, did: &Did) -> Result<Client, Error> {
        PasswordSession::restore_inner(None, store, did).await
    }

    /// [`PasswordSession::restore`] using `client`'s HTTP client and settings (its service URL
    /// is replaced by the session's).
    pub async fn restore_with(
        client: &Client,
        store: Arc<dyn SessionStore>,
        did: &Did,
    ) -> Result<Client, Error> {
        PasswordSession::restore_inner(Some(client), store, did).await
    }

    async fn restore_inner(
        client: Option<&Client>,
        store: Arc<dyn SessionStore>,
        did: &Did,
    ) -> Result<Client, Error> {
        let key = PasswordSession::storage_key(did);
        let data = store
            .get(&key)
            .await
            .map_err(AuthError::Store)?
            .ok_or_else(|| AuthError::NoSession {
                what: format!("no password session is stored for {did}"),
            })?;
        let stored = StoredSession::decode(&data, did)?;
        let client = match client {
            Some(client) => client.clone(),
            None => Client::anonymous(stored.pds()?.as_str())?,
        };
        let base = client.without_session().without_proxy().without_labelers();
        let session = PasswordSession::new(stored, key, store, base)?;
        Ok(client.with_session(Arc::new(session)))
    }

    fn new(
        stored: StoredSession,
        key: String,
        store: Arc<dyn SessionStore>,
        base: Client,
    ) -> Result<PasswordSession, AuthError> {
        let pds = stored.pds()?;
        Ok(PasswordSession {
            did: stored.did.clone(),
            key,
            store,
            base,
            state: RwLock::new(State {
                tokens: Some(Arc::new(Tokens::new(stored))),
                pds,
            }),
            gate: tokio::sync::Mutex::new(()),
        })
    }

    fn current(&self) -> Result<Arc<Tokens>, AuthError> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state.tokens.clone().ok_or_else(|| AuthError::NoSession {
            what: format!(
                "the password session of {} has ended (logged out, or its refresh token was \
                 rejected)",
                self.did
            ),
        })
    }

    fn install(&self, stored: StoredSession) -> Result<(), AuthError> {
        let pds = stored.pds()?;
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.tokens = Some(Arc::new(Tokens::new(stored)));
        state.pds = pds;
        Ok(())
    }

    fn end(&self) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.tokens = None;
    }

    /// A client that authenticates with the refresh token, for `refreshSession` and
    /// `deleteSession`.
    fn refresh_client(&self, stored: &StoredSession) -> Result<Client, AuthError> {
        Ok(self.base.with_session(Arc::new(RefreshToken {
            token: stored.refresh_jwt.clone(),
            url: stored.pds()?,
        })))
    }

    /// Refreshes unless the store already holds tokens newer than `seen`.
    async fn refresh_from(&self, seen: Option<&Secret>) -> Result<(), AuthError> {
        let _gate = self.gate.lock().await;
        let _lock = self
            .store
            .lock(&self.key, DEFAULT_LOCK_TIMEOUT)
            .await
            .map_err(AuthError::Store)?;
        let Some(stored) = self.load().await? else {
            self.end();
            return Err(AuthError::SessionExpired {
                reason: format!(
                    "the password session of {} is no longer in the store (logged out elsewhere?)",
                    self.did
                ),
            });
        };
        if let Some(seen) = seen
            && stored.refresh_jwt != *seen
        {
            tracing::debug!(did = %self.did, "adopting tokens refreshed by another caller");
            return self.install(stored);
        }
        tracing::debug!(did = %self.did, "refreshing the password session");
        let result = self
            .refresh_client(&stored)?
            .send::<refresh_session::RefreshSession>(&NoParams, &NoBody, &CallOptions::default())
            .await;
        let output = match result {
            Ok(output) => IssuedSession::from(output),
            Err(error) => return Err(self.refresh_failed(error.into_generic()).await),
        };
        if output.did != self.did {
            return Err(AuthError::RefreshFailed {
                transient: false,
                reason: format!("refreshSession returned the session of {}", output.did),
                source: None,
            });
        }
        let service_url =
            parse_service_url(&stored.service_url).map_err(|error| AuthError::InvalidSession {
                reason: error.to_string(),
            })?;
        let renewed = StoredSession::from_output(output, &service_url, stored.pds_url.as_deref());
        // Persist first: tokens that could not be written are never used, so the store and
        // every process reading it stay the source of truth.
        self.store
            .set(&self.key, &renewed.encode()?)
            .await
            .map_err(AuthError::Store)?;
        self.install(renewed)
    }

    async fn load(&self) -> Result<Option<StoredSession>, AuthError> {
        match self.store.get(&self.key).await.map_err(AuthError::Store)? {
            Some(data) => StoredSession::decode(&data, &self.did).map(Some),
            None => Ok(None),
        }
    }

    /// Classifies a failed `refreshSession`; removes the stored session when the server
    /// rejected the refresh token.
    async fn refresh_failed(&self, error: Error) -> AuthError {
        let error = without_body(error);
        if is_rejection(&error) {
            if let Err(store_error) = self.store.delete(&self.key).await {
                tracing::warn!(did = %self.did, error = %store_error,
                    "could not remove the rejected session from the store");
            }
            self.end();
            return AuthError::SessionExpired {
                reason: format!("the server rejected the refresh token: {error}"),
            };
        }
        AuthError::RefreshFailed {
            transient: error.is_transient(),
            reason: error.to_string(),
            source: Some(Box::new(error)),
        }
    }

    async fn logout_inner(&self) -> Result<(), Error> {
        let _gate = self.gate.lock().await;
        let _lock = self
            .store
            .lock(&self.key, DEFAULT_LOCK_TIMEOUT)
            .await
            .map_err(AuthError::Store)?;
        let stored = match self.load().await {
            Ok(Some(stored)) => Some(stored),
            Ok(None) | Err(_) => self.current().ok().map(|tokens| tokens.stored.clone()),
        };
        let server = match &stored {
            Some(stored) => match self.refresh_client(stored) {
                Ok(client) => client
                    .send::<delete_session::DeleteSession>(
                        &NoParams,
                        &NoBody,
                        &CallOptions::default(),
                    )
                    .await
                    .map(|NoBody| ())
                    .map_err(|error| without_body(error.into_generic())),
                Err(error) => Err(Error::Auth(error)),
            },
            None => Ok(()),
        };
        let removed = self.store.delete(&self.key).await;
        self.end();
        match server {
            Ok(()) => {}
            // The token was already dead: the session is over either way.
            Err(error) if is_rejection(&error) => {}
            Err(error) => return Err(error),
        }
        removed.map_err(|error| Error::Auth(AuthError::Store(error)))
    }
}

impl AuthSession for PasswordSession {
    fn did(&self) -> Option<Did> {
        Some(self.did.clone())
    }

    fn service_url(&self) -> Option<Url> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        Some(state.pds.clone())
    }

    fn before_request<'a>(
        &'a self,
        _request: &'a RequestInfo<'a>,
    ) -> BoxFuture<'a, Result<AuthHeaders, AuthError>> {
        Box::pin(async move {
            let mut tokens = self.current()?;
            let now = unix_now();
            if tokens.wants_refresh(now) {
                match self.refresh_from(Some(&tokens.stored.refresh_jwt)).await {
                    Ok(()) => tokens = self.current()?,
                    Err(error) if error.is_transient() && !tokens.is_expired(now) => {
                        tracing::warn!(did = %self.did, %error,
                            "proactive refresh failed; using the current access token");
                    }
                    Err(error) => return Err(error),
                }
            }
            Ok(AuthHeaders::none()
                .with_header(
                    "authorization",
                    Secret::new(format!("Bearer {}", tokens.stored.access_jwt.expose())),
                )
                .with_basis(tokens.stored.refresh_jwt.clone()))
        })
    }

    fn after_response(
        &self,
        _request: &RequestInfo<'_>,
        response: &ResponseInfo<'_>,
        _sent: &AuthHeaders,
    ) -> AfterResponse {
        if response.is_token_rejection() {
            AfterResponse::Refresh
        } else {
            AfterResponse::Accept
        }
    }

    fn refresh<'a>(
        &'a self,
        seen: Option<&'a AuthHeaders>,
    ) -> BoxFuture<'a, Result<(), AuthError>> {
        Box::pin(self.refresh_from(seen.and_then(AuthHeaders::basis)))
    }

    fn logout(&self) -> BoxFuture<'_, Result<(), Error<GenericError>>> {
        Box::pin(self.logout_inner())
    }
}

impl fmt::Debug for PasswordSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("PasswordSession")
            .field("did", &self.did.as_str())
            .field("pds", &state.pds.as_str())
            .field("active", &state.tokens.is_some())
            .field("tokens", &"<redacted>")
            .finish()
    }
}

/// The auth of `refreshSession` and `deleteSession`: the refresh token as a Bearer token,
/// never refreshed itself.
#[derive(Debug)]
struct RefreshToken {
    token: Secret,
    url: Url,
}

impl AuthSession for RefreshToken {
    fn did(&self) -> Option<Did> {
        None
    }

    fn service_url(&self) -> Option<Url> {
        Some(self.url.clone())
    }

    fn before_request<'a>(
        &'a self,
        _request: &'a RequestInfo<'a>,
    ) -> BoxFuture<'a, Result<AuthHeaders, AuthError>> {
        let header = Secret::new(format!("Bearer {}", self.token.expose()));
        Box::pin(async move { Ok(AuthHeaders::none().with_header("authorization", header)) })
    }
}

/// Whether the server rejected a refresh token for good.
fn is_rejection(error: &Error) -> bool {
    match error {
        Error::Xrpc { status, error } => {
            *status == 401
                || matches!(
                    error.code(),
                    "ExpiredToken" | "InvalidToken" | "AuthRequired" | "AuthenticationRequired"
                )
        }
        Error::Status(response) => response.status == 401,
        _ => false,
    }
}

/// Drops the body of an undecodable auth response: it may hold tokens.
fn without_body(error: Error) -> Error {
    match error {
        Error::Decode(decode) => Error::Decode(DecodeError::new(
            RawResponse::new(
                decode.status(),
                decode.content_type().map(str::to_owned),
                Vec::new(),
            ),
            format!(
                "{} (body dropped: it may hold credentials)",
                decode.message()
            ),
        )),
        other => other,
    }
}

/// A serde_json error without the text of the value it choked on.
fn describe_json_error(error: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {}, column {}",
        error.classify(),
        error.line(),
        error.column()
    )
}

/// The PDS endpoint of a DID document whose `id` is `did`.
fn pds_endpoint(doc: &Data, did: &Did) -> Option<Url> {
    if doc.get("id").and_then(Data::as_str) != Some(did.as_str()) {
        return None;
    }
    let full_id = format!("{did}#atproto_pds");
    doc.get("service")?
        .as_array()?
        .iter()
        .filter(|service| {
            let id = service.get("id").and_then(Data::as_str);
            let kind = service.get("type").and_then(Data::as_str);
            (id == Some("#atproto_pds") || id == Some(full_id.as_str()))
                && kind == Some("AtprotoPersonalDataServer")
        })
        .find_map(|service| {
            let endpoint = service.get("serviceEndpoint")?.as_str()?;
            parse_service_url(endpoint).ok()
        })
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pds_from_did_document() {
        let did = Did::new("did:plc:abc").unwrap();
        let data = |value: serde_json::Value| Data::from_json(&value).unwrap();
        let doc = data(json!({
            "id": "did:plc:abc",
            "service": [
                {"id": "#other", "type": "Other", "serviceEndpoint": "https://other.example"},
                {"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                 "serviceEndpoint": "https://pds.example"}
            ]
        }));
        assert_eq!(
            pds_endpoint(&doc, &did).map(String::from),
            Some("https://pds.example/".to_owned())
        );
        let other = Did::new("did:plc:xyz").unwrap();
        assert_eq!(pds_endpoint(&doc, &other), None, "document of another DID");
        let bad = data(
            json!({"id": "did:plc:abc", "service": [{"id": "#atproto_pds",
            "type": "AtprotoPersonalDataServer", "serviceEndpoint": "ftp://x"}]}),
        );
        assert_eq!(pds_endpoint(&bad, &did), None);
        assert_eq!(
            pds_endpoint(&data(json!({"id": "did:plc:abc"})), &did),
            None
        );
    }

    #[test]
    fn stored_session_errors_do_not_quote_values() {
        let did = Did::new("did:plc:abc").unwrap();
        let data = SessionData::new(r#"{"version":1,"did":"did:plc:abc","accessJwt":12}"#);
        let error = StoredSession::decode(&data, &did)
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("line 1"), "{error}");
    }
}
