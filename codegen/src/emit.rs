//! Emission: [`crate::ir`] → Rust tokens.
//!
//! Everything here pattern-matches on the IR; no naming or resolution decisions are made.
//! Every path is absolute (`::std::…`, the runtime path, or the crate root), so lexicon defs
//! named `Option`, `Result`, `String` or `Box` cannot capture a name the generated code uses.

use std::collections::BTreeSet;

use atlex_lexicon::model::RecordKey;
use atlex_types::format::Format;
use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

use crate::docs::doc_lines;
use crate::ir::*;

/// Emission settings.
#[derive(Debug, Clone)]
pub struct EmitOptions {
    /// The path of the runtime crate (`::atlex`).
    pub runtime: String,
    /// The path of the generated modules' root (`::atlex`, `crate`, `crate::generated`).
    pub root: String,
}

/// Emits the items of one module.
pub struct Emitter<'a> {
    rt: TokenStream,
    root: TokenStream,
    /// Whether the generated code is the runtime crate itself (inherent methods on its
    /// `Client` are allowed) rather than a user's crate (extension traits instead).
    in_runtime: bool,
    serde: TokenStream,
    validating: &'a BTreeSet<TypePath>,
}

/// An identifier from IR text, raw (`r#type`) when the text says so.
pub fn ident(text: &str) -> Ident {
    match text.strip_prefix("r#") {
        Some(raw) => Ident::new_raw(raw, Span::call_site()),
        None => Ident::new(text, Span::call_site()),
    }
}

