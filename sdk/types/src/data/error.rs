//! [`DataError`]: a value that breaks the data-model rules, and where.

use std::fmt;

use crate::validate::PathSegment as Segment;

/// What is wrong with a value (see [`DataError::kind`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataErrorKind {
    /// A number with a fractional part (or any float in DAG-CBOR): the data model has no floats.
    Float,
    /// An integer outside the signed 64-bit range.
    IntegerOutOfRange,
    /// A JSON number that arrives as a float (written with a fraction or exponent, or too big
    /// for `i64`/`u64`) with an integral value beyond ±2^53, where floats stop being exact.
    InexactInteger,
    /// The value had to be an object (a record or a request/response body) but is not.
    NotAnObject,
    /// Arrays and objects nested deeper than [`MAX_DEPTH`](super::MAX_DEPTH).
    TooDeep,
    /// The same key appears twice in one object.
    DuplicateKey(String),
    /// A `$link` object or CID that is malformed; the text says why.
    InvalidLink(String),
    /// A `$bytes` object or base64 text that is malformed; the text says why.
    InvalidBytes(String),
    /// A `{"$type": "blob", …}` object (or legacy blob) that is malformed; the text says why.
    InvalidBlob(String),
    /// `$type` that is not a non-empty string.
    InvalidType,
    /// A reserved key (`$link`, `$bytes`) used in an ordinary object.
    ReservedKey(&'static str),
    /// Anything else (a message from the serde format, an unexpected value type, …).
    Other(String),
}

impl fmt::Display for DataErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataErrorKind::Float => f.write_str(
                "floating-point numbers are not part of the data model (only integers are)",
            ),
            DataErrorKind::IntegerOutOfRange => {
                f.write_str("integer is outside the signed 64-bit range")
            }
            DataErrorKind::InexactInteger => {
                f.write_str("number cannot be read as an exact integer (a float beyond ±2^53)")
            }
            DataErrorKind::NotAnObject => f.write_str("expected an object at the top level"),
            DataErrorKind::TooDeep => write!(
                f,
                "arrays and objects are nested more than {} levels deep",
                super::MAX_DEPTH
            ),
            DataErrorKind::DuplicateKey(key) => write!(f, "duplicate object key {key:?}"),
            DataErrorKind::InvalidLink(why) => write!(f, "invalid link: {why}"),
            DataErrorKind::InvalidBytes(why) => write!(f, "invalid bytes: {why}"),
            DataErrorKind::InvalidBlob(why) => write!(f, "invalid blob: {why}"),
            DataErrorKind::InvalidType => f.write_str("`$type` must be a non-empty string"),
            DataErrorKind::ReservedKey(key) => write!(
                f,
                "`{key}` is reserved: it may only appear as the single key of a `{{\"{key}\": …}}` \
                 object in JSON"
            ),
            DataErrorKind::Other(message) => f.write_str(message),
        }
    }
}

/// A value that breaks the data-model rules, with the JSON path where it happened.
///
/// The path is written `$` for the value itself, `.name` for an object key (`["…"]` when the key
/// is not a plain identifier) and `[3]` for an array index, e.g. `$.embed.images[0].image`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError {
    path: String,
    kind: DataErrorKind,
}

impl DataError {
    /// An error about the value itself (path `$`).
    pub fn new(kind: DataErrorKind) -> DataError {
        DataError {
            path: String::from("$"),
            kind,
        }
    }

    /// The JSON path of the offending value, e.g. `$.embed.images[0].image`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong.
    pub fn kind(&self) -> &DataErrorKind {
        &self.kind
    }

    /// Builds the error from segments collected innermost-first while unwinding.
    pub(crate) fn from_trace(trace: Trace) -> DataError {
        let mut path = String::from("$");
        for segment in trace.segments.iter().rev() {
            segment.write_to(&mut path);
        }
        DataError {
            path,
            kind: trace.kind,
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.kind)
    }
}

impl std::error::Error for DataError {}

impl From<DataErrorKind> for DataError {
    fn from(kind: DataErrorKind) -> DataError {
        DataError::new(kind)
    }
}

/// An error on its way up the tree: the path is collected innermost-first (so the happy path
/// never builds one) and turned into a [`DataError`] at the top.
#[derive(Debug)]
pub(crate) struct Trace {
    kind: DataErrorKind,
    segments: Vec<Segment>,
}

impl Trace {
    pub(crate) fn new(kind: DataErrorKind) -> Trace {
        Trace {
            kind,
            segments: Vec::new(),
        }
    }

    pub(crate) fn at_key(mut self, key: &str) -> Trace {
        self.segments.push(Segment::Key(key.to_owned()));
        self
    }

    pub(crate) fn kind(&self) -> &DataErrorKind {
        &self.kind
    }

    pub(crate) fn into_kind(self) -> DataErrorKind {
        self.kind
    }

    pub(crate) fn at_index(mut self, index: usize) -> Trace {
        self.segments.push(Segment::Index(index));
        self
    }
}

impl From<DataErrorKind> for Trace {
    fn from(kind: DataErrorKind) -> Trace {
        Trace::new(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_rendered_outermost_first() {
        let trace = Trace::new(DataErrorKind::Float)
            .at_key("image")
            .at_index(0)
            .at_key("images")
            .at_key("embed");
        let error = DataError::from_trace(trace);
        assert_eq!(error.path(), "$.embed.images[0].image");
        assert_eq!(error.kind(), &DataErrorKind::Float);
        assert!(
            error
                .to_string()
                .starts_with("$.embed.images[0].image: floating-point")
        );
    }

    #[test]
    fn odd_keys_are_quoted() {
        let trace = Trace::new(DataErrorKind::InvalidType)
            .at_key("$type")
            .at_key("cid-link")
            .at_key("")
            .at_key("a\"b");
        let error = DataError::from_trace(trace);
        assert_eq!(error.path(), r#"$["a\"b"][""]["cid-link"].$type"#);
    }
}
