//! Runtime validation of untyped data (records, XRPC params and bodies, subscription messages)
//! against the lexicons of a [`Catalog`] (lexicon-rules.md §5).
//!
//! Validation runs in two layers. First the whole value is converted with
//! [`Data::from_json`], which enforces the data-model rules (no floats, well-formed `$bytes`,
//! `$link` and blobs, non-empty string `$type`); data that fails there is entirely invalid and
//! that single error is returned. Then the schema is applied and **every** failure is collected,
//! each with the JSON path of the value (`$.embed.images[0].alt`) and the rule it breaks.
//!
//! Grapheme lengths count extended grapheme clusters with `unicode-segmentation` (the crate the
//! Rust ecosystem uses for UAX #29); string formats are checked with
//! [`atlex_types::format::validate`].

use std::collections::BTreeMap;
use std::fmt;

use atlex_types::data::Data;
use atlex_types::format::{self, Format};
use serde_json::{Map, Value};
use unicode_segmentation::UnicodeSegmentation;

use crate::catalog::{Catalog, Resolved};
use crate::check::union_target_ok;
use crate::model::*;

/// The rule a value breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// The data-model layer rejected the value (float, malformed `$bytes`/`$link`/blob,
    /// bad `$type`, …).
    DataModel,
    /// The value has the wrong data type; holds the expected type.
    Type(&'static str),
    /// A required property is missing.
    Required,
    /// `null` for a property that is not listed in `nullable`.
    Nullable,
    /// The value differs from `const`.
    Const,
    /// The value is not one of `enum`.
    Enum,
    /// Integer below `minimum`.
    Minimum(i64),
    /// Integer above `maximum`.
    Maximum(i64),
    /// String (UTF-8 bytes), bytes or array shorter than `minLength`.
    MinLength(u64),
    /// String (UTF-8 bytes), bytes or array longer than `maxLength`.
    MaxLength(u64),
    /// String with fewer grapheme clusters than `minGraphemes`.
    MinGraphemes(u64),
    /// String with more grapheme clusters than `maxGraphemes`.
    MaxGraphemes(u64),
    /// String that is not a valid value of its `format`.
    Format(Format),
    /// Blob larger than `maxSize`.
    MaxSize(u64),
    /// Blob whose MIME type matches none of `accept`.
    Accept,
    /// `$type` missing, not matching, or with a `#main` suffix.
    TypeTag,
    /// `$type` of a closed union that is not one of its refs.
    ClosedUnion,
    /// A schema reference that cannot be resolved in the catalog.
    Unresolved,
    /// Data validated against a `token`, which has no data representation.
    Token,
    /// The schema does not describe this kind of data (not a record, no input, not JSON, …).
    Schema,
    /// A query-string parameter that cannot be parsed as its declared type.
    Param,
}

impl Rule {
    /// The lexicon name of the rule or constraint (`"maxLength"`, `"required"`, `"type"`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Rule::DataModel => "data-model",
            Rule::Type(_) => "type",
            Rule::Required => "required",
            Rule::Nullable => "nullable",
            Rule::Const => "const",
            Rule::Enum => "enum",
            Rule::Minimum(_) => "minimum",
            Rule::Maximum(_) => "maximum",
            Rule::MinLength(_) => "minLength",
            Rule::MaxLength(_) => "maxLength",
            Rule::MinGraphemes(_) => "minGraphemes",
            Rule::MaxGraphemes(_) => "maxGraphemes",
            Rule::Format(_) => "format",
            Rule::MaxSize(_) => "maxSize",
            Rule::Accept => "accept",
            Rule::TypeTag => "$type",
            Rule::ClosedUnion => "closed",
            Rule::Unresolved => "ref",
            Rule::Token => "token",
            Rule::Schema => "schema",
            Rule::Param => "params",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        match self {
            Rule::Type(t) => write!(f, " {t}"),
            Rule::Minimum(n) | Rule::Maximum(n) => write!(f, " {n}"),
            Rule::MinLength(n)
            | Rule::MaxLength(n)
            | Rule::MinGraphemes(n)
            | Rule::MaxGraphemes(n)
            | Rule::MaxSize(n) => write!(f, " {n}"),
            Rule::Format(fm) => write!(f, " {}", fm.lexicon_name()),
            _ => Ok(()),
        }
    }
}

/// One validation failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// JSON path of the offending value (`$` is the whole value), e.g. `$.embed.images[0].alt`.
    pub path: String,
    /// The rule broken, with its limit.
    pub rule: Rule,
    /// Details (the actual value or length, the reason from the format check, …).
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.path, self.rule, self.message)
    }
}

