//! Runtime validation of untyped data (records, XRPC params and bodies, subscription messages)
//! against the lexicons of a [`Catalog`] (lexicon-rules.md §5).
//!
//! Validation runs in two layers. First the whole value is converted with
//! [`Data::from_json`], which enforces the data-model rules (no floats, well-formed `$bytes`,
//! `$link` and blobs, non-empty string `$type`); data that fails there is entirely invalid and
//! that single error is returned. Then the schema is applied and **every** failure is collected,
//! each with the JSON path of the value (`$.embed.images[0].alt`) and the rule it breaks.
//!
//! The vocabulary and the checks are those of [`atlex_types::validate`], which the code
//! generated for the SDK uses too: [`Validator`] tracks the path and collects the
//! [`Constraint`]s, and every length, grapheme, range, `enum`/`const`, blob and format check is
//! one of its shared checkers ([`StringRules`], [`StringChoice`], [`IntegerRules`],
//! [`BlobRules`]). This module only walks the schema.

use std::collections::BTreeMap;

use atlex_types::data::Data;
use atlex_types::validate::{
    BlobRules, Constraint, IntegerRules, StringChoice, StringRules, ValidationError,
    ValidationErrors, Validator,
};
use serde_json::{Map, Value};

use crate::catalog::{Catalog, Resolved};
use crate::check::union_target_ok;
use crate::model::*;

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

/// How a def was reached, which decides the `$type` rule for objects.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    /// Through a `ref`: a `$type` is optional but must match when present.
    Ref,
    /// Through a union whose `$type` already matched (or a subscription frame header).
    Tagged,
}

/// Walks data along a schema; the shared [`Validator`] keeps the path and the failures.
struct Walker<'a> {
    cat: &'a Catalog,
    opts: &'a ValidateOptions,
    v: Validator,
}

impl<'a> Walker<'a> {
    fn new(cat: &'a Catalog, opts: &'a ValidateOptions) -> Self {
        Walker {
            cat,
            opts,
            v: Validator::new(),
        }
    }

    /// Runs `check` inside the object key `name`.
    fn at(&mut self, name: &str, check: impl FnOnce(&mut Self)) {
        self.v.push_field(name);
        check(self);
        self.v.pop();
    }

    /// Runs `check` inside the array element `index`.
    fn at_index(&mut self, index: usize, check: impl FnOnce(&mut Self)) {
        self.v.push_index(index);
        check(self);
        self.v.pop();
    }

    fn report(&mut self, constraint: Constraint) {
        self.v.report(constraint);
    }

    fn type_tag(&mut self, reason: String) {
        self.report(Constraint::TypeTag { reason });
    }

    fn finish(self) -> Result<(), ValidationErrors> {
        self.v.finish()
    }

    fn def(&mut self, target: Resolved<'_>, data: &Data, via: Via) {
        match target.def {
            Def::Record(r) => {
                if via == Via::Ref {
                    self.ref_type_tag(&target, data);
                }
                self.object(target.nsid, &r.record, data);
            }
            Def::Object(o) => {
                if via == Via::Ref {
                    self.ref_type_tag(&target, data);
                }
                self.object(target.nsid, o, data);
            }
            Def::Token(_) => self.report(Constraint::Token {
                name: target.type_name(),
            }),
            Def::Query(_) | Def::Procedure(_) | Def::Subscription(_) | Def::PermissionSet(_) => {
                self.report(Constraint::SchemaMismatch {
                    reason: format!(
                        "{} is a {}, not a data type",
                        target.type_name(),
                        target.def.type_name()
                    ),
                })
            }
            Def::Boolean(x) => self.boolean(x, data),
            Def::Integer(x) => self.integer(x, data),
            Def::String(x) => self.string(x, data),
            Def::Bytes(x) => self.bytes(x, data),
            Def::CidLink(_) => self.cid_link(data),
            Def::Blob(x) => self.blob(x, data),
            Def::Array(x) => self.array(target.nsid, x, data),
        }
    }

    /// An object reached through a `ref` may carry `$type`; if it does, it must name the target.
    fn ref_type_tag(&mut self, target: &Resolved<'_>, data: &Data) {
        if let Data::Object(map) = data
            && let Some(t) = map.get("$type")
        {
            let expected = target.type_name();
            self.at("$type", |w| match t {
                Data::String(s) if *s == expected => {}
                Data::String(s) => w.type_tag(format!(
                    "$type {s:?} does not match the referenced definition {expected:?}"
                )),
                other => w.v.wrong_type("string", other),
            });
        }
    }

