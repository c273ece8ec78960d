//! Event-stream frames: decoding one WebSocket binary message of a [`Subscription`].
//!
//! A frame is two DAG-CBOR values back to back: a header `{op, t}` and a payload. `op: 1` is a
//! message whose type `t` (`#commit`, or a full `nsid#name`) names a member of the
//! subscription's message union; the payload carries no `$type`. `op: -1` is an error whose
//! payload is `{error, message?}`. The transport (a WebSocket client of the app's choice) hands
//! each binary message to [`decode_frame`].

use std::collections::BTreeMap;
use std::fmt;

use atlex_types::Data;
use atlex_types::union::{LexUnion, UnknownMember};
use serde::Deserialize;

use super::endpoint::Subscription;
use super::error::{ErrorBody, XrpcErrorKind};

/// One decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame<M, E> {
    /// A message (`op: 1`).
    Message(M),
    /// An error (`op: -1`); the stream ends after it.
    Error(E),
}

/// A frame that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    message: String,
}

impl FrameError {
    fn new(message: impl Into<String>) -> FrameError {
        FrameError {
            message: message.into(),
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid event-stream frame: {}", self.message)
    }
}

impl std::error::Error for FrameError {}

#[derive(Deserialize)]
struct Header {
    op: i64,
    #[serde(default)]
    t: Option<String>,
}

/// Decodes one frame of the subscription `S`.
///
/// A message type this version does not know becomes the union's unknown member (an open
/// union) or an error (a closed one).
pub fn decode_frame<S: Subscription>(
    bytes: &[u8],
) -> Result<Frame<S::Message, S::Error>, FrameError> {
    let header_len = cbor_item_len(bytes, 0)
        .ok_or_else(|| FrameError::new("the header is not a complete CBOR value"))?;
    let (header, payload) = bytes.split_at(header_len);
    let header: Header = serde_ipld_dagcbor::from_slice(header)
        .map_err(|e| FrameError::new(format!("bad header: {e}")))?;
    match header.op {
        1 => {
            let t = header
                .t
                .ok_or_else(|| FrameError::new("message header without `t`"))?;
            let tag = if t.starts_with('#') {
                format!("{}{t}", S::NSID)
            } else {
                t
            };
            if S::Message::REFS.contains(&tag.as_str()) {
                let mut de = serde_ipld_dagcbor::de::Deserializer::from_slice(payload);
                let message = S::Message::deserialize_member(&tag, &mut de)
                    .map_err(|e| FrameError::new(format!("bad {tag} payload: {e}")))?;
                de.end()
                    .map_err(|e| FrameError::new(format!("bad {tag} payload: {e}")))?;
                Ok(Frame::Message(message))
            } else {
                let data: Data = atlex_types::data::cbor::from_dag_cbor(payload)
                    .map_err(|e| FrameError::new(format!("bad {tag} payload: {e}")))?;
                let Data::Object(mut object) = data else {
                    return Err(FrameError::new(format!("{tag} payload is not an object")));
                };
                object.insert("$type".to_owned(), Data::String(tag.clone()));
                let member = UnknownMember::new(object)
                    .ok_or_else(|| FrameError::new(format!("{tag}: invalid message type")))?;
                S::Message::unknown(member)
                    .map(Frame::Message)
                    .ok_or_else(|| {
                        FrameError::new(format!("{tag} is not a message of {}", S::NSID))
                    })
            }
        }
        -1 => {
            let body: BTreeMap<String, Data> = atlex_types::data::cbor::from_dag_cbor(payload)
                .map_err(|e| FrameError::new(format!("bad error payload: {e}")))?;
            let text = |key: &str| match body.get(key) {
                Some(Data::String(s)) => Some(s.clone()),
                _ => None,
            };
            let error =
                text("error").ok_or_else(|| FrameError::new("error frame without `error`"))?;
            Ok(Frame::Error(S::Error::from_body(ErrorBody {
                error,
                message: text("message"),
            })))
        }
        op => Err(FrameError::new(format!("unknown op {op}"))),
    }
}

/// The length in bytes of the CBOR data item starting at `at`, or `None` when it is truncated
/// or malformed (indefinite lengths are not DAG-CBOR and are rejected).
fn cbor_item_len(bytes: &[u8], at: usize) -> Option<usize> {
    item_end(bytes, at, 0).map(|end| end - at)
}

fn item_end(bytes: &[u8], at: usize, depth: usize) -> Option<usize> {
    if depth > 64 {
        return None;
    }
    let first = *bytes.get(at)?;
    let major = first >> 5;
    let info = first & 0x1f;
    let (arg, mut pos) = match info {
        0..=23 => (u64::from(info), at + 1),
        24 => (u64::from(*bytes.get(at + 1)?), at + 2),
        25 => (
            u64::from(u16::from_be_bytes(
                bytes.get(at + 1..at + 3)?.try_into().ok()?,
            )),
            at + 3,
        ),
        26 => (
            u64::from(u32::from_be_bytes(
                bytes.get(at + 1..at + 5)?.try_into().ok()?,
            )),
            at + 5,
        ),
        27 => (
            u64::from_be_bytes(bytes.get(at + 1..at + 9)?.try_into().ok()?),
            at + 9,
        ),
        _ => return None,
    };
    match major {
        0 | 1 | 7 => Some(pos),
        2 | 3 => {
            let end = pos.checked_add(usize::try_from(arg).ok()?)?;
            (end <= bytes.len()).then_some(end)
        }
        4 | 5 => {
            let items = usize::try_from(arg)
                .ok()?
                .checked_mul(if major == 5 { 2 } else { 1 })?;
            for _ in 0..items {
                pos = item_end(bytes, pos, depth + 1)?;
            }
            Some(pos)
        }
        6 => item_end(bytes, pos, depth + 1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_lengths() {
        // {"op": 1, "t": "#x"}
        let header =
            atlex_types::data::cbor::to_dag_cbor(&serde_json::json!({"op": 1, "t": "#x"})).unwrap();
        let mut frame = header.clone();
        frame.extend_from_slice(&[0xa0]); // {}
        assert_eq!(cbor_item_len(&frame, 0), Some(header.len()));
        assert_eq!(cbor_item_len(&header[..header.len() - 1], 0), None);
        assert_eq!(cbor_item_len(&[0x9f], 0), None); // indefinite array
        assert_eq!(cbor_item_len(&[0x5a, 0xff, 0xff, 0xff, 0xff], 0), None);
    }
}
