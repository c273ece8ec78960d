//! The traits implemented by generated endpoint marker types.

use atlex_types::Validate;
use atlex_types::union::LexUnion;

use super::body::XrpcBody;
use super::error::XrpcErrorKind;
use super::query::QueryParams;

/// Whether an endpoint is called with GET (query) or POST (procedure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndpointKind {
    /// A lexicon `query`: HTTP GET, parameters in the query string.
    Query,
    /// A lexicon `procedure`: HTTP POST, with an optional body.
    Procedure,
}

/// One XRPC query or procedure.
///
/// Implemented by the marker type generated for every lexicon `query` and `procedure`, e.g.
/// `atlex::app::bsky::feed::get_timeline::GetTimeline`.
pub trait Endpoint {
    /// The method's NSID, e.g. `app.bsky.feed.getTimeline`.
    const NSID: &'static str;
    /// GET or POST.
    const KIND: EndpointKind;
    /// The query-string parameters.
    type Params: QueryParams + Validate;
    /// The request body ([`super::NoBody`] when the method takes none).
    type Input: XrpcBody + Validate;
    /// The response body ([`super::NoBody`] when the method returns none).
    type Output: XrpcBody;
    /// The method's typed errors (lexicon `errors`), open for names this version does not know.
    type Error: XrpcErrorKind;
    /// The MIME type of the request body the lexicon declares (`None`: no body). For bodies
    /// without a schema (`*/*`, `application/vnd.ipld.car`, `video/mp4`, …) the input is a
    /// [`super::RawBody`] and this says what it should carry.
    const INPUT_ENCODING: Option<&'static str> = None;
    /// The MIME type of the response body the lexicon declares (`None`: no body).
    const OUTPUT_ENCODING: Option<&'static str> = None;
    /// Whether the output holds credentials (a token, JWT, password or code, directly or in a
    /// nested object), as the generator finds from the lexicon's field names. When it does, an
    /// output that cannot be decoded fails with a [`super::DecodeError`] that keeps neither the
    /// body nor the parser's message (which may quote a value), only the error's category and
    /// position.
    const OUTPUT_HAS_SECRETS: bool = false;
}

/// One XRPC subscription (an event stream over WebSocket).
///
/// Implemented by the marker type generated for every lexicon `subscription`. Frames carry a
/// header `{op, t}` and a DAG-CBOR payload; `t` (`#commit`) names the member of
/// [`Subscription::Message`], whose payload carries no `$type`.
pub trait Subscription {
    /// The subscription's NSID, e.g. `com.atproto.sync.subscribeRepos`.
    const NSID: &'static str;
    /// The query-string parameters.
    type Params: QueryParams + Validate;
    /// The message union.
    type Message: LexUnion;
    /// The typed errors an `op: -1` frame can carry.
    type Error: XrpcErrorKind;
}
