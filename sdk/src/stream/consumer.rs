//! The consumer loop: connect, read into a bounded buffer, check sequence numbers, reconnect.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio::sync::mpsc;

use crate::xrpc::BoxError;

/// One connection of a [`Source`]: its messages and errors, in order.
pub type SourceStream<M, E> = BoxStream<'static, Result<M, E>>;

/// A connection being opened: its stream, or why it could not be opened.
pub type Connecting<M, E> = BoxFuture<'static, Result<SourceStream<M, E>, E>>;

/// Where a [`Consumer`] reads from: something that opens a connection from a cursor.
pub trait Source: Send + Sync + 'static {
    /// A message.
    type Message: Send + 'static;
    /// An error of a connection or a message.
    type Error: fmt::Display + fmt::Debug + Send + 'static;

    /// Opens a connection that starts after `cursor` (from the live tail when `None`).
    fn connect(&self, cursor: Option<i64>) -> Connecting<Self::Message, Self::Error>;

    /// The cursor of a message (`seq` for the firehose, `time_us` for Jetstream), if it has one.
    fn cursor(message: &Self::Message) -> Option<i64>;

    /// Whether the next message's cursor should be exactly one more than the last (the
    /// firehose's `seq`), so that a larger jump is reported as a [`ConsumerEvent::Gap`] and a
    /// repeated one as [`ConsumerEvent::OutOfOrder`]. When `false` (Jetstream's microsecond
    /// times, which several events may share), only cursors that go backwards are reported.
    const CONTIGUOUS: bool;

    /// Whether the connection is over after this error (the consumer reconnects).
    fn ends_connection(error: &Self::Error) -> bool;

    /// Whether reconnecting cannot help (a cursor from the future, invalid parameters): the
    /// consumer stops after this error.
    fn is_terminal(error: &Self::Error) -> bool;
}

/// Reads and writes the cursor an app resumes from.
///
/// `load` is called once when the consumer starts; `save` each time the app has finished a
/// message (when it asks for the next item). Implementations backed by a database may batch
/// the writes: losing the last few saves only means the messages after the saved cursor are
/// delivered again after a restart.
pub trait CursorStore: Send + Sync + 'static {
    /// The cursor saved last, if any.
    fn load(&self) -> Result<Option<i64>, BoxError>;
    /// Saves `cursor`.
    fn save(&self, cursor: i64) -> Result<(), BoxError>;
}

/// A [`CursorStore`] in memory (cheap to clone; clones share the cursor).
#[derive(Debug, Clone, Default)]
pub struct MemoryCursor(Arc<Mutex<Option<i64>>>);

impl MemoryCursor {
    /// A store holding `cursor`.
    pub fn new(cursor: Option<i64>) -> MemoryCursor {
        MemoryCursor(Arc::new(Mutex::new(cursor)))
    }

    /// The cursor saved last.
    pub fn get(&self) -> Option<i64> {
        match self.0.lock() {
            Ok(guard) => *guard,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }
}

impl CursorStore for MemoryCursor {
    fn load(&self) -> Result<Option<i64>, BoxError> {
        Ok(self.get())
    }

    fn save(&self, cursor: i64) -> Result<(), BoxError> {
        match self.0.lock() {
            Ok(mut guard) => *guard = Some(cursor),
            Err(poisoned) => *poisoned.into_inner() = Some(cursor),
        }
        Ok(())
    }
}

/// Exponential backoff between reconnects: `initial`, doubled each failed attempt up to `max`,
/// each wait shortened by up to a quarter at random so that many consumers do not reconnect
/// together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
    /// Attempts in a row without a message before the consumer gives up (`None`: never).
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(60),
            max_attempts: None,
        }
    }
}

impl Backoff {
    /// The wait before reconnect attempt `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let base = self.initial.saturating_mul(factor).min(self.max);
        let jitter = base.mul_f64(fastrand::f64() * 0.25);
        base.saturating_sub(jitter)
    }
}

/// How a [`Consumer`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerOptions {
    /// How many items wait for the app at most.
    pub buffer: usize,
    /// How long the buffer may stay full before the consumer ends with
    /// [`ConsumerError::TooSlow`].
    pub max_stall: Duration,
    /// Waits between reconnects.
    pub backoff: Backoff,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        ConsumerOptions {
            buffer: 1024,
            max_stall: Duration::from_secs(30),
            backoff: Backoff::default(),
        }
    }
}

