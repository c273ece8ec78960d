//! Client metadata (loopback and discoverable clients, checklist §4.3–4.4), the servers'
//! metadata documents (protected resource, authorization server), issuer identifiers and
//! scope strings.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::{Host, Url};

use super::error::OAuthError;

/// The scope every atproto OAuth request, client and token carries.
pub const ATPROTO_SCOPE: &str = "atproto";

/// The defaults an AS assumes for a loopback client without `redirect_uri`s.
const LOOPBACK_DEFAULT_REDIRECTS: [&str; 2] = ["http://127.0.0.1/", "http://[::1]/"];

fn invalid(reason: impl Into<String>) -> OAuthError {
    OAuthError::InvalidClientMetadata {
        reason: reason.into(),
    }
}

/// Whether `scope` is a valid OAuth scope string: tokens of printable ASCII other than
/// space, `"` and `\`, separated by single spaces.
pub fn is_valid_scope(scope: &str) -> bool {
    !scope.is_empty()
        && scope.split(' ').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        })
}

/// Whether the space-separated `scope` holds the token `token`.
pub fn scope_contains(scope: &str, token: &str) -> bool {
    scope.split(' ').any(|t| t == token)
}

fn check_scope(scope: &str, what: &str) -> Result<(), OAuthError> {
    if !is_valid_scope(scope) {
        return Err(invalid(format!(
            "{what} is not a space-separated list of scope tokens"
        )));
    }
    if !scope_contains(scope, ATPROTO_SCOPE) {
        return Err(invalid(format!("{what} does not contain `atproto`")));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = scope.split(' ').find(|t| !seen.insert(*t)) {
        return Err(invalid(format!("{what} repeats `{dup}`")));
    }
    Ok(())
}

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum AuthMethod {
    /// A public client (`none`): `client_id` only.
    None,
    /// A confidential client: an ES256 client assertion signed with the keyset key `kid`.
    PrivateKeyJwt {
        /// The key's id.
        kid: String,
    },
}

/// An OAuth client's metadata: the document a discoverable client serves at its `client_id`,
/// or what an authorization server derives from a loopback `client_id`.
///
/// Build one with [`ClientMetadata::loopback`] or [`ClientMetadata::discoverable`] (then set
/// the optional fields), and hand it to [`OAuthClient::builder`](super::OAuthClient::builder),
/// which validates it (checklist §4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientMetadata {
    /// The client id: `http://localhost?…` (loopback) or the https URL of this document.
    pub client_id: String,
    /// The registered redirect URIs (the first is the default).
    pub redirect_uris: Vec<String>,
    /// Every scope the client may ever request, space-separated; contains `atproto`.
    pub scope: String,
    /// `authorization_code` and (to refresh) `refresh_token`.
    pub grant_types: Vec<String>,
    /// `code`.
    pub response_types: Vec<String>,
    /// `none` (public) or `private_key_jwt` (confidential).
    pub token_endpoint_auth_method: String,
    /// `ES256` for a confidential client; absent for a public one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// `web` or `native`.
    pub application_type: String,
    /// Always `true` in atproto.
    pub dpop_bound_access_tokens: bool,
    /// Where the public JWKS is served (confidential clients; https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The public JWKS inline (confidential clients; instead of `jwks_uri`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    /// A name shown at consent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// The app's home page (same origin as `client_id`, a parent path of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// A logo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// Terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    /// Privacy policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
}

