//! Schema checks on one document (lexicon-rules.md §1–§3).
//!
//! Structural rules (JSON types, required keys, which types may appear where, known string
//! formats, record key forms) are already enforced when the JSON is converted into the model;
//! the checks here are the rules that need the whole node or document: `lexicon == 1`, a valid
//! NSID, non-empty `defs`, primary types only as `main`, min ≤ max, `default`/`const`
//! exclusivity, `required`/`nullable` ⊆ `properties`, body encodings, error names, empty closed
//! unions, permissions, `:lang` keys, literal record keys, and the kinds of local ref targets.
//! References into other documents are checked by [`crate::Catalog::check`].

use std::collections::BTreeSet;
use std::path::Path;

use atlex_types::format::{self, Format};
use serde_json::Value;

use crate::model::*;
use crate::problem::{Diagnostics, Sink, index, join};

/// Runs every single-document schema check and returns all problems (errors and warnings).
///
/// `file` is only used to name the file in the problems.
pub fn check_document(doc: &LexiconDoc, file: Option<&Path>) -> Diagnostics {
    let mut c = Checker {
        s: Sink::new(file, Some(doc.id.clone())),
        doc,
    };
    c.doc_level();
    for (name, def) in &doc.defs {
        c.s.def = Some(name.clone());
        c.def(def);
    }
    c.s.def = None;
    c.s.out
}

struct Checker<'a> {
    s: Sink<'a>,
    doc: &'a LexiconDoc,
}

/// Whether a def of this type may be the target of a `ref`.
pub(crate) fn ref_target_ok(def: &Def) -> bool {
    !matches!(
        def,
        Def::Token(_)
            | Def::Query(_)
            | Def::Procedure(_)
            | Def::Subscription(_)
            | Def::PermissionSet(_)
    )
}

/// Whether a def of this type may be a member of a `union`.
pub(crate) fn union_target_ok(def: &Def) -> bool {
    matches!(def, Def::Object(_) | Def::Record(_))
}

/// The message for a reference whose target has the wrong type, or `None` when it is fine.
pub(crate) fn target_problem(kind: RefKind, reference: &Ref, def: &Def) -> Option<String> {
    match kind {
        RefKind::Ref if !ref_target_ok(def) => Some(format!(
            "ref {:?} points at a `{}`, which cannot be referenced as data",
            reference.as_str(),
            def.type_name()
        )),
        RefKind::Union if !union_target_ok(def) => Some(format!(
            "union member {:?} points at a `{}`; union members must be objects or records",
            reference.as_str(),
            def.type_name()
        )),
        _ => None,
    }
}

