//! Typed helpers for a repository's records and blobs, built on the generated
//! `com.atproto.repo.*` and `com.atproto.sync.getBlob` endpoints.
//!
//! They add methods to [`Client`](crate::xrpc::Client):
//!
//! * records: [`create_record`](crate::xrpc::Client::create_record),
//!   [`get_record`](crate::xrpc::Client::get_record),
//!   [`list_records`](crate::xrpc::Client::list_records) (options in [`ListRecordsOptions`]),
//!   [`list_all_records`](crate::xrpc::Client::list_all_records),
//!   [`put_record`](crate::xrpc::Client::put_record),
//!   [`delete_record`](crate::xrpc::Client::delete_record) and
//!   [`apply_writes`](crate::xrpc::Client::apply_writes) (members built with [`Write`]), each
//!   taking or returning a typed [`Record`](crate::types::Record);
//! * blobs: [`upload_blob`](crate::xrpc::Client::upload_blob) and
//!   [`get_blob`](crate::xrpc::Client::get_blob) (streamed).
//!
//! Repository data (the sync layer), with no network of its own:
//!
//! * [`car`]: CAR v1 files, bounded ([`CarLimits`]), every block's hash checked;
//! * [`mst`]: the Merkle Search Tree: [`Mst`] (partly loaded trees: get, insert, remove,
//!   root) and [`mst::walk`];
//! * [`commit`]: the signed commit object ([`SignedCommit`]);
//! * [`verify`]: `#commit` events proven against their MST ([`verify_commit`]: signature,
//!   ops, inversion to `prevData`), `#sync` events, records typed as [`AnyRecord`];
//! * [`Repo`]: a whole repository from `com.atproto.sync.getRepo`, walked with its records.
//!
//! This module sits above the generated layer: it uses the generated parameters, inputs,
//! outputs and errors, and calls them through [`Client::call`](crate::xrpc::Client::call) like
//! any other endpoint. The transport ([`crate::xrpc`]) knows nothing of it.

mod blobs;
pub mod car;
pub mod commit;
mod error;
pub mod mst;
mod records;
mod repository;
mod typed;
pub mod verify;

pub use car::{Blocks, Car, CarLimits};
pub use commit::{SignedCommit, UnsignedCommit};
pub use error::RepoError;
pub use mst::Mst;
pub use records::{GetRecordOf, ListRecordsOf, ListRecordsOptions, RecordEntry, RecordPage, Write};
pub use repository::{Repo, RepoRecord};
pub use typed::{AnyRecord, UnknownRecord};
pub use verify::{Action, RecordOp, VerifiedCommit, decode_commit, verify_commit, verify_sync};
