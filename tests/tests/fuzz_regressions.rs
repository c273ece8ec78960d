//! The fuzz targets' committed inputs, run as ordinary tests (no fuzzer needed).
//!
//! `tests/fuzz/src/lib.rs` holds each target's check (what `cargo xtask fuzz` runs under
//! libFuzzer); it is included here by path, so these tests run exactly the same code:
//!
//! * every input under `tests/fuzz/regressions/<target>/` (a crash the fuzzer found, kept
//!   after its fix) passes its target's check;
//! * every seed under `tests/fuzz/seeds/<target>/` passes too;
//! * the binary frame seeds are the frames built below (regenerate them with
//!   `ATLEX_WRITE_FUZZ_SEEDS=1 cargo test -p atlex-tests --test fuzz_regressions`), and each
//!   decodes to the message it was built as.
//!
//! Run: `cargo test -p atlex-tests --test fuzz_regressions`.

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use atlex::com::atproto::label::subscribe_labels::{self, SubscribeLabels};
use atlex::com::atproto::sync::subscribe_repos::{self, SubscribeRepos};
use atlex::types::Data;
use atlex::types::data::cbor::to_dag_cbor;
use atlex::xrpc::{Frame, decode_frame};
use serde_json::{Value, json};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Runs every file under `<fuzz>/<kind>/<target>/` through its target's check; returns how
/// many ran, and fails naming each input that panicked.
fn run_committed(kind: &str) -> usize {
    let base = fuzz_dir().join(kind);
    let known: Vec<&str> = checks::TARGETS.iter().map(|(name, _)| *name).collect();
    let mut ran = 0;
    let mut failures = Vec::new();
    if base.is_dir() {
        for entry in fs::read_dir(&base).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                known.contains(&name.as_str()) || name.ends_with(".md"),
                "{}/{name} is not a fuzz target (known: {known:?})",
                base.display()
            );
        }
    }
    for (name, check) in checks::TARGETS {
        let dir = base.join(name);
        if !dir.is_dir() {
            continue;
        }
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let bytes = fs::read(&file).unwrap();
            ran += 1;
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&bytes))) {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                failures.push(format!("{}: {message}", file.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "fuzz inputs that fail their target's check:\n{}",
        failures.join("\n")
    );
    ran
}

#[test]
fn every_regression_input_passes_its_target() {
    let ran = run_committed("regressions");
    assert!(
        ran > 0,
        "no regression inputs under tests/fuzz/regressions/"
    );
}

#[test]
fn every_seed_passes_its_target() {
    let ran = run_committed("seeds");
    assert!(ran > 0, "no seeds under tests/fuzz/seeds/");
}

const DAG: &str = "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a";
const RAW: &str = "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity";

fn frame(header: Value, payload: Value) -> Vec<u8> {
    let mut bytes = to_dag_cbor(&Data::from_json(&header).unwrap()).unwrap();
    bytes.extend(to_dag_cbor(&Data::from_json(&payload).unwrap()).unwrap());
    bytes
}

/// The frame seeds: (file name, bytes, what the frame must decode to).
fn frame_seeds() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let time = "2024-05-01T12:00:00.000Z";
    vec![
        (
            "repos-commit",
            frame(
                json!({"op": 1, "t": "#commit"}),
                json!({
                    "seq": 7, "rebase": false, "tooBig": false, "repo": "did:plc:abc",
                    "commit": {"$link": DAG}, "rev": "3kabcdefghij2", "since": null,
                    "blocks": {"$bytes": "OqJlcm9vdHOB2CpYJQABcRIgZQ"},
                    "ops": [{"action": "create", "path": "app.bsky.feed.post/3kabcdefghij2", "cid": {"$link": DAG}}],
                    "blobs": [{"$link": RAW}], "time": time, "prevData": {"$link": DAG},
                }),
            ),
            "repos commit",
        ),
        (
            "repos-identity",
            frame(
                json!({"op": 1, "t": "#identity"}),
                json!({"seq": 42, "did": "did:plc:abc", "time": time, "handle": "alice.test"}),
            ),
            "repos identity",
        ),
        (
            "repos-account",
            frame(
                json!({"op": 1, "t": "#account"}),
                json!({"seq": 43, "did": "did:plc:abc", "time": time, "active": false, "status": "takendown"}),
            ),
            "repos account",
        ),
        (
            "repos-sync",
            frame(
                json!({"op": 1, "t": "#sync"}),
                json!({"seq": 44, "did": "did:plc:abc", "blocks": {"$bytes": "AQID"}, "rev": "3kabcdefghij2", "time": time}),
            ),
            "repos sync",
        ),
        (
            "repos-info",
            frame(
                json!({"op": 1, "t": "com.atproto.sync.subscribeRepos#info"}),
                json!({"name": "OutdatedCursor", "message": "cursor is old"}),
            ),
            "repos info",
        ),
        (
            "repos-error",
            frame(
                json!({"op": -1}),
                json!({"error": "FutureCursor", "message": "too far"}),
            ),
            "repos error",
        ),
        (
            "labels-labels",
            frame(
                json!({"op": 1, "t": "#labels"}),
                json!({"seq": 9, "labels": [{
                    "ver": 1, "src": "did:plc:labeler", "uri": "at://did:plc:abc/app.bsky.feed.post/3kabcdefghij2",
                    "cid": DAG, "val": "!warn", "neg": false, "cts": time, "exp": time,
                    "sig": {"$bytes": "AQIDBA"},
                }]}),
            ),
            "labels labels",
        ),
        (
            "labels-info",
            frame(
                json!({"op": 1, "t": "#info"}),
                json!({"name": "OutdatedCursor"}),
            ),
            "labels info",
        ),
    ]
}

