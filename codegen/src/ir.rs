//! The intermediate representation between lexicon documents and Rust tokens.
//!
//! [`crate::lower`] decides everything here — Rust names, module paths, which fields are boxed,
//! which types need validation — so that [`crate::emit`] only pattern-matches on it.

use std::collections::{BTreeMap, BTreeSet};

use atlex_lexicon::model::RecordKey;
use atlex_types::format::Format;

/// Everything generated from one set of lexicons.
#[derive(Debug, Clone, Default)]
pub struct Crate {
    /// One module per lexicon document, sorted by NSID.
    pub modules: Vec<Module>,
    /// Cargo features: feature name → the features it needs (from cross-namespace refs).
    pub features: BTreeMap<String, BTreeSet<String>>,
    /// The structs and unions (own and external) whose `validate()` has something to check.
    pub validating: BTreeSet<TypePath>,
}

/// The module generated from one lexicon document.
#[derive(Debug, Clone)]
pub struct Module {
    /// The document's NSID.
    pub nsid: String,
    /// The module path below the root, as Rust identifiers (`["app", "bsky", "feed", "post"]`).
    pub path: Vec<String>,
    /// The cargo feature that gates the module's namespace (`None`: always compiled).
    pub feature: Option<String>,
    /// The document's description (or its main def's).
    pub doc: Option<String>,
    /// The items, in a deterministic order.
    pub items: Vec<Item>,
}

/// One generated item.
#[derive(Debug, Clone)]
pub enum Item {
    /// A struct: object, record, params, or body.
    Struct(StructDef),
    /// A `$type`-tagged union enum.
    Union(UnionDef),
    /// A string enum (`knownValues`: open; `enum`: closed).
    StringEnum(StringEnumDef),
    /// A token constant.
    Token(TokenDef),
    /// A type alias (named string/integer/array defs, bodies that ref another type).
    Alias(AliasDef),
    /// An XRPC query or procedure marker type.
    Endpoint(Box<EndpointDef>),
    /// An XRPC subscription marker type.
    Subscription(SubscriptionDef),
    /// A permission set constant.
    PermissionSet(PermissionSetDef),
}

/// A path to a generated type: its root (`crate`, `::atlex`, …), module path and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TypePath {
    /// The root, as Rust path text (`::atlex` or `crate`).
    pub root: String,
    /// Module segments below the root.
    pub module: Vec<String>,
    /// The type's identifier.
    pub name: String,
}

/// A generated struct.
#[derive(Debug, Clone)]
pub struct StructDef {
    /// The Rust name.
    pub name: String,
    /// The lexicon name for messages: `nsid#def` (or `nsid#def.field` for inline objects).
    pub wire: String,
    /// Description.
    pub doc: Option<String>,
    /// The fields, in lexicon property order (sorted by wire name).
    pub fields: Vec<Field>,
    /// What the struct is for.
    pub kind: StructKind,
    /// Whether `validate()` has anything to check (directly or in nested types).
    pub validates: bool,
}

/// The role of a struct, which decides the impls it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StructKind {
    /// A plain object (named def, inline object, JSON body).
    Object,
    /// A record: serialised with `$type` = `nsid`.
    Record {
        /// The collection NSID.
        nsid: String,
        /// The record key kind.
        key: RecordKey,
    },
    /// Query parameters: no serde; encodes to a query string; defaults filled by `new()`.
    Params,
}

/// One struct field.
#[derive(Debug, Clone)]
pub struct Field {
    /// The Rust identifier (possibly raw: `r#type`).
    pub name: String,
    /// The name of the builder method that sets it (differs from `name` on collisions).
    pub setter: String,
    /// The JSON key.
    pub wire: String,
    /// Description.
    pub doc: Option<String>,
    /// The value type with its constraints.
    pub ty: Ty,
    /// Listed in `required`.
    pub required: bool,
    /// Listed in `nullable`.
    pub nullable: bool,
    /// Stored boxed (breaks a cycle of inline types).
    pub boxed: bool,
    /// A credential (password, token, JWT, code; see [`crate::secrets`]): `Debug` prints
    /// `<redacted>` instead.
    pub secret: bool,
    /// The lexicon `default`.
    pub default: Option<Literal>,
    /// The lexicon `const`.
    pub constant: Option<Literal>,
}

