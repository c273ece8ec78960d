//! Sending one XRPC request: URL and headers, auth hooks, retries, rate limits, tracing.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tracing::Instrument;
use url::Url;

use super::body::{BodyError, RequestBody, RequestSource};
use super::client::{CallOptions, Client};
use super::endpoint::EndpointKind;
use super::error::ErrorBody;
use super::failure::{Error, RawResponse, TransportError, TransportErrorKind};
use super::retry::{is_retryable_status, rate_limit};
use super::session::{AfterResponse, AuthHeaders, RequestInfo, ResponseInfo};
use crate::net::{self, ReadError};

/// Everything but the RFC 3986 unreserved characters is percent-encoded (so a space is `%20`,
/// never `+`).
const QUERY_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Encodes `name=value` pairs as a query string, in order, keys repeated for arrays.
pub(crate) fn encode_query<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (name, value) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.extend(utf8_percent_encode(name, QUERY_ESCAPES));
        out.push('=');
        out.extend(utf8_percent_encode(value, QUERY_ESCAPES));
    }
    out
}

/// A request ready to send.
pub(crate) struct Outgoing<'a> {
    pub(crate) nsid: &'a str,
    pub(crate) kind: EndpointKind,
    /// The encoded query string (empty for none).
    pub(crate) query: String,
    /// The body.
    pub(crate) body: Option<RequestBody>,
}

/// A successful (2xx) response.
pub(crate) struct Incoming {
    pub(crate) status: u16,
    pub(crate) content_type: Option<String>,
    pub(crate) body: Vec<u8>,
}

/// A successful (2xx) response whose body has not been read yet (see
/// [`Client::execute_streamed`]).
pub(crate) struct StreamedIncoming {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: StreamedBody,
    /// The cap on the streamed body (`None`: none).
    pub(crate) limit: Option<u64>,
}

/// The body of a [`StreamedIncoming`].
pub(crate) enum StreamedBody {
    /// Still on the wire.
    Unread(reqwest::Response),
    /// Already read.
    Read(Bytes),
}

/// How a response body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadMode {
    /// Read every body whole.
    Buffer,
    /// Read error bodies whole; leave a 2xx body unread, for the caller to stream.
    StreamSuccess,
}

/// A response as read off the wire.
struct Received {
    status: u16,
    headers: HeaderMap,
    body: ReceivedBody,
}

enum ReceivedBody {
    /// The whole body.
    Read(Bytes),
    /// A 2xx body left unread ([`ReadMode::StreamSuccess`]).
    Unread(reqwest::Response),
}

impl Received {
    /// The body bytes read so far (empty for an unread body).
    fn bytes(&self) -> &[u8] {
        match &self.body {
            ReceivedBody::Read(bytes) => bytes,
            ReceivedBody::Unread(_) => &[],
        }
    }
}

/// Why one attempt ended without a usable response.
enum Attempt {
    /// Retry (after the given delay) unless the retry budget is used up; otherwise fail with the
    /// error.
    Retryable(Duration, Error<ErrorBody>),
    /// Fail now.
    Fatal(Error<ErrorBody>),
}

impl Client {
    /// Sends `request`, with auth, refresh-once-on-rejection, retries and rate-limit waits.
    /// Returns the 2xx response; everything else is an error (the XRPC error left as an
    /// [`ErrorBody`] for the caller to type).
    pub(crate) async fn execute(
        &self,
        request: Outgoing<'_>,
        options: &CallOptions,
    ) -> Result<Incoming, Error<ErrorBody>> {
        let received = self
            .execute_mode(&request, options, ReadMode::Buffer)
            .await?;
        let content_type = header_text(&received.headers, CONTENT_TYPE.as_str());
        let body = match received.body {
            ReceivedBody::Read(bytes) => Vec::from(bytes),
            // Not produced in `Buffer` mode; read it (within the limit) rather than assume so.
            ReceivedBody::Unread(response) => {
                net::read_limited(response, self.response_limit(options))
                    .await
                    .map(Vec::from)
                    .map_err(|error| Error::Transport(classify_read(request.nsid, error)))?
            }
        };
        Ok(Incoming {
            status: received.status,
            content_type,
            body,
        })
    }

