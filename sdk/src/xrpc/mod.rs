//! XRPC: the endpoint traits generated code implements, request and response bodies, typed
//! errors, and the [`Client`] that sends calls.
//!
//! Generated code stays declarative: each query or procedure is a marker type implementing
//! [`Endpoint`] (its NSID, parameters, input, output and error types); encoding, validation,
//! authentication, refresh, retries and pagination live once in the runtime, behind
//! [`Client::call`]. Outputs that should not be held in memory whole (blobs, CAR files) are
//! read as they arrive with [`Client::call_streamed`] (and [`Client::get_blob`]).
//!
//! The transport is `reqwest` (rustls, no default features) on `tokio`; `tracing` records one
//! span per call (`xrpc`, with `nsid`, `method`, `status`, `attempt`, `duration_ms`; never
//! tokens or bodies). Small solved problems use small, well-kept crates: `percent-encoding`
//! (RFC 3986 query encoding, `%20` rather than form-style `+`), `url` (joining `/xrpc/<nsid>`
//! onto a service URL with a path prefix), `fastrand` (backoff jitter, which needs no
//! cryptographic randomness), `chrono` (the HTTP-date form of `Retry-After`).
//!
//! How a client authenticates is the [`AuthSession`] interface defined here (with its errors
//! and [`Secret`]); the session kinds that implement it live in the `auth` module, which depends
//! on this module and never the other way.

mod blobs;
mod body;
pub(crate) mod client;
mod endpoint;
mod error;
mod failure;
mod frame;
mod paginate;
mod query;
mod records;
mod retry;
mod secret;
mod session;
mod streamed;
mod transport;
mod untyped;

pub use body::{BodyError, JsonBody, NoBody, RawBody, RequestBody, XrpcBody};
pub use client::{BuildError, CallOptions, Client, ClientBuilder, Labeler};
pub use endpoint::{Endpoint, EndpointKind, Subscription};
pub use error::{ErrorBody, GenericError, XrpcErrorKind};
pub use failure::{
    BoxError, DecodeError, Error, RateLimit, RawResponse, RequestPart, TransportError,
    TransportErrorKind,
};
pub use frame::{Frame, FrameError, decode_frame};
pub use paginate::{ItemStream, PageStream, Paginated};
pub use query::{NoParams, QueryParams, QueryValue, QueryWriter};
pub use records::{GetRecordOf, ListRecords, ListRecordsOf, RecordEntry, RecordPage, Write};
pub use retry::RetryPolicy;
pub use secret::Secret;
pub use session::{
    AfterResponse, Anonymous, AuthError, AuthHeaders, AuthSession, BoxFuture, RequestInfo,
    ResponseInfo, StoreError, StoreErrorKind,
};
pub use streamed::StreamedResponse;
