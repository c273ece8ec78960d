//! Decoding and verifying `subscribeRepos` frames (`cargo xtask bench firehose`).
//!
//! Input: the stream recorded from the reference PDS, `tests/fixtures/firehose/recorded.bin`
//! (`atlex_tests::firehose`; made by `tests/tests/firehose_pds.rs` with `ATLEX_RECORD=1`):
//! a few hundred real `#commit` frames (posts with facets, embeds and replies, likes,
//! reposts, follows, profile updates, deletes, `applyWrites` batches) and the `#identity` and
//! `#account` frames of its accounts, with the accounts' signing keys.
//!
//! * `firehose/atlex-typed`: `decode_frame::<SubscribeRepos>`, then for a `#commit`
//!   `decode_commit`: the CAR read with every block's SHA-256 checked, the ops parsed, each
//!   record decoded into its generated type (`Post`, `Like`, `Follow`, …);
//! * `firehose/atlex-verified`: the same plus `verify_commit`'s checks: commit decoded,
//!   signature verified, each op found in the MST and the ops inverted back to `prevData`;
//! * `firehose/ipld-untyped` (the baseline): header and payload with `serde_ipld_dagcbor`
//!   into `ipld_core::Ipld`, the CAR split into blocks (no hashing) and every block into `Ipld`.
//!
//! After criterion, the verified path is taken apart and each part timed alone over the same
//! frames (the median of several rounds): frame decode, CAR parse (and the SHA-256 inside
//! it), commit decode, signature verify, MST proof and inversion, record decode. The table is
//! printed on stderr and written to `atlex-bench-firehose.txt` in `CRITERION_HOME`, which
//! `cargo xtask bench` prints under its summary (with the frame count it divides by).
//!
//! Every decoder is run on every frame before measuring; a failure stops the benchmark.

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use atlex::com::atproto::sync::subscribe_repos::{Commit, Message, RepoOpAction, SubscribeRepos};
use atlex::repo::{
    Action, AnyRecord, Blocks, Car, CarLimits, Mst, SignedCommit, decode_commit, verify_commit,
    verify_sync,
};
use atlex::types::crypto::PublicKey;
use atlex::types::{CidLink, Nsid};
use atlex::xrpc::{Frame, decode_frame};
use atlex_tests::firehose::{Recording, fixture_path};
use criterion::{Criterion, Throughput};
use ipld_core::ipld::Ipld;
use sha2::{Digest, Sha256};

/// Where the benchmark tells `cargo xtask bench` the frame count and the breakdown.
const NOTE: &str = "atlex-bench-firehose.txt";

type Keys = HashMap<String, PublicKey>;

/// One op of a commit, ready for the MST and record parts: action, path, collection, CID,
/// previous CID.
type Op = (Action, String, Nsid, Option<CidLink>, Option<CidLink>);

/// A named part of the verified path: one pass over all frames.
type Stage<'a> = (&'static str, Box<dyn FnMut() + 'a>);

fn typed(frame: &[u8]) -> Result<usize, String> {
    match decode_frame::<SubscribeRepos>(frame).map_err(|e| e.to_string())? {
        Frame::Message(Message::Commit(event)) => {
            let decoded = decode_commit(&event).map_err(|e| e.to_string())?;
            Ok(decoded.ops.len())
        }
        Frame::Message(_) => Ok(0),
        Frame::Error(error) => Err(format!("an error frame: {error:?}")),
    }
}

fn key<'k>(keys: &'k Keys, did: &str) -> Result<&'k PublicKey, String> {
    keys.get(did).ok_or_else(|| format!("no key for {did}"))
}