impl std::error::Error for ValidationError {}

/// All validation failures of one value (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl ValidationErrors {
    /// The failures.
    pub fn errors(&self) -> &[ValidationError] {
        &self.0
    }

    /// Whether any failure is at `path` with a rule named `rule` (see [`Rule::name`]).
    pub fn has(&self, path: &str, rule: &str) -> bool {
        self.0
            .iter()
            .any(|e| e.path == path && e.rule.name() == rule)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => one.fmt(f),
            many => {
                write!(f, "{} validation errors:", many.len())?;
                for e in many {
                    write!(f, "\n  {e}")?;
                }
                Ok(())
            }
        }
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

/// Options for validation. The defaults are the strict behaviour for data being written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidateOptions {
    /// Accept the legacy blob form `{"cid": "…", "mimeType": "…"}` (read-only, old records).
    pub allow_legacy_blobs: bool,
    /// Accept a union `$type` ending in `#main` as the bare NSID (lenient reading of old data).
    pub allow_main_suffix: bool,
    /// Fail when an open union's `$type` is not one of its refs and cannot be resolved in the
    /// catalog (by default such values are accepted without further checks).
    pub strict_unresolved: bool,
}

impl ValidateOptions {
    /// The lenient options for reading data written by others: legacy blobs and `#main`
    /// suffixes are accepted.
    pub fn lenient() -> Self {
        ValidateOptions {
            allow_legacy_blobs: true,
            allow_main_suffix: true,
            strict_unresolved: false,
        }
    }
}

/// Whether the MIME type `mime` matches the blob `accept` pattern (exact, `type/*` or `*/*`;
/// case-sensitive).
pub fn mime_matches(pattern: &str, mime: &str) -> bool {
    if pattern == "*/*" {
        return true;
    }
    match pattern.strip_suffix('*') {
        Some(prefix) if prefix.ends_with('/') => mime.starts_with(prefix),
        _ => pattern == mime,
    }
}

/// Appends an object key to a JSON path: `.key`, or `["key"]` when it is not identifier-like.
pub fn path_key(path: &str, key: &str) -> String {
    let ident = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if ident {
        format!("{path}.{key}")
    } else {
        let quoted = serde_json::to_string(key).unwrap_or_else(|_| format!("{key:?}"));
        format!("{path}[{quoted}]")
    }
}

fn kind(d: &Data) -> &'static str {
    match d {
        Data::Null => "null",
        Data::Boolean(_) => "boolean",
        Data::Integer(_) => "integer",
        Data::String(_) => "string",
        Data::Bytes(_) => "bytes",
        Data::Link(_) => "cid-link",
        Data::Blob(_) => "blob",
        Data::Array(_) => "array",
        Data::Object(_) => "object",
    }
}

/// How a def was reached, which decides the `$type` rule for objects.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    /// Through a `ref`: a `$type` is optional but must match when present.
    Ref,
    /// Through a union whose `$type` already matched (or a subscription frame header).
    Tagged,
}

struct Validator<'a> {
    cat: &'a Catalog,
    opts: &'a ValidateOptions,
    errors: Vec<ValidationError>,
}

impl<'a> Validator<'a> {
    fn new(cat: &'a Catalog, opts: &'a ValidateOptions) -> Self {
        Validator {
            cat,
            opts,
            errors: Vec::new(),
        }
    }

    fn fail(&mut self, path: &str, rule: Rule, message: impl Into<String>) {
        self.errors.push(ValidationError {
            path: path.to_owned(),
            rule,
            message: message.into(),
        });
    }

    fn wrong_type(&mut self, path: &str, expected: &'static str, data: &Data) {
        self.fail(
            path,
            Rule::Type(expected),
            format!("expected {expected}, found {}", kind(data)),
        );
    }

