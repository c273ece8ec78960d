//! An OAuth session: the [`AuthSession`] an [`OAuthClient`](super::OAuthClient) hands to
//! [`Client::with_session`](crate::xrpc::Client::with_session), refreshed by the shared
//! [`RefreshEngine`].

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use atlex_types::Did;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use url::Url;

use super::dpop::{self, origin_of};
use super::error::{DeleteCause, OAuthError};
use super::jose::{Es256Key, PrivateJwk};
use super::metadata::AuthMethod;
use super::server::Context;
use crate::auth::memo::Memo;
use crate::auth::refresh::{RefreshEngine, RefreshFailure, Refreshable, unix_now};
use crate::auth::session_key::{SessionId, SessionKey};
use crate::auth::store::{BoxFuture, DEFAULT_LOCK_TIMEOUT, SessionData, SessionStore};
use crate::xrpc::{
    AfterResponse, AuthError, AuthHeaders, AuthSession, Error, GenericError, RequestInfo,
    ResponseInfo, Secret,
};

/// The `version` written into stored OAuth sessions. Version 1 was stored under
/// `oauth:<did>:<session id>` (`default` for the default session) and is moved to the
/// [`SessionKey`] scheme by [`StoredSession::from_legacy`].
const STORED_VERSION: u32 = 2;

/// The session kind in the store keys of OAuth sessions: `oauth:<did>` and
/// `oauth:<did>#<session id>` (see [`SessionKey`]).
pub(crate) const KIND: &str = "oauth";

/// The session id that version 1 stored for the default session.
const LEGACY_DEFAULT_ID: &str = "default";

/// What is kept in the session store for one OAuth session: the tokens, the DPoP private key
/// (as a private JWK) and the negotiated client auth method. It holds secrets: the store is
/// responsible for keeping them (see [`EncryptedStore`](crate::auth::store)).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct StoredSession {
    pub(crate) version: u32,
    pub(crate) did: Did,
    /// `None` for the account's default session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) session_id: Option<SessionId>,
    pub(crate) issuer: String,
    /// The resource server (PDS) the tokens are for: API calls go there.
    pub(crate) aud: String,
    pub(crate) client_id: String,
    pub(crate) auth_method: AuthMethod,
    pub(crate) dpop_key: PrivateJwk,
    pub(crate) access_token: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_token: Option<Secret>,
    pub(crate) token_type: String,
    /// The granted scope (may differ from the requested one).
    pub(crate) scope: String,
    pub(crate) issued_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at: Option<i64>,
}

impl StoredSession {
    pub(crate) fn encode(&self) -> Result<SessionData, AuthError> {
        serde_json::to_string(self)
            .map(SessionData::new)
            .map_err(|error| AuthError::InvalidSession {
                reason: format!("cannot encode the OAuth session: {error}"),
            })
    }

    /// Reads the session stored under `key`, which must belong to its account and session id
    /// (checklist item 44: a value copied under another key is refused).
    pub(crate) fn decode(data: &SessionData, key: &SessionKey) -> Result<StoredSession, AuthError> {
        let stored: StoredSession =
            serde_json::from_str(data.as_str()).map_err(|error| AuthError::InvalidSession {
                reason: format!(
                    "not an OAuth session ({})",
                    crate::xrpc::describe_json_error(&error)
                ),
            })?;
        if stored.version != STORED_VERSION {
            return Err(AuthError::InvalidSession {
                reason: format!("unsupported OAuth session version {}", stored.version),
            });
        }
        if stored.key() != *key {
            return Err(AuthError::InvalidSession {
                reason: format!("the session stored under {key} is {}", stored.key()),
            });
        }
        Ok(stored)
    }

    /// Reads a version 1 session, stored under `oauth:<did>:<legacy_id>`, as the current
    /// version (the session id `default` becoming the default session).
    pub(crate) fn from_legacy(
        data: &SessionData,
        did: &Did,
        legacy_id: &str,
    ) -> Result<StoredSession, AuthError> {
        let invalid = |reason: String| AuthError::InvalidSession { reason };
        let mut value: serde_json::Value =
            serde_json::from_str(data.as_str()).map_err(|error| {
                invalid(format!(
                    "not an OAuth session ({})",
                    crate::xrpc::describe_json_error(&error)
                ))
            })?;
        let object = value
            .as_object_mut()
            .ok_or_else(|| invalid("not an OAuth session (not an object)".to_owned()))?;
        if object.get("version").and_then(serde_json::Value::as_u64) != Some(1) {
            return Err(invalid(
                "not a version 1 OAuth session under a version 1 key".to_owned(),
            ));
        }
        if object.get("session_id").and_then(serde_json::Value::as_str) != Some(legacy_id) {
            return Err(invalid(format!(
                "the version 1 session under the id {legacy_id:?} names another id"
            )));
        }
        if legacy_id == LEGACY_DEFAULT_ID {
            object.remove("session_id");
        }
        object.insert("version".to_owned(), STORED_VERSION.into());
        let stored: StoredSession = serde_json::from_value(value).map_err(|error| {
            invalid(format!(
                "not a version 1 OAuth session ({})",
                crate::xrpc::describe_json_error(&error)
            ))
        })?;
        if stored.did != *did {
            return Err(invalid(format!(
                "the session stored for {did} belongs to {}",
                stored.did
            )));
        }
        Ok(stored)
    }

