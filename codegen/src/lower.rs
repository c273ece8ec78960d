//! Lowering: lexicon documents → [`crate::ir`].
//!
//! Three passes, each over the documents sorted by NSID so that every name is decided the same
//! way in every run (and in a user's crate, which lowers the official lexicons too, to learn the
//! paths of the `atlex` types its refs point at):
//!
//! 1. **names** — the module path of every document and the Rust name of every def;
//! 2. **aliases** — named `string`/`integer`/`array`/… defs, whose types are inlined (with
//!    their constraints) wherever they are referenced;
//! 3. **items** — objects, records, unions, endpoints, … with the names of inline types
//!    (`PostEmbed`, `FacetFeaturesItem`) claimed in the module's scope.
//!
//! Then boxing (fields that would make a type infinitely large) and the `validates` flags
//! (whether a type's `validate()` has anything to check) are computed over the whole crate.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use atlex_lexicon::model::{
    ArraySchema, Body, BodySchema, Def, ErrorDef, FieldType, LexiconDoc, ObjectSchema, ParamItem,
    ParamType, Params, Ref, StringSchema, UnionSchema, type_name_for,
};
use atlex_lexicon::{Problem, Severity};

use crate::ir::*;
use crate::naming::{Scope, pascal, screaming, snake};

/// A set of lexicon documents and the Rust path their generated modules live under.
#[derive(Debug, Clone)]
pub struct DocSet<'a> {
    /// The documents, each with the file it came from (for error messages).
    pub docs: Vec<(&'a LexiconDoc, Option<PathBuf>)>,
    /// The Rust path of the modules' root: `::atlex` for the official lexicons, `crate` for a
    /// crate's own.
    pub root: String,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct LowerOptions {
    /// Compute cargo features per namespace (`app-bsky`, …); `com.atproto` is always on.
    pub features: bool,
}

/// Methods every generated struct gets from a trait; a setter must not shadow them.
const RESERVED_METHODS: &[&str] = &[
    "new",
    "validate",
    "validate_into",
    "clone",
    "clone_from",
    "eq",
    "ne",
    "fmt",
    "hash",
    "serialize",
    "deserialize",
    "default",
    "into",
    "from",
    "try_into",
    "try_from",
    "to_owned",
    "to_string",
    "as_ref",
    "borrow",
    "type_id",
];

/// Type names the generator itself puts into a document's module.
const GENERATED_TYPES: &[&str] = &["NamespaceClient"];

/// Names of primitive types, which the generated code writes unqualified (`&str`, `bool`,
/// `i64`): a module of the same name would shadow them in its parent, so it gets a `_` suffix.
const PRIMITIVES: &[&str] = &[
    "bool", "char", "str", "f32", "f64", "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16",
    "u32", "u64", "u128", "usize",
];

/// The module identifier for one NSID segment.
fn module_name(segment: &str) -> String {
    let name = snake(segment);
    if PRIMITIVES.contains(&name.as_str()) {
        format!("{name}_")
    } else {
        name
    }
}

/// Lowers `own` into IR. `external` documents are resolved against (refs into them become paths
/// under their root) but not generated.
pub fn lower(
    own: &DocSet<'_>,
    external: &[DocSet<'_>],
    options: &LowerOptions,
) -> Result<Crate, Vec<Problem>> {
    let mut lowerer = Lowerer::default();
    let mut all: Vec<(&LexiconDoc, Option<PathBuf>, String, bool)> = Vec::new();
    for (doc, file) in &own.docs {
        all.push((doc, file.clone(), own.root.clone(), true));
    }
    for set in external {
        for (doc, file) in &set.docs {
            all.push((doc, file.clone(), set.root.clone(), false));
        }
    }
    all.sort_by(|a, b| a.0.id.cmp(&b.0.id).then(b.3.cmp(&a.3)));
    for (doc, file, root, is_own) in &all {
        if let Some(first) = lowerer.docs.get(doc.id.as_str()) {
            if *is_own {
                let message = match &first.file {
                    Some(first) => format!("NSID defined twice (also in {})", first.display()),
                    None => "NSID defined twice".to_owned(),
                };
                lowerer.problem(file.as_ref(), &doc.id, None, "", message);
            }
            continue;
        }
        lowerer.docs.insert(
            doc.id.clone(),
            DocInfo {
                doc,
                file: file.clone(),
                root: root.clone(),
                own: *is_own,
            },
        );
        lowerer.order.push(doc.id.clone());
    }
    lowerer.assign_names();
    lowerer.lower_aliases();
    lowerer.lower_items();
    if !lowerer.problems.is_empty() {
        return Err(lowerer.problems);
    }
    lowerer.compute_boxing();
    lowerer.compute_validates();
    lowerer.compute_secret_outputs();
    let features = if options.features {
        lowerer.features()
    } else {
        BTreeMap::new()
    };
    let mut modules = Vec::new();
    for nsid in &lowerer.order {
        let Some(info) = lowerer.docs.get(nsid) else {
            continue;
        };
        if !info.own {
            continue;
        }
        let items = lowerer.items.remove(nsid).unwrap_or_default();
        let main_doc = info.doc.description.clone().or_else(|| {
            info.doc
                .main()
                .and_then(|d| d.description().map(str::to_owned))
        });
        modules.push(Module {
            nsid: nsid.clone(),
            path: lowerer.module_paths.get(nsid).cloned().unwrap_or_default(),
            feature: if options.features {
                namespace_feature(nsid)
            } else {
                None
            },
            doc: main_doc,
            items,
        });
    }
    Ok(Crate {
        modules,
        features,
        validating: lowerer.validating,
    })
}

/// The cargo feature of a namespace: `app.bsky.*` → `app-bsky`; `com.atproto` is always on.
pub fn namespace_feature(nsid: &str) -> Option<String> {
    let mut parts = nsid.split('.');
    let (Some(a), Some(b)) = (parts.next(), parts.next()) else {
        return None;
    };
    if a == "com" && b == "atproto" {
        return None;
    }
    Some(format!(
        "{}-{}",
        a.to_ascii_lowercase(),
        b.to_ascii_lowercase()
    ))
}

struct DocInfo<'a> {
    doc: &'a LexiconDoc,
    file: Option<PathBuf>,
    root: String,
    own: bool,
}

/// Names assigned to one def in pass 1.
#[derive(Debug, Clone)]
enum DefName {
    /// A type (struct, union, enum, alias, marker).
    Type(TypePath),
    /// A constant (token, permission set).
    Value(String),
}

/// Names reserved for the parts of an endpoint or subscription.
#[derive(Debug, Clone, Default)]
struct EndpointNames {
    params: String,
    input: String,
    output: String,
    error: String,
    message: String,
}

#[derive(Default)]
struct Lowerer<'a> {
    docs: HashMap<String, DocInfo<'a>>,
    order: Vec<String>,
    module_paths: HashMap<String, Vec<String>>,
    names: HashMap<(String, String), DefName>,
    endpoint_names: HashMap<String, EndpointNames>,
    type_scopes: HashMap<String, Scope>,
    /// Types of named non-object defs, inlined where referenced.
    alias_tys: HashMap<(String, String), Ty>,
    alias_in_progress: BTreeSet<(String, String)>,
    items: HashMap<String, Vec<Item>>,
    /// Cross-namespace references, for feature dependencies: (from nsid, to nsid).
    cross_refs: BTreeSet<(String, String)>,
    /// Types whose `validate()` has something to check.
    validating: BTreeSet<TypePath>,
    problems: Vec<Problem>,
}

