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
//! # Several sessions per account
//!
//! An account may hold several sessions at once, one per device (a phone and a laptop, each
//! with its own tokens, refreshed and logged out on their own). Name each with a
//! [`SessionId`]: [`PasswordSession::login_with_id`] logs in under that id,
//! [`PasswordSession::restore_id`] brings one back, [`PasswordSession::sessions`] lists an
//! account's stored sessions. The plain [`login`](PasswordSession::login) and
//! [`restore`](PasswordSession::restore) use the account's default session; `restore` falls
//! back to the account's only session when no default one is stored. The store keys follow
//! [`SessionKey`]: `password:<did>` and `password:<did>#<session id>`.
//!
//! ```no_run
//! # async fn example(store: std::sync::Arc<dyn atlex::auth::SessionStore>) -> Result<(), Box<dyn std::error::Error>> {
//! use atlex::auth::{PasswordSession, SessionId};
//! use atlex::xrpc::Client;
//! let pds = Client::anonymous("https://bsky.social")?;
//! // On each device's first sign-in: a fresh id, kept by the device (a cookie).
//! let id = SessionId::generate()?;
//! let client = PasswordSession::login_with_id(&pds, "alice.bsky.social", "app-password", None, &id, store.clone()).await?;
//! let did = client.did().ok_or("no DID")?;
//! // Later, when that device comes back:
//! let client = PasswordSession::restore_id(store.clone(), &did, &id).await?;
//! // Every device signed in to the account:
//! for key in PasswordSession::sessions(&*store, &did).await? {
//!     println!("{:?}", key.session_id());
//! }
//! client.logout().await?; // ends this device's session only
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
//! * **Single-flight, across processes**: the shared [refresh engine](super::refresh) runs
//!   every refresh: an in-process gate, the store's fenced lock on the session key, a re-read
//!   of the store (when the stored refresh token differs from the one the caller used, another
//!   task or process already refreshed: the stored tokens are adopted), then `refreshSession`
//!   in a task that owns the lock and writes the result with a compare-and-set, so a cancelled
//!   caller never loses the rotated tokens. The new tokens are **persisted before they are
//!   used**: a failed write is returned as [`AuthError::Store`] and the new tokens are dropped.
//! * **Failures**: a network error, timeout, 429 or 5xx is transient and keeps the stored
//!   session; the server rejecting the refresh token (`ExpiredToken`, `InvalidToken`,
//!   `AuthRequired`, or any 401) removes it (if it still holds that token) and returns
//!   [`AuthError::SessionExpired`].
//! * **Logout** removes the stored session once the server ended it (or said it was already
//!   dead); when the server could not be reached, the session is kept so that logout can be
//!   retried.
//!
//! Auth calls (`refreshSession`, `deleteSession`) go to the PDS named in the session's DID
//! document (as data calls do), or to the login URL when the document names none.

use std::fmt;
use std::sync::Arc;

use atlex_types::{Data, Did, Handle};
use serde::{Deserialize, Serialize};
use url::Url;

use super::jwt;
use super::refresh::{RefreshEngine, RefreshFailure, Refreshable};
use super::session_key::{Lookup, SessionId, SessionKey};
use super::store::{BoxFuture, DEFAULT_LOCK_TIMEOUT, SessionData, SessionStore, StoreError};
use crate::auth::memo::Memo;
use crate::com::atproto::server::{create_session, delete_session, refresh_session};
use crate::xrpc::client::parse_service_url;
use crate::xrpc::describe_json_error;
use crate::xrpc::{
    AfterResponse, AuthError, AuthHeaders, AuthSession, CallOptions, Client, DecodeError, Error,
    GenericError, NoBody, NoParams, RawResponse, RequestInfo, ResponseInfo, Secret, XrpcErrorKind,
};

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
    id: Option<SessionId>,
    engine: RefreshEngine<PasswordKind>,
    /// The parsed PDS URL of the stored session (parsed once, not on every call).
    pds: Memo<String, Url>,
}

/// What the refresh engine needs to refresh a password session.
struct PasswordKind {
    did: Did,
    /// An anonymous client (HTTP client, timeout, retry policy; no proxy or labelers) used for
    /// the auth calls.
    base: Client,
}

