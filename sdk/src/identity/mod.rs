//! Identity: verified handle ↔ DID ↔ PDS resolution.
//!
//! ```no_run
//! # async fn example() -> Result<(), atlex::identity::IdentityError> {
//! use atlex::identity::IdentityResolver;
//!
//! // Build once, share everywhere (clones share the caches and connection pool).
//! let resolver = IdentityResolver::new()?;
//! let identity = resolver.resolve_str("alice.bsky.social").await?;
//! println!("{} is {} on {}", identity.handle, identity.did, identity.pds);
//! # Ok(()) }
//! ```
//!
//! * **Handle → DID** ([`HandleMethod`]): DNS TXT `_atproto.<handle>` (exactly one `did=`
//!   record), HTTPS `https://<handle>/.well-known/atproto-did`, and XRPC
//!   `com.atproto.identity.resolveHandle` at a service the app trusts. DNS and HTTPS run
//!   concurrently; two different DIDs, several `did=` records or an invalid DID are errors,
//!   not guesses. The methods and their order are configurable; the DNS server too (tests point
//!   it at their own).
//! * **DID → document**: did:plc from a PLC directory (default `https://plc.directory`),
//!   did:web from `https://<host>/.well-known/did.json` (host only: a path is an error, a port
//!   only for `localhost`, which is then fetched over http); other methods are errors. The
//!   document's `id` must be the DID asked for. [`DidDocument`] types the atproto fields and
//!   keeps the rest.
//! * **[`IdentityResolver::resolve`]** gives an [`Identity`]: DID, handle (verified both ways,
//!   or [`HandleStatus::Invalid`]), PDS (which must pass the transport policy: `https`, `http`
//!   only for loopback unless `allow_http`), signing key and document.
//! * **Cache**: positive and negative TTLs (5 min / 30 s by default), bounded size, and
//!   single-flight: concurrent lookups of one name share one set of network requests.
//!   Transient failures are shared by the callers already waiting, never cached.
//!   [`Lookup::Fresh`] bypasses the cache for security re-checks.
//! * HTTP goes through [`net::fetch::Fetcher`](crate::net::fetch::Fetcher): timeouts, size
//!   limits (64 KiB documents, 4 KiB handle answers), no redirects, optional private-address
//!   guard.
//! * **Lexicon authority**: [`IdentityResolver::resolve_lexicon_authority`] reads the DNS TXT
//!   `_lexicon.<reversed NSID authority>` record (`did=<did>`) with the same DNS resolver.

mod cache;
mod document;
mod error;
mod resolver;

pub use cache::CacheConfig;
pub use document::{
    DidDocument, DocumentError, PDS_SERVICE_ID, PDS_SERVICE_TYPE, SIGNING_KEY_ID, Service,
    VerificationMethod,
};
pub use error::{IdentityError, MethodKind};
pub use resolver::{
    Attempt, DEFAULT_DNS_TIMEOUT, DEFAULT_MAX_DOCUMENT, DEFAULT_PLC_URL, HandleMethod,
    HandleStatus, HandleTrace, Identity, IdentityResolver, IdentityResolverBuilder, Lookup,
};
