//! The DID document: the typed fields atproto reads, every other field kept.

use std::collections::BTreeMap;

use atlex_types::crypto::{KeyError, PublicKey};
use atlex_types::{Did, Handle};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

/// The service id of the account's PDS (relative form).
pub const PDS_SERVICE_ID: &str = "#atproto_pds";
/// The service type of a PDS.
pub const PDS_SERVICE_TYPE: &str = "AtprotoPersonalDataServer";
/// The verification-method id of the atproto signing key (relative form).
pub const SIGNING_KEY_ID: &str = "#atproto";

/// A DID document (W3C DID Core, as atproto uses it).
///
/// `id`, `alsoKnownAs`, `verificationMethod` and `service` are typed; every other field is kept
/// in [`DidDocument::extra`] and written back unchanged. Fields atproto does not rely on are
/// kept loose (a service's `type` or `serviceEndpoint` may be a string, a list or an object), so
/// that a document with an unusual entry still parses and only the helpers that need that entry
/// fail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DidDocument {
    /// The DID this document describes.
    pub id: Did,
    /// Other names of the subject; atproto handles are `at://<handle>` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_known_as: Vec<String>,
    /// Public keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verification_method: Vec<VerificationMethod>,
    /// Services (the PDS among them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service: Vec<Service>,
    /// Every other field (`@context`, `controller`, …).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A verification method (a public key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMethod {
    /// `#atproto` or `<did>#atproto` for the signing key.
    pub id: String,
    /// `Multikey`, or a legacy type such as `EcdsaSecp256k1VerificationKey2019`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The DID that controls the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
    /// The key, multibase-encoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_multibase: Option<String>,
    /// Every other field.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A service entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// `#atproto_pds` or `<did>#atproto_pds` for the PDS.
    pub id: String,
    /// The service type (a string in atproto; kept as JSON since DID Core allows a list).
    #[serde(rename = "type")]
    pub kind: Value,
    /// The endpoint (a URL string in atproto; kept as JSON since DID Core allows more).
    pub service_endpoint: Value,
    /// Every other field.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// Why a DID document does not give what was asked of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// No service with id `#atproto_pds` and type `AtprotoPersonalDataServer`.
    #[error(
        "the DID document of {did} has no `#atproto_pds` service of type AtprotoPersonalDataServer"
    )]
    NoPds {
        /// The document's DID.
        did: String,
    },
    /// The PDS service's endpoint is not an http(s) URL with a host (or has a query, fragment
    /// or credentials).
    #[error("the DID document of {did} has an invalid PDS endpoint: {reason}")]
    BadPdsEndpoint {
        /// The document's DID.
        did: String,
        /// What is wrong.
        reason: String,
    },
    /// No `#atproto` verification method.
    #[error("the DID document of {did} has no `#atproto` verification method")]
    NoSigningKey {
        /// The document's DID.
        did: String,
    },
    /// The `#atproto` key cannot be read.
    #[error("the DID document of {did} has an unreadable `#atproto` key: {error}")]
    BadSigningKey {
        /// The document's DID.
        did: String,
        /// Why.
        error: KeyError,
    },
}

impl DidDocument {
    /// Whether `id` names the fragment `fragment` (`#atproto_pds`) of this document, in the
    /// relative (`#atproto_pds`) or absolute (`<did>#atproto_pds`) form.
    fn is_id(&self, id: &str, fragment: &str) -> bool {
        id == fragment
            || id
                .strip_prefix(self.id.as_str())
                .is_some_and(|rest| rest == fragment)
    }