/// The JSON kept in the store under `password:<did>` (or `password:<did>#<session id>`).
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

    /// Where calls go, as stored: the PDS, else the login URL.
    fn pds_text(&self) -> &String {
        self.pds_url.as_ref().unwrap_or(&self.service_url)
    }

    /// [`Self::pds_text`], parsed.
    fn pds(&self) -> Result<Url, AuthError> {
        parse_service_url(self.pds_text()).map_err(|error| AuthError::InvalidSession {
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

impl Refreshable for PasswordKind {
    type Stored = StoredSession;

    fn decode(&self, data: &SessionData) -> Result<StoredSession, AuthError> {
        StoredSession::decode(data, &self.did)
    }

    fn encode(&self, stored: &StoredSession) -> Result<SessionData, AuthError> {
        stored.encode()
    }

    fn generation<'s>(&self, stored: &'s StoredSession) -> &'s Secret {
        &stored.refresh_jwt
    }

    fn lifetime(&self, stored: &StoredSession) -> (Option<i64>, Option<i64>) {
        let access = stored.access_jwt.expose();
        (jwt::issued_at(access), jwt::expiry(access))
    }

    fn refresh<'a>(
        &'a self,
        stored: &'a StoredSession,
    ) -> BoxFuture<'a, Result<StoredSession, RefreshFailure>> {
        Box::pin(async move {
            let client = self
                .refresh_client(stored)
                .map_err(RefreshFailure::Failed)?;
            let output = match client
                .send::<refresh_session::RefreshSession>(
                    &NoParams,
                    &NoBody,
                    &CallOptions::default(),
                )
                .await
            {
                Ok(output) => IssuedSession::from(output),
                Err(error) => {
                    let error = without_body(error.into_generic());
                    if is_rejection(&error) {
                        return Err(RefreshFailure::Rejected {
                            reason: error.to_string(),
                        });
                    }
                    return Err(RefreshFailure::Failed(AuthError::RefreshFailed {
                        transient: error.is_transient(),
                        reason: error.to_string(),
                        source: Some(Box::new(error)),
                    }));
                }
            };
            if output.did != self.did {
                return Err(RefreshFailure::Failed(AuthError::RefreshFailed {
                    transient: false,
                    reason: format!("refreshSession returned the session of {}", output.did),
                    source: None,
                }));
            }
            let service_url = parse_service_url(&stored.service_url).map_err(|error| {
                RefreshFailure::Failed(AuthError::InvalidSession {
                    reason: error.to_string(),
                })
            })?;
            Ok(StoredSession::from_output(
                output,
                &service_url,
                stored.pds_url.as_deref(),
            ))
        })
    }

    fn revoke<'a>(&'a self, stored: &'a StoredSession) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let client = self.refresh_client(stored).map_err(Error::Auth)?;
            match client
                .send::<delete_session::DeleteSession>(&NoParams, &NoBody, &CallOptions::default())
                .await
            {
                Ok(NoBody) => Ok(()),
                Err(error) => {
                    let error = without_body(error.into_generic());
                    // The token was already dead: the session is over either way.
                    if is_rejection(&error) {
                        Ok(())
                    } else {
                        Err(error)
                    }
                }
            }
        })
    }
}

impl PasswordKind {
    /// A client that authenticates with the refresh token, for `refreshSession` and
    /// `deleteSession`.
    fn refresh_client(&self, stored: &StoredSession) -> Result<Client, AuthError> {
        Ok(self.base.with_session(Arc::new(RefreshToken {
            token: stored.refresh_jwt.clone(),
            url: stored.pds()?,
        })))
    }
}

impl PasswordSession {
    /// The session kind in the store keys of password sessions (see [`SessionKey`]).
    pub const KIND: &'static str = "password";

    /// The store key of `did`'s default password session: `password:<did>`.
    pub fn storage_key(did: &Did) -> String {
        PasswordSession::session_key(did, None).to_string()
    }

