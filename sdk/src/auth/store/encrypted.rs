//! [`EncryptedStore`]: encryption at rest for any session store.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

use super::{BoxFuture, SessionData, SessionStore, StoreError, StoreErrorKind, StoreLock};

/// What every encrypted value starts with; the format version is part of it.
const MAGIC: &str = "atlex-enc:v1:";
const NONCE_LEN: usize = 24;

/// One encryption key: 32 random bytes and the id written beside each value encrypted with it.
///
/// `Debug` shows the id only.
#[derive(Clone)]
pub struct EncryptionKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl EncryptionKey {
    /// A key with id `id` (1 to 32 ASCII letters, digits, `-` or `_`) and 32 bytes of key
    /// material (from a secrets manager, or [`EncryptionKey::generate`]).
    pub fn new(id: &str, material: [u8; 32]) -> Result<EncryptionKey, StoreError> {
        let valid = !id.is_empty()
            && id.len() <= 32
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(StoreError::new(
                format!(
                    "encrypted store: key id {id:?} must be 1 to 32 ASCII letters, digits, - or _"
                ),
                None,
            ));
        }
        let key = Key::from(material);
        Ok(EncryptionKey {
            id: id.to_owned(),
            cipher: XChaCha20Poly1305::new(&key),
        })
    }

    /// A key with id `id` and fresh random material (keep its bytes elsewhere to read the
    /// values again: this returns them beside the key).
    pub fn generate(id: &str) -> Result<(EncryptionKey, [u8; 32]), StoreError> {
        let mut material = [0u8; 32];
        getrandom::fill(&mut material).map_err(|err| {
            StoreError::new(
                "encrypted store: cannot generate a key",
                Some(Box::new(err)),
            )
        })?;
        Ok((EncryptionKey::new(id, material)?, material))
    }

    /// The key's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Encrypts the values of another store (feature `encryption`): XChaCha20-Poly1305 (the
/// RustCrypto `chacha20poly1305` crate), a fresh random 192-bit nonce per write, and the
/// store key as associated data, so a value copied under another key does not decrypt.
///
/// A stored value is `atlex-enc:v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`. Writes use
/// the current key; reads use whichever configured key the value names, so keys rotate: add
/// the new key as current, keep the old ones until every session was written again (each
/// refresh rewrites its session).
///
/// A value that does not decrypt (tampered, a key id that is not configured, not encrypted at
/// all) is an error of kind [`StoreErrorKind::Corrupt`] naming the key and key id. It is never
/// treated as absent: the session is not deleted, and it reads again once the right key is
/// configured.
///
/// Keys, locks, listing and expiry are the inner store's; keys are not encrypted (they name
/// sessions, e.g. `password:<did>`).
pub struct EncryptedStore {
    inner: Arc<dyn SessionStore>,
    current: EncryptionKey,
    older: Vec<EncryptionKey>,
}

impl EncryptedStore {
    /// Encrypts `inner`'s values with `current`; values written with `older` keys still read.
    pub fn new(
        inner: Arc<dyn SessionStore>,
        current: EncryptionKey,
        older: Vec<EncryptionKey>,
    ) -> EncryptedStore {
        EncryptedStore {
            inner,
            current,
            older,
        }
    }

    fn key(&self, id: &str) -> Option<&EncryptionKey> {
        std::iter::once(&self.current)
            .chain(&self.older)
            .find(|key| key.id == id)
    }

