//! atproto keys and signatures: `did:key` and Multikey encodings, ES256 / ES256K verification
//! with the low-S rule, and signing.
//!
//! atproto uses two curves ([atproto cryptography spec]): NIST P-256 (JWT `alg` `ES256`) and
//! secp256k1 (`ES256K`). A public key is written as
//!
//! * **Multikey** (`publicKeyMultibase` of a `Multikey` verification method): multibase
//!   base58btc (`z…`) of the multicodec varint (`p256-pub` 0x1200 → `80 24`, `secp256k1-pub`
//!   0xe7 → `e7 01`) followed by the 33-byte compressed point;
//! * **`did:key`**: `did:key:` followed by the same Multikey text;
//! * **legacy** verification methods (`EcdsaSecp256r1VerificationKey2019`,
//!   `EcdsaSecp256k1VerificationKey2019`): multibase base58btc of the bare point, without a
//!   multicodec; the curve comes from the type. Both compressed and uncompressed points are
//!   read.
//!
//! Signatures are the 64-byte "compact" `r ‖ s` form over the SHA-256 of the message. atproto
//! requires the **low-S** form: [`PublicKey::verify`] rejects a high-S signature (and a DER
//! one), and [`PrivateKey::sign`] always produces low-S (RFC 6979 deterministic nonces).
//!
//! The curves are RustCrypto's `p256` and `k256`: pure Rust, constant-time arithmetic, and the
//! implementation most of the Rust ecosystem (including other atproto crates) uses.
//!
//! ```
//! use atlex_types::crypto::{Algorithm, PrivateKey, PublicKey};
//!
//! let key = PrivateKey::generate(Algorithm::K256)?;
//! let public = key.public_key();
//! let did_key = public.to_did_key();
//! assert!(did_key.starts_with("did:key:zQ3s"));
//! let signature = key.sign(b"hello");
//! PublicKey::from_did_key(&did_key)?.verify(b"hello", &signature)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [atproto cryptography spec]: https://atproto.com/specs/cryptography

use std::fmt;
use std::str::FromStr;

use k256::ecdsa::signature::{Signer as _, Verifier as _};

/// The multicodec varint of `p256-pub` (0x1200).
const P256_PREFIX: [u8; 2] = [0x80, 0x24];
/// The multicodec varint of `secp256k1-pub` (0xe7).
const K256_PREFIX: [u8; 2] = [0xe7, 0x01];
/// The length of a compressed SEC1 point on either curve.
const COMPRESSED_LEN: usize = 33;
/// The length of an uncompressed SEC1 point on either curve.
const UNCOMPRESSED_LEN: usize = 65;
/// The length of a compact `r ‖ s` signature.
pub const SIGNATURE_LEN: usize = 64;
/// The `did:key:` prefix.
const DID_KEY_PREFIX: &str = "did:key:";
/// Longer multibase text than this is refused before decoding (a key is ~50 characters).
const MAX_MULTIBASE_LEN: usize = 256;

/// One of the two curves atproto signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// NIST P-256 (secp256r1), JWT `alg` `ES256`.
    P256,
    /// secp256k1, JWT `alg` `ES256K`.
    K256,
}

impl Algorithm {
    /// The JWT `alg` name: `ES256` or `ES256K`.
    pub fn jwt_alg(self) -> &'static str {
        match self {
            Algorithm::P256 => "ES256",
            Algorithm::K256 => "ES256K",
        }
    }

    /// The algorithm named by a JWT `alg` (`ES256`, `ES256K`).
    pub fn from_jwt_alg(alg: &str) -> Option<Algorithm> {
        match alg {
            "ES256" => Some(Algorithm::P256),
            "ES256K" => Some(Algorithm::K256),
            _ => None,
        }
    }

    /// The legacy DID-document verification-method type of this curve.
    pub fn legacy_suite(self) -> &'static str {
        match self {
            Algorithm::P256 => "EcdsaSecp256r1VerificationKey2019",
            Algorithm::K256 => "EcdsaSecp256k1VerificationKey2019",
        }
    }

    fn multicodec(self) -> [u8; 2] {
        match self {
            Algorithm::P256 => P256_PREFIX,
            Algorithm::K256 => K256_PREFIX,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.jwt_alg())
    }
}

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not a `did:key:` DID.
    #[error("not a did:key (it must start with `did:key:`)")]
    NotDidKey,
    /// The multibase text does not start with `z` (base58btc), or is too long.
    #[error("not multibase base58btc (it must start with `z`{})", if *.too_long { ", and be at most 256 characters" } else { "" })]
    NotBase58Btc {
        /// Whether it was refused for its length.
        too_long: bool,
    },
    /// The base58 text has a character outside the alphabet.
    #[error("invalid base58btc: {0}")]
    Base58(String),
    /// The multicodec is not `p256-pub` or `secp256k1-pub`.
    #[error(
        "unsupported key type (multicodec prefix {0}); atproto uses p256-pub and secp256k1-pub"
    )]
    UnsupportedCodec(String),
    /// A verification-method type this module does not know.
    #[error("unsupported verification method type `{0}`")]
    UnsupportedSuite(String),
    /// The point has the wrong length or is not on the curve.
    #[error("invalid {algorithm} public key ({len} bytes): {reason}")]
    InvalidPoint {
        /// The curve.
        algorithm: Algorithm,
        /// The length of the decoded point.
        len: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The private key bytes are not a valid scalar for the curve.
    #[error("invalid {0} private key (it must be 32 bytes, non-zero and below the curve order)")]
    InvalidPrivateKey(Algorithm),
    /// The operating system's random source failed while generating a key.
    #[error("the operating system's random source failed: {0}")]
    Random(String),
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not 64 bytes (a DER-encoded signature is refused: atproto uses the compact form).
    #[error("a signature must be 64 bytes (compact r ‖ s), not {0}; DER is not accepted")]
    Length(usize),
    /// `r` or `s` is zero or not below the curve order.
    #[error("malformed {0} signature (r or s out of range)")]
    Malformed(Algorithm),
    /// `s` is in the upper half of the curve order; atproto requires low-S.
    #[error("{0} signature is not in low-S form (atproto rejects high-S signatures)")]
    HighS(Algorithm),
    /// The signature does not match the message and key.
    #[error("{0} signature does not match the message and key")]
    Mismatch(Algorithm),
}