impl ClientMetadata {
    /// A loopback (development / native CLI) client: `client_id` is
    /// `http://localhost?redirect_uri=…&scope=…` (the scope is left out when it is just
    /// `atproto`, redirect URIs equal to the defaults too). Redirect URIs must be
    /// `http://127.0.0.1…` or `http://[::1]…` (`localhost` is refused, RFC 8252); a URI
    /// without a port matches any port when used.
    pub fn loopback<S: AsRef<str>>(
        redirect_uris: &[S],
        scope: &str,
    ) -> Result<ClientMetadata, OAuthError> {
        let redirect_uris: Vec<String> = redirect_uris
            .iter()
            .map(|uri| uri.as_ref().to_owned())
            .collect();
        check_scope(scope, "the scope")?;
        for uri in &redirect_uris {
            check_loopback_redirect(uri)?;
        }
        let mut pairs: Vec<(&str, &str)> = redirect_uris
            .iter()
            .filter(|uri| !LOOPBACK_DEFAULT_REDIRECTS.contains(&uri.as_str()))
            .map(|uri| ("redirect_uri", uri.as_str()))
            .collect();
        if scope != ATPROTO_SCOPE {
            pairs.push(("scope", scope));
        }
        let client_id = if pairs.is_empty() {
            "http://localhost".to_owned()
        } else {
            format!(
                "http://localhost?{}",
                crate::xrpc::transport::encode_query(pairs.into_iter())
            )
        };
        let redirect_uris = if redirect_uris.is_empty() {
            LOOPBACK_DEFAULT_REDIRECTS.map(str::to_owned).to_vec()
        } else {
            redirect_uris
        };
        Ok(ClientMetadata {
            client_id,
            redirect_uris,
            scope: scope.to_owned(),
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            response_types: vec!["code".into()],
            token_endpoint_auth_method: "none".into(),
            token_endpoint_auth_signing_alg: None,
            application_type: "native".into(),
            dpop_bound_access_tokens: true,
            jwks_uri: None,
            jwks: None,
            client_name: None,
            client_uri: None,
            logo_uri: None,
            tos_uri: None,
            policy_uri: None,
        })
    }

