//! Query-string parameters.

use atlex_types::format::{
    AtIdentifier, AtUri, Cid, Datetime, Did, Handle, Language, Nsid, RecordKey, Tid, Uri,
};
use atlex_types::{Validate, Validator};

/// Parameters that encode as an XRPC query string.
///
/// Generated `Params` structs implement this: every present parameter is written once, arrays as
/// repeated keys, booleans as `true`/`false`, strings unquoted.
pub trait QueryParams {
    /// Writes the parameters.
    fn write_query(&self, query: &mut QueryWriter);
}

/// A value that can be a query parameter.
pub trait QueryValue {
    /// Appends the value's text form.
    fn write_value(&self, out: &mut String);
}

impl QueryValue for str {
    fn write_value(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl QueryValue for String {
    fn write_value(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl QueryValue for i64 {
    fn write_value(&self, out: &mut String) {
        out.push_str(&self.to_string());
    }
}

impl QueryValue for bool {
    fn write_value(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

macro_rules! query_value_as_str {
    ($($ty:ty),*) => {$(
        impl QueryValue for $ty {
            fn write_value(&self, out: &mut String) {
                out.push_str(self.as_ref());
            }
        }
    )*};
}
query_value_as_str!(
    AtIdentifier,
    AtUri,
    Cid,
    Datetime,
    Did,
    Handle,
    Language,
    Nsid,
    RecordKey,
    Tid,
    Uri
);

/// Collects `(name, value)` pairs in order; the transport percent-encodes them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct QueryWriter {
    pairs: Vec<(&'static str, String)>,
}

impl QueryWriter {
    /// An empty query.
    pub fn new() -> QueryWriter {
        QueryWriter::default()
    }

    /// Adds one parameter.
    pub fn push<T: QueryValue + ?Sized>(&mut self, name: &'static str, value: &T) {
        let mut text = String::new();
        value.write_value(&mut text);
        self.pairs.push((name, text));
    }

    /// Adds a parameter when it is present.
    pub fn push_opt<T: QueryValue>(&mut self, name: &'static str, value: &Option<T>) {
        if let Some(value) = value {
            self.push(name, value);
        }
    }

    /// Adds an array parameter as repeated keys.
    pub fn push_all<T: QueryValue>(&mut self, name: &'static str, values: &[T]) {
        for value in values {
            self.push(name, value);
        }
    }

    /// Adds an optional array parameter as repeated keys.
    pub fn push_all_opt<T: QueryValue>(&mut self, name: &'static str, values: &Option<Vec<T>>) {
        if let Some(values) = values {
            self.push_all(name, values);
        }
    }

    /// The pairs written so far.
    pub fn pairs(&self) -> &[(&'static str, String)] {
        &self.pairs
    }
}

/// The parameters of a method that takes none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NoParams;

impl QueryParams for NoParams {
    fn write_query(&self, _query: &mut QueryWriter) {}
}

impl Validate for NoParams {
    fn validate_into(&self, _validator: &mut Validator) {}
}