    fn seal(&self, key: &str, value: &SessionData) -> Result<SessionData, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|err| {
            StoreError::during(
                "encrypted store",
                "set",
                key,
                "cannot make a nonce",
                Some(Box::new(err)),
            )
        })?;
        let sealed = self
            .current
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: value.as_str().as_bytes(),
                    aad: key.as_bytes(),
                },
            )
            .map_err(|_| {
                StoreError::during("encrypted store", "set", key, "encryption failed", None)
            })?;
        let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        Ok(SessionData::new(format!(
            "{MAGIC}{}:{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(bytes)
        )))
    }

    fn open(&self, op: &str, key: &str, stored: &SessionData) -> Result<SessionData, StoreError> {
        let corrupt = |what: String| {
            StoreError::during("encrypted store", op, key, &what, None)
                .with_kind(StoreErrorKind::Corrupt)
        };
        let Some(rest) = stored.as_str().strip_prefix(MAGIC) else {
            return Err(corrupt(
                "the stored value is not encrypted (written without EncryptedStore?)".to_owned(),
            ));
        };
        let Some((id, payload)) = rest.split_once(':') else {
            return Err(corrupt("the encrypted value has no key id".to_owned()));
        };
        let Some(encryption_key) = self.key(id) else {
            return Err(corrupt(format!(
                "the value was encrypted with key id {id:?}, which is not configured"
            )));
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| corrupt("the encrypted value is not base64url".to_owned()))?;
        if bytes.len() < NONCE_LEN {
            return Err(corrupt("the encrypted value is truncated".to_owned()));
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| corrupt("the encrypted value is truncated".to_owned()))?;
        let plain = encryption_key
            .cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: key.as_bytes(),
                },
            )
            .map_err(|_| {
                corrupt(format!(
                    "the value does not decrypt with key id {id:?} (tampered, or stored under \
                     another key)"
                ))
            })?;
        String::from_utf8(plain)
            .map(SessionData::new)
            .map_err(|_| corrupt("the decrypted value is not UTF-8".to_owned()))
    }
}