    fn field(&mut self, base: &str, f: &FieldType, data: &Data) {
        match f {
            FieldType::Boolean(x) => self.boolean(x, data),
            FieldType::Integer(x) => self.integer(x, data),
            FieldType::String(x) => self.string(x, data),
            FieldType::Bytes(x) => self.bytes(x, data),
            FieldType::CidLink(_) => self.cid_link(data),
            FieldType::Blob(x) => self.blob(x, data),
            FieldType::Array(x) => self.array(base, x, data),
            FieldType::Object(x) => self.object(base, x, data),
            FieldType::Ref(x) => self.reference(base, &x.reference, data),
            FieldType::Union(x) => self.union(base, x, data),
            FieldType::Unknown(_) => self.v.unknown_object(data),
        }
    }

    fn object(&mut self, base: &str, o: &ObjectSchema, data: &Data) {
        let Data::Object(map) = data else {
            return self.v.wrong_type("object", data);
        };
        for name in o.required.iter().flatten() {
            if !map.contains_key(name) {
                self.at(name, |w| w.report(Constraint::Required));
            }
        }
        for (name, field) in &o.properties {
            let Some(value) = map.get(name) else { continue };
            self.at(name, |w| {
                if !matches!(value, Data::Null) {
                    w.field(base, field, value);
                } else if !o.is_nullable(name) {
                    w.report(Constraint::NotNullable);
                }
            });
        }
    }

    fn boolean(&mut self, x: &BooleanSchema, data: &Data) {
        let Data::Boolean(b) = data else {
            return self.v.wrong_type("boolean", data);
        };
        if let Some(c) = &x.const_value {
            self.v.constant(b, c);
        }
    }

    fn integer(&mut self, x: &IntegerSchema, data: &Data) {
        let Data::Integer(i) = data else {
            return self.v.wrong_type("integer", data);
        };
        self.v.integer(
            *i,
            &IntegerRules {
                minimum: x.minimum,
                maximum: x.maximum,
                allowed: x.enum_values.as_deref(),
                constant: x.const_value,
            },
        );
    }

    fn string(&mut self, x: &StringSchema, data: &Data) {
        let Data::String(s) = data else {
            return self.v.wrong_type("string", data);
        };
        let allowed: Option<Vec<&str>> = x
            .enum_values
            .as_ref()
            .map(|values| values.iter().map(String::as_str).collect());
        self.v.string_choice(
            s,
            &StringChoice {
                allowed: allowed.as_deref(),
                constant: x.const_value.as_deref(),
            },
        );
        self.v.string(
            s,
            &StringRules {
                min_length: x.min_length,
                max_length: x.max_length,
                min_graphemes: x.min_graphemes,
                max_graphemes: x.max_graphemes,
            },
        );
        if let Some(format) = x.format {
            self.v.format(s, format);
        }
    }

    fn bytes(&mut self, x: &BytesSchema, data: &Data) {
        let Data::Bytes(b) = data else {
            return self.v.wrong_type("bytes", data);
        };
        self.v.bytes_len(b.0.len(), x.min_length, x.max_length);
    }

    fn cid_link(&mut self, data: &Data) {
        if !matches!(data, Data::Link(_)) {
            self.v.wrong_type("cid-link", data);
        }
    }

    fn blob(&mut self, x: &BlobSchema, data: &Data) {
        let (mime, size) = match data {
            Data::Blob(b) => (b.mime_type.as_str(), Some(b.size)),
            Data::Object(map) if self.opts.allow_legacy_blobs => match legacy_blob(map) {
                Some(mime) => (mime, None),
                None => return self.v.wrong_type("blob", data),
            },
            other => return self.v.wrong_type("blob", other),
        };
        let accept: Option<Vec<&str>> = x
            .accept
            .as_ref()
            .map(|patterns| patterns.iter().map(String::as_str).collect());
        self.v.blob(
            mime,
            size,
            &BlobRules {
                accept: accept.as_deref(),
                max_size: x.max_size,
            },
        );
    }