    /// Reads a loopback `client_id` back into metadata (what the AS derives from it).
    pub fn parse_loopback(client_id: &str) -> Result<ClientMetadata, OAuthError> {
        let rest = client_id
            .strip_prefix("http://localhost")
            .ok_or_else(|| invalid("a loopback client_id starts with `http://localhost`"))?;
        let rest = rest.strip_prefix('/').unwrap_or(rest);
        let query = match rest {
            "" => "",
            q if q.starts_with('?') => &q[1..],
            _ => {
                return Err(invalid(
                    "a loopback client_id has no port, path or fragment",
                ));
            }
        };
        if query.contains('#') {
            return Err(invalid("a loopback client_id has no fragment"));
        }
        let mut redirects = Vec::new();
        let mut scope = None;
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "redirect_uri" => redirects.push(value.into_owned()),
                "scope" if scope.is_none() => scope = Some(value.into_owned()),
                "scope" => return Err(invalid("a loopback client_id has one `scope` at most")),
                other => {
                    return Err(invalid(format!(
                        "a loopback client_id may not have the query key `{other}`"
                    )));
                }
            }
        }
        let scope = scope.unwrap_or_else(|| ATPROTO_SCOPE.to_owned());
        let mut metadata = ClientMetadata::loopback(&redirects, &scope)?;
        metadata.client_id = client_id.to_owned();
        Ok(metadata)
    }

    /// A discoverable client whose metadata document is served at `client_id` (an https URL
    /// with a path, e.g. `https://app.example.com/oauth-client-metadata.json`). A public web
    /// client by default; make it confidential with [`ClientMetadata::confidential`].
    pub fn discoverable<S: AsRef<str>>(
        client_id: &str,
        redirect_uris: &[S],
        scope: &str,
    ) -> ClientMetadata {
        ClientMetadata {
            client_id: client_id.to_owned(),
            redirect_uris: redirect_uris
                .iter()
                .map(|uri| uri.as_ref().to_owned())
                .collect(),
            scope: scope.to_owned(),
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            response_types: vec!["code".into()],
            token_endpoint_auth_method: "none".into(),
            token_endpoint_auth_signing_alg: None,
            application_type: "web".into(),
            dpop_bound_access_tokens: true,
            jwks_uri: None,
            jwks: None,
            client_name: None,
            client_uri: None,
            logo_uri: None,
            tos_uri: None,
            policy_uri: None,
        }
    }

    /// Makes the client confidential (`private_key_jwt`, ES256) with its public JWKS served
    /// at `jwks_uri` (see [`OAuthClient::jwks`](super::OAuthClient::jwks)).
    #[must_use]
    pub fn confidential(mut self, jwks_uri: &str) -> ClientMetadata {
        self.token_endpoint_auth_method = "private_key_jwt".into();
        self.token_endpoint_auth_signing_alg = Some("ES256".into());
        self.jwks_uri = Some(jwks_uri.to_owned());
        self
    }

    /// Sets `client_name`.
    #[must_use]
    pub fn with_name(mut self, name: &str) -> ClientMetadata {
        self.client_name = Some(name.to_owned());
        self
    }

    /// Sets `client_uri`.
    #[must_use]
    pub fn with_client_uri(mut self, uri: &str) -> ClientMetadata {
        self.client_uri = Some(uri.to_owned());
        self
    }

    /// Parses and validates a served metadata document (e.g. fetched from its `client_id`).
    pub fn from_document(document: &Value) -> Result<ClientMetadata, OAuthError> {
        for rejected in [
            "default_max_age",
            "userinfo_signed_response_alg",
            "userinfo_encrypted_response_alg",
            "userinfo_encrypted_response_enc",
            "id_token_signed_response_alg",
            "authorization_encrypted_response_enc",
            "tls_client_certificate_bound_access_tokens",
        ] {
            if document.get(rejected).is_some() {
                return Err(invalid(format!("the field `{rejected}` is not allowed")));
            }
        }
        if let Some(subject) = document.get("subject_type")
            && subject != "public"
        {
            return Err(invalid("`subject_type` must be `public`"));
        }
        let metadata: ClientMetadata =
            serde_json::from_value(document.clone()).map_err(|error| {
                invalid(format!(
                    "not a client metadata document ({})",
                    crate::xrpc::describe_json_error(&error)
                ))
            })?;
        metadata.validate()?;
        Ok(metadata)
    }

    /// Whether the client id is a loopback one.
    pub fn is_loopback(&self) -> bool {
        self.client_id.starts_with("http://localhost")
    }

    /// The auth method this metadata declares (`kid` filled at negotiation).
    pub fn is_confidential(&self) -> bool {
        self.token_endpoint_auth_method == "private_key_jwt"
    }

    /// Checks the rules of checklist §4 (client id form, scope, grant and response types,
    /// auth method, redirect URIs).
    pub fn validate(&self) -> Result<(), OAuthError> {
        check_scope(&self.scope, "the client's scope")?;
        if !self.response_types.iter().any(|t| t == "code") {
            return Err(invalid("`response_types` must contain `code`"));
        }
        if !self.grant_types.iter().any(|t| t == "authorization_code") {
            return Err(invalid("`grant_types` must contain `authorization_code`"));
        }
        if self.grant_types.iter().any(|t| t == "implicit") {
            return Err(invalid("`grant_types` may not contain `implicit`"));
        }
        let mut seen = std::collections::HashSet::new();
        if self.grant_types.iter().any(|t| !seen.insert(t)) {
            return Err(invalid("`grant_types` has duplicates"));
        }
        if !self.dpop_bound_access_tokens {
            return Err(invalid("`dpop_bound_access_tokens` must be true"));
        }
        if !matches!(self.application_type.as_str(), "web" | "native") {
            return Err(invalid("`application_type` must be `web` or `native`"));
        }
        if self.redirect_uris.is_empty() {
            return Err(invalid("`redirect_uris` is empty"));
        }
        match self.token_endpoint_auth_method.as_str() {
            "none" => {
                if self.token_endpoint_auth_signing_alg.is_some() {
                    return Err(invalid(
                        "a public client (`none`) has no `token_endpoint_auth_signing_alg`",
                    ));
                }
            }
            "private_key_jwt" => {
                if self.is_loopback() {
                    return Err(invalid("a loopback client is always public"));
                }
                if self.token_endpoint_auth_signing_alg.as_deref() != Some("ES256") {
                    return Err(invalid(
                        "a confidential client declares `token_endpoint_auth_signing_alg` ES256",
                    ));
                }
                match (&self.jwks_uri, &self.jwks) {
                    (Some(_), Some(_)) => {
                        return Err(invalid("`jwks` and `jwks_uri` are exclusive"));
                    }
                    (None, None) => {
                        return Err(invalid("a confidential client needs `jwks` or `jwks_uri`"));
                    }
                    (Some(uri), None) => {
                        let url =
                            Url::parse(uri).map_err(|_| invalid("`jwks_uri` is not a URL"))?;
                        if url.scheme() != "https" {
                            return Err(invalid("`jwks_uri` must be https"));
                        }
                    }
                    (None, Some(_)) => {}
                }
            }
            other => {
                return Err(invalid(format!(
                    "`token_endpoint_auth_method` {other:?} is neither `none` nor `private_key_jwt`"
                )));
            }
        }
        if self.is_loopback() {
            let derived = ClientMetadata::parse_loopback(&self.client_id)?;
            if derived.scope != self.scope {
                return Err(invalid("the scope differs from the loopback client_id's"));
            }
            for uri in &self.redirect_uris {
                check_loopback_redirect(uri)?;
            }
            return Ok(());
        }
        let client_id = check_discoverable_client_id(&self.client_id)?;
        for uri in &self.redirect_uris {
            check_discoverable_redirect(uri, &client_id, &self.application_type)?;
        }
        if let Some(client_uri) = &self.client_uri {
            let url = Url::parse(client_uri).map_err(|_| invalid("`client_uri` is not a URL"))?;
            if url.origin() != client_id.origin()
                || !client_id
                    .path()
                    .starts_with(url.path().trim_end_matches('/'))
            {
                return Err(invalid(
                    "`client_uri` must be on the client_id's origin and a parent path of it",
                ));
            }
        }
        Ok(())
    }

    /// Whether `uri` may be used as the redirect URI: one of `redirect_uris`, or, for a
    /// loopback URI registered without a port, the same URI with any port.
    pub fn accepts_redirect(&self, uri: &str) -> bool {
        if self.redirect_uris.iter().any(|r| r == uri) {
            return true;
        }
        let Ok(used) = Url::parse(uri) else {
            return false;
        };
        self.redirect_uris.iter().any(|registered| {
            let Ok(registered) = Url::parse(registered) else {
                return false;
            };
            registered.scheme() == "http"
                && is_loopback_ip(&registered)
                && registered.port().is_none()
                && used.scheme() == "http"
                && used.host() == registered.host()
                && used.path() == registered.path()
                && used.query() == registered.query()
                && used.fragment().is_none()
        })
    }

    /// The document as JSON (what a discoverable client serves at its `client_id`).
    pub fn to_document(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

fn is_loopback_ip(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        _ => false,
    }
}

