//! Lexicon constraints: the checks behind every generated `validate()` and the runtime validator.
//!
//! Format rules (`did`, `datetime`, …) are enforced by the string newtypes in [`crate::format`]
//! when a value is built or decoded. What the type system cannot express — UTF-8 byte lengths,
//! grapheme counts, integer ranges, array lengths, `enum`/`const` membership, blob `accept` and
//! `maxSize` — is checked here. Each check is a small function used both by the code that
//! `cargo xtask codegen` emits and by `atlex_lexicon`'s validator for untyped JSON, so the two can
//! never disagree.
//!
//! A [`Validator`] walks a value, keeps the current JSON path and collects **every** violation
//! (not just the first) as a [`ValidationError`] naming the path and the [`Constraint`].

use std::fmt;

use unicode_segmentation::UnicodeSegmentation;

/// A value whose lexicon constraints can be checked.
///
/// Generated types implement this; `validate()` returns every violation with its field path.
pub trait Validate {
    /// Checks every constraint of `self` and of the values inside it.
    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut validator = Validator::new();
        self.validate_into(&mut validator);
        validator.finish()
    }

    /// Records the violations of `self` into `validator`, at its current path.
    fn validate_into(&self, validator: &mut Validator);
}

impl<T: Validate + ?Sized> Validate for Box<T> {
    fn validate_into(&self, validator: &mut Validator) {
        (**self).validate_into(validator);
    }
}

impl<T: Validate> Validate for Option<T> {
    fn validate_into(&self, validator: &mut Validator) {
        if let Some(value) = self {
            value.validate_into(validator);
        }
    }
}

impl<T: Validate> Validate for Vec<T> {
    fn validate_into(&self, validator: &mut Validator) {
        for (index, item) in self.iter().enumerate() {
            validator.push_index(index);
            item.validate_into(validator);
            validator.pop();
        }
    }
}

