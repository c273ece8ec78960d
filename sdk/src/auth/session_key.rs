//! Store keys of sessions, one account with several sessions (one per device).
//!
//! Every session kind stores its sessions under keys of one scheme:
//!
//! | key | session |
//! |---|---|
//! | `<kind>:<did>` | the account's default session (what [`PasswordSession::login`] and [`PasswordSession::restore`] use, and an OAuth authorization without a session id) |
//! | `<kind>:<did>#<session id>` | one of several sessions of the account, named by a [`SessionId`] |
//!
//! `<kind>` names the session kind (`password`, `oauth`, …). Every kind restores the same
//! way: by id ([`PasswordSession::restore_id`], [`OAuthClient::restore_id`]), or without one
//! the default session, else the account's only session, and with several sessions but no
//! default one a `NoSession` error saying to restore by id ([`PasswordSession::restore`],
//! [`OAuthClient::restore`]). A DID never contains `#`, so
//! the keys of one account never overlap those of another, even when one DID is a prefix of
//! the other; [`SessionKey::list`] lists one account's sessions of one kind.
//!
//! ```
//! use atlex::auth::{SessionId, SessionKey};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let did: atlex::types::Did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz".parse()?;
//! let phone = SessionId::new("phone")?;
//! let key = SessionKey::new("password", did.clone(), Some(phone.clone()));
//! assert_eq!(key.to_string(), "password:did:plc:ewvi7nxzyoun6zhxrhs64oiz#phone");
//! assert_eq!(SessionKey::parse("password", &key.to_string()), Some(key));
//! assert_eq!(SessionKey::new("password", did, None).to_string(), "password:did:plc:ewvi7nxzyoun6zhxrhs64oiz");
//! # Ok(()) }
//! ```
//!
//! [`PasswordSession::login`]: super::PasswordSession::login
//! [`PasswordSession::restore`]: super::PasswordSession::restore
//! [`PasswordSession::restore_id`]: super::PasswordSession::restore_id
//! [`OAuthClient::restore`]: super::oauth::OAuthClient::restore
//! [`OAuthClient::restore_id`]: super::oauth::OAuthClient::restore_id

use std::fmt;
use std::str::FromStr;

use atlex_types::Did;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::store::{SessionData, SessionStore, StoreError};

/// The longest session id accepted, in bytes.
pub const MAX_SESSION_ID_LEN: usize = 64;

/// The name of one of an account's sessions (a device, a browser, a worker): 1 to 64 ASCII
/// letters, digits, `-`, `_` or `.`.
///
/// Choose it yourself (`SessionId::new("phone")`) or let the SDK pick a random one
/// ([`SessionId::generate`]) and keep it where the device can send it back (a cookie). It is
/// not a secret: it only names a session, whose tokens stay in the store.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(String);

/// A session id that breaks the rules of [`SessionId`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSessionId {
    reason: String,
}

impl fmt::Display for InvalidSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid session id: {}", self.reason)
    }
}

impl std::error::Error for InvalidSessionId {}

impl SessionId {
    /// Checks and wraps a session id.
    pub fn new(id: impl Into<String>) -> Result<SessionId, InvalidSessionId> {
        let id = id.into();
        if id.is_empty() {
            return Err(InvalidSessionId {
                reason: "it is empty".into(),
            });
        }
        if id.len() > MAX_SESSION_ID_LEN {
            return Err(InvalidSessionId {
                reason: format!(
                    "{} bytes, more than the {MAX_SESSION_ID_LEN} allowed",
                    id.len()
                ),
            });
        }
        if let Some((at, c)) = id
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(InvalidSessionId {
                reason: format!(
                    "{c:?} at byte {at} (allowed: ASCII letters, digits, '-', '_', '.')"
                ),
            });
        }
        Ok(SessionId(id))
    }

    /// A random session id: 128 bits from the OS random source, as 32 hex digits.
    pub fn generate() -> Result<SessionId, getrandom::Error> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)?;
        Ok(SessionId(
            bytes.iter().map(|b| format!("{b:02x}")).collect(),
        ))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({:?})", self.0)
    }
}

impl FromStr for SessionId {
    type Err = InvalidSessionId;

    fn from_str(s: &str) -> Result<SessionId, InvalidSessionId> {
        SessionId::new(s)
    }
}

impl AsRef<str> for SessionId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for SessionId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SessionId, D::Error> {
        let text = String::deserialize(deserializer)?;
        SessionId::new(text).map_err(serde::de::Error::custom)
    }
}

