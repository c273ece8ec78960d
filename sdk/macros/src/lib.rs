//! Compile-time checked literals. Use them through `atlex` (`atlex::did!`, …).
//!
//! Each macro takes one string literal, validates it with the same rules as the matching
//! `atlex::types` newtype, and expands to an expression of that type. An invalid literal is a
//! compile error pointing at the literal, with the [`FormatError`] message:
//!
//! ```compile_fail
//! let did = atlex::did!("did:plc:");
//! // error: invalid did "did:plc:": empty method-specific identifier
//! ```
//!
//! The expansion uses absolute `::atlex::types::…` paths, so the calling crate needs the
//! `atlex` crate (under that name), and calls a hidden constructor that does not validate the
//! value again at run time.
#![deny(missing_docs)]

use atlex_types::format::{
    AtIdentifier, AtUri, Cid, Datetime, Did, FormatError, Handle, Language, Nsid, RecordKey, Tid,
    Uri,
};
use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::LitStr;

/// Parses the single string-literal argument, validates it with `check` and returns its
/// expansion, or a compile error at the literal.
fn expand(
    input: TokenStream,
    check: impl FnOnce(&LitStr, String) -> Result<TokenStream2, FormatError>,
) -> TokenStream {
    let lit = match syn::parse::<LitStr>(input) {
        Ok(lit) => lit,
        Err(err) => return err.to_compile_error().into(),
    };
    if !lit.suffix().is_empty() {
        return syn::Error::new(lit.span(), "unexpected suffix on the string literal")
            .to_compile_error()
            .into();
    }
    match check(&lit, lit.value()) {
        Ok(tokens) => tokens.into(),
        Err(err) => syn::Error::new(lit.span(), err).to_compile_error().into(),
    }
}

/// A [`Did`] checked at compile time.
///
/// ```
/// let did = atlex::did!("did:plc:7iza6de2dwap2sbkpav7c6c6");
/// assert_eq!(did.method(), "plc");
/// ```
#[proc_macro]
pub fn did(input: TokenStream) -> TokenStream {
    expand(input, |lit, value| {
        Did::new(value)?;
        Ok(quote!(::atlex::types::Did::__from_literal(#lit)))
    })
}

/// A [`Handle`] checked at compile time (and lower-cased).
///
/// ```
/// let handle = atlex::handle!("Alice.BSKY.social");
/// assert_eq!(handle.as_str(), "alice.bsky.social");
/// ```
#[proc_macro]
pub fn handle(input: TokenStream) -> TokenStream {
    expand(input, |lit, value| {
        let handle = LitStr::new(Handle::new(value)?.as_str(), lit.span());
        Ok(quote!(::atlex::types::Handle::__from_literal(#handle)))
    })
}

/// An [`AtIdentifier`] (a DID or a handle) checked at compile time.
///
/// ```
/// use atlex::types::AtIdentifier;
/// assert!(matches!(atlex::at_identifier!("did:plc:abc"), AtIdentifier::Did(_)));
/// assert!(matches!(atlex::at_identifier!("alice.test"), AtIdentifier::Handle(_)));
/// ```
#[proc_macro]
pub fn at_identifier(input: TokenStream) -> TokenStream {
    expand(input, |lit, value| {
        Ok(match AtIdentifier::new(value)? {
            AtIdentifier::Did(_) => {
                quote!(::atlex::types::AtIdentifier::Did(::atlex::types::Did::__from_literal(#lit)))
            }
            AtIdentifier::Handle(handle) => {
                let handle = LitStr::new(handle.as_str(), lit.span());
                quote!(::atlex::types::AtIdentifier::Handle(::atlex::types::Handle::__from_literal(#handle)))
            }
        })
    })
}

/// An [`Nsid`] checked at compile time.
///
/// ```
/// let nsid = atlex::nsid!("app.bsky.feed.post");
/// assert_eq!(nsid.name(), "post");
/// ```
#[proc_macro]
pub fn nsid(input: TokenStream) -> TokenStream {
    expand(input, |lit, value| {
        Nsid::new(value)?;
        Ok(quote!(::atlex::types::Nsid::__from_literal(#lit)))
    })
}

/// An [`AtUri`] checked at compile time.
///
/// ```
/// let uri = atlex::at_uri!("at://did:plc:abc/app.bsky.feed.post/3jzfcijpj2z2a");
/// assert_eq!(uri.rkey(), Some("3jzfcijpj2z2a"));
/// ```
#[proc_macro]
pub fn at_uri(input: TokenStream) -> TokenStream {
    expand(input, |lit, value| {
        AtUri::new(value)?;
        Ok(quote!(::atlex::types::AtUri::__from_literal(#lit)))
    })
}

/// A [`Cid`] (string form) checked at compile time.
///
/// ```
/// let cid = atlex::cid!("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi");
/// assert!(cid.as_str().starts_with("bafy"));
/// ```
#[proc_macro]
pub fn cid(input: TokenStream) -> TokenStream {
    expand(input, |lit, value| {
        Cid::new(value)?;
        Ok(quote!(::atlex::types::Cid::__from_literal(#lit)))
    })
}

/// A [`Datetime`] checked at compile time; the parsed time is computed at compile time too.
///
/// ```
/// let dt = atlex::datetime!("1985-04-12T23:20:50.123-10:00");
/// assert_eq!(dt.time().to_rfc3339(), "1985-04-12T23:20:50.123-10:00");
/// ```
#[proc_macro]
pub fn datetime(input: TokenStream) -> TokenStream {
    expand(input, |lit, value| {
        let time = Datetime::new(value)?.time();
        let (seconds, nanos) = (time.timestamp(), time.timestamp_subsec_nanos());
        let offset = time.offset().local_minus_utc();
        Ok(quote!(::atlex::types::Datetime::__from_literal(#lit, #seconds, #nanos, #offset)))
    })
}

/// A [`Tid`] checked at compile time.
///
/// ```
/// let tid = atlex::tid!("3jzfcijpj2z2a");
/// assert_eq!(tid.clock_id(), 6);
/// ```
#[proc_macro]
pub fn tid(input: TokenStream) -> TokenStream {
    expand(input, |lit, value| {
        Tid::new(value)?;
        Ok(quote!(::atlex::types::Tid::__from_literal(#lit)))
    })
}

/// A [`RecordKey`] checked at compile time.
///
/// ```
/// let rkey = atlex::record_key!("self");
/// assert_eq!(rkey.as_str(), "self");
/// ```
#[proc_macro]
pub fn record_key(input: TokenStream) -> TokenStream {
    expand(input, |lit, value| {
        RecordKey::new(value)?;
        Ok(quote!(::atlex::types::RecordKey::__from_literal(#lit)))
    })
}

/// A [`Language`] tag checked at compile time.
///
/// ```
/// let lang = atlex::language!("pt-BR");
/// assert_eq!(lang.primary(), "pt");
/// ```
#[proc_macro]
pub fn language(input: TokenStream) -> TokenStream {
    expand(input, |lit, value| {
        Language::new(value)?;
        Ok(quote!(::atlex::types::Language::__from_literal(#lit)))
    })
}

/// A [`Uri`] checked at compile time.
///
/// ```
/// let uri = atlex::uri!("https://bsky.app/profile/alice.test");
/// assert_eq!(uri.scheme(), "https");
/// ```
#[proc_macro]
pub fn uri(input: TokenStream) -> TokenStream {
    expand(input, |lit, value| {
        Uri::new(value)?;
        Ok(quote!(::atlex::types::Uri::__from_literal(#lit)))
    })
}