    fn finish(self) -> Result<(), ValidationErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.errors))
        }
    }

    fn def(&mut self, target: Resolved<'_>, data: &Data, path: &str, via: Via) {
        match target.def {
            Def::Record(r) => {
                if via == Via::Ref {
                    self.ref_type_tag(&target, data, path);
                }
                self.object(target.nsid, &r.record, data, path);
            }
            Def::Object(o) => {
                if via == Via::Ref {
                    self.ref_type_tag(&target, data, path);
                }
                self.object(target.nsid, o, data, path);
            }
            Def::Token(_) => self.fail(
                path,
                Rule::Token,
                format!(
                    "{} is a token, which has no data representation",
                    target.type_name()
                ),
            ),
            Def::Query(_) | Def::Procedure(_) | Def::Subscription(_) | Def::PermissionSet(_) => {
                self.fail(
                    path,
                    Rule::Schema,
                    format!(
                        "{} is a {}, not a data type",
                        target.type_name(),
                        target.def.type_name()
                    ),
                )
            }
            Def::Boolean(x) => self.boolean(x, data, path),
            Def::Integer(x) => self.integer(x, data, path),
            Def::String(x) => self.string(x, data, path),
            Def::Bytes(x) => self.bytes(x, data, path),
            Def::CidLink(_) => self.cid_link(data, path),
            Def::Blob(x) => self.blob(x, data, path),
            Def::Array(x) => self.array(target.nsid, x, data, path),
        }
    }

    /// An object reached through a `ref` may carry `$type`; if it does, it must name the target.
    fn ref_type_tag(&mut self, target: &Resolved<'_>, data: &Data, path: &str) {
        if let Data::Object(map) = data
            && let Some(t) = map.get("$type")
        {
            let expected = target.type_name();
            match t {
                Data::String(s) if *s == expected => {}
                Data::String(s) => self.fail(
                    &path_key(path, "$type"),
                    Rule::TypeTag,
                    format!("$type {s:?} does not match the referenced definition {expected:?}"),
                ),
                other => self.wrong_type(&path_key(path, "$type"), "string", other),
            }
        }
    }

    fn field(&mut self, base: &str, f: &FieldType, data: &Data, path: &str) {
        match f {
            FieldType::Boolean(x) => self.boolean(x, data, path),
            FieldType::Integer(x) => self.integer(x, data, path),
            FieldType::String(x) => self.string(x, data, path),
            FieldType::Bytes(x) => self.bytes(x, data, path),
            FieldType::CidLink(_) => self.cid_link(data, path),
            FieldType::Blob(x) => self.blob(x, data, path),
            FieldType::Array(x) => self.array(base, x, data, path),
            FieldType::Object(x) => self.object(base, x, data, path),
            FieldType::Ref(x) => self.reference(base, &x.reference, data, path),
            FieldType::Union(x) => self.union(base, x, data, path),
            FieldType::Unknown(_) => {
                if !matches!(data, Data::Object(_)) {
                    self.wrong_type(path, "object", data);
                }
            }
        }
    }

    fn object(&mut self, base: &str, o: &ObjectSchema, data: &Data, path: &str) {
        let Data::Object(map) = data else {
            return self.wrong_type(path, "object", data);
        };
        for name in o.required.iter().flatten() {
            if !map.contains_key(name) {
                self.fail(
                    &path_key(path, name),
                    Rule::Required,
                    "required property is missing",
                );
            }
        }
        for (name, field) in &o.properties {
            let Some(value) = map.get(name) else { continue };
            let p = path_key(path, name);
            if matches!(value, Data::Null) {
                if !o.is_nullable(name) {
                    self.fail(
                        &p,
                        Rule::Nullable,
                        "null is not allowed (not listed in nullable)",
                    );
                }
                continue;
            }
            self.field(base, field, value, &p);
        }
    }

    fn boolean(&mut self, x: &BooleanSchema, data: &Data, path: &str) {
        let Data::Boolean(b) = data else {
            return self.wrong_type(path, "boolean", data);
        };
        if let Some(c) = x.const_value
            && c != *b
        {
            self.fail(path, Rule::Const, format!("expected {c}, found {b}"));
        }
    }

    fn integer(&mut self, x: &IntegerSchema, data: &Data, path: &str) {
        let Data::Integer(i) = data else {
            return self.wrong_type(path, "integer", data);
        };
        self.integer_value(x, *i, path);
    }

    fn integer_value(&mut self, x: &IntegerSchema, i: i64, path: &str) {
        if let Some(c) = x.const_value
            && c != i
        {
            self.fail(path, Rule::Const, format!("expected {c}, found {i}"));
        }
        if let Some(e) = &x.enum_values
            && !e.contains(&i)
        {
            self.fail(path, Rule::Enum, format!("{i} is not one of {e:?}"));
        }
        if let Some(min) = x.minimum
            && i < min
        {
            self.fail(path, Rule::Minimum(min), format!("{i} is less than {min}"));
        }
        if let Some(max) = x.maximum
            && i > max
        {
            self.fail(
                path,
                Rule::Maximum(max),
                format!("{i} is greater than {max}"),
            );
        }
    }

    fn string(&mut self, x: &StringSchema, data: &Data, path: &str) {
        let Data::String(s) = data else {
            return self.wrong_type(path, "string", data);
        };
        self.string_value(x, s, path);
    }

    fn string_value(&mut self, x: &StringSchema, s: &str, path: &str) {
        if let Some(c) = &x.const_value
            && c != s
        {
            self.fail(path, Rule::Const, format!("expected {c:?}, found {s:?}"));
        }
        if let Some(e) = &x.enum_values
            && !e.iter().any(|v| v == s)
        {
            self.fail(path, Rule::Enum, format!("{s:?} is not one of {e:?}"));
        }
        let bytes = s.len() as u64;
        if let Some(min) = x.min_length
            && bytes < min
        {
            self.fail(
                path,
                Rule::MinLength(min),
                format!("string is {bytes} UTF-8 bytes long, at least {min} required"),
            );
        }
        if let Some(max) = x.max_length
            && bytes > max
        {
            self.fail(
                path,
                Rule::MaxLength(max),
                format!("string is {bytes} UTF-8 bytes long, at most {max} allowed"),
            );
        }
        if x.min_graphemes.is_some() || x.max_graphemes.is_some() {
            let count = s.graphemes(true).count() as u64;
            if let Some(min) = x.min_graphemes
                && count < min
            {
                self.fail(
                    path,
                    Rule::MinGraphemes(min),
                    format!("string has {count} graphemes, at least {min} required"),
                );
            }
            if let Some(max) = x.max_graphemes
                && count > max
            {
                self.fail(
                    path,
                    Rule::MaxGraphemes(max),
                    format!("string has {count} graphemes, at most {max} allowed"),
                );
            }
        }
        if let Some(f) = x.format
            && let Err(e) = format::validate(f, s)
        {
            self.fail(path, Rule::Format(f), e.to_string());
        }
    }

    fn bytes(&mut self, x: &BytesSchema, data: &Data, path: &str) {
        let Data::Bytes(b) = data else {
            return self.wrong_type(path, "bytes", data);
        };
        let len = b.0.len() as u64;
        if let Some(min) = x.min_length
            && len < min
        {
            self.fail(
                path,
                Rule::MinLength(min),
                format!("{len} bytes, at least {min} required"),
            );
        }
        if let Some(max) = x.max_length
            && len > max
        {
            self.fail(
                path,
                Rule::MaxLength(max),
                format!("{len} bytes, at most {max} allowed"),
            );
        }
    }

    fn cid_link(&mut self, data: &Data, path: &str) {
        if !matches!(data, Data::Link(_)) {
            self.wrong_type(path, "cid-link", data);
        }
    }

    fn blob(&mut self, x: &BlobSchema, data: &Data, path: &str) {
        let (mime, size) = match data {
            Data::Blob(b) => (b.mime_type.as_str(), Some(b.size)),
            Data::Object(map) if self.opts.allow_legacy_blobs => match legacy_blob(map) {
                Some(mime) => (mime, None),
                None => return self.wrong_type(path, "blob", data),
            },
            other => return self.wrong_type(path, "blob", other),
        };
        if let (Some(max), Some(size)) = (x.max_size, size)
            && size > max
        {
            self.fail(
                path,
                Rule::MaxSize(max),
                format!("blob is {size} bytes, at most {max} allowed"),
            );
        }
        if let Some(accept) = &x.accept
            && !accept.is_empty()
            && !accept.iter().any(|p| mime_matches(p, mime))
        {
            self.fail(
                path,
                Rule::Accept,
                format!("MIME type {mime:?} is not accepted (accept: {accept:?})"),
            );
        }
    }

    fn array(&mut self, base: &str, x: &ArraySchema, data: &Data, path: &str) {
        let Data::Array(items) = data else {
            return self.wrong_type(path, "array", data);
        };
        let len = items.len() as u64;
        if let Some(min) = x.min_length
            && len < min
        {
            self.fail(
                path,
                Rule::MinLength(min),
                format!("array has {len} items, at least {min} required"),
            );
        }
        if let Some(max) = x.max_length
            && len > max
        {
            self.fail(
                path,
                Rule::MaxLength(max),
                format!("array has {len} items, at most {max} allowed"),
            );
        }
        for (i, item) in items.iter().enumerate() {
            self.field(base, &x.items, item, &format!("{path}[{i}]"));
        }
    }

    fn reference(&mut self, base: &str, r: &Ref, data: &Data, path: &str) {
        match self.cat.resolve(r, base) {
            Ok(target) => self.def(target, data, path, Via::Ref),
            Err(e) => self.fail(
                path,
                Rule::Unresolved,
                format!("cannot resolve {:?}: {e}", r.as_str()),
            ),
        }
    }

    fn union(&mut self, base: &str, u: &UnionSchema, data: &Data, path: &str) {
        let Data::Object(map) = data else {
            return self.wrong_type(path, "object with $type", data);
        };
        let tpath = path_key(path, "$type");
        let t = match map.get("$type") {
            Some(Data::String(t)) => t.as_str(),
            Some(other) => return self.wrong_type(&tpath, "string", other),
            None => {
                return self.fail(&tpath, Rule::TypeTag, "a union member must have a $type");
            }
        };
        let t = match t.strip_suffix("#main") {
            Some(bare) if self.opts.allow_main_suffix => bare,
            Some(_) => {
                return self.fail(
                    &tpath,
                    Rule::TypeTag,
                    format!("$type {t:?} must not end in #main (use the bare NSID)"),
                );
            }
            None => t,
        };
        if let Some(r) = u.refs.iter().find(|r| r.normalized(base) == t) {
            match self.cat.resolve(r, base) {
                Ok(target) => self.def(target, data, path, Via::Tagged),
                Err(e) => self.fail(
                    path,
                    Rule::Unresolved,
                    format!("cannot resolve union member {:?}: {e}", r.as_str()),
                ),
            }
            return;
        }
        if u.is_closed() {
            let allowed: Vec<String> = u.refs.iter().map(|r| r.normalized(base)).collect();
            return self.fail(
                &tpath,
                Rule::ClosedUnion,
                format!("$type {t:?} is not one of {allowed:?}"),
            );
        }
        match self.cat.resolve_str(t) {
            Ok(target) if union_target_ok(target.def) => self.def(target, data, path, Via::Tagged),
            Ok(target) => self.fail(
                &tpath,
                Rule::TypeTag,
                format!(
                    "$type {t:?} names a {}, not an object or record",
                    target.def.type_name()
                ),
            ),
            Err(e) if self.opts.strict_unresolved => self.fail(
                &tpath,
                Rule::Unresolved,
                format!("$type {t:?} of an open union cannot be resolved: {e}"),
            ),
            Err(_) => {}
        }
    }

    fn param(&mut self, t: &ParamType, data: &Data, path: &str) {
        match t {
            ParamType::Boolean(x) => self.boolean(x, data, path),
            ParamType::Integer(x) => self.integer(x, data, path),
            ParamType::String(x) => self.string(x, data, path),
            ParamType::Array(a) => {
                let Data::Array(items) = data else {
                    return self.wrong_type(path, "array", data);
                };
                let len = items.len() as u64;
                if let Some(min) = a.min_length
                    && len < min
                {
                    self.fail(
                        path,
                        Rule::MinLength(min),
                        format!("{len} values, at least {min} required"),
                    );
                }
                if let Some(max) = a.max_length
                    && len > max
                {
                    self.fail(
                        path,
                        Rule::MaxLength(max),
                        format!("{len} values, at most {max} allowed"),
                    );
                }
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    match &a.items {
                        ParamItem::Boolean(x) => self.boolean(x, item, &p),
                        ParamItem::Integer(x) => self.integer(x, item, &p),
                        ParamItem::String(x) => self.string(x, item, &p),
                    }
                }
            }
        }
    }

    fn params(&mut self, p: Option<&Params>, data: &Data) {
        let Data::Object(map) = data else {
            return self.wrong_type("$", "object", data);
        };
        let Some(p) = p else { return };
        for name in p.required.iter().flatten() {
            if !map.contains_key(name) {
                self.fail(
                    &path_key("$", name),
                    Rule::Required,
                    "required parameter is missing",
                );
            }
        }
        for (name, t) in &p.properties {
            if let Some(v) = map.get(name) {
                let path = path_key("$", name);
                if matches!(v, Data::Null) {
                    self.fail(&path, Rule::Nullable, "parameters cannot be null");
                } else {
                    self.param(t, v, &path);
                }
            }
        }
    }
}