impl Checker<'_> {
    fn doc_level(&mut self) {
        let doc = self.doc;
        if doc.lexicon != 1 {
            self.s.error(
                "lexicon",
                format!("unsupported lexicon version {} (expected 1)", doc.lexicon),
            );
        }
        if let Err(e) = format::validate(Format::Nsid, &doc.id) {
            self.s.error("id", e.to_string());
        }
        if doc.defs.is_empty() {
            self.s
                .error("defs", "a lexicon must have at least one definition");
        }
        for (name, def) in &doc.defs {
            if name.is_empty() {
                self.s.error("defs", "definition name is empty");
            } else if name.contains('#') {
                self.s
                    .error("defs", format!("definition name {name:?} contains `#`"));
            } else if name.contains('.') {
                self.s.warn(
                    "defs",
                    format!("definition name {name:?} contains `.` (rejected by the Go reference)"),
                );
            }
            if def.is_primary() && name != "main" {
                self.s.def = Some(name.clone());
                self.s.error(
                    "type",
                    format!(
                        "`{}` is a primary type and may only be defined as `main`",
                        def.type_name()
                    ),
                );
                self.s.def = None;
            }
        }
    }

    fn def(&mut self, def: &Def) {
        match def {
            Def::Record(r) => {
                if !r.key_given {
                    self.s.warn(
                        "",
                        "record has no `key` (the spec requires one; accepted as `any`, as the \
                         reference implementation does)",
                    );
                }
                if let RecordKey::Literal(k) = &r.key
                    && let Err(e) = format::validate(Format::RecordKey, k)
                {
                    self.s.error("key", format!("literal record key: {e}"));
                }
                self.object("record", &r.record);
            }
            Def::Query(q) => {
                self.params_opt(q.parameters.as_ref());
                self.body_opt("output", q.output.as_ref());
                self.errors_opt(q.errors.as_deref());
            }
            Def::Procedure(q) => {
                self.params_opt(q.parameters.as_ref());
                self.body_opt("input", q.input.as_ref());
                self.body_opt("output", q.output.as_ref());
                self.errors_opt(q.errors.as_deref());
            }
            Def::Subscription(q) => {
                self.params_opt(q.parameters.as_ref());
                match &q.message {
                    None => self.s.warn(
                        "",
                        "subscription has no `message` (optional in the spec and the reference \
                         implementation; generated as an open union with no known members)",
                    ),
                    Some(m) => self.union("message.schema", &m.schema),
                }
                self.errors_opt(q.errors.as_deref());
            }
            Def::PermissionSet(p) => self.permission_set(p),
            Def::Token(_) | Def::CidLink(_) => {}
            Def::Boolean(x) => self.boolean("", x),
            Def::Integer(x) => self.integer("", x),
            Def::String(x) => self.string("", x),
            Def::Bytes(x) => self.bytes("", x),
            Def::Blob(x) => self.blob("", x),
            Def::Array(x) => self.array("", x),
            Def::Object(x) => self.object("", x),
        }
    }

    fn field(&mut self, path: &str, f: &FieldType) {
        match f {
            FieldType::Boolean(x) => self.boolean(path, x),
            FieldType::Integer(x) => self.integer(path, x),
            FieldType::String(x) => self.string(path, x),
            FieldType::Bytes(x) => self.bytes(path, x),
            FieldType::CidLink(_) | FieldType::Unknown(_) => {}
            FieldType::Blob(x) => self.blob(path, x),
            FieldType::Array(x) => self.array(path, x),
            FieldType::Object(x) => self.object(path, x),
            FieldType::Ref(x) => self.reference(&join(path, "ref"), &x.reference, RefKind::Ref),
            FieldType::Union(x) => self.union(path, x),
        }
    }

    fn default_const<T>(&mut self, path: &str, default: &Option<T>, konst: &Option<T>) {
        if default.is_some() && konst.is_some() {
            self.s
                .error(path, "`default` and `const` are mutually exclusive");
        }
    }

    fn range(&mut self, path: &str, what: (&str, &str), min: Option<u64>, max: Option<u64>) {
        if let (Some(lo), Some(hi)) = (min, max)
            && lo > hi
        {
            self.s.error(
                path,
                format!("{} ({lo}) is greater than {} ({hi})", what.0, what.1),
            );
        }
    }

    fn boolean(&mut self, path: &str, x: &BooleanSchema) {
        self.default_const(path, &x.default, &x.const_value);
    }

    fn integer(&mut self, path: &str, x: &IntegerSchema) {
        self.default_const(path, &x.default, &x.const_value);
        if let (Some(lo), Some(hi)) = (x.minimum, x.maximum)
            && lo > hi
        {
            self.s.error(
                path,
                format!("minimum ({lo}) is greater than maximum ({hi})"),
            );
        }
        if let Some(d) = x.default {
            let out_of_range =
                x.minimum.is_some_and(|lo| d < lo) || x.maximum.is_some_and(|hi| d > hi);
            let not_in_enum = x.enum_values.as_ref().is_some_and(|e| !e.contains(&d));
            if out_of_range || not_in_enum {
                self.s.warn(
                    &join(path, "default"),
                    format!("default {d} does not satisfy the field's own constraints"),
                );
            }
        }
    }

    fn string(&mut self, path: &str, x: &StringSchema) {
        self.default_const(path, &x.default, &x.const_value);
        self.range(path, ("minLength", "maxLength"), x.min_length, x.max_length);
        self.range(
            path,
            ("minGraphemes", "maxGraphemes"),
            x.min_graphemes,
            x.max_graphemes,
        );
        if let (Some(d), Some(e)) = (&x.default, &x.enum_values)
            && !e.contains(d)
        {
            self.s.warn(
                &join(path, "default"),
                format!("default {d:?} is not one of the enum values"),
            );
        }
    }

    fn bytes(&mut self, path: &str, x: &BytesSchema) {
        self.range(path, ("minLength", "maxLength"), x.min_length, x.max_length);
    }

    fn blob(&mut self, path: &str, x: &BlobSchema) {
        if x.max_size == Some(0) {
            self.s
                .error(&join(path, "maxSize"), "maxSize must be greater than 0");
        }
        for (i, pattern) in x.accept.iter().flatten().enumerate() {
            if !accept_pattern_ok(pattern) {
                self.s.warn(
                    &index(&join(path, "accept"), i),
                    format!(
                        "MIME pattern {pattern:?} is not supported (use type/subtype, type/* or */*)"
                    ),
                );
            }
        }
    }

    fn array(&mut self, path: &str, x: &ArraySchema) {
        self.range(path, ("minLength", "maxLength"), x.min_length, x.max_length);
        self.field(&join(path, "items"), &x.items);
    }

    fn subset(
        &mut self,
        path: &str,
        key: &str,
        names: Option<&Vec<String>>,
        known: &dyn Fn(&str) -> bool,
    ) {
        let mut seen = BTreeSet::new();
        for (i, name) in names.into_iter().flatten().enumerate() {
            let p = index(&join(path, key), i);
            if !known(name) && key == "nullable" {
                // The reference implementation only checks `required`; a stray `nullable` name
                // has no effect on any data, so it is accepted with a warning.
                self.s.warn(
                    &p,
                    format!(
                        "{name:?} is listed in `nullable` but is not a property (ignored; the \
                         reference implementation accepts it)"
                    ),
                );
            } else if !known(name) {
                self.s.error(
                    &p,
                    format!("{name:?} is listed in `{key}` but is not a property"),
                );
            }
            if !seen.insert(name) {
                self.s
                    .warn(&p, format!("{name:?} is listed twice in `{key}`"));
            }
        }
    }

    fn object(&mut self, path: &str, x: &ObjectSchema) {
        self.subset(path, "required", x.required.as_ref(), &|n| {
            x.properties.contains_key(n)
        });
        self.subset(path, "nullable", x.nullable.as_ref(), &|n| {
            x.properties.contains_key(n)
        });
        let props = join(path, "properties");
        for (name, f) in &x.properties {
            if name.is_empty() {
                self.s.error(&props, "property name is empty");
            }
            self.field(&join(&props, name), f);
        }
    }

    fn params_opt(&mut self, p: Option<&Params>) {
        let Some(p) = p else { return };
        let path = "parameters";
        self.subset(path, "required", p.required.as_ref(), &|n| {
            p.properties.contains_key(n)
        });
        let props = join(path, "properties");
        for (name, t) in &p.properties {
            if name.is_empty() {
                self.s.error(&props, "parameter name is empty");
            }
            let fp = join(&props, name);
            match t {
                ParamType::Boolean(x) => self.boolean(&fp, x),
                ParamType::Integer(x) => self.integer(&fp, x),
                ParamType::String(x) => self.string(&fp, x),
                ParamType::Array(a) => {
                    self.range(&fp, ("minLength", "maxLength"), a.min_length, a.max_length);
                    let ip = join(&fp, "items");
                    match &a.items {
                        ParamItem::Boolean(x) => self.boolean(&ip, x),
                        ParamItem::Integer(x) => self.integer(&ip, x),
                        ParamItem::String(x) => self.string(&ip, x),
                    }
                }
            }
        }
    }

    fn body_opt(&mut self, key: &str, b: Option<&Body>) {
        let Some(b) = b else { return };
        if let Err(why) = encoding_ok(&b.encoding) {
            self.s.error(
                &join(key, "encoding"),
                format!("invalid encoding {:?}: {why}", b.encoding),
            );
        }
        let sp = join(key, "schema");
        match &b.schema {
            None => {}
            Some(BodySchema::Object(o)) => self.object(&sp, o),
            Some(BodySchema::Ref(r)) => {
                self.reference(&join(&sp, "ref"), &r.reference, RefKind::Ref)
            }
            Some(BodySchema::Union(u)) => self.union(&sp, u),
        }
    }

    fn errors_opt(&mut self, errors: Option<&[ErrorDef]>) {
        let mut seen = BTreeSet::new();
        for (i, e) in errors.into_iter().flatten().enumerate() {
            let p = join(&index("errors", i), "name");
            if e.name.is_empty() {
                self.s.error(&p, "error name is empty");
            } else if e.name.chars().any(char::is_whitespace) {
                self.s
                    .error(&p, format!("error name {:?} contains whitespace", e.name));
            }
            if !seen.insert(e.name.as_str()) {
                self.s
                    .warn(&p, format!("error name {:?} is declared twice", e.name));
            }
        }
    }

    fn union(&mut self, path: &str, u: &UnionSchema) {
        if u.is_closed() && u.refs.is_empty() {
            self.s
                .error(path, "a closed union must list at least one ref");
        }
        let mut seen = BTreeSet::new();
        for (i, r) in u.refs.iter().enumerate() {
            let p = index(&join(path, "refs"), i);
            if !seen.insert(r.normalized(&self.doc.id)) {
                self.s.warn(&p, format!("{:?} is listed twice", r.as_str()));
            }
            self.reference(&p, r, RefKind::Union);
        }
    }

    /// Checks the NSID part of a reference and, for references into this document, that the
    /// target exists and has an allowed type.
    fn reference(&mut self, path: &str, r: &Ref, kind: RefKind) {
        let (nsid, name) = r.parts();
        if let Some(nsid) = nsid
            && let Err(e) = format::validate(Format::Nsid, nsid)
        {
            self.s
                .error(path, format!("reference {:?}: {e}", r.as_str()));
            return;
        }
        if nsid.is_some_and(|n| n != self.doc.id) {
            return; // another document: checked by Catalog::check
        }
        match self.doc.defs.get(name) {
            None => self.s.error(
                path,
                format!(
                    "reference {:?}: this document has no definition {name:?}",
                    r.as_str()
                ),
            ),
            Some(def) => {
                if let Some(msg) = target_problem(kind, r, def) {
                    self.s.error(path, msg);
                }
            }
        }
    }

    fn permission_set(&mut self, p: &PermissionSet) {
        for (key, map) in [
            ("title:lang", &p.title_lang),
            ("detail:lang", &p.detail_lang),
        ] {
            for lang in map.iter().flat_map(|m| m.keys()) {
                if let Err(e) = format::validate(Format::Language, lang) {
                    self.s.error(&join(key, lang), e.to_string());
                }
            }
        }
        for (i, perm) in p.permissions.iter().enumerate() {
            self.permission(&index("permissions", i), perm);
        }
    }

    fn permission(&mut self, path: &str, p: &Permission) {
        if p.resource.is_empty() {
            self.s.error(&join(path, "resource"), "resource is empty");
        }
        for (key, v) in &p.fields {
            if !permission_value_ok(v) {
                self.s.error(
                    &join(path, key),
                    "permission field values must be strings, integers, booleans or arrays of those",
                );
            }
        }
        match p.resource.as_str() {
            "repo" => self.repo_permission(path, p),
            "rpc" => self.rpc_permission(path, p),
            "blob" | "account" | "identity" => self.s.error(
                &join(path, "resource"),
                format!(
                    "resource {:?} is not allowed in a lexicon permission set",
                    p.resource
                ),
            ),
            other => self.s.warn(
                &join(path, "resource"),
                format!("unknown resource {other:?} (ignored when granting scopes)"),
            ),
        }
    }

    fn nsid_list(
        &mut self,
        path: &str,
        p: &Permission,
        key: &str,
        allow_star: bool,
    ) -> Vec<String> {
        let kp = join(path, key);
        let Some(items) = p.strings(key) else {
            let what = if p.fields.contains_key(key) {
                "must be an array of strings"
            } else {
                "is required"
            };
            self.s.error(&kp, format!("`{key}` {what}"));
            return Vec::new();
        };
        if items.is_empty() {
            self.s.error(&kp, format!("`{key}` must not be empty"));
        }
        let mut seen = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let ip = index(&kp, i);
            if *item == "*" {
                if !allow_star {
                    self.s.error(&ip, format!("`*` is not allowed in `{key}`"));
                }
            } else if let Err(e) = format::validate(Format::Nsid, item) {
                self.s.error(&ip, e.to_string());
            }
            if !seen.insert(*item) {
                self.s.error(&ip, format!("{item:?} is listed twice"));
            }
        }
        items.into_iter().map(str::to_owned).collect()
    }

    fn repo_permission(&mut self, path: &str, p: &Permission) {
        self.nsid_list(path, p, "collection", false);
        if p.fields.contains_key("action") {
            let ap = join(path, "action");
            match p.strings("action") {
                None => self.s.error(&ap, "`action` must be an array of strings"),
                Some(actions) => {
                    for (i, a) in actions.iter().enumerate() {
                        if !matches!(*a, "create" | "update" | "delete") {
                            self.s.error(
                                &index(&ap, i),
                                format!("unknown action {a:?} (expected create, update or delete)"),
                            );
                        }
                    }
                }
            }
        }
    }

    fn rpc_permission(&mut self, path: &str, p: &Permission) {
        let lxm = self.nsid_list(path, p, "lxm", true);
        let inherit = match p.fields.get("inheritAud") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.s
                    .error(&join(path, "inheritAud"), "`inheritAud` must be a boolean");
                false
            }
        };
        let ap = join(path, "aud");
        match p.fields.get("aud") {
            None if !inherit => self.s.error(
                &ap,
                "`aud` is required unless `inheritAud` is true",
            ),
            None => {}
            Some(Value::String(aud)) if aud == "*" && lxm.iter().any(|m| m == "*") => {
                self.s
                    .error(&ap, "`lxm: [\"*\"]` together with `aud: \"*\"` is not allowed");
            }
            Some(Value::String(aud)) if aud == "*" => {}
            Some(other) => self.s.error(
                &ap,
                format!(
                    "`aud` must be \"*\" in a permission set (a fixed service is not allowed), found {}",
                    crate::convert::describe(other)
                ),
            ),
        }
    }
}

