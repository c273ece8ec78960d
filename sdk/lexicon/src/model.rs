//! The typed model of a lexicon document.
//!
//! Every schema object of lexicon-rules.md has a struct here. Optional keys are `Option`s so that
//! a document serialises back to exactly the JSON it was read from; keys the model does not know
//! are kept in an `extra` map on the node they were found in and written back unchanged.
//!
//! The enums follow the places where each type may appear:
//!
//! * [`Def`] — a named definition (`defs.<name>`): the primary types, `token`, and the concrete
//!   field types. `ref`, `union`, `unknown`, `params` and `permission` cannot be defined.
//! * [`FieldType`] — an object property or array item.
//! * [`ParamType`] — a `params` property (`boolean`, `integer`, `string`, or an array of those).
//! * [`BodySchema`] — the schema of an XRPC body (`object`, `ref` or `union`).
//!
//! Maps are `BTreeMap`s, so walking a document is deterministic.

use std::collections::BTreeMap;
use std::fmt;

use atlex_types::format::Format;
use serde_json::Value;

/// Keys of a schema object that the model does not know, kept for the round trip.
pub type Extra = BTreeMap<String, Value>;

/// A lexicon document (`{"lexicon": 1, "id": …, "defs": {…}}`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LexiconDoc {
    /// The lexicon language version; only `1` is valid (enforced by the schema checks).
    pub lexicon: i64,
    /// The NSID of the document (validated by the schema checks).
    pub id: String,
    /// Optional revision number (TS extension, unused by the official lexicons).
    pub revision: Option<i64>,
    /// Optional description.
    pub description: Option<String>,
    /// The named definitions, sorted by name.
    pub defs: BTreeMap<String, Def>,
    /// Unknown top-level keys.
    pub extra: Extra,
}

impl LexiconDoc {
    /// The NSID of the document.
    pub fn nsid(&self) -> &str {
        &self.id
    }

    /// The `main` definition, if any.
    pub fn main(&self) -> Option<&Def> {
        self.defs.get("main")
    }

    /// The definition called `name`.
    pub fn def(&self, name: &str) -> Option<&Def> {
        self.defs.get(name)
    }

    /// Every reference in the document (from `ref` fields, body schemas, `union` refs and the
    /// subscription message), with the def and field path where it appears, in document order.
    pub fn refs(&self) -> Vec<RefUse<'_>> {
        let mut out = Vec::new();
        for (name, def) in &self.defs {
            def.collect_refs(name, &mut String::new(), &mut out);
        }
        out
    }
}

/// One use of a reference inside a document (see [`LexiconDoc::refs`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RefUse<'a> {
    /// The def that contains the reference.
    pub def: &'a str,
    /// The field path inside the def (e.g. `record.properties.embed.refs[0]`).
    pub path: String,
    /// The reference.
    pub reference: &'a Ref,
    /// Whether it is a `ref` (or body `ref`) or a member of a `union`.
    pub kind: RefKind,
}

/// Where a reference appears, which decides the definition types it may point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefKind {
    /// A `ref` schema: the target must be a data type (not a token or an endpoint).
    Ref,
    /// A `union` member: the target must be an `object` or a `record`.
    Union,
}

/// A named definition.
#[derive(Debug, Clone, PartialEq)]
pub enum Def {
    /// `record` (only as `main`).
    Record(Record),
    /// `query` (only as `main`).
    Query(Query),
    /// `procedure` (only as `main`).
    Procedure(Procedure),
    /// `subscription` (only as `main`).
    Subscription(Subscription),
    /// `permission-set` (only as `main`).
    PermissionSet(PermissionSet),
    /// `token`.
    Token(Token),
    /// `boolean`.
    Boolean(BooleanSchema),
    /// `integer`.
    Integer(IntegerSchema),
    /// `string`.
    String(StringSchema),
    /// `bytes`.
    Bytes(BytesSchema),
    /// `cid-link`.
    CidLink(CidLinkSchema),
    /// `blob`.
    Blob(BlobSchema),
    /// `array`.
    Array(ArraySchema),
    /// `object`.
    Object(ObjectSchema),
}