fn check_loopback_redirect(uri: &str) -> Result<(), OAuthError> {
    let url = Url::parse(uri).map_err(|_| invalid(format!("redirect URI {uri:?} is not a URL")))?;
    if url.scheme() != "http" || !is_loopback_ip(&url) {
        return Err(invalid(format!(
            "loopback redirect URI {uri:?} must be http://127.0.0.1… or http://[::1]… \
             (`localhost` is not allowed)"
        )));
    }
    if url.fragment().is_some() {
        return Err(invalid(format!("redirect URI {uri:?} has a fragment")));
    }
    Ok(())
}

/// Checks a discoverable `client_id`: https, a path other than `/`, no trailing slash,
/// fragment or credentials, a host that is not an IP address.
pub fn check_discoverable_client_id(client_id: &str) -> Result<Url, OAuthError> {
    let url = Url::parse(client_id).map_err(|_| invalid("the client_id is not a URL"))?;
    if url.scheme() != "https" {
        return Err(invalid("a discoverable client_id is https"));
    }
    if !matches!(url.host(), Some(Host::Domain(_))) {
        return Err(invalid(
            "a discoverable client_id's host is a name, not an IP",
        ));
    }
    if url.path() == "/" || url.path().ends_with('/') {
        return Err(invalid(
            "a discoverable client_id has a path, without a trailing slash",
        ));
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "a discoverable client_id has no fragment or credentials",
        ));
    }
    if url.as_str() != client_id {
        return Err(invalid("the client_id is not in canonical form"));
    }
    Ok(url)
}