fn verified(frame: &[u8], keys: &Keys) -> Result<usize, String> {
    match decode_frame::<SubscribeRepos>(frame).map_err(|e| e.to_string())? {
        Frame::Message(Message::Commit(event)) => {
            let key = key(keys, event.repo.as_str())?;
            let verified = verify_commit(&event, key).map_err(|e| e.to_string())?;
            Ok(verified.ops.len())
        }
        Frame::Message(Message::Sync(event)) => {
            let key = key(keys, event.did.as_str())?;
            verify_sync(&event, key).map_err(|e| e.to_string())?;
            Ok(0)
        }
        Frame::Message(_) => Ok(0),
        Frame::Error(error) => Err(format!("an error frame: {error:?}")),
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
        // `#identity`, `#account`: the payload is all there is.
        return Ok(0);
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

// --- The parts of `verify_commit`, one at a time -------------------------------------------

/// One `#commit` of the recording, taken apart ahead of time so that every part can be timed
/// on its own inputs.
struct Parts {
    event: Commit,
    key: PublicKey,
    car: Car,
    commit: SignedCommit,
    /// `(action, path, collection, cid, prev)` of each op.
    ops: Vec<Op>,
}

fn parts(frames: &[Vec<u8>], keys: &Keys) -> Result<Vec<Parts>, String> {
    let mut out = Vec::new();
    for frame in frames {
        let Frame::Message(Message::Commit(event)) =
            decode_frame::<SubscribeRepos>(frame).map_err(|e| e.to_string())?
        else {
            continue;
        };
        let key = key(keys, event.repo.as_str())?.clone();
        let car = Car::read(event.blocks.to_vec(), &CarLimits::EVENT).map_err(|e| e.to_string())?;
        let commit =
            SignedCommit::from_blocks(&event.commit, car.blocks()).map_err(|e| e.to_string())?;
        let ops = event
            .ops
            .iter()
            .map(|op| {
                let (collection, _) = op.path.split_once('/').ok_or("a path without /")?;
                let collection = Nsid::new(collection).map_err(|e| e.to_string())?;
                let action = match &op.action {
                    RepoOpAction::Create => Action::Create,
                    RepoOpAction::Update => Action::Update,
                    _ => Action::Delete,
                };
                Ok((
                    action,
                    op.path.clone(),
                    collection,
                    op.cid.clone().into_option(),
                    op.prev.clone(),
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        out.push(Parts {
            event: *event,
            key,
            car,
            commit,
            ops,
        });
    }
    Ok(out)
}

/// The MST part of `verify_commit`: every op found in the new tree, then the ops inverted
/// and the root compared with `prevData`.
fn prove(part: &Parts) -> Result<(), String> {
    let blocks: &Blocks = part.car.blocks();
    let mut mst = Mst::load(part.commit.data(), blocks).map_err(|e| e.to_string())?;
    for (_, path, _, cid, _) in &part.ops {
        if &mst.get(path, blocks).map_err(|e| e.to_string())? != cid {
            return Err(format!("{path} is not proven"));
        }
    }
    for (action, path, _, cid, prev) in &part.ops {
        let undone = match (action, prev) {
            (Action::Create, _) => mst.remove(path, blocks),
            (_, Some(prev)) => mst.insert(path, prev.clone(), blocks),
            (_, None) => return Err(format!("{path}: no prev")),
        }
        .map_err(|e| e.to_string())?;
        if &undone != cid {
            return Err(format!("{path}: inverting found another value"));
        }
    }
    let root = mst.root(blocks).map_err(|e| e.to_string())?;
    match &part.event.prev_data {
        Some(prev_data) if &root == prev_data => Ok(()),
        Some(_) => Err("inverted root is not prevData".into()),
        None => Ok(()),
    }
}

fn records(part: &Parts) -> Result<usize, String> {
    let mut typed = 0;
    for (_, _, collection, cid, _) in &part.ops {
        if let Some(cid) = cid {
            let bytes = part.car.blocks().get(cid).ok_or("a record is missing")?;
            let record = AnyRecord::decode(collection, cid, bytes).map_err(|e| e.to_string())?;
            typed += usize::from(!matches!(record, AnyRecord::Unknown(_)));
        }
    }
    Ok(typed)
}

/// Times each stage's pass (one pass over all frames): `rounds` rounds, each running every
/// stage in turn for at least `round` (so that a change in the machine's load hits all stages
/// alike); the median time per pass of each stage.
fn time_stages(stages: &mut [Stage<'_>], rounds: usize, round: Duration) -> Vec<Duration> {
    let mut samples = vec![Vec::with_capacity(rounds); stages.len()];
    for round_index in 0..=rounds {
        for (stage, (_, pass)) in stages.iter_mut().enumerate() {
            let start = Instant::now();
            let mut passes = 0u32;
            while start.elapsed() < round {
                pass();
                passes += 1;
            }
            // The first round warms up.
            if round_index > 0 {
                samples[stage].push(start.elapsed() / passes);
            }
        }
    }
    samples
        .into_iter()
        .map(|mut stage| {
            stage.sort();
            stage[stage.len() / 2]
        })
        .collect()
}

fn breakdown(frames: &[Vec<u8>], keys: &Keys, quick: bool) -> Result<String, String> {
    let parts = parts(frames, keys)?;
    let commits = parts.len();
    let (rounds, round) = if quick {
        (3, Duration::from_millis(200))
    } else {
        (7, Duration::from_millis(400))
    };
    let mut stages: Vec<Stage<'_>> = vec![
        (
            "verified, whole (decode_frame + verify_commit)",
            Box::new(|| {
                for frame in frames {
                    black_box(verified(black_box(frame), keys).ok());
                }
            }),
        ),
        (
            "frame decode (decode_frame)",
            Box::new(|| {
                for frame in frames {
                    black_box(decode_frame::<SubscribeRepos>(black_box(frame)).ok());
                }
            }),
        ),
        (
            "CAR parse (Car::read, SHA-256 included)",
            Box::new(|| {
                for part in &parts {
                    black_box(Car::read(part.event.blocks.to_vec(), &CarLimits::EVENT).ok());
                }
            }),
        ),
        (
            "  of which SHA-256 of the blocks",
            Box::new(|| {
                for part in &parts {
                    for (_, bytes) in part.car.blocks().iter() {
                        black_box(Sha256::digest(bytes));
                    }
                }
            }),
        ),
        (
            "commit decode (SignedCommit)",
            Box::new(|| {
                for part in &parts {
                    black_box(
                        SignedCommit::from_blocks(&part.event.commit, part.car.blocks()).ok(),
                    );
                }
            }),
        ),
        (
            "signature verify (ECDSA secp256k1)",
            Box::new(|| {
                for part in &parts {
                    black_box(part.commit.verify_signature(&part.key).ok());
                }
            }),
        ),
        (
            "MST proof + inversion to prevData",
            Box::new(|| {
                for part in &parts {
                    black_box(prove(part).ok());
                }
            }),
        ),
        (
            "record decode (AnyRecord, typed)",
            Box::new(|| {
                for part in &parts {
                    black_box(records(part).ok());
                }
            }),
        ),
    ];
    let times = time_stages(&mut stages, rounds, round);
    let rows: Vec<(&str, Duration)> = stages.iter().map(|(name, _)| *name).zip(times).collect();
    let whole = rows[0].1;
    let mut text = String::new();
    text.push_str(&format!(
        "firehose breakdown of decode + verify ({} frames, {commits} commits; per frame, \
         median of {rounds} interleaved rounds; share of the whole):\n",
        frames.len()
    ));
    let mut sum = Duration::ZERO;
    for (index, (name, per_pass)) in rows.iter().enumerate() {
        if index > 0 && !name.starts_with(' ') {
            sum += *per_pass;
        }
        let per_frame = per_pass.as_secs_f64() / frames.len() as f64;
        text.push_str(&format!(
            "  {name:<48} {:>9.2} µs/frame {:>5.1}%\n",
            per_frame * 1e6,
            100.0 * per_pass.as_secs_f64() / whole.as_secs_f64()
        ));
    }
    let rest = whole.as_secs_f64() - sum.as_secs_f64();
    text.push_str(&format!(
        "  {:<48} {:>9.2} µs/frame {:>5.1}%\n",
        "rest (op parsing, copies; parts alone run with warm caches)",
        rest / frames.len() as f64 * 1e6,
        100.0 * rest / whole.as_secs_f64()
    ));
    Ok(text)
}

fn main() -> ExitCode {
    let path = fixture_path();
    let recording = match Recording::read(&path) {
        Ok(recording) => recording,
        Err(error) => {
            eprintln!("firehose: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut keys = Keys::new();
    for (did, _) in &recording.keys {
        match recording.key(did) {
            Some(key) => keys.insert(did.clone(), key),
            None => {
                eprintln!("firehose: the recorded key of {did} does not parse");
                return ExitCode::FAILURE;
            }
        };
    }
    let frames = recording.frames;
    let bytes: usize = frames.iter().map(Vec::len).sum();
    for (index, frame) in frames.iter().enumerate() {
        for (name, result) in [
            ("atlex-typed", typed(frame)),
            ("atlex-verified", verified(frame, &keys)),
            ("ipld-untyped", untyped(frame)),
        ] {
            if let Err(error) = result {
                eprintln!("frame {index}: {name} failed: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    eprintln!(
        "firehose: {} frames, {bytes} bytes, from {}",
        frames.len(),
        path.display()
    );
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
                black_box(verified(black_box(frame), &keys).ok());
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

    // The breakdown is skipped when criterion only lists or tests (`--list`, `--test`).
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list" || a == "--test") {
        return ExitCode::SUCCESS;
    }
    let quick = args.iter().any(|a| a == "--measurement-time")
        && args
            .windows(2)
            .any(|w| w[0] == "--measurement-time" && w[1].parse::<f64>().is_ok_and(|s| s < 2.0));
    let text = match breakdown(&frames, &keys, quick) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("firehose breakdown failed: {error}");
            return ExitCode::FAILURE;
        }
    };
    eprint!("{text}");
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        let note = format!("frames {}\n{text}", frames.len());
        let path = std::path::Path::new(&home).join(NOTE);
        if let Err(error) = std::fs::write(&path, note) {
            eprintln!("firehose: writing {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