/// What a frame decodes to, in the words of [`frame_seeds`].
fn decoded_as(bytes: &[u8]) -> String {
    let repos = match decode_frame::<SubscribeRepos>(bytes) {
        Ok(Frame::Message(subscribe_repos::Message::Commit(_))) => Some("repos commit"),
        Ok(Frame::Message(subscribe_repos::Message::Identity(_))) => Some("repos identity"),
        Ok(Frame::Message(subscribe_repos::Message::Account(_))) => Some("repos account"),
        Ok(Frame::Message(subscribe_repos::Message::Sync(_))) => Some("repos sync"),
        Ok(Frame::Message(subscribe_repos::Message::Info(_))) => Some("repos info"),
        Ok(Frame::Error(subscribe_repos::Error::FutureCursor(_))) => Some("repos error"),
        _ => None,
    };
    let labels = match decode_frame::<SubscribeLabels>(bytes) {
        Ok(Frame::Message(subscribe_labels::Message::Labels(_))) => Some("labels labels"),
        Ok(Frame::Message(subscribe_labels::Message::Info(_))) => Some("labels info"),
        _ => None,
    };
    match (repos, labels) {
        // `#info` is a member of both unions.
        (Some("repos info"), Some("labels info")) => "both info".to_owned(),
        (Some(kind), _) | (None, Some(kind)) => kind.to_owned(),
        (None, None) => format!(
            "nothing ({:?} / {:?})",
            decode_frame::<SubscribeRepos>(bytes).err(),
            decode_frame::<SubscribeLabels>(bytes).err()
        ),
    }
}