/// What a [`Consumer`] yields besides errors.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsumerEvent<M> {
    /// A message, with its cursor.
    Message {
        /// Its cursor (`seq` or `time_us`), if it has one.
        cursor: Option<i64>,
        /// The message.
        message: M,
    },
    /// The next message's cursor jumps over some (contiguous sources only): `after` was the
    /// last cursor, `next` comes next. Reported before that message.
    Gap {
        /// The last cursor received.
        after: i64,
        /// The cursor of the message that follows.
        next: i64,
    },
    /// The next message's cursor is before the last one, or equal to it for a contiguous
    /// source (a duplicate or a reordering). Reported before that message, which is still
    /// delivered.
    OutOfOrder {
        /// The last cursor received.
        after: i64,
        /// The cursor of the message that follows.
        next: i64,
    },
    /// The connection was opened again after a failure or a close.
    Reconnected {
        /// The attempt that succeeded (1 for the first reconnect after a working connection).
        attempt: u32,
        /// The cursor it resumed after.
        cursor: Option<i64>,
    },
}

/// What went wrong in a [`Consumer`].
#[derive(Debug)]
#[non_exhaustive]
pub enum ConsumerError<E> {
    /// An error of the source (a connection failure, a bad frame, an error frame). Unless it
    /// is terminal, the consumer goes on, reconnecting if the connection ended.
    Source(E),
    /// The app did not take items for `waited` while `buffered` waited: the consumer stopped
    /// reading and ends. Resume from the saved cursor once the app keeps up.
    TooSlow {
        /// The items that were waiting.
        buffered: usize,
        /// How long the buffer stayed full.
        waited: Duration,
    },
    /// The cursor store failed; the consumer ends.
    Cursor(BoxError),
    /// Reconnecting failed [`Backoff::max_attempts`] times in a row; the consumer ends.
    GaveUp {
        /// The attempts made.
        attempts: u32,
    },
}

impl<E: fmt::Display> fmt::Display for ConsumerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsumerError::Source(error) => error.fmt(f),
            ConsumerError::TooSlow { buffered, waited } => write!(
                f,
                "the consumer is too slow: {buffered} events waited for {waited:?}; the stream \
                 stopped (resume from the saved cursor)"
            ),
            ConsumerError::Cursor(error) => write!(f, "the cursor store failed: {error}"),
            ConsumerError::GaveUp { attempts } => {
                write!(f, "gave up after {attempts} failed reconnect attempts")
            }
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for ConsumerError<E> {}

type Item<S> = Result<ConsumerEvent<<S as Source>::Message>, ConsumerError<<S as Source>::Error>>;

/// A running consumer: a stream of [`ConsumerEvent`]s and errors (see the module docs).
///
/// Dropping it stops the background task and closes the connection.
pub struct Consumer<S: Source> {
    rx: mpsc::Receiver<Item<S>>,
    tail: Arc<Mutex<Option<ConsumerError<S::Error>>>>,
    store: Arc<dyn CursorStore>,
    /// The cursor of the message handed out last, saved when the next item is asked for.
    pending: Option<i64>,
    task: tokio::task::JoinHandle<()>,
    finished: bool,
}

impl<S: Source> fmt::Debug for Consumer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("buffered", &self.rx.len())
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl<S: Source> Drop for Consumer<S> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<S: Source> Consumer<S> {
    /// Starts consuming `source` in a background task (needs a tokio runtime), from the cursor
    /// in `store`.
    pub fn start(
        source: S,
        store: Arc<dyn CursorStore>,
        options: ConsumerOptions,
    ) -> Result<Consumer<S>, ConsumerError<S::Error>> {
        let cursor = store.load().map_err(ConsumerError::Cursor)?;
        let (tx, rx) = mpsc::channel(options.buffer.max(1));
        let tail = Arc::new(Mutex::new(None));
        let task = tokio::spawn(run(source, cursor, tx, tail.clone(), options));
        Ok(Consumer {
            rx,
            tail,
            store,
            pending: None,
            task,
            finished: false,
        })
    }

    /// How many items are waiting in the buffer.
    pub fn queued(&self) -> usize {
        self.rx.len()
    }

    fn save_pending(&mut self) -> Result<(), ConsumerError<S::Error>> {
        if let Some(cursor) = self.pending.take() {
            self.store.save(cursor).map_err(ConsumerError::Cursor)?;
        }
        Ok(())
    }
}

impl<S: Source> Stream for Consumer<S> {
    type Item = Item<S>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        // The app asks for more: it is done with the message handed out before.
        if let Err(error) = self.save_pending() {
            self.finished = true;
            self.task.abort();
            return Poll::Ready(Some(Err(error)));
        }
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(item)) => {
                if let Ok(ConsumerEvent::Message {
                    cursor: Some(cursor),
                    ..
                }) = &item
                {
                    self.pending = Some(*cursor);
                }
                Poll::Ready(Some(item))
            }
            Poll::Ready(None) => {
                self.finished = true;
                let tail = match self.tail.lock() {
                    Ok(mut guard) => guard.take(),
                    Err(poisoned) => poisoned.into_inner().take(),
                };
                Poll::Ready(tail.map(Err))
            }
        }
    }
}

