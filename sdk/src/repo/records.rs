//! Typed record helpers: `create_record(&post)`, `get_record::<Post>(…)`,
//! `list_records::<Post>(…)` and friends, on top of `com.atproto.repo.*`.
//!
//! Reading decodes each record's `value` straight into the record type (no intermediate
//! data-model value), through endpoint marker types ([`GetRecordOf`], [`ListRecordsOf`]) that
//! reuse the generated parameters and errors of `getRecord` and `listRecords` with a typed
//! output. Writing validates the record against its lexicon before anything is sent.

use std::marker::PhantomData;

use atlex_types::format::{AtIdentifier, AtUri, Cid, Nsid, RecordKey};
use atlex_types::{Data, Record};
use serde::{Deserialize, Serialize};

use crate::com::atproto::repo::{
    apply_writes, create_record, delete_record, get_record, list_records, put_record,
};
use crate::xrpc::{
    Client, Endpoint, EndpointKind, Error, ItemStream, JsonBody, NoBody, Paginated, RequestPart,
};

/// A record with where it lives: its AT URI and CID.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordEntry<R> {
    /// The record's AT URI.
    pub uri: AtUri,
    /// The record's CID (always present in listings; `getRecord` may omit it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<Cid>,
    /// The record.
    pub value: R,
}

/// One page of `com.atproto.repo.listRecords`, decoded into the record type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordPage<R> {
    /// The cursor of the next page, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// The records.
    pub records: Vec<RecordEntry<R>>,
}

impl<R: Serialize + for<'de> Deserialize<'de>> JsonBody for RecordEntry<R> {}
impl<R: Serialize + for<'de> Deserialize<'de>> JsonBody for RecordPage<R> {}

/// `com.atproto.repo.getRecord` with its output decoded into the record type `R`.
pub struct GetRecordOf<R>(PhantomData<fn() -> R>);

impl<R: Record> Endpoint for GetRecordOf<R> {
    const NSID: &'static str = <get_record::GetRecord as Endpoint>::NSID;
    const KIND: EndpointKind = EndpointKind::Query;
    type Params = get_record::Params;
    type Input = NoBody;
    type Output = RecordEntry<R>;
    type Error = get_record::Error;
}

/// `com.atproto.repo.listRecords` with its output decoded into the record type `R`.
pub struct ListRecordsOf<R>(PhantomData<fn() -> R>);

impl<R: Record> Endpoint for ListRecordsOf<R> {
    const NSID: &'static str = <list_records::ListRecords as Endpoint>::NSID;
    const KIND: EndpointKind = EndpointKind::Query;
    type Params = list_records::Params;
    type Input = NoBody;
    type Output = RecordPage<R>;
    type Error = <list_records::ListRecords as Endpoint>::Error;
}

impl<R: Record> Paginated for ListRecordsOf<R> {
    type Item = RecordEntry<R>;

    fn cursor(output: &RecordPage<R>) -> Option<&str> {
        output.cursor.as_deref()
    }

    fn set_cursor(params: &mut list_records::Params, cursor: Option<String>) {
        params.cursor = cursor;
    }

    fn into_items(output: RecordPage<R>) -> Vec<RecordEntry<R>> {
        output.records
    }
}

/// Options of [`Client::list_records`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListRecordsOptions {
    /// Page size (the server's default when `None`).
    pub limit: Option<i64>,
    /// Where to start (a cursor from a previous page).
    pub cursor: Option<String>,
    /// Oldest first instead of newest first.
    pub reverse: Option<bool>,
}

impl ListRecordsOptions {
    /// Default options.
    pub fn new() -> ListRecordsOptions {
        ListRecordsOptions::default()
    }

    /// Sets the page size.
    #[must_use]
    pub fn limit(mut self, limit: i64) -> ListRecordsOptions {
        self.limit = Some(limit);
        self
    }

    /// Starts at a cursor.
    #[must_use]
    pub fn cursor(mut self, cursor: impl Into<String>) -> ListRecordsOptions {
        self.cursor = Some(cursor.into());
        self
    }

    /// Lists oldest first.
    #[must_use]
    pub fn reverse(mut self, reverse: bool) -> ListRecordsOptions {
        self.reverse = Some(reverse);
        self
    }

    fn params<R: Record>(&self, repo: AtIdentifier) -> Result<list_records::Params, String> {
        let mut params = list_records::Params::new(repo, collection::<R>()?);
        params.limit = self.limit.or(params.limit);
        params.cursor = self.cursor.clone();
        params.reverse = self.reverse.or(params.reverse);
        Ok(params)
    }
}

/// The collection NSID of `R`.
fn collection<R: Record>() -> Result<Nsid, String> {
    Nsid::new(R::NSID).map_err(|e| format!("record type's NSID is invalid: {e}"))
}

/// A typed record as the data-model value the write endpoints take, after checking it.
fn record_data<R: Record, E>(record: &R) -> Result<Data, Error<E>> {
    record.validate().map_err(|errors| Error::Validation {
        part: RequestPart::Input,
        errors,
    })?;
    let json = serde_json::to_value(record)
        .map_err(|e| Error::InvalidRequest(format!("cannot encode {} record: {e}", R::NSID)))?;
    Data::from_json(&json)
        .map_err(|e| Error::InvalidRequest(format!("{} record is not valid data: {e}", R::NSID)))
}

