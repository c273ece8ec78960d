//! The mock world the wiremock OAuth tests share (`oauth_hostile`, `oauth_rules`,
//! `oauth_concurrency`): one DID with its document on a mock PLC, handle resolution, the
//! protected-resource and authorization-server metadata, PAR, token and revoke endpoints on one
//! `MockServer`, and helpers to read what the client sent.

#![allow(dead_code)]

use atlex::identity::{HandleMethod, IdentityResolver};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use url::Url;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// The account every mock flow signs in.
pub const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
/// Another account (a token response for the wrong `sub`, a session filed under another DID).
pub const OTHER_DID: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
/// `DID`'s handle.
pub const HANDLE: &str = "alice.test";
/// The scope the loopback client asks for.
pub const SCOPE: &str = "atproto transition:generic";
/// The loopback client's redirect URI.
pub const REDIRECT: &str = "http://127.0.0.1/callback";
/// The protected-resource metadata path.
pub const PRM: &str = "/.well-known/oauth-protected-resource";
/// The authorization-server metadata path.
pub const ASM: &str = "/.well-known/oauth-authorization-server";

/// A DID document naming `HANDLE` and the PDS at `pds`.
pub fn did_doc(did: &str, pds: &str) -> Value {
    json!({
        "id": did,
        "alsoKnownAs": [format!("at://{HANDLE}")],
        "verificationMethod": [],
        "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": pds}]
    })
}

/// Authorization-server metadata of `issuer`, which is also its own protected resource.
pub fn as_metadata(issuer: &str) -> Value {
    as_metadata_for(issuer, issuer)
}

/// Authorization-server metadata of `issuer` for the protected resource `resource`.
pub fn as_metadata_for(issuer: &str, resource: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "pushed_authorization_request_endpoint": format!("{issuer}/oauth/par"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "require_pushed_authorization_requests": true,
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
        "response_types_supported": ["code"],
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
        "dpop_signing_alg_values_supported": ["ES256"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["atproto", "transition:generic"],
        "protected_resources": [resource],
    })
}

/// A JSON response with its content type.
pub fn json_response(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/json")
        .set_body_json(body)
}

/// A token response: DPoP tokens for `sub`, an hour long.
pub fn tokens(access: &str, refresh: &str, sub: &str) -> Value {
    json!({"access_token": access, "token_type": "DPoP", "refresh_token": refresh,
           "scope": SCOPE, "expires_in": 3600, "sub": sub})
}

/// Mounts PLC (`DID`'s document), handle resolution, PRM and AS metadata, PAR and revoke.
pub async fn world(server: &MockServer) {
    let uri = server.uri();
    Mock::given(path(format!("/{DID}")))
        .respond_with(json_response(200, did_doc(DID, &uri)))
        .mount(server)
        .await;
    Mock::given(path("/xrpc/com.atproto.identity.resolveHandle"))
        .respond_with(json_response(200, json!({ "did": DID })))
        .mount(server)
        .await;
    Mock::given(path(PRM))
        .respond_with(json_response(
            200,
            json!({"resource": uri, "authorization_servers": [uri]}),
        ))
        .mount(server)
        .await;
    Mock::given(path(ASM))
        .respond_with(json_response(200, as_metadata(&uri)))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/par"))
        .respond_with(json_response(
            201,
            json!({"request_uri": "urn:ietf:params:oauth:request_uri:req-1", "expires_in": 299}),
        ))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/revoke"))
        .respond_with(json_response(200, json!({})))
        .mount(server)
        .await;
}

/// Answers token requests with `body`: the default answer (priority 5), or, with `once`, the
/// next one only (priority 1: before the default and after earlier `once` answers).
pub async fn mount_token(server: &MockServer, body: Value, once: bool) {
    let mock = Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(json_response(200, body));
    let mock = if once {
        mock.up_to_n_times(1).with_priority(1)
    } else {
        mock
    };
    mock.mount(server).await;
}

/// An identity resolver whose PLC and handle resolution are the mock server.
pub fn resolver(server: &MockServer) -> IdentityResolver {
    IdentityResolver::builder()
        .plc_url(server.uri())
        .handle_methods([HandleMethod::Xrpc(Url::parse(&server.uri()).unwrap())])
        .allow_http(true)
        .build()
        .unwrap()
}

/// The form fields of a request body.
pub fn form(request: &Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&request.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// One form field of a request body.
pub fn field(request: &Request, name: &str) -> Option<String> {
    form(request)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Part `index` of a compact JWT (0 header, 1 claims), decoded.
pub fn jwt_part(jwt: &str, index: usize) -> Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(index).unwrap())
            .unwrap(),
    )
    .unwrap()
}

/// The requests the mock server received on `route`.
pub async fn requests_to(server: &MockServer, route: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == route)
        .collect()
}