/// Sends `item`, waiting at most `max_stall` for room; `false` when the app is gone or too
/// slow (then the error is left in `tail`).
async fn send<S: Source>(
    tx: &mpsc::Sender<Item<S>>,
    item: Item<S>,
    tail: &Mutex<Option<ConsumerError<S::Error>>>,
    options: &ConsumerOptions,
) -> bool {
    let capacity = tx.max_capacity();
    let free = tx.capacity();
    if free < capacity / 4 {
        tracing::warn!(
            buffered = capacity - free,
            capacity,
            "event stream consumer lagging"
        );
    }
    match tokio::time::timeout(options.max_stall, tx.send(item)).await {
        Ok(Ok(())) => true,
        Ok(Err(_closed)) => false,
        Err(_elapsed) => {
            tracing::error!(
                buffered = capacity,
                waited_ms = u64::try_from(options.max_stall.as_millis()).unwrap_or(u64::MAX),
                "event stream consumer too slow; stopping"
            );
            let error = ConsumerError::TooSlow {
                buffered: capacity,
                waited: options.max_stall,
            };
            match tail.lock() {
                Ok(mut guard) => *guard = Some(error),
                Err(poisoned) => *poisoned.into_inner() = Some(error),
            }
            false
        }
    }
}

async fn run<S: Source>(
    source: S,
    mut cursor: Option<i64>,
    tx: mpsc::Sender<Item<S>>,
    tail: Arc<Mutex<Option<ConsumerError<S::Error>>>>,
    options: ConsumerOptions,
) {
    // Failed attempts in a row (0 while connected and receiving).
    let mut failures: u32 = 0;
    let mut connected_before = false;
    loop {
        if failures > 0 {
            if let Some(max) = options.backoff.max_attempts
                && failures > max
            {
                let error = ConsumerError::GaveUp { attempts: max };
                let _ = send::<S>(&tx, Err(error), &tail, &options).await;
                return;
            }
            let delay = options.backoff.delay(failures);
            tracing::info!(
                attempt = failures,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                cursor,
                "event stream reconnecting"
            );
            tokio::time::sleep(delay).await;
        }
        let mut stream = match source.connect(cursor).await {
            Ok(stream) => stream,
            Err(error) => {
                let terminal = S::is_terminal(&error);
                tracing::warn!(%error, attempt = failures, "event stream connect failed");
                if !send::<S>(&tx, Err(ConsumerError::Source(error)), &tail, &options).await
                    || terminal
                {
                    return;
                }
                failures = failures.saturating_add(1);
                continue;
            }
        };
        if connected_before {
            tracing::info!(
                attempt = failures.max(1),
                cursor,
                "event stream reconnected"
            );
            let event = ConsumerEvent::Reconnected {
                attempt: failures.max(1),
                cursor,
            };
            if !send::<S>(&tx, Ok(event), &tail, &options).await {
                return;
            }
        }
        connected_before = true;
        let mut received = false;
        while let Some(item) = stream.next().await {
            match item {
                Ok(message) => {
                    if !received {
                        received = true;
                        failures = 0;
                    }
                    let next = S::cursor(&message);
                    if let (Some(after), Some(next)) = (cursor, next) {
                        // A contiguous cursor (`seq`) never repeats; a time (Jetstream's
                        // `time_us`) may be shared by several events.
                        let backwards = next < after || (S::CONTIGUOUS && next == after);
                        let report = if backwards {
                            tracing::warn!(after, next, "event stream cursor out of order");
                            Some(ConsumerEvent::OutOfOrder { after, next })
                        } else if S::CONTIGUOUS && Some(next) != after.checked_add(1) {
                            tracing::warn!(after, next, "event stream sequence gap");
                            Some(ConsumerEvent::Gap { after, next })
                        } else {
                            None
                        };
                        if let Some(report) = report
                            && !send::<S>(&tx, Ok(report), &tail, &options).await
                        {
                            return;
                        }
                    }
                    if let Some(next) = next {
                        cursor = Some(cursor.map_or(next, |c| c.max(next)));
                    }
                    let event = ConsumerEvent::Message {
                        cursor: next,
                        message,
                    };
                    if !send::<S>(&tx, Ok(event), &tail, &options).await {
                        return;
                    }
                }
                Err(error) => {
                    let terminal = S::is_terminal(&error);
                    let ends = terminal || S::ends_connection(&error);
                    if ends {
                        tracing::warn!(%error, "event stream connection ended");
                    }
                    if !send::<S>(&tx, Err(ConsumerError::Source(error)), &tail, &options).await
                        || terminal
                    {
                        return;
                    }
                    if ends {
                        break;
                    }
                }
            }
        }
        // The connection ended (closed by the server or by an error): reconnect.
        failures = failures.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            max_attempts: None,
        };
        assert!(backoff.delay(1) <= Duration::from_millis(100));
        assert!(backoff.delay(1) >= Duration::from_millis(75));
        assert!(backoff.delay(3) >= Duration::from_millis(300));
        assert!(backoff.delay(40) <= Duration::from_secs(1));
        assert!(backoff.delay(u32::MAX) <= Duration::from_secs(1));
    }
}