/// The constraint a value broke, with the limit from the lexicon and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Constraint {
    /// A string longer than `maxLength` UTF-8 bytes.
    MaxLength {
        /// The limit.
        max: u64,
        /// The actual length in bytes.
        actual: u64,
    },
    /// A string shorter than `minLength` UTF-8 bytes.
    MinLength {
        /// The limit.
        min: u64,
        /// The actual length in bytes.
        actual: u64,
    },
    /// A string with more than `maxGraphemes` grapheme clusters.
    MaxGraphemes {
        /// The limit.
        max: u64,
        /// The actual count.
        actual: u64,
    },
    /// A string with fewer than `minGraphemes` grapheme clusters.
    MinGraphemes {
        /// The limit.
        min: u64,
        /// The actual count.
        actual: u64,
    },
    /// A byte string longer than `maxLength` bytes.
    MaxBytes {
        /// The limit.
        max: u64,
        /// The actual length.
        actual: u64,
    },
    /// A byte string shorter than `minLength` bytes.
    MinBytes {
        /// The limit.
        min: u64,
        /// The actual length.
        actual: u64,
    },
    /// An array with more than `maxLength` items.
    MaxItems {
        /// The limit.
        max: u64,
        /// The actual count.
        actual: u64,
    },
    /// An array with fewer than `minLength` items.
    MinItems {
        /// The limit.
        min: u64,
        /// The actual count.
        actual: u64,
    },
    /// An integer above `maximum`.
    Maximum {
        /// The limit.
        max: i64,
        /// The value.
        actual: i64,
    },
    /// An integer below `minimum`.
    Minimum {
        /// The limit.
        min: i64,
        /// The value.
        actual: i64,
    },
    /// A value outside a closed `enum`.
    Enum {
        /// The allowed values, as written in the lexicon.
        allowed: Vec<String>,
        /// The value found.
        actual: String,
    },
    /// A value different from the lexicon's `const`.
    Const {
        /// The required value.
        expected: String,
        /// The value found.
        actual: String,
    },
    /// A blob larger than `maxSize`.
    BlobMaxSize {
        /// The limit in bytes.
        max: u64,
        /// The blob's size.
        actual: u64,
    },
    /// A blob whose MIME type matches none of the `accept` patterns.
    BlobAccept {
        /// The accepted patterns.
        accept: Vec<String>,
        /// The blob's MIME type.
        actual: String,
    },
    /// A required field is missing.
    Required,
    /// `null` where the field is not `nullable`.
    NotNullable,
    /// A value of the wrong data-model type (e.g. a string where an integer belongs).
    Type {
        /// The type the lexicon asks for.
        expected: String,
        /// What was found.
        found: String,
    },
    /// A string that is not a valid value of its format.
    Format {
        /// The format's lexicon name.
        format: &'static str,
        /// Why the value is invalid.
        reason: String,
    },
    /// A union value whose `$type` is missing, not allowed here, or malformed.
    UnionType {
        /// What was wrong.
        reason: String,
    },
    /// A rule of the data model itself (floats, `$link`, `$bytes`, blob shape, …).
    DataModel {
        /// What was wrong.
        reason: String,
    },
    /// A reference the validator could not resolve in its catalog.
    UnresolvedRef {
        /// The reference as written.
        reference: String,
    },
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Constraint::MaxLength { max, actual } => {
                write!(f, "maxLength {max} (UTF-8 bytes) exceeded: {actual}")
            }
            Constraint::MinLength { min, actual } => {
                write!(f, "minLength {min} (UTF-8 bytes) not reached: {actual}")
            }
            Constraint::MaxGraphemes { max, actual } => {
                write!(f, "maxGraphemes {max} exceeded: {actual}")
            }
            Constraint::MinGraphemes { min, actual } => {
                write!(f, "minGraphemes {min} not reached: {actual}")
            }
            Constraint::MaxBytes { max, actual } => {
                write!(f, "maxLength {max} (bytes) exceeded: {actual}")
            }
            Constraint::MinBytes { min, actual } => {
                write!(f, "minLength {min} (bytes) not reached: {actual}")
            }
            Constraint::MaxItems { max, actual } => {
                write!(f, "maxLength {max} (items) exceeded: {actual}")
            }
            Constraint::MinItems { min, actual } => {
                write!(f, "minLength {min} (items) not reached: {actual}")
            }
            Constraint::Maximum { max, actual } => write!(f, "maximum {max} exceeded: {actual}"),
            Constraint::Minimum { min, actual } => write!(f, "minimum {min} not reached: {actual}"),
            Constraint::Enum { allowed, actual } => {
                write!(f, "enum: {actual:?} is not one of {allowed:?}")
            }
            Constraint::Const { expected, actual } => {
                write!(f, "const: expected {expected}, found {actual}")
            }
            Constraint::BlobMaxSize { max, actual } => {
                write!(f, "blob maxSize {max} exceeded: {actual} bytes")
            }
            Constraint::BlobAccept { accept, actual } => {
                write!(f, "blob accept: {actual:?} matches none of {accept:?}")
            }
            Constraint::Required => f.write_str("required field is missing"),
            Constraint::NotNullable => f.write_str("null is not allowed (field is not nullable)"),
            Constraint::Type { expected, found } => {
                write!(f, "type: expected {expected}, found {found}")
            }
            Constraint::Format { format, reason } => write!(f, "format {format}: {reason}"),
            Constraint::UnionType { reason } => write!(f, "union: {reason}"),
            Constraint::DataModel { reason } => write!(f, "data model: {reason}"),
            Constraint::UnresolvedRef { reference } => {
                write!(f, "unresolved reference {reference:?}")
            }
        }
    }
}

/// One violation: where (a JSON path such as `$.embed.images[0].alt`) and which constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// The JSON path of the offending value.
    pub path: String,
    /// The constraint it breaks.
    pub constraint: Constraint,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.constraint)
    }
}

impl std::error::Error for ValidationError {}

/// Every violation found in one value (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationErrors(Vec<ValidationError>);

impl ValidationErrors {
    /// The violations, in the order they were found.
    pub fn errors(&self) -> &[ValidationError] {
        &self.0
    }

    /// Takes the violations out.
    pub fn into_vec(self) -> Vec<ValidationError> {
        self.0
    }

