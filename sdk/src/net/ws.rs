//! WebSocket connections under the same rules as HTTP: `wss://` anywhere, `ws://` only for
//! loopback unless plain transport is allowed, a bounded message size, a connect timeout and
//! an idle timeout.
//!
//! Event streams (XRPC subscriptions, Jetstream) read from a [`WsConnection`]. The transport is
//! `tokio-tungstenite` with rustls and the webpki roots, the same TLS stack as the XRPC client.
//! Its size limits are checked from each frame's header, before the payload is buffered, so a
//! server announcing a huge frame costs nothing. No redirect is followed (a `3xx` answer to the
//! upgrade is an error) and no credentials are sent.
//!
//! While waiting for a message the connection sends a WebSocket ping every
//! [`WsOptions::ping_interval`]; a server that sends nothing at all (no message, no pong) for
//! [`WsOptions::idle_timeout`] is given up on with [`WsErrorKind::Idle`].

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

use super::{UrlError, check_url, redact_url};

/// The default limit on one WebSocket message: 8 MiB.
///
/// A firehose `#commit` frame is bounded by the sync spec to a few MiB of CAR blocks (relays
/// drop larger ones), and Jetstream events are far smaller; 8 MiB leaves room while a hostile
/// server can make the client hold at most that much per connection.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 8 * 1024 * 1024;

/// Limits and timeouts of one WebSocket connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsOptions {
    /// The largest message (and frame) accepted, in bytes.
    pub max_message_size: usize,
    /// How long the TCP connection, TLS and the upgrade may take together.
    pub connect_timeout: Duration,
    /// How long the server may send nothing (no message, no ping, no pong) before the
    /// connection is given up.
    pub idle_timeout: Duration,
    /// How often the client pings a quiet server (keeps proxies from closing the connection
    /// and lets a live but quiet server show it is alive).
    pub ping_interval: Duration,
    /// Plain `ws://` to hosts that are not loopback is allowed.
    pub allow_http: bool,
}

impl Default for WsOptions {
    fn default() -> Self {
        WsOptions {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            connect_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(90),
            ping_interval: Duration::from_secs(30),
            allow_http: false,
        }
    }
}

/// What went wrong on a WebSocket connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WsErrorKind {
    /// The URL may not be contacted (scheme, host, plain transport).
    Url(String),
    /// Connecting, TLS or the upgrade failed.
    Connect(String),
    /// Connecting took longer than [`WsOptions::connect_timeout`].
    ConnectTimeout(Duration),
    /// The server sent nothing for [`WsOptions::idle_timeout`].
    Idle(Duration),
    /// A message (or frame) larger than [`WsOptions::max_message_size`].
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The server closed the connection with a close frame.
    Closed {
        /// The close code (1000 is a normal close).
        code: u16,
        /// The reason the server gave (at most 123 bytes, by the protocol).
        reason: String,
    },
    /// The connection ended without a close frame (reset, end of file, a frame cut short).
    Reset(String),
    /// The server broke the WebSocket protocol.
    Protocol(String),
}

/// A WebSocket error, naming the URL (without its query string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsError {
    url: String,
    kind: WsErrorKind,
}

impl WsError {
    pub(crate) fn new(url: &Url, kind: WsErrorKind) -> WsError {
        WsError {
            url: redact_url(url),
            kind,
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &WsErrorKind {
        &self.kind
    }

    /// The URL, as [`redact_url`] shows it.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = &self.url;
        match &self.kind {
            WsErrorKind::Url(reason) => write!(f, "{url}: refused: {reason}"),
            WsErrorKind::Connect(reason) => write!(f, "{url}: cannot connect: {reason}"),
            WsErrorKind::ConnectTimeout(after) => {
                write!(f, "{url}: connecting timed out after {after:?}")
            }
            WsErrorKind::Idle(after) => write!(f, "{url}: the server sent nothing for {after:?}"),
            WsErrorKind::TooLarge { limit } => {
                write!(
                    f,
                    "{url}: a message is larger than the limit of {limit} bytes"
                )
            }
            WsErrorKind::Closed { code, reason } => {
                write!(f, "{url}: the server closed the stream ({code}")?;
                if !reason.is_empty() {
                    write!(f, ": {reason}")?;
                }
                f.write_str(")")
            }
            WsErrorKind::Reset(reason) => {
                write!(f, "{url}: the connection ended without a close: {reason}")
            }
            WsErrorKind::Protocol(reason) => write!(f, "{url}: WebSocket protocol error: {reason}"),
        }
    }
}

impl std::error::Error for WsError {}

impl From<(UrlError, &Url)> for WsError {
    fn from((error, url): (UrlError, &Url)) -> WsError {
        WsError::new(url, WsErrorKind::Url(error.to_string()))
    }
}

/// One message from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    /// A binary message.
    Binary(Bytes),
    /// A text message.
    Text(String),
}