    fn array(&mut self, base: &str, x: &ArraySchema, data: &Data) {
        let Data::Array(items) = data else {
            return self.v.wrong_type("array", data);
        };
        self.v.array_len(items.len(), x.min_length, x.max_length);
        for (i, item) in items.iter().enumerate() {
            self.at_index(i, |w| w.field(base, &x.items, item));
        }
    }

    fn reference(&mut self, base: &str, r: &Ref, data: &Data) {
        self.follow(base, r, data, Via::Ref);
    }

    /// Validates `data` against the def `r` points to, or reports that it cannot be resolved.
    fn follow(&mut self, base: &str, r: &Ref, data: &Data, via: Via) {
        match self.cat.resolve(r, base) {
            Ok(target) => self.def(target, data, via),
            Err(e) => self.report(Constraint::UnresolvedRef {
                reference: r.as_str().to_owned(),
                reason: e.to_string(),
            }),
        }
    }

    fn union(&mut self, base: &str, u: &UnionSchema, data: &Data) {
        let Data::Object(map) = data else {
            return self.v.wrong_type("object with $type", data);
        };
        let t = match map.get("$type") {
            Some(Data::String(t)) => t.as_str(),
            Some(other) => return self.at("$type", |w| w.v.wrong_type("string", other)),
            None => {
                return self.at("$type", |w| {
                    w.type_tag("a union member must have a $type".to_owned())
                });
            }
        };
        let t = match t.strip_suffix("#main") {
            Some(bare) if self.opts.allow_main_suffix => bare,
            Some(_) => {
                return self.at("$type", |w| {
                    w.type_tag(format!(
                        "$type {t:?} must not end in #main (use the bare NSID)"
                    ))
                });
            }
            None => t,
        };
        if let Some(r) = u.refs.iter().find(|r| r.normalized(base) == t) {
            return self.follow(base, r, data, Via::Tagged);
        }
        if u.is_closed() {
            let allowed = u.refs.iter().map(|r| r.normalized(base)).collect();
            return self.at("$type", |w| {
                w.report(Constraint::ClosedUnion {
                    found: t.to_owned(),
                    allowed,
                })
            });
        }
        match self.cat.resolve_str(t) {
            Ok(target) if union_target_ok(target.def) => self.def(target, data, Via::Tagged),
            Ok(target) => self.at("$type", |w| {
                w.type_tag(format!(
                    "$type {t:?} names a {}, not an object or record",
                    target.def.type_name()
                ))
            }),
            Err(e) if self.opts.strict_unresolved => self.at("$type", |w| {
                w.report(Constraint::UnresolvedRef {
                    reference: t.to_owned(),
                    reason: format!("the $type of an open union must resolve: {e}"),
                })
            }),
            Err(_) => {}
        }
    }

    fn param(&mut self, t: &ParamType, data: &Data) {
        match t {
            ParamType::Boolean(x) => self.boolean(x, data),
            ParamType::Integer(x) => self.integer(x, data),
            ParamType::String(x) => self.string(x, data),
            ParamType::Array(a) => {
                let Data::Array(items) = data else {
                    return self.v.wrong_type("array", data);
                };
                self.v.array_len(items.len(), a.min_length, a.max_length);
                for (i, item) in items.iter().enumerate() {
                    self.at_index(i, |w| match &a.items {
                        ParamItem::Boolean(x) => w.boolean(x, item),
                        ParamItem::Integer(x) => w.integer(x, item),
                        ParamItem::String(x) => w.string(x, item),
                    });
                }
            }
        }
    }