/// Tokens for a path written as text (`::atlex`, `crate`, `crate::generated`).
fn path_text(text: &str) -> TokenStream {
    let mut out = TokenStream::new();
    let absolute = text.starts_with("::");
    for (i, segment) in text.trim_start_matches("::").split("::").enumerate() {
        if segment.is_empty() {
            continue;
        }
        let id = ident(segment);
        if i > 0 || absolute {
            out.extend(quote!(::#id));
        } else {
            out.extend(quote!(#id));
        }
    }
    out
}

fn doc_attrs(doc: Option<&str>) -> TokenStream {
    let mut out = TokenStream::new();
    if let Some(doc) = doc {
        for line in doc_lines(doc) {
            out.extend(quote!(#[doc = #line]));
        }
    }
    out
}

fn doc_line(text: &str) -> TokenStream {
    let line = format!(" {text}");
    quote!(#[doc = #line])
}

fn format_type(format: Format) -> Ident {
    ident(match format {
        Format::Did => "Did",
        Format::Handle => "Handle",
        Format::AtIdentifier => "AtIdentifier",
        Format::Nsid => "Nsid",
        Format::AtUri => "AtUri",
        Format::Cid => "Cid",
        Format::Datetime => "Datetime",
        Format::Tid => "Tid",
        Format::RecordKey => "RecordKey",
        Format::Language => "Language",
        Format::Uri => "Uri",
    })
}

fn opt_u64(value: Option<u64>) -> TokenStream {
    match value {
        Some(v) => quote!(::std::option::Option::Some(#v)),
        None => quote!(::std::option::Option::None),
    }
}

fn opt_i64(value: Option<i64>) -> TokenStream {
    match value {
        Some(v) => quote!(::std::option::Option::Some(#v)),
        None => quote!(::std::option::Option::None),
    }
}

impl<'a> Emitter<'a> {
    /// An emitter for a crate whose runtime is at `options.runtime`.
    pub fn new(options: &EmitOptions, validating: &'a BTreeSet<TypePath>) -> Emitter<'a> {
        let rt = path_text(&options.runtime);
        let serde = quote!(#rt::__private::serde);
        Emitter {
            root: path_text(&options.root),
            in_runtime: options.root == options.runtime,
            rt,
            serde,
            validating,
        }
    }

    /// The path of a generated type.
    pub fn type_path(&self, path: &TypePath) -> TokenStream {
        let mut out = path_text(&path.root);
        for segment in &path.module {
            let id = ident(segment);
            out.extend(quote!(::#id));
        }
        let name = ident(&path.name);
        if out.is_empty() {
            quote!(#name)
        } else {
            quote!(#out::#name)
        }
    }

    /// The Rust type of a value.
    fn rust_ty(&self, ty: &Ty) -> TokenStream {
        let rt = &self.rt;
        match ty {
            Ty::Bool => quote!(bool),
            Ty::Integer(_) => quote!(i64),
            Ty::String(_) => quote!(::std::string::String),
            Ty::Format(format, _) => {
                let name = format_type(*format);
                quote!(#rt::types::#name)
            }
            Ty::Bytes { .. } => quote!(#rt::types::Bytes),
            Ty::CidLink => quote!(#rt::types::CidLink),
            Ty::Blob { .. } => quote!(#rt::types::BlobRef),
            Ty::Unknown => quote!(#rt::types::Data),
            Ty::Array { item, .. } => {
                let item = self.rust_ty(item);
                quote!(::std::vec::Vec<#item>)
            }
            Ty::Named(path) | Ty::Enum(path, _) => self.type_path(path),
        }
    }

    /// The type a field holds when present (boxing and `Nullable` applied, not `Option`).
    fn present_ty(&self, field: &Field) -> TokenStream {
        let rt = &self.rt;
        let mut ty = self.rust_ty(&field.ty);
        if field.boxed {
            ty = quote!(::std::boxed::Box<#ty>);
        }
        if field.nullable {
            ty = quote!(#rt::types::Nullable<#ty>);
        }
        ty
    }

    /// The declared type of a field.
    fn field_ty(&self, field: &Field) -> TokenStream {
        let present = self.present_ty(field);
        if field.required {
            present
        } else {
            quote!(::std::option::Option<#present>)
        }
    }

    // ------------------------------------------------------------------ items

    /// Emits one item.
    pub fn item(&self, item: &Item) -> TokenStream {
        match item {
            Item::Struct(def) => self.structure(def),
            Item::Union(def) => self.union(def),
            Item::StringEnum(def) => self.string_enum(def),
            Item::Token(def) => {
                let name = ident(&def.name);
                let value = &def.value;
                let doc = doc_attrs(def.doc.as_deref());
                let value_doc = doc_line(&format!("Token `{value}`."));
                quote! {
                    #doc
                    #value_doc
                    pub const #name: &str = #value;
                }
            }
            Item::Alias(def) => {
                let name = ident(&def.name);
                let ty = self.rust_ty(&def.ty);
                let doc = doc_attrs(def.doc.as_deref());
                quote! {
                    #doc
                    pub type #name = #ty;
                }
            }
            Item::Endpoint(def) => self.endpoint(def),
            Item::Subscription(def) => self.subscription(def),
            Item::PermissionSet(def) => self.permission_set(def),
        }
    }

    fn structure(&self, def: &StructDef) -> TokenStream {
        let rt = &self.rt;
        let name = ident(&def.name);
        let doc = doc_attrs(def.doc.as_deref());
        let is_params = def.kind == StructKind::Params;
        let wire_doc = doc_line(&format!("Lexicon: `{}`.", def.wire));
        let fields = def.fields.iter().map(|field| {
            let fname = ident(&field.name);
            let ty = self.field_ty(field);
            let fdoc = doc_attrs(field.doc.as_deref());
            let mut notes = Vec::new();
            if field.wire != crate::naming::unraw(&field.name) {
                notes.push(format!("JSON key: `{}`.", field.wire));
            }
            if let Some(lit) = &field.default {
                notes.push(format!("Default: `{}`.", literal_text(lit)));
            }
            if let Some(lit) = &field.constant {
                notes.push(format!("Always `{}`.", literal_text(lit)));
            }
            let notes = if notes.is_empty() {
                TokenStream::new()
            } else {
                let mut out = if field.doc.is_some() {
                    quote!(#[doc = ""])
                } else {
                    TokenStream::new()
                };
                for note in notes {
                    out.extend(doc_line(&note));
                }
                out
            };
            quote! {
                #fdoc
                #notes
                pub #fname: #ty,
            }
        });
        let extra = if is_params {
            TokenStream::new()
        } else {
            quote! {
                /// Fields the lexicon does not declare, kept so that re-encoding loses nothing.
                pub extra: #rt::types::Extra,
            }
        };
        let constructor = self.constructor(def);
        let serde_impls = if is_params {
            self.query_params(def)
        } else {
            self.object_serde(def)
        };
        let validate = self.validate_struct(def);
        let record = match &def.kind {
            StructKind::Record { nsid, key } => {
                let key = match key {
                    RecordKey::Tid => quote!(#rt::types::RecordKeyKind::Tid),
                    RecordKey::Nsid => quote!(#rt::types::RecordKeyKind::Nsid),
                    RecordKey::Any => quote!(#rt::types::RecordKeyKind::Any),
                    RecordKey::Literal(k) => quote!(#rt::types::RecordKeyKind::Literal(#k)),
                };
                quote! {
                    impl #rt::types::Record for #name {
                        const NSID: &'static str = #nsid;
                        const KEY: #rt::types::RecordKeyKind = #key;
                    }
                }
            }
            _ => TokenStream::new(),
        };
        let (derive, debug_impl) = if def.fields.iter().any(|f| f.secret) {
            (
                quote!(#[derive(Clone, PartialEq)]),
                self.redacted_debug(def),
            )
        } else {
            (
                quote!(#[derive(Debug, Clone, PartialEq)]),
                TokenStream::new(),
            )
        };
        quote! {
            #doc
            #wire_doc
            #derive
            pub struct #name {
                #(#fields)*
                #extra
            }
            #debug_impl
            #constructor
            #serde_impls
            #validate
            #record
        }
    }

    /// `Debug` that prints `<redacted>` for credential fields (passwords, tokens, JWTs, codes)
    /// and for the unknown fields kept in `extra`.
    fn redacted_debug(&self, def: &StructDef) -> TokenStream {
        let name = ident(&def.name);
        let name_text = &def.name;
        let fields = def.fields.iter().map(|f| {
            let fname = ident(&f.name);
            let label = crate::naming::unraw(&f.name);
            match (f.secret, f.required) {
                (false, _) => quote!(.field(#label, &self.#fname)),
                (true, true) => quote!(.field(#label, &"<redacted>")),
                (true, false) => {
                    quote!(.field(#label, &self.#fname.as_ref().map(|_| "<redacted>")))
                }
            }
        });
        // Unknown fields of a type with credentials may be credentials too: count them only.
        let extra = if def.kind == StructKind::Params {
            TokenStream::new()
        } else {
            quote!(.field("extra", &::std::format_args!("<{} redacted>", self.extra.len())))
        };
        quote! {
            impl ::std::fmt::Debug for #name {
                fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                    f.debug_struct(#name_text)
                        #(#fields)*
                        #extra
                        .finish()
                }
            }
        }
    }

    /// A `T`-typed expression for a `const` value, when one can be built infallibly.
    fn const_expr(&self, lit: &Literal, ty: &Ty) -> Option<TokenStream> {
        match (lit, ty) {
            (Literal::Bool(b), Ty::Bool) => Some(quote!(#b)),
            (Literal::Integer(i), Ty::Integer(_)) => Some(quote!(#i)),
            (Literal::String(s), Ty::String(_)) => Some(quote!(::std::string::String::from(#s))),
            _ => None,
        }
    }

    /// An `Option<T>`-typed expression for a `default` value.
    fn default_expr(&self, lit: &Literal, ty: &Ty) -> Option<TokenStream> {
        match (lit, ty) {
            (Literal::String(s), Ty::Enum(path, _)) => {
                let path = self.type_path(path);
                Some(quote!(#path::known(#s)))
            }
            _ => self
                .const_expr(lit, ty)
                .map(|expr| quote!(::std::option::Option::Some(#expr))),
        }
    }

    fn constructor(&self, def: &StructDef) -> TokenStream {
        let rt = &self.rt;
        let name = ident(&def.name);
        let is_params = def.kind == StructKind::Params;
        let mut args = Vec::new();
        let mut inits = Vec::new();
        let mut setters = Vec::new();
        let mut arg_names = Vec::new();
        for field in &def.fields {
            let fname = ident(&field.name);
            let constant = field
                .constant
                .as_ref()
                .and_then(|lit| self.const_expr(lit, &field.ty));
            if field.required {
                if let (Some(expr), false) = (constant, field.nullable || field.boxed) {
                    inits.push(quote!(#fname: #expr));
                } else {
                    let ty = self.present_ty(field);
                    args.push(quote!(#fname: impl ::std::convert::Into<#ty>));
                    inits.push(quote!(#fname: #fname.into()));
                    arg_names.push(format!("`{}`", field.wire));
                }
            } else {
                let default = if is_params {
                    field
                        .default
                        .as_ref()
                        .and_then(|lit| self.default_expr(lit, &field.ty))
                } else {
                    None
                };
                match default {
                    Some(expr) => inits.push(quote!(#fname: #expr)),
                    None => inits.push(quote!(#fname: ::std::option::Option::None)),
                }
                let setter = ident(&field.setter);
                let ty = self.present_ty(field);
                let sdoc = doc_line(&format!("Sets `{}`.", field.wire));
                setters.push(quote! {
                    #sdoc
                    #[inline]
                    #[must_use]
                    pub fn #setter(mut self, value: impl ::std::convert::Into<#ty>) -> Self {
                        self.#fname = ::std::option::Option::Some(value.into());
                        self
                    }
                });
            }
        }
        if !is_params {
            inits.push(quote!(extra: #rt::types::Extra::new()));
        }
        let new_doc = if arg_names.is_empty() {
            doc_line(&format!(
                "Creates `{}` with every optional field unset{}.",
                def.name,
                if is_params {
                    " (or at its default)"
                } else {
                    ""
                }
            ))
        } else {
            doc_line(&format!(
                "Creates `{}` from its required fields ({}); optional fields start unset{}.",
                def.name,
                arg_names.join(", "),
                if is_params {
                    " or at their defaults"
                } else {
                    ""
                }
            ))
        };
        let allow = if args.len() > 7 {
            quote!(#[allow(clippy::too_many_arguments)])
        } else {
            TokenStream::new()
        };
        let default_impl = if args.is_empty() {
            quote! {
                impl ::std::default::Default for #name {
                    #[inline]
                    fn default() -> Self {
                        Self::new()
                    }
                }
            }
        } else {
            TokenStream::new()
        };
        quote! {
            impl #name {
                #new_doc
                #[inline]
                #allow
                pub fn new(#(#args),*) -> Self {
                    Self { #(#inits),* }
                }
                #(#setters)*
            }
            #default_impl
        }
    }

    fn query_params(&self, def: &StructDef) -> TokenStream {
        let rt = &self.rt;
        let name = ident(&def.name);
        let writes = def.fields.iter().map(|field| {
            let fname = ident(&field.name);
            let wire = &field.wire;
            let is_array = matches!(field.ty, Ty::Array { .. });
            match (is_array, field.required) {
                (false, true) => quote!(query.push(#wire, &self.#fname);),
                (false, false) => quote!(query.push_opt(#wire, &self.#fname);),
                (true, true) => quote!(query.push_all(#wire, &self.#fname);),
                (true, false) => quote!(query.push_all_opt(#wire, &self.#fname);),
            }
        });
        let query = if def.fields.is_empty() {
            quote!(_query)
        } else {
            quote!(query)
        };
        quote! {
            impl #rt::xrpc::QueryParams for #name {
                #[inline]
                fn write_query(&self, #query: &mut #rt::xrpc::QueryWriter) {
                    #(#writes)*
                }
            }
        }
    }

    fn object_serde(&self, def: &StructDef) -> TokenStream {
        let rt = &self.rt;
        let serde = &self.serde;
        let name = ident(&def.name);
        let record_nsid = match &def.kind {
            StructKind::Record { nsid, .. } => Some(nsid.clone()),
            _ => None,
        };
        let required_count = def.fields.iter().filter(|f| f.required).count();
        let required_term = if required_count > 0 {
            quote!(+ #required_count)
        } else {
            TokenStream::new()
        };
        let optional_counts = def.fields.iter().filter(|f| !f.required).map(|f| {
            let fname = ident(&f.name);
            quote!(+ ::std::primitive::usize::from(self.#fname.is_some()))
        });
        let writes = def.fields.iter().map(|f| {
            let fname = ident(&f.name);
            let wire = &f.wire;
            if f.required {
                quote!(map.serialize_entry(#wire, &self.#fname)?;)
            } else {
                quote!(#rt::types::object::serialize_optional(map, #wire, &self.#fname)?;)
            }
        });
        let tag = match &record_nsid {
            Some(nsid) => quote!(::std::option::Option::Some(#nsid)),
            None => quote!(::std::option::Option::None),
        };

        // Decoding (see `LexObjectDe` in the runtime): one slot per field in a hidden struct,
        // a `match` from key to slot without `?` in its arms, and `finish`; the loop over the
        // map's entries is the runtime's.
        let fields_ty = ident(&format!("__{}Fields", def.name.trim_start_matches("r#")));
        let slots: Vec<Ident> = (0..def.fields.len())
            .map(|i| Ident::new(&format!("field{i}"), Span::call_site()))
            .collect();
        let slot_decls = def.fields.iter().zip(&slots).map(|(f, slot)| {
            let ty = self.present_ty(f);
            quote!(#slot: ::std::option::Option<#ty>,)
        });
        let slot_empty = slots
            .iter()
            .map(|slot| quote!(#slot: ::std::option::Option::None,));
        let arms: Vec<TokenStream> = def
            .fields
            .iter()
            .zip(&slots)
            .map(|(f, slot)| {
                let wire = &f.wire;
                quote!(#wire => #rt::types::object::read_field(&mut fields.#slot, map, #wire),)
            })
            .collect();
        let type_arm = match &record_nsid {
            Some(nsid) => quote!("$type" => #rt::types::object::read_record_type(map, #nsid),),
            None => TokenStream::new(),
        };
        let dispatch = if arms.is_empty() && type_arm.is_empty() {
            quote!(fields.extra.read_entry(key, map))
        } else {
            quote! {
                match key.as_str() {
                    #(#arms)*
                    #type_arm
                    _ => fields.extra.read_entry(key, map),
                }
            }
        };
        let field_patterns = def.fields.iter().zip(&slots).map(|(f, slot)| {
            if f.required {
                quote!(#slot: ::std::option::Option::Some(#slot),)
            } else {
                quote!(#slot,)
            }
        });
        let builds = def.fields.iter().zip(&slots).map(|(f, slot)| {
            let fname = ident(&f.name);
            quote!(#fname: #slot,)
        });
        let required: Vec<(&Ident, &str)> = def
            .fields
            .iter()
            .zip(&slots)
            .filter(|(f, _)| f.required)
            .map(|(f, slot)| (slot, f.wire.as_str()))
            .collect();
        let finish = match required.split_last() {
            None => quote! {
                let #fields_ty { #(#field_patterns)* extra } = fields;
                ::std::result::Result::Ok(#name { #(#builds)* extra })
            },
            Some(((_, last), rest)) => {
                let tests = rest
                    .iter()
                    .map(|(slot, wire)| quote!(if fields.#slot.is_none() { #wire } else));
                let (binding, name_missing) = if rest.is_empty() {
                    (quote!(_), quote!(#last))
                } else {
                    (quote!(fields), quote!(#(#tests)* { #last }))
                };
                quote! {
                    match fields {
                        #fields_ty { #(#field_patterns)* extra } => {
                            ::std::result::Result::Ok(#name { #(#builds)* extra })
                        }
                        #binding => ::std::result::Result::Err(#rt::types::object::missing(
                            #name_missing
                        )),
                    }
                }
            }
        };
        let expecting = format!("a {} object", def.wire);
        quote! {
            impl #rt::types::object::LexObject for #name {
                #[inline]
                fn extra(&self) -> &#rt::types::Extra {
                    &self.extra
                }
                #[inline]
                fn body_len(&self) -> usize {
                    self.extra.body_len() #required_term #(#optional_counts)*
                }
                fn serialize_body<__M: #serde::ser::SerializeMap>(
                    &self,
                    map: &mut __M,
                ) -> ::std::result::Result<(), __M::Error> {
                    #(#writes)*
                    self.extra.serialize_entries(map)
                }
            }
            impl #serde::Serialize for #name {
                fn serialize<__S: #serde::Serializer>(
                    &self,
                    serializer: __S,
                ) -> ::std::result::Result<__S::Ok, __S::Error> {
                    #rt::types::object::serialize_object(self, serializer, #tag)
                }
            }
            impl<'de> #serde::Deserialize<'de> for #name {
                #[inline]
                fn deserialize<__D: #serde::Deserializer<'de>>(
                    deserializer: __D,
                ) -> ::std::result::Result<Self, __D::Error> {
                    #rt::types::object::deserialize_object(deserializer)
                }
            }
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            pub struct #fields_ty {
                #(#slot_decls)*
                extra: #rt::types::Extra,
            }
            impl<'de> #rt::types::object::LexObjectDe<'de> for #name {
                const EXPECTING: &'static str = #expecting;
                type Fields = #fields_ty;
                const EMPTY: #fields_ty = #fields_ty {
                    #(#slot_empty)*
                    extra: #rt::types::Extra::new(),
                };
                fn read_entry<__A: #serde::de::MapAccess<'de>>(
                    fields: &mut #fields_ty,
                    key: #rt::types::object::Key<'de>,
                    map: &mut __A,
                ) -> ::std::result::Result<(), __A::Error> {
                    #dispatch
                }
                fn finish<__E: #serde::de::Error>(
                    fields: #fields_ty,
                ) -> ::std::result::Result<Self, __E> {
                    #finish
                }
            }
            impl #rt::xrpc::JsonBody for #name {}
        }
    }

    /// Checks for one value of type `ty`, bound to the local `value` (a reference).
    fn checks(&self, ty: &Ty, value: &TokenStream, depth: usize) -> Option<TokenStream> {
        let rt = &self.rt;
        let string_rules = |rules: &StrRules| {
            let min_length = opt_u64(rules.min_length);
            let max_length = opt_u64(rules.max_length);
            let min_graphemes = opt_u64(rules.min_graphemes);
            let max_graphemes = opt_u64(rules.max_graphemes);
            quote! {
                &#rt::types::validate::StringRules {
                    min_length: #min_length,
                    max_length: #max_length,
                    min_graphemes: #min_graphemes,
                    max_graphemes: #max_graphemes,
                }
            }
        };
        match ty {
            Ty::Bool | Ty::CidLink => None,
            Ty::Integer(rules) => {
                if rules.is_empty() {
                    return None;
                }
                let minimum = opt_i64(rules.minimum);
                let maximum = opt_i64(rules.maximum);
                let allowed = match &rules.allowed {
                    Some(values) => quote!(::std::option::Option::Some(&[#(#values),*])),
                    None => quote!(::std::option::Option::None),
                };
                Some(quote! {
                    validator.integer(*#value, &#rt::types::validate::IntegerRules {
                        minimum: #minimum,
                        maximum: #maximum,
                        allowed: #allowed,
                        constant: ::std::option::Option::None,
                    });
                })
            }
            Ty::String(rules) => {
                if rules.is_empty() {
                    return None;
                }
                let rules = string_rules(rules);
                Some(quote!(validator.string(#value, #rules);))
            }
            Ty::Format(_, rules) | Ty::Enum(_, rules) => {
                if rules.is_empty() {
                    return None;
                }
                let rules = string_rules(rules);
                Some(quote!(validator.string(#value.as_str(), #rules);))
            }
            Ty::Bytes { min, max } => {
                if min.is_none() && max.is_none() {
                    return None;
                }
                let (min, max) = (opt_u64(*min), opt_u64(*max));
                Some(quote!(validator.bytes_len(#value.len(), #min, #max);))
            }
            Ty::Blob { accept, max_size } => {
                if accept.is_none() && max_size.is_none() {
                    return None;
                }
                let accept = match accept {
                    Some(values) => quote!(::std::option::Option::Some(&[#(#values),*])),
                    None => quote!(::std::option::Option::None),
                };
                let max_size = opt_u64(*max_size);
                Some(quote! {
                    validator.blob(#value.mime_type(), #value.size(), &#rt::types::validate::BlobRules {
                        accept: #accept,
                        max_size: #max_size,
                    });
                })
            }
            Ty::Unknown => Some(quote!(validator.unknown_object(#value);)),
            Ty::Array { item, min, max } => {
                let item_var = Ident::new(&format!("item{depth}"), Span::call_site());
                let index_var = Ident::new(&format!("index{depth}"), Span::call_site());
                let item_value = quote!(#item_var);
                let item_checks = self.checks(item, &item_value, depth + 1);
                let len_check = if min.is_some() || max.is_some() {
                    let (min, max) = (opt_u64(*min), opt_u64(*max));
                    quote!(validator.array_len(#value.len(), #min, #max);)
                } else {
                    TokenStream::new()
                };
                if item_checks.is_none() && len_check.is_empty() {
                    return None;
                }
                let loop_tokens = match item_checks {
                    Some(checks) => quote! {
                        for (#index_var, #item_var) in #value.iter().enumerate() {
                            validator.push_index(#index_var);
                            #checks
                            validator.pop();
                        }
                    },
                    None => TokenStream::new(),
                };
                Some(quote! {
                    #len_check
                    #loop_tokens
                })
            }
            Ty::Named(path) => {
                if !self.validating.contains(path) {
                    return None;
                }
                Some(quote!(#rt::types::Validate::validate_into(#value, validator);))
            }
        }
    }

    fn validate_struct(&self, def: &StructDef) -> TokenStream {
        let rt = &self.rt;
        let name = ident(&def.name);
        let mut body = Vec::new();
        for field in &def.fields {
            let fname = ident(&field.name);
            let wire = &field.wire;
            let value = quote!(value);
            let mut checks = self.checks(&field.ty, &value, 0).unwrap_or_default();
            if let Some(constant) = &field.constant {
                let expected = match constant {
                    Literal::Bool(b) => quote!(&#b),
                    Literal::Integer(i) => quote!(&#i),
                    Literal::String(s) => quote!(#s),
                };
                let actual = match (&field.ty, constant) {
                    (Ty::String(_), _) => quote!(value.as_str()),
                    (Ty::Format(..) | Ty::Enum(..), _) => quote!(value.as_str()),
                    _ => quote!(value),
                };
                checks.extend(quote!(validator.constant(#actual, #expected);));
            }
            if checks.is_empty() {
                continue;
            }
            let binding = match (field.required, field.nullable) {
                (true, false) => quote!(let value = &self.#fname; #checks),
                (false, false) => quote! {
                    if let ::std::option::Option::Some(value) = &self.#fname { #checks }
                },
                (true, true) => quote! {
                    if let #rt::types::Nullable::Value(value) = &self.#fname { #checks }
                },
                (false, true) => quote! {
                    if let ::std::option::Option::Some(#rt::types::Nullable::Value(value)) = &self.#fname {
                        #checks
                    }
                },
            };
            body.push(quote! {
                validator.push_field(#wire);
                #binding
                validator.pop();
            });
        }
        if body.is_empty() {
            quote! {
                impl #rt::types::Validate for #name {
                    #[inline]
                    fn validate_into(&self, _validator: &mut #rt::types::Validator) {}
                }
            }
        } else {
            quote! {
                impl #rt::types::Validate for #name {
                    #[inline]
                    fn validate_into(&self, validator: &mut #rt::types::Validator) {
                        #(#body)*
                    }
                }
            }
        }
    }

    fn union(&self, def: &UnionDef) -> TokenStream {
        let rt = &self.rt;
        let serde = &self.serde;
        let name = ident(&def.name);
        let doc = doc_attrs(def.doc.as_deref());
        let wire = &def.wire;
        let kind_doc = doc_line(&format!(
            "{} union at `{wire}`, tagged by `$type`.",
            if def.closed { "Closed" } else { "Open" }
        ));
        let variants = def.variants.iter().map(|v| {
            let vname = ident(&v.name);
            let path = self.type_path(&v.path);
            let vdoc = doc_line(&format!("`{}`", v.tag));
            quote! {
                #vdoc
                #vname(::std::boxed::Box<#path>),
            }
        });
        let unknown_variant = if def.closed {
            TokenStream::new()
        } else {
            quote! {
                /// A member this version does not know, kept as it was read.
                Unknown(#rt::types::UnknownMember),
            }
        };
        let tags = def.variants.iter().map(|v| &v.tag);
        let deserializer_param = if def.variants.is_empty() {
            quote!(_deserializer)
        } else {
            quote!(deserializer)
        };
        let member_arms: Vec<TokenStream> = def
            .variants
            .iter()
            .map(|v| {
                let vname = ident(&v.name);
                let tag = &v.tag;
                quote!(#tag => #serde::Deserialize::deserialize(deserializer).map(Self::#vname),)
            })
            .collect();
        let member_body = if member_arms.is_empty() {
            quote! {
                ::std::result::Result::Err(<__D::Error as #serde::de::Error>::custom(
                    ::std::format_args!("{type_tag:?} is not a member of {}", #wire),
                ))
            }
        } else {
            quote! {
                match type_tag {
                    #(#member_arms)*
                    other => ::std::result::Result::Err(<__D::Error as #serde::de::Error>::custom(
                        ::std::format_args!("{other:?} is not a member of {}", #wire),
                    )),
                }
            }
        };
        let unknown_fn = if def.closed {
            quote!(::std::option::Option::None)
        } else {
            quote!(::std::option::Option::Some(Self::Unknown(member)))
        };
        let unknown_param = if def.closed {
            quote!(_member)
        } else {
            quote!(member)
        };
        let ser_arms = def.variants.iter().map(|v| {
            let vname = ident(&v.name);
            let tag = &v.tag;
            quote! {
                Self::#vname(value) => #rt::types::object::serialize_object(
                    &**value,
                    serializer,
                    ::std::option::Option::Some(#tag),
                ),
            }
        });
        let ser_unknown = if def.closed {
            TokenStream::new()
        } else {
            quote!(Self::Unknown(value) => #serde::Serialize::serialize(value, serializer),)
        };
        let validate_body = if def.validates {
            let arms = def.variants.iter().map(|v| {
                let vname = ident(&v.name);
                if self.validating.contains(&v.path) {
                    quote!(Self::#vname(value) => #rt::types::Validate::validate_into(&**value, validator),)
                } else {
                    quote!(Self::#vname(_) => {})
                }
            });
            let unknown_arm = if def.closed {
                TokenStream::new()
            } else {
                quote!(Self::Unknown(_) => {})
            };
            quote! {
                fn validate_into(&self, validator: &mut #rt::types::Validator) {
                    match self {
                        #(#arms)*
                        #unknown_arm
                    }
                }
            }
        } else {
            quote! {
                #[inline]
                fn validate_into(&self, _validator: &mut #rt::types::Validator) {}
            }
        };
        let from_impls = def.variants.iter().map(|v| {
            let vname = ident(&v.name);
            let path = self.type_path(&v.path);
            quote! {
                impl ::std::convert::From<#path> for #name {
                    #[inline]
                    fn from(value: #path) -> Self {
                        Self::#vname(::std::boxed::Box::new(value))
                    }
                }
            }
        });
        // Two members of the same type would make `From` ambiguous; only emit it when unique.
        let mut seen = BTreeSet::new();
        let unique = def.variants.iter().all(|v| seen.insert(v.path.clone()));
        let from_impls: Vec<TokenStream> = if unique {
            from_impls.collect()
        } else {
            Vec::new()
        };
        let non_exhaustive = if def.closed {
            TokenStream::new()
        } else {
            quote!(#[non_exhaustive])
        };
        quote! {
            #doc
            #kind_doc
            #[derive(Debug, Clone, PartialEq)]
            #non_exhaustive
            pub enum #name {
                #(#variants)*
                #unknown_variant
            }
            impl #rt::types::union::LexUnion for #name {
                const NAME: &'static str = #wire;
                const REFS: &'static [&'static str] = &[#(#tags),*];
                fn deserialize_member<'de, __D: #serde::Deserializer<'de>>(
                    type_tag: &str,
                    #deserializer_param: __D,
                ) -> ::std::result::Result<Self, __D::Error> {
                    #member_body
                }
                #[inline]
                fn unknown(#unknown_param: #rt::types::UnknownMember) -> ::std::option::Option<Self> {
                    #unknown_fn
                }
            }
            impl #serde::Serialize for #name {
                fn serialize<__S: #serde::Serializer>(
                    &self,
                    serializer: __S,
                ) -> ::std::result::Result<__S::Ok, __S::Error> {
                    match self {
                        #(#ser_arms)*
                        #ser_unknown
                    }
                }
            }
            impl<'de> #serde::Deserialize<'de> for #name {
                #[inline]
                fn deserialize<__D: #serde::Deserializer<'de>>(
                    deserializer: __D,
                ) -> ::std::result::Result<Self, __D::Error> {
                    #rt::types::union::deserialize_union(deserializer)
                }
            }
            impl #rt::types::Validate for #name {
                #validate_body
            }
            impl #rt::xrpc::JsonBody for #name {}
            #(#from_impls)*
        }
    }

    fn string_enum(&self, def: &StringEnumDef) -> TokenStream {
        let rt = &self.rt;
        let serde = &self.serde;
        let name = ident(&def.name);
        let wire = &def.wire;
        let doc = doc_attrs(def.doc.as_deref());
        let kind_doc = if def.open {
            doc_line(&format!(
                "Known values of `{}`; other strings are kept in `Other`.",
                def.wire
            ))
        } else {
            doc_line(&format!("The allowed values of `{}`.", def.wire))
        };
        let variants = def.values.iter().map(|(variant, value)| {
            let vname = ident(variant);
            let vdoc = doc_line(&format!("`{value}`"));
            quote!(#vdoc #vname,)
        });
        let other_variant = if def.open {
            quote! {
                /// A value this version does not know.
                Other(::std::string::String),
            }
        } else {
            TokenStream::new()
        };
        let as_str_arms = def.values.iter().map(|(variant, value)| {
            let vname = ident(variant);
            quote!(Self::#vname => #value,)
        });
        let other_as_str = if def.open {
            quote!(Self::Other(value) => value.as_str(),)
        } else {
            TokenStream::new()
        };
        let from_arms: Vec<TokenStream> = def
            .values
            .iter()
            .map(|(variant, value)| {
                let vname = ident(variant);
                quote!(#value => ::std::option::Option::Some(Self::#vname),)
            })
            .collect();
        let values = def.values.iter().map(|(_, value)| value);
        let conversions = if def.open {
            quote! {
                impl ::std::convert::From<&str> for #name {
                    fn from(value: &str) -> Self {
                        Self::known(value).unwrap_or_else(|| Self::Other(value.to_owned()))
                    }
                }
                impl ::std::convert::From<::std::string::String> for #name {
                    fn from(value: ::std::string::String) -> Self {
                        Self::known(&value).unwrap_or(Self::Other(value))
                    }
                }
                impl ::std::str::FromStr for #name {
                    type Err = ::std::convert::Infallible;
                    #[inline]
                    fn from_str(value: &str) -> ::std::result::Result<Self, ::std::convert::Infallible> {
                        ::std::result::Result::Ok(Self::from(value))
                    }
                }
                impl<'de> #serde::Deserialize<'de> for #name {
                    fn deserialize<__D: #serde::Deserializer<'de>>(
                        deserializer: __D,
                    ) -> ::std::result::Result<Self, __D::Error> {
                        let value = #rt::types::object::Key::deserialize(deserializer)?;
                        ::std::result::Result::Ok(
                            Self::known(value.as_str())
                                .unwrap_or_else(|| Self::Other(value.into_string())),
                        )
                    }
                }
            }
        } else {
            quote! {
                impl ::std::convert::TryFrom<&str> for #name {
                    type Error = #rt::types::validate::InvalidEnumValue;
                    fn try_from(
                        value: &str,
                    ) -> ::std::result::Result<Self, #rt::types::validate::InvalidEnumValue> {
                        Self::known(value).ok_or_else(|| {
                            #rt::types::validate::InvalidEnumValue::new(#wire, Self::VALUES, value)
                        })
                    }
                }
                impl ::std::str::FromStr for #name {
                    type Err = #rt::types::validate::InvalidEnumValue;
                    #[inline]
                    fn from_str(
                        value: &str,
                    ) -> ::std::result::Result<Self, #rt::types::validate::InvalidEnumValue> {
                        <Self as ::std::convert::TryFrom<&str>>::try_from(value)
                    }
                }
                impl<'de> #serde::Deserialize<'de> for #name {
                    fn deserialize<__D: #serde::Deserializer<'de>>(
                        deserializer: __D,
                    ) -> ::std::result::Result<Self, __D::Error> {
                        let value = #rt::types::object::Key::deserialize(deserializer)?;
                        <Self as ::std::convert::TryFrom<&str>>::try_from(value.as_str())
                            .map_err(<__D::Error as #serde::de::Error>::custom)
                    }
                }
            }
        };
        quote! {
            #doc
            #kind_doc
            #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
            #[non_exhaustive]
            pub enum #name {
                #(#variants)*
                #other_variant
            }
            impl #name {
                /// Every known value, as written in the lexicon.
                pub const VALUES: &'static [&'static str] = &[#(#values),*];
                /// The string form.
                pub fn as_str(&self) -> &str {
                    match self {
                        #(#as_str_arms)*
                        #other_as_str
                    }
                }
                /// The variant of a known value.
                pub fn known(value: &str) -> ::std::option::Option<Self> {
                    match value {
                        #(#from_arms)*
                        _ => ::std::option::Option::None,
                    }
                }
            }
            impl ::std::convert::AsRef<str> for #name {
                #[inline]
                fn as_ref(&self) -> &str {
                    self.as_str()
                }
            }
            impl ::std::fmt::Display for #name {
                #[inline]
                fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                    f.write_str(self.as_str())
                }
            }
            impl #serde::Serialize for #name {
                #[inline]
                fn serialize<__S: #serde::Serializer>(
                    &self,
                    serializer: __S,
                ) -> ::std::result::Result<__S::Ok, __S::Error> {
                    serializer.serialize_str(self.as_str())
                }
            }
            #conversions
            impl #rt::xrpc::QueryValue for #name {
                #[inline]
                fn write_value(&self, out: &mut ::std::string::String) {
                    out.push_str(self.as_str());
                }
            }
            impl #rt::types::Validate for #name {
                #[inline]
                fn validate_into(&self, _validator: &mut #rt::types::Validator) {}
            }
        }
    }

    fn body_ty(&self, body: &BodyTy) -> TokenStream {
        let rt = &self.rt;
        match body {
            BodyTy::None => quote!(#rt::xrpc::NoBody),
            BodyTy::Json(path) => self.type_path(path),
            BodyTy::JsonAny => quote!(#rt::types::Data),
            BodyTy::Raw(_) => quote!(#rt::xrpc::RawBody),
        }
    }

    fn error_enum(&self, error: &ErrorEnum) -> TokenStream {
        let rt = &self.rt;
        let name = ident(&error.name);
        let variants = error.variants.iter().map(|(variant, wire, doc)| {
            let vname = ident(variant);
            let vdoc = doc_attrs(doc.as_deref());
            let wire_doc = doc_line(&format!("`{wire}`; holds the server's message."));
            quote! {
                #vdoc
                #wire_doc
                #vname(::std::option::Option<::std::string::String>),
            }
        });
        let from_arms = error.variants.iter().map(|(variant, wire, _)| {
            let vname = ident(variant);
            quote!(#wire => Self::#vname(body.message),)
        });
        let code_arms = error.variants.iter().map(|(variant, wire, _)| {
            let vname = ident(variant);
            quote!(Self::#vname(_) => #wire,)
        });
        let message_arms = error.variants.iter().map(|(variant, _, _)| {
            let vname = ident(variant);
            quote!(Self::#vname(message) => message.as_deref(),)
        });
        quote! {
            /// The errors this method declares; others are kept in `Other`.
            #[derive(Debug, Clone, PartialEq, Eq)]
            #[non_exhaustive]
            pub enum #name {
                #(#variants)*
                /// An error this version does not know.
                Other(#rt::xrpc::ErrorBody),
            }
            impl #rt::xrpc::XrpcErrorKind for #name {
                fn from_body(body: #rt::xrpc::ErrorBody) -> Self {
                    match body.error.as_str() {
                        #(#from_arms)*
                        _ => Self::Other(body),
                    }
                }
                fn code(&self) -> &str {
                    match self {
                        #(#code_arms)*
                        Self::Other(body) => body.error.as_str(),
                    }
                }
                fn message(&self) -> ::std::option::Option<&str> {
                    match self {
                        #(#message_arms)*
                        Self::Other(body) => body.message.as_deref(),
                    }
                }
            }
            impl ::std::fmt::Display for #name {
                fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                    let code = #rt::xrpc::XrpcErrorKind::code(self);
                    match #rt::xrpc::XrpcErrorKind::message(self) {
                        ::std::option::Option::Some(message) => ::std::write!(f, "{code}: {message}"),
                        ::std::option::Option::None => f.write_str(code),
                    }
                }
            }
            impl ::std::error::Error for #name {}
        }
    }

    fn endpoint(&self, def: &EndpointDef) -> TokenStream {
        let rt = &self.rt;
        let name = ident(&def.name);
        let nsid = &def.nsid;
        let doc = doc_attrs(def.doc.as_deref());
        let method = if def.procedure { "POST" } else { "GET" };
        let call_doc = doc_line(&format!("Calls `{method} /xrpc/{nsid}`."));
        let kind = if def.procedure {
            quote!(#rt::xrpc::EndpointKind::Procedure)
        } else {
            quote!(#rt::xrpc::EndpointKind::Query)
        };
        let params = match &def.params {
            Some(path) => self.type_path(path),
            None => quote!(#rt::xrpc::NoParams),
        };
        let input = self.body_ty(&def.input);
        let output = self.body_ty(&def.output);
        let (error_ty, error_enum) = match &def.error {
            Some(error) => {
                let ename = ident(&error.name);
                (quote!(#ename), self.error_enum(error))
            }
            None => (quote!(#rt::xrpc::GenericError), TokenStream::new()),
        };
        let pagination = match &def.pagination {
            Some(p) => {
                let item = self.rust_ty(&p.item);
                let cursor_param = ident(&p.cursor_param);
                let cursor_output = ident(&p.cursor_output);
                let items = ident(&p.items);
                quote! {
                    impl #rt::xrpc::Paginated for #name {
                        type Item = #item;
                        #[inline]
                        fn cursor(
                            output: &<Self as #rt::xrpc::Endpoint>::Output,
                        ) -> ::std::option::Option<&str> {
                            output.#cursor_output.as_deref()
                        }
                        #[inline]
                        fn set_cursor(
                            params: &mut <Self as #rt::xrpc::Endpoint>::Params,
                            cursor: ::std::option::Option<::std::string::String>,
                        ) {
                            params.#cursor_param = cursor;
                        }
                        #[inline]
                        fn into_items(
                            output: <Self as #rt::xrpc::Endpoint>::Output,
                        ) -> ::std::vec::Vec<#item> {
                            output.#items
                        }
                    }
                }
            }
            None => TokenStream::new(),
        };
        let secrets_const = if def.output_has_secrets {
            quote!(
                const OUTPUT_HAS_SECRETS: bool = true;
            )
        } else {
            TokenStream::new()
        };
        let encoding_doc = match (&def.input, &def.output) {
            (BodyTy::Raw(enc), _) => doc_line(&format!("Input encoding: `{enc}`.")),
            (_, BodyTy::Raw(enc)) => doc_line(&format!("Output encoding: `{enc}`.")),
            _ => TokenStream::new(),
        };
        quote! {
            #doc
            #call_doc
            #encoding_doc
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
            pub struct #name;
            impl #rt::xrpc::Endpoint for #name {
                const NSID: &'static str = #nsid;
                const KIND: #rt::xrpc::EndpointKind = #kind;
                type Params = #params;
                type Input = #input;
                type Output = #output;
                type Error = #error_ty;
                #secrets_const
            }
            #pagination
            #error_enum
        }
    }

    fn subscription(&self, def: &SubscriptionDef) -> TokenStream {
        let rt = &self.rt;
        let name = ident(&def.name);
        let nsid = &def.nsid;
        let doc = doc_attrs(def.doc.as_deref());
        let call_doc = doc_line(&format!("Subscribes to `/xrpc/{nsid}` (WebSocket)."));
        let params = match &def.params {
            Some(path) => self.type_path(path),
            None => quote!(#rt::xrpc::NoParams),
        };
        let message = self.type_path(&def.message);
        let (error_ty, error_enum) = match &def.error {
            Some(error) => {
                let ename = ident(&error.name);
                (quote!(#ename), self.error_enum(error))
            }
            None => (quote!(#rt::xrpc::GenericError), TokenStream::new()),
        };
        quote! {
            #doc
            #call_doc
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
            pub struct #name;
            impl #rt::xrpc::Subscription for #name {
                const NSID: &'static str = #nsid;
                type Params = #params;
                type Message = #message;
                type Error = #error_ty;
            }
            #error_enum
        }
    }

    fn permission_set(&self, def: &PermissionSetDef) -> TokenStream {
        let rt = &self.rt;
        let name = ident(&def.name);
        let nsid = &def.nsid;
        let doc = doc_attrs(def.doc.as_deref());
        let opt_str = |s: &Option<String>| match s {
            Some(s) => quote!(::std::option::Option::Some(#s)),
            None => quote!(::std::option::Option::None),
        };
        let title = opt_str(&def.title);
        let detail = opt_str(&def.detail);
        let pairs = |pairs: &[(String, String)]| {
            let items = pairs.iter().map(|(k, v)| quote!((#k, #v)));
            quote!(&[#(#items),*])
        };
        let title_lang = pairs(&def.title_lang);
        let detail_lang = pairs(&def.detail_lang);
        let permissions = def.permissions.iter().map(|p| match p {
            PermissionIr::Repo {
                collections,
                actions,
            } => {
                let actions = actions.iter().filter_map(|a| match a.as_str() {
                    "create" => Some(quote!(#rt::types::RepoAction::Create)),
                    "update" => Some(quote!(#rt::types::RepoAction::Update)),
                    "delete" => Some(quote!(#rt::types::RepoAction::Delete)),
                    _ => None,
                });
                quote! {
                    #rt::types::Permission::Repo {
                        collections: &[#(#collections),*],
                        actions: &[#(#actions),*],
                    }
                }
            }
            PermissionIr::Rpc {
                lxm,
                aud,
                inherit_aud,
            } => {
                let aud = opt_str(aud);
                quote! {
                    #rt::types::Permission::Rpc {
                        lxm: &[#(#lxm),*],
                        aud: #aud,
                        inherit_aud: #inherit_aud,
                    }
                }
            }
            PermissionIr::Other { resource } => {
                quote!(#rt::types::Permission::Other { resource: #resource })
            }
        });
        let set_doc = doc_line(&format!("Permission set `{nsid}`."));
        quote! {
            #doc
            #set_doc
            pub const #name: #rt::types::PermissionSet = #rt::types::PermissionSet {
                nsid: #nsid,
                title: #title,
                title_lang: #title_lang,
                detail: #detail,
                detail_lang: #detail_lang,
                permissions: &[#(#permissions),*],
            };
        }
    }
}

/// One method of a namespace accessor.
pub enum NamespaceEntry<'e> {
    /// A child namespace (`feed` under `app.bsky`), at this module path.
    Group {
        /// The child's module path below the root.
        module: Vec<String>,
        /// The child's NSID prefix (`app.bsky.feed`).
        prefix: String,
    },
    /// An endpoint of this namespace, in the module at this path.
    Endpoint {
        /// The endpoint's module path below the root.
        module: Vec<String>,
        /// The endpoint.
        def: &'e EndpointDef,
    },
    /// A subscription of this namespace, in the module at this path.
    Subscription {
        /// The subscription's module path below the root.
        module: Vec<String>,
        /// The subscription.
        def: &'e SubscriptionDef,
    },
}

impl Emitter<'_> {
    fn module_path(&self, module: &[String]) -> TokenStream {
        let mut out = self.root.clone();
        for segment in module {
            let id = ident(segment);
            out.extend(quote!(::#id));
        }
        out
    }

    /// The accessor for one namespace (`client.app_bsky().feed()`): a `NamespaceClient` with
    /// one method per endpoint (a thin, inlined call to `Client::call`) and one per child
    /// namespace. At the top of a namespace (`app.bsky`) the entry point on `Client` is added:
    /// an inherent method in the runtime crate, an extension trait in a user's crate. For
    /// `com.atproto`, whose groups are used the most, each group also gets a method on `Client`
    /// (`client.repo()`).
    pub fn namespace(
        &self,
        prefix: &str,
        module: &[String],
        entries: &[NamespaceEntry<'_>],
    ) -> TokenStream {
        let rt = &self.rt;
        let doc = doc_line(&format!("The `{prefix}.*` XRPC methods."));
        let mut scope = crate::naming::Scope::with_reserved(&["new", "client"]);
        let mut methods = Vec::new();
        for entry in entries {
            match entry {
                NamespaceEntry::Group {
                    module: child,
                    prefix: child_prefix,
                } => {
                    let last = child_prefix.rsplit('.').next().unwrap_or(child_prefix);
                    let name = ident(&scope.claim(&crate::naming::snake(last)));
                    let path = self.module_path(child);
                    let mdoc = doc_line(&format!("The `{child_prefix}.*` methods."));
                    methods.push(quote! {
                        #mdoc
                        #[inline]
                        pub fn #name(&self) -> #path::NamespaceClient<'a> {
                            #path::NamespaceClient::new(self.client)
                        }
                    });
                }
                NamespaceEntry::Endpoint { module: child, def } => {
                    let last = def.nsid.rsplit('.').next().unwrap_or(&def.nsid);
                    let name = ident(&scope.claim(&crate::naming::snake(last)));
                    let path = self.module_path(child);
                    let marker = ident(&def.name);
                    let endpoint = quote!(#path::#marker);
                    let method = if def.procedure { "POST" } else { "GET" };
                    let summary = def
                        .doc
                        .as_deref()
                        .and_then(|d| d.lines().next())
                        .map(|l| doc_attrs(Some(l)))
                        .unwrap_or_default();
                    // The endpoint's module is a child of this one: link relative to it.
                    let link = format!(
                        "{}::{}",
                        child.last().map_or("", |s| s.as_str()),
                        crate::naming::unraw(&def.name)
                    );
                    let call_doc = doc_line(&format!(
                        "Calls `{method} /xrpc/{}` ([`{}`]({link})).",
                        def.nsid, def.name
                    ));
                    let mut args = Vec::new();
                    let params = if def.params.is_some() {
                        args.push(quote!(params: <#endpoint as #rt::xrpc::Endpoint>::Params));
                        quote!(params)
                    } else {
                        quote!(#rt::xrpc::NoParams)
                    };
                    let input = if matches!(def.input, BodyTy::None) {
                        quote!(#rt::xrpc::NoBody)
                    } else {
                        args.push(quote!(input: <#endpoint as #rt::xrpc::Endpoint>::Input));
                        quote!(input)
                    };
                    // Bodies without a schema (CAR files, blobs, video) are handed back as a
                    // stream instead of being read into memory.
                    let (output, call) = if matches!(def.output, BodyTy::Raw(_)) {
                        (quote!(#rt::xrpc::StreamedResponse), quote!(call_streamed))
                    } else {
                        (
                            quote!(<#endpoint as #rt::xrpc::Endpoint>::Output),
                            quote!(call),
                        )
                    };
                    methods.push(quote! {
                        #summary
                        #call_doc
                        #[inline]
                        pub fn #name(
                            &self,
                            #(#args),*
                        ) -> impl ::std::future::Future<
                            Output = ::std::result::Result<
                                (#output, #rt::xrpc::Client),
                                #rt::xrpc::Error<<#endpoint as #rt::xrpc::Endpoint>::Error>,
                            >,
                        > + 'a {
                            self.client.#call::<#endpoint>(#params, #input)
                        }
                    });
                }
                NamespaceEntry::Subscription { module: child, def } => {
                    let last = def.nsid.rsplit('.').next().unwrap_or(&def.nsid);
                    let name = ident(&scope.claim(&crate::naming::snake(last)));
                    let path = self.module_path(child);
                    let marker = ident(&def.name);
                    let subscription = quote!(#path::#marker);
                    let summary = def
                        .doc
                        .as_deref()
                        .and_then(|d| d.lines().next())
                        .map(|l| doc_attrs(Some(l)))
                        .unwrap_or_default();
                    let link = format!(
                        "{}::{}",
                        child.last().map_or("", |s| s.as_str()),
                        crate::naming::unraw(&def.name)
                    );
                    let call_doc = doc_line(&format!(
                        "Subscribes to `wss://…/xrpc/{}` ([`{}`]({link})): a stream of its typed messages.",
                        def.nsid, def.name
                    ));
                    let (args, params) = if def.params.is_some() {
                        (
                            quote!(params: <#subscription as #rt::xrpc::Subscription>::Params),
                            quote!(params),
                        )
                    } else {
                        (TokenStream::new(), quote!(#rt::xrpc::NoParams))
                    };
                    methods.push(quote! {
                        #summary
                        #call_doc
                        #[inline]
                        pub fn #name(
                            &self,
                            #args
                        ) -> impl ::std::future::Future<
                            Output = ::std::result::Result<
                                #rt::xrpc::EventStream<#subscription>,
                                #rt::xrpc::SubscribeError<<#subscription as #rt::xrpc::Subscription>::Error>,
                            >,
                        > + 'a {
                            self.client.subscribe::<#subscription>(#params)
                        }
                    });
                }
            }
        }
        let entry_point = if module.len() == 2 || (self.in_runtime && prefix == "com.atproto") {
            self.entry_points(prefix, module, entries)
        } else {
            TokenStream::new()
        };
        quote! {
            #doc
            #[derive(Debug, Clone, Copy)]
            pub struct NamespaceClient<'a> {
                client: &'a #rt::xrpc::Client,
            }
            impl<'a> NamespaceClient<'a> {
                /// The methods of this namespace, called through `client`.
                #[inline]
                pub fn new(client: &'a #rt::xrpc::Client) -> Self {
                    NamespaceClient { client }
                }
                #(#methods)*
            }
            #entry_point
        }
    }

    fn entry_points(
        &self,
        prefix: &str,
        module: &[String],
        entries: &[NamespaceEntry<'_>],
    ) -> TokenStream {
        let rt = &self.rt;
        let path = self.module_path(module);
        let name = ident(&crate::naming::snake(&prefix.replace('.', "_")));
        let doc = doc_line(&format!("The `{prefix}.*` XRPC methods."));
        if !self.in_runtime {
            let trait_name = ident(&format!("{}Client", crate::naming::pascal(prefix)));
            let trait_doc = doc_line(&format!(
                "Adds `{name}()` to `atlex`'s `Client`: the `{prefix}.*` methods of these lexicons."
            ));
            return quote! {
                #trait_doc
                pub trait #trait_name {
                    #doc
                    fn #name(&self) -> #path::NamespaceClient<'_>;
                }
                impl #trait_name for #rt::xrpc::Client {
                    #[inline]
                    fn #name(&self) -> #path::NamespaceClient<'_> {
                        #path::NamespaceClient::new(self)
                    }
                }
            };
        }
        let mut shortcuts = Vec::new();
        if prefix == "com.atproto" {
            for entry in entries {
                if let NamespaceEntry::Group {
                    module: child,
                    prefix: child_prefix,
                } = entry
                {
                    let last = child_prefix.rsplit('.').next().unwrap_or(child_prefix);
                    let short = ident(&crate::naming::snake(last));
                    let child_path = self.module_path(child);
                    let sdoc = doc_line(&format!(
                        "The `{child_prefix}.*` methods (same as `com_atproto().{last}()`)."
                    ));
                    shortcuts.push(quote! {
                        #sdoc
                        #[inline]
                        pub fn #short(&self) -> #child_path::NamespaceClient<'_> {
                            #child_path::NamespaceClient::new(self)
                        }
                    });
                }
            }
        }
        quote! {
            impl #rt::xrpc::Client {
                #doc
                #[inline]
                pub fn #name(&self) -> #path::NamespaceClient<'_> {
                    #path::NamespaceClient::new(self)
                }
                #(#shortcuts)*
            }
        }
    }
}

fn literal_text(lit: &Literal) -> String {
    match lit {
        Literal::Bool(b) => b.to_string(),
        Literal::Integer(i) => i.to_string(),
        Literal::String(s) => format!("{s:?}"),
    }
}
