//! Authentication: session kinds (anonymous, password, OAuth) behind one interface,
//! [`AuthSession`], and session stores.
//!
//! * [`Anonymous`] — no credentials (public AppView).
//! * [`PasswordSession`] — `com.atproto.server.createSession` / `refreshSession`, Bearer
//!   tokens, refreshed proactively (before the access token's `exp`) and reactively (on
//!   `ExpiredToken` / `invalid_token`), single-flight under the store's lock.
//!
//! Credentials are held as [`Secret`]s, which never print.

mod jwt;
pub mod password;
mod secret;
mod session;
pub mod store;

pub use password::PasswordSession;
pub use secret::Secret;
pub use session::{
    AfterResponse, Anonymous, AuthError, AuthHeaders, AuthSession, RequestInfo, ResponseInfo,
};
pub use store::{BoxFuture, SessionData, SessionStore, StoreError, StoreLock};