impl Def {
    /// The lexicon `type` name (`"record"`, `"object"`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            Def::Record(_) => "record",
            Def::Query(_) => "query",
            Def::Procedure(_) => "procedure",
            Def::Subscription(_) => "subscription",
            Def::PermissionSet(_) => "permission-set",
            Def::Token(_) => "token",
            Def::Boolean(_) => "boolean",
            Def::Integer(_) => "integer",
            Def::String(_) => "string",
            Def::Bytes(_) => "bytes",
            Def::CidLink(_) => "cid-link",
            Def::Blob(_) => "blob",
            Def::Array(_) => "array",
            Def::Object(_) => "object",
        }
    }

    /// Whether this is one of the primary types (`record`, `query`, `procedure`,
    /// `subscription`, `permission-set`), which may only be defined as `main`.
    pub fn is_primary(&self) -> bool {
        matches!(
            self,
            Def::Record(_)
                | Def::Query(_)
                | Def::Procedure(_)
                | Def::Subscription(_)
                | Def::PermissionSet(_)
        )
    }

    /// The description, if any.
    pub fn description(&self) -> Option<&str> {
        match self {
            Def::Record(s) => s.description.as_deref(),
            Def::Query(s) => s.description.as_deref(),
            Def::Procedure(s) => s.description.as_deref(),
            Def::Subscription(s) => s.description.as_deref(),
            Def::PermissionSet(s) => s.description.as_deref(),
            Def::Token(s) => s.description.as_deref(),
            Def::Boolean(s) => s.description.as_deref(),
            Def::Integer(s) => s.description.as_deref(),
            Def::String(s) => s.description.as_deref(),
            Def::Bytes(s) => s.description.as_deref(),
            Def::CidLink(s) => s.description.as_deref(),
            Def::Blob(s) => s.description.as_deref(),
            Def::Array(s) => s.description.as_deref(),
            Def::Object(s) => s.description.as_deref(),
        }
    }

    /// The object schema that data of this def is validated against: the object itself, or the
    /// `record` object of a record.
    pub fn as_object(&self) -> Option<&ObjectSchema> {
        match self {
            Def::Object(o) => Some(o),
            Def::Record(r) => Some(&r.record),
            _ => None,
        }
    }

    fn collect_refs<'a>(&'a self, def: &'a str, path: &mut String, out: &mut Vec<RefUse<'a>>) {
        match self {
            Def::Record(r) => with_segment(path, "record", |p| r.record.collect_refs(def, p, out)),
            Def::Query(q) => {
                if let Some(b) = &q.output {
                    with_segment(path, "output", |p| b.collect_refs(def, p, out));
                }
            }
            Def::Procedure(q) => {
                if let Some(b) = &q.input {
                    with_segment(path, "input", |p| b.collect_refs(def, p, out));
                }
                if let Some(b) = &q.output {
                    with_segment(path, "output", |p| b.collect_refs(def, p, out));
                }
            }
            Def::Subscription(s) => {
                if let Some(m) = &s.message {
                    with_segment(path, "message.schema", |p| {
                        collect_union_refs(&m.schema, def, p, out)
                    });
                }
            }
            Def::Array(a) => with_segment(path, "items", |p| a.items.collect_refs(def, p, out)),
            Def::Object(o) => o.collect_refs(def, path, out),
            Def::PermissionSet(_)
            | Def::Token(_)
            | Def::Boolean(_)
            | Def::Integer(_)
            | Def::String(_)
            | Def::Bytes(_)
            | Def::CidLink(_)
            | Def::Blob(_) => {}
        }
    }
}

fn with_segment<R>(path: &mut String, seg: &str, f: impl FnOnce(&mut String) -> R) -> R {
    let len = path.len();
    if !path.is_empty() && !seg.starts_with('[') {
        path.push('.');
    }
    path.push_str(seg);
    let r = f(path);
    path.truncate(len);
    r
}

fn collect_union_refs<'a>(
    u: &'a UnionSchema,
    def: &'a str,
    path: &mut String,
    out: &mut Vec<RefUse<'a>>,
) {
    for (i, r) in u.refs.iter().enumerate() {
        with_segment(path, &format!("refs[{i}]"), |p| {
            out.push(RefUse {
                def,
                path: p.clone(),
                reference: r,
                kind: RefKind::Union,
            })
        });
    }
}

