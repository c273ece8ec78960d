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
//! (not just the first) as a [`ValidationError`] naming the path and the [`Constraint`]. Each
//! constraint has a lexicon rule name ([`Constraint::name`]: `"maxLength"`, `"required"`,
//! `"$type"`, …) to match on.
//!
//! Grapheme lengths count extended grapheme clusters with `unicode-segmentation`, the crate the
//! Rust ecosystem uses for Unicode text segmentation (UAX #29).

use std::fmt;

use unicode_segmentation::UnicodeSegmentation;

use crate::data::{Data, DataError};
use crate::format::{self, Format, FormatError};

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
///
/// [`Constraint::name`] gives the lexicon name of the rule; `Display` writes that name, the
/// limit and what was found (`maxLength 300: string is 301 UTF-8 bytes long`).
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
        /// The allowed values, written as literals (strings quoted: `"a"`, integers bare: `3`).
        allowed: Vec<String>,
        /// The value found, written the same way.
        actual: String,
    },
    /// A value different from the lexicon's `const`.
    Const {
        /// The required value, written as a literal (strings quoted).
        expected: String,
        /// The value found, written the same way.
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
    /// A required field (or query parameter) is missing.
    Required,
    /// `null` where the field is not `nullable` (query parameters are never nullable).
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
    /// A `$type` that is missing where one is required, does not name the expected
    /// definition, ends in `#main`, or names something that is not an object or record.
    TypeTag {
        /// What was wrong.
        reason: String,
    },
    /// The `$type` of a closed union is none of its refs.
    ClosedUnion {
        /// The `$type` found.
        found: String,
        /// The union's refs, in their full form.
        allowed: Vec<String>,
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
        /// Why it could not be resolved.
        reason: String,
    },
    /// Data validated against a `token`, which has no data representation.
    Token {
        /// The token's full name (`nsid#name`).
        name: String,
    },
    /// The schema does not describe this kind of data (not a record, no input body, a non-JSON
    /// encoding, a query where a data type belongs, …).
    SchemaMismatch {
        /// What was asked for and what the schema is.
        reason: String,
    },
    /// A query-string parameter that cannot be read as its declared type.
    UnparsableParam {
        /// The declared type (`integer`, `boolean`).
        expected: &'static str,
        /// The text found.
        raw: String,
    },
    /// A query-string parameter given more than once although it is not an array.
    RepeatedParam {
        /// How many times it was given.
        count: u64,
    },
}