/// Where lowering is, for naming inline types and for error messages.
#[derive(Clone)]
struct Ctx<'c> {
    nsid: &'c str,
    def: &'c str,
    /// The field path inside the def, e.g. `record.properties.embed`.
    path: String,
    /// The Rust name inline types are named after (`Post` → `PostEmbed`).
    parent: String,
}

impl<'c> Ctx<'c> {
    fn child(&self, segment: &str) -> Ctx<'c> {
        let path = if self.path.is_empty() {
            segment.to_owned()
        } else {
            format!("{}.{segment}", self.path)
        };
        Ctx {
            nsid: self.nsid,
            def: self.def,
            path,
            parent: self.parent.clone(),
        }
    }

    fn wire(&self) -> String {
        let base = type_name_for(self.nsid, self.def);
        let base = if self.def == "main" {
            format!("{base}#main")
        } else {
            base
        };
        if self.path.is_empty() {
            base
        } else {
            format!("{base}.{}", self.path)
        }
    }
}

impl<'a> Lowerer<'a> {
    fn problem(
        &mut self,
        file: Option<&PathBuf>,
        nsid: &str,
        def: Option<&str>,
        path: &str,
        message: impl Into<String>,
    ) {
        self.problems.push(Problem {
            severity: Severity::Error,
            file: file.cloned(),
            nsid: Some(nsid.to_owned()),
            def: def.map(str::to_owned),
            path: path.to_owned(),
            message: message.into(),
        });
    }

    fn error_at(&mut self, ctx: &Ctx<'_>, message: impl Into<String>) {
        let file = self.docs.get(ctx.nsid).and_then(|d| d.file.clone());
        self.problem(file.as_ref(), ctx.nsid, Some(ctx.def), &ctx.path, message);
    }

    fn root_of(&self, nsid: &str) -> String {
        self.docs
            .get(nsid)
            .map(|d| d.root.clone())
            .unwrap_or_default()
    }

    fn path_in(&self, nsid: &str, name: String) -> TypePath {
        TypePath {
            root: self.root_of(nsid),
            module: self.module_paths.get(nsid).cloned().unwrap_or_default(),
            name,
        }
    }

    // ---------------------------------------------------------------- pass 1: names

    fn assign_names(&mut self) {
        // Module paths: each NSID segment in snake case; siblings that collide get a suffix.
        let mut children: HashMap<Vec<String>, Scope> = HashMap::new();
        let mut assigned: HashMap<Vec<String>, String> = HashMap::new();
        for nsid in self.order.clone() {
            let mut path: Vec<String> = Vec::new();
            let mut wire_prefix: Vec<&str> = Vec::new();
            for segment in nsid.split('.') {
                wire_prefix.push(segment);
                let key = wire_prefix.join(".");
                let parent = path.clone();
                let name = match assigned.get(&key_path(&parent, &key)) {
                    Some(name) => name.clone(),
                    None => {
                        let scope = children.entry(parent.clone()).or_default();
                        let name = scope.claim(&module_name(segment));
                        assigned.insert(key_path(&parent, &key), name.clone());
                        name
                    }
                };
                path.push(name);
            }
            self.module_paths.insert(nsid.clone(), path);
        }

        for nsid in self.order.clone() {
            let Some(info) = self.docs.get(&nsid) else {
                continue;
            };
            let doc = info.doc;
            let last = nsid.rsplit('.').next().unwrap_or(&nsid).to_owned();
            // A module that is also a namespace (it has child modules with endpoints) holds the
            // generated `NamespaceClient` next to the document's types.
            let mut types = Scope::with_reserved(GENERATED_TYPES);
            let mut values = Scope::new();
            let mut endpoint = EndpointNames::default();
            if let Some(main) = doc.main() {
                match main {
                    Def::Token(_) => {
                        let name = values.claim(&screaming(&last));
                        self.names
                            .insert((nsid.clone(), "main".into()), DefName::Value(name));
                    }
                    Def::PermissionSet(_) => {
                        let name = values.claim("PERMISSION_SET");
                        self.names
                            .insert((nsid.clone(), "main".into()), DefName::Value(name));
                    }
                    _ => {
                        let name = types.claim(&pascal(&last));
                        let path = self.path_in(&nsid, name);
                        self.names
                            .insert((nsid.clone(), "main".into()), DefName::Type(path));
                    }
                }
                match main {
                    Def::Query(_) | Def::Procedure(_) => {
                        endpoint.params = types.claim("Params");
                        endpoint.input = types.claim("Input");
                        endpoint.output = types.claim("Output");
                        endpoint.error = types.claim("Error");
                    }
                    Def::Subscription(_) => {
                        endpoint.params = types.claim("Params");
                        endpoint.message = types.claim("Message");
                        endpoint.error = types.claim("Error");
                    }
                    _ => {}
                }
            }
            for (name, def) in &doc.defs {
                if name == "main" {
                    continue;
                }
                let assigned = match def {
                    Def::Token(_) => DefName::Value(values.claim(&screaming(name))),
                    _ => DefName::Type(self.path_in(&nsid, types.claim(&pascal(name)))),
                };
                self.names.insert((nsid.clone(), name.clone()), assigned);
            }
            self.endpoint_names.insert(nsid.clone(), endpoint);
            self.type_scopes.insert(nsid.clone(), types);
        }
    }

