//! Conversion between JSON values and the typed model.
//!
//! Reading is hand-written rather than `#[derive(Deserialize)]`: it gives every error the exact
//! field path (`record.properties.text.maxLength`), keeps going after an error so that all
//! structural problems of a document are reported at once, keeps unknown keys, and cannot panic.
//! Writing produces exactly the keys that were read, so `to_json(from_json(v)) == v` for every
//! valid document.

use std::collections::BTreeMap;
use std::path::Path;

use atlex_types::format::Format;
use serde_json::{Map, Value};

use crate::model::*;
use crate::problem::{Diagnostics, Sink, index, join};

/// Short description of a JSON value for error messages (`"x"`, `12`, `an object`, …).
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let mut short: String = s.chars().take(40).collect();
            if short.len() < s.len() {
                short.push('…');
            }
            format!("{short:?}")
        }
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// The keys of a JSON object that have not been read yet.
struct Node<'v> {
    path: String,
    rest: BTreeMap<&'v str, &'v Value>,
}

impl<'v> Node<'v> {
    fn new(s: &mut Sink<'_>, path: &str, value: &'v Value) -> Option<Node<'v>> {
        match value {
            Value::Object(map) => Some(Node {
                path: path.to_owned(),
                rest: map.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            }),
            other => {
                s.error(
                    path,
                    format!("expected a JSON object, found {}", describe(other)),
                );
                None
            }
        }
    }

    fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }

    fn take(&mut self, key: &str) -> Option<&'v Value> {
        self.rest.remove(key)
    }

    fn extra(self) -> Extra {
        self.rest
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect()
    }

    fn opt_str(&mut self, s: &mut Sink<'_>, key: &str) -> Option<String> {
        let v = self.take(key)?;
        match v {
            Value::String(text) => Some(text.clone()),
            other => {
                s.error(
                    &self.at(key),
                    format!("expected a string, found {}", describe(other)),
                );
                None
            }
        }
    }

    fn req_str(&mut self, s: &mut Sink<'_>, key: &str) -> String {
        if !self.rest.contains_key(key) {
            s.error(&self.path, format!("missing required key `{key}`"));
            return String::new();
        }
        self.opt_str(s, key).unwrap_or_default()
    }

    fn opt_bool(&mut self, s: &mut Sink<'_>, key: &str) -> Option<bool> {
        let v = self.take(key)?;
        match v {
            Value::Bool(b) => Some(*b),
            other => {
                s.error(
                    &self.at(key),
                    format!("expected a boolean, found {}", describe(other)),
                );
                None
            }
        }
    }

    fn opt_i64(&mut self, s: &mut Sink<'_>, key: &str) -> Option<i64> {
        let v = self.take(key)?;
        as_i64(s, &self.at(key), v)
    }

    fn opt_u64(&mut self, s: &mut Sink<'_>, key: &str) -> Option<u64> {
        let v = self.take(key)?;
        as_u64(s, &self.at(key), v)
    }

    fn opt_list<T>(
        &mut self,
        s: &mut Sink<'_>,
        key: &str,
        item: impl Fn(&mut Sink<'_>, &str, &Value) -> Option<T>,
    ) -> Option<Vec<T>> {
        let v = self.take(key)?;
        let path = self.at(key);
        match v {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, it) in items.iter().enumerate() {
                    if let Some(x) = item(s, &index(&path, i), it) {
                        out.push(x);
                    }
                }
                Some(out)
            }
            other => {
                s.error(
                    &path,
                    format!("expected an array, found {}", describe(other)),
                );
                None
            }
        }
    }

    fn opt_strings(&mut self, s: &mut Sink<'_>, key: &str) -> Option<Vec<String>> {
        self.opt_list(s, key, as_string)
    }

    fn opt_string_map(&mut self, s: &mut Sink<'_>, key: &str) -> Option<BTreeMap<String, String>> {
        let v = self.take(key)?;
        let path = self.at(key);
        match v {
            Value::Object(map) => Some(
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), as_string(s, &join(&path, k), v)?)))
                    .collect(),
            ),
            other => {
                s.error(
                    &path,
                    format!(
                        "expected an object of strings by language, found {}",
                        describe(other)
                    ),
                );
                None
            }
        }
    }

    /// Reads and removes `type`; reports a missing or non-string `type`.
    fn type_name(&mut self, s: &mut Sink<'_>) -> Option<&'v str> {
        match self.take("type") {
            None => {
                s.error(&self.path, "missing required key `type`");
                None
            }
            Some(Value::String(t)) => Some(t.as_str()),
            Some(other) => {
                s.error(
                    &self.at("type"),
                    format!("expected a type name string, found {}", describe(other)),
                );
                None
            }
        }
    }

    /// Reads `type` and reports it unless it is `expected`.
    fn expect_type(&mut self, s: &mut Sink<'_>, expected: &str) {
        match self.take("type") {
            None => s.error(
                &self.path,
                format!("missing required key `type` (expected \"{expected}\")"),
            ),
            Some(Value::String(t)) if t == expected => {}
            Some(other) => s.error(
                &self.at("type"),
                format!("expected \"{expected}\", found {}", describe(other)),
            ),
        }
    }

    fn deny(&mut self, s: &mut Sink<'_>, key: &str, why: &str) {
        if self.take(key).is_some() {
            s.error(&self.at(key), why.to_owned());
        }
    }
}

