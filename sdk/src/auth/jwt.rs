//! Reading a JWT's expiry without verifying it.
//!
//! The client only needs `exp` to refresh before the server starts rejecting the token; the
//! signature is the server's business. Nothing read here is trusted beyond that.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The `exp` claim (Unix seconds) of a compact JWT, if it has one and can be read.
pub(crate) fn expiry(token: &str) -> Option<i64> {
    seconds_claim(token, "exp")
}

/// The `iat` claim (Unix seconds) of a compact JWT, if it has one and can be read.
pub(crate) fn issued_at(token: &str) -> Option<i64> {
    seconds_claim(token, "iat")
}

fn seconds_claim(token: &str, claim: &str) -> Option<i64> {
    let mut parts = token.split('.');
    let _header = parts.next()?;
    let payload = parts.next()?;
    let _signature = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    // Some encoders pad; the unpadded engine rejects `=`.
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let value = claims.get(claim)?;
    value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|seconds| seconds.is_finite())
            // Truncating a fractional timestamp to whole seconds is intended.
            .map(|seconds| seconds as i64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(payload: &str) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256K"}"#),
            URL_SAFE_NO_PAD.encode(payload.as_bytes())
        )
    }

    #[test]
    fn reads_exp() {
        assert_eq!(
            expiry(&token(r#"{"exp":1700000000,"sub":"did:plc:a"}"#)),
            Some(1700000000)
        );
        assert_eq!(expiry(&token(r#"{"exp":1700000000.5}"#)), Some(1700000000));
        assert_eq!(issued_at(&token(r#"{"exp":2,"iat":1}"#)), Some(1));
    }

    #[test]
    fn unreadable_tokens_have_no_expiry() {
        assert_eq!(expiry(&token(r#"{"sub":"x"}"#)), None);
        assert_eq!(expiry("opaque-token"), None);
        assert_eq!(expiry("a.b"), None);
        assert_eq!(expiry("a.!!!.c"), None);
        assert_eq!(expiry(&format!("{}.x", token("{}"))), None);
    }
}