fn permission_value_ok(v: &Value) -> bool {
    let scalar = |v: &Value| v.is_string() || v.is_boolean() || v.is_i64() || v.is_u64();
    match v {
        Value::Array(items) => items.iter().all(scalar),
        other => scalar(other),
    }
}

/// Whether a blob `accept` pattern is one the validator understands.
fn accept_pattern_ok(pattern: &str) -> bool {
    if pattern == "*/*" {
        return true;
    }
    let Some((ty, sub)) = pattern.split_once('/') else {
        return false;
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    token(ty) && (sub == "*" || token(sub))
}

/// Checks an XRPC body `encoding`: one MIME type, no parameters or lists.
pub(crate) fn encoding_ok(encoding: &str) -> Result<(), &'static str> {
    if encoding.is_empty() {
        return Err("empty");
    }
    if encoding.contains(';') || encoding.contains(',') || encoding.chars().any(char::is_whitespace)
    {
        return Err("must be a single MIME type without parameters, lists or spaces");
    }
    match encoding.split_once('/') {
        Some((ty, sub)) if !ty.is_empty() && !sub.is_empty() && !sub.contains('/') => Ok(()),
        _ => Err("expected type/subtype"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        for ok in [
            "application/json",
            "*/*",
            "application/vnd.ipld.car",
            "video/mp4",
        ] {
            assert!(encoding_ok(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "application/json; charset=utf-8",
            "text/plain,text/html",
            "application /json",
            "json",
            "a/b/c",
            "/json",
        ] {
            assert!(encoding_ok(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn accept_patterns() {
        for ok in ["image/png", "image/*", "*/*", "video/mp4"] {
            assert!(accept_pattern_ok(ok), "{ok}");
        }
        for bad in ["*", "text/ht*", "image", "", "*/png"] {
            assert!(!accept_pattern_ok(bad), "{bad}");
        }
    }

    #[test]
    fn permission_values() {
        use serde_json::json;
        assert!(permission_value_ok(&json!("x")));
        assert!(permission_value_ok(&json!(true)));
        assert!(permission_value_ok(&json!(3)));
        assert!(permission_value_ok(&json!(["a", 1, false])));
        assert!(!permission_value_ok(&json!({"a": 1})));
        assert!(!permission_value_ok(&json!([["a"]])));
        assert!(!permission_value_ok(&json!(1.5)));
        assert!(!permission_value_ok(&json!(null)));
    }
}
