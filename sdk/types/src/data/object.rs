//! The rules for `$`-keys of an object, shared by every reader and writer of [`Data`].

use std::collections::BTreeMap;
use std::ops::Bound;

use super::Data;
use super::blob::{BLOB_TYPE, Blob};
use super::bytes::BYTES_KEY;
use super::error::{DataErrorKind, Trace};
use super::link::{CidLink, LINK_KEY};

/// The `$type` key.
pub(crate) const TYPE_KEY: &str = "$type";

/// What an object that passed [`classify`] is.
pub(crate) enum Shape {
    /// An ordinary object (possibly with a non-blob `$type`).
    Plain,
    /// A well-formed `{"$type": "blob", …}` object.
    Blob,
}

/// Checks the reserved keys of a complete object.
///
/// The one-key JSON forms `{"$link": …}` and `{"$bytes": …}` are recognised by the readers
/// before an object is built, so here those keys are always an error: in JSON they came with
/// other keys, in DAG-CBOR (where links and bytes have their own encodings) they are not
/// representable in JSON and are refused so that every [`Data`] value has both encodings.
pub(crate) fn classify(object: &BTreeMap<String, Data>) -> Result<Shape, Trace> {
    let mut shape = Shape::Plain;
    // Every key starting with `$` sorts between "$" and "%": one short range scan.
    let dollar_keys = object.range::<str, _>((Bound::Included("$"), Bound::Excluded("%")));
    for (key, value) in dollar_keys {
        match key.as_str() {
            LINK_KEY => return Err(Trace::new(DataErrorKind::ReservedKey(LINK_KEY)).at_key(key)),
            BYTES_KEY => {
                return Err(Trace::new(DataErrorKind::ReservedKey(BYTES_KEY)).at_key(key));
            }
            TYPE_KEY => match value {
                Data::String(name) if name == BLOB_TYPE => {
                    blob_parts(object)?;
                    shape = Shape::Blob;
                }
                Data::String(name) if !name.is_empty() => {}
                _ => return Err(Trace::new(DataErrorKind::InvalidType).at_key(key)),
            },
            // Other `$` keys are reserved for future use: ignored, as the spec asks.
            _ => {}
        }
    }
    Ok(shape)
}

/// Turns an object that [`classify`] found to be a blob into a [`Blob`], moving its parts.
pub(crate) fn into_blob(mut object: BTreeMap<String, Data>) -> Result<Blob, Trace> {
    let size = blob_parts(&object)?.2;
    match (object.remove("ref"), object.remove("mimeType")) {
        (Some(Data::Link(r#ref)), Some(Data::String(mime_type))) => Ok(Blob {
            r#ref,
            mime_type,
            size,
        }),
        // `blob_parts` checked both; this arm is unreachable but keeps the function total.
        _ => Err(Trace::new(DataErrorKind::InvalidBlob(
            "malformed blob".into(),
        ))),
    }
}

fn blob_error(key: &str, message: impl Into<String>) -> Trace {
    Trace::new(DataErrorKind::InvalidBlob(message.into())).at_key(key)
}

/// Checks a `{"$type": "blob", …}` object: exactly the four keys, each of the right kind.
fn blob_parts(object: &BTreeMap<String, Data>) -> Result<(&CidLink, &str, u64), Trace> {
    for key in object.keys() {
        if !matches!(key.as_str(), "$type" | "ref" | "mimeType" | "size") {
            return Err(blob_error(key, format!("unexpected key {key:?}")));
        }
    }
    let missing =
        |key: &str| Trace::new(DataErrorKind::InvalidBlob(format!("missing key {key:?}")));
    let r#ref = match object.get("ref") {
        Some(Data::Link(link)) => link,
        Some(_) => return Err(blob_error("ref", "`ref` must be a link")),
        None => return Err(missing("ref")),
    };
    let mime_type = match object.get("mimeType") {
        Some(Data::String(mime_type)) if !mime_type.is_empty() => mime_type.as_str(),
        Some(_) => {
            return Err(blob_error(
                "mimeType",
                "`mimeType` must be a non-empty string",
            ));
        }
        None => return Err(missing("mimeType")),
    };
    let size = match object.get("size") {
        Some(Data::Integer(size)) => {
            u64::try_from(*size).map_err(|_| blob_error("size", "`size` must not be negative"))?
        }
        Some(_) => return Err(blob_error("size", "`size` must be an integer")),
        None => return Err(missing("size")),
    };
    Ok((r#ref, mime_type, size))
}