fn as_string(s: &mut Sink<'_>, path: &str, v: &Value) -> Option<String> {
    match v {
        Value::String(t) => Some(t.clone()),
        other => {
            s.error(
                path,
                format!("expected a string, found {}", describe(other)),
            );
            None
        }
    }
}

fn as_i64(s: &mut Sink<'_>, path: &str, v: &Value) -> Option<i64> {
    if let Value::Number(n) = v {
        if let Some(i) = n.as_i64() {
            return Some(i);
        }
        if n.is_u64() {
            s.error(
                path,
                format!("integer {n} is out of range for a signed 64-bit integer"),
            );
            return None;
        }
    }
    s.error(path, format!("expected an integer, found {}", describe(v)));
    None
}

fn as_u64(s: &mut Sink<'_>, path: &str, v: &Value) -> Option<u64> {
    if let Value::Number(n) = v {
        if let Some(i) = n.as_u64() {
            return Some(i);
        }
        if n.is_i64() {
            s.error(path, format!("expected a non-negative integer, found {n}"));
            return None;
        }
    }
    s.error(
        path,
        format!("expected a non-negative integer, found {}", describe(v)),
    );
    None
}

const DEFINABLE: &str = "record, query, procedure, subscription, permission-set, token, boolean, \
                         integer, string, bytes, cid-link, blob, array, object";
const FIELD_TYPES: &str =
    "boolean, integer, string, bytes, cid-link, blob, array, object, ref, union, unknown";

fn is_known_type(t: &str) -> bool {
    matches!(
        t,
        "record"
            | "query"
            | "procedure"
            | "subscription"
            | "permission-set"
            | "permission"
            | "params"
            | "token"
            | "boolean"
            | "integer"
            | "string"
            | "bytes"
            | "cid-link"
            | "blob"
            | "array"
            | "object"
            | "ref"
            | "union"
            | "unknown"
    )
}