    /// [`Client::execute`], but a 2xx response comes back before its body is read, for the
    /// caller to stream. Auth, refresh, retries, rate-limit waits and the mapping of error
    /// responses are the same; the `xrpc` span ends when the headers have arrived, and a
    /// failure while the body is read is not retried.
    pub(crate) async fn execute_streamed(
        &self,
        request: Outgoing<'_>,
        options: &CallOptions,
    ) -> Result<StreamedIncoming, Error<ErrorBody>> {
        let received = self
            .execute_mode(&request, options, ReadMode::StreamSuccess)
            .await?;
        let body = match received.body {
            ReceivedBody::Unread(response) => StreamedBody::Unread(response),
            // Not produced for a 2xx in `StreamSuccess` mode; pass the bytes on if it happens.
            ReceivedBody::Read(bytes) => StreamedBody::Read(bytes),
        };
        Ok(StreamedIncoming {
            status: received.status,
            headers: received.headers,
            body,
            limit: options.max_streamed_size.or(self.options.limits.streamed),
        })
    }

    /// The limit on a 2xx body read into memory for this call.
    fn response_limit(&self, options: &CallOptions) -> u64 {
        options
            .max_response_size
            .unwrap_or(self.options.limits.response)
    }

    async fn execute_mode(
        &self,
        request: &Outgoing<'_>,
        options: &CallOptions,
        mode: ReadMode,
    ) -> Result<Received, Error<ErrorBody>> {
        let method = match request.kind {
            EndpointKind::Query => "GET",
            EndpointKind::Procedure => "POST",
        };
        let span = tracing::info_span!(
            "xrpc",
            nsid = request.nsid,
            method,
            status = tracing::field::Empty,
            attempt = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        let started = Instant::now();
        let result = self
            .execute_inner(request, method, options, mode, &span)
            .instrument(span.clone())
            .await;
        let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        span.record("duration_ms", elapsed);
        match &result {
            Ok(_) => tracing::debug!(parent: &span, "call succeeded"),
            Err(error) => tracing::debug!(parent: &span, %error, "call failed"),
        }
        result
    }

    async fn execute_inner(
        &self,
        request: &Outgoing<'_>,
        method: &'static str,
        options: &CallOptions,
        mode: ReadMode,
        span: &tracing::Span,
    ) -> Result<Received, Error<ErrorBody>> {
        let auth = &self.shared.auth;
        let policy = &self.options.retry;
        let timeout = options.timeout.or(self.options.timeout);
        let proxy = options.proxy.as_deref().or(self.options.proxy.as_deref());
        let labelers = options
            .labelers
            .as_deref()
            .or(self.options.labelers.as_deref());

        let mut attempt: u32 = 0;
        let mut retries: u32 = 0;
        let mut refreshed = false;
        let mut auth_retried = false;
        loop {
            attempt = attempt.saturating_add(1);
            span.record("attempt", attempt);
            let url = xrpc_url(&self.service_url(), request.nsid, &request.query)?;
            // Every URL, not just the one the client was built with: a session may switch the
            // service (a PDS from a DID document).
            net::check_url(&url, self.options.allow_http)
                .map_err(|error| Error::InvalidRequest(error.to_string()))?;
            let info = RequestInfo {
                nsid: request.nsid,
                method,
                url: &url,
            };
            let sent = auth.before_request(&info).await?;
            let mut headers = request_headers(&sent, proxy, labelers, request.body.as_ref())?;
            let body = match &request.body {
                Some(body) => Some(open_body(body, &mut headers).await?),
                None => None,
            };

            let outcome = self
                .send_once(method, url.clone(), headers, body, timeout, mode, options)
                .await;
            let received = match outcome {
                Ok(received) => received,
                Err(error) => {
                    let transport = classify_read(request.nsid, error);
                    let retryable = request.kind == EndpointKind::Query && transport.is_transient();
                    let attempt_result = if retryable {
                        Attempt::Retryable(policy.backoff_for(retries), Error::Transport(transport))
                    } else {
                        Attempt::Fatal(Error::Transport(transport))
                    };
                    retry_or_fail(attempt_result, &mut retries, policy.retries(), "transport")
                        .await?;
                    continue;
                }
            };
            span.record("status", received.status);
            if (300..400).contains(&received.status) {
                // Not followed by the HTTP client's policy (by default none is).
                let refused = net::RedirectRefused::not_followed(
                    received.status,
                    &url,
                    header_text(&received.headers, reqwest::header::LOCATION.as_str()).as_deref(),
                );
                return Err(Error::Transport(TransportError::new(
                    TransportErrorKind::Redirect,
                    request.nsid,
                    refused,
                )));
            }

            let response = ResponseInfo::new(received.status, &received.headers, received.bytes());
            match auth.after_response(&info, &response, &sent) {
                AfterResponse::Refresh if !refreshed => {
                    refreshed = true;
                    tracing::debug!("credentials rejected; refreshing once");
                    auth.refresh(Some(&sent)).await?;
                    continue;
                }
                AfterResponse::Retry if !auth_retried => {
                    auth_retried = true;
                    continue;
                }
                AfterResponse::Accept | AfterResponse::Refresh | AfterResponse::Retry => {}
            }

            let status = received.status;
            if (200..300).contains(&status) {
                return Ok(received);
            }
            let attempt_result = if status == 429 {
                let limit = rate_limit(&received.headers, received.bytes(), SystemTime::now());
                match limit.wait(SystemTime::now()) {
                    Some(wait) if wait <= policy.rate_limit_wait_limit() => {
                        Attempt::Retryable(wait, Error::RateLimited(Box::new(limit)))
                    }
                    Some(_) => Attempt::Fatal(Error::RateLimited(Box::new(limit))),
                    None if policy.rate_limit_wait_limit() > Duration::ZERO => Attempt::Retryable(
                        policy.backoff_for(retries),
                        Error::RateLimited(Box::new(limit)),
                    ),
                    None => Attempt::Fatal(Error::RateLimited(Box::new(limit))),
                }
            } else {
                let error = error_response(status, &received);
                if request.kind == EndpointKind::Query && is_retryable_status(status) {
                    Attempt::Retryable(policy.backoff_for(retries), error)
                } else {
                    Attempt::Fatal(error)
                }
            };
            retry_or_fail(attempt_result, &mut retries, policy.retries(), "status").await?;
        }
    }

    #[allow(clippy::too_many_arguments)] // one private call site
    async fn send_once(
        &self,
        method: &'static str,
        url: Url,
        headers: HeaderMap,
        body: Option<reqwest::Body>,
        timeout: Option<Duration>,
        mode: ReadMode,
        options: &CallOptions,
    ) -> Result<Received, ReadError> {
        let http = &self.shared.http;
        let mut builder = match method {
            "GET" => http.get(url),
            _ => http.post(url),
        };
        builder = builder.headers(headers);
        if let Some(body) = body {
            builder = builder.body(body);
        }
        if let Some(timeout) = timeout {
            builder = builder.timeout(timeout);
        }
        let response = builder.send().await.map_err(ReadError::Http)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let success = (200..300).contains(&status);
        let body = if mode == ReadMode::StreamSuccess && success {
            ReceivedBody::Unread(response)
        } else {
            let limit = if success {
                self.response_limit(options)
            } else {
                self.options.limits.error
            };
            ReceivedBody::Read(net::read_limited(response, limit).await?)
        };
        Ok(Received {
            status,
            headers,
            body,
        })
    }
}

/// Sleeps and returns `Ok` when the attempt may be retried; returns the error otherwise.
async fn retry_or_fail(
    attempt: Attempt,
    retries: &mut u32,
    max_retries: u32,
    reason: &'static str,
) -> Result<(), Error<ErrorBody>> {
    match attempt {
        Attempt::Fatal(error) => Err(error),
        Attempt::Retryable(_, error) if *retries >= max_retries => Err(error),
        Attempt::Retryable(delay, error) => {
            *retries += 1;
            tracing::debug!(
                retry = *retries,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                reason,
                %error,
                "retrying"
            );
            tokio::time::sleep(delay).await;
            Ok(())
        }
    }
}

/// `<service>/xrpc/<nsid>?<query>`, keeping any path prefix of the service URL.
pub(crate) fn xrpc_url(service: &Url, nsid: &str, query: &str) -> Result<Url, Error<ErrorBody>> {
    let mut url = service.clone();
    {
        let mut segments = url.path_segments_mut().map_err(|()| {
            Error::InvalidRequest(format!("service URL {service} cannot have a path"))
        })?;
        segments.pop_if_empty().push("xrpc").push(nsid);
    }
    url.set_fragment(None);
    url.set_query(if query.is_empty() { None } else { Some(query) });
    Ok(url)
}

fn request_headers(
    auth: &AuthHeaders,
    proxy: Option<&str>,
    labelers: Option<&str>,
    body: Option<&RequestBody>,
) -> Result<HeaderMap, Error<ErrorBody>> {
    let mut headers = HeaderMap::new();
    for (name, value) in auth.headers() {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::InvalidRequest(format!("invalid auth header name {name:?}")))?;
        let mut value = HeaderValue::from_str(value.expose()).map_err(|_| {
            // The value is a secret: name the header only.
            Error::InvalidRequest(format!("invalid value for the auth header {name}"))
        })?;
        value.set_sensitive(true);
        headers.append(name, value);
    }
    if let Some(proxy) = proxy {
        let value = HeaderValue::from_str(proxy)
            .map_err(|_| Error::InvalidRequest(format!("invalid atproto-proxy value {proxy:?}")))?;
        headers.insert(HeaderName::from_static("atproto-proxy"), value);
    }
    if let Some(labelers) = labelers {
        let value = HeaderValue::from_str(labelers).map_err(|_| {
            Error::InvalidRequest(format!(
                "invalid atproto-accept-labelers value {labelers:?}"
            ))
        })?;
        headers.insert(HeaderName::from_static("atproto-accept-labelers"), value);
    }
    if let Some(body) = body {
        let content_type = body.content_type();
        let value = HeaderValue::from_str(content_type)
            .map_err(|_| Error::InvalidRequest(format!("invalid content type {content_type:?}")))?;
        headers.insert(CONTENT_TYPE, value);
    }
    Ok(headers)
}