/// A field type: what an object property or an array item may be.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldType {
    /// `boolean`.
    Boolean(BooleanSchema),
    /// `integer`.
    Integer(IntegerSchema),
    /// `string`.
    String(StringSchema),
    /// `bytes`.
    Bytes(BytesSchema),
    /// `cid-link`.
    CidLink(CidLinkSchema),
    /// `blob`.
    Blob(BlobSchema),
    /// `array`.
    Array(ArraySchema),
    /// An inline `object` (accepted as in the Go reference; codegen must name it).
    Object(ObjectSchema),
    /// `ref`.
    Ref(RefSchema),
    /// `union`.
    Union(UnionSchema),
    /// `unknown`: any data-model object.
    Unknown(UnknownSchema),
}

impl FieldType {
    /// The lexicon `type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldType::Boolean(_) => "boolean",
            FieldType::Integer(_) => "integer",
            FieldType::String(_) => "string",
            FieldType::Bytes(_) => "bytes",
            FieldType::CidLink(_) => "cid-link",
            FieldType::Blob(_) => "blob",
            FieldType::Array(_) => "array",
            FieldType::Object(_) => "object",
            FieldType::Ref(_) => "ref",
            FieldType::Union(_) => "union",
            FieldType::Unknown(_) => "unknown",
        }
    }

    /// The description, if any.
    pub fn description(&self) -> Option<&str> {
        match self {
            FieldType::Boolean(s) => s.description.as_deref(),
            FieldType::Integer(s) => s.description.as_deref(),
            FieldType::String(s) => s.description.as_deref(),
            FieldType::Bytes(s) => s.description.as_deref(),
            FieldType::CidLink(s) => s.description.as_deref(),
            FieldType::Blob(s) => s.description.as_deref(),
            FieldType::Array(s) => s.description.as_deref(),
            FieldType::Object(s) => s.description.as_deref(),
            FieldType::Ref(s) => s.description.as_deref(),
            FieldType::Union(s) => s.description.as_deref(),
            FieldType::Unknown(s) => s.description.as_deref(),
        }
    }

    fn collect_refs<'a>(&'a self, def: &'a str, path: &mut String, out: &mut Vec<RefUse<'a>>) {
        match self {
            FieldType::Array(a) => {
                with_segment(path, "items", |p| a.items.collect_refs(def, p, out))
            }
            FieldType::Object(o) => o.collect_refs(def, path, out),
            FieldType::Ref(r) => with_segment(path, "ref", |p| {
                out.push(RefUse {
                    def,
                    path: p.clone(),
                    reference: &r.reference,
                    kind: RefKind::Ref,
                })
            }),
            FieldType::Union(u) => collect_union_refs(u, def, path, out),
            FieldType::Boolean(_)
            | FieldType::Integer(_)
            | FieldType::String(_)
            | FieldType::Bytes(_)
            | FieldType::CidLink(_)
            | FieldType::Blob(_)
            | FieldType::Unknown(_) => {}
        }
    }
}

/// `record`: a repository record type.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Description.
    pub description: Option<String>,
    /// The record key type ([`RecordKey::Any`] when the document has no `key`).
    pub key: RecordKey,
    /// Whether the document has a `key`. The spec requires one; the reference implementation
    /// does not, so a record without one is accepted with a warning and read as `any`
    /// (relaxation R1 in the codegen README).
    pub key_given: bool,
    /// The record's object schema.
    pub record: ObjectSchema,
    /// Unknown keys.
    pub extra: Extra,
}

/// The record key type of a record (`key`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecordKey {
    /// `tid`: a timestamp identifier.
    Tid,
    /// `nsid`: the key is an NSID.
    Nsid,
    /// `any`: any valid record key.
    Any,
    /// `literal:<rkey>`: exactly this key (e.g. `literal:self`); holds the part after `literal:`.
    Literal(String),
}

impl RecordKey {
    /// Parses the lexicon spelling; `None` when it is none of the four forms.
    pub fn parse(text: &str) -> Option<RecordKey> {
        match text {
            "tid" => Some(RecordKey::Tid),
            "nsid" => Some(RecordKey::Nsid),
            "any" => Some(RecordKey::Any),
            _ => text
                .strip_prefix("literal:")
                .map(|rest| RecordKey::Literal(rest.to_owned())),
        }
    }
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordKey::Tid => f.write_str("tid"),
            RecordKey::Nsid => f.write_str("nsid"),
            RecordKey::Any => f.write_str("any"),
            RecordKey::Literal(k) => write!(f, "literal:{k}"),
        }
    }
}

