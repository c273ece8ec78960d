//! XRPC subscriptions over WebSocket: [`Client::subscribe`] connects to
//! `wss://<service>/xrpc/<nsid>?<params>` and yields the subscription's typed messages.
//!
//! Each binary WebSocket message is one frame, decoded by [`decode_frame`]: a message becomes
//! a member of the subscription's message union (a type this version does not know becomes
//! its `Unknown` member, kept with its data), an error frame (`op: -1`) becomes
//! [`SubscribeError::Server`] with the subscription's typed error, after which the stream ends.
//! A frame that cannot be decoded is a [`SubscribeError::Frame`] item and the stream goes on;
//! a connection failure ([`SubscribeError::Ws`]) ends it. No credentials are sent: the
//! subscriptions of the official lexicons are public.
//!
//! This is one connection; reconnecting, resuming from a cursor, bounded buffering and
//! sequence checks are in [`crate::stream`].

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use atlex_types::{Validate, ValidationErrors};
use futures::Stream;
use futures::stream::BoxStream;
use url::Url;

use super::Client;
use super::endpoint::Subscription;
use super::frame::{Frame, FrameError, decode_frame};
use super::query::{QueryParams, QueryWriter};
use super::transport::{encode_query, xrpc_url};
use crate::net::ws::{WsConnection, WsError, WsMessage, WsOptions};

/// Why a subscription failed or a frame was refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum SubscribeError<E> {
    /// The parameters broke the lexicon's constraints; nothing was sent.
    Validation(ValidationErrors),
    /// The subscription URL could not be built from the service URL.
    InvalidRequest(String),
    /// The connection failed, timed out, was closed or sent an oversized message; the stream
    /// ends.
    Ws(WsError),
    /// A binary message that is not a valid frame (truncated, bad CBOR, a payload that does
    /// not fit its type); the stream goes on.
    Frame(FrameError),
    /// A text message, which event streams never send; the stream goes on.
    Text {
        /// Its length in bytes.
        len: usize,
    },
    /// An error frame (`op: -1`) with the subscription's typed error; the stream ends.
    Server(E),
}

impl<E: fmt::Display> fmt::Display for SubscribeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscribeError::Validation(errors) => write!(f, "invalid parameters: {errors}"),
            SubscribeError::InvalidRequest(reason) => f.write_str(reason),
            SubscribeError::Ws(error) => error.fmt(f),
            SubscribeError::Frame(error) => error.fmt(f),
            SubscribeError::Text { len } => {
                write!(
                    f,
                    "unexpected text message of {len} bytes on an event stream"
                )
            }
            SubscribeError::Server(error) => write!(f, "the server sent an error frame: {error}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for SubscribeError<E> {}

impl<E> SubscribeError<E> {
    /// Whether the stream ends after this error (a connection failure or an error frame).
    pub fn is_fatal(&self) -> bool {
        !matches!(self, SubscribeError::Frame(_) | SubscribeError::Text { .. })
    }
}

/// The typed messages of one subscription connection (see [`Client::subscribe`]).
pub struct EventStream<S: Subscription> {
    inner: BoxStream<'static, Result<S::Message, SubscribeError<S::Error>>>,
    url: String,
    _subscription: PhantomData<fn() -> S>,
}

impl<S: Subscription> fmt::Debug for EventStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("nsid", &S::NSID)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl<S: Subscription> Stream for EventStream<S> {
    type Item = Result<S::Message, SubscribeError<S::Error>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// The URL of subscription `S` at `service` with `params` (`https` becomes `wss`).
pub fn subscription_url<S: Subscription>(
    service: &Url,
    params: &S::Params,
) -> Result<Url, SubscribeError<S::Error>> {
    params.validate().map_err(SubscribeError::Validation)?;
    let mut query = QueryWriter::new();
    params.write_query(&mut query);
    let query = encode_query(query.pairs().iter().map(|(k, v)| (*k, v.as_str())));
    let url = xrpc_url(service, S::NSID, &query)
        .map_err(|e| SubscribeError::InvalidRequest(e.to_string()))?;
    crate::net::ws::websocket_url(&url).map_err(SubscribeError::Ws)
}

impl Client {
    /// Subscribes to `S` at this client's service with the default [`WsOptions`] (and this
    /// client's [`allow_http`](Client::allows_http)): the generated
    /// `client.sync().subscribe_repos(params)` calls this.
    pub async fn subscribe<S>(
        &self,
        params: S::Params,
    ) -> Result<EventStream<S>, SubscribeError<S::Error>>
    where
        S: Subscription + 'static,
        S::Message: Send + 'static,
        S::Error: Send + 'static,
    {
        let options = WsOptions {
            allow_http: self.allows_http(),
            ..WsOptions::default()
        };
        self.subscribe_with::<S>(params, options).await
    }

    /// Subscribes to `S` with explicit limits and timeouts.
    pub async fn subscribe_with<S>(
        &self,
        params: S::Params,
        options: WsOptions,
    ) -> Result<EventStream<S>, SubscribeError<S::Error>>
    where
        S: Subscription + 'static,
        S::Message: Send + 'static,
        S::Error: Send + 'static,
    {
        let url = subscription_url::<S>(&self.service_url(), &params)?;
        subscribe_url::<S>(&url, options).await
    }
}

/// Subscribes to `S` at a full `wss://…/xrpc/<nsid>?…` URL (see [`subscription_url`]).
pub async fn subscribe_url<S>(
    url: &Url,
    options: WsOptions,
) -> Result<EventStream<S>, SubscribeError<S::Error>>
where
    S: Subscription + 'static,
    S::Message: Send + 'static,
    S::Error: Send + 'static,
{
    let connection = WsConnection::connect(url, options)
        .await
        .map_err(SubscribeError::Ws)?;
    tracing::debug!(nsid = S::NSID, url = %crate::net::redact_url(url), "subscribed");
    Ok(EventStream {
        url: crate::net::redact_url(url),
        inner: Box::pin(frames::<S>(connection)),
        _subscription: PhantomData,
    })
}

fn frames<S>(
    connection: WsConnection,
) -> impl Stream<Item = Result<S::Message, SubscribeError<S::Error>>> + Send + 'static
where
    S: Subscription + 'static,
    S::Message: Send + 'static,
    S::Error: Send + 'static,
{
    futures::stream::unfold(Some(connection), |state| async move {
        let mut connection = state?;
        let item = match connection.next_message().await? {
            Err(error) => return Some((Err(SubscribeError::Ws(error)), None)),
            Ok(WsMessage::Text(text)) => Err(SubscribeError::Text { len: text.len() }),
            Ok(WsMessage::Binary(bytes)) => match decode_frame::<S>(&bytes) {
                Ok(Frame::Message(message)) => Ok(message),
                Ok(Frame::Error(error)) => {
                    connection.close().await;
                    return Some((Err(SubscribeError::Server(error)), None));
                }
                Err(error) => Err(SubscribeError::Frame(error)),
            },
        };
        Some((item, Some(connection)))
    })
}