    /// Builds the error from a list; `None` when the list is empty.
    pub fn from_vec(errors: Vec<ValidationError>) -> Option<ValidationErrors> {
        if errors.is_empty() {
            None
        } else {
            Some(ValidationErrors(errors))
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        write!(
            f,
            "{count} lexicon constraint violation{}",
            if count == 1 { "" } else { "s" }
        )?;
        for error in &self.0 {
            write!(f, "; {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl IntoIterator for ValidationErrors {
    type Item = ValidationError;
    type IntoIter = std::vec::IntoIter<ValidationError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[derive(Debug, Clone)]
enum Segment {
    Field(Box<str>),
    Index(usize),
}

/// Walks a value, tracking the JSON path, and collects violations.
#[derive(Debug, Default)]
pub struct Validator {
    path: Vec<Segment>,
    errors: Vec<ValidationError>,
}

impl Validator {
    /// A validator at the root (`$`).
    pub fn new() -> Validator {
        Validator::default()
    }

    /// Enters the object field `name`.
    pub fn push_field(&mut self, name: &str) {
        self.path.push(Segment::Field(name.into()));
    }

    /// Enters the array element `index`.
    pub fn push_index(&mut self, index: usize) {
        self.path.push(Segment::Index(index));
    }

    /// Leaves the innermost field or element.
    pub fn pop(&mut self) {
        self.path.pop();
    }

    /// Runs `check` inside the field `name`.
    pub fn field(&mut self, name: &str, check: impl FnOnce(&mut Validator)) {
        self.push_field(name);
        check(self);
        self.pop();
    }

    /// The current path, e.g. `$.embed.images[0].alt`.
    pub fn path(&self) -> String {
        let mut out = String::from("$");
        for segment in &self.path {
            match segment {
                Segment::Field(name) => {
                    if name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
                        && !name.is_empty()
                    {
                        out.push('.');
                        out.push_str(name);
                    } else {
                        out.push('[');
                        out.push_str(&format!("{:?}", &**name));
                        out.push(']');
                    }
                }
                Segment::Index(index) => {
                    out.push('[');
                    out.push_str(&index.to_string());
                    out.push(']');
                }
            }
        }
        out
    }

    /// Records a violation at the current path.
    pub fn report(&mut self, constraint: Constraint) {
        let path = self.path();
        self.errors.push(ValidationError { path, constraint });
    }

    /// Whether any violation has been recorded.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The violations collected so far.
    pub fn errors(&self) -> &[ValidationError] {
        &self.errors
    }

    /// Ends the walk: `Ok` when nothing was recorded.
    pub fn finish(self) -> Result<(), ValidationErrors> {
        match ValidationErrors::from_vec(self.errors) {
            None => Ok(()),
            Some(errors) => Err(errors),
        }
    }

    /// Checks a string against its length rules.
    pub fn string(&mut self, value: &str, rules: &StringRules) {
        for constraint in rules.check(value) {
            self.report(constraint);
        }
    }

    /// Checks an integer against its range, `enum` and `const` rules.
    pub fn integer(&mut self, value: i64, rules: &IntegerRules) {
        for constraint in rules.check(value) {
            self.report(constraint);
        }
    }

    /// Checks an array's item count.
    pub fn array_len(&mut self, len: usize, min: Option<u64>, max: Option<u64>) {
        for constraint in check_count(len, min, max, Count::Items) {
            self.report(constraint);
        }
    }

    /// Checks a byte string's length.
    pub fn bytes_len(&mut self, len: usize, min: Option<u64>, max: Option<u64>) {
        for constraint in check_count(len, min, max, Count::Bytes) {
            self.report(constraint);
        }
    }

    /// Checks a blob's size and MIME type.
    pub fn blob(&mut self, mime_type: &str, size: Option<u64>, rules: &BlobRules) {
        for constraint in rules.check(mime_type, size) {
            self.report(constraint);
        }
    }

    /// Checks a string against a closed `enum`.
    pub fn string_enum(&mut self, value: &str, allowed: &[&str]) {
        if !allowed.contains(&value) {
            self.report(Constraint::Enum {
                allowed: allowed.iter().map(|s| (*s).to_owned()).collect(),
                actual: value.to_owned(),
            });
        }
    }

    /// Checks that an `unknown` field holds an object, as the lexicon language requires.
    pub fn unknown_object(&mut self, value: &crate::data::Data) {
        if !matches!(value, crate::data::Data::Object(_)) {
            self.report(Constraint::Type {
                expected: "object".to_owned(),
                found: value.kind_name().to_owned(),
            });
        }
    }

    /// Checks a value against a `const`.
    pub fn constant<T: PartialEq + fmt::Debug + ?Sized>(&mut self, value: &T, expected: &T) {
        if value != expected {
            self.report(Constraint::Const {
                expected: format!("{expected:?}"),
                actual: format!("{value:?}"),
            });
        }
    }
}

/// A string that is none of the values of a closed `enum`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidEnumValue {
    type_name: &'static str,
    allowed: &'static [&'static str],
    value: String,
}

impl InvalidEnumValue {
    /// The error for `value`, which is not one of `allowed` (the values of `type_name`).
    pub fn new(
        type_name: &'static str,
        allowed: &'static [&'static str],
        value: &str,
    ) -> InvalidEnumValue {
        InvalidEnumValue {
            type_name,
            allowed,
            value: value.to_owned(),
        }
    }

    /// The rejected value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for InvalidEnumValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a value of {} (allowed: {:?})",
            self.value, self.type_name, self.allowed
        )
    }
}