#[test]
fn frame_seeds_are_current_and_decode() {
    let dir = fuzz_dir().join("seeds/frames");
    let write = std::env::var_os("ATLEX_WRITE_FUZZ_SEEDS").is_some_and(|v| v == "1");
    if write {
        fs::create_dir_all(&dir).unwrap();
    }
    for (name, bytes, expected) in frame_seeds() {
        let got = decoded_as(&bytes);
        let info = expected.ends_with("info") && got == "both info";
        assert!(
            got == expected || info,
            "{name}: expected {expected}, got {got}"
        );
        let path = dir.join(name);
        if write {
            fs::write(&path, &bytes).unwrap();
        } else {
            let committed = fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; regenerate with ATLEX_WRITE_FUZZ_SEEDS=1 cargo test -p atlex-tests --test fuzz_regressions",
                    path.display()
                )
            });
            assert!(
                committed == bytes,
                "{} is stale; regenerate with ATLEX_WRITE_FUZZ_SEEDS=1 cargo test -p atlex-tests --test fuzz_regressions",
                path.display()
            );
        }
    }
}

/// The `repo` seeds: real signed events and CARs from a reproducible in-memory repository,
/// signed with the key the `repo` check verifies with.
fn repo_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use atlex::repo::car::write_car;
    use atlex_tests::repo::{Change, MemoryRepo};
    let did = atlex::types::Did::new("did:plc:fuzzseedrepo0000000000000").unwrap();
    let mut repo = MemoryRepo::reproducible(did, checks::repo_seed_key());
    let post = |text: &str| {
        to_dag_cbor(&json!({"$type": "app.bsky.feed.post", "text": text, "createdAt": "2024-05-01T12:00:00.000Z"}))
            .unwrap()
    };
    let path = |n: u32| format!("app.bsky.feed.post/3kfuzz{n:07}");
    let first = repo
        .commit(
            &(0..12)
                .map(|n| Change::Create(path(n), post(&format!("p{n}"))))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let mixed = repo
        .commit(&[
            Change::Create(path(100), post("new")),
            Change::Update(path(3), post("edited")),
            Change::Delete(path(5)),
        ])
        .unwrap();
    let commit_frame = |event: &subscribe_repos::Commit| {
        let mut bytes = to_dag_cbor(&json!({"op": 1, "t": "#commit"})).unwrap();
        bytes.extend(to_dag_cbor(event).unwrap());
        bytes
    };
    let (head, _) = repo.head.clone().unwrap();
    // Sorted by CID: the block map's own order changes from run to run.
    let mut blocks: Vec<_> = repo.blocks.iter().collect();
    blocks.sort_by(|a, b| a.0.cmp(b.0));
    let whole = write_car(
        std::slice::from_ref(&head),
        blocks.into_iter().map(|(c, b)| (c, b.as_ref())),
    );
    vec![
        ("commit-create", commit_frame(&first)),
        ("commit-mixed", commit_frame(&mixed)),
        ("car-event", mixed.blocks.0.clone()),
        ("car-repo", whole),
    ]
}

#[test]
fn repo_seeds_are_current_and_verify() {
    let dir = fuzz_dir().join("seeds/repo");
    let write = std::env::var_os("ATLEX_WRITE_FUZZ_SEEDS").is_some_and(|v| v == "1");
    if write {
        fs::create_dir_all(&dir).unwrap();
    }
    let key = checks::repo_seed_key().public_key();
    for (name, bytes) in repo_seeds() {
        if name.starts_with("commit") {
            let Ok(Frame::Message(subscribe_repos::Message::Commit(event))) =
                decode_frame::<SubscribeRepos>(&bytes)
            else {
                panic!("{name} is not a #commit frame");
            };
            atlex::repo::verify_commit(&event, &key).unwrap();
        } else {
            atlex::repo::Car::read(bytes.clone(), &atlex::repo::CarLimits::EVENT).unwrap();
        }
        let path = dir.join(name);
        if write {
            fs::write(&path, &bytes).unwrap();
        } else {
            let committed = fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; regenerate with ATLEX_WRITE_FUZZ_SEEDS=1 cargo test -p atlex-tests --test fuzz_regressions",
                    path.display()
                )
            });
            assert!(
                committed == bytes,
                "{} is stale; regenerate with ATLEX_WRITE_FUZZ_SEEDS=1 cargo test -p atlex-tests --test fuzz_regressions",
                path.display()
            );
        }
    }
}
