//! DPoP (RFC 9449): proofs and the per-origin nonce cache.
//!
//! * A proof is an ES256 JWS with header `{alg, typ: "dpop+jwt", jwk}` (the public JWK only)
//!   and claims `jti` (128 CSPRNG bits, new for every proof, so a retry is a new proof),
//!   `htm` (the method as sent), `htu` (the URL without query or fragment), `iat`, `nonce`
//!   (the origin's cached nonce, when there is one) and `ath` (base64url SHA-256 of the access
//!   token) — `ath` only toward the resource server, never to PAR, token or revoke.
//! * Nonces are cached per origin (scheme, host, port), shared by every session of an
//!   [`OAuthClient`](super::OAuthClient): a `DPoP-Nonce` header on any response, errors
//!   included, replaces the cached one, so a steady session pays no nonce round trip. The
//!   cache is bounded ([`NONCE_CACHE_SIZE`] origins, the oldest dropped first) and entries
//!   expire after [`NONCE_TTL`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use url::{Position, Url};

use super::jose::{Es256Key, JoseError, random_b64url, sha256_b64url};

/// How many origins the nonce cache holds.
pub const NONCE_CACHE_SIZE: usize = 100;
/// How long a cached nonce is used.
pub const NONCE_TTL: Duration = Duration::from_secs(60);
/// The longest nonce kept (a server sending more is ignored).
const MAX_NONCE_LEN: usize = 512;

/// The origin of `url` as the nonce cache keys it (`scheme://host[:port]`). For an
/// `http(s)` URL without user info that is the start of its serialization, borrowed (the `url`
/// crate leaves a default port out, as the origin's serialization does); anything else is
/// serialized as an origin.
pub(crate) fn origin_of(url: &Url) -> Cow<'_, str> {
    if matches!(url.scheme(), "http" | "https")
        && url.username().is_empty()
        && url.password().is_none()
    {
        Cow::Borrowed(&url[..Position::BeforePath])
    } else {
        Cow::Owned(url.origin().ascii_serialization())
    }
}

/// `url` without query and fragment: the `htu` claim (a slice of its serialization).
pub(crate) fn htu(url: &Url) -> &str {
    &url[..Position::AfterPath]
}

/// DPoP nonces per origin (see the [module docs](self)).
#[derive(Debug, Default)]
pub struct NonceCache {
    entries: Mutex<HashMap<String, (String, Instant)>>,
}

impl NonceCache {
    /// An empty cache.
    pub fn new() -> NonceCache {
        NonceCache::default()
    }