/// The MIME type of a legacy blob `{"cid": "…", "mimeType": "…"}`.
fn legacy_blob(map: &BTreeMap<String, Data>) -> Option<&str> {
    if map.len() != 2 {
        return None;
    }
    match (map.get("cid"), map.get("mimeType")) {
        (Some(Data::String(_)), Some(Data::String(m))) => Some(m),
        _ => None,
    }
}

fn single(path: &str, rule: Rule, message: impl Into<String>) -> ValidationErrors {
    ValidationErrors(vec![ValidationError {
        path: path.to_owned(),
        rule,
        message: message.into(),
    }])
}

/// The data-model layer: converts the JSON value, or fails with the single data-model error.
fn data_model(value: &Value) -> Result<Data, ValidationErrors> {
    Data::from_json(value).map_err(|e| {
        let path = if e.path().is_empty() { "$" } else { e.path() };
        single(path, Rule::DataModel, e.kind().to_string())
    })
}

fn top_object(value: &Value) -> Result<Data, ValidationErrors> {
    if !value.is_object() {
        return Err(single(
            "$",
            Rule::Type("object"),
            format!("expected object, found {}", crate::convert::describe(value)),
        ));
    }
    data_model(value)
}

/// Which body of an XRPC method.
#[derive(Clone, Copy)]
enum Direction {
    Input,
    Output,
}