/// `query`: an XRPC method called with HTTP GET.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    /// Description.
    pub description: Option<String>,
    /// Query parameters.
    pub parameters: Option<Params>,
    /// Response body.
    pub output: Option<Body>,
    /// Declared errors.
    pub errors: Option<Vec<ErrorDef>>,
    /// Unknown keys.
    pub extra: Extra,
}

/// `procedure`: an XRPC method called with HTTP POST.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Procedure {
    /// Description.
    pub description: Option<String>,
    /// Query parameters.
    pub parameters: Option<Params>,
    /// Request body.
    pub input: Option<Body>,
    /// Response body.
    pub output: Option<Body>,
    /// Declared errors.
    pub errors: Option<Vec<ErrorDef>>,
    /// Unknown keys.
    pub extra: Extra,
}

/// `subscription`: an event stream over WebSocket.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Subscription {
    /// Description.
    pub description: Option<String>,
    /// Query parameters.
    pub parameters: Option<Params>,
    /// The message schema (required by the schema checks).
    pub message: Option<Message>,
    /// Declared errors.
    pub errors: Option<Vec<ErrorDef>>,
    /// Unknown keys.
    pub extra: Extra,
}

/// The `message` of a subscription.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    /// Description.
    pub description: Option<String>,
    /// The union of message types; each frame's `t` header names one variant by fragment.
    pub schema: UnionSchema,
    /// Unknown keys.
    pub extra: Extra,
}

/// `params`: the query parameters of an XRPC method.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Params {
    /// Description.
    pub description: Option<String>,
    /// Required parameter names.
    pub required: Option<Vec<String>>,
    /// The parameters.
    pub properties: BTreeMap<String, ParamType>,
    /// Unknown keys.
    pub extra: Extra,
}

impl Params {
    /// Whether `name` is listed in `required`.
    pub fn is_required(&self, name: &str) -> bool {
        self.required
            .as_ref()
            .is_some_and(|r| r.iter().any(|n| n == name))
    }
}

/// The type of one query parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamType {
    /// `boolean`.
    Boolean(BooleanSchema),
    /// `integer`.
    Integer(IntegerSchema),
    /// `string`.
    String(StringSchema),
    /// `array` of booleans, integers or strings (sent as repeated keys).
    Array(ParamArray),
}

impl ParamType {
    /// The lexicon `type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            ParamType::Boolean(_) => "boolean",
            ParamType::Integer(_) => "integer",
            ParamType::String(_) => "string",
            ParamType::Array(_) => "array",
        }
    }

    /// The description, if any.
    pub fn description(&self) -> Option<&str> {
        match self {
            ParamType::Boolean(s) => s.description.as_deref(),
            ParamType::Integer(s) => s.description.as_deref(),
            ParamType::String(s) => s.description.as_deref(),
            ParamType::Array(s) => s.description.as_deref(),
        }
    }
}

/// An `array` query parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamArray {
    /// Description.
    pub description: Option<String>,
    /// The item type.
    pub items: ParamItem,
    /// Minimum number of values.
    pub min_length: Option<u64>,
    /// Maximum number of values.
    pub max_length: Option<u64>,
    /// Unknown keys.
    pub extra: Extra,
}

/// The item type of an array query parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamItem {
    /// `boolean`.
    Boolean(BooleanSchema),
    /// `integer`.
    Integer(IntegerSchema),
    /// `string`.
    String(StringSchema),
}

impl ParamItem {
    /// The lexicon `type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            ParamItem::Boolean(_) => "boolean",
            ParamItem::Integer(_) => "integer",
            ParamItem::String(_) => "string",
        }
    }
}

/// An XRPC request or response body (`input` / `output`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Body {
    /// Description.
    pub description: Option<String>,
    /// The MIME type (`application/json`, `*/*`, …).
    pub encoding: String,
    /// The body schema (meaningful for `application/json`).
    pub schema: Option<BodySchema>,
    /// Unknown keys.
    pub extra: Extra,
}

impl Body {
    /// Whether the body is JSON (`application/json`).
    pub fn is_json(&self) -> bool {
        self.encoding == "application/json"
    }

