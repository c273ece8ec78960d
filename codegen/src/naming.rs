//! Every rule that turns a lexicon name into a Rust identifier lives here.
//!
//! * Fields and modules are `snake_case`, types and variants `PascalCase`, constants
//!   `SCREAMING_SNAKE_CASE`.
//! * Keywords (the full table for edition 2024, `gen` included) become raw identifiers
//!   (`r#type`), except `self`, `super`, `crate`, `Self` and `_`, which cannot be raw and get a
//!   `_` suffix.
//! * Characters that cannot appear in an identifier (`-`, `.`, `$`, …) separate words.
//! * A name that starts with a digit gets a prefix: `_` for snake case (`_2048`), `N` for
//!   Pascal case (`N9`).
//! * Collisions inside one scope are resolved by [`Scope`], which appends a suffix.
//!
//! The generated code always carries `#[serde(rename)]`-equivalent wire names, so the wire name
//! never depends on these rules.

use std::collections::BTreeSet;

/// Strict and reserved keywords of Rust 2024 that can be written as raw identifiers.
const RAW_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use",
    "virtual", "where", "while", "yield",
];

/// Keywords that cannot be raw identifiers; they get a `_` suffix.
const NON_RAW_KEYWORDS: &[&str] = &["self", "Self", "super", "crate", "_"];