impl Catalog {
    /// Validates a record (`$type` must equal `nsid`) with the default (strict) options.
    pub fn validate_record(&self, nsid: &str, value: &Value) -> Result<(), ValidationErrors> {
        self.validate_record_with(nsid, value, &ValidateOptions::default())
    }

    /// Validates a record with the given options.
    pub fn validate_record_with(
        &self,
        nsid: &str,
        value: &Value,
        opts: &ValidateOptions,
    ) -> Result<(), ValidationErrors> {
        let target = self
            .lookup(nsid, "main")
            .map_err(|e| single("$", Rule::Unresolved, e.to_string()))?;
        let Def::Record(record) = target.def else {
            return Err(single(
                "$",
                Rule::Schema,
                format!("{nsid} is a {}, not a record", target.def.type_name()),
            ));
        };
        let data = top_object(value)?;
        let mut v = Validator::new(self, opts);
        if let Data::Object(map) = &data {
            match map.get("$type") {
                Some(Data::String(t)) if t == nsid => {}
                Some(Data::String(t)) => v.fail(
                    "$.$type",
                    Rule::TypeTag,
                    format!("record $type {t:?} does not equal {nsid:?}"),
                ),
                Some(other) => v.wrong_type("$.$type", "string", other),
                None => v.fail(
                    "$.$type",
                    Rule::TypeTag,
                    format!("a record must have $type {nsid:?}"),
                ),
            }
        }
        v.object(target.nsid, &record.record, &data, "$");
        v.finish()
    }