fn check_discoverable_redirect(
    uri: &str,
    client_id: &Url,
    application_type: &str,
) -> Result<(), OAuthError> {
    let url = Url::parse(uri).map_err(|_| invalid(format!("redirect URI {uri:?} is not a URL")))?;
    match url.scheme() {
        "https" => match url.host() {
            Some(Host::Domain(name)) if !name.eq_ignore_ascii_case("localhost") => Ok(()),
            Some(Host::Ipv4(ip)) if !IpAddr::V4(ip).is_loopback() => Ok(()),
            Some(Host::Ipv6(ip)) if !IpAddr::V6(ip).is_loopback() => Ok(()),
            _ => Err(invalid(format!(
                "https redirect URI {uri:?} must have a non-local host"
            ))),
        },
        "http" if application_type == "native" && is_loopback_ip(&url) => Ok(()),
        "http" => Err(invalid(format!(
            "http redirect URI {uri:?}: only loopback IPs, only for native apps"
        ))),
        scheme if scheme.contains('.') && application_type == "native" => {
            let reversed: Vec<&str> = client_id
                .host_str()
                .unwrap_or_default()
                .split('.')
                .rev()
                .collect();
            if scheme == reversed.join(".") {
                Ok(())
            } else {
                Err(invalid(format!(
                    "private-use redirect scheme {scheme:?} must be the reversed client_id host"
                )))
            }
        }
        scheme => Err(invalid(format!(
            "redirect URI scheme {scheme:?} is not allowed for a {application_type} app"
        ))),
    }
}

/// An OAuth URL's transport rule: `https`; `http` only with `allow_http` (development).
pub(crate) fn check_oauth_url(url: &Url, allow_http: bool, what: &str) -> Result<(), OAuthError> {
    let ok = match url.scheme() {
        "https" => url.host().is_some(),
        "http" => allow_http && url.host().is_some(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(OAuthError::Metadata {
            url: crate::net::redact_url(url),
            reason: format!(
                "{what} must be https{}",
                if url.scheme() == "http" {
                    " (plain http needs `allow_http`, for development only)"
                } else {
                    ""
                }
            ),
        })
    }
}

/// Validates an issuer identifier: an http(s) origin with no credentials, query, fragment or
/// trailing slash, in canonical form.
pub fn check_issuer(issuer: &str, allow_http: bool) -> Result<Url, OAuthError> {
    let bad = |reason: &str| OAuthError::Metadata {
        url: issuer.chars().take(200).collect(),
        reason: format!("not a valid issuer identifier: {reason}"),
    };
    let url = Url::parse(issuer).map_err(|_| bad("not a URL"))?;
    check_oauth_url(&url, allow_http, "the issuer")?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("it has credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it has a query or fragment"));
    }
    if issuer.ends_with('/') {
        return Err(bad("it ends with `/`"));
    }
    let canonical = if url.path() == "/" {
        url.origin().ascii_serialization()
    } else {
        url.to_string()
    };
    if canonical != issuer {
        return Err(bad("it is not in canonical form"));
    }
    Ok(url)
}

/// The protected-resource metadata a PDS serves (checklist §1.3).
#[derive(Debug, Clone, Deserialize)]
pub struct ProtectedResourceMetadata {
    /// The resource (the PDS origin).
    pub resource: String,
    /// Its authorization servers (exactly one in atproto).
    #[serde(default)]
    pub authorization_servers: Vec<String>,
}