/// The body of one attempt: the bytes (shared, not copied), or the file opened afresh and
/// streamed with its length as `Content-Length`.
async fn open_body(
    body: &RequestBody,
    headers: &mut HeaderMap,
) -> Result<reqwest::Body, Error<ErrorBody>> {
    match body.source() {
        RequestSource::Bytes(bytes) => Ok(reqwest::Body::from(bytes.clone())),
        RequestSource::File(path) => {
            let unreadable = |error: std::io::Error| {
                Error::Encode(BodyError::new(format!(
                    "cannot read the upload {}: {error}",
                    path.display()
                )))
            };
            let file = tokio::fs::File::open(path).await.map_err(unreadable)?;
            let length = file.metadata().await.map_err(unreadable)?.len();
            headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
            Ok(reqwest::Body::from(file))
        }
    }
}

pub(crate) fn classify_transport(nsid: &str, error: reqwest::Error) -> TransportError {
    if error.is_redirect() {
        // Refused by the redirect policy: keep its explanation as the cause.
        if let Some(refused) = net::redirect_refused(&error) {
            let refused = refused.clone();
            return TransportError::new(TransportErrorKind::Redirect, nsid, refused);
        }
    }
    let kind = if error.is_timeout() {
        TransportErrorKind::Timeout
    } else if error.is_connect() {
        TransportErrorKind::Connect
    } else {
        TransportErrorKind::Network
    };
    // The URL may carry query parameters; the error names the method instead.
    TransportError::new(kind, nsid, error.without_url())
}

