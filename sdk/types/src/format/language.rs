//! `language`: BCP 47 (RFC 5646) language tags.

use language_tags::LanguageTag;

use super::{Format, FormatError, Reason, borrow_str, string_conversions};

/// A BCP 47 language tag such as `en`, `pt-BR` or `zh-Hant`.
///
/// The tag must be well-formed per the RFC 5646 grammar (checked with the `language_tags`
/// crate, which also knows the grandfathered tags such as `i-default`), its primary language
/// subtag must be 2–3 lower-case letters (except for grandfathered tags and private-use `x-…`
/// tags), and no variant subtag or extension singleton may appear twice (case-insensitive).
/// Subtags are not checked against the IANA registry. The original spelling is kept.
///
/// ```
/// use atlex_types::Language;
/// assert!(Language::new("pt-BR").is_ok());
/// assert!(Language::new("i-default").is_ok());
/// assert!(Language::new("JA").is_err());
/// assert!(Language::new("de-DE-1901-1901").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Language(String);

impl Language {
    /// Validates and wraps `value`.
    pub fn new(value: impl Into<String>) -> Result<Self, FormatError> {
        let value = value.into();
        match check(&value) {
            Ok(()) => Ok(Language(value)),
            Err(reason) => Err(FormatError::new(Format::Language, &value, reason)),
        }
    }

    /// For the `language!` macro only: wraps a literal that was validated at compile time.
    #[doc(hidden)]
    pub fn __from_literal(value: &'static str) -> Self {
        Language(value.to_owned())
    }

    /// The string form, as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The string form, by value.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The primary language subtag, as written (`"pt"` for `pt-BR`, `"x"` for `x-klingon`).
    pub fn primary(&self) -> &str {
        self.0.split('-').next().unwrap_or_default()
    }
}

string_conversions!(Language, "a BCP 47 language tag");
borrow_str!(Language);

pub(crate) fn check(value: &str) -> Result<(), Reason> {
    let primary = value.split('-').next().unwrap_or_default();
    if primary.is_empty() {
        return Err("empty primary language subtag".into());
    }
    let private_use = primary == "x" || primary == "X";
    if private_use {
        check_private_use(value)?;
    } else if !primary.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err("primary language subtag must be lower-case letters".into());
    } else if primary.len() > 3 || (primary.len() == 1 && primary != "i") {
        return Err("primary language subtag must be 2-3 letters".into());
    }
    // The crate checks the grammar, including that an `i-…` tag is a grandfathered one.
    let tag = LanguageTag::parse(value)
        .map_err(|e| Reason::from(format!("not a well-formed BCP 47 tag: {e}")))?;
    if private_use {
        return Ok(());
    }
    // The crate gives subtags in lower case, so these comparisons are case-insensitive.
    for (i, variant) in tag.variant_subtags().enumerate() {
        if tag
            .variant_subtags()
            .skip(i + 1)
            .any(|other| other == variant)
        {
            return Err(format!("duplicate variant subtag {variant:?}").into());
        }
    }
    let mut seen = [false; 36];
    for (singleton, _) in tag.extension_subtags() {
        let Some(slot) = singleton
            .to_digit(36)
            .and_then(|d| seen.get_mut(d as usize))
        else {
            continue;
        };
        if *slot {
            return Err(format!("duplicate extension singleton {singleton:?}").into());
        }
        *slot = true;
    }
    Ok(())
}

/// A private-use tag (`x-…`): every subtag after `x` is 1–8 letters or digits. (The crate
/// accepts longer subtags here.)
fn check_private_use(value: &str) -> Result<(), Reason> {
    let mut subtags = value.split('-').skip(1).peekable();
    if subtags.peek().is_none() {
        return Err("empty private-use tag".into());
    }
    for subtag in subtags {
        if subtag.is_empty()
            || subtag.len() > 8
            || !subtag.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err("private-use subtags must be 1-8 letters or digits".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(value: &str) -> String {
        Language::new(value).unwrap_err().reason().to_owned()
    }

    #[test]
    fn well_formed_tags() {
        for ok in [
            "ja",
            "ban",
            "pt-BR",
            "hy-Latn-IT-arevela",
            "es-419",
            "sgn-BE-NL",
            "en-GB-boont-r-extended-sequence-x-private",
            "zh-hakka",
            "i-default",
            "i-navajo",
            "qaa-Qaaa-QM-x-southern",
            "X-fr-CH",
            "x-a-b",
            "de-X-foo",
            "sl-rozaj-biske",
            "en-u-co-phonebk-t-en-US",
            "en-x-foo-foo",
        ] {
            Language::new(ok).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn primary_subtag_is_lower_case_two_or_three_letters() {
        assert_eq!(
            reason("JA"),
            "primary language subtag must be lower-case letters"
        );
        assert_eq!(
            reason("En-US"),
            "primary language subtag must be lower-case letters"
        );
        assert_eq!(
            reason("jaja"),
            "primary language subtag must be 2-3 letters"
        );
        assert_eq!(reason("j"), "primary language subtag must be 2-3 letters");
        assert_eq!(
            reason("a-DE"),
            "primary language subtag must be 2-3 letters"
        );
        assert_eq!(
            reason("123"),
            "primary language subtag must be lower-case letters"
        );
        assert_eq!(reason(""), "empty primary language subtag");
        assert_eq!(reason("-en"), "empty primary language subtag");
        assert!(reason("i-foo").starts_with("not a well-formed BCP 47 tag"));
    }

    #[test]
    fn grammar() {
        assert!(reason("ja-").starts_with("not a well-formed BCP 47 tag"));
        assert!(reason("en-a").starts_with("not a well-formed BCP 47 tag"));
        assert!(reason("en-toolongsubtag").starts_with("not a well-formed BCP 47 tag"));
        assert!(reason("en-ü").starts_with("not a well-formed BCP 47 tag"));
        assert_eq!(
            reason("x-"),
            "private-use subtags must be 1-8 letters or digits"
        );
        assert_eq!(reason("x"), "empty private-use tag");
        assert_eq!(
            reason("x-abcdefghi"),
            "private-use subtags must be 1-8 letters or digits"
        );
    }

    #[test]
    fn hidden_interop_case_region_after_region() {
        // `#de-419-DE` is commented out in language_syntax_invalid.txt ("technically not
        // valid"): a second region subtag is not allowed by the RFC 5646 grammar, and the TS
        // reference rejects it too.
        assert!(reason("de-419-DE").starts_with("not a well-formed BCP 47 tag"));
    }

    #[test]
    fn duplicates_case_insensitive() {
        assert_eq!(
            reason("de-DE-1901-1901"),
            "duplicate variant subtag \"1901\""
        );
        assert_eq!(
            reason("en-rozaj-ROZAJ"),
            "duplicate variant subtag \"rozaj\""
        );
        assert_eq!(
            reason("en-a-foo-a-bar"),
            "duplicate extension singleton 'a'"
        );
        assert_eq!(
            reason("en-u-co-phonebk-U-ca-buddhist"),
            "duplicate extension singleton 'u'"
        );
    }
}