/// Splits a lexicon name into lower-case words: at non-alphanumeric characters, at a
/// lower-to-upper case change (`createdAt`), and before the last capital of an acronym that is
/// followed by a lower-case letter (`getDIDDoc` → `get`, `did`, `doc`).
pub fn words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut words = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            continue;
        }
        if c.is_ascii_uppercase() && !current.is_empty() {
            let prev = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_is_lower)
            {
                words.push(std::mem::take(&mut current));
            }
        }
        current.push(c.to_ascii_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// `snake_case` identifier text for a field, module or function (keywords made raw).
pub fn snake(name: &str) -> String {
    let mut ident = words(name).join("_");
    if ident.is_empty() {
        ident.push('_');
        ident.push_str(&hex_name(name));
    }
    if ident.starts_with(|c: char| c.is_ascii_digit()) {
        ident.insert(0, '_');
    }
    escape_keyword(ident)
}

/// `PascalCase` identifier text for a type or variant.
pub fn pascal(name: &str) -> String {
    let mut ident: String = words(name)
        .iter()
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect();
    if ident.is_empty() {
        ident = format!("X{}", hex_name(name));
    }
    if ident.starts_with(|c: char| c.is_ascii_digit()) {
        ident.insert(0, 'N');
    }
    escape_keyword(ident)
}

/// `SCREAMING_SNAKE_CASE` identifier text for a constant.
pub fn screaming(name: &str) -> String {
    let mut ident = words(name).join("_").to_ascii_uppercase();
    if ident.is_empty() {
        ident = format!("X{}", hex_name(name));
    }
    if ident.starts_with(|c: char| c.is_ascii_digit()) {
        ident.insert(0, '_');
    }
    ident
}

/// A name made only of symbols (`$`, `-`) still needs a stable identifier: spell its bytes.
fn hex_name(name: &str) -> String {
    name.bytes().map(|b| format!("{b:02x}")).collect()
}

fn escape_keyword(ident: String) -> String {
    if NON_RAW_KEYWORDS.contains(&ident.as_str()) {
        format!("{ident}_")
    } else if RAW_KEYWORDS.contains(&ident.as_str()) {
        format!("r#{ident}")
    } else {
        ident
    }
}

/// The identifier text without a raw prefix (`r#type` → `type`), for building derived names.
pub fn unraw(ident: &str) -> &str {
    ident.strip_prefix("r#").unwrap_or(ident)
}

/// A set of names already taken in one Rust scope (a module's types, a struct's fields, an
/// enum's variants). [`Scope::claim`] returns the name itself when free, otherwise the first of
/// `name2`, `name3`, … that is.
#[derive(Debug, Default, Clone)]
pub struct Scope {
    taken: BTreeSet<String>,
}

impl Scope {
    /// An empty scope.
    pub fn new() -> Scope {
        Scope::default()
    }

    /// A scope where `reserved` names are already taken.
    pub fn with_reserved(reserved: &[&str]) -> Scope {
        Scope {
            taken: reserved.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// Whether `ident` is taken.
    pub fn is_taken(&self, ident: &str) -> bool {
        self.taken.contains(unraw(ident))
    }

    /// Takes `ident`, or the first free `ident` + number.
    pub fn claim(&mut self, ident: &str) -> String {
        let base = unraw(ident);
        if self.taken.insert(base.to_owned()) {
            return ident.to_owned();
        }
        // `Self_` (an escaped keyword) becomes `Self2`, not `Self_2` (not camel case).
        let stem = match base.trim_end_matches('_') {
            "" => base,
            stem => stem,
        };
        let separator = if stem.ends_with(|c: char| c.is_ascii_digit()) {
            "_"
        } else {
            ""
        };
        let mut n = 2;
        loop {
            let candidate = format!("{stem}{separator}{n}");
            if self.taken.insert(candidate.clone()) {
                return candidate;
            }
            n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case() {
        assert_eq!(snake("createdAt"), "created_at");
        assert_eq!(snake("getDIDDoc"), "get_did_doc");
        assert_eq!(snake("putPreferencesV2"), "put_preferences_v2");
        assert_eq!(snake("cid-link"), "cid_link");
        assert_eq!(snake("type"), "r#type");
        assert_eq!(snake("gen"), "r#gen");
        assert_eq!(snake("self"), "self_");
        assert_eq!(snake("super"), "super_");
        assert_eq!(snake("crate"), "crate_");
        assert_eq!(snake("_"), "_5f");
        assert_eq!(snake("$type"), "r#type");
        assert_eq!(snake("ob-je-c$t"), "ob_je_c_t");
        assert_eq!(snake("ff-ri-n.g"), "ff_ri_n_g");
        assert_eq!(snake("9"), "_9");
        assert_eq!(snake("2048"), "_2048");
        assert_eq!(snake("uri"), "uri");
        assert_eq!(snake("async"), "r#async");
        assert_eq!(snake("union"), "union");
    }

    #[test]
    fn pascal_case() {
        assert_eq!(pascal("replyRef"), "ReplyRef");
        assert_eq!(pascal("post"), "Post");
        assert_eq!(pascal("getTimeline"), "GetTimeline");
        assert_eq!(pascal("9"), "N9");
        assert_eq!(pascal("ob-je-c$t"), "ObJeCT");
        assert_eq!(pascal("!hide"), "Hide");
        assert_eq!(pascal("graphic-media"), "GraphicMedia");
        assert_eq!(pascal("self"), "Self_");
        assert_eq!(pascal("$"), "X24");
        assert_eq!(pascal("Option"), "Option");
        assert_eq!(pascal("DIDDoc"), "DidDoc");
    }

    #[test]
    fn screaming_case() {
        assert_eq!(screaming("modlist"), "MODLIST");
        assert_eq!(screaming("reasonSpam"), "REASON_SPAM");
        assert_eq!(screaming("9lives"), "_9LIVES");
    }

    #[test]
    fn scope_suffixes() {
        let mut scope = Scope::with_reserved(&["Params"]);
        assert_eq!(scope.claim("Post"), "Post");
        assert_eq!(scope.claim("Post"), "Post2");
        assert_eq!(scope.claim("Post"), "Post3");
        assert_eq!(scope.claim("Params"), "Params2");
        assert_eq!(scope.claim("V2"), "V2");
        assert_eq!(scope.claim("V2"), "V2_2");
        assert_eq!(scope.claim("r#type"), "r#type");
        assert_eq!(scope.claim("r#type"), "type2");
        assert!(scope.is_taken("r#type"));
        assert_eq!(scope.claim("Self_"), "Self_");
        assert_eq!(scope.claim("Self_"), "Self2");
        assert_eq!(scope.claim("self_"), "self_");
        assert_eq!(scope.claim("self_"), "self2");
    }
}
