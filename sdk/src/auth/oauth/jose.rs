//! The small part of JOSE that atproto OAuth needs: ES256 (P-256) keys as JWKs, their RFC 7638
//! thumbprints, and compact JWS signing.
//!
//! Keys are [`atlex_types::crypto::PrivateKey`]s (RustCrypto's `p256`, which also checks them
//! and gives their coordinates). Signatures are made by `ring` (its
//! `ECDSA_P256_SHA256_FIXED_SIGNING`: SHA-256, the 64-byte `r ‖ s` form that JWS ES256 uses,
//! nonces from the OS generator hedged with the message). `ring` is already in every build
//! (rustls, under reqwest, uses it), and its P-256 code is the assembly-optimised one: one
//! signature takes about a third of the time `p256`'s does here (`cargo xtask bench oauth`
//! prints both), and a DPoP-authenticated call pays exactly one. `p256` 0.14 no longer carries
//! the `jwk` module its 0.13 line had, and the JOSE crates on crates.io bring either
//! OpenSSL or the older curve line (a second copy of the curve code), so the JSON side (three
//! base64url segments, the `x`/`y` coordinates) is written here.

use std::fmt;

use atlex_types::crypto::{Algorithm, PrivateKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::elliptic_curve::sec1::ToSec1Point as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// base64url without padding.
pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// base64url(SHA-256(text)).
pub(crate) fn sha256_b64url(text: &str) -> String {
    b64url(&Sha256::digest(text.as_bytes()))
}

/// `n` bytes from the OS CSPRNG, base64url.
pub(crate) fn random_b64url(n: usize) -> Result<String, JoseError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|error| JoseError(format!("no randomness: {error}")))?;
    Ok(b64url(&bytes))
}

/// A JOSE failure (a key that is not a P-256 JWK, no randomness). Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoseError(pub(crate) String);

impl fmt::Display for JoseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JoseError {}

/// An ES256 (P-256) private key with its public JWK. `Debug` shows the thumbprint only.
pub struct Es256Key {
    key: PrivateKey,
    /// The same key, for `ring`'s signing (made once: it precomputes what every signature
    /// needs).
    signer: ring::signature::EcdsaKeyPair,
    x: String,
    y: String,
    /// The base64url DPoP proof header (`alg`, `typ`, the public `jwk`), made once per key:
    /// every proof of a session starts with the same bytes.
    dpop_header: String,
}

/// A private JWK as stored (`kty`, `crv`, `x`, `y`, `d`; `kid` when the key has one).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct PrivateJwk {
    kty: String,
    crv: String,
    x: String,
    y: String,
    d: crate::xrpc::Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alg: Option<String>,
}

impl Es256Key {
    /// A new random key.
    pub fn generate() -> Result<Es256Key, JoseError> {
        let key = PrivateKey::generate(Algorithm::P256)
            .map_err(|error| JoseError(format!("cannot generate a P-256 key: {error}")))?;
        Es256Key::from_private(key)
    }

