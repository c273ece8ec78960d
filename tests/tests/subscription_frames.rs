//! Event-stream frames decode into the generated message unions and error enums.

use atlex::com::atproto::sync::subscribe_repos::{self, Message, SubscribeRepos};
use atlex::types::data::cbor::to_dag_cbor;
use atlex::xrpc::{Frame, decode_frame};
use serde_json::json;

fn frame(header: serde_json::Value, payload: serde_json::Value) -> Vec<u8> {
    let mut bytes = to_dag_cbor(&atlex::types::Data::from_json(&header).unwrap()).unwrap();
    bytes.extend(to_dag_cbor(&atlex::types::Data::from_json(&payload).unwrap()).unwrap());
    bytes
}

#[test]
fn message_frames_decode_into_the_union() {
    let bytes = frame(
        json!({"op": 1, "t": "#identity"}),
        json!({"seq": 42, "did": "did:plc:abc", "time": "2024-05-01T12:00:00.000Z", "handle": "alice.test"}),
    );
    match decode_frame::<SubscribeRepos>(&bytes).unwrap() {
        Frame::Message(Message::Identity(identity)) => {
            assert_eq!(identity.seq, 42);
            assert_eq!(identity.did.as_str(), "did:plc:abc");
            assert_eq!(
                identity.handle.as_ref().map(|h| h.as_str()),
                Some("alice.test")
            );
        }
        other => panic!("expected an identity message, got {other:?}"),
    }
}

#[test]
fn unknown_message_types_are_kept() {
    let bytes = frame(json!({"op": 1, "t": "#hologram"}), json!({"seq": 1}));
    match decode_frame::<SubscribeRepos>(&bytes).unwrap() {
        Frame::Message(Message::Unknown(member)) => {
            assert_eq!(
                member.type_tag(),
                "com.atproto.sync.subscribeRepos#hologram"
            );
        }
        other => panic!("expected an unknown member, got {other:?}"),
    }
}

#[test]
fn error_frames_map_to_the_typed_error() {
    let bytes = frame(
        json!({"op": -1}),
        json!({"error": "FutureCursor", "message": "too far"}),
    );
    match decode_frame::<SubscribeRepos>(&bytes).unwrap() {
        Frame::Error(subscribe_repos::Error::FutureCursor(message)) => {
            assert_eq!(message.as_deref(), Some("too far"))
        }
        other => panic!("expected FutureCursor, got {other:?}"),
    }
}

#[test]
fn malformed_frames_are_errors_not_panics() {
    let good = frame(
        json!({"op": 1, "t": "#identity"}),
        json!({"seq": 42, "did": "did:plc:abc", "time": "2024-05-01T12:00:00.000Z"}),
    );
    for cut in 0..good.len() {
        assert!(
            decode_frame::<SubscribeRepos>(&good[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    let bad_payload = frame(json!({"op": 1, "t": "#identity"}), json!({"seq": "x"}));
    assert!(decode_frame::<SubscribeRepos>(&bad_payload).is_err());
    let bad_op = frame(json!({"op": 7}), json!({}));
    assert!(decode_frame::<SubscribeRepos>(&bad_op).is_err());
}
