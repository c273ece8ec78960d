//! atproto OAuth: the client side of the [atproto OAuth profile] (PAR, PKCE S256, DPoP-bound
//! tokens, client metadata documents), as an [`AuthSession`](crate::xrpc::AuthSession) for
//! the XRPC [`Client`](crate::xrpc::Client).
//!
//! ```no_run
//! # async fn example(store: std::sync::Arc<dyn atlex::auth::SessionStore>) -> Result<(), Box<dyn std::error::Error>> {
//! use atlex::auth::oauth::{AuthorizeOptions, CallbackParams, ClientMetadata, OAuthClient};
//!
//! // Once per app: a loopback client (CLI, development); a web app uses
//! // `ClientMetadata::discoverable(…)` (and `.confidential(jwks_uri)` with a `Keyset`).
//! let metadata = ClientMetadata::loopback(&["http://127.0.0.1/callback"], "atproto transition:generic")?;
//! let oauth = OAuthClient::builder(metadata).session_store(store).build()?;
//!
//! // 1. Send the user to the authorization server.
//! let url = oauth
//!     .authorize("alice.bsky.social", AuthorizeOptions::new().app_state("/home"))
//!     .await?;
//! println!("open {url}");
//! // 2. The server redirects to the redirect URI with `?state=…&iss=…&code=…`.
//! # let query = "";
//! let done = oauth.callback(CallbackParams::from_query(query)).await?;
//! let client = done.client; // an atlex::xrpc::Client: typed calls, get/post, blobs
//! # let did = done.session.did;
//! // 3. Later, or in another process sharing the store:
//! let client = oauth.restore(&did).await?;
//! client.logout().await?; // revoke and delete
//! # Ok(()) }
//! ```
//!
//! # Shape
//!
//! * [`OAuthClient`] (built by [`OAuthClientBuilder`]): the client metadata
//!   ([`ClientMetadata`], validated by the rules of the checklist §4), an optional
//!   [`Keyset`] (confidential clients: `private_key_jwt` with ES256), the session store and the
//!   state store (any [`SessionStore`](crate::auth::SessionStore); pending authorizations are
//!   stored with a TTL), the [`IdentityResolver`](crate::identity::IdentityResolver), and
//!   `allow_http` for development. [`OAuthClient::client_metadata_document`] and
//!   [`OAuthClient::jwks`] are the JSON values a discoverable client serves.
//! * [`OAuthClient::authorize`] (`input`: handle, DID, or PDS / entryway URL;
//!   [`AuthorizeOptions`]: scope, app state, prompt, ui_locales, redirect URI, session id) →
//!   the URL to send the user to.
//! * [`OAuthClient::callback`] ([`CallbackParams`]) → [`Authorized`]: the XRPC client, the
//!   app state and the [`SessionInfo`] (granted scope). The user rejecting consent is
//!   [`OAuthError::AuthorizationDenied`] with the app state.
//! * [`OAuthClient::restore`] / [`OAuthClient::restore_id`] → the client, or
//!   [`OAuthError::NoSession`]; [`OAuthClient::sessions`] lists an account's sessions.
//!   `client.logout()` and [`OAuthClient::revoke_session`] sign one session out,
//!   [`OAuthClient::revoke`] all of the account's (revoke at the server, best effort, then
//!   always delete locally). `client.refresh()` forces a refresh.
//! * [`OAuthClient::events`]: a broadcast of [`SessionEvent`]s (`Updated` after each login
//!   and refresh, `Deleted` with its [`DeleteCause`]).
//! * Errors: [`OAuthError`] for the flow; for calls, the transport's
//!   [`AuthError`](crate::xrpc::AuthError) (`SessionExpired` when the session was deleted: the
//!   refresh was rejected or revoked, or the token stayed invalid; `RefreshFailed { transient:
//!   true }` when the network or a 5xx failed: the session is kept). A `403
//!   ScopeMissingError` from the PDS is an ordinary XRPC error ([`scope_missing`] tells it):
//!   no refresh, no sign-out.
//!
//! # Sessions
//!
//! Stored under the [`SessionKey`](crate::auth::SessionKey) scheme every session kind shares:
//! `oauth:<did>` for the account's default session, `oauth:<did>#<session id>` for one of
//! several (JSON version 2): the tokens, the granted scope, the PDS (`aud`), the issuer, the
//! negotiated client auth method (`{method, kid}`: a confidential client's sessions stay bound
//! to the keyset key they were created with) and the session's own DPoP private key (a private
//! JWK). Pending authorizations are stored under `oauth-state:<state>` with a TTL and consumed
//! with a compare-and-set (single use).
//!
//! ## Several sessions per account
//!
//! An account may be signed in several times at once (a phone and a laptop, two browsers),
//! each session with its own tokens and DPoP key, refreshed and signed out on its own. Name
//! each with a [`SessionId`](crate::auth::SessionId) (chosen, or
//! [`SessionId::generate`](crate::auth::SessionId::generate)d and kept by the device, e.g.
//! in a cookie):
//!
//! * [`AuthorizeOptions::session_id`] stores the new session under that id; without one the
//!   authorization becomes the account's default session. A new authorization for the same
//!   account and id replaces (and revokes) the one stored there, and only that one.
//! * [`OAuthClient::restore_id`] brings one back; [`OAuthClient::restore`] brings back the
//!   default session, or the account's only session when no default one is stored; with
//!   several and no default it fails with [`OAuthError::NoSession`] saying to restore by id
//!   (the rules of [`PasswordSession::restore`](crate::auth::PasswordSession::restore)).
//! * [`OAuthClient::sessions`] lists the account's sessions; `client.logout()` /
//!   [`OAuthClient::revoke_session`] end one, [`OAuthClient::revoke`] all.
//!
//! ```no_run
//! # async fn example(oauth: atlex::auth::oauth::OAuthClient, query: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use atlex::auth::SessionId;
//! use atlex::auth::oauth::{AuthorizeOptions, CallbackParams};
//! // A browser signing in: a fresh id, kept in the browser's cookie.
//! let id = SessionId::generate()?;
//! let url = oauth
//!     .authorize("alice.bsky.social", AuthorizeOptions::new().session_id(id.clone()))
//!     .await?;
//! // … the callback stores the session as `oauth:<did>#<id>` …
//! let done = oauth.callback(CallbackParams::from_query(query)).await?;
//! let did = done.session.did;
//! // That browser's next request:
//! let client = oauth.restore_id(&did, &id).await?;
//! for key in oauth.sessions(&did).await? {
//!     println!("{:?}", key.session_id()); // every browser signed in to the account
//! }
//! client.logout().await?; // this browser only
//! # let _ = url; Ok(()) }
//! ```
//!
//! **Migration.** atlex before this scheme stored OAuth sessions under
//! `oauth:<did>:<session id>` (`default` for the default session, JSON version 1).
//! [`OAuthClient::sessions`], and `restore` / `restore_id` when they find nothing under the
//! new key, move an account's old sessions to the new keys (under the store lock; a session
//! already at the new key wins). Pending authorizations of the old format are still
//! accepted. Stop every process of the old version before starting the new one: an old
//! process does not see a moved session, and the old version cannot read version 2.
//!
//! * **DPoP** ([`dpop`]): one ES256 key per session; every request gets a new proof (`jti`,
//!   `htm`, `htu` without query or fragment, `iat`, the origin's nonce, `ath` toward the PDS
//!   only). Nonces are cached per origin and updated from every response; a `use_dpop_nonce`
//!   challenge (AS: `400` JSON error; PDS: `401` `WWW-Authenticate: DPoP
//!   error="use_dpop_nonce"`) is retried once with a new proof. XRPC bodies are bytes or a
//!   file re-opened per attempt, and OAuth forms are rebuilt per attempt, so every retried
//!   body is replayable.
//! * **Refresh** runs through the shared [`RefreshEngine`](crate::auth::refresh::RefreshEngine):
//!   proactive (before expiry, with the engine's margin and jitter) and reactive (a `401`
//!   `invalid_token` refreshes and retries once; still rejected → the session is deleted),
//!   single-flight in process and under the store's fenced lock across processes, in a task
//!   that is never cancelled and always persists. Before each refresh the issuer is
//!   re-verified from the DID document (uncached); the new `sub` must be the stored one.
//!
//!
//! # Metadata and time limits
//!
//! * The PDS's protected-resource metadata names its authorization server. A PDS from a DID
//!   document that has none at all (`404`) is taken as its own authorization server (the
//!   legacy fallback); any other failure is an error.
//! * Validated authorization-server metadata is cached per issuer, and the sign-in input's
//!   protected-resource answer per PDS origin ([`METADATA_CACHE_TTL`], at most
//!   [`METADATA_CACHE_SIZE`] entries each; [`OAuthClientBuilder::metadata_cache_ttl`]), so a
//!   steady app does not fetch them for every sign-in and refresh. The issuer check never
//!   uses the cache.
//! * Every fetch and request is bounded: [`OAuthClientBuilder::metadata_timeout`],
//!   [`OAuthClientBuilder::request_timeout`], [`OAuthClientBuilder::issuer_check_timeout`]
//!   (and the identity resolver's own timeouts); bodies by [`MAX_METADATA_BYTES`] and
//!   [`MAX_RESPONSE_BYTES`].
//!
//! [atproto OAuth profile]: https://atproto.com/specs/oauth

mod client;
pub mod dpop;
mod error;
pub mod jose;
mod keyset;
mod metadata;
mod server;
mod session;

pub use client::{
    AuthorizeOptions, Authorized, CallbackParams, DEFAULT_STATE_TTL, OAuthClient,
    OAuthClientBuilder,
};
pub use error::{DeleteCause, OAuthError, scope_missing};
pub use jose::{Es256Key, JoseError};
pub use keyset::{CLIENT_ASSERTION_TYPE, ClientKey, Keyset};
pub use metadata::{
    ATPROTO_SCOPE, AuthMethod, AuthorizationServerMetadata, ClientMetadata,
    ProtectedResourceMetadata, check_discoverable_client_id, check_issuer, is_valid_scope,
    scope_contains,
};
pub use server::{
    ISSUER_CHECK_TIMEOUT, MAX_METADATA_BYTES, MAX_RESPONSE_BYTES, METADATA_CACHE_SIZE,
    METADATA_CACHE_TTL, METADATA_TIMEOUT, REQUEST_TIMEOUT,
};
pub use session::{OAuthSession, SessionEvent, SessionInfo};
