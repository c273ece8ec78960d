//! Decoding and verifying `subscribeRepos` `#commit` frames (`cargo xtask bench firehose`).
//!
//! Input: 400 `#commit` frames generated at start-up, reproducibly, by
//! `atlex_tests::repo::MemoryRepo` (real signed K-256 commits over a repository that grows to
//! ~600 records: posts, likes, follows, some updates and deletes; each CAR carries the commit,
//! the records and the MST nodes that prove the operations, as a PDS sends them).
//!
//! * `firehose/atlex-typed`: `decode_frame::<SubscribeRepos>`, then `decode_commit`: the CAR
//!   read with every block's SHA-256 checked, the ops parsed, each record decoded into its
//!   generated type (`Post`, `Like`, `Follow`);
//! * `firehose/atlex-verified`: the same plus `verify_commit`'s checks: commit decoded,
//!   signature verified, each op found in the MST and the ops inverted back to `prevData`;
//! * `firehose/ipld-untyped` (the baseline): header and payload with `serde_ipld_dagcbor`
//!   into `ipld_core::Ipld`, the CAR split into blocks (no hashing) and every block into `Ipld`.
//!
//! Every decoder is run on every frame before measuring; a failure stops the benchmark.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::process::ExitCode;

use atlex::com::atproto::sync::subscribe_repos::{Message, SubscribeRepos};
use atlex::repo::{decode_commit, verify_commit};
use atlex::types::crypto::{Algorithm, PrivateKey, PublicKey};
use atlex::types::data::to_dag_cbor;
use atlex::xrpc::{Frame, decode_frame};
use atlex_tests::repo::{Change, MemoryRepo};
use criterion::{Criterion, Throughput};
use ipld_core::ipld::Ipld;

const EVENTS: usize = 400;

fn frames() -> (Vec<Vec<u8>>, PublicKey) {
    let key = PrivateKey::from_bytes(Algorithm::K256, &[9; 32]).unwrap();
    let public = key.public_key();
    let did = atlex::types::Did::new("did:plc:benchfirehose00000000000").unwrap();
    let mut repo = MemoryRepo::reproducible(did.clone(), key);
    let created = "2024-05-01T12:00:00.000Z";
    let subject = serde_json::json!({
        "uri": "at://did:plc:benchfirehose00000000000/app.bsky.feed.post/3kaaaaaaaaaa2",
        "cid": "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454",
    });
    let mut frames = Vec::new();
    let mut live: Vec<String> = Vec::new();
    for n in 0..EVENTS {
        let mut changes = Vec::new();
        let post_path = format!("app.bsky.feed.post/3kpost{n:07}");
        let text = format!(
            "post number {n}: a line of text of about the length people write, with a tag #atproto"
        );
        let post = serde_json::json!({"$type": "app.bsky.feed.post", "text": text,
            "createdAt": created, "langs": ["en"]});
        changes.push(Change::Create(
            post_path.clone(),
            to_dag_cbor(&post).unwrap(),
        ));
        live.push(post_path);
        match n % 4 {
            0 => {
                let like = serde_json::json!({"$type": "app.bsky.feed.like", "subject": subject, "createdAt": created});
                changes.push(Change::Create(
                    format!("app.bsky.feed.like/3klike{n:07}"),
                    to_dag_cbor(&like).unwrap(),
                ));
            }
            1 => {
                let follow = serde_json::json!({"$type": "app.bsky.graph.follow", "subject": "did:plc:someone0000000000000000", "createdAt": created});
                changes.push(Change::Create(
                    format!("app.bsky.graph.follow/3kfoll{n:07}"),
                    to_dag_cbor(&follow).unwrap(),
                ));
            }
            2 if live.len() > 3 => {
                let path = live.remove(live.len() / 2);
                changes.push(Change::Delete(path));
            }
            _ if live.len() > 3 => {
                let path = live[live.len() / 3].clone();
                let edited = serde_json::json!({"$type": "app.bsky.feed.post", "text": format!("edited {n}"), "createdAt": created});
                changes.push(Change::Update(path, to_dag_cbor(&edited).unwrap()));
            }
            _ => {}
        }
        let event = repo.commit(&changes).unwrap();
        let mut frame = to_dag_cbor(&serde_json::json!({"op": 1, "t": "#commit"})).unwrap();
        frame.extend(to_dag_cbor(&event).unwrap());
        frames.push(frame);
    }
    (frames, public)
}