    fn type_name(&self, nsid: &str, def: &str) -> Option<TypePath> {
        match self.names.get(&(nsid.to_owned(), def.to_owned())) {
            Some(DefName::Type(path)) => Some(path.clone()),
            _ => None,
        }
    }

    fn claim_type(&mut self, nsid: &str, wanted: &str) -> String {
        self.type_scopes
            .entry(nsid.to_owned())
            .or_default()
            .claim(wanted)
    }

    fn push_item(&mut self, nsid: &str, item: Item) {
        self.items.entry(nsid.to_owned()).or_default().push(item);
    }

    // ---------------------------------------------------------------- pass 2: aliases

    fn lower_aliases(&mut self) {
        for nsid in self.order.clone() {
            let Some(doc) = self.docs.get(&nsid).map(|d| d.doc) else {
                continue;
            };
            for (name, def) in &doc.defs {
                if matches!(
                    def,
                    Def::Boolean(_)
                        | Def::Integer(_)
                        | Def::String(_)
                        | Def::Bytes(_)
                        | Def::CidLink(_)
                        | Def::Blob(_)
                        | Def::Array(_)
                ) {
                    self.alias_ty(&nsid, name);
                }
            }
        }
    }

    /// The inlined type of a named non-object def (computed once, then cached).
    fn alias_ty(&mut self, nsid: &str, def_name: &str) -> Option<Ty> {
        let key = (nsid.to_owned(), def_name.to_owned());
        if let Some(ty) = self.alias_tys.get(&key) {
            return Some(ty.clone());
        }
        let doc = self.docs.get(nsid)?.doc;
        let def = doc.defs.get(def_name)?;
        let alias_name = self.type_name(nsid, def_name)?;
        let ctx = Ctx {
            nsid: doc.id.as_str(),
            def: def_name,
            path: String::new(),
            parent: alias_name.name.clone(),
        };
        if !self.alias_in_progress.insert(key.clone()) {
            self.error_at(&ctx, "definition refers to itself");
            return None;
        }
        let (ty, doc_text, is_enum) = match def {
            Def::Boolean(b) => (Ty::Bool, b.description.clone(), false),
            Def::Integer(i) => (Ty::Integer(int_rules(i)), i.description.clone(), false),
            Def::Bytes(b) => (
                Ty::Bytes {
                    min: b.min_length,
                    max: b.max_length,
                },
                b.description.clone(),
                false,
            ),
            Def::CidLink(c) => (Ty::CidLink, c.description.clone(), false),
            Def::Blob(b) => (
                Ty::Blob {
                    accept: b.accept.clone(),
                    max_size: b.max_size,
                },
                b.description.clone(),
                false,
            ),
            Def::String(s) => {
                if has_enum(s) {
                    // The def itself becomes the enum type; its name is the one from pass 1.
                    let path = alias_name.clone();
                    self.push_string_enum(&ctx, path.name.clone(), s);
                    (Ty::Enum(path, str_rules(s)), s.description.clone(), true)
                } else {
                    (string_ty(s), s.description.clone(), false)
                }
            }
            Def::Array(a) => (self.lower_array(&ctx, a), a.description.clone(), false),
            _ => {
                self.alias_in_progress.remove(&key);
                return None;
            }
        };
        self.alias_in_progress.remove(&key);
        if !is_enum && self.docs.get(nsid).is_some_and(|d| d.own) {
            self.push_item(
                nsid,
                Item::Alias(AliasDef {
                    name: alias_name.name,
                    doc: doc_text,
                    ty: ty.clone(),
                }),
            );
        }
        self.alias_tys.insert(key, ty.clone());
        Some(ty)
    }

    fn push_string_enum(&mut self, ctx: &Ctx<'_>, name: String, s: &StringSchema) {
        let (open, raw_values) = match (&s.enum_values, &s.known_values) {
            (Some(values), _) => (false, values.clone()),
            (None, Some(values)) => (true, values.clone()),
            (None, None) => (true, Vec::new()),
        };
        let mut scope = if open {
            Scope::with_reserved(&["Other"])
        } else {
            Scope::new()
        };
        let mut values = Vec::new();
        let mut seen = BTreeSet::new();
        for value in raw_values {
            if !seen.insert(value.clone()) {
                continue;
            }
            let base = value.rsplit_once('#').map_or(value.as_str(), |(_, f)| f);
            let variant = scope.claim(&pascal(base));
            values.push((variant, value));
        }
        let item = Item::StringEnum(StringEnumDef {
            name,
            wire: ctx.wire(),
            doc: s.description.clone(),
            open,
            values,
        });
        self.push_item(ctx.nsid, item);
    }

    // ---------------------------------------------------------------- pass 3: items

    fn lower_items(&mut self) {
        for nsid in self.order.clone() {
            let Some(doc) = self.docs.get(&nsid).map(|d| d.doc) else {
                continue;
            };
            // `main` first, then the other defs by name.
            let mut defs: Vec<(&String, &Def)> = doc.defs.iter().collect();
            defs.sort_by_key(|(name, _)| (name.as_str() != "main", name.as_str()));
            for (name, def) in defs {
                // Put the def's own item before the inline types lowering it produced.
                let start = self.items.get(&nsid).map_or(0, Vec::len);
                self.lower_def(doc, name, def);
                if let Some(items) = self.items.get_mut(&nsid)
                    && items.len() > start + 1
                {
                    items[start..].rotate_right(1);
                }
            }
        }
    }