fn misplaced(s: &mut Sink<'_>, path: &str, t: &str, place: &str, allowed: &str) {
    if is_known_type(t) {
        s.error(
            path,
            format!("type `{t}` is not allowed {place} (allowed: {allowed})"),
        );
    } else {
        s.error(
            path,
            format!("unknown type {t:?} (allowed {place}: {allowed})"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

impl LexiconDoc {
    /// Converts a JSON value into a document, reporting every structural problem (wrong JSON
    /// type, missing required key, a type where it is not allowed, an unknown string format…).
    ///
    /// This does not run the schema checks; see [`crate::check_document`].
    pub fn from_json(value: &Value) -> Result<LexiconDoc, Diagnostics> {
        from_json_in(value, None)
    }

    /// Writes the document back as JSON, with the same keys it was read with.
    pub fn to_json(&self) -> Value {
        let mut m = base(None, &self.extra);
        m.insert("lexicon".into(), Value::from(self.lexicon));
        m.insert("id".into(), Value::from(self.id.clone()));
        put(&mut m, "revision", self.revision);
        put(&mut m, "description", self.description.clone());
        let defs: Map<String, Value> = self
            .defs
            .iter()
            .map(|(k, d)| (k.clone(), d.to_json()))
            .collect();
        m.insert("defs".into(), Value::Object(defs));
        Value::Object(m)
    }
}

/// [`LexiconDoc::from_json`] with the file name put into every problem.
pub(crate) fn from_json_in(value: &Value, file: Option<&Path>) -> Result<LexiconDoc, Diagnostics> {
    let nsid = value.get("id").and_then(Value::as_str).map(str::to_owned);
    let mut s = Sink::new(file, nsid);
    let doc = read_doc(&mut s, value);
    if s.out.has_errors() {
        Err(s.out)
    } else {
        doc.ok_or(s.out)
    }
}

fn read_doc(s: &mut Sink<'_>, value: &Value) -> Option<LexiconDoc> {
    let mut n = Node::new(s, "", value)?;
    let lexicon = match n.take("lexicon") {
        None => {
            s.error("", "missing required key `lexicon`");
            0
        }
        Some(v) => as_i64(s, "lexicon", v).unwrap_or(0),
    };
    let id = n.req_str(s, "id");
    let revision = n.opt_i64(s, "revision");
    let description = n.opt_str(s, "description");
    let mut defs = BTreeMap::new();
    match n.take("defs") {
        None => s.error("", "missing required key `defs`"),
        Some(Value::Object(map)) => {
            for (name, v) in map {
                s.def = Some(name.clone());
                if let Some(d) = read_def(s, v) {
                    defs.insert(name.clone(), d);
                }
                s.def = None;
            }
        }
        Some(other) => s.error(
            "defs",
            format!(
                "expected an object of definitions, found {}",
                describe(other)
            ),
        ),
    }
    Some(LexiconDoc {
        lexicon,
        id,
        revision,
        description,
        defs,
        extra: n.extra(),
    })
}

fn read_def(s: &mut Sink<'_>, value: &Value) -> Option<Def> {
    let mut n = Node::new(s, "", value)?;
    let t = n.type_name(s)?;
    Some(match t {
        "record" => Def::Record(read_record(s, n)),
        "query" => Def::Query(read_query(s, n)),
        "procedure" => Def::Procedure(read_procedure(s, n)),
        "subscription" => Def::Subscription(read_subscription(s, n)),
        "permission-set" => Def::PermissionSet(read_permission_set(s, n)),
        "token" => Def::Token(Token {
            description: n.opt_str(s, "description"),
            extra: n.extra(),
        }),
        "boolean" => Def::Boolean(read_boolean(s, n)),
        "integer" => Def::Integer(read_integer(s, n)),
        "string" => Def::String(read_string(s, n)),
        "bytes" => Def::Bytes(read_bytes(s, n)),
        "cid-link" => Def::CidLink(read_cid_link(s, n)),
        "blob" => Def::Blob(read_blob(s, n)),
        "array" => Def::Array(read_array(s, n)),
        "object" => Def::Object(read_object(s, n)),
        other => {
            misplaced(s, "type", other, "as a named definition", DEFINABLE);
            return None;
        }
    })
}

fn read_field(s: &mut Sink<'_>, path: &str, value: &Value) -> Option<FieldType> {
    let mut n = Node::new(s, path, value)?;
    let t = n.type_name(s)?;
    Some(match t {
        "boolean" => FieldType::Boolean(read_boolean(s, n)),
        "integer" => FieldType::Integer(read_integer(s, n)),
        "string" => FieldType::String(read_string(s, n)),
        "bytes" => FieldType::Bytes(read_bytes(s, n)),
        "cid-link" => FieldType::CidLink(read_cid_link(s, n)),
        "blob" => FieldType::Blob(read_blob(s, n)),
        "array" => FieldType::Array(read_array(s, n)),
        "object" => FieldType::Object(read_object(s, n)),
        "ref" => FieldType::Ref(read_ref(s, n)),
        "union" => FieldType::Union(read_union(s, n)),
        "unknown" => FieldType::Unknown(UnknownSchema {
            description: n.opt_str(s, "description"),
            extra: n.extra(),
        }),
        other => {
            misplaced(s, &join(path, "type"), other, "as a field", FIELD_TYPES);
            return None;
        }
    })
}

fn read_boolean(s: &mut Sink<'_>, mut n: Node<'_>) -> BooleanSchema {
    BooleanSchema {
        description: n.opt_str(s, "description"),
        default: n.opt_bool(s, "default"),
        const_value: n.opt_bool(s, "const"),
        extra: n.extra(),
    }
}

fn read_integer(s: &mut Sink<'_>, mut n: Node<'_>) -> IntegerSchema {
    IntegerSchema {
        description: n.opt_str(s, "description"),
        minimum: n.opt_i64(s, "minimum"),
        maximum: n.opt_i64(s, "maximum"),
        enum_values: n.opt_list(s, "enum", as_i64),
        default: n.opt_i64(s, "default"),
        const_value: n.opt_i64(s, "const"),
        extra: n.extra(),
    }
}

fn read_string(s: &mut Sink<'_>, mut n: Node<'_>) -> StringSchema {
    let format = n.opt_str(s, "format").and_then(|name| {
        let f = Format::from_lexicon_name(&name);
        if f.is_none() {
            s.error(
                &n.at("format"),
                format!(
                    "unknown string format {name:?} (known: did, handle, at-identifier, nsid, \
                     at-uri, cid, datetime, tid, record-key, language, uri)"
                ),
            );
        }
        f
    });
    StringSchema {
        description: n.opt_str(s, "description"),
        format,
        min_length: n.opt_u64(s, "minLength"),
        max_length: n.opt_u64(s, "maxLength"),
        min_graphemes: n.opt_u64(s, "minGraphemes"),
        max_graphemes: n.opt_u64(s, "maxGraphemes"),
        enum_values: n.opt_strings(s, "enum"),
        known_values: n.opt_strings(s, "knownValues"),
        default: n.opt_str(s, "default"),
        const_value: n.opt_str(s, "const"),
        extra: n.extra(),
    }
}

fn read_bytes(s: &mut Sink<'_>, mut n: Node<'_>) -> BytesSchema {
    BytesSchema {
        description: n.opt_str(s, "description"),
        min_length: n.opt_u64(s, "minLength"),
        max_length: n.opt_u64(s, "maxLength"),
        extra: n.extra(),
    }
}

fn read_cid_link(s: &mut Sink<'_>, mut n: Node<'_>) -> CidLinkSchema {
    CidLinkSchema {
        description: n.opt_str(s, "description"),
        extra: n.extra(),
    }
}

fn read_blob(s: &mut Sink<'_>, mut n: Node<'_>) -> BlobSchema {
    BlobSchema {
        description: n.opt_str(s, "description"),
        accept: n.opt_strings(s, "accept"),
        max_size: n.opt_u64(s, "maxSize"),
        extra: n.extra(),
    }
}

fn read_array(s: &mut Sink<'_>, mut n: Node<'_>) -> ArraySchema {
    let items = match n.take("items") {
        None => {
            s.error(&n.path, "missing required key `items`");
            None
        }
        Some(v) => read_field(s, &n.at("items"), v),
    };
    ArraySchema {
        description: n.opt_str(s, "description"),
        items: Box::new(items.unwrap_or(FieldType::Unknown(UnknownSchema::default()))),
        min_length: n.opt_u64(s, "minLength"),
        max_length: n.opt_u64(s, "maxLength"),
        extra: n.extra(),
    }
}

fn read_object(s: &mut Sink<'_>, mut n: Node<'_>) -> ObjectSchema {
    let mut properties = BTreeMap::new();
    match n.take("properties") {
        None => s.error(&n.path, "missing required key `properties`"),
        Some(Value::Object(map)) => {
            let base = n.at("properties");
            for (name, v) in map {
                if let Some(f) = read_field(s, &join(&base, name), v) {
                    properties.insert(name.clone(), f);
                }
            }
        }
        Some(other) => s.error(
            &n.at("properties"),
            format!(
                "expected an object of properties, found {}",
                describe(other)
            ),
        ),
    }
    ObjectSchema {
        description: n.opt_str(s, "description"),
        required: n.opt_strings(s, "required"),
        nullable: n.opt_strings(s, "nullable"),
        properties,
        extra: n.extra(),
    }
}

fn read_ref_string(s: &mut Sink<'_>, path: &str, v: &Value) -> Option<Ref> {
    let text = as_string(s, path, v)?;
    match Ref::parse(&text) {
        Ok(r) => Some(r),
        Err(e) => {
            s.error(path, e.to_string());
            None
        }
    }
}

fn read_ref(s: &mut Sink<'_>, mut n: Node<'_>) -> RefSchema {
    let reference = match n.take("ref") {
        None => {
            s.error(&n.path, "missing required key `ref`");
            None
        }
        Some(v) => read_ref_string(s, &n.at("ref"), v),
    };
    RefSchema {
        description: n.opt_str(s, "description"),
        reference: reference.unwrap_or_else(Ref::placeholder),
        extra: n.extra(),
    }
}

fn read_union(s: &mut Sink<'_>, mut n: Node<'_>) -> UnionSchema {
    if !n.rest.contains_key("refs") {
        s.error(&n.path, "missing required key `refs`");
    }
    UnionSchema {
        description: n.opt_str(s, "description"),
        refs: n.opt_list(s, "refs", read_ref_string).unwrap_or_default(),
        closed: n.opt_bool(s, "closed"),
        extra: n.extra(),
    }
}

fn read_record(s: &mut Sink<'_>, mut n: Node<'_>) -> Record {
    // A missing `key` is accepted (the reference does); `check_document` warns about it.
    let key_given = n.rest.contains_key("key");
    let key = match n.take("key") {
        None => Some(RecordKey::Any),
        Some(v) => as_string(s, &n.at("key"), v).and_then(|k| {
            let parsed = RecordKey::parse(&k);
            if parsed.is_none() {
                s.error(
                    &n.at("key"),
                    format!("expected tid, nsid, any or literal:<record-key>, found {k:?}"),
                );
            }
            parsed
        }),
    };
    let record = match n.take("record") {
        None => {
            s.error(&n.path, "missing required key `record`");
            None
        }
        Some(v) => {
            let path = n.at("record");
            Node::new(s, &path, v).map(|mut r| {
                r.expect_type(s, "object");
                read_object(s, r)
            })
        }
    };
    Record {
        description: n.opt_str(s, "description"),
        key: key.unwrap_or(RecordKey::Any),
        key_given,
        record: record.unwrap_or_default(),
        extra: n.extra(),
    }
}

fn read_params_opt(s: &mut Sink<'_>, n: &mut Node<'_>) -> Option<Params> {
    let v = n.take("parameters")?;
    let path = n.at("parameters");
    let mut p = Node::new(s, &path, v)?;
    p.expect_type(s, "params");
    let mut properties = BTreeMap::new();
    match p.take("properties") {
        None => s.error(&p.path, "missing required key `properties`"),
        Some(Value::Object(map)) => {
            let base = p.at("properties");
            for (name, v) in map {
                if let Some(t) = read_param_type(s, &join(&base, name), v) {
                    properties.insert(name.clone(), t);
                }
            }
        }
        Some(other) => s.error(
            &p.at("properties"),
            format!(
                "expected an object of parameters, found {}",
                describe(other)
            ),
        ),
    }
    p.deny(s, "nullable", "`nullable` is not allowed in params");
    Some(Params {
        description: p.opt_str(s, "description"),
        required: p.opt_strings(s, "required"),
        properties,
        extra: p.extra(),
    })
}

const PARAM_TYPES: &str = "boolean, integer, string, array";
const PARAM_ITEM_TYPES: &str = "boolean, integer, string";

fn read_param_type(s: &mut Sink<'_>, path: &str, value: &Value) -> Option<ParamType> {
    let mut n = Node::new(s, path, value)?;
    let t = n.type_name(s)?;
    Some(match t {
        "boolean" => ParamType::Boolean(read_boolean(s, n)),
        "integer" => ParamType::Integer(read_integer(s, n)),
        "string" => ParamType::String(read_string(s, n)),
        "array" => {
            let items = match n.take("items") {
                None => {
                    s.error(&n.path, "missing required key `items`");
                    None
                }
                Some(v) => read_param_item(s, &n.at("items"), v),
            };
            ParamType::Array(ParamArray {
                description: n.opt_str(s, "description"),
                items: items.unwrap_or(ParamItem::String(StringSchema::default())),
                min_length: n.opt_u64(s, "minLength"),
                max_length: n.opt_u64(s, "maxLength"),
                extra: n.extra(),
            })
        }
        other => {
            misplaced(s, &join(path, "type"), other, "as a parameter", PARAM_TYPES);
            return None;
        }
    })
}

fn read_param_item(s: &mut Sink<'_>, path: &str, value: &Value) -> Option<ParamItem> {
    let mut n = Node::new(s, path, value)?;
    let t = n.type_name(s)?;
    Some(match t {
        "boolean" => ParamItem::Boolean(read_boolean(s, n)),
        "integer" => ParamItem::Integer(read_integer(s, n)),
        "string" => ParamItem::String(read_string(s, n)),
        other => {
            misplaced(
                s,
                &join(path, "type"),
                other,
                "as an array parameter item",
                PARAM_ITEM_TYPES,
            );
            return None;
        }
    })
}

fn read_body_opt(s: &mut Sink<'_>, n: &mut Node<'_>, key: &str) -> Option<Body> {
    let v = n.take(key)?;
    let path = n.at(key);
    let mut b = Node::new(s, &path, v)?;
    let encoding = b.req_str(s, "encoding");
    let schema = match b.take("schema") {
        None => None,
        Some(v) => {
            let spath = b.at("schema");
            Node::new(s, &spath, v).and_then(|mut sn| {
                let t = sn.type_name(s)?;
                Some(match t {
                    "object" => BodySchema::Object(read_object(s, sn)),
                    "ref" => BodySchema::Ref(read_ref(s, sn)),
                    "union" => BodySchema::Union(read_union(s, sn)),
                    other => {
                        misplaced(
                            s,
                            &join(&spath, "type"),
                            other,
                            "as a body schema",
                            "object, ref, union",
                        );
                        return None;
                    }
                })
            })
        }
    };
    Some(Body {
        description: b.opt_str(s, "description"),
        encoding,
        schema,
        extra: b.extra(),
    })
}

fn read_errors_opt(s: &mut Sink<'_>, n: &mut Node<'_>) -> Option<Vec<ErrorDef>> {
    n.opt_list(s, "errors", |s, path, v| {
        let mut e = Node::new(s, path, v)?;
        Some(ErrorDef {
            name: e.req_str(s, "name"),
            description: e.opt_str(s, "description"),
            extra: e.extra(),
        })
    })
}

fn read_query(s: &mut Sink<'_>, mut n: Node<'_>) -> Query {
    Query {
        description: n.opt_str(s, "description"),
        parameters: read_params_opt(s, &mut n),
        output: read_body_opt(s, &mut n, "output"),
        errors: read_errors_opt(s, &mut n),
        extra: n.extra(),
    }
}

fn read_procedure(s: &mut Sink<'_>, mut n: Node<'_>) -> Procedure {
    Procedure {
        description: n.opt_str(s, "description"),
        parameters: read_params_opt(s, &mut n),
        input: read_body_opt(s, &mut n, "input"),
        output: read_body_opt(s, &mut n, "output"),
        errors: read_errors_opt(s, &mut n),
        extra: n.extra(),
    }
}

fn read_subscription(s: &mut Sink<'_>, mut n: Node<'_>) -> Subscription {
    let message = match n.take("message") {
        None => None,
        Some(v) => {
            let path = n.at("message");
            Node::new(s, &path, v).map(|mut m| {
                let schema = match m.take("schema") {
                    None => {
                        s.error(&m.path, "missing required key `schema`");
                        None
                    }
                    Some(v) => {
                        let spath = m.at("schema");
                        Node::new(s, &spath, v).map(|mut u| {
                            u.expect_type(s, "union");
                            read_union(s, u)
                        })
                    }
                };
                Message {
                    description: m.opt_str(s, "description"),
                    schema: schema.unwrap_or_default(),
                    extra: m.extra(),
                }
            })
        }
    };
    Subscription {
        description: n.opt_str(s, "description"),
        parameters: read_params_opt(s, &mut n),
        message,
        errors: read_errors_opt(s, &mut n),
        extra: n.extra(),
    }
}

fn read_permission_set(s: &mut Sink<'_>, mut n: Node<'_>) -> PermissionSet {
    if !n.rest.contains_key("permissions") {
        s.error(&n.path, "missing required key `permissions`");
    }
    let permissions = n
        .opt_list(s, "permissions", |s, path, v| {
            let mut p = Node::new(s, path, v)?;
            p.expect_type(s, "permission");
            let resource = p.req_str(s, "resource");
            Some(Permission {
                resource,
                fields: p.extra(),
            })
        })
        .unwrap_or_default();
    PermissionSet {
        description: n.opt_str(s, "description"),
        title: n.opt_str(s, "title"),
        title_lang: n.opt_string_map(s, "title:lang"),
        detail: n.opt_str(s, "detail"),
        detail_lang: n.opt_string_map(s, "detail:lang"),
        permissions,
        extra: n.extra(),
    }
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

fn base(type_name: Option<&str>, extra: &Extra) -> Map<String, Value> {
    let mut m: Map<String, Value> = extra.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if let Some(t) = type_name {
        m.insert("type".into(), Value::from(t));
    }
    m
}

fn put<T: Into<Value>>(m: &mut Map<String, Value>, key: &str, v: Option<T>) {
    if let Some(v) = v {
        m.insert(key.to_owned(), v.into());
    }
}

fn put_map(m: &mut Map<String, Value>, key: &str, v: &Option<BTreeMap<String, String>>) {
    if let Some(map) = v {
        let obj: Map<String, Value> = map
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect();
        m.insert(key.to_owned(), Value::Object(obj));
    }
}

impl Def {
    /// The definition as JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Def::Record(r) => {
                let mut m = base(Some("record"), &r.extra);
                put(&mut m, "description", r.description.clone());
                if r.key_given {
                    m.insert("key".into(), Value::from(r.key.to_string()));
                }
                m.insert("record".into(), r.record.to_json());
                Value::Object(m)
            }
            Def::Query(q) => {
                let mut m = base(Some("query"), &q.extra);
                put(&mut m, "description", q.description.clone());
                put(
                    &mut m,
                    "parameters",
                    q.parameters.as_ref().map(Params::to_json),
                );
                put(&mut m, "output", q.output.as_ref().map(Body::to_json));
                put(&mut m, "errors", q.errors.as_ref().map(|e| errors_json(e)));
                Value::Object(m)
            }
            Def::Procedure(q) => {
                let mut m = base(Some("procedure"), &q.extra);
                put(&mut m, "description", q.description.clone());
                put(
                    &mut m,
                    "parameters",
                    q.parameters.as_ref().map(Params::to_json),
                );
                put(&mut m, "input", q.input.as_ref().map(Body::to_json));
                put(&mut m, "output", q.output.as_ref().map(Body::to_json));
                put(&mut m, "errors", q.errors.as_ref().map(|e| errors_json(e)));
                Value::Object(m)
            }
            Def::Subscription(q) => {
                let mut m = base(Some("subscription"), &q.extra);
                put(&mut m, "description", q.description.clone());
                put(
                    &mut m,
                    "parameters",
                    q.parameters.as_ref().map(Params::to_json),
                );
                put(
                    &mut m,
                    "message",
                    q.message.as_ref().map(|msg| {
                        let mut mm = base(None, &msg.extra);
                        put(&mut mm, "description", msg.description.clone());
                        mm.insert("schema".into(), union_json(&msg.schema));
                        Value::Object(mm)
                    }),
                );
                put(&mut m, "errors", q.errors.as_ref().map(|e| errors_json(e)));
                Value::Object(m)
            }
            Def::PermissionSet(p) => {
                let mut m = base(Some("permission-set"), &p.extra);
                put(&mut m, "description", p.description.clone());
                put(&mut m, "title", p.title.clone());
                put_map(&mut m, "title:lang", &p.title_lang);
                put(&mut m, "detail", p.detail.clone());
                put_map(&mut m, "detail:lang", &p.detail_lang);
                let perms: Vec<Value> = p
                    .permissions
                    .iter()
                    .map(|perm| {
                        let mut pm = base(Some("permission"), &perm.fields);
                        pm.insert("resource".into(), Value::from(perm.resource.clone()));
                        Value::Object(pm)
                    })
                    .collect();
                m.insert("permissions".into(), Value::Array(perms));
                Value::Object(m)
            }
            Def::Token(t) => {
                let mut m = base(Some("token"), &t.extra);
                put(&mut m, "description", t.description.clone());
                Value::Object(m)
            }
            Def::Boolean(x) => boolean_json(x),
            Def::Integer(x) => integer_json(x),
            Def::String(x) => string_json(x),
            Def::Bytes(x) => bytes_json(x),
            Def::CidLink(x) => cid_link_json(x),
            Def::Blob(x) => blob_json(x),
            Def::Array(x) => array_json(x),
            Def::Object(x) => x.to_json(),
        }
    }
}

impl FieldType {
    /// The field schema as JSON.
    pub fn to_json(&self) -> Value {
        match self {
            FieldType::Boolean(x) => boolean_json(x),
            FieldType::Integer(x) => integer_json(x),
            FieldType::String(x) => string_json(x),
            FieldType::Bytes(x) => bytes_json(x),
            FieldType::CidLink(x) => cid_link_json(x),
            FieldType::Blob(x) => blob_json(x),
            FieldType::Array(x) => array_json(x),
            FieldType::Object(x) => x.to_json(),
            FieldType::Ref(x) => ref_json(x),
            FieldType::Union(x) => union_json(x),
            FieldType::Unknown(x) => {
                let mut m = base(Some("unknown"), &x.extra);
                put(&mut m, "description", x.description.clone());
                Value::Object(m)
            }
        }
    }
}

impl ObjectSchema {
    /// The object schema as JSON.
    pub fn to_json(&self) -> Value {
        let mut m = base(Some("object"), &self.extra);
        put(&mut m, "description", self.description.clone());
        put(&mut m, "required", self.required.clone());
        put(&mut m, "nullable", self.nullable.clone());
        let props: Map<String, Value> = self
            .properties
            .iter()
            .map(|(k, f)| (k.clone(), f.to_json()))
            .collect();
        m.insert("properties".into(), Value::Object(props));
        Value::Object(m)
    }
}

impl Params {
    /// The params schema as JSON.
    pub fn to_json(&self) -> Value {
        let mut m = base(Some("params"), &self.extra);
        put(&mut m, "description", self.description.clone());
        put(&mut m, "required", self.required.clone());
        let props: Map<String, Value> = self
            .properties
            .iter()
            .map(|(k, p)| {
                let v = match p {
                    ParamType::Boolean(x) => boolean_json(x),
                    ParamType::Integer(x) => integer_json(x),
                    ParamType::String(x) => string_json(x),
                    ParamType::Array(a) => {
                        let mut am = base(Some("array"), &a.extra);
                        put(&mut am, "description", a.description.clone());
                        let items = match &a.items {
                            ParamItem::Boolean(x) => boolean_json(x),
                            ParamItem::Integer(x) => integer_json(x),
                            ParamItem::String(x) => string_json(x),
                        };
                        am.insert("items".into(), items);
                        put(&mut am, "minLength", a.min_length);
                        put(&mut am, "maxLength", a.max_length);
                        Value::Object(am)
                    }
                };
                (k.clone(), v)
            })
            .collect();
        m.insert("properties".into(), Value::Object(props));
        Value::Object(m)
    }
}

impl Body {
    /// The body as JSON.
    pub fn to_json(&self) -> Value {
        let mut m = base(None, &self.extra);
        put(&mut m, "description", self.description.clone());
        m.insert("encoding".into(), Value::from(self.encoding.clone()));
        put(
            &mut m,
            "schema",
            self.schema.as_ref().map(|s| match s {
                BodySchema::Object(o) => o.to_json(),
                BodySchema::Ref(r) => ref_json(r),
                BodySchema::Union(u) => union_json(u),
            }),
        );
        Value::Object(m)
    }
}

fn errors_json(errors: &[ErrorDef]) -> Value {
    Value::Array(
        errors
            .iter()
            .map(|e| {
                let mut m = base(None, &e.extra);
                m.insert("name".into(), Value::from(e.name.clone()));
                put(&mut m, "description", e.description.clone());
                Value::Object(m)
            })
            .collect(),
    )
}

fn boolean_json(x: &BooleanSchema) -> Value {
    let mut m = base(Some("boolean"), &x.extra);
    put(&mut m, "description", x.description.clone());
    put(&mut m, "default", x.default);
    put(&mut m, "const", x.const_value);
    Value::Object(m)
}

fn integer_json(x: &IntegerSchema) -> Value {
    let mut m = base(Some("integer"), &x.extra);
    put(&mut m, "description", x.description.clone());
    put(&mut m, "minimum", x.minimum);
    put(&mut m, "maximum", x.maximum);
    put(&mut m, "enum", x.enum_values.clone());
    put(&mut m, "default", x.default);
    put(&mut m, "const", x.const_value);
    Value::Object(m)
}

fn string_json(x: &StringSchema) -> Value {
    let mut m = base(Some("string"), &x.extra);
    put(&mut m, "description", x.description.clone());
    put(&mut m, "format", x.format.map(Format::lexicon_name));
    put(&mut m, "minLength", x.min_length);
    put(&mut m, "maxLength", x.max_length);
    put(&mut m, "minGraphemes", x.min_graphemes);
    put(&mut m, "maxGraphemes", x.max_graphemes);
    put(&mut m, "enum", x.enum_values.clone());
    put(&mut m, "knownValues", x.known_values.clone());
    put(&mut m, "default", x.default.clone());
    put(&mut m, "const", x.const_value.clone());
    Value::Object(m)
}

fn bytes_json(x: &BytesSchema) -> Value {
    let mut m = base(Some("bytes"), &x.extra);
    put(&mut m, "description", x.description.clone());
    put(&mut m, "minLength", x.min_length);
    put(&mut m, "maxLength", x.max_length);
    Value::Object(m)
}

fn cid_link_json(x: &CidLinkSchema) -> Value {
    let mut m = base(Some("cid-link"), &x.extra);
    put(&mut m, "description", x.description.clone());
    Value::Object(m)
}

fn blob_json(x: &BlobSchema) -> Value {
    let mut m = base(Some("blob"), &x.extra);
    put(&mut m, "description", x.description.clone());
    put(&mut m, "accept", x.accept.clone());
    put(&mut m, "maxSize", x.max_size);
    Value::Object(m)
}

fn array_json(x: &ArraySchema) -> Value {
    let mut m = base(Some("array"), &x.extra);
    put(&mut m, "description", x.description.clone());
    m.insert("items".into(), x.items.to_json());
    put(&mut m, "minLength", x.min_length);
    put(&mut m, "maxLength", x.max_length);
    Value::Object(m)
}

fn ref_json(x: &RefSchema) -> Value {
    let mut m = base(Some("ref"), &x.extra);
    put(&mut m, "description", x.description.clone());
    m.insert("ref".into(), Value::from(x.reference.as_str()));
    Value::Object(m)
}

fn union_json(x: &UnionSchema) -> Value {
    let mut m = base(Some("union"), &x.extra);
    put(&mut m, "description", x.description.clone());
    let refs: Vec<Value> = x.refs.iter().map(|r| Value::from(r.as_str())).collect();
    m.insert("refs".into(), Value::Array(refs));
    put(&mut m, "closed", x.closed);
    Value::Object(m)
}

impl serde::Serialize for LexiconDoc {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for LexiconDoc {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        LexiconDoc::from_json(&value).map_err(serde::de::Error::custom)
    }
}
