//! Talking to the servers: metadata fetches (protected resource, authorization server), the
//! issuer check, and the DPoP-signed form POSTs to PAR, token and revocation endpoints.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

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
/// The time allowed for one metadata document (protected resource, authorization server).
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// How long fetched metadata (protected resource, authorization server) is reused.
pub const METADATA_CACHE_TTL: Duration = Duration::from_secs(60);
/// How many entries each metadata cache holds at most.
pub const METADATA_CACHE_SIZE: usize = 100;

/// A small in-memory cache of validated metadata documents: keyed by issuer (or PDS origin),
/// each entry reused for `ttl`, at most `max` entries (expired ones go first, then the oldest).
pub(crate) struct MetadataCache<T> {
    ttl: Duration,
    max: usize,
    entries: Mutex<HashMap<String, (Instant, T)>>,
}

impl<T: Clone> MetadataCache<T> {
    pub(crate) fn new(ttl: Duration, max: usize) -> MetadataCache<T> {
        MetadataCache {
            ttl,
            max,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, T)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry for `key`, when it is younger than the TTL.
    pub(crate) fn get(&self, key: &str) -> Option<T> {
        let mut entries = self.lock();
        match entries.get(key) {
            Some((at, value)) if at.elapsed() < self.ttl => Some(value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `value` for `key` (nothing when the TTL or the size is zero).
    pub(crate) fn put(&self, key: &str, value: T) {
        if self.ttl.is_zero() || self.max == 0 {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.max && !entries.contains_key(key) {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            while entries.len() >= self.max {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone());
                match oldest {
                    Some(oldest) => entries.remove(&oldest),
                    None => break,
                };
            }
        }
        entries.insert(key.to_owned(), (Instant::now(), value));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// What is shared by an [`OAuthClient`](super::OAuthClient) and all its sessions.
pub(crate) struct Context {
    pub(crate) metadata: ClientMetadata,
    pub(crate) keyset: Option<Keyset>,
    pub(crate) resolver: IdentityResolver,
    pub(crate) fetcher: Fetcher,
    pub(crate) http: reqwest::Client,
    pub(crate) allow_http: bool,
    pub(crate) nonces: Arc<NonceCache>,
    /// The time allowed for one OAuth endpoint request ([`REQUEST_TIMEOUT`] by default).
    pub(crate) request_timeout: Duration,
    /// The time allowed for the issuer check ([`ISSUER_CHECK_TIMEOUT`] by default).
    pub(crate) issuer_check_timeout: Duration,
    /// Validated authorization-server metadata by issuer.
    pub(crate) servers: MetadataCache<AuthorizationServerMetadata>,
    /// `(resource, issuer)` by PDS origin, for the sign-in input only: the issuer check never
    /// reads it.
    pub(crate) resources: MetadataCache<(String, String)>,
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
        self.get_json_or_absent(url)
            .await?
            .ok_or_else(|| Context::metadata_error(url, "status 404 (200 required)"))
    }

    /// [`get_json`](Self::get_json), with `None` for a `404`.
    async fn get_json_or_absent(&self, url: &Url) -> Result<Option<Value>, OAuthError> {
        check_oauth_url(url, self.allow_http, "a metadata URL")?;
        let result = self
            .fetcher
            .get(
                url,
                Get {
                    accept: Some("application/json"),
                    max_body: Some(MAX_METADATA_BYTES),
                    ..Get::default()
                },
            )
            .await;
        let fetched = match result {
            Ok(fetched) => fetched,
            Err(error) => {
                return match error.kind() {
                    FetchErrorKind::Status(404) => Ok(None),
                    FetchErrorKind::Timeout | FetchErrorKind::Connect(_) => {
                        Err(OAuthError::Transport {
                            url: redact_url(url),
                            reason: error.to_string(),
                            source: Some(Box::new(error)),
                        })
                    }
                    _ => Err(Context::metadata_error(url, error.to_string())),
                };
            }
        };
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
        serde_json::from_slice(&fetched.body)
            .map(Some)
            .map_err(|error| {
                Context::metadata_error(
                    url,
                    format!("not JSON ({})", crate::xrpc::describe_json_error(&error)),
                )
            })
    }

    /// The authorization server of the PDS at `pds` (checklist items 6–7): its
    /// protected-resource metadata on the PDS origin, whose `resource` must be that origin and
    /// which names exactly one authorization server. Returns `(resource, issuer)`.
    ///
    /// `legacy`: a `404` (no protected-resource metadata at all; any other failure is an
    /// error) makes the PDS origin its own issuer, as for PDSs from before the metadata
    /// existed (the reference client does the same). Used for a PDS from a DID document (identity
    /// input and the issuer check); a URL typed by the user has its own fallback (the URL as
    /// an issuer). `cached`: reuse a recent answer (the sign-in input only; the issuer check
    /// always fetches).
    pub(crate) async fn issuer_of_pds(
        &self,
        pds: &Url,
        legacy: bool,
        cached: bool,
    ) -> Result<(String, String), OAuthError> {
        check_oauth_url(pds, self.allow_http, "the PDS URL")?;
        let origin = pds.origin().ascii_serialization();
        let cache_key = format!("{}{origin}", if legacy { "legacy:" } else { "" });
        if cached && let Some(found) = self.resources.get(&cache_key) {
            return Ok(found);
        }
        let found = self.fetch_issuer_of_pds(pds, &origin, legacy).await?;
        self.resources.put(&cache_key, found.clone());
        Ok(found)
    }

    async fn fetch_issuer_of_pds(
        &self,
        pds: &Url,
        origin: &str,
        legacy: bool,
    ) -> Result<(String, String), OAuthError> {
        let url = Url::parse(&format!("{origin}/.well-known/oauth-protected-resource"))
            .map_err(|_| Context::metadata_error(pds, "the PDS URL has no origin"))?;
        let document = if legacy {
            match self.get_json_or_absent(&url).await? {
                Some(document) => document,
                None => {
                    tracing::debug!(pds = %origin,
                        "no protected-resource metadata (404): the PDS is its own issuer");
                    return Ok((origin.to_owned(), origin.to_owned()));
                }
            }
        } else {
            self.get_json(&url).await?
        };
        let prm: ProtectedResourceMetadata = serde_json::from_value(document).map_err(|error| {
            Context::metadata_error(
                &url,
                format!(
                    "not protected-resource metadata ({})",
                    crate::xrpc::describe_json_error(&error)
                ),
            )
        })?;
        if prm.resource != *origin {
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

    /// The authorization server metadata of `issuer`, validated (checklist items 8–11);
    /// reused from the cache for [`METADATA_CACHE_TTL`] (only validated documents are kept;
    /// `protected_resources` is checked against `resource` on every call).
    pub(crate) async fn authorization_server(
        &self,
        issuer: &str,
        resource: Option<&str>,
    ) -> Result<AuthorizationServerMetadata, OAuthError> {
        let issuer_url = check_issuer(issuer, self.allow_http)?;
        let metadata = match self.servers.get(issuer) {
            Some(metadata) => metadata,
            None => {
                let metadata = self.fetch_authorization_server(issuer, &issuer_url).await?;
                self.servers.put(issuer, metadata.clone());
                metadata
            }
        };
        if let (Some(resource), Some(resources)) = (resource, &metadata.protected_resources)
            && !resources.iter().any(|r| r == resource)
        {
            return Err(OAuthError::Metadata {
                url: redact_url(&issuer_url),
                reason: format!("`protected_resources` does not list {resource}"),
            });
        }
        Ok(metadata)
    }

    async fn fetch_authorization_server(
        &self,
        issuer: &str,
        issuer_url: &Url,
    ) -> Result<AuthorizationServerMetadata, OAuthError> {
        let base = issuer_url.origin().ascii_serialization();
        let path = issuer_url.path().trim_end_matches('/');
        let url = Url::parse(&format!(
            "{base}{path}/.well-known/oauth-authorization-server"
        ))
        .map_err(|_| Context::metadata_error(issuer_url, "bad issuer URL"))?;
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
        Ok(metadata)
    }

    /// Re-resolves `did` without caches → PDS → protected resource → issuer (checklist item
    /// 24), within the issuer-check timeout ([`ISSUER_CHECK_TIMEOUT`] by default). Returns the
    /// PDS URL and the issuer.
    pub(crate) async fn resolve_issuer_of(&self, did: &Did) -> Result<(Url, String), OAuthError> {
        let work = async {
            let document = self.resolver.resolve_did_with(did, Lookup::Fresh).await?;
            let pds = document
                .pds_endpoint()
                .map_err(|error| OAuthError::Identity(error.into()))?;
            let (_, issuer) = self.issuer_of_pds(&pds, true, false).await?;
            Ok::<_, OAuthError>((pds, issuer))
        };
        match tokio::time::timeout(self.issuer_check_timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(OAuthError::Transport {
                url: did.to_string(),
                reason: format!(
                    "the issuer check timed out (after {} ms)",
                    self.issuer_check_timeout.as_millis()
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
                .timeout(self.request_timeout)
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
    fn metadata_cache_is_bounded_and_expires() {
        let cache = MetadataCache::new(Duration::from_secs(60), 3);
        for i in 0..10 {
            cache.put(&format!("https://as{i}.example"), i);
        }
        assert_eq!(cache.len(), 3, "bounded");
        assert_eq!(
            cache.get("https://as9.example"),
            Some(9),
            "the newest is kept"
        );
        cache.put("https://as9.example", 90);
        assert_eq!(cache.len(), 3, "a replaced entry evicts nothing");
        assert_eq!(cache.get("https://as9.example"), Some(90));

        let off = MetadataCache::new(Duration::ZERO, 3);
        off.put("https://as.example", 1);
        assert_eq!(
            off.get("https://as.example"),
            None,
            "a zero TTL keeps nothing"
        );

        let short = MetadataCache::new(Duration::from_millis(1), 3);
        short.put("https://as.example", 1);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(short.get("https://as.example"), None, "expired");
        assert_eq!(short.len(), 0, "an expired entry is dropped when read");
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