    fn lower_def(&mut self, doc: &'a LexiconDoc, name: &str, def: &Def) {
        let nsid = doc.id.as_str();
        let type_path = self.type_name(nsid, name);
        let parent = type_path
            .as_ref()
            .map(|p| p.name.clone())
            .unwrap_or_default();
        let ctx = Ctx {
            nsid,
            def: name,
            path: String::new(),
            parent,
        };
        match def {
            Def::Object(object) => {
                let Some(path) = type_path else { return };
                let def = self.lower_object(&ctx, path.name, object, StructKind::Object);
                self.push_item(nsid, Item::Struct(def));
            }
            Def::Record(record) => {
                let Some(path) = type_path else { return };
                let kind = StructKind::Record {
                    nsid: nsid.to_owned(),
                    key: record.key.clone(),
                };
                let ctx = ctx.child("record");
                let mut def = self.lower_object(&ctx, path.name, &record.record, kind);
                if def.doc.is_none() {
                    def.doc = record.description.clone();
                }
                self.push_item(nsid, Item::Struct(def));
            }
            Def::Token(token) => {
                let Some(DefName::Value(const_name)) =
                    self.names.get(&(nsid.to_owned(), name.to_owned())).cloned()
                else {
                    return;
                };
                self.push_item(
                    nsid,
                    Item::Token(TokenDef {
                        name: const_name,
                        value: type_name_for(nsid, name),
                        doc: token.description.clone(),
                    }),
                );
            }
            Def::Query(q) => {
                let Some(path) = type_path else { return };
                self.lower_endpoint(
                    &ctx,
                    path.name,
                    false,
                    q.description.clone(),
                    q.parameters.as_ref(),
                    None,
                    q.output.as_ref(),
                    q.errors.as_deref(),
                );
            }
            Def::Procedure(p) => {
                let Some(path) = type_path else { return };
                self.lower_endpoint(
                    &ctx,
                    path.name,
                    true,
                    p.description.clone(),
                    p.parameters.as_ref(),
                    p.input.as_ref(),
                    p.output.as_ref(),
                    p.errors.as_deref(),
                );
            }
            Def::Subscription(s) => {
                let Some(path) = type_path else { return };
                let names = self.endpoint_names.get(nsid).cloned().unwrap_or_default();
                let params = s.parameters.as_ref().map(|p| {
                    let def = self.lower_params(&ctx.child("parameters"), names.params.clone(), p);
                    let path = self.path_in(nsid, def.name.clone());
                    self.push_item(nsid, Item::Struct(def));
                    path
                });
                // Relaxation R2 (codegen README): no `message` is an open union with no known
                // members, which keeps every frame as `Unknown`.
                let no_members = UnionSchema::default();
                let schema = s.message.as_ref().map_or(&no_members, |m| &m.schema);
                let mut mctx = ctx.child("message.schema");
                mctx.parent = names.message.clone();
                let union = self.lower_union(&mctx, names.message.clone(), schema);
                self.push_item(nsid, Item::Union(union));
                let error = self.error_enum(names.error.clone(), s.errors.as_deref());
                self.push_item(
                    nsid,
                    Item::Subscription(SubscriptionDef {
                        name: path.name,
                        nsid: nsid.to_owned(),
                        doc: s.description.clone(),
                        params,
                        message: self.path_in(nsid, names.message),
                        error,
                    }),
                );
            }
            Def::PermissionSet(set) => {
                let Some(DefName::Value(const_name)) =
                    self.names.get(&(nsid.to_owned(), name.to_owned())).cloned()
                else {
                    return;
                };
                let permissions = set
                    .permissions
                    .iter()
                    .map(|p| match p.resource.as_str() {
                        "repo" => PermissionIr::Repo {
                            collections: strings(p.strings("collection")),
                            actions: strings(p.strings("action")),
                        },
                        "rpc" => PermissionIr::Rpc {
                            lxm: strings(p.strings("lxm")),
                            aud: p.string("aud").map(str::to_owned),
                            inherit_aud: p.boolean("inheritAud").unwrap_or(false),
                        },
                        other => PermissionIr::Other {
                            resource: other.to_owned(),
                        },
                    })
                    .collect();
                let lang = |m: &Option<BTreeMap<String, String>>| {
                    m.iter()
                        .flat_map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())))
                        .collect()
                };
                self.push_item(
                    nsid,
                    Item::PermissionSet(PermissionSetDef {
                        name: const_name,
                        nsid: nsid.to_owned(),
                        doc: set.description.clone(),
                        title: set.title.clone(),
                        title_lang: lang(&set.title_lang),
                        detail: set.detail.clone(),
                        detail_lang: lang(&set.detail_lang),
                        permissions,
                    }),
                );
            }
            // Named scalar and array defs were lowered in pass 2.
            Def::Boolean(_)
            | Def::Integer(_)
            | Def::String(_)
            | Def::Bytes(_)
            | Def::CidLink(_)
            | Def::Blob(_)
            | Def::Array(_) => {}
        }
    }

    #[allow(clippy::too_many_arguments)] // one call site per endpoint kind; a struct adds nothing
    fn lower_endpoint(
        &mut self,
        ctx: &Ctx<'_>,
        marker: String,
        procedure: bool,
        doc: Option<String>,
        params: Option<&Params>,
        input: Option<&Body>,
        output: Option<&Body>,
        errors: Option<&[ErrorDef]>,
    ) {
        let nsid = ctx.nsid;
        let names = self.endpoint_names.get(nsid).cloned().unwrap_or_default();
        let mut cursor_param = None;
        let params = params.map(|p| {
            let def = self.lower_params(&ctx.child("parameters"), names.params.clone(), p);
            cursor_param = optional_string_field(&def, "cursor");
            let path = self.path_in(nsid, def.name.clone());
            self.push_item(nsid, Item::Struct(def));
            path
        });
        let input = match input {
            Some(body) => self.lower_body(&ctx.child("input"), names.input.clone(), body),
            None => BodyTy::None,
        };
        let output = match output {
            Some(body) => self.lower_body(&ctx.child("output"), names.output.clone(), body),
            None => BodyTy::None,
        };
        let pagination = match (&cursor_param, &output, procedure) {
            (Some(cursor_param), BodyTy::Json(path), false) => self
                .items
                .get(nsid)
                .into_iter()
                .flatten()
                .find_map(|item| match item {
                    Item::Struct(def) if def.name == path.name => Some(def),
                    _ => None,
                })
                .and_then(|def| pagination_of(def, cursor_param)),
            _ => None,
        };
        let error = self.error_enum(names.error, errors);
        self.push_item(
            nsid,
            Item::Endpoint(Box::new(EndpointDef {
                name: marker,
                nsid: nsid.to_owned(),
                procedure,
                doc,
                params,
                input,
                output,
                error,
                pagination,
                output_has_secrets: false,
            })),
        );
    }

    fn error_enum(&self, name: String, errors: Option<&[ErrorDef]>) -> Option<ErrorEnum> {
        let errors = errors.filter(|e| !e.is_empty())?;
        let mut scope = Scope::with_reserved(&["Other"]);
        let mut seen = BTreeSet::new();
        let variants = errors
            .iter()
            .filter(|e| seen.insert(e.name.clone()))
            .map(|e| {
                (
                    scope.claim(&pascal(&e.name)),
                    e.name.clone(),
                    e.description.clone(),
                )
            })
            .collect();
        Some(ErrorEnum { name, variants })
    }

    fn lower_body(&mut self, ctx: &Ctx<'_>, name: String, body: &Body) -> BodyTy {
        let nsid = ctx.nsid;
        if !body.is_json() {
            return BodyTy::Raw(body.encoding.clone());
        }
        let Some(schema) = &body.schema else {
            return BodyTy::JsonAny;
        };
        let mut ctx = ctx.child("schema");
        ctx.parent = name.clone();
        match schema {
            BodySchema::Object(object) => {
                let mut def = self.lower_object(&ctx, name, object, StructKind::Object);
                if def.doc.is_none() {
                    def.doc = body.description.clone();
                }
                let path = self.path_in(nsid, def.name.clone());
                self.push_item(nsid, Item::Struct(def));
                BodyTy::Json(path)
            }
            BodySchema::Union(union) => {
                let def = self.lower_union(&ctx, name, union);
                let path = self.path_in(nsid, def.name.clone());
                self.push_item(nsid, Item::Union(def));
                BodyTy::Json(path)
            }
            BodySchema::Ref(r) => {
                let ty = self.lower_ref(&ctx.child("ref"), &r.reference);
                match ty {
                    Some(ty @ Ty::Named(_)) => {
                        self.push_item(
                            nsid,
                            Item::Alias(AliasDef {
                                name: name.clone(),
                                doc: body.description.clone(),
                                ty,
                            }),
                        );
                        BodyTy::Json(self.path_in(nsid, name))
                    }
                    Some(_) => {
                        self.error_at(
                            &ctx.child("ref"),
                            "a body must refer to an object, record or union",
                        );
                        BodyTy::JsonAny
                    }
                    None => BodyTy::JsonAny,
                }
            }
        }
    }

    fn lower_params(&mut self, ctx: &Ctx<'_>, name: String, params: &Params) -> StructDef {
        let mut ctx = ctx.clone();
        ctx.parent = name.clone();
        let mut fields_scope = Scope::new();
        let mut methods = Scope::with_reserved(RESERVED_METHODS);
        let mut fields = Vec::new();
        for (wire, param) in &params.properties {
            let fctx = ctx.child(&format!("properties.{wire}"));
            let (ty, default, constant) = match param {
                ParamType::Boolean(b) => (
                    Ty::Bool,
                    b.default.map(Literal::Bool),
                    b.const_value.map(Literal::Bool),
                ),
                ParamType::Integer(i) => (
                    Ty::Integer(int_rules(i)),
                    i.default.map(Literal::Integer),
                    i.const_value.map(Literal::Integer),
                ),
                ParamType::String(s) => (
                    self.lower_string(&fctx, wire, s),
                    s.default.clone().map(Literal::String),
                    s.const_value.clone().map(Literal::String),
                ),
                ParamType::Array(a) => {
                    let item = match &a.items {
                        ParamItem::Boolean(_) => Ty::Bool,
                        ParamItem::Integer(i) => Ty::Integer(int_rules(i)),
                        ParamItem::String(s) => {
                            self.lower_string(&fctx.child("items"), &format!("{wire}Item"), s)
                        }
                    };
                    (
                        Ty::Array {
                            item: Box::new(item),
                            min: a.min_length,
                            max: a.max_length,
                        },
                        None,
                        None,
                    )
                }
            };
            let field_name = fields_scope.claim(&snake(wire));
            let setter = methods.claim(&field_name);
            fields.push(Field {
                name: field_name,
                setter,
                wire: wire.clone(),
                doc: param.description().map(str::to_owned),
                ty,
                required: params.is_required(wire),
                nullable: false,
                boxed: false,
                secret: is_secret(wire),
                default,
                constant,
            });
        }
        order_required(&mut fields, params.required.as_deref());
        StructDef {
            name,
            wire: ctx.wire(),
            doc: params.description.clone(),
            fields,
            kind: StructKind::Params,
            validates: false,
        }
    }

    fn lower_object(
        &mut self,
        ctx: &Ctx<'_>,
        name: String,
        object: &ObjectSchema,
        kind: StructKind,
    ) -> StructDef {
        let mut ctx = ctx.clone();
        ctx.parent = name.clone();
        let mut fields_scope = Scope::with_reserved(&["extra"]);
        let mut methods = Scope::with_reserved(RESERVED_METHODS);
        let mut fields = Vec::new();
        for (wire, field) in &object.properties {
            let fctx = ctx.child(&format!("properties.{wire}"));
            let ty = self.lower_field(&fctx, wire, field);
            let (default, constant) = literals(field);
            let field_name = fields_scope.claim(&snake(wire));
            let setter = methods.claim(&field_name);
            fields.push(Field {
                name: field_name,
                setter,
                wire: wire.clone(),
                doc: field.description().map(str::to_owned),
                ty,
                required: object.is_required(wire),
                nullable: object.is_nullable(wire),
                boxed: false,
                secret: is_secret(wire),
                default,
                constant,
            });
        }
        order_required(&mut fields, object.required.as_deref());
        StructDef {
            name,
            wire: ctx.wire(),
            doc: object.description.clone(),
            fields,
            kind,
            validates: false,
        }
    }

    /// Lowers a field type; `wire` names inline types (`<parent><Wire>`).
    fn lower_field(&mut self, ctx: &Ctx<'_>, wire: &str, field: &FieldType) -> Ty {
        match field {
            FieldType::Boolean(_) => Ty::Bool,
            FieldType::Integer(i) => Ty::Integer(int_rules(i)),
            FieldType::String(s) => self.lower_string(ctx, wire, s),
            FieldType::Bytes(b) => Ty::Bytes {
                min: b.min_length,
                max: b.max_length,
            },
            FieldType::CidLink(_) => Ty::CidLink,
            FieldType::Blob(b) => Ty::Blob {
                accept: b.accept.clone(),
                max_size: b.max_size,
            },
            FieldType::Unknown(_) => Ty::Unknown,
            FieldType::Array(a) => {
                let mut actx = ctx.clone();
                actx.parent = format!("{}{}", ctx.parent, pascal(wire));
                self.lower_array(&actx, a)
            }
            FieldType::Object(o) => {
                let wanted = format!("{}{}", ctx.parent, pascal(wire));
                let name = self.claim_type(ctx.nsid, &wanted);
                let def = self.lower_object(ctx, name, o, StructKind::Object);
                let path = self.path_in(ctx.nsid, def.name.clone());
                self.push_item(ctx.nsid, Item::Struct(def));
                Ty::Named(path)
            }
            FieldType::Ref(r) => self
                .lower_ref(&ctx.child("ref"), &r.reference)
                .unwrap_or(Ty::Unknown),
            FieldType::Union(u) => {
                let wanted = format!("{}{}", ctx.parent, pascal(wire));
                let name = self.claim_type(ctx.nsid, &wanted);
                let def = self.lower_union(ctx, name, u);
                let path = self.path_in(ctx.nsid, def.name.clone());
                self.push_item(ctx.nsid, Item::Union(def));
                Ty::Named(path)
            }
        }
    }

    /// An array: `ctx.parent` is already the name inline item types are based on.
    fn lower_array(&mut self, ctx: &Ctx<'_>, array: &ArraySchema) -> Ty {
        let ictx = ctx.child("items");
        let item = self.lower_field(&ictx, "Item", &array.items);
        Ty::Array {
            item: Box::new(item),
            min: array.min_length,
            max: array.max_length,
        }
    }

    fn lower_string(&mut self, ctx: &Ctx<'_>, wire: &str, s: &StringSchema) -> Ty {
        if has_enum(s) && s.format.is_none() {
            let wanted = format!("{}{}", ctx.parent, pascal(wire));
            let name = self.claim_type(ctx.nsid, &wanted);
            self.push_string_enum(ctx, name.clone(), s);
            Ty::Enum(self.path_in(ctx.nsid, name), str_rules(s))
        } else {
            string_ty(s)
        }
    }

    fn lower_ref(&mut self, ctx: &Ctx<'_>, reference: &Ref) -> Option<Ty> {
        let (target_nsid, target_def) = reference.resolve(ctx.nsid);
        let (target_nsid, target_def) = (target_nsid.to_owned(), target_def.to_owned());
        let Some(target_doc) = self.docs.get(&target_nsid).map(|d| d.doc) else {
            self.error_at(
                ctx,
                format!("unresolved reference {reference}: no lexicon {target_nsid} is loaded"),
            );
            return None;
        };
        let Some(def) = target_doc.defs.get(&target_def) else {
            self.error_at(
                ctx,
                format!("unresolved reference {reference}: {target_nsid} has no def {target_def}"),
            );
            return None;
        };
        if target_nsid != ctx.nsid {
            self.cross_refs
                .insert((ctx.nsid.to_owned(), target_nsid.clone()));
        }
        match def {
            Def::Object(_) | Def::Record(_) => {
                self.type_name(&target_nsid, &target_def).map(Ty::Named)
            }
            Def::Boolean(_)
            | Def::Integer(_)
            | Def::String(_)
            | Def::Bytes(_)
            | Def::CidLink(_)
            | Def::Blob(_)
            | Def::Array(_) => self.alias_ty(&target_nsid, &target_def),
            other => {
                self.error_at(
                    ctx,
                    format!(
                        "reference {reference} points at a {} definition, which cannot be a field type",
                        other.type_name()
                    ),
                );
                None
            }
        }
    }

    fn lower_union(&mut self, ctx: &Ctx<'_>, name: String, union: &UnionSchema) -> UnionDef {
        let closed = union.is_closed();
        let mut scope = if closed {
            Scope::new()
        } else {
            Scope::with_reserved(&["Unknown"])
        };
        let mut variants = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, reference) in union.refs.iter().enumerate() {
            let rctx = ctx.child(&format!("refs[{i}]"));
            let tag = reference.normalized(ctx.nsid);
            if !seen.insert(tag.clone()) {
                continue;
            }
            let (target_nsid, target_def) = reference.resolve(ctx.nsid);
            // `None`: `lower_ref` already reported why (no such def, or not data).
            let Some(ty) = self.lower_ref(&rctx, reference) else {
                continue;
            };
            let Ty::Named(path) = ty else {
                self.error_at(
                    &rctx,
                    format!("union member {reference} is not an object or record"),
                );
                continue;
            };
            let is_object = self
                .docs
                .get(target_nsid)
                .and_then(|d| d.doc.defs.get(target_def))
                .is_some_and(|d| matches!(d, Def::Object(_) | Def::Record(_)));
            if !is_object {
                self.error_at(
                    &rctx,
                    format!("union member {reference} is not an object or record"),
                );
                continue;
            }
            let last = target_nsid.rsplit('.').next().unwrap_or(target_nsid);
            let wanted = if target_nsid == ctx.nsid {
                if target_def == "main" {
                    pascal(last)
                } else {
                    pascal(target_def)
                }
            } else if target_def == "main" {
                pascal(last)
            } else if last == "defs" {
                pascal(target_def)
            } else {
                format!("{}{}", pascal(last), pascal(target_def))
            };
            variants.push(Variant {
                name: scope.claim(&wanted),
                tag,
                path,
            });
        }
        UnionDef {
            name,
            wire: ctx.wire(),
            doc: union.description.clone(),
            closed,
            variants,
            validates: false,
        }
    }

    // ---------------------------------------------------------------- whole-crate passes

    fn struct_fields_mut(&mut self) -> impl Iterator<Item = (TypePath, &mut StructDef)> {
        let module_paths = &self.module_paths;
        let docs = &self.docs;
        self.items.iter_mut().flat_map(move |(nsid, items)| {
            let module = module_paths.get(nsid).cloned().unwrap_or_default();
            let root = docs.get(nsid).map(|d| d.root.clone()).unwrap_or_default();
            items.iter_mut().filter_map(move |item| match item {
                Item::Struct(def) => Some((
                    TypePath {
                        root: root.clone(),
                        module: module.clone(),
                        name: def.name.clone(),
                    },
                    def,
                )),
                _ => None,
            })
        })
    }

    /// Boxes struct fields that would otherwise make a type contain itself.
    fn compute_boxing(&mut self) {
        let mut graph: BTreeMap<TypePath, Vec<TypePath>> = BTreeMap::new();
        for (path, def) in self.struct_fields_mut() {
            let edges = graph.entry(path).or_default();
            for field in &def.fields {
                if let Ty::Named(target) = &field.ty {
                    edges.push(target.clone());
                }
            }
        }
        let components = strongly_connected(&graph);
        for (path, def) in self.struct_fields_mut() {
            let Some(own) = components.get(&path) else {
                continue;
            };
            for field in &mut def.fields {
                if let Ty::Named(target) = &field.ty
                    && components.get(target) == Some(own)
                {
                    field.boxed = true;
                }
            }
        }
    }

    /// Marks the endpoints whose output holds a credential field, directly or in a nested
    /// struct, union member or alias (a fixed point over the type graph, like
    /// [`Self::compute_validates`]).
    fn compute_secret_outputs(&mut self) {
        let mut secret: BTreeSet<TypePath> = BTreeSet::new();
        loop {
            let mut changed = false;
            for (nsid, items) in &self.items {
                let module = self.module_paths.get(nsid).cloned().unwrap_or_default();
                let root = self.root_of(nsid);
                for item in items {
                    let (name, holds) = match item {
                        Item::Struct(def) => (
                            &def.name,
                            def.fields
                                .iter()
                                .any(|f| f.secret || ty_holds_secret(&f.ty, &secret)),
                        ),
                        Item::Union(def) => (
                            &def.name,
                            def.variants.iter().any(|v| secret.contains(&v.path)),
                        ),
                        Item::Alias(def) => (&def.name, ty_holds_secret(&def.ty, &secret)),
                        _ => continue,
                    };
                    if holds {
                        let path = TypePath {
                            root: root.clone(),
                            module: module.clone(),
                            name: name.clone(),
                        };
                        if secret.insert(path) {
                            changed = true;
                        }
                    }
                }
            }
            if !changed {
                break;
            }
        }
        for items in self.items.values_mut() {
            for item in items.iter_mut() {
                if let Item::Endpoint(def) = item {
                    def.output_has_secrets =
                        matches!(&def.output, BodyTy::Json(path) if secret.contains(path));
                }
            }
        }
    }

    /// Marks the structs and unions whose `validate()` has something to check.
    fn compute_validates(&mut self) {
        let mut validating: BTreeSet<TypePath> = BTreeSet::new();
        loop {
            let mut changed = false;
            for (nsid, items) in &self.items {
                let module = self.module_paths.get(nsid).cloned().unwrap_or_default();
                let root = self.root_of(nsid);
                for item in items {
                    let (name, needs) = match item {
                        Item::Struct(def) => (
                            &def.name,
                            def.fields
                                .iter()
                                .any(|f| f.constant.is_some() || ty_checks(&f.ty, &validating)),
                        ),
                        Item::Union(def) => (
                            &def.name,
                            def.variants.iter().any(|v| validating.contains(&v.path)),
                        ),
                        _ => continue,
                    };
                    if needs {
                        let path = TypePath {
                            root: root.clone(),
                            module: module.clone(),
                            name: name.clone(),
                        };
                        if validating.insert(path) {
                            changed = true;
                        }
                    }
                }
            }
            if !changed {
                break;
            }
        }
        for (nsid, items) in self.items.iter_mut() {
            let module = self.module_paths.get(nsid).cloned().unwrap_or_default();
            let root = self
                .docs
                .get(nsid)
                .map(|d| d.root.clone())
                .unwrap_or_default();
            for item in items.iter_mut() {
                let path = |name: &str| TypePath {
                    root: root.clone(),
                    module: module.clone(),
                    name: name.to_owned(),
                };
                match item {
                    Item::Struct(def) => def.validates = validating.contains(&path(&def.name)),
                    Item::Union(def) => def.validates = validating.contains(&path(&def.name)),
                    _ => {}
                }
            }
        }
        self.validating = validating;
    }

    fn features(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut features: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for nsid in &self.order {
            if self.docs.get(nsid).is_some_and(|d| d.own)
                && let Some(feature) = namespace_feature(nsid)
            {
                features.entry(feature).or_default();
            }
        }
        for (from, to) in &self.cross_refs {
            if let (Some(a), Some(b)) = (namespace_feature(from), namespace_feature(to))
                && a != b
                && self.docs.get(to).is_some_and(|d| d.own)
            {
                features.entry(a).or_default().insert(b);
            }
        }
        features
    }
}