    /// Validates any value against a def given as `nsid` or `nsid#name`.
    ///
    /// An object or record def is validated like a `ref` to it (a `$type`, if present, must
    /// name the def).
    pub fn validate_value(&self, reference: &str, value: &Value) -> Result<(), ValidationErrors> {
        self.validate_value_with(reference, value, &ValidateOptions::default())
    }

    /// [`Catalog::validate_value`] with options.
    pub fn validate_value_with(
        &self,
        reference: &str,
        value: &Value,
        opts: &ValidateOptions,
    ) -> Result<(), ValidationErrors> {
        let target = self
            .resolve_str(reference)
            .map_err(|e| single("$", Rule::Unresolved, e.to_string()))?;
        let data = data_model(value)?;
        let mut v = Validator::new(self, opts);
        v.def(target, &data, "$", Via::Ref);
        v.finish()
    }

    /// Validates the query parameters of a query, procedure or subscription, given as a JSON
    /// object of typed values (`{"limit": 50, "tags": ["a", "b"]}`).
    ///
    /// `required` applies; missing optional parameters are fine (their `default` is not
    /// injected); undeclared parameters are ignored.
    pub fn validate_params(&self, nsid: &str, params: &Value) -> Result<(), ValidationErrors> {
        let p = self.params_of(nsid)?;
        let data = top_object(params)?;
        let opts = ValidateOptions::default();
        let mut v = Validator::new(self, &opts);
        v.params(p, &data);
        v.finish()
    }