/// An open WebSocket connection, read message by message.
pub struct WsConnection {
    url: Url,
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    options: WsOptions,
    done: bool,
}

impl fmt::Debug for WsConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsConnection")
            .field("url", &redact_url(&self.url))
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Turns `https://` into `wss://` and `http://` into `ws://`; `ws`/`wss` stay.
pub fn websocket_url(url: &Url) -> Result<Url, WsError> {
    let scheme = match url.scheme() {
        "https" | "wss" => "wss",
        "http" | "ws" => "ws",
        other => {
            return Err(WsError::new(
                url,
                WsErrorKind::Url(format!("the scheme `{other}` is not a WebSocket scheme")),
            ));
        }
    };
    let mut out = url.clone();
    if out.scheme() != scheme {
        // The string round trip is how `url` allows a special scheme to change.
        let rest = &url.as_str()[url.scheme().len()..];
        out = Url::parse(&format!("{scheme}{rest}"))
            .map_err(|e| WsError::new(url, WsErrorKind::Url(e.to_string())))?;
    }
    Ok(out)
}

/// The `http(s)` twin of a `ws(s)` URL, for the transport rule of [`check_url`].
fn http_twin(url: &Url) -> Option<Url> {
    let scheme = match url.scheme() {
        "wss" => "https",
        "ws" => "http",
        _ => return None,
    };
    Url::parse(&format!("{scheme}{}", &url.as_str()[url.scheme().len()..])).ok()
}

impl WsConnection {
    /// Connects to `url` (`wss://`, or `ws://` for loopback or with
    /// [`WsOptions::allow_http`]; `https://`/`http://` are taken as their WebSocket twins).
    pub async fn connect(url: &Url, options: WsOptions) -> Result<WsConnection, WsError> {
        let url = websocket_url(url)?;
        let twin = http_twin(&url)
            .ok_or_else(|| WsError::new(&url, WsErrorKind::Url("not a WebSocket URL".into())))?;
        check_url(&twin, options.allow_http).map_err(|e| WsError::from((e, &url)))?;
        let config = WebSocketConfig::default()
            .max_message_size(Some(options.max_message_size))
            .max_frame_size(Some(options.max_message_size));
        let connect = tokio_tungstenite::connect_async_tls_with_config(
            url.as_str(),
            Some(config),
            true,
            None,
        );
        let socket = match tokio::time::timeout(options.connect_timeout, connect).await {
            Err(_) => {
                return Err(WsError::new(
                    &url,
                    WsErrorKind::ConnectTimeout(options.connect_timeout),
                ));
            }
            Ok(Err(error)) => return Err(classify(&url, error, options, true)),
            Ok(Ok((socket, _response))) => socket,
        };
        tracing::debug!(url = %redact_url(&url), "websocket connected");
        Ok(WsConnection {
            url,
            socket,
            options,
            done: false,
        })
    }

    /// The URL connected to.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The next binary or text message; `None` once the server has closed normally (code
    /// 1000) or after an error was returned.
    pub async fn next_message(&mut self) -> Option<Result<WsMessage, WsError>> {
        if self.done {
            return None;
        }
        let result = self.read().await;
        if !matches!(result, Some(Ok(_))) {
            self.done = true;
        }
        result
    }