/// A literal value from a lexicon (`default`, `const`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Integer(i64),
    /// A string.
    String(String),
}

/// A value type, with the constraints that `validate()` checks.
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    /// `boolean`.
    Bool,
    /// `integer` with its rules.
    Integer(IntRules),
    /// `string` without a format.
    String(StrRules),
    /// `string` with a format (a validated newtype); length rules still apply.
    Format(Format, StrRules),
    /// `bytes` with length bounds.
    Bytes {
        /// `minLength`.
        min: Option<u64>,
        /// `maxLength`.
        max: Option<u64>,
    },
    /// `cid-link`.
    CidLink,
    /// `blob` with its rules.
    Blob {
        /// `accept`.
        accept: Option<Vec<String>>,
        /// `maxSize`.
        max_size: Option<u64>,
    },
    /// `unknown`: any data-model object.
    Unknown,
    /// `array`.
    Array {
        /// The item type.
        item: Box<Ty>,
        /// `minLength` (items).
        min: Option<u64>,
        /// `maxLength` (items).
        max: Option<u64>,
    },
    /// A generated struct or union.
    Named(TypePath),
    /// A generated string enum; length rules of the underlying string still apply.
    Enum(TypePath, StrRules),
}

/// Integer constraints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntRules {
    /// `minimum`.
    pub minimum: Option<i64>,
    /// `maximum`.
    pub maximum: Option<i64>,
    /// `enum`.
    pub allowed: Option<Vec<i64>>,
}

impl IntRules {
    /// Whether there is anything to check.
    pub fn is_empty(&self) -> bool {
        self.minimum.is_none() && self.maximum.is_none() && self.allowed.is_none()
    }
}

/// String length constraints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StrRules {
    /// `minLength` (UTF-8 bytes).
    pub min_length: Option<u64>,
    /// `maxLength` (UTF-8 bytes).
    pub max_length: Option<u64>,
    /// `minGraphemes`.
    pub min_graphemes: Option<u64>,
    /// `maxGraphemes`.
    pub max_graphemes: Option<u64>,
}

impl StrRules {
    /// Whether there is anything to check.
    pub fn is_empty(&self) -> bool {
        self.min_length.is_none()
            && self.max_length.is_none()
            && self.min_graphemes.is_none()
            && self.max_graphemes.is_none()
    }
}

/// A `$type`-tagged union.
#[derive(Debug, Clone)]
pub struct UnionDef {
    /// The Rust name.
    pub name: String,
    /// Where the union is, for messages (`app.bsky.feed.post#main.embed`).
    pub wire: String,
    /// Description.
    pub doc: Option<String>,
    /// Closed unions reject members they do not list.
    pub closed: bool,
    /// The members.
    pub variants: Vec<Variant>,
    /// Whether any member needs validation.
    pub validates: bool,
}

/// One union member.
#[derive(Debug, Clone)]
pub struct Variant {
    /// The Rust variant name.
    pub name: String,
    /// The normalised `$type` (`nsid` or `nsid#def`).
    pub tag: String,
    /// The member type.
    pub path: TypePath,
}

/// A string enum.
#[derive(Debug, Clone)]
pub struct StringEnumDef {
    /// The Rust name.
    pub name: String,
    /// Where it is, for messages.
    pub wire: String,
    /// Description.
    pub doc: Option<String>,
    /// `knownValues` (open: keeps other strings) or `enum` (closed).
    pub open: bool,
    /// `(variant name, string value)`.
    pub values: Vec<(String, String)>,
}