    /// Where the session is stored.
    pub(crate) fn key(&self) -> SessionKey {
        SessionKey::new(KIND, self.did.clone(), self.session_id.clone())
    }

    pub(crate) fn version() -> u32 {
        STORED_VERSION
    }

    fn pds(&self) -> Result<Url, AuthError> {
        Url::parse(&self.aud).map_err(|_| AuthError::InvalidSession {
            reason: "the stored PDS URL is not a URL".to_owned(),
        })
    }

    fn generation(&self) -> &Secret {
        self.refresh_token.as_ref().unwrap_or(&self.access_token)
    }

    /// What an app may see of the session.
    pub(crate) fn info(&self) -> SessionInfo {
        SessionInfo {
            did: self.did.clone(),
            session_id: self.session_id.clone(),
            issuer: self.issuer.clone(),
            pds: self.aud.clone(),
            scope: self.scope.clone(),
            expires_at: self.expires_at,
        }
    }
}

/// What an app may know about an OAuth session (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The account.
    pub did: Did,
    /// The session id; `None` for the account's default session (see
    /// [`AuthorizeOptions::session_id`](super::AuthorizeOptions::session_id)).
    pub session_id: Option<SessionId>,
    /// The authorization server.
    pub issuer: String,
    /// The PDS the calls go to.
    pub pds: String,
    /// The **granted** scope.
    pub scope: String,
    /// When the access token expires (Unix seconds), when the server said.
    pub expires_at: Option<i64>,
}

/// A session event, from [`OAuthClient::events`](super::OAuthClient::events).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A session was stored: after a login (callback) or a refresh.
    Updated(SessionInfo),
    /// A session was deleted.
    Deleted {
        /// The account.
        did: Did,
        /// The session id (`None`: the account's default session).
        session_id: Option<SessionId>,
        /// Why.
        cause: DeleteCause,
    },
}

pub(crate) type Events = broadcast::Sender<SessionEvent>;

/// What the refresh engine needs to refresh an OAuth session.
pub(crate) struct OAuthKind {
    ctx: Arc<Context>,
    did: Did,
    session_id: Option<SessionId>,
    events: Events,
    /// Why the last refresh was rejected, when more precise than the server's words (the
    /// session's client key left the keyset): the cause of the `Deleted` event that follows.
    rejected: Mutex<Option<DeleteCause>>,
}

impl Refreshable for OAuthKind {
    type Stored = StoredSession;

    fn decode(&self, data: &SessionData) -> Result<StoredSession, AuthError> {
        StoredSession::decode(
            data,
            &SessionKey::new(KIND, self.did.clone(), self.session_id.clone()),
        )
    }

    fn encode(&self, stored: &StoredSession) -> Result<SessionData, AuthError> {
        stored.encode()
    }

    fn generation<'s>(&self, stored: &'s StoredSession) -> &'s Secret {
        stored.generation()
    }

    fn lifetime(&self, stored: &StoredSession) -> (Option<i64>, Option<i64>) {
        (Some(stored.issued_at), stored.expires_at)
    }

    fn refresh<'a>(
        &'a self,
        stored: &'a StoredSession,
    ) -> BoxFuture<'a, Result<StoredSession, RefreshFailure>> {
        Box::pin(async move {
            // The key the session was bound to is gone (rotated out of the keyset): no request
            // can succeed, since the server holds the session to that key (checklist item 48).
            if let AuthMethod::PrivateKeyJwt { kid } = &stored.auth_method
                && self
                    .ctx
                    .keyset
                    .as_ref()
                    .and_then(|keys| keys.get(kid))
                    .is_none()
            {
                let error = OAuthError::AuthMethodUnsatisfiable {
                    reason: format!("the session's client key {kid:?} is no longer in the keyset"),
                };
                *self.rejected.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(DeleteCause::ClientKeyRemoved { kid: kid.clone() });
                return Err(RefreshFailure::Rejected {
                    reason: error.to_string(),
                });
            }
            refresh_stored(&self.ctx, stored).await
        })
    }

    fn revoke<'a>(&'a self, stored: &'a StoredSession) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            // Sign-out: the server is told when it can be; the local session goes either way
            // (checklist item 45).
            match Es256Key::from_stored(&stored.dpop_key) {
                Ok(key) => {
                    self.ctx
                        .revoke_token(
                            &stored.issuer,
                            &key,
                            &stored.auth_method,
                            &stored.access_token,
                        )
                        .await
                }
                Err(error) => tracing::warn!(%error, "cannot revoke: unreadable DPoP key"),
            }
            Ok(())
        })
    }

    fn persisted(&self, stored: &StoredSession) {
        let _ = self.events.send(SessionEvent::Updated(stored.info()));
    }

    fn ended(&self, reason: &str) {
        let cause = self
            .rejected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_else(|| DeleteCause::RefreshRejected(reason.to_owned()));
        let _ = self.events.send(SessionEvent::Deleted {
            did: self.did.clone(),
            session_id: self.session_id.clone(),
            cause,
        });
    }
}

