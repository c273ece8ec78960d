//! Talking to the servers: metadata fetches (protected resource, authorization server), the
//! issuer check, and the DPoP-signed form POSTs to PAR, token and revocation endpoints.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::Value;
use url::Url;

use super::dpop::{self, NonceCache, origin_of};
use super::error::OAuthError;
use super::jose::Es256Key;
use super::keyset::{CLIENT_ASSERTION_TYPE, Keyset};
use super::metadata::{
    ATPROTO_SCOPE, AuthMethod, AuthorizationServerMetadata, ClientMetadata,
    ProtectedResourceMetadata, check_issuer, check_oauth_url, scope_contains,
};
use crate::identity::{IdentityResolver, Lookup};
use crate::net::fetch::{FetchErrorKind, Fetcher, Get};
use crate::net::{read_limited, redact_url};
use crate::xrpc::Secret;
use atlex_types::Did;

/// The limit on metadata documents.
pub const MAX_METADATA_BYTES: u64 = 64 * 1024;
/// The limit on OAuth endpoint responses.
pub const MAX_RESPONSE_BYTES: u64 = 64 * 1024;
/// The time allowed for the issuer check after a token response.
pub const ISSUER_CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// The time allowed for one OAuth endpoint request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What is shared by an [`OAuthClient`](super::OAuthClient) and all its sessions.
pub(crate) struct Context {
    pub(crate) metadata: ClientMetadata,
    pub(crate) keyset: Option<Keyset>,
    pub(crate) resolver: IdentityResolver,
    pub(crate) fetcher: Fetcher,
    pub(crate) http: reqwest::Client,
    pub(crate) allow_http: bool,
    pub(crate) nonces: Arc<NonceCache>,
}

/// A validated token response (checklist item 23).
pub(crate) struct TokenSet {
    pub(crate) access_token: Secret,
    pub(crate) refresh_token: Option<Secret>,
    pub(crate) scope: String,
    pub(crate) sub: Did,
    pub(crate) expires_in: Option<i64>,
}

impl Context {
    fn metadata_error(url: &Url, reason: impl Into<String>) -> OAuthError {
        OAuthError::Metadata {
            url: redact_url(url),
            reason: reason.into(),
        }
    }

    /// GETs a JSON metadata document: no redirects, 200, `application/json`, bounded.
    async fn get_json(&self, url: &Url) -> Result<Value, OAuthError> {
        check_oauth_url(url, self.allow_http, "a metadata URL")?;
        let fetched = self
            .fetcher
            .get(
                url,
                Get {
                    accept: Some("application/json"),
                    max_body: Some(MAX_METADATA_BYTES),
                    ..Get::default()
                },
            )
            .await
            .map_err(|error| match error.kind() {
                FetchErrorKind::Timeout | FetchErrorKind::Connect(_) => OAuthError::Transport {
                    url: redact_url(url),
                    reason: error.to_string(),
                    source: Some(Box::new(error)),
                },
                _ => Context::metadata_error(url, error.to_string()),
            })?;
        if fetched.status != 200 {
            return Err(Context::metadata_error(
                url,
                format!("status {} (200 required)", fetched.status),
            ));
        }
        let mime = fetched
            .content_type
            .as_deref()
            .and_then(|ct| ct.split(';').next())
            .map(str::trim);
        if !mime.is_some_and(|m| m.eq_ignore_ascii_case("application/json")) {
            return Err(Context::metadata_error(
                url,
                "the Content-Type is not application/json",
            ));
        }
        serde_json::from_slice(&fetched.body).map_err(|error| {
            Context::metadata_error(
                url,
                format!("not JSON ({})", crate::xrpc::describe_json_error(&error)),
            )
        })
    }