/// The authorization-server metadata (checklist §1.4). Only the fields atproto uses.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthorizationServerMetadata {
    /// The issuer.
    pub issuer: String,
    /// The authorization endpoint.
    pub authorization_endpoint: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The PAR endpoint.
    #[serde(default)]
    pub pushed_authorization_request_endpoint: Option<String>,
    /// Whether PAR is required.
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// The revocation endpoint.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// `response_types_supported`.
    #[serde(default)]
    pub response_types_supported: Option<Vec<String>>,
    /// `token_endpoint_auth_methods_supported` (absent means `client_secret_basic` only).
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// `token_endpoint_auth_signing_alg_values_supported`.
    #[serde(default)]
    pub token_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    /// `dpop_signing_alg_values_supported`.
    #[serde(default)]
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
    /// `scopes_supported`.
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
    /// Whether the callback carries `iss`.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// Must be true.
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
    /// The resources this AS serves, when it lists them.
    #[serde(default)]
    pub protected_resources: Option<Vec<String>>,
    /// `code_challenge_methods_supported`.
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
}

impl AuthorizationServerMetadata {
    /// Checks the document against the issuer it was fetched for (checklist items 9–11, 14).
    pub(crate) fn validate(
        &self,
        requested: &str,
        allow_http: bool,
        url: &str,
    ) -> Result<(), OAuthError> {
        let bad = |reason: String| OAuthError::Metadata {
            url: url.to_owned(),
            reason,
        };
        if self.issuer != requested {
            return Err(OAuthError::IssuerMismatch {
                expected: requested.to_owned(),
                found: self.issuer.chars().take(200).collect(),
            });
        }
        if !self.client_id_metadata_document_supported {
            return Err(bad(
                "`client_id_metadata_document_supported` is not true".to_owned()
            ));
        }
        for (name, endpoint) in [
            ("authorization_endpoint", Some(&self.authorization_endpoint)),
            ("token_endpoint", Some(&self.token_endpoint)),
            (
                "pushed_authorization_request_endpoint",
                self.pushed_authorization_request_endpoint.as_ref(),
            ),
            ("revocation_endpoint", self.revocation_endpoint.as_ref()),
        ] {
            if let Some(endpoint) = endpoint {
                let parsed =
                    Url::parse(endpoint).map_err(|_| bad(format!("`{name}` is not a URL")))?;
                check_oauth_url(&parsed, allow_http, name)?;
            }
        }
        if self.pushed_authorization_request_endpoint.is_none() {
            return Err(bad(
                "no `pushed_authorization_request_endpoint` (atproto requires PAR)".to_owned(),
            ));
        }
        if let Some(types) = &self.response_types_supported
            && !types.iter().any(|t| t == "code")
        {
            return Err(bad("`response_types_supported` lacks `code`".to_owned()));
        }
        if let Some(algs) = &self.token_endpoint_auth_signing_alg_values_supported
            && algs.iter().any(|alg| alg == "none")
        {
            return Err(bad(
                "`token_endpoint_auth_signing_alg_values_supported` contains `none`".to_owned(),
            ));
        }
        if let Some(algs) = &self.dpop_signing_alg_values_supported
            && !algs.iter().any(|alg| alg == "ES256")
        {
            return Err(bad(
                "`dpop_signing_alg_values_supported` lacks ES256".to_owned()
            ));
        }
        if let Some(methods) = &self.code_challenge_methods_supported
            && !methods.iter().any(|m| m == "S256")
        {
            return Err(bad(
                "`code_challenge_methods_supported` lacks S256".to_owned()
            ));
        }
        Ok(())
    }

