//! XRPC subscriptions as a [`Source`]: the firehose, the labeler stream, any subscription whose
//! messages carry a `seq`.

use std::fmt;
use std::marker::PhantomData;

use futures::StreamExt;
use url::Url;

use super::consumer::{Connecting, Source};
use crate::com::atproto::label::subscribe_labels;
use crate::com::atproto::sync::subscribe_repos;
use crate::net::ws::WsOptions;
use crate::types::Data;
use crate::xrpc::{Client, SubscribeError, Subscription, XrpcErrorKind, subscribe_url};

/// A message with a sequence number (the cursor a consumer resumes after).
pub trait Sequenced {
    /// The message's `seq`; `None` for messages outside the sequence (`#info`).
    fn seq(&self) -> Option<i64>;
}

/// Parameters that take a cursor.
pub trait CursorParams: Clone {
    /// The same parameters, resuming after `cursor` (`None`: no cursor).
    fn with_cursor(&self, cursor: Option<i64>) -> Self;
}

/// The `seq` of a member this version does not know, when it has an integer one.
fn unknown_seq(member: &crate::types::UnknownMember) -> Option<i64> {
    match member.get("seq") {
        Some(Data::Integer(seq)) => Some(*seq),
        _ => None,
    }
}

impl Sequenced for subscribe_repos::Message {
    fn seq(&self) -> Option<i64> {
        match self {
            subscribe_repos::Message::Commit(m) => Some(m.seq),
            subscribe_repos::Message::Sync(m) => Some(m.seq),
            subscribe_repos::Message::Identity(m) => Some(m.seq),
            subscribe_repos::Message::Account(m) => Some(m.seq),
            subscribe_repos::Message::Info(_) => None,
            subscribe_repos::Message::Unknown(member) => unknown_seq(member),
        }
    }
}

impl Sequenced for subscribe_labels::Message {
    fn seq(&self) -> Option<i64> {
        match self {
            subscribe_labels::Message::Labels(m) => Some(m.seq),
            subscribe_labels::Message::Info(_) => None,
            subscribe_labels::Message::Unknown(member) => unknown_seq(member),
        }
    }
}

impl CursorParams for subscribe_repos::Params {
    fn with_cursor(&self, cursor: Option<i64>) -> Self {
        let mut out = self.clone();
        out.cursor = cursor;
        out
    }
}

impl CursorParams for subscribe_labels::Params {
    fn with_cursor(&self, cursor: Option<i64>) -> Self {
        let mut out = self.clone();
        out.cursor = cursor;
        out
    }
}

/// An XRPC subscription `S` at one service, as a [`Source`] for a
/// [`Consumer`](super::Consumer): each connection asks for the messages after the cursor.
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use futures::StreamExt;
/// use atlex::com::atproto::sync::subscribe_repos::{self, SubscribeRepos};
/// use atlex::stream::{Consumer, ConsumerEvent, ConsumerOptions, Firehose, MemoryCursor};
///
/// let client = atlex::xrpc::Client::anonymous("https://bsky.network")?;
/// let source = Firehose::<SubscribeRepos>::new(&client, subscribe_repos::Params::new());
/// let mut consumer = Consumer::start(source, Arc::new(MemoryCursor::default()), ConsumerOptions::default())?;
/// while let Some(item) = consumer.next().await {
///     if let ConsumerEvent::Message { cursor, message } = item? {
///         println!("{cursor:?}: {message:?}");
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Firehose<S: Subscription> {
    service: Url,
    params: S::Params,
    options: WsOptions,
    _subscription: PhantomData<fn() -> S>,
}

impl<S: Subscription> fmt::Debug for Firehose<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Firehose")
            .field("nsid", &S::NSID)
            .field("service", &crate::net::redact_url(&self.service))
            .finish_non_exhaustive()
    }
}

impl<S: Subscription> Firehose<S>
where
    S::Params: CursorParams,
{
    /// `S` at `client`'s service (with its `allow_http` setting); any cursor in `params` is
    /// replaced by the consumer's.
    pub fn new(client: &Client, params: S::Params) -> Firehose<S> {
        Firehose {
            service: client.service_url(),
            params,
            options: WsOptions {
                allow_http: client.allows_http(),
                ..WsOptions::default()
            },
            _subscription: PhantomData,
        }
    }

    /// `S` at `service` (e.g. `wss://bsky.network`, `https://pds.example.com`).
    pub fn at(service: Url, params: S::Params, options: WsOptions) -> Firehose<S> {
        Firehose {
            service,
            params,
            options,
            _subscription: PhantomData,
        }
    }

    /// The same source with other connection limits and timeouts.
    #[must_use]
    pub fn with_options(mut self, options: WsOptions) -> Firehose<S> {
        self.options = options;
        self
    }
}

impl<S> Source for Firehose<S>
where
    S: Subscription + 'static,
    S::Params: CursorParams + Send + Sync,
    S::Message: Sequenced + Send + 'static,
    S::Error: fmt::Display + fmt::Debug + Send + 'static,
{
    type Message = S::Message;
    type Error = SubscribeError<S::Error>;
    const CONTIGUOUS: bool = true;

    fn connect(&self, cursor: Option<i64>) -> Connecting<S::Message, Self::Error> {
        let params = self.params.with_cursor(cursor);
        let url = crate::xrpc::subscription_url::<S>(&self.service, &params);
        let options = self.options;
        Box::pin(async move {
            let stream = subscribe_url::<S>(&url?, options).await?;
            Ok(stream.boxed())
        })
    }

    fn cursor(message: &S::Message) -> Option<i64> {
        message.seq()
    }

    fn ends_connection(error: &Self::Error) -> bool {
        error.is_fatal()
    }

    fn is_terminal(error: &Self::Error) -> bool {
        match error {
            SubscribeError::Validation(_) | SubscribeError::InvalidRequest(_) => true,
            SubscribeError::Ws(ws) => matches!(ws.kind(), crate::net::ws::WsErrorKind::Url(_)),
            // Asking again with the same cursor gets the same answer.
            SubscribeError::Server(error) => error.code() == "FutureCursor",
            _ => false,
        }
    }
}