    fn collect_refs<'a>(&'a self, def: &'a str, path: &mut String, out: &mut Vec<RefUse<'a>>) {
        let Some(schema) = &self.schema else { return };
        with_segment(path, "schema", |p| match schema {
            BodySchema::Object(o) => o.collect_refs(def, p, out),
            BodySchema::Ref(r) => with_segment(p, "ref", |p| {
                out.push(RefUse {
                    def,
                    path: p.clone(),
                    reference: &r.reference,
                    kind: RefKind::Ref,
                })
            }),
            BodySchema::Union(u) => collect_union_refs(u, def, p, out),
        })
    }
}

/// The schema of an XRPC body.
#[derive(Debug, Clone, PartialEq)]
pub enum BodySchema {
    /// An inline object.
    Object(ObjectSchema),
    /// A reference to an object (or record) def.
    Ref(RefSchema),
    /// A union (the body must then carry `$type`).
    Union(UnionSchema),
}

/// A declared XRPC error (`errors[]`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ErrorDef {
    /// The error name (the `error` field of the response body).
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Unknown keys.
    pub extra: Extra,
}

/// `permission-set`: a named bundle of OAuth permissions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PermissionSet {
    /// Description.
    pub description: Option<String>,
    /// Short title shown to users.
    pub title: Option<String>,
    /// Translations of the title, by language tag (`title:lang`).
    pub title_lang: Option<BTreeMap<String, String>>,
    /// Longer detail shown to users.
    pub detail: Option<String>,
    /// Translations of the detail, by language tag (`detail:lang`).
    pub detail_lang: Option<BTreeMap<String, String>>,
    /// The permissions.
    pub permissions: Vec<Permission>,
    /// Unknown keys.
    pub extra: Extra,
}

/// One `permission` of a permission set: a resource plus resource-specific fields.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Permission {
    /// The resource (`repo`, `rpc`, …).
    pub resource: String,
    /// Every other key (`collection`, `action`, `lxm`, `aud`, `inheritAud`, unknown ones…).
    pub fields: BTreeMap<String, Value>,
}

impl Permission {
    /// A string field.
    pub fn string(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }

    /// A boolean field.
    pub fn boolean(&self, key: &str) -> Option<bool> {
        self.fields.get(key).and_then(Value::as_bool)
    }

    /// A string-array field; `None` when absent or when any element is not a string.
    pub fn strings(&self, key: &str) -> Option<Vec<&str>> {
        self.fields
            .get(key)?
            .as_array()?
            .iter()
            .map(Value::as_str)
            .collect()
    }
}

/// `token`: a named symbol with no data representation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Token {
    /// Description.
    pub description: Option<String>,
    /// Unknown keys.
    pub extra: Extra,
}

/// `boolean`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BooleanSchema {
    /// Description.
    pub description: Option<String>,
    /// Default value (never injected into data).
    pub default: Option<bool>,
    /// The only allowed value.
    pub const_value: Option<bool>,
    /// Unknown keys.
    pub extra: Extra,
}

/// `integer`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IntegerSchema {
    /// Description.
    pub description: Option<String>,
    /// Inclusive minimum.
    pub minimum: Option<i64>,
    /// Inclusive maximum.
    pub maximum: Option<i64>,
    /// The allowed values (`enum`).
    pub enum_values: Option<Vec<i64>>,
    /// Default value.
    pub default: Option<i64>,
    /// The only allowed value.
    pub const_value: Option<i64>,
    /// Unknown keys.
    pub extra: Extra,
}

/// `string`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StringSchema {
    /// Description.
    pub description: Option<String>,
    /// String format.
    pub format: Option<Format>,
    /// Minimum length in UTF-8 bytes.
    pub min_length: Option<u64>,
    /// Maximum length in UTF-8 bytes.
    pub max_length: Option<u64>,
    /// Minimum length in extended grapheme clusters.
    pub min_graphemes: Option<u64>,
    /// Maximum length in extended grapheme clusters.
    pub max_graphemes: Option<u64>,
    /// The allowed values (closed set).
    pub enum_values: Option<Vec<String>>,
    /// Suggested values (open set; never validated). May name tokens as `nsid#name`.
    pub known_values: Option<Vec<String>>,
    /// Default value.
    pub default: Option<String>,
    /// The only allowed value.
    pub const_value: Option<String>,
    /// Unknown keys.
    pub extra: Extra,
}

