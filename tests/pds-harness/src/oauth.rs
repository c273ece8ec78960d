//! A headless stand-in for the user at the reference PDS's OAuth pages (feature `oauth`).
//!
//! Given the authorization URL an OAuth client sends the user to (the authorization endpoint
//! with `client_id` and the `request_uri` of its pushed authorization request), [`Driver`]
//! signs in with the account's identifier and password and accepts or rejects the consent
//! screen, through the same JSON API the PDS's own pages call (see
//! `../shared/docs/oauth-checklist.md` §7, "Driving sign-in and consent without a browser"):
//!
//! 1. `GET <authorize URL>` with the `sec-fetch-*` headers of a top-level navigation, which sets
//!    the device, session and CSRF cookies;
//! 2. `POST <issuer>/@atproto/oauth-provider/~api/sign-in` (skipped on rejection), then
//!    `…/~api/consent` or `…/~api/reject`, each with the cookies, the CSRF token, the issuer as
//!    `Origin` and the authorize URL as `Referer`; the answer holds the PDS's redirect URL;
//! 3. `GET` that URL, which answers `303` with the client's redirect URI and the callback
//!    parameters (`code`, `state`, `iss`, or `error=access_denied`): [`Callback`].
//!
//! The driver does not follow the final redirect (the test hands the parameters to the client
//! under test); [`Driver::deliver`] does, for a client that listens on a loopback port the way
//! a browser would reach it. Cookies are kept in a plain jar of its own: the PDS marks its CSRF
//! cookie `Secure` even over `http`, which a standards-strict jar would drop.
//!
//! The password is sent only to the issuer and never appears in errors or `Debug` output.

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use url::Url;

/// The largest response body read from the PDS (its pages are a few kB; its API answers less).
const MAX_BODY: usize = 1024 * 1024;
/// How long one HTTP exchange may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The User-Agent sent (anything without "iPhone OS", which the PDS answers with a cookie test).
const USER_AGENT: &str = "atlex-pds-harness-oauth";

/// What the simulated user does on the consent screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Sign in and allow the client.
    Accept,
    /// Deny the request (the client gets `error=access_denied`). No sign-in happens.
    Reject,
}

/// Why driving the authorization pages failed: which step, and what went wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverError {
    /// The step (`authorize page`, `sign-in`, `consent`, `reject`, `redirect`, `deliver`).
    pub step: &'static str,
    /// What went wrong (the URL, the status and the start of the answer).
    pub message: String,
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OAuth {} step: {}", self.step, self.message)
    }
}

impl std::error::Error for DriverError {}

fn fail(step: &'static str, message: impl Into<String>) -> DriverError {
    DriverError {
        step,
        message: message.into(),
    }
}

/// The redirect the PDS sends the browser to at the end: the client's redirect URI with the
/// callback parameters in its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// The full URL (`<redirect_uri>?state=…&iss=…&code=…`).
    pub url: Url,
}