/// A failed exchange or body read, as a [`TransportError`].
pub(crate) fn classify_read(nsid: &str, error: ReadError) -> TransportError {
    match error {
        ReadError::Http(error) => classify_transport(nsid, error),
        ReadError::TooLarge(error) => TransportError::new(
            TransportErrorKind::TooLarge,
            nsid,
            ReadError::TooLarge(error),
        ),
    }
}

pub(crate) fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// A non-2xx response: the XRPC error when the body is one, the raw response otherwise.
fn error_response(status: u16, received: &Received) -> Error<ErrorBody> {
    error_from_body(
        status,
        || header_text(&received.headers, CONTENT_TYPE.as_str()),
        received.bytes(),
    )
}

/// A non-2xx response from its parts (`content_type` is read only when the body is not an
/// XRPC error).
pub(crate) fn error_from_body(
    status: u16,
    content_type: impl FnOnce() -> Option<String>,
    body: &[u8],
) -> Error<ErrorBody> {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(body) => Error::Xrpc {
            status,
            error: body,
        },
        Err(_) => Error::Status(RawResponse::new(status, content_type(), body.to_vec())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encoding() {
        let pairs = [
            ("uris", "at://did:plc:a/app.bsky.feed.post/1"),
            ("uris", "a b+c&d=e/é"),
            ("limit", "10"),
        ];
        assert_eq!(
            encode_query(pairs.into_iter()),
            "uris=at%3A%2F%2Fdid%3Aplc%3Aa%2Fapp.bsky.feed.post%2F1\
             &uris=a%20b%2Bc%26d%3De%2F%C3%A9&limit=10"
        );
        assert_eq!(encode_query(std::iter::empty()), "");
    }

    #[test]
    fn xrpc_urls_keep_path_prefixes() {
        let base = Url::parse("https://example.com").unwrap();
        assert_eq!(
            xrpc_url(&base, "com.example.get", "a=1").unwrap().as_str(),
            "https://example.com/xrpc/com.example.get?a=1"
        );
        let base = Url::parse("https://example.com/pds/").unwrap();
        assert_eq!(
            xrpc_url(&base, "com.example.get", "").unwrap().as_str(),
            "https://example.com/pds/xrpc/com.example.get"
        );
        let base = Url::parse("https://example.com/pds").unwrap();
        assert_eq!(
            xrpc_url(&base, "com.example.get", "").unwrap().as_str(),
            "https://example.com/pds/xrpc/com.example.get"
        );
    }
}
