//! An app's own lexicons, generated into their own crate.
//!
//! `lexicons/example/` holds four lexicons of a made-up bookmarking app
//! (`com.example.bookmarks.*`): a record, a query, a procedure, and unions that refer to
//! `com.atproto.repo.strongRef` and `app.bsky.richtext.facet`. This crate's `src/generated/`
//! is produced from them by
//!
//! ```text
//! cargo xtask codegen --lexicons lexicons/example --out codegen/example/src/generated --root crate::generated
//! ```
//!
//! (plain `cargo xtask codegen` regenerates it too, along with the SDK). Refs into the official
//! lexicons become paths into `atlex` (`::atlex::com::atproto::repo::strong_ref::StrongRef`), so
//! the types mix freely with the SDK's, and the endpoints work with `atlex::xrpc::Client`.
//!
//! ```
//! use atlex::types::{Datetime, Record, Validate};
//! use atlex_example_bookmarks::com::example::bookmarks::bookmark::{Bookmark, BookmarkSubject};
//! use atlex_example_bookmarks::com::example::bookmarks::defs::WebPage;
//!
//! let page = WebPage::new(atlex::uri!("https://atproto.com")).title("AT Protocol");
//! let bookmark = Bookmark::new(BookmarkSubject::from(page), Datetime::now())
//!     .tags(vec!["protocols".to_owned()]);
//! assert_eq!(Bookmark::NSID, "com.example.bookmarks.bookmark");
//! assert!(bookmark.validate().is_ok());
//! let json = serde_json::to_value(&bookmark).unwrap();
//! assert_eq!(json["$type"], "com.example.bookmarks.bookmark");
//! assert_eq!(json["subject"]["$type"], "com.example.bookmarks.defs#webPage");
//! ```
#![deny(missing_docs)]

#[rustfmt::skip]
#[allow(missing_docs)] // lexicon fields without descriptions
pub mod generated;

pub use generated::*;
