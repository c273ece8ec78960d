//! Retry policy, backoff with jitter, and reading rate-limit headers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;

use super::error::ErrorBody;
use super::failure::RateLimit;

/// When and how often a call is tried again.
///
/// * Queries (GET) are retried on `500`, `502`, `503`, `504`, network errors and timeouts, with
///   exponential backoff and jitter. Procedures (POST) never are: they may have taken effect.
/// * `429 Too Many Requests` is retried for both kinds (the server did not run the request) when
///   the wait its `ratelimit-reset` or `Retry-After` header asks for is at most
///   [`max_rate_limit_wait`](RetryPolicy::max_rate_limit_wait); otherwise the call returns
///   [`Error::RateLimited`](super::Error::RateLimited).
///
/// Every retry, of either cause, uses one of [`max_retries`](RetryPolicy::max_retries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    max_retries: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_rate_limit_wait: Duration,
}

impl Default for RetryPolicy {
    /// 3 retries, backoff from 250 ms up to 10 s, rate-limit waits up to 30 s.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            max_rate_limit_wait: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Never retry (rate-limited calls fail at once).
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_retries: 0,
            max_rate_limit_wait: Duration::ZERO,
            ..RetryPolicy::default()
        }
    }

    /// At most `retries` retries per call.
    #[must_use]
    pub fn max_retries(mut self, retries: u32) -> RetryPolicy {
        self.max_retries = retries;
        self
    }

    /// The backoff before the first retry, doubled for each next one up to `max`.
    #[must_use]
    pub fn backoff(mut self, initial: Duration, max: Duration) -> RetryPolicy {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// The longest rate-limit wait the client sits out before retrying.
    #[must_use]
    pub fn max_rate_limit_wait(mut self, wait: Duration) -> RetryPolicy {
        self.max_rate_limit_wait = wait;
        self
    }

    /// The retries allowed per call.
    pub fn retries(&self) -> u32 {
        self.max_retries
    }

    /// The longest accepted rate-limit wait.
    pub fn rate_limit_wait_limit(&self) -> Duration {
        self.max_rate_limit_wait
    }

    /// The delay before retry number `retry` (0 for the first): the exponential step, with
    /// "equal jitter" (half fixed, half random) so that many clients do not retry in lockstep.
    pub fn backoff_for(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX);
        let step = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        let half = step / 2;
        let jitter_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half.saturating_add(Duration::from_nanos(fastrand::u64(0..=jitter_nanos)))
    }
}

/// Whether a status is retried for queries.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 500 | 502 | 503 | 504)
}

/// Reads the rate-limit headers of a 429 answer.
///
/// Every number is the server's: anything that is not a plain non-negative decimal within
/// `u64` (negative, fractional, garbage, too many digits) is treated as absent, and times are
/// computed with checked arithmetic (a `ratelimit-reset` past what [`SystemTime`] can hold is
/// absent too). Waits are not capped here: a wait longer than
/// [`RetryPolicy::max_rate_limit_wait`] makes the call fail with
/// [`Error::RateLimited`](super::Error::RateLimited) at once, however long it is.
pub(crate) fn rate_limit(headers: &HeaderMap, body: &[u8], now: SystemTime) -> RateLimit {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let number = |name: &str| text(name).and_then(parse_decimal);
    let reset = number("ratelimit-reset").and_then(unix_time);
    let retry_after = text("retry-after").and_then(|value| parse_retry_after(value, now));
    RateLimit {
        limit: number("ratelimit-limit"),
        remaining: number("ratelimit-remaining"),
        reset,
        retry_after,
        policy: text("ratelimit-policy").map(str::to_owned),
        body: serde_json::from_slice::<ErrorBody>(body).ok(),
    }
}

/// A plain decimal number (`0`–`u64::MAX`, surrounding spaces allowed): no sign, no fraction.
fn parse_decimal(value: &str) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    value.parse::<u64>().ok()
}

/// `secs` after the Unix epoch, when a [`SystemTime`] can hold it.
fn unix_time(secs: u64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// `Retry-After`: delay seconds, or an HTTP date.
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Some(secs) = parse_decimal(value) {
        return Some(Duration::from_secs(secs));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = unix_time(u64::try_from(date.timestamp()).ok()?)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy =
            RetryPolicy::default().backoff(Duration::from_millis(100), Duration::from_secs(1));
        for retry in 0..40 {
            let delay = policy.backoff_for(retry);
            let step = Duration::from_millis(100)
                .saturating_mul(1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX))
                .min(Duration::from_secs(1));
            assert!(
                delay >= step / 2 && delay <= step,
                "retry {retry}: {delay:?}"
            );
        }
    }

    #[test]
    fn reads_rate_limit_headers() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let mut headers = HeaderMap::new();
        headers.insert("ratelimit-limit", HeaderValue::from_static("3000"));
        headers.insert("ratelimit-remaining", HeaderValue::from_static("0"));
        headers.insert("ratelimit-reset", HeaderValue::from_static("1005"));
        headers.insert("ratelimit-policy", HeaderValue::from_static("3000;w=300"));
        let limit = rate_limit(&headers, br#"{"error":"RateLimitExceeded"}"#, now);
        assert_eq!(limit.limit, Some(3000));
        assert_eq!(limit.remaining, Some(0));
        assert_eq!(limit.wait(now), Some(Duration::from_secs(5)));
        assert_eq!(limit.policy.as_deref(), Some("3000;w=300"));
        assert_eq!(
            limit.body.map(|b| b.error),
            Some("RateLimitExceeded".to_owned())
        );
    }

    #[test]
    fn a_reset_past_system_time_is_ignored() {
        // Found by the `headers_query` fuzz target: adding this to the epoch panicked.
        let mut headers = HeaderMap::new();
        headers.insert(
            "ratelimit-reset",
            HeaderValue::from_static("9223372036854775808"),
        );
        headers.insert("ratelimit-limit", HeaderValue::from_static("10"));
        let limit = rate_limit(&headers, b"", UNIX_EPOCH);
        assert_eq!(limit.reset, None);
        assert_eq!(limit.limit, Some(10));
        assert_eq!(limit.wait(UNIX_EPOCH), None);
    }

    #[test]
    fn retry_after_seconds_and_date() {
        let now = UNIX_EPOCH + Duration::from_secs(1_445_412_470);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        // Wed, 21 Oct 2015 07:28:00 GMT = 1445412480
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn hostile_numbers_never_panic() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        for value in [
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999999",
            "-1",
            "+5",
            "1.5",
            "1e9",
            "",
            " ",
            "0x10",
            "9223372036854775808",
        ] {
            let mut headers = HeaderMap::new();
            let header = HeaderValue::from_str(value).unwrap();
            for name in [
                "ratelimit-limit",
                "ratelimit-remaining",
                "ratelimit-reset",
                "retry-after",
            ] {
                headers.insert(name, header.clone());
            }
            let limit = rate_limit(&headers, b"", now);
            let _ = limit.wait(now);
            let _ = limit.to_string();
            if value == "18446744073709551615" {
                assert_eq!(limit.remaining, Some(u64::MAX));
                assert_eq!(limit.retry_after, Some(Duration::from_secs(u64::MAX)));
            }
            if value.starts_with(['-', '+']) || value.contains(['.', 'e', 'x']) {
                assert_eq!(limit.remaining, None, "{value}");
                assert_eq!(limit.reset, None, "{value}");
            }
        }
        assert_eq!(unix_time(u64::MAX), None);
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
    }
}