/// Whether a field holds a credential, by its name (the rule and its lists are in
/// [`crate::secrets`]). Their values must never reach `Debug` output (and so logs and panics).
fn is_secret(wire: &str) -> bool {
    crate::secrets::is_secret(wire)
}

/// Whether a value of `ty` holds a credential, given the types known to hold one.
fn ty_holds_secret(ty: &Ty, secret: &BTreeSet<TypePath>) -> bool {
    match ty {
        Ty::Array { item, .. } => ty_holds_secret(item, secret),
        Ty::Named(path) => secret.contains(path),
        _ => false,
    }
}

/// The Rust name of an optional, non-nullable plain-string field called `wire`.
fn optional_string_field(def: &StructDef, wire: &str) -> Option<String> {
    def.fields
        .iter()
        .find(|f| f.wire == wire && !f.required && !f.nullable && matches!(f.ty, Ty::String(_)))
        .map(|f| f.name.clone())
}

/// Cursor pagination, when the output has the proven shape: an optional string `cursor` and
/// exactly one array field (style: generate it only when the shape is certain).
fn pagination_of(output: &StructDef, cursor_param: &str) -> Option<Pagination> {
    let cursor_output = optional_string_field(output, "cursor")?;
    let mut arrays = output
        .fields
        .iter()
        .filter(|f| matches!(f.ty, Ty::Array { .. }));
    let items = arrays.next()?;
    if arrays.next().is_some() || !items.required || items.nullable {
        return None;
    }
    let Ty::Array { item, .. } = &items.ty else {
        return None;
    };
    Some(Pagination {
        cursor_param: cursor_param.to_owned(),
        cursor_output,
        items: items.name.clone(),
        item: (**item).clone(),
    })
}