#[derive(Clone, PartialEq, Eq)]
enum Public {
    P256(p256::ecdsa::VerifyingKey),
    K256(k256::ecdsa::VerifyingKey),
}

/// An atproto public key (P-256 or secp256k1).
///
/// `Display` and `FromStr` use the `did:key` form; [`PublicKey::to_multikey`] gives the
/// `publicKeyMultibase` form.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    inner: Public,
}

impl PublicKey {
    /// Reads a SEC1 point (33-byte compressed or 65-byte uncompressed) on `algorithm`'s curve.
    pub fn from_sec1_bytes(algorithm: Algorithm, bytes: &[u8]) -> Result<PublicKey, KeyError> {
        if bytes.len() != COMPRESSED_LEN && bytes.len() != UNCOMPRESSED_LEN {
            return Err(KeyError::InvalidPoint {
                algorithm,
                len: bytes.len(),
                reason: "a point is 33 bytes (compressed) or 65 bytes (uncompressed)",
            });
        }
        let invalid = || KeyError::InvalidPoint {
            algorithm,
            len: bytes.len(),
            reason: "not a point on the curve",
        };
        let inner = match algorithm {
            Algorithm::P256 => Public::P256(
                p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(|_| invalid())?,
            ),
            Algorithm::K256 => Public::K256(
                k256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(|_| invalid())?,
            ),
        };
        Ok(PublicKey { inner })
    }

    /// Reads a Multikey (`z` + base58btc of multicodec + compressed point), the
    /// `publicKeyMultibase` of a `Multikey` verification method.
    pub fn from_multikey(multibase: &str) -> Result<PublicKey, KeyError> {
        let bytes = decode_multibase(multibase)?;
        let (algorithm, point) = if let Some(point) = bytes.strip_prefix(&P256_PREFIX) {
            (Algorithm::P256, point)
        } else if let Some(point) = bytes.strip_prefix(&K256_PREFIX) {
            (Algorithm::K256, point)
        } else {
            let prefix: String = bytes
                .iter()
                .take(2)
                .map(|byte| format!("{byte:02x}"))
                .collect();
            return Err(KeyError::UnsupportedCodec(prefix));
        };
        if point.len() != COMPRESSED_LEN {
            return Err(KeyError::InvalidPoint {
                algorithm,
                len: point.len(),
                reason: "a Multikey holds a 33-byte compressed point",
            });
        }
        PublicKey::from_sec1_bytes(algorithm, point)
    }

    /// Reads a `did:key:z…`.
    pub fn from_did_key(did_key: &str) -> Result<PublicKey, KeyError> {
        let multikey = did_key
            .strip_prefix(DID_KEY_PREFIX)
            .ok_or(KeyError::NotDidKey)?;
        PublicKey::from_multikey(multikey)
    }