    /// From a P-256 private key.
    pub fn from_private(key: PrivateKey) -> Result<Es256Key, JoseError> {
        if key.algorithm() != Algorithm::P256 {
            return Err(JoseError("ES256 needs a P-256 key".to_owned()));
        }
        let compressed = key.public_key().to_compressed_bytes();
        let point = p256::PublicKey::from_sec1_bytes(&compressed)
            .map_err(|_| JoseError("invalid P-256 public key".to_owned()))?
            .to_sec1_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err(JoseError("the P-256 public key is the identity".to_owned()));
        };
        let mut uncompressed = Vec::with_capacity(65);
        uncompressed.push(0x04);
        uncompressed.extend_from_slice(x.as_slice());
        uncompressed.extend_from_slice(y.as_slice());
        let signer = ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.to_bytes(),
            &uncompressed,
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|error| JoseError(format!("the P-256 key is not usable for signing: {error}")))?;
        let (x, y) = (b64url(x.as_slice()), b64url(y.as_slice()));
        let header = json!({
            "alg": "ES256",
            "typ": "dpop+jwt",
            "jwk": {"kty": "EC", "crv": "P-256", "x": x, "y": y},
        });
        Ok(Es256Key {
            dpop_header: b64url(header.to_string().as_bytes()),
            x,
            y,
            key,
            signer,
        })
    }

    /// Reads a private JWK (`kty` `EC`, `crv` `P-256`, `d`; `x`/`y` must match `d`).
    pub fn from_jwk(jwk: &Value) -> Result<Es256Key, JoseError> {
        let parsed: PrivateJwk = serde_json::from_value(jwk.clone()).map_err(|error| {
            JoseError(format!(
                "not a private EC JWK ({})",
                crate::xrpc::describe_json_error(&error)
            ))
        })?;
        Es256Key::from_stored(&parsed)
    }

    pub(crate) fn from_stored(jwk: &PrivateJwk) -> Result<Es256Key, JoseError> {
        if jwk.kty != "EC" || jwk.crv != "P-256" {
            return Err(JoseError(format!(
                "the JWK is {}/{}, not EC/P-256",
                jwk.kty, jwk.crv
            )));
        }
        let d = URL_SAFE_NO_PAD
            .decode(jwk.d.expose())
            .map_err(|_| JoseError("the JWK's `d` is not base64url".to_owned()))?;
        let key = PrivateKey::from_bytes(Algorithm::P256, &d)
            .map_err(|_| JoseError("the JWK's `d` is not a P-256 scalar".to_owned()))?;
        let key = Es256Key::from_private(key)?;
        if key.x != jwk.x || key.y != jwk.y {
            return Err(JoseError(
                "the JWK's `x`/`y` do not belong to its `d`".to_owned(),
            ));
        }
        Ok(key)
    }

    /// Whether `jwk` is this key (its public part; a stored JWK's `d` is checked against it
    /// when read).
    pub(crate) fn is_key_of(&self, jwk: &PrivateJwk) -> bool {
        self.x == jwk.x && self.y == jwk.y
    }

    pub(crate) fn to_stored(&self, kid: Option<&str>) -> PrivateJwk {
        PrivateJwk {
            kty: "EC".to_owned(),
            crv: "P-256".to_owned(),
            x: self.x.clone(),
            y: self.y.clone(),
            d: crate::xrpc::Secret::new(b64url(&self.key.to_bytes())),
            kid: kid.map(str::to_owned),
            alg: None,
        }
    }

    /// The public JWK (`kty`, `crv`, `x`, `y`): never `d`.
    pub fn public_jwk(&self) -> Value {
        json!({"kty": "EC", "crv": "P-256", "x": self.x, "y": self.y})
    }

    /// The RFC 7638 thumbprint (base64url SHA-256 of the canonical public JWK).
    pub fn thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            self.x, self.y
        );
        sha256_b64url(&canonical)
    }

    /// A DPoP proof (compact JWS) of `claims` under the key's precomputed DPoP header: one
    /// buffer, the claims serialised once, then the signature.
    pub(crate) fn sign_dpop<T: Serialize>(&self, claims: &T) -> Result<String, JoseError> {
        let claims = serde_json::to_vec(claims)
            .map_err(|error| JoseError(format!("cannot encode the claims: {error}")))?;
        // base64url: 4 characters per 3 bytes; the signature is 64 bytes (86 characters).
        let mut out = String::with_capacity(
            self.dpop_header
                .len()
                .saturating_add(claims.len().saturating_mul(4) / 3)
                .saturating_add(96),
        );
        out.push_str(&self.dpop_header);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut out);
        let signature = self.sign(out.as_bytes())?;
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut out);
        Ok(out)
    }

    /// The ES256 signature (`r ‖ s`, 64 bytes) of `input`, in low-S form (`s ≤ n/2`): JWS does
    /// not ask for it, but atproto's own verifiers do, and it costs a comparison.
    fn sign(&self, input: &[u8]) -> Result<[u8; 64], JoseError> {
        let signature = self
            .signer
            .sign(&ring::rand::SystemRandom::new(), input)
            .map_err(|_| JoseError("the ES256 signature failed (no randomness?)".to_owned()))?;
        let parsed = p256::ecdsa::Signature::from_slice(signature.as_ref())
            .map_err(|_| JoseError("the ES256 signature is malformed".to_owned()))?;
        Ok(parsed.normalize_s().to_bytes().into())
    }

    /// A compact JWS of `claims` with `header` (to which `alg: ES256` is added).
    pub(crate) fn sign_jwt(
        &self,
        mut header: Map<String, Value>,
        claims: &Value,
    ) -> Result<String, JoseError> {
        header.insert("alg".to_owned(), Value::from("ES256"));
        let header = b64url(Value::Object(header).to_string().as_bytes());
        let payload = b64url(claims.to_string().as_bytes());
        let input = format!("{header}.{payload}");
        let signature = self.sign(input.as_bytes())?;
        Ok(format!("{input}.{}", b64url(&signature)))
    }
}