fn key_path(parent: &[String], key: &str) -> Vec<String> {
    let mut path = parent.to_vec();
    path.push(format!("\u{0}{key}"));
    path
}

fn strings(values: Option<Vec<&str>>) -> Vec<String> {
    values
        .unwrap_or_default()
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// Puts required fields first, in the order of the lexicon's `required` list (the order of
/// `new()`'s arguments); optional fields follow in property order.
fn order_required(fields: &mut [Field], required: Option<&[String]>) {
    let order: HashMap<&str, usize> = required
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, name)| (name.as_str(), i))
        .collect();
    fields.sort_by_key(|f| match order.get(f.wire.as_str()) {
        Some(i) if f.required => (0, *i),
        _ => (1, 0),
    });
}

fn has_enum(s: &StringSchema) -> bool {
    s.enum_values.as_ref().is_some_and(|v| !v.is_empty())
        || s.known_values.as_ref().is_some_and(|v| !v.is_empty())
}

fn str_rules(s: &StringSchema) -> StrRules {
    StrRules {
        min_length: s.min_length,
        max_length: s.max_length,
        min_graphemes: s.min_graphemes,
        max_graphemes: s.max_graphemes,
    }
}

fn string_ty(s: &StringSchema) -> Ty {
    match s.format {
        Some(format) => Ty::Format(format, str_rules(s)),
        None => Ty::String(str_rules(s)),
    }
}