/// Where one session is stored: its kind, its account and, for one of several sessions of the
/// account, its [`SessionId`]. `Display` gives the store key (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionKey {
    kind: &'static str,
    did: Did,
    id: Option<SessionId>,
}

impl SessionKey {
    /// The key of `did`'s session of `kind` (`"password"`, `"oauth"`): the default session
    /// when `id` is `None`.
    pub fn new(kind: &'static str, did: Did, id: Option<SessionId>) -> SessionKey {
        SessionKey { kind, did, id }
    }

    /// Reads a store key of `kind` back; `None` when `key` is not one.
    pub fn parse(kind: &'static str, key: &str) -> Option<SessionKey> {
        let rest = key.strip_prefix(kind)?.strip_prefix(':')?;
        let (did, id) = match rest.split_once('#') {
            Some((did, id)) => (did, Some(SessionId::new(id).ok()?)),
            None => (rest, None),
        };
        Some(SessionKey {
            kind,
            did: did.parse().ok()?,
            id,
        })
    }

    /// The session kind.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The account.
    pub fn did(&self) -> &Did {
        &self.did
    }

    /// The session id; `None` for the account's default session.
    pub fn session_id(&self) -> Option<&SessionId> {
        self.id.as_ref()
    }

    /// Every stored session of `kind` for `did` (the default one first, then by session id),
    /// with one [`SessionStore::list`] call.
    pub async fn list(
        store: &dyn SessionStore,
        kind: &'static str,
        did: &Did,
    ) -> Result<Vec<SessionKey>, StoreError> {
        let prefix = SessionKey::new(kind, did.clone(), None).to_string();
        let mut keys: Vec<SessionKey> = store
            .list(&prefix)
            .await?
            .iter()
            .filter_map(|key| SessionKey::parse(kind, key))
            // `list` matches by prefix: drop the sessions of a DID that merely starts with
            // this one.
            .filter(|key| key.did == *did)
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// Finds the stored session a `restore` of every session kind means: `did`'s session
    /// `id`, or with `id` `None` its default session, else its only session. When there is
    /// none, or several with ids and no default one, [`Lookup::Missing`] says so (in words
    /// naming the kind as `label`, e.g. `"password"`, `"OAuth"`), the same for every kind.
    pub(crate) async fn find(
        store: &dyn SessionStore,
        kind: &'static str,
        label: &str,
        did: &Did,
        id: Option<&SessionId>,
    ) -> Result<Lookup, StoreError> {
        let key = SessionKey::new(kind, did.clone(), id.cloned());
        if let Some(data) = store.get(&key.to_string()).await? {
            return Ok(Lookup::Found(key, data));
        }
        if let Some(id) = id {
            return Ok(Lookup::Missing(format!(
                "no {label} session {id} is stored for {did}"
            )));
        }
        // No default session: the account's only session, if it has exactly one.
        let mut keys = SessionKey::list(store, kind, did).await?;
        if keys.len() > 1 {
            return Ok(Lookup::Missing(format!(
                "no default {label} session is stored for {did}, but {} sessions with ids \
                 are: restore one by its id",
                keys.len()
            )));
        }
        if let Some(only) = keys.pop()
            && let Some(data) = store.get(&only.to_string()).await?
        {
            return Ok(Lookup::Found(only, data));
        }
        Ok(Lookup::Missing(format!(
            "no {label} session is stored for {did}"
        )))
    }
}

/// What [`SessionKey::find`] found.
pub(crate) enum Lookup {
    /// The session's key and stored value.
    Found(SessionKey, SessionData),
    /// Nothing to restore, and why (for a `NoSession` error).
    Missing(String),
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.did)?;
        if let Some(id) = &self.id {
            write!(f, "#{id}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::MemoryStore;
    use crate::auth::store::SessionData;

    fn did(s: &str) -> Did {
        s.parse().unwrap()
    }

    #[test]
    fn session_ids_are_checked() {
        assert!(SessionId::new("phone-1_a.b").is_ok());
        assert!(SessionId::new("a".repeat(MAX_SESSION_ID_LEN)).is_ok());
        for bad in ["", "a#b", "a b", "é", "a:b", "a/b"] {
            assert!(SessionId::new(bad).is_err(), "{bad:?}");
        }
        let long = SessionId::new("a".repeat(MAX_SESSION_ID_LEN + 1)).unwrap_err();
        assert!(long.to_string().contains("65 bytes"), "{long}");
        let generated = SessionId::generate().unwrap();
        assert_eq!(generated.as_str().len(), 32);
        assert_ne!(generated, SessionId::generate().unwrap());
        assert_eq!(SessionId::new(generated.as_str()).unwrap(), generated);
    }

    #[test]
    fn keys_round_trip_and_reject_others() {
        let d = did("did:plc:abc");
        for id in [None, Some(SessionId::new("laptop").unwrap())] {
            let key = SessionKey::new("password", d.clone(), id);
            assert_eq!(SessionKey::parse("password", &key.to_string()), Some(key));
        }
        assert_eq!(
            SessionKey::new("oauth", d.clone(), Some(SessionId::new("x").unwrap())).to_string(),
            "oauth:did:plc:abc#x"
        );
        for other in [
            "oauth:did:plc:abc",
            "password:",
            "password:not-a-did",
            "password:did:plc:abc#",
            "password:did:plc:abc#a b",
            "passworddid:plc:abc",
        ] {
            assert_eq!(SessionKey::parse("password", other), None, "{other}");
        }
    }

    #[test]
    fn session_ids_serialize_as_checked_strings() {
        let id = SessionId::new("phone").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"phone\"");
        assert_eq!(serde_json::from_str::<SessionId>("\"phone\"").unwrap(), id);
        let error = serde_json::from_str::<SessionId>("\"a b\"").unwrap_err();
        assert!(error.to_string().contains("invalid session id"), "{error}");
    }

    #[tokio::test]
    async fn find_takes_the_id_else_the_default_else_the_only_one() {
        let store = MemoryStore::new();
        let d = did("did:plc:abc");
        let phone = SessionId::new("phone").unwrap();
        let found = |lookup: Lookup| match lookup {
            Lookup::Found(key, data) => (key.to_string(), data.as_str().to_owned()),
            Lookup::Missing(what) => panic!("{what}"),
        };
        let missing = |lookup: Lookup| match lookup {
            Lookup::Found(key, _) => panic!("{key}"),
            Lookup::Missing(what) => what,
        };
        let find = |id: Option<SessionId>| {
            let (store, d) = (&store, &d);
            async move {
                SessionKey::find(store, "password", "password", d, id.as_ref())
                    .await
                    .unwrap()
            }
        };
        assert_eq!(
            missing(find(None).await),
            "no password session is stored for did:plc:abc"
        );
        assert_eq!(
            missing(find(Some(phone.clone())).await),
            "no password session phone is stored for did:plc:abc"
        );
        store
            .set("password:did:plc:abc#phone", &SessionData::new("p"))
            .await
            .unwrap();
        // Another account's sessions do not count.
        store
            .set("password:did:plc:abcd#x", &SessionData::new("x"))
            .await
            .unwrap();
        let only = ("password:did:plc:abc#phone".to_owned(), "p".to_owned());
        assert_eq!(found(find(None).await), only);
        assert_eq!(found(find(Some(phone.clone())).await), only);
        store
            .set("password:did:plc:abc#laptop", &SessionData::new("l"))
            .await
            .unwrap();
        let several = missing(find(None).await);
        assert!(several.contains("2 sessions"), "{several}");
        assert!(several.contains("restore one by its id"), "{several}");
        store
            .set("password:did:plc:abc", &SessionData::new("d"))
            .await
            .unwrap();
        assert_eq!(
            found(find(None).await),
            ("password:did:plc:abc".to_owned(), "d".to_owned())
        );
    }

    #[tokio::test]
    async fn list_gives_one_accounts_sessions_of_one_kind() {
        let store = MemoryStore::new();
        let value = SessionData::new("{}");
        for key in [
            "password:did:plc:abc#phone",
            "password:did:plc:abc",
            "password:did:plc:abc#laptop",
            "password:did:plc:abcd",
            "password:did:plc:abcd#phone",
            "oauth:did:plc:abc#phone",
            "password:did:plc:abc#not valid",
        ] {
            store.set(key, &value).await.unwrap();
        }
        let listed: Vec<String> = SessionKey::list(&store, "password", &did("did:plc:abc"))
            .await
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            listed,
            [
                "password:did:plc:abc",
                "password:did:plc:abc#laptop",
                "password:did:plc:abc#phone"
            ]
        );
    }
}