impl Callback {
    /// The query parameters, in order (what a client's `callback(params)` takes).
    pub fn params(&self) -> Vec<(String, String)> {
        self.url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// The value of one parameter (`code`, `state`, `iss`, `error`, …).
    pub fn param(&self, name: &str) -> Option<String> {
        self.url
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// A plain cookie jar: name → value, sent to the one origin the driver talks to.
#[derive(Default, Clone)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn store(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            let pair = value.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            self.0.retain(|(n, _)| n != name);
            if !value.is_empty() {
                self.0.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The user at the PDS's authorization pages: an HTTP client (no redirects followed, bounded
/// time and sizes) and a cookie jar. One driver may run several authorizations in a row; the
/// jar then carries the remembered device from one to the next, as a browser would.
pub struct Driver {
    http: reqwest::Client,
    jar: Jar,
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Cookie values are session credentials at the PDS: only their names are shown.
        let names: Vec<&str> = self.jar.0.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Driver").field("cookies", &names).finish()
    }
}

impl Driver {
    /// A driver with an empty cookie jar.
    pub fn new() -> Result<Driver, DriverError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|error| fail("set-up", format!("building the HTTP client: {error}")))?;
        Ok(Driver {
            http,
            jar: Jar::default(),
        })
    }

    /// Opens `authorization_url`, signs in as `identifier` (a handle or DID) with `password`
    /// and accepts the request, or rejects it; returns where the PDS redirects the browser.
    pub async fn authorize(
        &mut self,
        authorization_url: &str,
        identifier: &str,
        password: &str,
        decision: Decision,
    ) -> Result<Callback, DriverError> {
        let authorize = Url::parse(authorization_url).map_err(|error| {
            fail(
                "authorize page",
                format!("{authorization_url:?} is not a URL: {error}"),
            )
        })?;
        if !matches!(authorize.scheme(), "http" | "https") {
            return Err(fail(
                "authorize page",
                format!("{authorization_url:?} is not an http(s) URL"),
            ));
        }
        // The PDS is its own authorization server: the issuer is the origin of its pages.
        let issuer = authorize.origin().ascii_serialization();

        // 1. The page itself: a top-level navigation from another site.
        let mut headers = navigation_headers("cross-site");
        self.add_cookies(&mut headers);
        let (status, headers_in, body) = self
            .send(
                "authorize page",
                Method::GET,
                authorize.as_str(),
                headers,
                None,
            )
            .await?;
        self.jar.store(&headers_in);
        if status != StatusCode::OK {
            return Err(fail(
                "authorize page",
                format!(
                    "GET {authorize} answered {status}{}{}",
                    location_note(&headers_in),
                    body_note(&body)
                ),
            ));
        }
        if self.jar.get("csrf-token").is_none() {
            return Err(fail(
                "authorize page",
                format!("GET {authorize} set no csrf-token cookie"),
            ));
        }

        // 2. The API calls the page's script makes.
        let redirect = match decision {
            Decision::Reject => {
                self.api(&issuer, &authorize, "reject", serde_json::json!({}))
                    .await?
            }
            Decision::Accept => {
                let signed_in = self
                    .api(
                        &issuer,
                        &authorize,
                        "sign-in",
                        serde_json::json!({
                            "locale": "en",
                            "username": identifier,
                            "password": password,
                            "remember": true,
                        }),
                    )
                    .await?;
                let did = signed_in
                    .pointer("/account/did")
                    .and_then(|did| did.as_str())
                    .ok_or_else(|| {
                        fail(
                            "sign-in",
                            format!(
                                "the answer has no account.did: {}",
                                clip(&signed_in.to_string())
                            ),
                        )
                    })?
                    .to_owned();
                self.api(
                    &issuer,
                    &authorize,
                    "consent",
                    serde_json::json!({ "did": did }),
                )
                .await?
            }
        };
        let step = match decision {
            Decision::Accept => "consent",
            Decision::Reject => "reject",
        };
        let redirect = redirect
            .get("url")
            .and_then(|url| url.as_str())
            .ok_or_else(|| {
                fail(
                    step,
                    format!("the answer has no url: {}", clip(&redirect.to_string())),
                )
            })?
            .to_owned();
        let redirect_url = Url::parse(&redirect)
            .map_err(|error| fail(step, format!("its url {redirect:?} is not a URL: {error}")))?;
        if redirect_url.origin().ascii_serialization() != issuer {
            return Err(fail(
                step,
                format!("its url {redirect:?} is not on the issuer {issuer}"),
            ));
        }

        // 3. The PDS's redirect page answers 303 to the client's redirect URI.
        let mut headers = navigation_headers("same-origin");
        insert(&mut headers, "referer", authorize.as_str());
        self.add_cookies(&mut headers);
        let (status, headers_in, body) = self
            .send(
                "redirect",
                Method::GET,
                redirect_url.as_str(),
                headers,
                None,
            )
            .await?;
        self.jar.store(&headers_in);
        if !status.is_redirection() {
            return Err(fail(
                "redirect",
                format!(
                    "GET {redirect_url} answered {status}, not a redirect{}",
                    body_note(&body)
                ),
            ));
        }
        let location = headers_in
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| {
                fail(
                    "redirect",
                    format!("GET {redirect_url} answered {status} without a Location"),
                )
            })?;
        let url = redirect_url.join(location).map_err(|error| {
            fail(
                "redirect",
                format!("its Location {location:?} is not a URL: {error}"),
            )
        })?;
        Ok(Callback { url })
    }