fn int_rules(i: &atlex_lexicon::model::IntegerSchema) -> IntRules {
    IntRules {
        minimum: i.minimum,
        maximum: i.maximum,
        allowed: i.enum_values.clone(),
    }
}

fn literals(field: &FieldType) -> (Option<Literal>, Option<Literal>) {
    match field {
        FieldType::Boolean(b) => (
            b.default.map(Literal::Bool),
            b.const_value.map(Literal::Bool),
        ),
        FieldType::Integer(i) => (
            i.default.map(Literal::Integer),
            i.const_value.map(Literal::Integer),
        ),
        FieldType::String(s) => (
            s.default.clone().map(Literal::String),
            s.const_value.clone().map(Literal::String),
        ),
        _ => (None, None),
    }
}

/// Whether a value of `ty` has anything to check.
pub(crate) fn ty_checks(ty: &Ty, validating: &BTreeSet<TypePath>) -> bool {
    match ty {
        Ty::Bool | Ty::CidLink => false,
        Ty::Integer(rules) => !rules.is_empty(),
        Ty::String(rules) | Ty::Format(_, rules) | Ty::Enum(_, rules) => !rules.is_empty(),
        Ty::Bytes { min, max } => min.is_some() || max.is_some(),
        Ty::Blob { accept, max_size } => accept.is_some() || max_size.is_some(),
        Ty::Unknown => true,
        Ty::Array { item, min, max } => {
            min.is_some() || max.is_some() || ty_checks(item, validating)
        }
        Ty::Named(path) => validating.contains(path),
    }
}