    /// Reads the `publicKeyMultibase` of a verification method of type `suite`: `Multikey`, or
    /// one of the legacy types (`EcdsaSecp256r1VerificationKey2019`,
    /// `EcdsaSecp256k1VerificationKey2019`) whose multibase holds the bare point.
    pub fn from_verification_method(
        suite: &str,
        public_key_multibase: &str,
    ) -> Result<PublicKey, KeyError> {
        let algorithm = match suite {
            "Multikey" => return PublicKey::from_multikey(public_key_multibase),
            "EcdsaSecp256r1VerificationKey2019" => Algorithm::P256,
            "EcdsaSecp256k1VerificationKey2019" => Algorithm::K256,
            other => return Err(KeyError::UnsupportedSuite(truncate(other, 64))),
        };
        PublicKey::from_sec1_bytes(algorithm, &decode_multibase(public_key_multibase)?)
    }

    /// The curve.
    pub fn algorithm(&self) -> Algorithm {
        match self.inner {
            Public::P256(_) => Algorithm::P256,
            Public::K256(_) => Algorithm::K256,
        }
    }

    /// The 33-byte compressed SEC1 point.
    pub fn to_compressed_bytes(&self) -> Vec<u8> {
        match &self.inner {
            Public::P256(key) => key.to_sec1_point(true).as_bytes().to_vec(),
            Public::K256(key) => key.to_sec1_point(true).as_bytes().to_vec(),
        }
    }

    /// The Multikey text (`z…`), as written in `publicKeyMultibase`.
    pub fn to_multikey(&self) -> String {
        let mut bytes = self.algorithm().multicodec().to_vec();
        bytes.extend_from_slice(&self.to_compressed_bytes());
        format!("z{}", bs58::encode(bytes).into_string())
    }

    /// The `did:key:z…` text.
    pub fn to_did_key(&self) -> String {
        format!("{DID_KEY_PREFIX}{}", self.to_multikey())
    }

    /// Verifies a 64-byte compact signature of `message` (hashed with SHA-256), requiring the
    /// low-S form.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        let algorithm = self.algorithm();
        if signature.len() != SIGNATURE_LEN {
            return Err(SignatureError::Length(signature.len()));
        }
        match &self.inner {
            Public::P256(key) => {
                let sig = p256::ecdsa::Signature::from_slice(signature)
                    .map_err(|_| SignatureError::Malformed(algorithm))?;
                if sig.normalize_s() != sig {
                    return Err(SignatureError::HighS(algorithm));
                }
                key.verify(message, &sig)
                    .map_err(|_| SignatureError::Mismatch(algorithm))
            }
            Public::K256(key) => {
                let sig = k256::ecdsa::Signature::from_slice(signature)
                    .map_err(|_| SignatureError::Malformed(algorithm))?;
                if sig.normalize_s() != sig {
                    return Err(SignatureError::HighS(algorithm));
                }
                key.verify(message, &sig)
                    .map_err(|_| SignatureError::Mismatch(algorithm))
            }
        }
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_did_key())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_did_key())
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    /// A `did:key:z…`, or a bare Multikey `z…`.
    fn from_str(text: &str) -> Result<PublicKey, KeyError> {
        if text.starts_with(DID_KEY_PREFIX) {
            PublicKey::from_did_key(text)
        } else {
            PublicKey::from_multikey(text)
        }
    }
}

enum Private {
    P256(p256::ecdsa::SigningKey),
    K256(k256::ecdsa::SigningKey),
}

/// An atproto private key (P-256 or secp256k1). Its `Debug` prints only the curve and the
/// public key, never the secret.
pub struct PrivateKey {
    inner: Private,
}

impl PrivateKey {
    /// A new random key from the operating system's CSPRNG.
    ///
    /// Fails only when the operating system's random source does ([`KeyError::Random`]); the
    /// chance that 32 random bytes are not a valid scalar sixteen times in a row is below
    /// 2⁻¹⁰⁰⁰, and is reported the same way.
    pub fn generate(algorithm: Algorithm) -> Result<PrivateKey, KeyError> {
        let mut bytes = [0u8; 32];
        for _ in 0..16 {
            getrandom::fill(&mut bytes).map_err(|error| KeyError::Random(error.to_string()))?;
            if let Ok(key) = PrivateKey::from_bytes(algorithm, &bytes) {
                bytes.fill(0);
                return Ok(key);
            }
        }
        bytes.fill(0);
        Err(KeyError::Random(
            "sixteen draws in a row were not valid scalars".to_owned(),
        ))
    }

    /// Reads a 32-byte big-endian scalar.
    pub fn from_bytes(algorithm: Algorithm, bytes: &[u8]) -> Result<PrivateKey, KeyError> {
        let invalid = || KeyError::InvalidPrivateKey(algorithm);
        if bytes.len() != 32 {
            return Err(invalid());
        }
        let inner = match algorithm {
            Algorithm::P256 => {
                Private::P256(p256::ecdsa::SigningKey::from_slice(bytes).map_err(|_| invalid())?)
            }
            Algorithm::K256 => {
                Private::K256(k256::ecdsa::SigningKey::from_slice(bytes).map_err(|_| invalid())?)
            }
        };
        Ok(PrivateKey { inner })
    }