    /// The PDS endpoint: the service `#atproto_pds` (or `<did>#atproto_pds`) of type
    /// `AtprotoPersonalDataServer`, whose `serviceEndpoint` is an `http(s)` URL with a host and
    /// without credentials, query or fragment. (Whether `http` is acceptable is the caller's
    /// transport policy, see [`crate::net::check_url`].)
    pub fn pds_endpoint(&self) -> Result<Url, DocumentError> {
        let service = self
            .service
            .iter()
            .find(|service| {
                self.is_id(&service.id, PDS_SERVICE_ID)
                    && service.kind.as_str() == Some(PDS_SERVICE_TYPE)
            })
            .ok_or_else(|| DocumentError::NoPds {
                did: self.id.to_string(),
            })?;
        let bad = |reason: &str| DocumentError::BadPdsEndpoint {
            did: self.id.to_string(),
            reason: reason.to_owned(),
        };
        let text = service
            .service_endpoint
            .as_str()
            .ok_or_else(|| bad("`serviceEndpoint` is not a string"))?;
        if text.len() > 2048 {
            return Err(bad("longer than 2048 characters"));
        }
        let url = Url::parse(text).map_err(|error| bad(&format!("not a URL ({error})")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(bad("the scheme is neither https nor http"));
        }
        if url.host().is_none() {
            return Err(bad("no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("it has user info"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("it has a query or fragment"));
        }
        Ok(url)
    }

    /// The atproto signing key: the verification method `#atproto` (or `<did>#atproto`).
    pub fn signing_key(&self) -> Result<PublicKey, DocumentError> {
        let method = self
            .verification_method
            .iter()
            .find(|method| self.is_id(&method.id, SIGNING_KEY_ID))
            .ok_or_else(|| DocumentError::NoSigningKey {
                did: self.id.to_string(),
            })?;
        let bad = |error| DocumentError::BadSigningKey {
            did: self.id.to_string(),
            error,
        };
        let multibase = method
            .public_key_multibase
            .as_deref()
            .ok_or_else(|| bad(KeyError::NotBase58Btc { too_long: false }))?;
        PublicKey::from_verification_method(&method.kind, multibase).map_err(bad)
    }

    /// The handle the document claims: its **first** `at://` alias, when that is a valid
    /// handle (normalised to lower case). Not verified: see
    /// [`IdentityResolver::resolve`](super::IdentityResolver::resolve).
    pub fn handle(&self) -> Option<Handle> {
        let alias = self
            .also_known_as
            .iter()
            .find_map(|alias| alias.strip_prefix("at://"))?;
        Handle::new(alias).ok()
    }

    /// Parses a document from JSON.
    pub fn from_json(bytes: &[u8]) -> Result<DidDocument, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(value: Value) -> DidDocument {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn reads_the_atproto_fields_and_keeps_the_rest() {
        let value = json!({
            "@context": ["https://www.w3.org/ns/did/v1"],
            "id": "did:plc:abc",
            "alsoKnownAs": ["https://x.example", "at://Alice.Test", "at://bob.test"],
            "verificationMethod": [{
                "id": "did:plc:abc#atproto",
                "type": "Multikey",
                "controller": "did:plc:abc",
                "publicKeyMultibase": "zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc"
            }],
            "service": [
                {"id": "#other", "type": ["A", "B"], "serviceEndpoint": {"x": 1}},
                {"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                 "serviceEndpoint": "https://pds.example"}
            ],
            "future": {"kept": true}
        });
        let parsed = doc(value.clone());
        assert_eq!(
            parsed.pds_endpoint().unwrap().as_str(),
            "https://pds.example/"
        );
        assert_eq!(parsed.handle().unwrap().as_str(), "alice.test");
        assert_eq!(
            parsed.signing_key().unwrap().to_did_key(),
            "did:key:zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc"
        );
        assert_eq!(serde_json::to_value(&parsed).unwrap(), value);
    }

    #[test]
    fn pds_errors() {
        let missing = doc(json!({"id": "did:plc:abc", "service": [
            {"id": "#atproto_pds", "type": "Other", "serviceEndpoint": "https://x.example"}]}));
        assert!(matches!(
            missing.pds_endpoint(),
            Err(DocumentError::NoPds { .. })
        ));
        let other_did = doc(json!({"id": "did:plc:abc", "service": [
            {"id": "did:plc:xyz#atproto_pds", "type": "AtprotoPersonalDataServer",
             "serviceEndpoint": "https://x.example"}]}));
        assert!(matches!(
            other_did.pds_endpoint(),
            Err(DocumentError::NoPds { .. })
        ));
        for endpoint in [
            json!("ftp://x.example"),
            json!("not a url"),
            json!(7),
            json!("https://u:p@x.example"),
            json!("https://x.example/?q=1"),
        ] {
            let bad = doc(json!({"id": "did:plc:abc", "service": [
                {"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                 "serviceEndpoint": endpoint}]}));
            assert!(
                matches!(
                    bad.pds_endpoint(),
                    Err(DocumentError::BadPdsEndpoint { .. })
                ),
                "{endpoint}"
            );
        }
        let absolute = doc(json!({"id": "did:plc:abc", "service": [
            {"id": "did:plc:abc#atproto_pds", "type": "AtprotoPersonalDataServer",
             "serviceEndpoint": "http://localhost:2583"}]}));
        assert_eq!(
            absolute.pds_endpoint().unwrap().as_str(),
            "http://localhost:2583/"
        );
        assert!(absolute.handle().is_none());
        assert!(matches!(
            absolute.signing_key(),
            Err(DocumentError::NoSigningKey { .. })
        ));
    }
}
