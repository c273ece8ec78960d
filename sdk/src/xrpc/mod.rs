//! XRPC: the endpoint traits generated code implements, request and response bodies, typed
//! errors, and the [`Client`] that sends calls.
//!
//! Generated code stays declarative: each query or procedure is a marker type implementing
//! [`Endpoint`] (its NSID, parameters, input, output and error types); encoding, validation,
//! authentication, refresh, retries and pagination live once in the runtime, behind
//! [`Client::call`]. Outputs that should not be held in memory whole (blobs, CAR files) are
//! read as they arrive with [`Client::call_streamed`] (and [`Client::get_blob`]).
//!
//! This module is the transport: it knows endpoints only through the [`Endpoint`] and
//! [`Subscription`] traits and never names a generated type. Helpers built on generated
//! endpoints (records, blobs) live above the generated layer, in [`crate::repo`].
//!
//! Subscriptions (event streams) are read over WebSocket by [`Client::subscribe`], which
//! decodes each frame into the subscription's typed message union ([`EventStream`]).
//!
//! The transport is `reqwest` (rustls, no default features) on `tokio`; `tracing` records one
//! span per call (`xrpc`, with `nsid`, `method`, `status`, `attempt`, `duration_ms`; never
//! tokens or bodies). Small solved problems use small, well-kept crates: `percent-encoding`
//! (RFC 3986 query encoding, `%20` rather than form-style `+`), `url` (joining `/xrpc/<nsid>`
//! onto a service URL with a path prefix), `fastrand` (backoff jitter, which needs no
//! cryptographic randomness), `chrono` (the HTTP-date form of `Retry-After`).
//!
//! Every response is treated as hostile (the rules live in [`crate::net`], shared with the
//! non-XRPC fetches): bodies read into memory are bounded
//! ([`DEFAULT_MAX_RESPONSE_SIZE`], 8 MiB, per client and per call; error bodies
//! [`DEFAULT_MAX_ERROR_SIZE`], 64 KiB; streamed bodies optionally capped), no redirect is
//! followed unless [`ClientBuilder::redirects`] opts in to same-origin ones, `http://` is
//! refused for hosts that are not loopback unless [`ClientBuilder::allow_http`], numbers in
//! headers are parsed with checked arithmetic, and decode errors of outputs that hold
//! credentials ([`Endpoint::OUTPUT_HAS_SECRETS`]) keep no body and no value.
//!
//! How a client authenticates is the [`AuthSession`] interface defined here (with its errors
//! and [`Secret`]); the session kinds that implement it live in the `auth` module, which depends
//! on this module and never the other way.

mod body;
pub(crate) mod client;
mod endpoint;
mod error;
mod failure;
mod frame;
mod paginate;
mod query;
pub(crate) mod retry;
mod secret;
mod session;
mod streamed;
mod subscribe;
pub(crate) mod transport;
mod untyped;

pub(crate) use body::describe_json_error;
pub use body::{BodyError, JsonBody, NoBody, RawBody, RequestBody, XrpcBody};
pub use client::{
    BuildError, CallOptions, Client, ClientBuilder, DEFAULT_MAX_ERROR_SIZE,
    DEFAULT_MAX_RESPONSE_SIZE, Labeler,
};
pub use endpoint::{Endpoint, EndpointKind, Subscription};
pub use error::{ErrorBody, GenericError, XrpcErrorKind};
pub use failure::{
    BoxError, DecodeError, Error, RateLimit, RawResponse, RequestPart, TransportError,
    TransportErrorKind,
};
pub use frame::{Frame, FrameError, decode_frame};
pub use paginate::{ItemStream, PageStream, Paginated};
pub use query::{NoParams, QueryParams, QueryValue, QueryWriter};
pub use retry::RetryPolicy;
pub use secret::Secret;
pub use session::{
    AfterResponse, Anonymous, AuthError, AuthHeaders, AuthSession, BoxFuture, RequestInfo,
    ResponseInfo, StoreError, StoreErrorKind,
};
pub use streamed::StreamedResponse;
pub use subscribe::{EventStream, SubscribeError, subscribe_url, subscription_url};