impl Constraint {
    /// The lexicon name of the broken rule: `"maxLength"` (string, bytes and array lengths
    /// alike), `"minGraphemes"`, `"minimum"`, `"enum"`, `"const"`, `"maxSize"`, `"accept"`,
    /// `"required"`, `"nullable"`, `"type"`, `"format"`, `"$type"`, `"closed"`,
    /// `"data-model"`, `"ref"`, `"token"`, `"schema"` or `"params"`.
    pub fn name(&self) -> &'static str {
        match self {
            Constraint::MaxLength { .. }
            | Constraint::MaxBytes { .. }
            | Constraint::MaxItems { .. } => "maxLength",
            Constraint::MinLength { .. }
            | Constraint::MinBytes { .. }
            | Constraint::MinItems { .. } => "minLength",
            Constraint::MaxGraphemes { .. } => "maxGraphemes",
            Constraint::MinGraphemes { .. } => "minGraphemes",
            Constraint::Maximum { .. } => "maximum",
            Constraint::Minimum { .. } => "minimum",
            Constraint::Enum { .. } => "enum",
            Constraint::Const { .. } => "const",
            Constraint::BlobMaxSize { .. } => "maxSize",
            Constraint::BlobAccept { .. } => "accept",
            Constraint::Required => "required",
            Constraint::NotNullable => "nullable",
            Constraint::Type { .. } => "type",
            Constraint::Format { .. } => "format",
            Constraint::TypeTag { .. } => "$type",
            Constraint::ClosedUnion { .. } => "closed",
            Constraint::DataModel { .. } => "data-model",
            Constraint::UnresolvedRef { .. } => "ref",
            Constraint::Token { .. } => "token",
            Constraint::SchemaMismatch { .. } => "schema",
            Constraint::UnparsableParam { .. } | Constraint::RepeatedParam { .. } => "params",
        }
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name();
        match self {
            Constraint::MaxLength { max: n, actual } | Constraint::MinLength { min: n, actual } => {
                write!(f, "{name} {n}: string is {actual} UTF-8 bytes long")
            }
            Constraint::MaxGraphemes { max: n, actual }
            | Constraint::MinGraphemes { min: n, actual } => {
                write!(f, "{name} {n}: string has {actual} graphemes")
            }
            Constraint::MaxBytes { max: n, actual } | Constraint::MinBytes { min: n, actual } => {
                write!(f, "{name} {n}: {actual} bytes")
            }
            Constraint::MaxItems { max: n, actual } | Constraint::MinItems { min: n, actual } => {
                write!(f, "{name} {n}: array has {actual} items")
            }
            Constraint::Maximum { max: n, actual } | Constraint::Minimum { min: n, actual } => {
                write!(f, "{name} {n}: found {actual}")
            }
            Constraint::Enum { allowed, actual } => {
                write!(f, "{name}: {actual} is not one of [{}]", allowed.join(", "))
            }
            Constraint::Const { expected, actual } => {
                write!(f, "{name}: expected {expected}, found {actual}")
            }
            Constraint::BlobMaxSize { max, actual } => {
                write!(f, "{name} {max}: blob is {actual} bytes")
            }
            Constraint::BlobAccept { accept, actual } => {
                write!(f, "{name}: MIME type {actual:?} matches none of {accept:?}")
            }
            Constraint::Required => write!(f, "{name}: missing"),
            Constraint::NotNullable => write!(f, "{name}: null is not allowed here"),
            Constraint::Type { expected, found } => {
                write!(f, "{name}: expected {expected}, found {found}")
            }
            Constraint::Format { format, reason } => write!(f, "{name} {format}: {reason}"),
            Constraint::TypeTag { reason }
            | Constraint::DataModel { reason }
            | Constraint::SchemaMismatch { reason } => write!(f, "{name}: {reason}"),
            Constraint::ClosedUnion { found, allowed } => {
                write!(f, "{name}: $type {found:?} is not one of {allowed:?}")
            }
            Constraint::UnresolvedRef { reference, reason } => {
                write!(f, "{name}: cannot resolve {reference:?}: {reason}")
            }
            Constraint::Token { name: token } => write!(
                f,
                "{name}: {token} is a token, which has no data representation"
            ),
            Constraint::UnparsableParam { expected, raw } => {
                write!(f, "{name}: expected {expected}, found {raw:?}")
            }
            Constraint::RepeatedParam { count } => {
                write!(f, "{name}: given {count} times but not an array")
            }
        }
    }
}

impl From<FormatError> for Constraint {
    fn from(error: FormatError) -> Constraint {
        Constraint::Format {
            format: error.format().lexicon_name(),
            reason: error.to_string(),
        }
    }
}

/// One violation: where (a JSON path such as `$.embed.images[0].alt`) and which constraint.
///
/// `Display` writes `path: constraint`, e.g. `$.text: maxLength 300: string is 301 UTF-8 bytes
/// long`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// The JSON path of the offending value (`$` is the whole value).
    pub path: String,
    /// The constraint it breaks.
    pub constraint: Constraint,
}

impl ValidationError {
    /// A violation of `constraint` at `path`.
    pub fn new(path: impl Into<String>, constraint: Constraint) -> ValidationError {
        ValidationError {
            path: path.into(),
            constraint,
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.constraint)
    }
}

impl std::error::Error for ValidationError {}