    /// The 32-byte scalar. Handle it as a secret.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        match &self.inner {
            Private::P256(key) => out.copy_from_slice(&key.to_bytes()),
            Private::K256(key) => out.copy_from_slice(&key.to_bytes()),
        }
        out
    }

    /// The curve.
    pub fn algorithm(&self) -> Algorithm {
        match self.inner {
            Private::P256(_) => Algorithm::P256,
            Private::K256(_) => Algorithm::K256,
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        let inner = match &self.inner {
            Private::P256(key) => Public::P256(*key.verifying_key()),
            Private::K256(key) => Public::K256(*key.verifying_key()),
        };
        PublicKey { inner }
    }

    /// Signs `message` (hashed with SHA-256): a 64-byte compact signature in low-S form, with
    /// a deterministic (RFC 6979) nonce.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut out = [0u8; SIGNATURE_LEN];
        match &self.inner {
            Private::P256(key) => {
                let sig: p256::ecdsa::Signature = key.sign(message);
                out.copy_from_slice(&sig.normalize_s().to_bytes());
            }
            Private::K256(key) => {
                let sig: k256::ecdsa::Signature = key.sign(message);
                out.copy_from_slice(&sig.normalize_s().to_bytes());
            }
        }
        out
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm())
            .field("public", &self.public_key().to_did_key())
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn decode_multibase(text: &str) -> Result<Vec<u8>, KeyError> {
    if text.len() > MAX_MULTIBASE_LEN {
        return Err(KeyError::NotBase58Btc { too_long: true });
    }
    let body = text
        .strip_prefix('z')
        .ok_or(KeyError::NotBase58Btc { too_long: false })?;
    bs58::decode(body)
        .into_vec()
        .map_err(|error| KeyError::Base58(error.to_string()))
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_signs_low_s() {
        for algorithm in [Algorithm::P256, Algorithm::K256] {
            let key = PrivateKey::generate(algorithm).unwrap();
            let public = key.public_key();
            let text = public.to_did_key();
            assert_eq!(PublicKey::from_did_key(&text).unwrap(), public);
            assert_eq!(text.parse::<PublicKey>().unwrap(), public);
            assert_eq!(
                PublicKey::from_multikey(&public.to_multikey()).unwrap(),
                public
            );
            for i in 0..32u8 {
                let message = [i; 7];
                let signature = key.sign(&message);
                public.verify(&message, &signature).unwrap();
                assert_eq!(
                    public.verify(b"other", &signature),
                    Err(SignatureError::Mismatch(algorithm))
                );
            }
            let again = PrivateKey::from_bytes(algorithm, &key.to_bytes()).unwrap();
            assert_eq!(again.public_key(), public);
        }
    }

    #[test]
    fn debug_redacts_the_secret() {
        let key = PrivateKey::from_bytes(Algorithm::K256, &[7u8; 32]).unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains("<redacted>"), "{debug}");
        assert!(!debug.contains("0707"), "{debug}");
        assert!(!debug.contains("[7, 7"), "{debug}");
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            PublicKey::from_did_key("did:web:x"),
            Err(KeyError::NotDidKey)
        );
        assert!(matches!(
            PublicKey::from_multikey("mAAAA"),
            Err(KeyError::NotBase58Btc { .. })
        ));
        assert!(matches!(
            PublicKey::from_multikey("z0OIl"),
            Err(KeyError::Base58(_))
        ));
        // ed25519-pub (0xed) is not an atproto key.
        let ed = format!("z{}", bs58::encode([0xed, 0x01, 1, 2, 3]).into_string());
        assert!(matches!(
            PublicKey::from_multikey(&ed),
            Err(KeyError::UnsupportedCodec(_))
        ));
        let short = format!("z{}", bs58::encode([0xe7, 0x01, 2, 3]).into_string());
        assert!(matches!(
            PublicKey::from_multikey(&short),
            Err(KeyError::InvalidPoint { .. })
        ));
        let long = "z".repeat(10_000);
        assert!(matches!(
            PublicKey::from_multikey(&long),
            Err(KeyError::NotBase58Btc { too_long: true })
        ));
        assert!(PrivateKey::from_bytes(Algorithm::P256, &[0u8; 32]).is_err());
        assert!(PrivateKey::from_bytes(Algorithm::P256, &[1u8; 31]).is_err());
        let key = PrivateKey::generate(Algorithm::P256).unwrap().public_key();
        assert_eq!(
            key.verify(b"m", &[1u8; 70]),
            Err(SignatureError::Length(70))
        );
        assert_eq!(
            key.verify(b"m", &[0u8; 64]),
            Err(SignatureError::Malformed(Algorithm::P256))
        );
    }
}
