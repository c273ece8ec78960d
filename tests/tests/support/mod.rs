//! Shared helpers for the client tests: hand-written endpoint markers (what the generator will
//! emit), an in-memory session store with failure injection, and fake JWTs.

// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use atlex::auth::{BoxFuture, SessionData, SessionStore, StoreError, StoreLock};
use atlex::types::validate::{IntegerRules, StringRules};
use atlex::types::{Validate, Validator};
use atlex::xrpc::{
    Endpoint, EndpointKind, ErrorBody, GenericError, JsonBody, NoBody, NoParams, Paginated,
    QueryParams, QueryWriter, RawBody, RetryPolicy, XrpcErrorKind,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
// com.example.getThing: a query with params (required, array, bounded integer, cursor), a JSON
// output with a cursor and one array, and typed errors.

pub struct GetThing;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GetThingParams {
    pub actor: String,
    pub tags: Vec<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

impl QueryParams for GetThingParams {
    fn write_query(&self, query: &mut QueryWriter) {
        query.push("actor", &self.actor);
        query.push_all("tags", &self.tags);
        query.push_opt("limit", &self.limit);
        query.push_opt("cursor", &self.cursor);
    }
}

impl Validate for GetThingParams {
    fn validate_into(&self, validator: &mut Validator) {
        if let Some(limit) = self.limit {
            validator.field("limit", |v| {
                v.integer(
                    limit,
                    &IntegerRules {
                        minimum: Some(1),
                        maximum: Some(100),
                        ..IntegerRules::NONE
                    },
                )
            });
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetThingOutput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    pub things: Vec<String>,
}

impl JsonBody for GetThingOutput {}

#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum GetThingError {
    ThingNotFound(Option<String>),
    Other(ErrorBody),
}

impl fmt::Display for GetThingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetThingError::ThingNotFound(Some(message)) => write!(f, "ThingNotFound: {message}"),
            GetThingError::ThingNotFound(None) => f.write_str("ThingNotFound"),
            GetThingError::Other(body) => body.fmt(f),
        }
    }
}

impl XrpcErrorKind for GetThingError {
    fn from_body(body: ErrorBody) -> Self {
        match body.error.as_str() {
            "ThingNotFound" => GetThingError::ThingNotFound(body.message),
            _ => GetThingError::Other(body),
        }
    }
    fn code(&self) -> &str {
        match self {
            GetThingError::ThingNotFound(_) => "ThingNotFound",
            GetThingError::Other(body) => &body.error,
        }
    }
    fn message(&self) -> Option<&str> {
        match self {
            GetThingError::ThingNotFound(message) => message.as_deref(),
            GetThingError::Other(body) => body.message.as_deref(),
        }
    }
}

impl Endpoint for GetThing {
    const NSID: &'static str = "com.example.getThing";
    const KIND: EndpointKind = EndpointKind::Query;
    type Params = GetThingParams;
    type Input = NoBody;
    type Output = GetThingOutput;
    type Error = GetThingError;
}

impl Paginated for GetThing {
    type Item = String;
    fn cursor(output: &GetThingOutput) -> Option<&str> {
        output.cursor.as_deref()
    }
    fn set_cursor(params: &mut GetThingParams, cursor: Option<String>) {
        params.cursor = cursor;
    }
    fn into_items(output: GetThingOutput) -> Vec<String> {
        output.things
    }
}

pub fn params(actor: &str) -> GetThingParams {
    GetThingParams {
        actor: actor.to_owned(),
        ..GetThingParams::default()
    }
}

// ---------------------------------------------------------------------------------------------
// com.example.createThing: a procedure with a JSON input (text limited to 10 bytes).

pub struct CreateThing;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateThingInput {
    pub text: String,
}

impl JsonBody for CreateThingInput {}