/// One refresh (checklist items 36–37, 40): the issuer re-verified first, then the
/// refresh-token grant with the session's DPoP key and auth method; the new `sub` must be the
/// stored one. Runs inside the engine's task, so it is never cancelled once sent.
async fn refresh_stored(
    ctx: &Context,
    stored: &StoredSession,
) -> Result<StoredSession, RefreshFailure> {
    let failed = |error: OAuthError| {
        RefreshFailure::Failed(AuthError::RefreshFailed {
            transient: error.is_transient(),
            reason: error.to_string(),
            source: Some(Box::new(error)),
        })
    };
    let Some(refresh_token) = stored.refresh_token.as_ref() else {
        return Err(RefreshFailure::Rejected {
            reason: "the session has no refresh token".to_owned(),
        });
    };
    let key =
        Es256Key::from_stored(&stored.dpop_key).map_err(|error| RefreshFailure::Rejected {
            reason: format!("the stored DPoP key is unusable: {error}"),
        })?;
    let pds = match ctx.verify_issuer(&stored.did, &stored.issuer).await {
        Ok(pds) => pds,
        Err(error @ OAuthError::IssuerMismatch { .. }) => {
            return Err(RefreshFailure::Rejected {
                reason: error.to_string(),
            });
        }
        Err(error) => return Err(failed(error)),
    };
    let metadata = ctx
        .authorization_server(&stored.issuer, None)
        .await
        .map_err(failed)?;
    let started = unix_now();
    let result = ctx
        .post_form(
            &metadata.token_endpoint,
            &key,
            &stored.auth_method,
            &stored.issuer,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.expose()),
            ],
        )
        .await;
    let (status, json) = match result {
        Ok(answer) => answer,
        Err(error @ OAuthError::AuthMethodUnsatisfiable { .. }) => {
            return Err(RefreshFailure::Rejected {
                reason: error.to_string(),
            });
        }
        Err(error) => return Err(failed(error)),
    };
    if status != 200 {
        let error = Context::server_error(&metadata.token_endpoint, status, &json);
        if (400..500).contains(&status) && status != 429 {
            return Err(RefreshFailure::Rejected {
                reason: error.to_string(),
            });
        }
        return Err(failed(error));
    }
    let tokens = Context::token_set(&metadata.token_endpoint, &json).map_err(|error| {
        RefreshFailure::Failed(AuthError::RefreshFailed {
            transient: false,
            reason: error.to_string(),
            source: None,
        })
    })?;
    if tokens.sub != stored.did {
        return Err(RefreshFailure::Rejected {
            reason: format!(
                "the refresh returned a token for {}, not {}",
                tokens.sub, stored.did
            ),
        });
    }
    Ok(StoredSession {
        version: STORED_VERSION,
        did: stored.did.clone(),
        session_id: stored.session_id.clone(),
        issuer: stored.issuer.clone(),
        aud: pds.to_string(),
        client_id: stored.client_id.clone(),
        auth_method: stored.auth_method.clone(),
        dpop_key: stored.dpop_key.clone(),
        access_token: tokens.access_token,
        // A server that does not rotate keeps the old refresh token valid.
        refresh_token: tokens
            .refresh_token
            .or_else(|| stored.refresh_token.clone()),
        token_type: "DPoP".to_owned(),
        scope: tokens.scope,
        issued_at: started,
        expires_at: tokens.expires_in.map(|s| started.saturating_add(s)),
    })
}

