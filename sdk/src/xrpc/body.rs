//! Request and response bodies.

use std::fmt;
use std::path::{Path, PathBuf};

use atlex_types::{Validate, Validator};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a body could not be encoded or decoded.
///
/// A failed [`XrpcBody::decode`] hands the bytes back with [`BodyError::with_body`], so the
/// transport can keep them in its [`DecodeError`](super::DecodeError) without copying every
/// response up front.
pub struct BodyError {
    message: String,
    /// The message without any value from the body (position and category only).
    summary: Option<String>,
    body: Option<Vec<u8>>,
}

impl BodyError {
    /// A body error with a message.
    pub fn new(message: impl Into<String>) -> BodyError {
        BodyError {
            message: message.into(),
            summary: None,
            body: None,
        }
    }

    /// A JSON decode failure, described by `what` (e.g. `cannot decode JSON body`) and the
    /// parser's error. [`BodyError::summary`] then gives its category and position only.
    pub fn json(what: &str, error: &serde_json::Error) -> BodyError {
        BodyError {
            message: format!("{what}: {error}"),
            summary: Some(format!("{what}: {}", describe_json_error(error))),
            body: None,
        }
    }

    /// What went wrong without quoting anything from the body: the category and position of a
    /// JSON error (`data error at line 1, column 57`), or only that decoding failed. Used for
    /// outputs that hold credentials, whose values must not reach error messages.
    pub fn summary(&self) -> &str {
        self.summary
            .as_deref()
            .unwrap_or("the body could not be decoded (details withheld: it may hold credentials)")
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

/// A serde_json error as its category and position only: the parser's own message may quote
/// the value it choked on (`invalid type: string "eyJhbGciOi…"`).
pub(crate) fn describe_json_error(error: &serde_json::Error) -> String {
    let category = match error.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "data error (a value of the wrong type or shape)",
        serde_json::error::Category::Eof => "unexpected end of input",
    };
    format!(
        "{category} at line {}, column {}",
        error.line(),
        error.column()
    )
}

/// A type that can be an XRPC request or response body.
pub trait XrpcBody: Sized {
    /// The MIME type the lexicon declares (`None` when there is no body).
    fn encoding() -> Option<&'static str>;
    /// Encodes the body; `None` when there is no body.
    fn encode(&self) -> Result<Option<(Vec<u8>, String)>, BodyError>;
    /// Decodes a response body.
    fn decode(bytes: Vec<u8>, content_type: Option<&str>) -> Result<Self, BodyError>;

    /// The body as the client sends it. The default wraps [`XrpcBody::encode`]; [`RawBody`]
    /// overrides it to stream files instead of reading them into memory.
    fn request_body(&self) -> Result<Option<RequestBody>, BodyError> {
        Ok(self
            .encode()?
            .map(|(bytes, content_type)| RequestBody::from_bytes(bytes, content_type)))
    }
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
            Err(e) => Err(BodyError::json("cannot decode JSON body", &e).with_body(bytes)),
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

/// A body without a lexicon schema (`*/*` uploads, CAR files, `jsonl`, video): bytes, or a file
/// streamed while it is sent, and their MIME type.
///
/// ```
/// use atlex::xrpc::RawBody;
/// let image = RawBody::new(vec![0x89, b'P', b'N', b'G'], "image/png");
/// assert_eq!(image.bytes(), Some(&[0x89, b'P', b'N', b'G'][..]));
/// let video = RawBody::from_file("clip.mp4", "video/mp4"); // read only when sent
/// assert_eq!(video.bytes(), None);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RawBody {
    content_type: String,
    data: RawData,
}

#[derive(Clone, PartialEq, Eq)]
enum RawData {
    Bytes(Bytes),
    File(PathBuf),
}

impl Default for RawBody {
    /// No bytes, `application/octet-stream`.
    fn default() -> Self {
        RawBody::new(Bytes::new(), "application/octet-stream")
    }
}

impl RawBody {
    /// A body of `bytes` (a `Vec<u8>`, a `&'static [u8]` or a [`Bytes`]) with the given MIME
    /// type.
    pub fn new(bytes: impl Into<Bytes>, content_type: impl Into<String>) -> RawBody {
        RawBody {
            content_type: content_type.into(),
            data: RawData::Bytes(bytes.into()),
        }
    }