    /// The authorization server of the PDS at `pds` (checklist items 6–7): its
    /// protected-resource metadata on the PDS origin, whose `resource` must be that origin and
    /// which names exactly one authorization server.
    pub(crate) async fn issuer_of_pds(&self, pds: &Url) -> Result<(String, String), OAuthError> {
        check_oauth_url(pds, self.allow_http, "the PDS URL")?;
        let origin = pds.origin().ascii_serialization();
        let url = Url::parse(&format!("{origin}/.well-known/oauth-protected-resource"))
            .map_err(|_| Context::metadata_error(pds, "the PDS URL has no origin"))?;
        let document = self.get_json(&url).await?;
        let prm: ProtectedResourceMetadata = serde_json::from_value(document).map_err(|error| {
            Context::metadata_error(
                &url,
                format!(
                    "not protected-resource metadata ({})",
                    crate::xrpc::describe_json_error(&error)
                ),
            )
        })?;
        if prm.resource != origin {
            return Err(Context::metadata_error(
                &url,
                format!("`resource` is not the PDS origin {origin}"),
            ));
        }
        match prm.authorization_servers.as_slice() {
            [issuer] => Ok((prm.resource, issuer.clone())),
            other => Err(Context::metadata_error(
                &url,
                format!(
                    "`authorization_servers` must have exactly one entry, has {}",
                    other.len()
                ),
            )),
        }
    }

    /// The authorization server metadata of `issuer`, validated (checklist items 8–11).
    pub(crate) async fn authorization_server(
        &self,
        issuer: &str,
        resource: Option<&str>,
    ) -> Result<AuthorizationServerMetadata, OAuthError> {
        let issuer_url = check_issuer(issuer, self.allow_http)?;
        let base = issuer_url.origin().ascii_serialization();
        let path = issuer_url.path().trim_end_matches('/');
        let url = Url::parse(&format!(
            "{base}{path}/.well-known/oauth-authorization-server"
        ))
        .map_err(|_| Context::metadata_error(&issuer_url, "bad issuer URL"))?;
        let document = self.get_json(&url).await?;
        let metadata: AuthorizationServerMetadata =
            serde_json::from_value(document).map_err(|error| {
                Context::metadata_error(
                    &url,
                    format!(
                        "not authorization-server metadata ({})",
                        crate::xrpc::describe_json_error(&error)
                    ),
                )
            })?;
        metadata.validate(issuer, self.allow_http, &redact_url(&url))?;
        if let (Some(resource), Some(resources)) = (resource, &metadata.protected_resources)
            && !resources.iter().any(|r| r == resource)
        {
            return Err(Context::metadata_error(
                &url,
                format!("`protected_resources` does not list {resource}"),
            ));
        }
        Ok(metadata)
    }

    /// Re-resolves `did` without caches → PDS → protected resource → issuer (checklist item
    /// 24), within [`ISSUER_CHECK_TIMEOUT`]. Returns the PDS URL and the issuer.
    pub(crate) async fn resolve_issuer_of(&self, did: &Did) -> Result<(Url, String), OAuthError> {
        let work = async {
            let document = self.resolver.resolve_did_with(did, Lookup::Fresh).await?;
            let pds = document
                .pds_endpoint()
                .map_err(|error| OAuthError::Identity(error.into()))?;
            let (_, issuer) = self.issuer_of_pds(&pds).await?;
            Ok::<_, OAuthError>((pds, issuer))
        };
        match tokio::time::timeout(ISSUER_CHECK_TIMEOUT, work).await {
            Ok(result) => result,
            Err(_) => Err(OAuthError::Transport {
                url: did.to_string(),
                reason: format!(
                    "the issuer check took longer than {} s",
                    ISSUER_CHECK_TIMEOUT.as_secs()
                ),
                source: None,
            }),
        }
    }

    /// Checks that `did`'s issuer is still `issuer`; returns the PDS.
    pub(crate) async fn verify_issuer(&self, did: &Did, issuer: &str) -> Result<Url, OAuthError> {
        let (pds, found) = self.resolve_issuer_of(did).await?;
        if found != issuer {
            return Err(OAuthError::IssuerMismatch {
                expected: issuer.to_owned(),
                found,
            });
        }
        Ok(pds)
    }

