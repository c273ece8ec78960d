//! The keyset of a confidential client (`private_key_jwt`, ES256): the private keys that sign
//! client assertions, and the public JWKS the app serves at its `jwks_uri`.

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::error::OAuthError;
use super::jose::{Es256Key, random_b64url};
use crate::xrpc::Secret;

/// The assertion type of `private_key_jwt`.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// One signing key of a [`Keyset`], with its `kid`.
pub struct ClientKey {
    kid: String,
    key: Es256Key,
}

impl ClientKey {
    /// A key with its id.
    pub fn new(kid: impl Into<String>, key: Es256Key) -> ClientKey {
        ClientKey {
            kid: kid.into(),
            key,
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A client assertion (checklist item 47): header `{alg: ES256, kid}`, claims
    /// `iss = sub = client_id`, `aud = issuer`, a fresh `jti`, `iat`, `exp = iat + 60`.
    pub(crate) fn assertion(&self, client_id: &str, issuer: &str) -> Result<String, OAuthError> {
        let now = crate::auth::refresh::unix_now();
        let jti = random_b64url(16).map_err(|error| OAuthError::Crypto(error.to_string()))?;
        let mut header = Map::new();
        header.insert("kid".to_owned(), Value::from(self.kid.as_str()));
        self.key
            .sign_jwt(
                header,
                &json!({
                    "iss": client_id,
                    "sub": client_id,
                    "aud": issuer,
                    "jti": jti,
                    "iat": now,
                    "exp": now.saturating_add(60),
                }),
            )
            .map_err(|error| OAuthError::Crypto(error.to_string()))
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("kid", &self.kid)
            .field("key", &self.key)
            .finish()
    }
}

/// The signing keys of a confidential client. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Keyset {
    keys: Vec<Arc<ClientKey>>,
}

impl Keyset {
    /// A keyset of `keys` (each with a distinct, non-empty `kid`).
    pub fn new(keys: impl IntoIterator<Item = ClientKey>) -> Result<Keyset, OAuthError> {
        let keys: Vec<Arc<ClientKey>> = keys.into_iter().map(Arc::new).collect();
        if keys.is_empty() {
            return Err(OAuthError::InvalidKeyset {
                reason: "no keys".to_owned(),
            });
        }
        let mut seen = std::collections::HashSet::new();
        for key in &keys {
            if key.kid.is_empty() || !seen.insert(key.kid.clone()) {
                return Err(OAuthError::InvalidKeyset {
                    reason: format!("empty or repeated kid {:?}", key.kid),
                });
            }
        }
        Ok(Keyset { keys })
    }

    /// A keyset with one freshly generated key named `kid` (persist it with
    /// [`Keyset::to_private_jwks`]).
    pub fn generate(kid: &str) -> Result<Keyset, OAuthError> {
        let key = Es256Key::generate().map_err(|error| OAuthError::Crypto(error.to_string()))?;
        Keyset::new([ClientKey::new(kid, key)])
    }

    /// Reads a private JWKS (`{"keys": [{kty, crv, x, y, d, kid}, …]}`, P-256 keys).
    pub fn from_private_jwks(jwks: &Value) -> Result<Keyset, OAuthError> {
        let keys = jwks.get("keys").and_then(Value::as_array).ok_or_else(|| {
            OAuthError::InvalidKeyset {
                reason: "not a JWKS (no `keys` array)".to_owned(),
            }
        })?;
        let mut out = Vec::new();
        for (index, jwk) in keys.iter().enumerate() {
            let kid = jwk.get("kid").and_then(Value::as_str).ok_or_else(|| {
                OAuthError::InvalidKeyset {
                    reason: format!("key {index} has no `kid`"),
                }
            })?;
            let key = Es256Key::from_jwk(jwk).map_err(|error| OAuthError::InvalidKeyset {
                reason: format!("key {kid:?}: {error}"),
            })?;
            out.push(ClientKey::new(kid, key));
        }
        Keyset::new(out)
    }

    /// The private JWKS, to persist (a secret).
    pub fn to_private_jwks(&self) -> Secret {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|key| {
                let mut jwk =
                    serde_json::to_value(key.key.to_stored(Some(&key.kid))).unwrap_or(Value::Null);
                jwk["alg"] = Value::from("ES256");
                jwk
            })
            .collect();
        Secret::new(json!({ "keys": keys }).to_string())
    }

    /// The public JWKS the app serves at its `jwks_uri` (no private parts).
    pub fn public_jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|key| {
                let mut jwk = key.key.public_jwk();
                jwk["kid"] = Value::from(key.kid.as_str());
                jwk["alg"] = Value::from("ES256");
                jwk["use"] = Value::from("sig");
                jwk
            })
            .collect();
        json!({ "keys": keys })
    }

    /// The key named `kid`.
    pub fn get(&self, kid: &str) -> Option<&Arc<ClientKey>> {
        self.keys.iter().find(|key| key.kid == kid)
    }

    /// The first key (the one negotiation picks).
    pub fn first(&self) -> Option<&Arc<ClientKey>> {
        self.keys.first()
    }

    /// The thumbprints of the keys (to check a DPoP key is none of them).
    pub(crate) fn thumbprints(&self) -> Vec<String> {
        self.keys.iter().map(|key| key.key.thumbprint()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[test]
    fn private_jwks_round_trip_and_public_has_no_d() {
        let keyset = Keyset::generate("k1").unwrap();
        let private = keyset.to_private_jwks();
        let back =
            Keyset::from_private_jwks(&serde_json::from_str(private.expose()).unwrap()).unwrap();
        assert_eq!(back.thumbprints(), keyset.thumbprints());
        let public = keyset.public_jwks();
        assert!(public["keys"][0].get("d").is_none());
        assert_eq!(public["keys"][0]["kid"], "k1");
        assert!(!format!("{keyset:?}").contains("\"d\""));
    }

    #[test]
    fn assertion_claims() {
        let keyset = Keyset::generate("k1").unwrap();
        let key = keyset.first().unwrap();
        let a = key
            .assertion("https://app.example/m.json", "https://as.example")
            .unwrap();
        let b = key
            .assertion("https://app.example/m.json", "https://as.example")
            .unwrap();
        let decode = |jwt: &str, i: usize| -> Value {
            serde_json::from_slice(
                &URL_SAFE_NO_PAD
                    .decode(jwt.split('.').nth(i).unwrap())
                    .unwrap(),
            )
            .unwrap()
        };
        assert_eq!(decode(&a, 0)["kid"], "k1");
        assert_eq!(decode(&a, 0)["alg"], "ES256");
        let claims = decode(&a, 1);
        assert_eq!(claims["iss"], "https://app.example/m.json");
        assert_eq!(claims["sub"], claims["iss"]);
        assert_eq!(claims["aud"], "https://as.example");
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            60
        );
        assert_ne!(claims["jti"], decode(&b, 1)["jti"]);
        assert!(Keyset::new([]).is_err());
    }
}