    /// A body read from the file at `path` as it is sent (never held in memory whole), with the
    /// given MIME type. The file is opened again if the request has to be sent again (after a
    /// session refresh); a file that cannot be read fails the call with
    /// [`Error::Encode`](super::Error::Encode) before anything is sent.
    pub fn from_file(path: impl Into<PathBuf>, content_type: impl Into<String>) -> RawBody {
        RawBody {
            content_type: content_type.into(),
            data: RawData::File(path.into()),
        }
    }

    /// The MIME type sent or received (`Content-Type`).
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The bytes; `None` for a body made with [`RawBody::from_file`].
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.data {
            RawData::Bytes(bytes) => Some(bytes),
            RawData::File(_) => None,
        }
    }

    /// Takes the bytes out (without copying); `None` for a body made with
    /// [`RawBody::from_file`].
    pub fn into_bytes(self) -> Option<Bytes> {
        match self.data {
            RawData::Bytes(bytes) => Some(bytes),
            RawData::File(_) => None,
        }
    }

    /// The file the body is read from, for a body made with [`RawBody::from_file`].
    pub fn path(&self) -> Option<&Path> {
        match &self.data {
            RawData::Bytes(_) => None,
            RawData::File(path) => Some(path),
        }
    }
}

impl fmt::Debug for RawBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("RawBody");
        match &self.data {
            RawData::Bytes(bytes) => debug.field("len", &bytes.len()),
            RawData::File(path) => debug.field("file", path),
        };
        debug.field("content_type", &self.content_type).finish()
    }
}

impl XrpcBody for RawBody {
    fn encoding() -> Option<&'static str> {
        Some("*/*")
    }

    /// The bytes and MIME type. A file-backed body is read here, blocking; the client never
    /// calls this (it streams through [`XrpcBody::request_body`]).
    fn encode(&self) -> Result<Option<(Vec<u8>, String)>, BodyError> {
        let bytes = match &self.data {
            RawData::Bytes(bytes) => bytes.to_vec(),
            RawData::File(path) => std::fs::read(path).map_err(|error| {
                BodyError::new(format!("cannot read {}: {error}", path.display()))
            })?,
        };
        Ok(Some((bytes, self.content_type.clone())))
    }

    fn request_body(&self) -> Result<Option<RequestBody>, BodyError> {
        Ok(Some(match &self.data {
            RawData::Bytes(bytes) => RequestBody::from_bytes(bytes.clone(), &*self.content_type),
            RawData::File(path) => RequestBody::from_file(path.clone(), &*self.content_type),
        }))
    }

    fn decode(bytes: Vec<u8>, content_type: Option<&str>) -> Result<Self, BodyError> {
        Ok(RawBody::new(
            bytes,
            content_type.unwrap_or("application/octet-stream"),
        ))
    }
}

impl Validate for RawBody {
    fn validate_into(&self, _validator: &mut Validator) {}
}

/// A JSON body without a lexicon schema: any data-model object.
impl JsonBody for atlex_types::Data {}

/// A request body ready to send: its MIME type and where its bytes come from (memory, or a
/// file streamed while it is sent).
#[derive(Clone, PartialEq, Eq)]
pub struct RequestBody {
    content_type: String,
    source: RequestSource,
}

#[derive(Clone, PartialEq, Eq)]
pub(crate) enum RequestSource {
    Bytes(Bytes),
    File(PathBuf),
}

impl RequestBody {
    /// A body of `bytes`.
    pub fn from_bytes(bytes: impl Into<Bytes>, content_type: impl Into<String>) -> RequestBody {
        RequestBody {
            content_type: content_type.into(),
            source: RequestSource::Bytes(bytes.into()),
        }
    }

    /// A body streamed from the file at `path`.
    pub fn from_file(path: impl Into<PathBuf>, content_type: impl Into<String>) -> RequestBody {
        RequestBody {
            content_type: content_type.into(),
            source: RequestSource::File(path.into()),
        }
    }

    /// The MIME type (`Content-Type`).
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    pub(crate) fn source(&self) -> &RequestSource {
        &self.source
    }
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("RequestBody");
        match &self.source {
            RequestSource::Bytes(bytes) => debug.field("len", &bytes.len()),
            RequestSource::File(path) => debug.field("file", path),
        };
        debug.field("content_type", &self.content_type).finish()
    }
}