    /// Parses query-string pairs (`[("limit", "50"), ("tag", "a"), ("tag", "b")]`) into typed
    /// JSON values by the declared parameter types, then validates them like
    /// [`Catalog::validate_params`]. Array parameters collect repeated keys; other parameters
    /// must appear at most once. Undeclared parameters are left out of the result.
    pub fn parse_query_params<'k>(
        &self,
        nsid: &str,
        pairs: impl IntoIterator<Item = (&'k str, &'k str)>,
    ) -> Result<Map<String, Value>, ValidationErrors> {
        let p = self.params_of(nsid)?;
        let mut grouped: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (k, v) in pairs {
            grouped.entry(k).or_default().push(v);
        }
        let mut out = Map::new();
        let mut errors = Vec::new();
        let empty = BTreeMap::new();
        let props = p.map_or(&empty, |p| &p.properties);
        for (name, values) in grouped {
            let Some(t) = props.get(name) else { continue };
            let path = path_key("$", name);
            let parsed = match t {
                ParamType::Array(a) => {
                    let mut items = Vec::with_capacity(values.len());
                    for (i, raw) in values.iter().enumerate() {
                        match parse_scalar(param_item_kind(&a.items), raw) {
                            Ok(v) => items.push(v),
                            Err(msg) => errors.push(ValidationError {
                                path: format!("{path}[{i}]"),
                                rule: Rule::Param,
                                message: msg,
                            }),
                        }
                    }
                    Value::Array(items)
                }
                scalar => {
                    if values.len() > 1 {
                        errors.push(ValidationError {
                            path: path.clone(),
                            rule: Rule::Param,
                            message: format!(
                                "parameter given {} times but is not an array",
                                values.len()
                            ),
                        });
                        continue;
                    }
                    let raw = values.first().copied().unwrap_or_default();
                    match parse_scalar(scalar.type_name(), raw) {
                        Ok(v) => v,
                        Err(msg) => {
                            errors.push(ValidationError {
                                path,
                                rule: Rule::Param,
                                message: msg,
                            });
                            continue;
                        }
                    }
                }
            };
            out.insert(name.to_owned(), parsed);
        }
        let obj = Value::Object(out);
        if let Err(e) = self.validate_params(nsid, &obj) {
            errors.extend(e.0);
        }
        match obj {
            Value::Object(map) if errors.is_empty() => Ok(map),
            _ => Err(ValidationErrors(errors)),
        }
    }

    /// Validates the JSON input body of a procedure.
    ///
    /// The body must be an object; with a schema it is validated as that object, ref or union
    /// (a union body needs `$type`). A method without an `input`, or whose input encoding is
    /// not `application/json`, fails with [`Rule::Schema`].
    pub fn validate_input(&self, nsid: &str, body: &Value) -> Result<(), ValidationErrors> {
        self.validate_input_with(nsid, body, &ValidateOptions::default())
    }

    /// [`Catalog::validate_input`] with options.
    pub fn validate_input_with(
        &self,
        nsid: &str,
        body: &Value,
        opts: &ValidateOptions,
    ) -> Result<(), ValidationErrors> {
        self.validate_body(nsid, Direction::Input, body, opts)
    }

    /// Validates the JSON output body of a query or procedure (see
    /// [`Catalog::validate_input`]).
    pub fn validate_output(&self, nsid: &str, body: &Value) -> Result<(), ValidationErrors> {
        self.validate_output_with(nsid, body, &ValidateOptions::default())
    }

    /// [`Catalog::validate_output`] with options (e.g. [`ValidateOptions::lenient`] for
    /// responses that may carry legacy blobs).
    pub fn validate_output_with(
        &self,
        nsid: &str,
        body: &Value,
        opts: &ValidateOptions,
    ) -> Result<(), ValidationErrors> {
        self.validate_body(nsid, Direction::Output, body, opts)
    }

    /// Validates the payload of a subscription frame whose header `t` is `frame_type`
    /// (`"#commit"`): the union member is chosen by fragment and the payload needs no `$type`.
    /// Unknown frame types are accepted unless the message union is closed.
    pub fn validate_message(
        &self,
        nsid: &str,
        frame_type: &str,
        payload: &Value,
    ) -> Result<(), ValidationErrors> {
        let target = self
            .lookup(nsid, "main")
            .map_err(|e| single("$", Rule::Unresolved, e.to_string()))?;
        let Def::Subscription(sub) = target.def else {
            return Err(single(
                "$",
                Rule::Schema,
                format!("{nsid} is a {}, not a subscription", target.def.type_name()),
            ));
        };
        let Some(message) = &sub.message else {
            return Err(single(
                "$",
                Rule::Schema,
                format!("{nsid} declares no message"),
            ));
        };
        let data = top_object(payload)?;
        let fragment = frame_type.strip_prefix('#').unwrap_or(frame_type);
        let opts = ValidateOptions::default();
        let mut v = Validator::new(self, &opts);
        match message.schema.refs.iter().find(|r| r.name() == fragment) {
            Some(r) => match self.resolve(r, target.nsid) {
                Ok(t) => v.def(t, &data, "$", Via::Tagged),
                Err(e) => v.fail("$", Rule::Unresolved, e.to_string()),
            },
            None if message.schema.is_closed() => v.fail(
                "$",
                Rule::ClosedUnion,
                format!("frame type {frame_type:?} is not one of the message types"),
            ),
            None => {}
        }
        v.finish()
    }

    fn params_of(&self, nsid: &str) -> Result<Option<&Params>, ValidationErrors> {
        let target = self
            .lookup(nsid, "main")
            .map_err(|e| single("$", Rule::Unresolved, e.to_string()))?;
        match target.def {
            Def::Query(q) => Ok(q.parameters.as_ref()),
            Def::Procedure(q) => Ok(q.parameters.as_ref()),
            Def::Subscription(q) => Ok(q.parameters.as_ref()),
            other => Err(single(
                "$",
                Rule::Schema,
                format!("{nsid} is a {}, which has no parameters", other.type_name()),
            )),
        }
    }

    fn validate_body(
        &self,
        nsid: &str,
        dir: Direction,
        body: &Value,
        opts: &ValidateOptions,
    ) -> Result<(), ValidationErrors> {
        let target = self
            .lookup(nsid, "main")
            .map_err(|e| single("$", Rule::Unresolved, e.to_string()))?;
        let (decl, what) = match (target.def, dir) {
            (Def::Procedure(p), Direction::Input) => (p.input.as_ref(), "input"),
            (Def::Procedure(p), Direction::Output) => (p.output.as_ref(), "output"),
            (Def::Query(q), Direction::Output) => (q.output.as_ref(), "output"),
            (Def::Query(_), Direction::Input) => {
                return Err(single(
                    "$",
                    Rule::Schema,
                    format!("{nsid} is a query, which has no input body"),
                ));
            }
            (other, _) => {
                return Err(single(
                    "$",
                    Rule::Schema,
                    format!(
                        "{nsid} is a {}, not a query or procedure",
                        other.type_name()
                    ),
                ));
            }
        };
        let Some(decl) = decl else {
            return Err(single(
                "$",
                Rule::Schema,
                format!("{nsid} declares no {what}"),
            ));
        };
        if !decl.is_json() {
            return Err(single(
                "$",
                Rule::Schema,
                format!(
                    "{nsid} {what} has encoding {:?}, not application/json",
                    decl.encoding
                ),
            ));
        }
        let data = top_object(body)?;
        let mut v = Validator::new(self, opts);
        match &decl.schema {
            None => {}
            Some(BodySchema::Object(o)) => v.object(target.nsid, o, &data, "$"),
            Some(BodySchema::Ref(r)) => v.reference(target.nsid, &r.reference, &data, "$"),
            Some(BodySchema::Union(u)) => v.union(target.nsid, u, &data, "$"),
        }
        v.finish()
    }
}