    /// The nonce cached for `origin`, if fresh.
    pub fn get(&self, origin: &str) -> Option<String> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(origin)
            .filter(|(_, at)| at.elapsed() < NONCE_TTL)
            .map(|(nonce, _)| nonce.clone())
    }

    /// Records `nonce` for `origin`; returns whether it differs from what was cached.
    pub fn put(&self, origin: &str, nonce: &str) -> bool {
        if nonce.is_empty() || nonce.len() > MAX_NONCE_LEN || !nonce.is_ascii() {
            return false;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((old, at)) = entries.get_mut(origin)
            && old == nonce
        {
            // The steady case (every response repeats the nonce): no allocation.
            *at = Instant::now();
            return false;
        }
        let changed = entries.get(origin).is_none_or(|(old, _)| old != nonce);
        if !entries.contains_key(origin) && entries.len() >= NONCE_CACHE_SIZE {
            // Drop expired entries, then the oldest.
            entries.retain(|_, (_, at)| at.elapsed() < NONCE_TTL);
            if entries.len() >= NONCE_CACHE_SIZE
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(key, _)| key.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(origin.to_owned(), (nonce.to_owned(), Instant::now()));
        changed
    }

    /// Forgets `origin`'s nonce.
    pub fn remove(&self, origin: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.remove(origin);
    }

    /// How many origins are cached.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A DPoP proof for `method` `url`, with the origin's nonce from `nonces` and, toward the
/// resource server, `ath` of `access_token`. Returns the proof and the nonce it carries.
pub fn proof(
    key: &Es256Key,
    method: &str,
    url: &Url,
    nonces: &NonceCache,
    access_token: Option<&str>,
) -> Result<(String, Option<String>), JoseError> {
    proof_with_ath(
        key,
        method,
        url,
        nonces,
        access_token.map(ath_of).as_deref(),
    )
}

/// The `ath` claim for `access_token`: base64url SHA-256 of it.
pub(crate) fn ath_of(access_token: &str) -> String {
    sha256_b64url(access_token)
}

/// [`proof`] with the `ath` claim already computed (a session computes it once per token).
pub(crate) fn proof_with_ath(
    key: &Es256Key,
    method: &str,
    url: &Url,
    nonces: &NonceCache,
    ath: Option<&str>,
) -> Result<(String, Option<String>), JoseError> {
    let nonce = nonces.get(&origin_of(url));
    let jti = random_b64url(16)?;
    let claims = Claims {
        jti: &jti,
        htm: method,
        htu: htu(url),
        iat: crate::auth::refresh::unix_now(),
        nonce: nonce.as_deref(),
        ath,
    };
    Ok((key.sign_dpop(&claims)?, nonce))
}

/// The claims of a DPoP proof, serialised straight into the proof (no intermediate `Value`).
#[derive(Serialize)]
struct Claims<'a> {
    jti: &'a str,
    htm: &'a str,
    htu: &'a str,
    iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ath: Option<&'a str>,
}

/// The `nonce` claim of a proof made by [`proof`] (`None` when it carried none). Only its
/// own proofs are read here, to tell which nonce a challenged request was sent with.
pub(crate) fn nonce_of(proof: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = proof.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("nonce")?.as_str().map(str::to_owned)
}

/// Whether a challenged request should be sent once more: the origin's cached nonce (just
/// updated from the challenge) differs from the one the request carried. Comparing with what
/// was sent, not asking whether this response changed the cache, matters under concurrency:
/// when many requests go out without a nonce, the first challenge stores it and every other
/// challenge finds it already cached — they must all retry with it.
pub(crate) fn should_retry(nonces: &NonceCache, origin: &str, sent: Option<&str>) -> bool {
    nonces
        .get(origin)
        .is_some_and(|next| Some(next.as_str()) != sent)
}

/// Whether a resource-server response is the DPoP nonce challenge: a 401 whose
/// `WWW-Authenticate` starts with `DPoP` and carries `error="use_dpop_nonce"`.
pub(crate) fn is_rs_nonce_challenge(status: u16, www_authenticate: Option<&str>) -> bool {
    status == 401
        && www_authenticate.is_some_and(|value| {
            value.trim_start().starts_with("DPoP") && value.contains("error=\"use_dpop_nonce\"")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn claims(jwt: &str) -> Value {
        let part = jwt.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn proof_claims() {
        let key = Es256Key::generate().unwrap();
        let nonces = NonceCache::new();
        let url = Url::parse("https://pds.example:8443/xrpc/a.b?x=1#frag").unwrap();
        let (first, sent) = proof(&key, "GET", &url, &nonces, None).unwrap();
        assert_eq!(sent, None);
        let c = claims(&first);
        assert_eq!(c["htu"], "https://pds.example:8443/xrpc/a.b");
        assert_eq!(c["htm"], "GET");
        assert!(c.get("ath").is_none());
        assert!(c.get("nonce").is_none());
        nonces.put("https://pds.example:8443", "n1");
        let (second, sent) = proof(&key, "GET", &url, &nonces, Some("tok")).unwrap();
        assert_eq!(sent.as_deref(), Some("n1"));
        let c2 = claims(&second);
        assert_eq!(c2["nonce"], "n1");
        assert_eq!(c2["ath"], sha256_b64url("tok"));
        assert_ne!(c["jti"], c2["jti"]);
        assert!(c2["jti"].as_str().unwrap().len() >= 16);
    }

    /// The borrowed origin and `htu` are exactly what serializing the origin, and the URL
    /// without query and fragment, gives.
    #[test]
    fn origin_and_htu_match_their_serializations() {
        for text in [
            "https://PDS.Example:443/xrpc/a.b?x=1#f",
            "https://pds.example:8443/xrpc/a.b",
            "http://127.0.0.1:8080/x#only-fragment",
            "https://[::1]:9/a/b?q",
            "https://user:pw@h.example/x?y",
            "https://h.example",
            "ftp://h.example/file",
        ] {
            let url = Url::parse(text).unwrap();
            assert_eq!(
                origin_of(&url),
                url.origin().ascii_serialization(),
                "{text}"
            );
            let mut bare = url.clone();
            bare.set_query(None);
            bare.set_fragment(None);
            assert_eq!(htu(&url), bare.as_str(), "{text}");
        }
    }

    /// A repeated nonce refreshes the entry's age; a new one replaces it.
    #[test]
    fn repeated_nonce_is_unchanged_and_new_nonce_replaces() {
        let nonces = NonceCache::new();
        assert!(nonces.put("https://a.example", "n1"));
        assert!(!nonces.put("https://a.example", "n1"));
        assert_eq!(nonces.get("https://a.example").as_deref(), Some("n1"));
        assert!(nonces.put("https://a.example", "n2"));
        assert_eq!(nonces.get("https://a.example").as_deref(), Some("n2"));
        assert_eq!(nonces.len(), 1);
    }

    #[test]
    fn nonce_cache_is_bounded() {
        let nonces = NonceCache::new();
        for i in 0..(NONCE_CACHE_SIZE + 20) {
            nonces.put(&format!("https://h{i}.example"), "n");
        }
        assert_eq!(nonces.len(), NONCE_CACHE_SIZE);
        assert!(nonces.get("https://h119.example").is_some());
        assert!(!nonces.put("https://h119.example", "n"));
        assert!(nonces.put("https://h119.example", "m"));
        assert!(!nonces.put("https://x.example", &"x".repeat(600)));
    }

    #[test]
    fn every_challenged_request_retries_when_the_nonce_differs_from_the_one_sent() {
        let key = Es256Key::generate().unwrap();
        let nonces = NonceCache::new();
        let url = Url::parse("https://pds.example/xrpc/a.b").unwrap();
        let origin = origin_of(&url);
        // Two requests sent without a nonce; both challenged with n1.
        let (first, _) = proof(&key, "GET", &url, &nonces, None).unwrap();
        let (second, _) = proof(&key, "GET", &url, &nonces, None).unwrap();
        assert_eq!(nonce_of(&first), None);
        assert!(nonces.put(&origin, "n1"));
        assert!(should_retry(&nonces, &origin, nonce_of(&first).as_deref()));
        // The second challenge does not change the cache, but must retry all the same.
        assert!(!nonces.put(&origin, "n1"));
        assert!(should_retry(&nonces, &origin, nonce_of(&second).as_deref()));
        // A request already sent with n1 and challenged again does not loop.
        let (third, sent) = proof(&key, "GET", &url, &nonces, None).unwrap();
        assert_eq!(sent.as_deref(), Some("n1"));
        assert_eq!(nonce_of(&third).as_deref(), Some("n1"));
        assert!(!should_retry(&nonces, &origin, nonce_of(&third).as_deref()));
        assert!(!should_retry(&NonceCache::new(), &origin, None));
    }

    #[test]
    fn rs_challenge() {
        assert!(is_rs_nonce_challenge(
            401,
            Some(r#"DPoP algs="ES256", error="use_dpop_nonce", error_description="x""#)
        ));
        assert!(!is_rs_nonce_challenge(
            401,
            Some(r#"DPoP error="invalid_token""#)
        ));
        assert!(!is_rs_nonce_challenge(
            400,
            Some(r#"DPoP error="use_dpop_nonce""#)
        ));
    }
}
