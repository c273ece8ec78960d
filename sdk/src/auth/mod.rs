//! Authentication: session kinds (password now, OAuth next) implementing the transport's
//! [`AuthSession`] interface (defined in [`crate::xrpc`] and re-exported here), the refresh
//! engine they share, and session stores.
//!
//! * [`Anonymous`] — no credentials (public AppView).
//! * [`PasswordSession`] — `com.atproto.server.createSession` / `refreshSession`, Bearer
//!   tokens, refreshed proactively (before the access token's `exp`) and reactively (on
//!   `ExpiredToken` / `invalid_token`) by the [`refresh`] engine: single-flight in process,
//!   under the store's fenced lock across processes.
//!   [`PasswordSession::login_with_resolver`] logs in by handle or DID, finding the PDS through
//!   an [`IdentityResolver`](crate::identity::IdentityResolver).
//!
//! * [`oauth::OAuthClient`] — atproto OAuth (PAR, PKCE, DPoP-bound tokens): an app's
//!   client metadata and keys, the authorization flow, and [`oauth::OAuthSession`]s refreshed
//!   by the same engine.
//! * [`SessionKey`] / [`SessionId`] — the store key scheme every session kind uses, with
//!   several sessions per account (one per device): `<kind>:<did>#<session id>`.
//!
//! Credentials are held as [`Secret`]s, which never print.

pub(crate) mod jwt;
mod login;
mod memo;
pub mod oauth;
pub mod password;
pub mod refresh;
pub mod session_key;
pub mod store;

pub use crate::xrpc::{
    AfterResponse, Anonymous, AuthError, AuthHeaders, AuthSession, RequestInfo, ResponseInfo,
    Secret,
};
pub use login::LoginError;
pub use password::PasswordSession;
pub use session_key::{InvalidSessionId, SessionId, SessionKey};
#[cfg(feature = "encryption")]
pub use store::encrypted::{EncryptedStore, EncryptionKey};
pub use store::file::FileStore;
pub use store::memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use store::postgres::{PostgresStore, PostgresStoreOptions};
#[cfg(feature = "redis")]
pub use store::redis::{RedisStore, RedisStoreOptions};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use store::sqlite::{SqliteStore, SqliteStoreOptions};
pub use store::{
    BoxFuture, DEFAULT_LEASE, DEFAULT_LOCK_TIMEOUT, LeaseState, SessionData, SessionStore,
    StoreError, StoreErrorKind, StoreLock, renewal_period,
};