/// A token: a named string constant `nsid#name`.
#[derive(Debug, Clone)]
pub struct TokenDef {
    /// The constant's name.
    pub name: String,
    /// The value (`nsid#name`).
    pub value: String,
    /// Description.
    pub doc: Option<String>,
}

/// A type alias.
#[derive(Debug, Clone)]
pub struct AliasDef {
    /// The alias name.
    pub name: String,
    /// Description.
    pub doc: Option<String>,
    /// The aliased type.
    pub ty: Ty,
}

/// How a body is encoded.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyTy {
    /// No body.
    None,
    /// JSON with a schema: the named type (struct, union or alias).
    Json(TypePath),
    /// JSON without a schema: any data-model object.
    JsonAny,
    /// Another encoding: raw bytes.
    Raw(String),
}

/// An XRPC query or procedure.
#[derive(Debug, Clone)]
pub struct EndpointDef {
    /// The marker type's name.
    pub name: String,
    /// The method NSID.
    pub nsid: String,
    /// `true` for a procedure (POST).
    pub procedure: bool,
    /// Description.
    pub doc: Option<String>,
    /// The params struct, if the method has parameters.
    pub params: Option<TypePath>,
    /// The request body.
    pub input: BodyTy,
    /// The response body.
    pub output: BodyTy,
    /// The error enum, if the lexicon declares errors.
    pub error: Option<ErrorEnum>,
    /// Cursor pagination, when the query has the shape for it.
    pub pagination: Option<Pagination>,
    /// The output holds a credential field, directly or nested ([`crate::secrets`]).
    pub output_has_secrets: bool,
}

/// How a query pages: the cursor parameter and output field, and the list of items.
#[derive(Debug, Clone)]
pub struct Pagination {
    /// The params field holding the cursor.
    pub cursor_param: String,
    /// The output field holding the next cursor.
    pub cursor_output: String,
    /// The output's one array field.
    pub items: String,
    /// The type of its items.
    pub item: Ty,
}

/// A subscription.
#[derive(Debug, Clone)]
pub struct SubscriptionDef {
    /// The marker type's name.
    pub name: String,
    /// The subscription NSID.
    pub nsid: String,
    /// Description.
    pub doc: Option<String>,
    /// The params struct, if any.
    pub params: Option<TypePath>,
    /// The message union.
    pub message: TypePath,
    /// The error enum, if the lexicon declares errors.
    pub error: Option<ErrorEnum>,
}

/// A typed error enum.
#[derive(Debug, Clone)]
pub struct ErrorEnum {
    /// The enum's name.
    pub name: String,
    /// `(variant name, wire name, description)`.
    pub variants: Vec<(String, String, Option<String>)>,
}

/// A permission set.
#[derive(Debug, Clone)]
pub struct PermissionSetDef {
    /// The constant's name.
    pub name: String,
    /// The set's NSID.
    pub nsid: String,
    /// Description.
    pub doc: Option<String>,
    /// `title`.
    pub title: Option<String>,
    /// `title:lang`.
    pub title_lang: Vec<(String, String)>,
    /// `detail`.
    pub detail: Option<String>,
    /// `detail:lang`.
    pub detail_lang: Vec<(String, String)>,
    /// The permissions.
    pub permissions: Vec<PermissionIr>,
}

/// One permission.
#[derive(Debug, Clone)]
pub enum PermissionIr {
    /// `repo`.
    Repo {
        /// `collection`.
        collections: Vec<String>,
        /// `action` (`create`/`update`/`delete`).
        actions: Vec<String>,
    },
    /// `rpc`.
    Rpc {
        /// `lxm`.
        lxm: Vec<String>,
        /// `aud`.
        aud: Option<String>,
        /// `inheritAud`.
        inherit_aud: bool,
    },
    /// Any other resource.
    Other {
        /// The resource name.
        resource: String,
    },
}