    /// Follows the final redirect as a browser would: `GET`s the callback URL (a client's
    /// loopback or web server) and returns its status and the start of its body. Only `http`
    /// and `https` URLs; redirects from there are not followed.
    pub async fn deliver(&self, callback: &Callback) -> Result<(u16, String), DriverError> {
        if !matches!(callback.url.scheme(), "http" | "https") {
            return Err(fail(
                "deliver",
                format!("{} is not an http(s) URL", callback.url),
            ));
        }
        let (status, _, body) = self
            .send(
                "deliver",
                Method::GET,
                callback.url.as_str(),
                navigation_headers("cross-site"),
                None,
            )
            .await?;
        Ok((status.as_u16(), String::from_utf8_lossy(&body).into_owned()))
    }

    /// One call to the authorization pages' JSON API; the answer must be 200 with a JSON object.
    async fn api(
        &mut self,
        issuer: &str,
        authorize: &Url,
        endpoint: &'static str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, DriverError> {
        let url = format!("{issuer}/@atproto/oauth-provider/~api/{endpoint}");
        let mut headers = HeaderMap::new();
        insert(&mut headers, "content-type", "application/json");
        insert(&mut headers, "origin", issuer);
        insert(&mut headers, "referer", authorize.as_str());
        insert(&mut headers, "sec-fetch-mode", "same-origin");
        insert(&mut headers, "sec-fetch-site", "same-origin");
        insert(&mut headers, "sec-fetch-dest", "empty");
        if let Some(token) = self.jar.get("csrf-token") {
            insert(&mut headers, "x-csrf-token", token);
        }
        self.add_cookies(&mut headers);
        let bytes = serde_json::to_vec(&body)
            .map_err(|error| fail(endpoint, format!("encoding: {error}")))?;
        let (status, headers_in, answer) = self
            .send(endpoint, Method::POST, &url, headers, Some(bytes))
            .await?;
        // The sign-in answer rotates the device and session cookies.
        self.jar.store(&headers_in);
        if status != StatusCode::OK {
            return Err(fail(
                endpoint,
                format!("POST {url} answered {status}{}", body_note(&answer)),
            ));
        }
        let value: serde_json::Value = serde_json::from_slice(&answer).map_err(|error| {
            fail(
                endpoint,
                format!(
                    "POST {url}: the answer is not JSON ({error}){}",
                    body_note(&answer)
                ),
            )
        })?;
        if !value.is_object() {
            return Err(fail(
                endpoint,
                format!(
                    "POST {url}: the answer is not a JSON object{}",
                    body_note(&answer)
                ),
            ));
        }
        Ok(value)
    }

    fn add_cookies(&self, headers: &mut HeaderMap) {
        let cookies = self.jar.header();
        if !cookies.is_empty() {
            insert(headers, "cookie", &cookies);
        }
    }

    /// Sends one request and reads at most [`MAX_BODY`] of the answer (the callers that talk
    /// to the issuer store its cookies).
    async fn send(
        &self,
        step: &'static str,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), DriverError> {
        let mut request = self.http.request(method.clone(), url).headers(headers);
        if let Some(body) = body {
            request = request.body(body);
        }
        let mut response = request
            .send()
            .await
            .map_err(|error| fail(step, format!("{method} {url}: {error}")))?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| fail(step, format!("{method} {url}: reading the body: {error}")))?
        {
            if body.len().saturating_add(chunk.len()) > MAX_BODY {
                return Err(fail(
                    step,
                    format!("{method} {url}: the body is larger than {MAX_BODY} bytes"),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, headers, body))
    }
}

fn navigation_headers(site: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    insert(&mut headers, "sec-fetch-mode", "navigate");
    insert(&mut headers, "sec-fetch-dest", "document");
    insert(&mut headers, "sec-fetch-site", site);
    insert(&mut headers, "accept", "text/html");
    headers
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

fn location_note(headers: &HeaderMap) -> String {
    headers
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
        .map(|location| format!(" (Location: {location})"))
        .unwrap_or_default()
}

fn body_note(body: &[u8]) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {}", clip(&String::from_utf8_lossy(body)))
    }
}

fn clip(text: &str) -> String {
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", text.get(..end).unwrap_or(text)),
        None => text.to_owned(),
    }
}