    /// The store key of one of `did`'s password sessions: `password:<did>#<id>`, or the
    /// default session's `password:<did>` when `id` is `None`.
    pub fn session_key(did: &Did, id: Option<&SessionId>) -> SessionKey {
        SessionKey::new(PasswordSession::KIND, did.clone(), id.cloned())
    }

    /// The password sessions stored for `did`: the default one first (when stored), then one
    /// per [`SessionId`], sorted.
    pub async fn sessions(
        store: &dyn SessionStore,
        did: &Did,
    ) -> Result<Vec<SessionKey>, StoreError> {
        SessionKey::list(store, PasswordSession::KIND, did).await
    }

    /// Logs in at `service_url` (a PDS or an entryway such as `https://bsky.social`) with a
    /// handle, DID or email and a password, stores the session in `store` as the account's
    /// default session, and returns a client for the account's PDS (from the DID document the
    /// server returns, else `service_url`).
    pub async fn login(
        service_url: &str,
        identifier: &str,
        password: impl Into<Secret>,
        store: Arc<dyn SessionStore>,
    ) -> Result<Client, Error> {
        let client = Client::anonymous(service_url)?;
        PasswordSession::login_inner(&client, identifier, password.into(), None, None, store).await
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
        PasswordSession::login_inner(
            client,
            identifier,
            password.into(),
            auth_factor_token,
            None,
            store,
        )
        .await
    }

    /// [`PasswordSession::login_with`], storing the new session as the account's session
    /// `id` (`password:<did>#<id>`) instead of its default one, so that several devices each
    /// keep their own session. A session already stored under that id is replaced (and the
    /// account's other sessions are left alone).
    pub async fn login_with_id(
        client: &Client,
        identifier: &str,
        password: impl Into<Secret>,
        auth_factor_token: Option<Secret>,
        id: &SessionId,
        store: Arc<dyn SessionStore>,
    ) -> Result<Client, Error> {
        PasswordSession::login_inner(
            client,
            identifier,
            password.into(),
            auth_factor_token,
            Some(id.clone()),
            store,
        )
        .await
    }

