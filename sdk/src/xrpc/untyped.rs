//! The untyped escape hatch: any method by NSID, JSON in and out.
//!
//! These calls know no lexicon, so they cannot tell an output that holds credentials: a body
//! that is not JSON is kept in the [`DecodeError`] whatever the method. Call methods that
//! return credentials (`createSession`, `createAccount`, `getServiceAuth`, …) through their
//! generated endpoints, whose decode errors keep no body
//! ([`Endpoint::OUTPUT_HAS_SECRETS`](super::Endpoint::OUTPUT_HAS_SECRETS)).

use atlex_types::Nsid;
use serde_json::Value;

use super::body::RequestBody;
use super::client::{CallOptions, Client};
use super::endpoint::EndpointKind;
use super::error::GenericError;
use super::failure::{DecodeError, Error, RawResponse};
use super::transport::{Incoming, Outgoing, encode_query};

impl Client {
    /// Calls the query `nsid` with `params`, a JSON object whose values are strings, numbers,
    /// booleans or arrays of those (arrays become repeated keys; `null` values are left out).
    ///
    /// Same auth, refresh, retries and errors as [`Client::call`]; the output is the response
    /// JSON (`Value::Null` for an empty body).
    pub async fn get(&self, nsid: &str, params: Value) -> Result<(Value, Client), Error> {
        self.get_with(nsid, params, &CallOptions::default()).await
    }

    /// [`Client::get`] with per-call options.
    pub async fn get_with(
        &self,
        nsid: &str,
        params: Value,
        options: &CallOptions,
    ) -> Result<(Value, Client), Error> {
        let nsid = check_nsid(nsid)?;
        let query = query_from_json(&params)?;
        let response = self
            .execute(
                Outgoing {
                    nsid: nsid.as_str(),
                    kind: EndpointKind::Query,
                    query,
                    body: None,
                },
                options,
            )
            .await
            .map_err(|error| error.map_xrpc(GenericError))?;
        Ok((decode_json(response)?, self.clone()))
    }

    /// Calls the procedure `nsid` with the JSON `body` (`Value::Null` sends no body).
    ///
    /// Same auth, refresh and errors as [`Client::call`]; the output is the response JSON
    /// (`Value::Null` for an empty body).
    pub async fn post(&self, nsid: &str, body: Value) -> Result<(Value, Client), Error> {
        self.post_with(nsid, body, &CallOptions::default()).await
    }

    /// [`Client::post`] with per-call options.
    pub async fn post_with(
        &self,
        nsid: &str,
        body: Value,
        options: &CallOptions,
    ) -> Result<(Value, Client), Error> {
        let nsid = check_nsid(nsid)?;
        let body = match body {
            Value::Null => None,
            body => {
                let bytes = serde_json::to_vec(&body).map_err(|error| {
                    Error::InvalidRequest(format!("cannot encode the JSON body: {error}"))
                })?;
                Some(RequestBody::from_bytes(bytes, "application/json"))
            }
        };
        let response = self
            .execute(
                Outgoing {
                    nsid: nsid.as_str(),
                    kind: EndpointKind::Procedure,
                    query: String::new(),
                    body,
                },
                options,
            )
            .await
            .map_err(|error| error.map_xrpc(GenericError))?;
        Ok((decode_json(response)?, self.clone()))
    }
}

fn check_nsid(nsid: &str) -> Result<Nsid, Error> {
    Nsid::new(nsid).map_err(|error| Error::InvalidRequest(error.to_string()))
}

/// Turns a JSON object into query pairs.
fn query_from_json(params: &Value) -> Result<String, Error> {
    let object = match params {
        Value::Null => return Ok(String::new()),
        Value::Object(object) => object,
        other => {
            return Err(Error::InvalidRequest(format!(
                "query parameters must be a JSON object, not {}",
                json_kind(other)
            )));
        }
    };
    let mut pairs: Vec<(&str, String)> = Vec::new();
    for (name, value) in object {
        match value {
            Value::Null => {}
            Value::Array(items) => {
                for item in items {
                    match scalar(item) {
                        Some(text) => pairs.push((name, text)),
                        None if item.is_null() => {}
                        None => {
                            return Err(Error::InvalidRequest(format!(
                                "query parameter {name:?} holds an array containing {}; only \
                                 strings, numbers and booleans can be sent",
                                json_kind(item)
                            )));
                        }
                    }
                }
            }
            other => match scalar(other) {
                Some(text) => pairs.push((name, text)),
                None => {
                    return Err(Error::InvalidRequest(format!(
                        "query parameter {name:?} is {}; only strings, numbers, booleans and \
                         arrays of them can be sent",
                        json_kind(other)
                    )));
                }
            },
        }
    }
    Ok(encode_query(
        pairs.iter().map(|(name, value)| (*name, value.as_str())),
    ))
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn decode_json(response: Incoming) -> Result<Value, Error> {
    if response.body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&response.body).map_err(|error| {
        Error::Decode(DecodeError::new(
            RawResponse::new(response.status, response.content_type, response.body),
            format!("the response is not JSON: {error}"),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_params_become_a_query() {
        let query = query_from_json(&json!({
            "actor": "alice.test",
            "limit": 5,
            "reverse": true,
            "uris": ["at://a", "b c"],
            "skip": null,
        }))
        .unwrap();
        // serde_json's map is ordered by key unless `preserve_order` is on.
        for part in [
            "actor=alice.test",
            "limit=5",
            "reverse=true",
            "uris=at%3A%2F%2Fa",
            "uris=b%20c",
        ] {
            assert!(
                query.split('&').any(|p| p == part),
                "{part} missing from {query}"
            );
        }
        assert!(!query.contains("skip"));
        assert!(query_from_json(&json!({"a": {"b": 1}})).is_err());
        assert!(query_from_json(&json!({"a": [[1]]})).is_err());
        assert!(query_from_json(&json!([1])).is_err());
        assert_eq!(query_from_json(&Value::Null).unwrap(), "");
    }
}