/// Tarjan's strongly connected components: node → component id.
fn strongly_connected(graph: &BTreeMap<TypePath, Vec<TypePath>>) -> HashMap<TypePath, usize> {
    struct State<'g> {
        graph: &'g BTreeMap<TypePath, Vec<TypePath>>,
        index: HashMap<&'g TypePath, usize>,
        low: HashMap<&'g TypePath, usize>,
        on_stack: BTreeSet<&'g TypePath>,
        stack: Vec<&'g TypePath>,
        next: usize,
        component: HashMap<TypePath, usize>,
        components: usize,
    }
    fn visit<'g>(s: &mut State<'g>, node: &'g TypePath) {
        s.index.insert(node, s.next);
        s.low.insert(node, s.next);
        s.next += 1;
        s.stack.push(node);
        s.on_stack.insert(node);
        if let Some(edges) = s.graph.get(node) {
            for target in edges {
                let Some((target, _)) = s.graph.get_key_value(target) else {
                    continue;
                };
                if !s.index.contains_key(target) {
                    visit(s, target);
                    let low = s.low[target].min(s.low[node]);
                    s.low.insert(node, low);
                } else if s.on_stack.contains(target) {
                    let low = s.index[target].min(s.low[node]);
                    s.low.insert(node, low);
                }
            }
        }
        if s.low[node] == s.index[node] {
            // A node is in a cycle if its component has two members or it has a self edge.
            let mut members = Vec::new();
            while let Some(top) = s.stack.pop() {
                s.on_stack.remove(top);
                members.push(top);
                if top == node {
                    break;
                }
            }
            let self_loop = s.graph.get(node).is_some_and(|e| e.contains(node));
            if members.len() > 1 || self_loop {
                for member in members {
                    s.component.insert(member.clone(), s.components);
                }
            }
            s.components += 1;
        }
    }
    let mut state = State {
        graph,
        index: HashMap::new(),
        low: HashMap::new(),
        on_stack: BTreeSet::new(),
        stack: Vec::new(),
        next: 0,
        component: HashMap::new(),
        components: 0,
    };
    for node in graph.keys() {
        if !state.index.contains_key(node) {
            visit(&mut state, node);
        }
    }
    state.component
}
