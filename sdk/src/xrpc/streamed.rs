//! Responses whose body is read as it arrives: blobs (`com.atproto.sync.getBlob`), repository
//! CAR files, account exports — any method whose output is not JSON and may be large.
//!
//! [`Client::call_streamed`] sends the request exactly like [`Client::call`] (validation, auth,
//! refresh-once-on-rejection, retries, rate-limit waits, typed errors for non-2xx answers) and
//! returns as soon as a 2xx status and its headers have arrived. The body is then a
//! [`StreamedResponse`]: a [`Stream`] of [`Bytes`] chunks, never collected unless asked.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt, TryStreamExt};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap};

use super::client::{CallOptions, Client, outgoing};
use super::endpoint::Endpoint;
use super::error::XrpcErrorKind;
use super::failure::{Error, TransportError};
use super::transport::{StreamedBody, classify_read};
use crate::net;

/// The most [`StreamedResponse::bytes`] reserves up front from a `Content-Length` header (the
/// buffer still grows past it as data arrives): a lying header cannot make it allocate more.
const MAX_PREALLOCATE: u64 = 16 * 1024 * 1024;

/// A successful response whose body is read as it arrives.
///
/// It is a [`Stream`] of [`Bytes`] chunks in order; after an error (the connection dropped, the
/// call's timeout elapsed, more arrived than the cap of [`CallOptions::max_streamed_size`] or
/// [`ClientBuilder::max_streamed_size`](super::ClientBuilder::max_streamed_size)) the stream
/// ends. Nothing is retried once the body has started: a
/// failed download must be requested again. The client's timeout (30 s by default) covers the
/// whole exchange, body included, so give a large download a longer one
/// ([`Client::with_timeout`] or [`CallOptions::timeout`]).
///
/// ```no_run
/// # async fn example(client: atlex::xrpc::Client, did: atlex::types::Did, cid: atlex::types::Cid)
/// # -> Result<(), Box<dyn std::error::Error>> {
/// use futures::TryStreamExt;
/// let (mut blob, _client) = client.get_blob(did, cid).await?;
/// println!("{:?}, {:?} bytes", blob.content_type(), blob.content_length());
/// while let Some(chunk) = blob.try_next().await? {
///     // write `chunk` somewhere
/// #   let _ = chunk;
/// }
/// # Ok(()) }
/// ```
pub struct StreamedResponse {
    nsid: &'static str,
    status: u16,
    headers: HeaderMap,
    chunks: BoxStream<'static, Result<Bytes, TransportError>>,
}

impl StreamedResponse {
    fn new(
        nsid: &'static str,
        status: u16,
        headers: HeaderMap,
        body: StreamedBody,
        limit: Option<u64>,
    ) -> Self {
        let chunks = match body {
            StreamedBody::Unread(response) => net::limit_stream(response, limit)
                .map_err(move |error| classify_read(nsid, error))
                .boxed(),
            StreamedBody::Read(bytes) if bytes.is_empty() => stream::empty().boxed(),
            StreamedBody::Read(bytes) => stream::once(async move { Ok(bytes) }).boxed(),
        };
        StreamedResponse {
            nsid,
            status,
            headers,
            chunks,
        }
    }

    /// The method that was called.
    pub fn nsid(&self) -> &'static str {
        self.nsid
    }

    /// The HTTP status (2xx).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The `Content-Type` header: for a blob, its MIME type.
    pub fn content_type(&self) -> Option<&str> {
        self.header(CONTENT_TYPE.as_str())
    }

    /// The `Content-Length` header, when the server sent one (not with chunked encoding).
    pub fn content_length(&self) -> Option<u64> {
        self.header(CONTENT_LENGTH.as_str())?.trim().parse().ok()
    }

    /// A response header (its first value, when it is text).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// Reads the rest of the body into memory.
    pub async fn bytes(mut self) -> Result<Bytes, TransportError> {
        let reserve = self.content_length().unwrap_or(0).min(MAX_PREALLOCATE);
        let mut buffer = BytesMut::with_capacity(usize::try_from(reserve).unwrap_or(0));
        while let Some(chunk) = self.chunks.try_next().await? {
            buffer.extend_from_slice(&chunk);
        }
        Ok(buffer.freeze())
    }

    /// The body as a [`futures::io::AsyncRead`] (and `AsyncBufRead`); a transport failure
    /// becomes an [`std::io::Error`] whose source is the [`TransportError`]. For a
    /// `tokio::io::AsyncRead`, wrap it with `tokio_util::compat`.
    pub fn into_async_read(self) -> impl futures::io::AsyncBufRead + Send + Unpin {
        self.chunks.map_err(std::io::Error::other).into_async_read()
    }
}

impl Stream for StreamedResponse {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.chunks.as_mut().poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

impl fmt::Debug for StreamedResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamedResponse")
            .field("nsid", &self.nsid)
            .field("status", &self.status)
            .field("content_type", &self.content_type())
            .field("content_length", &self.content_length())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Calls the XRPC method `E` and returns its 2xx response with the body unread, as a
    /// [`StreamedResponse`] (for outputs such as `*/*` blobs or `application/vnd.ipld.car`
    /// repositories, which should not be held in memory whole).
    ///
    /// Everything up to the response headers is as in [`Client::call`]: `params` and `input`
    /// are validated first; auth, a refresh on a rejected token, retries of queries and
    /// rate-limit waits apply; an error status is read whole and becomes
    /// [`Error::Xrpc`] (with `E`'s typed error), [`Error::RateLimited`] or [`Error::Status`].
    /// `E::Output` is not used: the body is handed over as bytes.
    pub async fn call_streamed<E: Endpoint>(
        &self,
        params: E::Params,
        input: E::Input,
    ) -> Result<(StreamedResponse, Client), Error<E::Error>> {
        self.call_streamed_with::<E>(params, input, &CallOptions::default())
            .await
    }

    /// [`Client::call_streamed`] with per-call options (proxy, labelers, timeout).
    pub async fn call_streamed_with<E: Endpoint>(
        &self,
        params: E::Params,
        input: E::Input,
        options: &CallOptions,
    ) -> Result<(StreamedResponse, Client), Error<E::Error>> {
        let request = outgoing::<E>(&params, &input)?;
        let response = self
            .execute_streamed(request, options)
            .await
            .map_err(|error| error.map_xrpc(E::Error::from_body))?;
        let streamed = StreamedResponse::new(
            E::NSID,
            response.status,
            response.headers,
            response.body,
            response.limit,
        );
        Ok((streamed, self.clone()))
    }
}