fn typed(frame: &[u8]) -> Result<usize, String> {
    match decode_frame::<SubscribeRepos>(frame).map_err(|e| e.to_string())? {
        Frame::Message(Message::Commit(event)) => {
            let decoded = decode_commit(&event).map_err(|e| e.to_string())?;
            Ok(decoded.ops.len())
        }
        _ => Err("not a #commit".into()),
    }
}

fn verified(frame: &[u8], key: &PublicKey) -> Result<usize, String> {
    match decode_frame::<SubscribeRepos>(frame).map_err(|e| e.to_string())? {
        Frame::Message(Message::Commit(event)) => {
            let verified = verify_commit(&event, key).map_err(|e| e.to_string())?;
            Ok(verified.ops.len())
        }
        _ => Err("not a #commit".into()),
    }
}

fn varint(bytes: &[u8], pos: &mut usize) -> Option<usize> {
    let mut value = 0usize;
    for i in 0..9 {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The baseline: everything into `Ipld`, the CAR split by hand (no hashing).
fn untyped(frame: &[u8]) -> Result<usize, String> {
    let mut de = serde_ipld_dagcbor::de::Deserializer::from_slice(frame);
    let _header: Ipld = serde::Deserialize::deserialize(&mut de).map_err(|e| e.to_string())?;
    let payload: Ipld = serde::Deserialize::deserialize(&mut de).map_err(|e| e.to_string())?;
    let Ipld::Map(map): Ipld = payload else {
        return Err("payload is not a map".into());
    };
    let map: BTreeMap<String, Ipld> = map;
    let Some(Ipld::Bytes(car)) = map.get("blocks") else {
        return Err("no blocks".into());
    };
    let mut pos = 0;
    let header_len = varint(car, &mut pos).ok_or("header length")?;
    let _roots: Ipld =
        serde_ipld_dagcbor::from_slice(car.get(pos..pos + header_len).ok_or("header")?)
            .map_err(|e| e.to_string())?;
    pos += header_len;
    let mut blocks = 0;
    while pos < car.len() {
        let len = varint(car, &mut pos).ok_or("block length")?;
        let section = car.get(pos..pos + len).ok_or("block")?;
        // CIDv1: version, codec, hash code, digest length (one byte each here), digest.
        let cid_len = 4 + usize::from(*section.get(3).ok_or("cid")?);
        let block: Ipld = serde_ipld_dagcbor::from_slice(section.get(cid_len..).ok_or("data")?)
            .map_err(|e| e.to_string())?;
        black_box(block);
        blocks += 1;
        pos += len;
    }
    Ok(blocks)
}

fn main() -> ExitCode {
    let (frames, key) = frames();
    let bytes: usize = frames.iter().map(Vec::len).sum();
    for (index, frame) in frames.iter().enumerate() {
        for (name, result) in [
            ("atlex-typed", typed(frame)),
            ("atlex-verified", verified(frame, &key)),
            ("ipld-untyped", untyped(frame)),
        ] {
            if let Err(error) = result {
                eprintln!("frame {index}: {name} failed: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    eprintln!("firehose: {} frames, {bytes} bytes", frames.len());
    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("firehose");
    group.throughput(Throughput::Elements(frames.len() as u64));
    group.bench_function("atlex-typed", |b| {
        b.iter(|| {
            for frame in &frames {
                black_box(typed(black_box(frame)).ok());
            }
        })
    });
    group.bench_function("atlex-verified", |b| {
        b.iter(|| {
            for frame in &frames {
                black_box(verified(black_box(frame), &key).ok());
            }
        })
    });
    group.bench_function("ipld-untyped", |b| {
        b.iter(|| {
            for frame in &frames {
                black_box(untyped(black_box(frame)).ok());
            }
        })
    });
    group.finish();
    criterion.final_summary();
    ExitCode::SUCCESS
}