impl std::error::Error for InvalidEnumValue {}

/// The length rules of a lexicon `string` (bytes are UTF-8 bytes, graphemes extended clusters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StringRules {
    /// `minLength` in UTF-8 bytes.
    pub min_length: Option<u64>,
    /// `maxLength` in UTF-8 bytes.
    pub max_length: Option<u64>,
    /// `minGraphemes`.
    pub min_graphemes: Option<u64>,
    /// `maxGraphemes`.
    pub max_graphemes: Option<u64>,
}

impl StringRules {
    /// No rules.
    pub const NONE: StringRules = StringRules {
        min_length: None,
        max_length: None,
        min_graphemes: None,
        max_graphemes: None,
    };

    /// The violated rules (empty when the string is fine).
    pub fn check(&self, value: &str) -> Vec<Constraint> {
        let mut out = Vec::new();
        let bytes = value.len() as u64;
        if let Some(max) = self.max_length
            && bytes > max
        {
            out.push(Constraint::MaxLength { max, actual: bytes });
        }
        if let Some(min) = self.min_length
            && bytes < min
        {
            out.push(Constraint::MinLength { min, actual: bytes });
        }
        if self.min_graphemes.is_some() || self.max_graphemes.is_some() {
            // Every grapheme is at least one byte, so a short string cannot break maxGraphemes
            // and a long one cannot break minGraphemes: skip the count when the answer is known.
            let needs_count = self.max_graphemes.is_some_and(|max| bytes > max)
                || self.min_graphemes.is_some_and(|min| min > 0);
            if needs_count {
                let count = grapheme_count(value);
                if let Some(max) = self.max_graphemes
                    && count > max
                {
                    out.push(Constraint::MaxGraphemes { max, actual: count });
                }
                if let Some(min) = self.min_graphemes
                    && count < min
                {
                    out.push(Constraint::MinGraphemes { min, actual: count });
                }
            }
        }
        out
    }
}

/// The number of extended grapheme clusters in `value`.
pub fn grapheme_count(value: &str) -> u64 {
    value.graphemes(true).count() as u64
}

/// The rules of a lexicon `integer`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntegerRules<'a> {
    /// `minimum` (inclusive).
    pub minimum: Option<i64>,
    /// `maximum` (inclusive).
    pub maximum: Option<i64>,
    /// A closed `enum`.
    pub allowed: Option<&'a [i64]>,
    /// A `const`.
    pub constant: Option<i64>,
}

impl IntegerRules<'_> {
    /// No rules.
    pub const NONE: IntegerRules<'static> = IntegerRules {
        minimum: None,
        maximum: None,
        allowed: None,
        constant: None,
    };

    /// The violated rules (empty when the value is fine).
    pub fn check(&self, value: i64) -> Vec<Constraint> {
        let mut out = Vec::new();
        if let Some(max) = self.maximum
            && value > max
        {
            out.push(Constraint::Maximum { max, actual: value });
        }
        if let Some(min) = self.minimum
            && value < min
        {
            out.push(Constraint::Minimum { min, actual: value });
        }
        if let Some(allowed) = self.allowed
            && !allowed.contains(&value)
        {
            out.push(Constraint::Enum {
                allowed: allowed.iter().map(|v| v.to_string()).collect(),
                actual: value.to_string(),
            });
        }
        if let Some(expected) = self.constant
            && value != expected
        {
            out.push(Constraint::Const {
                expected: expected.to_string(),
                actual: value.to_string(),
            });
        }
        out
    }
}

/// The rules of a lexicon `blob`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobRules<'a> {
    /// `accept` MIME patterns (`image/png`, `image/*`, `*/*`).
    pub accept: Option<&'a [&'a str]>,
    /// `maxSize` in bytes.
    pub max_size: Option<u64>,
}

impl BlobRules<'_> {
    /// The violated rules. `size` is `None` for legacy blobs, which carry no size.
    pub fn check(&self, mime_type: &str, size: Option<u64>) -> Vec<Constraint> {
        let mut out = Vec::new();
        if let (Some(max), Some(size)) = (self.max_size, size)
            && size > max
        {
            out.push(Constraint::BlobMaxSize { max, actual: size });
        }
        if let Some(accept) = self.accept
            && !accept
                .iter()
                .any(|pattern| mime_matches(pattern, mime_type))
        {
            out.push(Constraint::BlobAccept {
                accept: accept.iter().map(|s| (*s).to_owned()).collect(),
                actual: mime_type.to_owned(),
            });
        }
        out
    }
}

