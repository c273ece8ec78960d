//! XRPC: the endpoint traits generated code implements, request and response bodies, and
//! typed errors.
//!
//! Generated code stays declarative: each query or procedure is a marker type implementing
//! [`Endpoint`] (its NSID, parameters, input, output and error types); encoding, validation,
//! authentication, refresh and retries live once in the runtime.

mod body;
mod endpoint;
mod error;
mod query;

pub use body::{JsonBody, NoBody, RawBody, XrpcBody};
pub use endpoint::{Endpoint, EndpointKind, Subscription};
pub use error::{ErrorBody, GenericError, XrpcErrorKind};
pub use query::{NoParams, QueryParams, QueryValue, QueryWriter};