impl fmt::Debug for Es256Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Es256Key")
            .field("jkt", &self.thumbprint())
            .field("private", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atlex_types::crypto::PublicKey;

    #[test]
    fn jws_verifies_with_the_embedded_key() {
        let key = Es256Key::generate().unwrap();
        let mut header = Map::new();
        header.insert("typ".into(), "dpop+jwt".into());
        header.insert("jwk".into(), key.public_jwk());
        let jwt = key.sign_jwt(header, &json!({"a": 1})).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert!(header["jwk"].get("d").is_none());
        // Rebuild the public key from x/y and verify.
        let x = URL_SAFE_NO_PAD
            .decode(header["jwk"]["x"].as_str().unwrap())
            .unwrap();
        let y = URL_SAFE_NO_PAD
            .decode(header["jwk"]["y"].as_str().unwrap())
            .unwrap();
        let mut sec1 = vec![4u8];
        sec1.extend(x);
        sec1.extend(y);
        let public = PublicKey::from_sec1_bytes(Algorithm::P256, &sec1).unwrap();
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        public
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .unwrap();
    }

    /// `ring` leaves `s` high in about half of its signatures; every one made here is low-S,
    /// so atproto's strict verifier (which rejects high S) accepts all of them.
    #[test]
    fn every_signature_is_low_s_and_verifies() {
        let key = Es256Key::generate().unwrap();
        let public = PublicKey::from_sec1_bytes(
            Algorithm::P256,
            &key.key.public_key().to_compressed_bytes(),
        )
        .unwrap();
        for round in 0..64u32 {
            let message = format!("message {round}");
            let signature = key.sign(message.as_bytes()).unwrap();
            public.verify(message.as_bytes(), &signature).unwrap();
        }
    }

    #[test]
    fn stored_jwk_round_trips_and_checks_xy() {
        let key = Es256Key::generate().unwrap();
        let stored = key.to_stored(Some("k1"));
        let back = Es256Key::from_stored(&stored).unwrap();
        assert_eq!(back.thumbprint(), key.thumbprint());
        let mut wrong = serde_json::to_value(&stored).unwrap();
        wrong["x"] = Value::from(Es256Key::generate().unwrap().x);
        assert!(Es256Key::from_jwk(&wrong).is_err());
        assert!(!format!("{key:?}").contains(stored.d.expose()));
    }

    #[test]
    fn thumbprint_matches_rfc7638_example_shape() {
        // RFC 7638 canonical members are sorted: crv, kty, x, y.
        let key = Es256Key::generate().unwrap();
        assert_eq!(key.thumbprint().len(), 43);
    }
}