    /// The client-auth fields for one request to `issuer` (a fresh assertion each time).
    fn client_auth(
        &self,
        method: &AuthMethod,
        issuer: &str,
    ) -> Result<Vec<(&'static str, String)>, OAuthError> {
        let mut fields = vec![("client_id", self.metadata.client_id.clone())];
        if let AuthMethod::PrivateKeyJwt { kid } = method {
            let key = self
                .keyset
                .as_ref()
                .and_then(|keys| keys.get(kid))
                .ok_or_else(|| OAuthError::AuthMethodUnsatisfiable {
                    reason: format!("the client key {kid:?} is no longer in the keyset"),
                })?;
            fields.push(("client_assertion_type", CLIENT_ASSERTION_TYPE.to_owned()));
            fields.push((
                "client_assertion",
                key.assertion(&self.metadata.client_id, issuer)?,
            ));
        }
        Ok(fields)
    }

    /// A DPoP-signed form POST to an authorization-server endpoint, with one retry on
    /// `400 use_dpop_nonce` when the nonce changed (checklist items 32–33). The body is a
    /// form built afresh for each attempt (new proof, new client assertion). Returns the
    /// status and the JSON body (`Null` when it is not JSON).
    pub(crate) async fn post_form(
        &self,
        endpoint: &str,
        key: &Es256Key,
        method: &AuthMethod,
        issuer: &str,
        fields: &[(&str, &str)],
    ) -> Result<(u16, Value), OAuthError> {
        let url = Url::parse(endpoint).map_err(|_| OAuthError::Metadata {
            url: endpoint.chars().take(200).collect(),
            reason: "the endpoint is not a URL".to_owned(),
        })?;
        check_oauth_url(&url, self.allow_http, "an OAuth endpoint")?;
        let shown = redact_url(&url);
        let origin = origin_of(&url);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (proof, sent_nonce) = dpop::proof(key, "POST", &url, &self.nonces, None)
                .map_err(|error| OAuthError::Crypto(error.to_string()))?;
            let auth = self.client_auth(method, issuer)?;
            let body = {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                for (name, value) in fields {
                    form.append_pair(name, value);
                }
                for (name, value) in &auth {
                    form.append_pair(name, value);
                }
                form.finish()
            };
            let response = self
                .http
                .post(url.clone())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(ACCEPT, "application/json")
                .header("DPoP", proof)
                .body(body)
                .timeout(REQUEST_TIMEOUT)
                .send()
                .await
                .map_err(|error| OAuthError::Transport {
                    url: shown.clone(),
                    reason: if error.is_timeout() {
                        "timed out".to_owned()
                    } else {
                        "request failed".to_owned()
                    },
                    source: Some(Box::new(error.without_url())),
                })?;
            let status = response.status().as_u16();
            let new_nonce = response
                .headers()
                .get("dpop-nonce")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if let Some(nonce) = &new_nonce {
                self.nonces.put(&origin, nonce);
            }
            // Compared with the nonce this request carried, not with what the cache held: a
            // concurrent response may have stored the new nonce first.
            let changed = dpop::should_retry(&self.nonces, &origin, sent_nonce.as_deref());
            if (300..400).contains(&status) {
                return Err(OAuthError::Server {
                    endpoint: shown,
                    status,
                    error: "redirect".to_owned(),
                    description: Some("OAuth endpoints are not followed through redirects".into()),
                });
            }
            let bytes = read_limited(response, MAX_RESPONSE_BYTES)
                .await
                .map_err(|error| OAuthError::Transport {
                    url: shown.clone(),
                    reason: error.to_string(),
                    source: None,
                })?;
            let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if status == 400
                && json.get("error").and_then(Value::as_str) == Some("use_dpop_nonce")
                && attempt == 1
                && changed
            {
                tracing::debug!(endpoint = %shown, "DPoP nonce challenge; retrying once");
                continue;
            }
            return Ok((status, json));
        }
    }

    /// The error of a non-2xx OAuth response.
    pub(crate) fn server_error(endpoint: &str, status: u16, json: &Value) -> OAuthError {
        let text = |name: &str| {
            json.get(name)
                .and_then(Value::as_str)
                .map(|s| s.chars().take(300).collect::<String>())
        };
        OAuthError::Server {
            endpoint: Url::parse(endpoint)
                .map(|u| redact_url(&u))
                .unwrap_or_default(),
            status,
            error: text("error").unwrap_or_else(|| "unknown".to_owned()),
            description: text("error_description"),
        }
    }

    /// Validates a token response (checklist item 23).
    pub(crate) fn token_set(endpoint: &str, json: &Value) -> Result<TokenSet, OAuthError> {
        let bad = |reason: &str| OAuthError::InvalidTokenResponse {
            endpoint: endpoint.chars().take(200).collect(),
            reason: reason.to_owned(),
        };
        let access_token = json
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| bad("no `access_token` string"))?;
        match json.get("token_type").and_then(Value::as_str) {
            Some("DPoP") => {}
            Some(_) => return Err(bad("`token_type` is not `DPoP`")),
            None => return Err(bad("no `token_type`")),
        }
        if json.get("id_token").is_some() {
            return Err(bad("an `id_token` is not allowed in atproto"));
        }
        let sub = json
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no `sub`"))?;
        let sub = Did::new(sub).map_err(|_| bad("`sub` is not a DID"))?;
        if !(sub.as_str().starts_with("did:plc:") || sub.as_str().starts_with("did:web:")) {
            return Err(bad("`sub` is neither did:plc nor did:web"));
        }
        let scope = json
            .get("scope")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no `scope`"))?;
        if !scope_contains(scope, ATPROTO_SCOPE) {
            return Err(bad("the granted `scope` lacks `atproto`"));
        }
        let refresh_token = match json.get("refresh_token") {
            None | Some(Value::Null) => None,
            Some(Value::String(token)) if !token.is_empty() => Some(Secret::new(token.as_str())),
            Some(_) => return Err(bad("`refresh_token` is not a string")),
        };
        let expires_in = match json.get("expires_in") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_i64()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad("`expires_in` is not a positive integer"))?,
            ),
        };
        Ok(TokenSet {
            access_token: Secret::new(access_token),
            refresh_token,
            scope: scope.to_owned(),
            sub,
            expires_in,
        })
    }

    /// Revokes `token` at the issuer (best effort; errors are logged, never returned).
    pub(crate) async fn revoke_token(
        &self,
        issuer: &str,
        key: &Es256Key,
        method: &AuthMethod,
        token: &Secret,
    ) {
        let metadata = match self.authorization_server(issuer, None).await {
            Ok(metadata) => metadata,
            Err(error) => {
                tracing::warn!(%issuer, %error, "cannot revoke: no authorization server metadata");
                return;
            }
        };
        let Some(endpoint) = metadata.revocation_endpoint.as_deref() else {
            tracing::debug!(%issuer, "the authorization server has no revocation endpoint");
            return;
        };
        match self
            .post_form(endpoint, key, method, issuer, &[("token", token.expose())])
            .await
        {
            Ok((status, _)) if (200..300).contains(&status) => {}
            Ok((status, json)) => {
                let error = Context::server_error(endpoint, status, &json);
                tracing::warn!(%error, "token revocation failed");
            }
            Err(error) => tracing::warn!(%error, "token revocation failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok() -> Value {
        json!({"access_token": "a", "token_type": "DPoP", "sub": "did:plc:abc",
               "scope": "atproto transition:generic", "refresh_token": "r", "expires_in": 60,
               "unknown": true})
    }

    #[test]
    fn token_response_shape() {
        let set = Context::token_set("t", &ok()).unwrap();
        assert_eq!(set.sub.as_str(), "did:plc:abc");
        let mut bearer = ok();
        bearer["token_type"] = "Bearer".into();
        assert!(Context::token_set("t", &bearer).is_err());
        let mut id = ok();
        id["id_token"] = "x".into();
        assert!(Context::token_set("t", &id).is_err());
        let mut scope = ok();
        scope["scope"] = "transition:generic".into();
        assert!(Context::token_set("t", &scope).is_err());
        let mut sub = ok();
        sub["sub"] = "did:key:zabc".into();
        assert!(Context::token_set("t", &sub).is_err());
        let mut secret = ok();
        secret["access_token"] = 5.into();
        let error = Context::token_set("t", &secret).err().unwrap().to_string();
        assert!(!error.contains('5'), "{error}");
    }
}