fn param_item_kind(item: &ParamItem) -> &'static str {
    item.type_name()
}

fn parse_scalar(kind: &str, raw: &str) -> Result<Value, String> {
    match kind {
        "boolean" => match raw {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("expected true or false, found {raw:?}")),
        },
        "integer" => raw
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("expected an integer, found {raw:?}")),
        _ => Ok(Value::from(raw)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_patterns() {
        assert!(mime_matches("image/*", "image/png"));
        assert!(mime_matches("*/*", "text/plain"));
        assert!(mime_matches("image/png", "image/png"));
        assert!(!mime_matches("image/png", "image/jpeg"));
        assert!(!mime_matches("image/*", "text/plain"));
        assert!(!mime_matches("image/*", "imagex/png"));
        assert!(!mime_matches("IMAGE/*", "image/png"));
        assert!(!mime_matches("text/ht*", "text/html"));
        assert!(!mime_matches("*", "text/html"));
    }

    #[test]
    fn json_paths() {
        assert_eq!(path_key("$", "embed"), "$.embed");
        assert_eq!(path_key("$.a", "$type"), "$.a.$type");
        assert_eq!(path_key("$", "cid-link"), "$[\"cid-link\"]");
        assert_eq!(path_key("$", "9"), "$[\"9\"]");
    }

    #[test]
    fn rule_display_has_name_and_limit() {
        assert_eq!(Rule::MaxLength(20).to_string(), "maxLength 20");
        assert_eq!(Rule::MaxGraphemes(3).to_string(), "maxGraphemes 3");
        assert_eq!(Rule::Required.to_string(), "required");
        assert_eq!(Rule::Type("object").to_string(), "type object");
    }

    #[test]
    fn scalar_params() {
        assert_eq!(parse_scalar("boolean", "true"), Ok(Value::Bool(true)));
        assert!(parse_scalar("boolean", "yes").is_err());
        assert_eq!(parse_scalar("integer", "-5"), Ok(Value::from(-5)));
        assert!(parse_scalar("integer", "5.0").is_err());
        assert_eq!(parse_scalar("string", "x y"), Ok(Value::from("x y")));
    }
}