/// Whether `mime_type` matches an `accept` pattern: exactly, by a `type/*` prefix, or `*/*`.
/// Matching is case-sensitive, as in the reference implementation.
pub fn mime_matches(pattern: &str, mime_type: &str) -> bool {
    if pattern == "*/*" {
        return true;
    }
    match pattern.strip_suffix("/*") {
        Some(prefix) => mime_type
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1),
        None => pattern == mime_type,
    }
}

#[derive(Clone, Copy)]
enum Count {
    Items,
    Bytes,
}

fn check_count(len: usize, min: Option<u64>, max: Option<u64>, unit: Count) -> Vec<Constraint> {
    let mut out = Vec::new();
    let actual = len as u64;
    if let Some(max) = max
        && actual > max
    {
        out.push(match unit {
            Count::Items => Constraint::MaxItems { max, actual },
            Count::Bytes => Constraint::MaxBytes { max, actual },
        });
    }
    if let Some(min) = min
        && actual < min
    {
        out.push(match unit {
            Count::Items => Constraint::MinItems { min, actual },
            Count::Bytes => Constraint::MinBytes { min, actual },
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_lengths_are_utf8_bytes_and_graphemes() {
        let rules = StringRules {
            max_length: Some(5),
            max_graphemes: Some(2),
            ..StringRules::NONE
        };
        assert!(rules.check("ab").is_empty());
        // "é" is two bytes; three of them is 6 bytes and 3 graphemes.
        let errs = rules.check("ééé");
        assert_eq!(
            errs,
            vec![
                Constraint::MaxLength { max: 5, actual: 6 },
                Constraint::MaxGraphemes { max: 2, actual: 3 }
            ]
        );
        // A family emoji is one grapheme made of many code points.
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}";
        assert_eq!(grapheme_count(family), 1);
        let min = StringRules {
            min_graphemes: Some(2),
            ..StringRules::NONE
        };
        assert_eq!(
            min.check(family),
            vec![Constraint::MinGraphemes { min: 2, actual: 1 }]
        );
    }

    #[test]
    fn integers() {
        let rules = IntegerRules {
            minimum: Some(10),
            maximum: Some(20),
            allowed: Some(&[10, 15]),
            constant: None,
        };
        assert!(rules.check(15).is_empty());
        assert_eq!(rules.check(21).len(), 2);
        assert!(matches!(
            rules.check(9)[0],
            Constraint::Minimum { min: 10, actual: 9 }
        ));
        let c = IntegerRules {
            constant: Some(3),
            ..IntegerRules::NONE
        };
        assert!(c.check(3).is_empty());
        assert_eq!(c.check(4).len(), 1);
    }

    #[test]
    fn mime_patterns() {
        assert!(mime_matches("image/*", "image/png"));
        assert!(!mime_matches("image/*", "image/"));
        assert!(!mime_matches("image/*", "imagex/png"));
        assert!(!mime_matches("image/*", "video/mp4"));
        assert!(mime_matches("*/*", "anything/else"));
        assert!(mime_matches("image/png", "image/png"));
        assert!(!mime_matches("image/png", "IMAGE/PNG"));
        let rules = BlobRules {
            accept: Some(&["image/*"]),
            max_size: Some(20),
        };
        assert!(rules.check("image/png", Some(20)).is_empty());
        assert_eq!(rules.check("text/plain", Some(21)).len(), 2);
        assert!(rules.check("image/png", None).is_empty());
    }

    #[test]
    fn paths_and_collection() {
        let mut v = Validator::new();
        v.field("embed", |v| {
            v.field("images", |v| {
                v.push_index(0);
                v.field("alt", |v| v.report(Constraint::Required));
                v.pop();
            })
        });
        v.field("cid-link", |v| v.report(Constraint::NotNullable));
        let errs = v.finish().unwrap_err();
        assert_eq!(errs.errors()[0].path, "$.embed.images[0].alt");
        assert_eq!(errs.errors()[1].path, "$[\"cid-link\"]");
        assert!(
            errs.to_string()
                .starts_with("2 lexicon constraint violations")
        );
    }

    #[test]
    fn counts() {
        let mut v = Validator::new();
        v.array_len(6, Some(2), Some(5));
        v.array_len(1, Some(2), Some(5));
        v.bytes_len(3, Some(10), None);
        let errs = v.finish().unwrap_err().into_vec();
        assert_eq!(errs.len(), 3);
        assert!(matches!(errs[2].constraint, Constraint::MinBytes { .. }));
    }
}
