//! Event streams for real consumers: the firehose (`com.atproto.sync.subscribeRepos`), the
//! labeler stream (`com.atproto.label.subscribeLabels`) and Jetstream, with reconnects, cursors,
//! a bounded buffer and sequence checks.
//!
//! One WebSocket connection of an XRPC subscription is [`crate::xrpc::Client::subscribe`]
//! (the generated `client.sync().subscribe_repos(params)`); this module runs a *consumer* on
//! top of such connections:
//!
//! * a [`Source`] opens a connection from a cursor: [`Firehose`] for any XRPC subscription
//!   whose messages carry a `seq` ([`Sequenced`]), [`jetstream::Jetstream`] for Jetstream;
//! * [`Consumer::start`] runs it in a background task: it reconnects with exponential backoff
//!   (and jitter) and resumes from the last cursor it received, reports sequence gaps and
//!   out-of-order sequence numbers ([`ConsumerEvent`]), and logs reconnects and lag with
//!   `tracing`;
//! * messages wait in a **bounded** buffer ([`ConsumerOptions::buffer`]): when it is full the
//!   task stops reading the socket (backpressure reaches the server through TCP); when it stays
//!   full for [`ConsumerOptions::max_stall`], the consumer ends with
//!   [`ConsumerError::TooSlow`] instead of holding more;
//! * the app keeps its place through a [`CursorStore`]: the cursor of a message is saved when
//!   the app asks for the next item (so it is done with the message), and loaded at start. A
//!   restart therefore sees no message twice that it finished, and misses none.
//!
//! [`RepoEvent`] is the typed shape both sources share: commits as record operations whose
//! records decode into generated types (`op.record::<Post>()`), identity and account events.
//!
//! This module sits above the generated layer (it implements [`Sequenced`] for the official
//! message unions); the transport it uses ([`crate::xrpc`], [`crate::net::ws`]) knows nothing
//! of it.

mod consumer;
mod event;
mod firehose;
pub mod jetstream;

pub use consumer::{
    Backoff, Connecting, Consumer, ConsumerError, ConsumerEvent, ConsumerOptions, CursorStore,
    MemoryCursor, Source, SourceStream,
};
pub use event::{CommitEvent, RecordAction, RecordData, RecordOp, RepoEvent};
pub use firehose::{CursorParams, Firehose, Sequenced};
