//! Request and response bodies.

use std::fmt;

use atlex_types::{Validate, Validator};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a body could not be encoded or decoded.
///
/// A failed [`XrpcBody::decode`] hands the bytes back with [`BodyError::with_body`], so the
/// transport can keep them in its [`DecodeError`](super::DecodeError) without copying every
/// response up front.
pub struct BodyError {
    message: String,
    body: Option<Vec<u8>>,
}

impl BodyError {
    /// A body error with a message.
    pub fn new(message: impl Into<String>) -> BodyError {
        BodyError {
            message: message.into(),
            body: None,
        }
    }

    /// Hands back the bytes that could not be decoded.
    #[must_use]
    pub fn with_body(mut self, body: Vec<u8>) -> BodyError {
        self.body = Some(body);
        self
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Takes the bytes handed back by [`BodyError::with_body`].
    pub fn take_body(&mut self) -> Option<Vec<u8>> {
        self.body.take()
    }
}

impl fmt::Debug for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyError")
            .field("message", &self.message)
            .field("body_len", &self.body.as_ref().map(Vec::len))
            .finish()
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BodyError {}

/// A type that can be an XRPC request or response body.
pub trait XrpcBody: Sized {
    /// The MIME type the lexicon declares (`None` when there is no body).
    fn encoding() -> Option<&'static str>;
    /// Encodes the body; `None` when there is no body.
    fn encode(&self) -> Result<Option<(Vec<u8>, String)>, BodyError>;
    /// Decodes a response body.
    fn decode(bytes: Vec<u8>, content_type: Option<&str>) -> Result<Self, BodyError>;
}

/// Marks a generated type as a JSON body (`application/json`).
pub trait JsonBody: Serialize + DeserializeOwned {}

impl<T: JsonBody> XrpcBody for T {
    fn encoding() -> Option<&'static str> {
        Some("application/json")
    }

    fn encode(&self) -> Result<Option<(Vec<u8>, String)>, BodyError> {
        let bytes = serde_json::to_vec(self)
            .map_err(|e| BodyError::new(format!("cannot encode JSON body: {e}")))?;
        Ok(Some((bytes, "application/json".to_owned())))
    }

    fn decode(bytes: Vec<u8>, _content_type: Option<&str>) -> Result<Self, BodyError> {
        match serde_json::from_slice(&bytes) {
            Ok(value) => Ok(value),
            Err(e) => Err(BodyError::new(format!("cannot decode JSON body: {e}")).with_body(bytes)),
        }
    }
}

/// No body: for methods without `input` or `output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NoBody;

impl XrpcBody for NoBody {
    fn encoding() -> Option<&'static str> {
        None
    }

    fn encode(&self) -> Result<Option<(Vec<u8>, String)>, BodyError> {
        Ok(None)
    }

    fn decode(_bytes: Vec<u8>, _content_type: Option<&str>) -> Result<Self, BodyError> {
        Ok(NoBody)
    }
}

impl Validate for NoBody {
    fn validate_into(&self, _validator: &mut Validator) {}
}

/// A body without a lexicon schema (`*/*` uploads, CAR files, `jsonl`, video): bytes and their
/// MIME type.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct RawBody {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The MIME type sent or received (`Content-Type`).
    pub content_type: String,
}

impl RawBody {
    /// A body of `bytes` with the given MIME type.
    pub fn new(bytes: impl Into<Vec<u8>>, content_type: impl Into<String>) -> RawBody {
        RawBody {
            bytes: bytes.into(),
            content_type: content_type.into(),
        }
    }
}

impl fmt::Debug for RawBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawBody")
            .field("len", &self.bytes.len())
            .field("content_type", &self.content_type)
            .finish()
    }
}

impl XrpcBody for RawBody {
    fn encoding() -> Option<&'static str> {
        Some("*/*")
    }

    fn encode(&self) -> Result<Option<(Vec<u8>, String)>, BodyError> {
        Ok(Some((self.bytes.clone(), self.content_type.clone())))
    }

    fn decode(bytes: Vec<u8>, content_type: Option<&str>) -> Result<Self, BodyError> {
        Ok(RawBody {
            bytes,
            content_type: content_type
                .unwrap_or("application/octet-stream")
                .to_owned(),
        })
    }
}

impl Validate for RawBody {
    fn validate_into(&self, _validator: &mut Validator) {}
}
