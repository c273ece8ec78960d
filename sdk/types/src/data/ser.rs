//! `Serialize` for [`Data`], and [`Data::validate`].
//!
//! Writing checks the same rules as reading (object `$`-keys, nesting depth, blob fields), so a
//! hand-built value that could not be read back fails to serialize instead of producing bad
//! data. Integers, strings and booleans need no check: the Rust types already guarantee them.

use std::cell::RefCell;

use serde::Serialize;
use serde::ser::{self, SerializeMap, SerializeSeq, Serializer};

use super::bytes::serialize_bytes;
use super::error::{DataError, DataErrorKind, Trace};
use super::object::classify;
use super::{Data, MAX_DEPTH};

thread_local! {
    /// The last error raised by this module's `Serialize` impls, with its path.
    ///
    /// `serde_ipld_dagcbor` replaces the error of a nested map or list value with a generic
    /// "Struct value cannot be serialized." message. So that [`super::cbor::to_dag_cbor`] can
    /// still say what was wrong and where, the impls here also leave their error in this slot;
    /// `to_dag_cbor` clears it before encoding and reads it after a failure.
    static LAST_ERROR: RefCell<Option<Trace>> = const { RefCell::new(None) };
}

/// Raises a serialization error and records it for [`take_last_error`].
pub(crate) fn fail<E: ser::Error>(kind: DataErrorKind) -> E {
    let message = kind.to_string();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = Some(Trace::new(kind)));
    E::custom(message)
}

/// Adds a path segment to the recorded error while it unwinds through a container.
fn annotate(step: impl FnOnce(Trace) -> Trace) {
    LAST_ERROR.with(|slot| {
        let mut slot = slot.borrow_mut();
        if let Some(trace) = slot.take() {
            *slot = Some(step(trace));
        }
    });
}

/// Forgets any recorded error.
pub(crate) fn clear_last_error() {
    LAST_ERROR.with(|slot| *slot.borrow_mut() = None);
}

/// Takes the recorded error, if any.
pub(crate) fn take_last_error() -> Option<DataError> {
    LAST_ERROR
        .with(|slot| slot.borrow_mut().take())
        .map(DataError::from_trace)
}

impl Serialize for Data {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        DataRef {
            data: self,
            depth: 0,
        }
        .serialize(serializer)
    }
}

/// A [`Data`] value nested `depth` containers deep.
struct DataRef<'a> {
    data: &'a Data,
    depth: usize,
}

impl DataRef<'_> {
    fn child<'b>(&self, data: &'b Data) -> DataRef<'b> {
        DataRef {
            data,
            depth: self.depth + 1,
        }
    }
}

impl Serialize for DataRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.data {
            Data::Null => serializer.serialize_none(),
            Data::Boolean(v) => serializer.serialize_bool(*v),
            Data::Integer(v) => serializer.serialize_i64(*v),
            Data::String(v) => serializer.serialize_str(v),
            Data::Bytes(v) => serialize_bytes(v, serializer),
            Data::Link(v) => v.serialize(serializer),
            Data::Blob(v) => {
                if self.depth >= MAX_DEPTH {
                    return Err(fail(DataErrorKind::TooDeep));
                }
                v.serialize(serializer)
            }
            Data::Array(items) => {
                if self.depth >= MAX_DEPTH {
                    return Err(fail(DataErrorKind::TooDeep));
                }
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for (index, item) in items.iter().enumerate() {
                    if let Err(error) = seq.serialize_element(&self.child(item)) {
                        annotate(|trace| trace.at_index(index));
                        return Err(error);
                    }
                }
                seq.end()
            }
            Data::Object(object) => {
                if self.depth >= MAX_DEPTH {
                    return Err(fail(DataErrorKind::TooDeep));
                }
                if let Err(trace) = classify(object) {
                    let message = trace.kind().to_string();
                    LAST_ERROR.with(|slot| *slot.borrow_mut() = Some(trace));
                    return Err(ser::Error::custom(message));
                }
                let mut map = serializer.serialize_map(Some(object.len()))?;
                for (key, value) in object {
                    if let Err(error) = map.serialize_entry(key, &self.child(value)) {
                        annotate(|trace| trace.at_key(key));
                        return Err(error);
                    }
                }
                map.end()
            }
        }
    }
}

/// Checks a hand-built value against the rules that reading enforces.
pub(crate) fn validate(data: &Data, depth: usize) -> Result<(), Trace> {
    match data {
        Data::Null | Data::Boolean(_) | Data::Integer(_) | Data::String(_) => Ok(()),
        Data::Bytes(_) | Data::Link(_) => Ok(()),
        Data::Blob(blob) => {
            if depth >= MAX_DEPTH {
                return Err(Trace::new(DataErrorKind::TooDeep));
            }
            super::blob::check_parts(&blob.mime_type, blob.size).map_err(Trace::new)
        }
        Data::Array(items) => {
            if depth >= MAX_DEPTH {
                return Err(Trace::new(DataErrorKind::TooDeep));
            }
            for (index, item) in items.iter().enumerate() {
                validate(item, depth + 1).map_err(|trace| trace.at_index(index))?;
            }
            Ok(())
        }
        Data::Object(object) => {
            if depth >= MAX_DEPTH {
                return Err(Trace::new(DataErrorKind::TooDeep));
            }
            classify(object)?;
            for (key, value) in object {
                validate(value, depth + 1).map_err(|trace| trace.at_key(key))?;
            }
            Ok(())
        }
    }
}
