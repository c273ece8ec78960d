//! The three `com.atproto.server` methods a password session needs, hand-written.
//!
//! Private and isolated on purpose: once the generated `com.atproto.server` bindings land,
//! these markers are replaced by the generated ones and this file is deleted.

use atlex_types::{Did, Validate, Validator};
use serde::{Deserialize, Serialize};

use crate::auth::Secret;
use crate::xrpc::{Endpoint, EndpointKind, GenericError, JsonBody, NoBody, NoParams};

/// `com.atproto.server.createSession`.
pub(super) struct CreateSession;

impl Endpoint for CreateSession {
    const NSID: &'static str = "com.atproto.server.createSession";
    const KIND: EndpointKind = EndpointKind::Procedure;
    type Params = NoParams;
    type Input = CreateSessionInput;
    type Output = SessionOutput;
    type Error = GenericError;
}

/// `com.atproto.server.refreshSession` (authenticated with the refresh token).
pub(super) struct RefreshSession;

impl Endpoint for RefreshSession {
    const NSID: &'static str = "com.atproto.server.refreshSession";
    const KIND: EndpointKind = EndpointKind::Procedure;
    type Params = NoParams;
    type Input = NoBody;
    type Output = SessionOutput;
    type Error = GenericError;
}

/// `com.atproto.server.deleteSession` (authenticated with the refresh token).
pub(super) struct DeleteSession;

impl Endpoint for DeleteSession {
    const NSID: &'static str = "com.atproto.server.deleteSession";
    const KIND: EndpointKind = EndpointKind::Procedure;
    type Params = NoParams;
    type Input = NoBody;
    type Output = NoBody;
    type Error = GenericError;
}

/// The input of `createSession`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateSessionInput {
    pub(super) identifier: String,
    pub(super) password: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) auth_factor_token: Option<Secret>,
}

impl JsonBody for CreateSessionInput {}

impl Validate for CreateSessionInput {
    fn validate_into(&self, _validator: &mut Validator) {}
}

/// The output of `createSession` and `refreshSession` (the fields a session keeps).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SessionOutput {
    pub(super) access_jwt: Secret,
    pub(super) refresh_jwt: Secret,
    pub(super) handle: String,
    pub(super) did: Did,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) did_doc: Option<serde_json::Value>,
}

impl JsonBody for SessionOutput {}