/// `bytes`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BytesSchema {
    /// Description.
    pub description: Option<String>,
    /// Minimum length in bytes.
    pub min_length: Option<u64>,
    /// Maximum length in bytes.
    pub max_length: Option<u64>,
    /// Unknown keys.
    pub extra: Extra,
}

/// `cid-link`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CidLinkSchema {
    /// Description.
    pub description: Option<String>,
    /// Unknown keys.
    pub extra: Extra,
}

/// `blob`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BlobSchema {
    /// Description.
    pub description: Option<String>,
    /// Accepted MIME types: exact, `type/*` or `*/*`.
    pub accept: Option<Vec<String>>,
    /// Maximum size in bytes.
    pub max_size: Option<u64>,
    /// Unknown keys.
    pub extra: Extra,
}

/// `array`.
#[derive(Debug, Clone, PartialEq)]
pub struct ArraySchema {
    /// Description.
    pub description: Option<String>,
    /// The item type.
    pub items: Box<FieldType>,
    /// Minimum number of items.
    pub min_length: Option<u64>,
    /// Maximum number of items.
    pub max_length: Option<u64>,
    /// Unknown keys.
    pub extra: Extra,
}

/// `object`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObjectSchema {
    /// Description.
    pub description: Option<String>,
    /// Names of properties that must be present.
    pub required: Option<Vec<String>>,
    /// Names of properties that may be `null`.
    pub nullable: Option<Vec<String>>,
    /// The properties, sorted by name.
    pub properties: BTreeMap<String, FieldType>,
    /// Unknown keys.
    pub extra: Extra,
}

impl ObjectSchema {
    /// Whether `name` is listed in `required`.
    pub fn is_required(&self, name: &str) -> bool {
        self.required
            .as_ref()
            .is_some_and(|r| r.iter().any(|n| n == name))
    }

    /// Whether `name` is listed in `nullable`.
    pub fn is_nullable(&self, name: &str) -> bool {
        self.nullable
            .as_ref()
            .is_some_and(|r| r.iter().any(|n| n == name))
    }

    fn collect_refs<'a>(&'a self, def: &'a str, path: &mut String, out: &mut Vec<RefUse<'a>>) {
        for (name, field) in &self.properties {
            with_segment(path, "properties", |p| {
                with_segment(p, name, |p| field.collect_refs(def, p, out))
            });
        }
    }
}

/// `ref`: a reference to another definition.
#[derive(Debug, Clone, PartialEq)]
pub struct RefSchema {
    /// Description.
    pub description: Option<String>,
    /// The reference.
    pub reference: Ref,
    /// Unknown keys.
    pub extra: Extra,
}

/// `union`: one of several object or record types, told apart by `$type`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UnionSchema {
    /// Description.
    pub description: Option<String>,
    /// The member references.
    pub refs: Vec<Ref>,
    /// `true` for a closed union; absent or `false` means open.
    pub closed: Option<bool>,
    /// Unknown keys.
    pub extra: Extra,
}

impl UnionSchema {
    /// Whether the union is closed (`closed: true`).
    pub fn is_closed(&self) -> bool {
        self.closed == Some(true)
    }
}

/// `unknown`: any data-model object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UnknownSchema {
    /// Description.
    pub description: Option<String>,
    /// Unknown keys.
    pub extra: Extra,
}

/// A reference string: `nsid`, `nsid#name` or `#name`, kept exactly as written.
///
/// Only the shape is checked when parsing (at most one `#`, no empty part); whether the NSID
/// part is a valid NSID is a schema check.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ref {
    raw: String,
}

/// A reference string that does not have the shape `nsid`, `nsid#name` or `#name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefError {
    reference: String,
    reason: &'static str,
}

impl fmt::Display for RefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid reference {:?}: {}", self.reference, self.reason)
    }
}

impl std::error::Error for RefError {}

impl Ref {
    /// Parses a reference string.
    pub fn parse(text: &str) -> Result<Ref, RefError> {
        let err = |reason| {
            Err(RefError {
                reference: text.to_owned(),
                reason,
            })
        };
        if text.is_empty() {
            return err("empty reference");
        }
        if text.chars().any(char::is_whitespace) {
            return err("contains whitespace");
        }
        match text.split_once('#') {
            None => {}
            Some((_, name)) if name.contains('#') => return err("more than one `#`"),
            Some((_, "")) => return err("empty definition name after `#`"),
            Some(_) => {}
        }
        Ok(Ref {
            raw: text.to_owned(),
        })
    }