    async fn read(&mut self) -> Option<Result<WsMessage, WsError>> {
        let idle = self.options.idle_timeout;
        let mut deadline = tokio::time::Instant::now() + idle;
        let mut ping = tokio::time::interval_at(
            tokio::time::Instant::now() + self.options.ping_interval,
            self.options.ping_interval,
        );
        loop {
            tokio::select! {
                message = self.socket.next() => {
                    let message = match message {
                        None => return Some(Err(WsError::new(&self.url, WsErrorKind::Reset("end of stream".into())))),
                        Some(Err(error)) => return Some(Err(classify(&self.url, error, self.options, false))),
                        Some(Ok(message)) => message,
                    };
                    deadline = tokio::time::Instant::now() + idle;
                    match message {
                        Message::Binary(bytes) => return Some(Ok(WsMessage::Binary(bytes))),
                        Message::Text(text) => return Some(Ok(WsMessage::Text(text.as_str().to_owned()))),
                        Message::Close(frame) => {
                            let (code, reason) = frame
                                .map(|f| (u16::from(f.code), f.reason.as_str().to_owned()))
                                .unwrap_or((1005, String::new()));
                            // 1005: a close frame without a code, which is a normal close too.
                            if code == 1000 || code == 1005 {
                                tracing::debug!(url = %redact_url(&self.url), "websocket closed normally");
                                return None;
                            }
                            return Some(Err(WsError::new(&self.url, WsErrorKind::Closed { code, reason })));
                        }
                        // Pongs to the server's pings are sent by tungstenite itself.
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return Some(Err(WsError::new(&self.url, WsErrorKind::Idle(idle))));
                }
                _ = ping.tick() => {
                    // A failed ping shows up as a read error next.
                    let _ = self.socket.send(Message::Ping(Bytes::new())).await;
                }
            }
        }
    }

    /// Closes the connection (best effort: a close frame, then the socket is dropped).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.socket.close(None)).await;
    }
}

fn classify(url: &Url, error: tungstenite::Error, options: WsOptions, connecting: bool) -> WsError {
    use tungstenite::Error as E;
    use tungstenite::error::{CapacityError, ProtocolError};
    let kind = match error {
        E::Capacity(CapacityError::MessageTooLong { .. }) => WsErrorKind::TooLarge {
            limit: options.max_message_size,
        },
        E::Capacity(other) => WsErrorKind::Protocol(other.to_string()),
        E::Io(io) if connecting => WsErrorKind::Connect(io.to_string()),
        E::Io(io) => WsErrorKind::Reset(io.to_string()),
        E::ConnectionClosed | E::AlreadyClosed => WsErrorKind::Reset("connection closed".into()),
        E::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            WsErrorKind::Reset("reset without a closing handshake".into())
        }
        E::Http(response) => WsErrorKind::Connect(format!(
            "the server answered the upgrade with HTTP {}",
            response.status()
        )),
        E::Protocol(protocol) if connecting => WsErrorKind::Connect(protocol.to_string()),
        E::Protocol(protocol) => WsErrorKind::Protocol(protocol.to_string()),
        other if connecting => WsErrorKind::Connect(other.to_string()),
        other => WsErrorKind::Protocol(other.to_string()),
    };
    WsError::new(url, kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_urls() {
        let u = |s: &str| websocket_url(&Url::parse(s).unwrap()).map(|u| u.to_string());
        assert_eq!(
            u("https://a.example/x?y=1").unwrap(),
            "wss://a.example/x?y=1"
        );
        assert_eq!(u("http://localhost:1/").unwrap(), "ws://localhost:1/");
        assert_eq!(u("wss://a.example/").unwrap(), "wss://a.example/");
        assert!(u("ftp://a.example/").is_err());
    }

    #[tokio::test]
    async fn plain_ws_needs_loopback_or_allow_http() {
        let url = Url::parse("ws://example.com/xrpc/x").unwrap();
        let error = WsConnection::connect(&url, WsOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(error.kind(), WsErrorKind::Url(_)), "{error}");
    }
}
