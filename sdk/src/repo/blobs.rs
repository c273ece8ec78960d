//! Blob helpers: `upload_blob(body)` and `get_blob(did, cid)`, on top of
//! `com.atproto.repo.uploadBlob` and `com.atproto.sync.getBlob`.
//!
//! Uploads send the [`RawBody`]'s own MIME type as `Content-Type` (that is what the PDS
//! records for the blob) and stream a file body from disk; downloads hand the body over as a
//! [`StreamedResponse`] with the blob's MIME type, without holding it in memory.

use atlex_types::{BlobRef, Cid, Did};

use crate::com::atproto::repo::upload_blob;
use crate::com::atproto::sync::get_blob;
use crate::xrpc::{Client, Error, NoBody, NoParams, RawBody, StreamedResponse};

impl Client {
    /// Uploads a blob to the session's PDS and returns its reference, to put in a record
    /// (`blob` fields such as a profile's `avatar` or an image embed's `image`).
    ///
    /// `body` is bytes ([`RawBody::new`]) or a file ([`RawBody::from_file`], streamed from disk
    /// while it is sent, and opened again should the request be sent again after a session
    /// refresh). Its content type is sent as `Content-Type` and must be a concrete MIME type
    /// (`image/png`, `video/mp4`, `application/octet-stream`); an empty one or a wildcard such
    /// as `*/*` or `image/*` fails with [`Error::InvalidRequest`] before anything is sent. The
    /// PDS may record another type when it recognises the content (the returned reference says
    /// which), and forgets the blob unless a record references it soon.
    ///
    /// ```no_run
    /// # async fn example(client: atlex::xrpc::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// use atlex::types::Cid;
    /// use atlex::xrpc::RawBody;
    /// let (blob, client) = client
    ///     .upload_blob(RawBody::from_file("avatar.png", "image/png"))
    ///     .await?;
    /// // Reference `blob` from a record (a profile's avatar, a post's image embed), then:
    /// let did = client.did().ok_or("no session")?;
    /// let cid = Cid::new(blob.cid()?.to_string())?;
    /// let (download, _client) = client.get_blob(did, cid).await?;
    /// assert_eq!(download.content_type(), Some("image/png"));
    /// let bytes = download.bytes().await?;
    /// # let _ = bytes; Ok(()) }
    /// ```
    pub async fn upload_blob(&self, body: RawBody) -> Result<(BlobRef, Client), Error> {
        check_mime_type(body.content_type()).map_err(Error::InvalidRequest)?;
        let (output, client) = self.call::<upload_blob::UploadBlob>(NoParams, body).await?;
        Ok((output.blob, client))
    }

    /// Downloads the blob `cid` of the account `did` from this client's service (for a
    /// password session, its PDS; a blob of an account hosted elsewhere needs a client for that
    /// PDS). No session is needed.
    ///
    /// The result carries the blob's MIME type
    /// ([`content_type`](StreamedResponse::content_type)) and its bytes as a stream of chunks;
    /// see [`StreamedResponse`]. A missing blob is
    /// [`Error::Xrpc`] with [`get_blob::Error::BlobNotFound`], an unknown account
    /// [`get_blob::Error::RepoNotFound`].
    ///
    /// A CID from a [`BlobRef`] converts with `Cid::new(blob.cid()?.to_string())`.
    pub async fn get_blob(
        &self,
        did: impl Into<Did>,
        cid: impl Into<Cid>,
    ) -> Result<(StreamedResponse, Client), Error<get_blob::Error>> {
        let params = get_blob::Params::new(did, cid);
        self.call_streamed::<get_blob::GetBlob>(params, NoBody)
            .await
    }
}

/// Checks that `value` is a concrete MIME type: `type/subtype` of RFC 6838 name characters,
/// optionally followed by `;` parameters, with no wildcard.
fn check_mime_type(value: &str) -> Result<(), String> {
    let essence = value.split(';').next().unwrap_or_default().trim();
    let invalid = |why: &str| format!("the blob's content type {value:?} {why}");
    let (kind, subtype) = essence
        .split_once('/')
        .ok_or_else(|| invalid("is not a MIME type (type/subtype)"))?;
    if kind == "*" || subtype == "*" {
        return Err(invalid(
            "is a wildcard; give the blob's own type (e.g. image/png, or application/octet-stream)",
        ));
    }
    let is_name = |part: &str| {
        !part.is_empty()
            && part.len() <= 127
            && part.bytes().all(|byte| {
                byte.is_ascii_alphanumeric()
                    || matches!(
                        byte,
                        b'!' | b'#' | b'$' | b'&' | b'-' | b'^' | b'_' | b'.' | b'+'
                    )
            })
    };
    if !is_name(kind) || !is_name(subtype) {
        return Err(invalid("is not a MIME type (type/subtype)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_mime_type;

    #[test]
    fn mime_types() {
        for good in [
            "image/png",
            "application/octet-stream",
            "video/mp4",
            "text/plain; charset=utf-8",
            "application/vnd.ipld.car",
            "image/svg+xml",
        ] {
            assert!(check_mime_type(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "png",
            "*/*",
            "image/*",
            "/png",
            "image/",
            "image/png/x",
            "ima ge/png",
        ] {
            assert!(check_mime_type(bad).is_err(), "{bad:?}");
        }
    }
}