    async fn login_inner(
        client: &Client,
        identifier: &str,
        password: Secret,
        auth_factor_token: Option<Secret>,
        id: Option<SessionId>,
        store: Arc<dyn SessionStore>,
    ) -> Result<Client, Error> {
        let base = client.without_session().without_proxy().without_labelers();
        // The generated input holds the password as a plain `String`; it lives only for this
        // call and is never logged (the transport records no bodies).
        let mut input = create_session::Input::new(identifier, password.expose());
        input.auth_factor_token = auth_factor_token.map(|token| token.expose().to_owned());
        let output = base
            .send::<create_session::CreateSession>(&NoParams, &input, &CallOptions::default())
            .await
            .map_err(|error| without_body(error.into_generic()))?;
        let stored = StoredSession::from_output(output.into(), &base.service_url(), None);
        // The PDS may come from the DID document the server returned: hold it to the client's
        // transport rule now, rather than at the first call.
        crate::net::check_url(&stored.pds()?, base.allows_http()).map_err(|error| {
            Error::InvalidRequest(format!(
                "the account's PDS (from its DID document): {error}"
            ))
        })?;
        let key = SessionKey::new(PasswordSession::KIND, stored.did.clone(), id);
        {
            let key = key.to_string();
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

    /// A client for `did`'s stored default password session, with default settings. When no
    /// default session is stored but exactly one session with a [`SessionId`] is, that one is
    /// restored. Fails with [`AuthError::NoSession`] when none is stored, or when several are
    /// and none is the default (restore one with [`PasswordSession::restore_id`]).
    pub async fn restore(store: Arc<dyn SessionStore>, did: &Did) -> Result<Client, Error> {
        PasswordSession::restore_inner(None, store, did, None).await
    }

    /// [`PasswordSession::restore`] using `client`'s HTTP client and settings (its service URL
    /// is replaced by the session's).
    pub async fn restore_with(
        client: &Client,
        store: Arc<dyn SessionStore>,
        did: &Did,
    ) -> Result<Client, Error> {
        PasswordSession::restore_inner(Some(client), store, did, None).await
    }

    /// A client for `did`'s stored session `id` (stored by
    /// [`PasswordSession::login_with_id`]), with default settings. Fails with
    /// [`AuthError::NoSession`] when it is not stored (logged out, or expired).
    pub async fn restore_id(
        store: Arc<dyn SessionStore>,
        did: &Did,
        id: &SessionId,
    ) -> Result<Client, Error> {
        PasswordSession::restore_inner(None, store, did, Some(id)).await
    }

    /// [`PasswordSession::restore_id`] using `client`'s HTTP client and settings (its service
    /// URL is replaced by the session's).
    pub async fn restore_id_with(
        client: &Client,
        store: Arc<dyn SessionStore>,
        did: &Did,
        id: &SessionId,
    ) -> Result<Client, Error> {
        PasswordSession::restore_inner(Some(client), store, did, Some(id)).await
    }

    async fn restore_inner(
        client: Option<&Client>,
        store: Arc<dyn SessionStore>,
        did: &Did,
        id: Option<&SessionId>,
    ) -> Result<Client, Error> {
        let (key, data) =
            match SessionKey::find(&*store, PasswordSession::KIND, "password", did, id)
                .await
                .map_err(AuthError::Store)?
            {
                Lookup::Found(key, data) => (key, data),
                Lookup::Missing(what) => return Err(AuthError::NoSession { what }.into()),
            };
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
        key: SessionKey,
        store: Arc<dyn SessionStore>,
        base: Client,
    ) -> Result<PasswordSession, AuthError> {
        // Fails early on a stored session whose URLs are unusable.
        stored.pds()?;
        let did = stored.did.clone();
        let label = match key.session_id() {
            Some(id) => format!("the password session {id} of {did}"),
            None => format!("the password session of {did}"),
        };
        let id = key.session_id().cloned();
        let kind = PasswordKind {
            did: did.clone(),
            base,
        };
        Ok(PasswordSession {
            did,
            id,
            engine: RefreshEngine::new(kind, store, key.to_string(), label, stored),
            pds: Memo::new(),
        })
    }
}

impl AuthSession for PasswordSession {
    fn did(&self) -> Option<Did> {
        Some(self.did.clone())
    }

    fn service_url(&self) -> Option<Url> {
        let current = self.engine.last();
        let stored = &current.stored;
        self.pds.get_or_try(stored.pds_text(), || stored.pds()).ok()
    }

    fn before_request<'a>(
        &'a self,
        _request: &'a RequestInfo<'a>,
    ) -> BoxFuture<'a, Result<AuthHeaders, AuthError>> {
        Box::pin(async move {
            let tokens = self.engine.before_request().await?;
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
        Box::pin(async move {
            self.engine
                .refresh(seen.and_then(AuthHeaders::basis))
                .await
                .map(drop)
        })
    }

    fn logout(&self) -> BoxFuture<'_, Result<(), Error<GenericError>>> {
        Box::pin(self.engine.logout())
    }
}

impl fmt::Debug for PasswordSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pds = self.engine.last().stored.pds().ok();
        f.debug_struct("PasswordSession")
            .field("did", &self.did.as_str())
            .field("session_id", &self.id.as_ref().map(SessionId::as_str))
            .field("pds", &pds.as_ref().map(Url::as_str))
            .field("active", &!self.engine.has_ended())
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

/// Drops the body of an undecodable auth response: it may hold tokens. (The generated
/// `createSession` and `refreshSession` endpoints declare `OUTPUT_HAS_SECRETS`, so the
/// transport has already dropped it; this keeps the rule should one ever not.)
fn without_body(error: Error) -> Error {
    match error {
        Error::Decode(decode) if decode.body().is_empty() => Error::Decode(decode),
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

/// The PDS endpoint of a DID document whose `id` is `did` (parsed by
/// [`DidDocument`](crate::identity::DidDocument); `None` when it is not a DID document, is for
/// another DID, or names no usable PDS).
fn pds_endpoint(doc: &Data, did: &Did) -> Option<Url> {
    let doc: crate::identity::DidDocument = serde_json::from_value(doc.to_json()).ok()?;
    if doc.id != *did {
        return None;
    }
    let url = doc.pds_endpoint().ok()?;
    parse_service_url(url.as_str()).ok()
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