/// An OAuth session, shared by every [`Client`](crate::xrpc::Client) handle made from it.
pub struct OAuthSession {
    did: Did,
    key: SessionKey,
    ctx: Arc<Context>,
    engine: RefreshEngine<OAuthKind>,
    store: Arc<dyn SessionStore>,
    /// The DPoP key of the newest stored form (see [`OAuthSession::dpop_key_of`]).
    dpop_key: Mutex<Arc<Es256Key>>,
    events: Events,
    /// The generation produced by the last reactive refresh: a request sent with it that is
    /// still rejected means the token is dead (checklist item 41).
    reactive: Mutex<Option<(Secret, Instant)>>,
    /// The `ath` claim of the last access token proofs were made for (its SHA-256, computed
    /// once per token rather than once per call).
    ath: Memo<Secret, String>,
    /// The parsed PDS URL of the last stored `aud` (parsed once, not on every call).
    pds: Memo<String, Url>,
}

/// How long after a reactive refresh a rejection of the new token counts as "still invalid".
const REACTIVE_WINDOW: Duration = Duration::from_secs(60);

impl OAuthSession {
    pub(crate) fn new(
        ctx: Arc<Context>,
        store: Arc<dyn SessionStore>,
        events: Events,
        stored: StoredSession,
    ) -> Result<OAuthSession, AuthError> {
        stored.pds()?;
        let dpop_key =
            Es256Key::from_stored(&stored.dpop_key).map_err(|error| AuthError::InvalidSession {
                reason: format!("the stored DPoP key is unusable: {error}"),
            })?;
        let did = stored.did.clone();
        let key = stored.key();
        let label = match key.session_id() {
            Some(id) => format!("the OAuth session {id} of {did}"),
            None => format!("the OAuth session of {did}"),
        };
        let kind = OAuthKind {
            ctx: Arc::clone(&ctx),
            did: did.clone(),
            session_id: stored.session_id.clone(),
            events: events.clone(),
            rejected: Mutex::new(None),
        };
        Ok(OAuthSession {
            did,
            key: key.clone(),
            ctx,
            engine: RefreshEngine::new(kind, Arc::clone(&store), key.to_string(), label, stored)
                .with_lock_timeout(DEFAULT_LOCK_TIMEOUT),
            store,
            dpop_key: Mutex::new(Arc::new(dpop_key)),
            events,
            reactive: Mutex::new(None),
            ath: Memo::new(),
            pds: Memo::new(),
        })
    }

    /// What the app may know about the session (granted scope, PDS, expiry).
    pub fn info(&self) -> SessionInfo {
        self.engine.last().stored.info()
    }

    /// The session id; `None` for the account's default session.
    pub fn session_id(&self) -> Option<&SessionId> {
        self.key.session_id()
    }

    /// Where the session is stored (`oauth:<did>` or `oauth:<did>#<session id>`).
    pub fn key(&self) -> &SessionKey {
        &self.key
    }

    /// The DPoP key the tokens of `stored` are bound to. Usually the session's own; but when
    /// a new login replaced the stored session (same account and session id, a new DPoP key)
    /// and this session adopted it from the store, the new tokens need the new key.
    fn dpop_key_of(&self, stored: &StoredSession) -> Result<Arc<Es256Key>, AuthError> {
        let mut key = self.dpop_key.lock().unwrap_or_else(PoisonError::into_inner);
        if !key.is_key_of(&stored.dpop_key) {
            let adopted = Es256Key::from_stored(&stored.dpop_key).map_err(|error| {
                AuthError::InvalidSession {
                    reason: format!("the stored DPoP key is unusable: {error}"),
                }
            })?;
            *key = Arc::new(adopted);
        }
        Ok(Arc::clone(&key))
    }

    /// Deletes the stored session if it still holds `generation` (the token was rejected
    /// after a refresh), ends it here and emits `Deleted(InvalidToken)`.
    fn delete_invalid(&self, generation: Secret) {
        let engine = self.engine.clone();
        let store = Arc::clone(&self.store);
        let events = self.events.clone();
        let did = self.did.clone();
        let key = self.key.clone();
        tokio::spawn(async move {
            let session_id = key.session_id().cloned();
            let name = key.to_string();
            let lock = match store.lock(&name, DEFAULT_LOCK_TIMEOUT).await {
                Ok(lock) => lock,
                Err(error) => {
                    tracing::warn!(%error, "cannot delete the rejected OAuth session");
                    return;
                }
            };
            if let Ok(Some(data)) = store.get(&name).await
                && let Ok(stored) = StoredSession::decode(&data, &key)
                && *stored.generation() == generation
                && let Err(error) = store
                    .compare_and_set(&name, Some(&data), None, Some(&lock))
                    .await
            {
                tracing::warn!(%error, "cannot delete the rejected OAuth session");
            }
            drop(lock);
            engine.end();
            let _ = events.send(SessionEvent::Deleted {
                did,
                session_id,
                cause: DeleteCause::InvalidToken,
            });
        });
    }
}