impl From<DataError> for ValidationError {
    /// A data-model violation at the path where the data-model layer found it.
    fn from(error: DataError) -> ValidationError {
        let path = if error.path().is_empty() {
            "$"
        } else {
            error.path()
        };
        ValidationError::new(
            path,
            Constraint::DataModel {
                reason: error.kind().to_string(),
            },
        )
    }
}

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

    /// Whether any violation is at `path` with a rule named `rule` (see [`Constraint::name`]).
    pub fn has(&self, path: &str, rule: &str) -> bool {
        self.0
            .iter()
            .any(|e| e.path == path && e.constraint.name() == rule)
    }
}

impl From<ValidationError> for ValidationErrors {
    fn from(error: ValidationError) -> ValidationErrors {
        ValidationErrors(vec![error])
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

/// One step of a JSON path: an object key or an array index.
#[derive(Debug, Clone)]
pub(crate) enum PathSegment {
    Key(String),
    Index(usize),
}

impl PathSegment {
    /// Appends the step: `.key`, `["odd key"]` or `[3]`.
    pub(crate) fn write_to(&self, out: &mut String) {
        match self {
            PathSegment::Key(key) => write_key(out, key),
            PathSegment::Index(index) => {
                out.push('[');
                out.push_str(&index.to_string());
                out.push(']');
            }
        }
    }
}

/// Appends an object key to a JSON path: `.key`, or `["key"]` (a JSON string literal) when the
/// key is not identifier-like (`cid-link`, `9`, the empty key).
fn write_key(out: &mut String, key: &str) {
    let mut chars = key.chars();
    let plain = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if plain {
        out.push('.');
        out.push_str(key);
    } else {
        out.push('[');
        out.push_str(&serde_json::Value::from(key).to_string());
        out.push(']');
    }
}

/// `path` with the object key `key` appended: `path_key("$", "embed") == "$.embed"`,
/// `path_key("$", "cid-link") == "$[\"cid-link\"]"`.
pub fn path_key(path: &str, key: &str) -> String {
    let mut out = path.to_owned();
    write_key(&mut out, key);
    out
}

/// Walks a value, tracking the JSON path, and collects violations.
#[derive(Debug, Default)]
pub struct Validator {
    path: Vec<PathSegment>,
    errors: Vec<ValidationError>,
}

impl Validator {
    /// A validator at the root (`$`).
    pub fn new() -> Validator {
        Validator::default()
    }

    /// Enters the object field `name`.
    pub fn push_field(&mut self, name: &str) {
        self.path.push(PathSegment::Key(name.to_owned()));
    }

    /// Enters the array element `index`.
    pub fn push_index(&mut self, index: usize) {
        self.path.push(PathSegment::Index(index));
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

    /// The current path, e.g. `$.embed.images[0].alt` (keys that are not identifier-like are
    /// written as JSON strings: `$["cid-link"]`).
    pub fn path(&self) -> String {
        let mut out = String::from("$");
        for segment in &self.path {
            segment.write_to(&mut out);
        }
        out
    }

    /// Records a violation at the current path.
    pub fn report(&mut self, constraint: Constraint) {
        let path = self.path();
        self.errors.push(ValidationError { path, constraint });
    }

    /// Records every violation of `constraints` at the current path.
    pub fn report_all(&mut self, constraints: impl IntoIterator<Item = Constraint>) {
        for constraint in constraints {
            self.report(constraint);
        }
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
        self.report_all(rules.check(value));
    }

    /// Checks a string against its `enum` and `const`.
    pub fn string_choice(&mut self, value: &str, rules: &StringChoice) {
        self.report_all(rules.check(value));
    }

    /// Checks a string against its lexicon `format`.
    pub fn format(&mut self, value: &str, format: Format) {
        if let Err(error) = format::validate(format, value) {
            self.report(error.into());
        }
    }

    /// Checks an integer against its range, `enum` and `const` rules.
    pub fn integer(&mut self, value: i64, rules: &IntegerRules) {
        self.report_all(rules.check(value));
    }

    /// Checks an array's item count.
    pub fn array_len(&mut self, len: usize, min: Option<u64>, max: Option<u64>) {
        self.report_all(check_count(len, min, max, Count::Items));
    }

    /// Checks a byte string's length.
    pub fn bytes_len(&mut self, len: usize, min: Option<u64>, max: Option<u64>) {
        self.report_all(check_count(len, min, max, Count::Bytes));
    }

    /// Checks a blob's size and MIME type.
    pub fn blob(&mut self, mime_type: &str, size: Option<u64>, rules: &BlobRules) {
        self.report_all(rules.check(mime_type, size));
    }

    /// Checks a string against a closed `enum`.
    pub fn string_enum(&mut self, value: &str, allowed: &[&str]) {
        self.string_choice(
            value,
            &StringChoice {
                allowed: Some(allowed),
                constant: None,
            },
        );
    }

    /// Records that `found` is not of the data-model type `expected` (`"object"`, `"string"`,
    /// `"object with $type"`, …).
    pub fn wrong_type(&mut self, expected: &str, found: &Data) {
        self.report(Constraint::Type {
            expected: expected.to_owned(),
            found: found.kind_name().to_owned(),
        });
    }

    /// Checks that an `unknown` field holds an object, as the lexicon language requires.
    pub fn unknown_object(&mut self, value: &Data) {
        if !matches!(value, Data::Object(_)) {
            self.wrong_type("object", value);
        }
    }

    /// Checks a value against a `const`.
    pub fn constant<T: PartialEq + fmt::Debug + ?Sized>(&mut self, value: &T, expected: &T) {
        if value != expected {
            self.report(const_mismatch(expected, value));
        }
    }
}

/// The `const` violation for `actual` where `expected` is required, both written as literals.
fn const_mismatch<T: fmt::Debug + ?Sized>(expected: &T, actual: &T) -> Constraint {
    Constraint::Const {
        expected: format!("{expected:?}"),
        actual: format!("{actual:?}"),
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

/// The value rules of a lexicon `string`: a closed `enum` and a `const` (`knownValues` are open
/// and never checked).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StringChoice<'a> {
    /// A closed `enum`.
    pub allowed: Option<&'a [&'a str]>,
    /// A `const`.
    pub constant: Option<&'a str>,
}

impl StringChoice<'_> {
    /// No rules.
    pub const NONE: StringChoice<'static> = StringChoice {
        allowed: None,
        constant: None,
    };

    /// The violated rules (empty when the string is fine).
    pub fn check(&self, value: &str) -> Vec<Constraint> {
        let mut out = Vec::new();
        if let Some(allowed) = self.allowed
            && !allowed.contains(&value)
        {
            out.push(Constraint::Enum {
                allowed: allowed.iter().map(|s| format!("{s:?}")).collect(),
                actual: format!("{value:?}"),
            });
        }
        if let Some(expected) = self.constant
            && value != expected
        {
            out.push(const_mismatch(expected, value));
        }
        out
    }
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
            out.push(const_mismatch(&expected, &value));
        }
        out
    }
}

/// The rules of a lexicon `blob`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobRules<'a> {
    /// `accept` MIME patterns (`image/png`, `image/*`, `*/*`). An empty list, like a missing
    /// one, accepts every MIME type (as the Go reference validator does).
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
            && !accept.is_empty()
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
///
/// As in the reference implementations (Go and TypeScript), `type/*` is a plain prefix match on
/// `type/`, so it also matches `type/` with an empty subtype; matching is case-sensitive; an
/// empty MIME type matches nothing; other wildcards (`*`, `text/ht*`) are not globs and only
/// match themselves.
pub fn mime_matches(pattern: &str, mime_type: &str) -> bool {
    if mime_type.is_empty() {
        return false;
    }
    if pattern == "*/*" {
        return true;
    }
    match pattern.strip_suffix('*') {
        Some(prefix) if prefix.len() > 1 && prefix.ends_with('/') => mime_type.starts_with(prefix),
        _ => pattern == mime_type,
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
mod tests;

/// A data-model value in a place that takes any object (lexicon `unknown`, a JSON body without a
/// schema) must be an object.
impl Validate for crate::data::Data {
    fn validate_into(&self, validator: &mut Validator) {
        validator.unknown_object(self);
    }
}