    /// Negotiates the client auth method (checklist §4.2): `none` for a public client;
    /// `private_key_jwt` with the first keyset key whose alg the AS accepts.
    pub(crate) fn negotiate(
        &self,
        metadata: &ClientMetadata,
        keyset: Option<&super::keyset::Keyset>,
    ) -> Result<AuthMethod, OAuthError> {
        let methods = self
            .token_endpoint_auth_methods_supported
            .clone()
            .unwrap_or_else(|| vec!["client_secret_basic".to_owned()]);
        let unsatisfiable = |reason: String| OAuthError::AuthMethodUnsatisfiable { reason };
        if metadata.is_confidential() {
            if !methods.iter().any(|m| m == "private_key_jwt") {
                return Err(unsatisfiable(
                    "the authorization server does not accept `private_key_jwt`".to_owned(),
                ));
            }
            let algs = self
                .token_endpoint_auth_signing_alg_values_supported
                .clone()
                .unwrap_or_else(|| vec!["ES256".to_owned()]);
            if !algs.iter().any(|a| a == "ES256") {
                return Err(unsatisfiable(
                    "the authorization server does not accept ES256 client assertions".to_owned(),
                ));
            }
            let key = keyset
                .and_then(|keys| keys.first())
                .ok_or_else(|| unsatisfiable("the keyset is empty".to_owned()))?;
            Ok(AuthMethod::PrivateKeyJwt {
                kid: key.kid().to_owned(),
            })
        } else if methods.iter().any(|m| m == "none") {
            Ok(AuthMethod::None)
        } else {
            Err(unsatisfiable(
                "the authorization server does not accept public clients (`none`)".to_owned(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_client_id_round_trips() {
        let m =
            ClientMetadata::loopback(&["http://127.0.0.1/callback"], "atproto transition:generic")
                .unwrap();
        assert_eq!(
            m.client_id,
            "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=atproto%20transition%3Ageneric"
        );
        m.validate().unwrap();
        let back = ClientMetadata::parse_loopback(&m.client_id).unwrap();
        assert_eq!(back.redirect_uris, m.redirect_uris);
        assert_eq!(back.scope, m.scope);
        assert_eq!(
            ClientMetadata::loopback::<&str>(&[], "atproto")
                .unwrap()
                .client_id,
            "http://localhost"
        );
        assert!(ClientMetadata::parse_loopback("http://localhost/").is_ok());
        assert!(ClientMetadata::parse_loopback("http://localhost:8080").is_err());
        assert!(ClientMetadata::parse_loopback("http://localhost/path").is_err());
        assert!(ClientMetadata::parse_loopback("http://localhost?foo=bar").is_err());
        assert!(ClientMetadata::parse_loopback("http://localhost?scope=a&scope=atproto").is_err());
        assert!(ClientMetadata::loopback(&["http://localhost/cb"], "atproto").is_err());
        assert!(ClientMetadata::loopback(&["http://[::1]/cb"], "atproto").is_ok());
        assert!(ClientMetadata::loopback(&["http://127.0.0.1/cb"], "transition:generic").is_err());
    }

    #[test]
    fn loopback_redirect_port_matching() {
        let m = ClientMetadata::loopback(&["http://127.0.0.1/callback"], "atproto").unwrap();
        assert!(m.accepts_redirect("http://127.0.0.1:54321/callback"));
        assert!(m.accepts_redirect("http://127.0.0.1/callback"));
        assert!(!m.accepts_redirect("http://127.0.0.1:54321/other"));
        assert!(!m.accepts_redirect("http://[::1]:5/callback"));
        assert!(!m.accepts_redirect("https://evil.example/callback"));
    }

    #[test]
    fn discoverable_rules() {
        let ok = ClientMetadata::discoverable(
            "https://app.example.com/oauth-client-metadata.json",
            &["https://app.example.com/callback"],
            "atproto transition:generic",
        );
        ok.validate().unwrap();
        for bad_id in [
            "http://app.example.com/m.json",
            "https://app.example.com/",
            "https://app.example.com/m/",
            "https://1.2.3.4/m.json",
            "https://u:p@app.example.com/m.json",
            "https://app.example.com/m.json#x",
        ] {
            let mut m = ok.clone();
            m.client_id = bad_id.to_owned();
            assert!(m.validate().is_err(), "{bad_id}");
        }
        let mut m = ok.clone();
        m.redirect_uris = vec!["http://127.0.0.1/cb".into()];
        assert!(m.validate().is_err(), "http redirect for a web app");
        m.application_type = "native".into();
        m.validate().unwrap();
        m.redirect_uris = vec!["com.example.app:/callback".into()];
        m.validate().unwrap();
        m.redirect_uris = vec!["com.evil.app:/callback".into()];
        assert!(m.validate().is_err());
        let conf = ok.clone().confidential("https://app.example.com/jwks.json");
        conf.validate().unwrap();
        let mut both = conf.clone();
        both.jwks = Some(serde_json::json!({"keys": []}));
        assert!(both.validate().is_err());
        let mut none_alg = ok.clone();
        none_alg.token_endpoint_auth_signing_alg = Some("ES256".into());
        assert!(none_alg.validate().is_err());
        let mut scope = ok.clone();
        scope.scope = "transition:generic".into();
        assert!(scope.validate().is_err());
        let mut grants = ok.clone();
        grants.grant_types = vec!["refresh_token".into()];
        assert!(grants.validate().is_err());
        let mut code = ok.clone();
        code.response_types = vec!["token".into()];
        assert!(code.validate().is_err());
        let mut uri = ok.with_client_uri("https://other.example.com");
        assert!(uri.validate().is_err());
        uri.client_uri = Some("https://app.example.com".into());
        uri.validate().unwrap();
    }

    #[test]
    fn real_documents_validate() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/oauth-vectors/metadata"
        );
        for name in [
            "statusphere-client-metadata.json",
            "smokesignal-client-metadata.json",
            "flaskdemo-client-metadata.json",
        ] {
            let Ok(text) = std::fs::read_to_string(format!("{dir}/{name}")) else {
                continue;
            };
            let doc: Value = serde_json::from_str(&text).unwrap();
            ClientMetadata::from_document(&doc).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let mut doc: Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{dir}/statusphere-client-metadata.json"))
                .unwrap_or_else(|_| "{}".into()),
        )
        .unwrap();
        if doc.get("client_id").is_some() {
            doc["default_max_age"] = Value::from(3);
            assert!(ClientMetadata::from_document(&doc).is_err());
        }
    }

    #[test]
    fn issuers() {
        assert!(check_issuer("https://bsky.social", false).is_ok());
        assert!(check_issuer("https://bsky.social/", false).is_err());
        assert!(check_issuer("https://bsky.social?x", false).is_err());
        assert!(check_issuer("https://u@bsky.social", false).is_err());
        assert!(check_issuer("http://localhost:2583", false).is_err());
        assert!(check_issuer("http://localhost:2583", true).is_ok());
        assert!(check_issuer("https://BSKY.social", false).is_err());
    }

    #[test]
    fn scopes() {
        assert!(is_valid_scope("atproto transition:generic"));
        assert!(!is_valid_scope("atproto  transition:generic"));
        assert!(!is_valid_scope("atproto "));
        assert!(!is_valid_scope("a\"b"));
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/oauth-vectors");
        if let Ok(text) = std::fs::read_to_string(format!("{dir}/permission_scopes_valid.txt")) {
            for line in text
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            {
                assert!(is_valid_scope(line), "{line}");
            }
        }
        assert!(!is_valid_scope("resource:positional?key=québec"));
    }

    #[test]
    fn real_server_metadata() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/oauth-vectors/metadata"
        );
        let Ok(text) =
            std::fs::read_to_string(format!("{dir}/bsky-entryway-authorization-server.json"))
        else {
            return;
        };
        let m: AuthorizationServerMetadata = serde_json::from_str(&text).unwrap();
        m.validate(&m.issuer.clone(), false, "x").unwrap();
        assert!(matches!(
            m.validate("https://other.example", false, "x"),
            Err(OAuthError::IssuerMismatch { .. })
        ));
    }
}