impl AuthSession for OAuthSession {
    fn did(&self) -> Option<Did> {
        Some(self.did.clone())
    }

    fn service_url(&self) -> Option<Url> {
        let current = self.engine.last();
        self.pds
            .get_or_try(&current.stored.aud, || current.stored.pds())
            .ok()
    }

    fn before_request<'a>(
        &'a self,
        request: &'a RequestInfo<'a>,
    ) -> BoxFuture<'a, Result<AuthHeaders, AuthError>> {
        Box::pin(async move {
            let current = self.engine.before_request().await?;
            let stored = &current.stored;
            let key = self.dpop_key_of(stored)?;
            let ath = self.ath.get_or(&stored.access_token, || {
                dpop::ath_of(stored.access_token.expose())
            });
            let (proof, _) = dpop::proof_with_ath(
                &key,
                request.method,
                request.url,
                &self.ctx.nonces,
                Some(&ath),
            )
            .map_err(|error| AuthError::RefreshFailed {
                transient: false,
                reason: format!("cannot make a DPoP proof: {error}"),
                source: None,
            })?;
            Ok(AuthHeaders::none()
                .with_header(
                    "authorization",
                    Secret::new(format!("DPoP {}", stored.access_token.expose())),
                )
                .with_header("dpop", Secret::new(proof))
                .with_basis(stored.generation().clone()))
        })
    }

    fn after_response(
        &self,
        request: &RequestInfo<'_>,
        response: &ResponseInfo<'_>,
        sent: &AuthHeaders,
    ) -> AfterResponse {
        // Every response's nonce is kept, errors included (checklist item 32).
        let origin = || origin_of(request.url);
        if let Some(nonce) = response.header("dpop-nonce") {
            self.ctx.nonces.put(&origin(), nonce);
        }
        let www = response.header("www-authenticate");
        if dpop::is_rs_nonce_challenge(response.status(), www) {
            // Retry (the transport does so once) when there is now a nonce other than the one
            // this request carried, even if a concurrent response stored it first.
            let sent_nonce = sent
                .headers()
                .find(|(name, _)| *name == "dpop")
                .and_then(|(_, proof)| dpop::nonce_of(proof.expose()));
            return if dpop::should_retry(&self.ctx.nonces, &origin(), sent_nonce.as_deref()) {
                AfterResponse::Retry
            } else {
                AfterResponse::Accept
            };
        }
        if response.is_token_rejection() {
            let reactive = self
                .reactive
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if let Some(basis) = sent.basis()
                && let Some((generation, at)) = &reactive
                && generation == basis
                && at.elapsed() < REACTIVE_WINDOW
            {
                // Rejected again right after a refresh: the session is dead.
                self.delete_invalid(basis.clone());
                return AfterResponse::Accept;
            }
            return AfterResponse::Refresh;
        }
        AfterResponse::Accept
    }

    fn refresh<'a>(
        &'a self,
        seen: Option<&'a AuthHeaders>,
    ) -> BoxFuture<'a, Result<(), AuthError>> {
        Box::pin(async move {
            let current = self
                .engine
                .refresh(seen.and_then(AuthHeaders::basis))
                .await?;
            if seen.is_none() {
                // A forced refresh (`client.refresh()`), not the transport's reactive one.
                return Ok(());
            }
            *self.reactive.lock().unwrap_or_else(PoisonError::into_inner) =
                Some((current.stored.generation().clone(), Instant::now()));
            Ok(())
        })
    }

    fn logout(&self) -> BoxFuture<'_, Result<(), Error<GenericError>>> {
        Box::pin(async move {
            self.engine.logout().await?;
            let _ = self.events.send(SessionEvent::Deleted {
                did: self.did.clone(),
                session_id: self.key.session_id().cloned(),
                cause: DeleteCause::SignedOut,
            });
            Ok(())
        })
    }
}

impl fmt::Debug for OAuthSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.engine.last();
        f.debug_struct("OAuthSession")
            .field("did", &self.did.as_str())
            .field("session_id", &self.key.session_id().map(SessionId::as_str))
            .field("pds", &last.stored.aud)
            .field("issuer", &last.stored.issuer)
            .field("scope", &last.stored.scope)
            .field("active", &!self.engine.has_ended())
            .field("tokens", &"<redacted>")
            .field("dpop_key", &"<redacted>")
            .finish()
    }
}