    fn params(&mut self, p: Option<&Params>, data: &Data) {
        let Data::Object(map) = data else {
            return self.v.wrong_type("object", data);
        };
        let Some(p) = p else { return };
        for name in p.required.iter().flatten() {
            if !map.contains_key(name) {
                self.at(name, |w| w.report(Constraint::Required));
            }
        }
        for (name, t) in &p.properties {
            if let Some(value) = map.get(name) {
                self.at(name, |w| {
                    if matches!(value, Data::Null) {
                        w.report(Constraint::NotNullable);
                    } else {
                        w.param(t, value);
                    }
                });
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

/// The single failure `constraint` for the whole value.
fn single(constraint: Constraint) -> ValidationErrors {
    ValidationError::new("$", constraint).into()
}

fn schema_mismatch(reason: String) -> ValidationErrors {
    single(Constraint::SchemaMismatch { reason })
}

fn unresolved(reference: &str, error: impl ToString) -> ValidationErrors {
    single(Constraint::UnresolvedRef {
        reference: reference.to_owned(),
        reason: error.to_string(),
    })
}

/// The data-model layer: converts the JSON value, or fails with the single data-model error.
fn data_model(value: &Value) -> Result<Data, ValidationErrors> {
    Data::from_json(value).map_err(|e| ValidationError::from(e).into())
}

fn top_object(value: &Value) -> Result<Data, ValidationErrors> {
    if !value.is_object() {
        return Err(single(Constraint::Type {
            expected: "object".to_owned(),
            found: crate::convert::describe(value),
        }));
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
        let target = self.lookup(nsid, "main").map_err(|e| unresolved(nsid, e))?;
        let Def::Record(record) = target.def else {
            return Err(schema_mismatch(format!(
                "{nsid} is a {}, not a record",
                target.def.type_name()
            )));
        };
        let data = top_object(value)?;
        let mut w = Walker::new(self, opts);
        if let Data::Object(map) = &data {
            w.at("$type", |w| match map.get("$type") {
                Some(Data::String(t)) if t == nsid => {}
                Some(Data::String(t)) => {
                    w.type_tag(format!("record $type {t:?} does not equal {nsid:?}"))
                }
                Some(other) => w.v.wrong_type("string", other),
                None => w.type_tag(format!("a record must have $type {nsid:?}")),
            });
        }
        w.object(target.nsid, &record.record, &data);
        w.finish()
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
            .map_err(|e| unresolved(reference, e))?;
        let data = data_model(value)?;
        let mut w = Walker::new(self, opts);
        w.def(target, &data, Via::Ref);
        w.finish()
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
        let mut w = Walker::new(self, &opts);
        w.params(p, &data);
        w.finish()
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
        let mut parse = Validator::new();
        let empty = BTreeMap::new();
        let props = p.map_or(&empty, |p| &p.properties);
        for (name, values) in grouped {
            let Some(t) = props.get(name) else { continue };
            parse.push_field(name);
            if let Some(parsed) = parse_param(t, &values, &mut parse) {
                out.insert(name.to_owned(), parsed);
            }
            parse.pop();
        }
        let obj = Value::Object(std::mem::take(&mut out));
        let checked = self.validate_params(nsid, &obj);
        if let Value::Object(map) = obj {
            out = map;
        }
        let errors: Vec<ValidationError> = [parse.finish(), checked]
            .into_iter()
            .filter_map(Result::err)
            .flatten()
            .collect();
        match ValidationErrors::from_vec(errors) {
            None => Ok(out),
            Some(errors) => Err(errors),
        }
    }

    /// Validates the JSON input body of a procedure.
    ///
    /// The body must be an object; with a schema it is validated as that object, ref or union
    /// (a union body needs `$type`). A method without an `input`, or whose input encoding is
    /// not `application/json`, fails with [`Constraint::SchemaMismatch`].
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
        let target = self.lookup(nsid, "main").map_err(|e| unresolved(nsid, e))?;
        let Def::Subscription(sub) = target.def else {
            return Err(schema_mismatch(format!(
                "{nsid} is a {}, not a subscription",
                target.def.type_name()
            )));
        };
        let Some(message) = &sub.message else {
            return Err(schema_mismatch(format!("{nsid} declares no message")));
        };
        let data = top_object(payload)?;
        let fragment = frame_type.strip_prefix('#').unwrap_or(frame_type);
        let opts = ValidateOptions::default();
        let mut w = Walker::new(self, &opts);
        let refs = &message.schema.refs;
        match refs.iter().find(|r| r.name() == fragment) {
            Some(r) => w.follow(target.nsid, r, &data, Via::Tagged),
            None if message.schema.is_closed() => w.report(Constraint::ClosedUnion {
                found: frame_type.to_owned(),
                allowed: refs.iter().map(|r| r.normalized(target.nsid)).collect(),
            }),
            None => {}
        }
        w.finish()
    }

    fn params_of(&self, nsid: &str) -> Result<Option<&Params>, ValidationErrors> {
        let target = self.lookup(nsid, "main").map_err(|e| unresolved(nsid, e))?;
        match target.def {
            Def::Query(q) => Ok(q.parameters.as_ref()),
            Def::Procedure(q) => Ok(q.parameters.as_ref()),
            Def::Subscription(q) => Ok(q.parameters.as_ref()),
            other => Err(schema_mismatch(format!(
                "{nsid} is a {}, which has no parameters",
                other.type_name()
            ))),
        }
    }

    fn validate_body(
        &self,
        nsid: &str,
        dir: Direction,
        body: &Value,
        opts: &ValidateOptions,
    ) -> Result<(), ValidationErrors> {
        let target = self.lookup(nsid, "main").map_err(|e| unresolved(nsid, e))?;
        let (decl, what) = match (target.def, dir) {
            (Def::Procedure(p), Direction::Input) => (p.input.as_ref(), "input"),
            (Def::Procedure(p), Direction::Output) => (p.output.as_ref(), "output"),
            (Def::Query(q), Direction::Output) => (q.output.as_ref(), "output"),
            (Def::Query(_), Direction::Input) => {
                return Err(schema_mismatch(format!(
                    "{nsid} is a query, which has no input body"
                )));
            }
            (other, _) => {
                return Err(schema_mismatch(format!(
                    "{nsid} is a {}, not a query or procedure",
                    other.type_name()
                )));
            }
        };
        let Some(decl) = decl else {
            return Err(schema_mismatch(format!("{nsid} declares no {what}")));
        };
        if !decl.is_json() {
            return Err(schema_mismatch(format!(
                "{nsid} {what} has encoding {:?}, not application/json",
                decl.encoding
            )));
        }
        let data = top_object(body)?;
        let mut w = Walker::new(self, opts);
        match &decl.schema {
            None => {}
            Some(BodySchema::Object(o)) => w.object(target.nsid, o, &data),
            Some(BodySchema::Ref(r)) => w.reference(target.nsid, &r.reference, &data),
            Some(BodySchema::Union(u)) => w.union(target.nsid, u, &data),
        }
        w.finish()
    }
}

/// Reads the query-string values of one declared parameter (the validator is at its path),
/// reporting those that cannot be parsed; `None` when nothing usable was given.
fn parse_param(t: &ParamType, values: &[&str], v: &mut Validator) -> Option<Value> {
    match t {
        ParamType::Array(a) => {
            let mut items = Vec::with_capacity(values.len());
            for (i, raw) in values.iter().enumerate() {
                match parse_scalar(a.items.type_name(), raw) {
                    Ok(value) => items.push(value),
                    Err(constraint) => {
                        v.push_index(i);
                        v.report(constraint);
                        v.pop();
                    }
                }
            }
            Some(Value::Array(items))
        }
        scalar => match values {
            [raw] => match parse_scalar(scalar.type_name(), raw) {
                Ok(value) => Some(value),
                Err(constraint) => {
                    v.report(constraint);
                    None
                }
            },
            _ => {
                v.report(Constraint::RepeatedParam {
                    count: values.len() as u64,
                });
                None
            }
        },
    }
}

fn parse_scalar(kind: &'static str, raw: &str) -> Result<Value, Constraint> {
    let unparsable = || Constraint::UnparsableParam {
        expected: kind,
        raw: raw.to_owned(),
    };
    match kind {
        "boolean" => match raw {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(unparsable()),
        },
        "integer" => raw
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| unparsable()),
        _ => Ok(Value::from(raw)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_params() {
        assert_eq!(parse_scalar("boolean", "true"), Ok(Value::Bool(true)));
        assert_eq!(
            parse_scalar("boolean", "yes"),
            Err(Constraint::UnparsableParam {
                expected: "boolean",
                raw: "yes".to_owned()
            })
        );
        assert_eq!(parse_scalar("integer", "-5"), Ok(Value::from(-5)));
        assert!(parse_scalar("integer", "5.0").is_err());
        assert_eq!(parse_scalar("string", "x y"), Ok(Value::from("x y")));
    }

    #[test]
    fn repeated_and_bad_param_values_are_reported_at_their_paths() {
        let int = ParamType::Integer(IntegerSchema::default());
        let mut v = Validator::new();
        v.push_field("n");
        assert_eq!(parse_param(&int, &["1", "2"], &mut v), None);
        assert_eq!(parse_param(&int, &["7"], &mut v), Some(Value::from(7)));
        v.pop();
        let errs = v.finish().unwrap_err();
        assert!(errs.has("$.n", "params"), "{errs}");
        assert_eq!(
            errs.errors()[0].constraint,
            Constraint::RepeatedParam { count: 2 }
        );
    }
}
