//! Login by handle or DID: find the account's PDS through an [`IdentityResolver`], then
//! log in there.

use std::fmt;
use std::sync::Arc;

use atlex_types::{AtIdentifier, Did};

use super::password::PasswordSession;
use super::store::SessionStore;
use crate::identity::{Identity, IdentityError, IdentityResolver};
use crate::xrpc::Secret;
use crate::xrpc::{Client, Error};

/// Why [`PasswordSession::login_with_resolver`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoginError {
    /// The handle or DID could not be resolved to an identity with a PDS.
    Identity(IdentityError),
    /// The PDS refused the login (wrong password, …) or could not be reached.
    Login(Error),
    /// The PDS logged in another account than the one resolved (the session was ended).
    WrongAccount {
        /// The DID that was resolved.
        expected: Did,
        /// The DID the PDS returned.
        got: Option<Did>,
    },
}

impl fmt::Display for LoginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginError::Identity(error) => write!(f, "cannot find the account's PDS: {error}"),
            LoginError::Login(error) => write!(f, "login failed: {error}"),
            LoginError::WrongAccount { expected, got } => match got {
                Some(got) => write!(
                    f,
                    "the PDS logged in {got}, not the resolved account {expected}; the session was ended"
                ),
                None => write!(f, "the PDS returned no account for {expected}"),
            },
        }
    }
}

impl std::error::Error for LoginError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoginError::Identity(error) => Some(error),
            LoginError::Login(error) => Some(error),
            LoginError::WrongAccount { .. } => None,
        }
    }
}

impl From<IdentityError> for LoginError {
    fn from(error: IdentityError) -> Self {
        LoginError::Identity(error)
    }
}

impl From<Error> for LoginError {
    fn from(error: Error) -> Self {
        LoginError::Login(error)
    }
}

impl PasswordSession {
    /// Logs in by handle or DID, with no service URL: resolves `identifier` (verifying the
    /// handle both ways), logs in at the PDS named by the account's DID document with the
    /// **DID** as the identifier, and checks that the PDS logged in that DID.
    ///
    /// For an entryway (`https://bsky.social`) or an email address, use
    /// [`PasswordSession::login`] with the service URL.
    pub async fn login_with_resolver(
        resolver: &IdentityResolver,
        identifier: &AtIdentifier,
        password: impl Into<Secret>,
        store: Arc<dyn SessionStore>,
    ) -> Result<Client, LoginError> {
        let identity = resolver.resolve(identifier).await?;
        PasswordSession::login_identity(&identity, password, store).await
    }

    /// [`PasswordSession::login_with_resolver`] for an identity already resolved.
    pub async fn login_identity(
        identity: &Identity,
        password: impl Into<Secret>,
        store: Arc<dyn SessionStore>,
    ) -> Result<Client, LoginError> {
        let client = identity.client().map_err(|error| {
            LoginError::Login(Error::InvalidRequest(format!(
                "the PDS URL of {}: {error}",
                identity.did
            )))
        })?;
        let client =
            PasswordSession::login_with(&client, identity.did.as_str(), password, None, store)
                .await?;
        let got = client.did();
        if got.as_ref() != Some(&identity.did) {
            if let Err(error) = client.logout().await {
                tracing::warn!(expected = %identity.did, %error,
                    "could not end the session of the wrong account");
            }
            return Err(LoginError::WrongAccount {
                expected: identity.did.clone(),
                got,
            });
        }
        Ok(client)
    }
}