    /// A stand-in used only after a conversion error was recorded (the document is discarded).
    pub(crate) fn placeholder() -> Ref {
        Ref {
            raw: "#invalid".to_owned(),
        }
    }

    /// The reference exactly as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// `(nsid, def_name)`: the NSID part (`None` for a local `#name`) and the def name
    /// (`main` when there is no fragment).
    pub fn parts(&self) -> (Option<&str>, &str) {
        match self.raw.split_once('#') {
            Some(("", name)) => (None, name),
            Some((nsid, name)) => (Some(nsid), name),
            None => (Some(self.raw.as_str()), "main"),
        }
    }

    /// The NSID part, `None` for a local reference.
    pub fn nsid(&self) -> Option<&str> {
        self.parts().0
    }

    /// The def name (`main` when the reference has no fragment).
    pub fn name(&self) -> &str {
        self.parts().1
    }

    /// Whether this is a local reference (`#name`).
    pub fn is_local(&self) -> bool {
        self.raw.starts_with('#')
    }

    /// `(nsid, def_name)` with a local reference resolved against `base`, the NSID of the
    /// document that contains the reference.
    pub fn resolve<'a>(&'a self, base: &'a str) -> (&'a str, &'a str) {
        let (nsid, name) = self.parts();
        (nsid.unwrap_or(base), name)
    }

    /// The normalised full form used as a `$type`: `nsid` for a `main` def, else `nsid#name`.
    pub fn normalized(&self, base: &str) -> String {
        let (nsid, name) = self.resolve(base);
        type_name_for(nsid, name)
    }
}

/// The `$type` string of def `name` of document `nsid`: the bare NSID for `main`, else
/// `nsid#name`.
pub fn type_name_for(nsid: &str, name: &str) -> String {
    if name == "main" {
        nsid.to_owned()
    } else {
        format!("{nsid}#{name}")
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl std::str::FromStr for Ref {
    type Err = RefError;
    fn from_str(s: &str) -> Result<Ref, RefError> {
        Ref::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_parts() {
        let r = Ref::parse("app.bsky.feed.post").unwrap();
        assert_eq!(r.parts(), (Some("app.bsky.feed.post"), "main"));
        assert_eq!(r.normalized("x.y.z"), "app.bsky.feed.post");
        let r = Ref::parse("app.bsky.feed.defs#postView").unwrap();
        assert_eq!(r.parts(), (Some("app.bsky.feed.defs"), "postView"));
        assert_eq!(r.normalized("x.y.z"), "app.bsky.feed.defs#postView");
        let r = Ref::parse("#replyRef").unwrap();
        assert!(r.is_local());
        assert_eq!(r.parts(), (None, "replyRef"));
        assert_eq!(
            r.resolve("app.bsky.feed.post"),
            ("app.bsky.feed.post", "replyRef")
        );
        assert_eq!(
            r.normalized("app.bsky.feed.post"),
            "app.bsky.feed.post#replyRef"
        );
        let r = Ref::parse("com.atproto.lexicon.schema#main").unwrap();
        assert_eq!(r.normalized("x.y.z"), "com.atproto.lexicon.schema");
        assert_eq!(r.as_str(), "com.atproto.lexicon.schema#main");
    }

    #[test]
    fn ref_shape_errors() {
        for bad in ["", "#", "a.b.c#", "a#b#c", "a.b c", "##x"] {
            assert!(Ref::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let e = Ref::parse("a#b#c").unwrap_err();
        assert!(e.to_string().contains("a#b#c"));
    }

    #[test]
    fn record_key_forms() {
        assert_eq!(RecordKey::parse("tid"), Some(RecordKey::Tid));
        assert_eq!(RecordKey::parse("nsid"), Some(RecordKey::Nsid));
        assert_eq!(RecordKey::parse("any"), Some(RecordKey::Any));
        assert_eq!(
            RecordKey::parse("literal:self"),
            Some(RecordKey::Literal("self".into()))
        );
        assert_eq!(RecordKey::parse("self"), None);
        assert_eq!(
            RecordKey::Literal("self".into()).to_string(),
            "literal:self"
        );
    }
}