impl Client {
    /// The repository this client writes to: the session's DID.
    fn own_repo<E>(&self, what: &str) -> Result<AtIdentifier, Error<E>> {
        self.did().map(AtIdentifier::Did).ok_or_else(|| {
            Error::InvalidRequest(format!("{what} needs a session: this client has no DID"))
        })
    }

    /// Creates a record in the session's repository; the server picks the key (for `tid`
    /// collections) unless the record kind has a fixed key.
    pub async fn create_record<R: Record>(
        &self,
        record: &R,
    ) -> Result<(create_record::Output, Client), Error<create_record::Error>> {
        self.create_record_with_key(record, None).await
    }

    /// [`Client::create_record`] with an explicit record key.
    pub async fn create_record_with_key<R: Record>(
        &self,
        record: &R,
        rkey: Option<RecordKey>,
    ) -> Result<(create_record::Output, Client), Error<create_record::Error>> {
        let repo = self.own_repo("create_record")?;
        let collection = collection::<R>().map_err(Error::InvalidRequest)?;
        let mut input = create_record::Input::new(repo, collection, record_data(record)?);
        input.rkey = rkey;
        self.call::<create_record::CreateRecord>(crate::xrpc::NoParams, input)
            .await
    }

    /// Reads one record of type `R` from `repo`, decoding it straight into `R`.
    pub async fn get_record<R: Record>(
        &self,
        repo: impl Into<AtIdentifier>,
        rkey: RecordKey,
    ) -> Result<(RecordEntry<R>, Client), Error<get_record::Error>> {
        let collection = collection::<R>().map_err(Error::InvalidRequest)?;
        let params = get_record::Params::new(repo.into(), collection, rkey);
        self.call::<GetRecordOf<R>>(params, NoBody).await
    }

    /// Lists one page of `R` records in `repo`, decoded straight into `R`.
    pub async fn list_records<R: Record>(
        &self,
        repo: impl Into<AtIdentifier>,
        options: ListRecordsOptions,
    ) -> Result<(RecordPage<R>, Client), Error<<ListRecordsOf<R> as Endpoint>::Error>> {
        let params = options
            .params::<R>(repo.into())
            .map_err(Error::InvalidRequest)?;
        self.call::<ListRecordsOf<R>>(params, NoBody).await
    }

    /// Every `R` record in `repo`, page after page, as a stream.
    pub fn list_all_records<R: Record + Send + 'static>(
        &self,
        repo: impl Into<AtIdentifier>,
        options: ListRecordsOptions,
    ) -> ItemStream<ListRecordsOf<R>> {
        match options.params::<R>(repo.into()) {
            Ok(params) => self.paginate::<ListRecordsOf<R>>(params),
            Err(message) => Box::pin(futures::stream::once(async move {
                Err(Error::InvalidRequest(message))
            })),
        }
    }

    /// Creates or replaces the record `rkey` of type `R` in the session's repository.
    pub async fn put_record<R: Record>(
        &self,
        rkey: RecordKey,
        record: &R,
    ) -> Result<(put_record::Output, Client), Error<put_record::Error>> {
        let repo = self.own_repo("put_record")?;
        let collection = collection::<R>().map_err(Error::InvalidRequest)?;
        let input = put_record::Input::new(repo, collection, rkey, record_data(record)?);
        self.call::<put_record::PutRecord>(crate::xrpc::NoParams, input)
            .await
    }

    /// Deletes the record `rkey` of type `R` from the session's repository.
    pub async fn delete_record<R: Record>(
        &self,
        rkey: RecordKey,
    ) -> Result<(delete_record::Output, Client), Error<delete_record::Error>> {
        let repo = self.own_repo("delete_record")?;
        let collection = collection::<R>().map_err(Error::InvalidRequest)?;
        let input = delete_record::Input::new(repo, collection, rkey);
        self.call::<delete_record::DeleteRecord>(crate::xrpc::NoParams, input)
            .await
    }

    /// Applies several writes to the session's repository in one commit (build them with
    /// [`Write`]).
    pub async fn apply_writes(
        &self,
        writes: Vec<apply_writes::InputWritesItem>,
    ) -> Result<(apply_writes::Output, Client), Error<apply_writes::Error>> {
        let repo = self.own_repo("apply_writes")?;
        let input = apply_writes::Input::new(repo, writes);
        self.call::<apply_writes::ApplyWrites>(crate::xrpc::NoParams, input)
            .await
    }
}

/// Builds the members of an `applyWrites` call from typed records.
pub struct Write;

impl Write {
    /// Creates a record (with an optional key).
    pub fn create<R: Record>(
        record: &R,
        rkey: Option<RecordKey>,
    ) -> Result<apply_writes::InputWritesItem, Error> {
        let mut create = apply_writes::Create::new(
            collection::<R>().map_err(Error::InvalidRequest)?,
            record_data(record)?,
        );
        create.rkey = rkey;
        Ok(create.into())
    }

    /// Creates or replaces the record `rkey`.
    pub fn update<R: Record>(
        rkey: RecordKey,
        record: &R,
    ) -> Result<apply_writes::InputWritesItem, Error> {
        let update = apply_writes::Update::new(
            collection::<R>().map_err(Error::InvalidRequest)?,
            rkey,
            record_data(record)?,
        );
        Ok(update.into())
    }

    /// Deletes the record `rkey` of type `R`.
    pub fn delete<R: Record>(rkey: RecordKey) -> Result<apply_writes::InputWritesItem, Error> {
        let delete =
            apply_writes::Delete::new(collection::<R>().map_err(Error::InvalidRequest)?, rkey);
        Ok(delete.into())
    }
}
