//! [`AnyRecord`]: a record read from a repository block, typed when its collection is one the
//! SDK knows (`app.bsky.feed.post` → [`Post`](crate::app::bsky::feed::post::Post), …), kept as
//! untyped [`Data`] otherwise.

use atlex_types::{CidLink, Data, Nsid};

use super::error::RepoError;

/// A record whose collection this version does not type, or that does not match its
/// collection's lexicon: its data, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownRecord {
    /// The collection it was stored under.
    pub collection: Nsid,
    /// The record.
    pub data: Data,
    /// Why it is not typed although its collection is known (the typed decoder's error);
    /// `None` for a collection this version does not know.
    pub error: Option<String>,
}

macro_rules! any_record {
    ($( $(#[$meta:meta])* $variant:ident => $ty:ty ),* $(,)?) => {
        /// A record from a repository, typed by its collection.
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum AnyRecord {
            $( $(#[$meta])* #[doc = concat!("`", stringify!($ty), "`")] $variant(Box<$ty>), )*
            /// A record of another collection (or one its lexicon rejects).
            Unknown(UnknownRecord),
        }

        impl AnyRecord {
            /// Decodes the DAG-CBOR record `bytes` (block `cid`) stored under `collection`. Bytes
            /// that are not a data-model object are an error; a known collection whose record
            /// does not match the typed form becomes [`AnyRecord::Unknown`] with the reason.
            pub fn decode(collection: &Nsid, cid: &CidLink, bytes: &[u8]) -> Result<AnyRecord, RepoError> {
                $(
                    $(#[$meta])*
                    if collection.as_str() == <$ty as atlex_types::Record>::NSID {
                        return match atlex_types::data::from_dag_cbor::<$ty>(bytes) {
                            Ok(record) => Ok(AnyRecord::$variant(Box::new(record))),
                            Err(error) => AnyRecord::untyped(collection, cid, bytes, Some(error.to_string())),
                        };
                    }
                )*
                AnyRecord::untyped(collection, cid, bytes, None)
            }

            /// The collection NSID of a typed record, or the one an unknown record was stored
            /// under.
            pub fn collection(&self) -> &str {
                match self {
                    $( $(#[$meta])* AnyRecord::$variant(_) => <$ty as atlex_types::Record>::NSID, )*
                    AnyRecord::Unknown(unknown) => unknown.collection.as_str(),
                }
            }
        }
    };
}

impl AnyRecord {
    fn untyped(
        collection: &Nsid,
        cid: &CidLink,
        bytes: &[u8],
        error: Option<String>,
    ) -> Result<AnyRecord, RepoError> {
        let data = Data::from_dag_cbor(bytes)
            .map_err(|e| RepoError::bad_block(cid, format!("not a record: {e}")))?;
        if !matches!(data, Data::Object(_)) {
            return Err(RepoError::bad_block(
                cid,
                format!("a record must be an object, not {}", data.kind_name()),
            ));
        }
        Ok(AnyRecord::Unknown(UnknownRecord {
            collection: collection.clone(),
            data,
            error,
        }))
    }
}

impl serde::Serialize for AnyRecord {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        any_record_serialize(self, serializer)
    }
}

macro_rules! any_record_serialize {
    ($( $(#[$meta:meta])* $variant:ident ),* $(,)?) => {
        fn any_record_serialize<S: serde::Serializer>(
            record: &AnyRecord,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match record {
                $( $(#[$meta])* AnyRecord::$variant(value) => serde::Serialize::serialize(&**value, serializer), )*
                AnyRecord::Unknown(unknown) => serde::Serialize::serialize(&unknown.data, serializer),
            }
        }
    };
}

any_record! {
    #[cfg(feature = "app-bsky")] Post => crate::app::bsky::feed::post::Post,
    #[cfg(feature = "app-bsky")] Like => crate::app::bsky::feed::like::Like,
    #[cfg(feature = "app-bsky")] Repost => crate::app::bsky::feed::repost::Repost,
    #[cfg(feature = "app-bsky")] Follow => crate::app::bsky::graph::follow::Follow,
    #[cfg(feature = "app-bsky")] Block => crate::app::bsky::graph::block::Block,
    #[cfg(feature = "app-bsky")] Profile => crate::app::bsky::actor::profile::Profile,
    #[cfg(feature = "app-bsky")] List => crate::app::bsky::graph::list::List,
    #[cfg(feature = "app-bsky")] Listitem => crate::app::bsky::graph::listitem::Listitem,
    #[cfg(feature = "app-bsky")] Listblock => crate::app::bsky::graph::listblock::Listblock,
    #[cfg(feature = "app-bsky")] Starterpack => crate::app::bsky::graph::starterpack::Starterpack,
    #[cfg(feature = "app-bsky")] Threadgate => crate::app::bsky::feed::threadgate::Threadgate,
    #[cfg(feature = "app-bsky")] Postgate => crate::app::bsky::feed::postgate::Postgate,
    #[cfg(feature = "app-bsky")] Generator => crate::app::bsky::feed::generator::Generator,
    #[cfg(feature = "app-bsky")] Verification => crate::app::bsky::graph::verification::Verification,
}

any_record_serialize! {
    #[cfg(feature = "app-bsky")] Post,
    #[cfg(feature = "app-bsky")] Like,
    #[cfg(feature = "app-bsky")] Repost,
    #[cfg(feature = "app-bsky")] Follow,
    #[cfg(feature = "app-bsky")] Block,
    #[cfg(feature = "app-bsky")] Profile,
    #[cfg(feature = "app-bsky")] List,
    #[cfg(feature = "app-bsky")] Listitem,
    #[cfg(feature = "app-bsky")] Listblock,
    #[cfg(feature = "app-bsky")] Starterpack,
    #[cfg(feature = "app-bsky")] Threadgate,
    #[cfg(feature = "app-bsky")] Postgate,
    #[cfg(feature = "app-bsky")] Generator,
    #[cfg(feature = "app-bsky")] Verification,
}