impl Validate for CreateThingInput {
    fn validate_into(&self, validator: &mut Validator) {
        validator.field("text", |v| {
            v.string(
                &self.text,
                &StringRules {
                    max_length: Some(10),
                    ..StringRules::NONE
                },
            )
        });
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateThingOutput {
    pub id: String,
}

impl JsonBody for CreateThingOutput {}

impl Endpoint for CreateThing {
    const NSID: &'static str = "com.example.createThing";
    const KIND: EndpointKind = EndpointKind::Procedure;
    type Params = NoParams;
    type Input = CreateThingInput;
    type Output = CreateThingOutput;
    type Error = GenericError;
}

// ---------------------------------------------------------------------------------------------
// com.example.uploadThing (raw body in, JSON out) and com.example.getBlob (raw body out).

pub struct UploadThing;

impl Endpoint for UploadThing {
    const NSID: &'static str = "com.example.uploadThing";
    const KIND: EndpointKind = EndpointKind::Procedure;
    type Params = NoParams;
    type Input = RawBody;
    type Output = CreateThingOutput;
    type Error = GenericError;
}

pub struct GetBlob;

impl Endpoint for GetBlob {
    const NSID: &'static str = "com.example.getBlob";
    const KIND: EndpointKind = EndpointKind::Query;
    type Params = NoParams;
    type Input = NoBody;
    type Output = RawBody;
    type Error = GenericError;
}

// ---------------------------------------------------------------------------------------------
// A session store with failure injection and counters.

#[derive(Default)]
pub struct TestStore {
    data: Mutex<HashMap<String, SessionData>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    fences: Mutex<HashMap<String, u64>>,
    /// When set, `set` and `compare_and_set` fail.
    pub fail_set: AtomicBool,
    /// How many writes (`set`, successful `compare_and_set`) succeeded.
    pub sets: AtomicUsize,
    /// How many `lock` calls were made.
    pub locks_taken: AtomicUsize,
}

impl TestStore {
    pub fn new() -> Arc<TestStore> {
        Arc::new(TestStore::default())
    }

    pub fn raw(&self, key: &str) -> Option<String> {
        self.data
            .lock()
            .unwrap()
            .get(key)
            .map(|data| data.as_str().to_owned())
    }

    pub fn json(&self, key: &str) -> Option<serde_json::Value> {
        self.raw(key)
            .map(|text| serde_json::from_str(&text).unwrap())
    }

    pub fn put(&self, key: &str, json: serde_json::Value) {
        self.data
            .lock()
            .unwrap()
            .insert(key.to_owned(), SessionData::new(json.to_string()));
    }

    fn injected(&self) -> Result<(), StoreError> {
        if self.fail_set.load(Ordering::SeqCst) {
            return Err(StoreError::new("disk full (injected)", None));
        }
        Ok(())
    }
}

impl SessionStore for TestStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<SessionData>, StoreError>> {
        Box::pin(async move { Ok(self.data.lock().unwrap().get(key).cloned()) })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a SessionData,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.injected()?;
            self.data
                .lock()
                .unwrap()
                .insert(key.to_owned(), value.clone());
            self.sets.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }

    /// The test store keeps no expiry: the tests using it never rely on one.
    fn set_expiring<'a>(
        &'a self,
        key: &'a str,
        value: &'a SessionData,
        _ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.set(key, value)
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.data.lock().unwrap().remove(key);
            Ok(())
        })
    }

    fn compare_and_set<'a>(
        &'a self,
        key: &'a str,
        current: Option<&'a SessionData>,
        new: Option<&'a SessionData>,
        fence: Option<&'a StoreLock>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            if new.is_some() {
                self.injected()?;
            }
            if let Some(lock) = fence {
                lock.check_for("test store", key)?;
                assert_eq!(
                    self.fences.lock().unwrap().get(key),
                    Some(&lock.fence()),
                    "fenced with a stale lock"
                );
            }
            let mut data = self.data.lock().unwrap();
            if data.get(key) != current {
                return Ok(false);
            }
            match new {
                Some(value) => {
                    data.insert(key.to_owned(), value.clone());
                    self.sets.fetch_add(1, Ordering::SeqCst);
                }
                None => {
                    data.remove(key);
                }
            }
            Ok(true)
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            let mut keys: Vec<String> = self
                .data
                .lock()
                .unwrap()
                .keys()
                .filter(|key| key.starts_with(prefix))
                .cloned()
                .collect();
            keys.sort();
            Ok(keys)
        })
    }

    fn lock<'a>(
        &'a self,
        key: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<StoreLock, StoreError>> {
        self.locks_taken.fetch_add(1, Ordering::SeqCst);
        let mutex = self
            .locks
            .lock()
            .unwrap()
            .entry(key.to_owned())
            .or_default()
            .clone();
        Box::pin(async move {
            let guard = tokio::time::timeout(timeout, mutex.lock_owned())
                .await
                .map_err(|_| {
                    StoreError::new("test store: lock timed out", None)
                        .with_kind(atlex::auth::StoreErrorKind::LockTimeout)
                })?;
            let fence = {
                let mut fences = self.fences.lock().unwrap();
                let fence = fences.entry(key.to_owned()).or_insert(0);
                *fence += 1;
                *fence
            };
            Ok(StoreLock::new(key, fence, guard))
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Fake JWTs.

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A JWT-shaped token expiring `expires_in` seconds from now, issued two hours before expiry,
/// whose signature part is `sig-<tag>` (so tests can grep for it).
pub fn jwt(tag: &str, expires_in: i64) -> String {
    let exp = now() + expires_in;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256K","typ":"at+jwt"}"#);
    let payload = URL_SAFE_NO_PAD.encode(
        format!(
            r#"{{"sub":"did:plc:alice","iat":{},"exp":{exp}}}"#,
            exp - 7200
        )
        .as_bytes(),
    );
    format!("{header}.{payload}.sig-{tag}")
}

/// A retry policy with millisecond backoff for tests.
pub fn fast_retry(retries: u32) -> RetryPolicy {
    RetryPolicy::default()
        .max_retries(retries)
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
}

/// How many requests `server` received on `/xrpc/<nsid>`.
pub async fn hits(server: &wiremock::MockServer, nsid: &str) -> usize {
    let path = format!("/xrpc/{nsid}");
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|request| request.url.path() == path)
        .count()
}

/// How many requests on `/xrpc/<nsid>` carried `Authorization: Bearer <token>`.
pub async fn hits_with_token(server: &wiremock::MockServer, nsid: &str, token: &str) -> usize {
    let path = format!("/xrpc/{nsid}");
    let expected = format!("Bearer {token}");
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|request| {
            request.url.path() == path
                && request
                    .headers
                    .get("authorization")
                    .and_then(|value| value.to_str().ok())
                    == Some(expected.as_str())
        })
        .count()
}
