//! Conversions between [`Data`] and `serde_json::Value`, with JSON paths in errors.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};

use super::blob::{BLOB_TYPE, Blob};
use super::bytes::{BYTES_KEY, Bytes};
use super::error::{DataErrorKind, Trace};
use super::link::{CidLink, LINK_KEY, parse_link};
use super::number::integer_from_f64;
use super::object::{Shape, classify, into_blob};
use super::{Data, MAX_DEPTH};

/// Converts a JSON value nested `depth` containers deep. The path of an error is collected on
/// the way out, so the happy path does no path bookkeeping at all.
pub(crate) fn from_value(value: &Value, depth: usize) -> Result<Data, Trace> {
    Ok(match value {
        Value::Null => Data::Null,
        Value::Bool(v) => Data::Boolean(*v),
        Value::Number(number) => Data::Integer(integer(number)?),
        Value::String(v) => Data::String(v.clone()),
        Value::Array(items) => {
            if depth >= MAX_DEPTH {
                return Err(Trace::new(DataErrorKind::TooDeep));
            }
            let mut out = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                out.push(from_value(item, depth + 1).map_err(|trace| trace.at_index(index))?);
            }
            Data::Array(out)
        }
        Value::Object(object) => return from_object(object, depth),
    })
}

fn integer(number: &Number) -> Result<i64, Trace> {
    if let Some(v) = number.as_i64() {
        return Ok(v);
    }
    if number.is_u64() {
        return Err(Trace::new(DataErrorKind::IntegerOutOfRange));
    }
    // Neither `i64` nor `u64`: a float (or, with serde_json's `arbitrary_precision`, a big
    // number, which `as_f64` approximates well enough to land out of range).
    match number.as_f64() {
        Some(v) => integer_from_f64(v).map_err(Trace::new),
        None => Err(Trace::new(DataErrorKind::IntegerOutOfRange)),
    }
}

fn from_object(object: &Map<String, Value>, depth: usize) -> Result<Data, Trace> {
    if object.len() == 1 {
        if let Some(value) = object.get(LINK_KEY) {
            return match value {
                Value::String(text) => parse_link(text).map(Data::Link),
                _ => Err(DataErrorKind::InvalidLink(
                    "`$link` must be a string".into(),
                )),
            }
            .map_err(|kind| Trace::new(kind).at_key(LINK_KEY));
        }
        if let Some(value) = object.get(BYTES_KEY) {
            return match value {
                Value::String(text) => Bytes::from_base64(text)
                    .map(Data::Bytes)
                    .map_err(|error| error.kind().clone()),
                _ => Err(DataErrorKind::InvalidBytes(
                    "`$bytes` must be a string".into(),
                )),
            }
            .map_err(|kind| Trace::new(kind).at_key(BYTES_KEY));
        }
    }
    if depth >= MAX_DEPTH {
        return Err(Trace::new(DataErrorKind::TooDeep));
    }
    let mut out = BTreeMap::new();
    for (key, value) in object {
        let value = from_value(value, depth + 1).map_err(|trace| trace.at_key(key))?;
        out.insert(key.clone(), value);
    }
    match classify(&out)? {
        Shape::Plain => Ok(Data::Object(out)),
        Shape::Blob => into_blob(out).map(Data::Blob),
    }
}

/// Converts to JSON. Structural: does not check the rules (see [`Data::validate`]).
pub(crate) fn to_value(data: &Data) -> Value {
    match data {
        Data::Null => Value::Null,
        Data::Boolean(v) => Value::Bool(*v),
        Data::Integer(v) => Value::from(*v),
        Data::String(v) => Value::String(v.clone()),
        Data::Bytes(v) => bytes_value(v),
        Data::Link(v) => link_value(v),
        Data::Blob(v) => blob_value(v),
        Data::Array(items) => Value::Array(items.iter().map(to_value).collect()),
        Data::Object(object) => Value::Object(
            object
                .iter()
                .map(|(key, value)| (key.clone(), to_value(value)))
                .collect(),
        ),
    }
}

fn bytes_value(bytes: &Bytes) -> Value {
    let mut object = Map::new();
    object.insert(BYTES_KEY.into(), Value::String(bytes.to_base64()));
    Value::Object(object)
}

fn link_value(link: &CidLink) -> Value {
    let mut object = Map::new();
    object.insert(LINK_KEY.into(), Value::String(link.to_string()));
    Value::Object(object)
}

fn blob_value(blob: &Blob) -> Value {
    let mut object = Map::new();
    object.insert("$type".into(), Value::String(BLOB_TYPE.into()));
    object.insert("ref".into(), link_value(&blob.r#ref));
    object.insert("mimeType".into(), Value::String(blob.mime_type.clone()));
    object.insert("size".into(), Value::from(blob.size));
    Value::Object(object)
}