impl fmt::Debug for EncryptedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedStore")
            .field("current_key", &self.current.id)
            .field(
                "older_keys",
                &self
                    .older
                    .iter()
                    .map(|key| key.id.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl SessionStore for EncryptedStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<SessionData>, StoreError>> {
        Box::pin(async move {
            match self.inner.get(key).await? {
                Some(stored) => self.open("get", key, &stored).map(Some),
                None => Ok(None),
            }
        })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a SessionData,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let sealed = self.seal(key, value)?;
            self.inner.set(key, &sealed).await
        })
    }

    fn set_expiring<'a>(
        &'a self,
        key: &'a str,
        value: &'a SessionData,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let sealed = self.seal(key, value)?;
            self.inner.set_expiring(key, &sealed, ttl).await
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.delete(key)
    }

    fn compare_and_set<'a>(
        &'a self,
        key: &'a str,
        current: Option<&'a SessionData>,
        new: Option<&'a SessionData>,
        fence: Option<&'a StoreLock>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let sealed = new.map(|value| self.seal(key, value)).transpose()?;
            // Encryption is randomised, so compare plaintexts, then swap on the exact stored
            // ciphertext: the inner compare-and-set keeps it atomic.
            let raw = self.inner.get(key).await?;
            let expected = match (current, &raw) {
                (None, None) => None,
                (None, Some(_)) | (Some(_), None) => return Ok(false),
                (Some(current), Some(raw)) => {
                    if self.open("compare_and_set", key, raw)? != *current {
                        return Ok(false);
                    }
                    Some(raw)
                }
            };
            self.inner
                .compare_and_set(key, expected, sealed.as_ref(), fence)
                .await
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        self.inner.list(prefix)
    }

    fn lock<'a>(
        &'a self,
        key: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<StoreLock, StoreError>> {
        self.inner.lock(key, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::MemoryStore;
    use crate::auth::store::suite::{Fixture, store_suite};

    struct Encrypted {
        store: Arc<EncryptedStore>,
    }

    impl Fixture for Encrypted {
        type Store = EncryptedStore;

        async fn new() -> Option<Encrypted> {
            let (key, _) = EncryptionKey::generate("k1").unwrap();
            let inner: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
            Some(Encrypted {
                store: Arc::new(EncryptedStore::new(inner, key, Vec::new())),
            })
        }

        fn store(&self) -> &Arc<EncryptedStore> {
            &self.store
        }

        async fn reopen(&self) -> Option<EncryptedStore> {
            None
        }
    }

    store_suite!(Encrypted);

    const SECRET: &str = r#"{"refreshJwt":"very-secret-refresh-token"}"#;

    #[tokio::test]
    async fn values_are_encrypted_and_keys_rotate() {
        let inner: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let old = EncryptionKey::new("2025", [7; 32]).unwrap();
        let first = EncryptedStore::new(inner.clone(), old.clone(), Vec::new());
        first
            .set("password:did:plc:a", &SessionData::new(SECRET))
            .await
            .unwrap();
        let raw = inner.get("password:did:plc:a").await.unwrap().unwrap();
        assert!(raw.as_str().starts_with("atlex-enc:v1:2025:"), "{raw:?}");
        assert!(!raw.as_str().contains("very-secret"));

        // A new current key; the old one still reads.
        let new = EncryptionKey::new("2026", [9; 32]).unwrap();
        let rotated = EncryptedStore::new(inner.clone(), new, vec![old]);
        assert_eq!(
            rotated.get("password:did:plc:a").await.unwrap(),
            Some(SessionData::new(SECRET))
        );
        rotated
            .set("password:did:plc:a", &SessionData::new(SECRET))
            .await
            .unwrap();
        let raw = inner.get("password:did:plc:a").await.unwrap().unwrap();
        assert!(raw.as_str().starts_with("atlex-enc:v1:2026:"), "{raw:?}");
    }

    #[tokio::test]
    async fn a_value_that_does_not_decrypt_is_a_clear_error_and_stays() {
        let inner: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let store = EncryptedStore::new(
            inner.clone(),
            EncryptionKey::new("a", [1; 32]).unwrap(),
            Vec::new(),
        );
        store.set("k", &SessionData::new(SECRET)).await.unwrap();
        let sealed = inner.get("k").await.unwrap().unwrap();

        // The wrong key material under the same id.
        let wrong = EncryptedStore::new(
            inner.clone(),
            EncryptionKey::new("a", [2; 32]).unwrap(),
            Vec::new(),
        );
        let err = wrong.get("k").await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Corrupt);
        assert!(err.to_string().contains("does not decrypt"), "{err}");
        assert!(err.to_string().contains("\"k\""), "{err}");
        // An unknown key id.
        let other = EncryptedStore::new(
            inner.clone(),
            EncryptionKey::new("b", [1; 32]).unwrap(),
            Vec::new(),
        );
        let err = other.get("k").await.unwrap_err();
        assert!(err.to_string().contains("not configured"), "{err}");
        // Moved under another key: the associated data does not match.
        inner.set("moved", &sealed).await.unwrap();
        assert!(store.get("moved").await.is_err());
        // Tampered and plain values.
        let mut tampered = sealed.as_str().to_owned();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        inner
            .set("tampered", &SessionData::new(tampered))
            .await
            .unwrap();
        assert!(store.get("tampered").await.is_err());
        inner.set("plain", &SessionData::new(SECRET)).await.unwrap();
        let err = store.get("plain").await.unwrap_err();
        assert!(err.to_string().contains("not encrypted"), "{err}");
        for err in [
            wrong.get("k").await.unwrap_err(),
            store.get("plain").await.unwrap_err(),
        ] {
            assert!(!format!("{err} {err:?}").contains("very-secret"));
        }
        // Nothing was deleted, and the right key still reads.
        assert_eq!(inner.get("k").await.unwrap(), Some(sealed));
        assert_eq!(
            store.get("k").await.unwrap(),
            Some(SessionData::new(SECRET))
        );
        // A compare-and-set against an undecryptable value fails without writing.
        assert!(
            wrong
                .compare_and_set("k", Some(&SessionData::new(SECRET)), None, None)
                .await
                .is_err()
        );
        assert!(store.get("k").await.unwrap().is_some());
    }

    #[test]
    fn key_ids_are_checked_and_keys_never_print() {
        assert!(EncryptionKey::new("", [0; 32]).is_err());
        assert!(EncryptionKey::new("a:b", [0; 32]).is_err());
        assert!(EncryptionKey::new(&"x".repeat(33), [0; 32]).is_err());
        let key = EncryptionKey::new("ok-1", [0xAB; 32]).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("ok-1") && !shown.contains("171"), "{shown}");
    }
}
