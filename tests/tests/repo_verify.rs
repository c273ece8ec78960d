//! `#commit` events and repository CARs, valid and hostile, against `atlex::repo`.
//!
//! Valid events (made by `atlex_tests::repo::MemoryRepo`, which signs real commits) verify,
//! with typed records; every way of breaking one is a typed error, never a panic: truncated,
//! oversized, bad CBOR, a flipped byte, a wrong signature, lying roots, an MST that does not
//! prove the operations, a wrong `prevData`. A whole repository exported as a CAR walks back.

use atlex::app::bsky::feed::post::Post;
use atlex::com::atproto::sync::subscribe_repos::Commit;
use atlex::repo::car::write_car;
use atlex::repo::{
    Action, AnyRecord, Car, CarLimits, Repo, RepoError, decode_commit, verify_commit,
};
use atlex::types::crypto::{Algorithm, PrivateKey};
use atlex::types::{Bytes, CidLink, Datetime, Did, Nullable};
use atlex_tests::repo::{Change, MemoryRepo};

fn post(text: &str) -> Vec<u8> {
    let post = Post::new(text, Datetime::new("2024-05-01T12:00:00.000Z").unwrap());
    atlex::types::data::to_dag_cbor(&post).unwrap()
}

fn repo() -> MemoryRepo {
    let key = PrivateKey::generate(Algorithm::K256).unwrap();
    MemoryRepo::new(Did::new("did:plc:repodatatest0000000000").unwrap(), key)
}

fn path(n: usize) -> String {
    format!("app.bsky.feed.post/3k{n:011}")
}

/// A repository of 300 posts, then an event that creates, updates and deletes.
fn setup() -> (MemoryRepo, Commit) {
    let mut repo = repo();
    for chunk in (0..300).collect::<Vec<_>>().chunks(50) {
        let changes: Vec<Change> = chunk
            .iter()
            .map(|n| Change::Create(path(*n), post(&format!("post {n}"))))
            .collect();
        repo.commit(&changes).unwrap();
    }
    let event = repo
        .commit(&[
            Change::Create(path(1000), post("new")),
            Change::Update(path(7), post("edited")),
            Change::Delete(path(150)),
            Change::Create("com.example.thing/abc".into(), {
                atlex::types::data::to_dag_cbor(
                    &serde_json::json!({"$type": "com.example.thing", "n": 1}),
                )
                .unwrap()
            }),
        ])
        .unwrap();
    (repo, event)
}

#[test]
fn valid_event_verifies_with_typed_records() {
    let (repo, event) = setup();
    let verified = verify_commit(&event, &repo.key.public_key()).unwrap();
    assert_eq!(verified.ops.len(), 4);
    assert_eq!(verified.ops[0].action, Action::Create);
    match &verified.ops[0].record {
        Some(AnyRecord::Post(post)) => assert_eq!(post.text, "new"),
        other => panic!("not a typed post: {other:?}"),
    }
    assert_eq!(verified.ops[1].action, Action::Update);
    assert!(matches!(&verified.ops[1].record, Some(AnyRecord::Post(p)) if p.text == "edited"));
    assert_eq!(verified.ops[2].action, Action::Delete);
    assert!(verified.ops[2].record.is_none());
    match &verified.ops[3].record {
        Some(AnyRecord::Unknown(unknown)) => {
            assert_eq!(unknown.collection.as_str(), "com.example.thing");
            assert!(unknown.error.is_none());
        }
        other => panic!("not untyped: {other:?}"),
    }
    let post: Post = verified.ops[0].decode::<Post>().unwrap().unwrap();
    assert_eq!(post.text, "new");
    // Decoding alone gives the same records.
    let decoded = decode_commit(&event).unwrap();
    assert_eq!(decoded.ops, verified.ops);
    // The proof is small: a few nodes, not the whole tree.
    let car = Car::read(event.blocks.0.clone(), &CarLimits::EVENT).unwrap();
    assert!(car.blocks().len() < 20, "{} blocks", car.blocks().len());
}

fn with_blocks(event: &Commit, blocks: Vec<u8>) -> Commit {
    let mut event = event.clone();
    event.blocks = Bytes::new(blocks);
    event
}

#[test]
fn truncated_blocks_are_errors() {
    let (repo, event) = setup();
    let key = repo.key.public_key();
    let bytes = event.blocks.0.clone();
    for len in 0..bytes.len() {
        let result = verify_commit(&with_blocks(&event, bytes[..len].to_vec()), &key);
        assert!(result.is_err(), "a CAR cut at {len} verified");
    }
}

#[test]
fn every_flipped_byte_is_an_error() {
    let (repo, event) = setup();
    let key = repo.key.public_key();
    let bytes = event.blocks.0.clone();
    for at in 0..bytes.len() {
        let mut broken = bytes.clone();
        broken[at] ^= 0x01;
        let result = verify_commit(&with_blocks(&event, broken), &key);
        assert!(result.is_err(), "a CAR with byte {at} flipped verified");
    }
}

#[test]
fn oversized_inputs_are_refused_before_reading() {
    // A header length of 2^62.
    let huge = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40];
    assert!(matches!(
        Car::read(huge.to_vec(), &CarLimits::EVENT),
        Err(RepoError::TooLarge { .. })
    ));
    // A 10-byte varint.
    let long = [0xff; 10];
    assert!(matches!(
        Car::read(long.to_vec(), &CarLimits::EVENT),
        Err(RepoError::TooLarge { .. })
    ));
    // A whole CAR over the limit.
    let big = vec![0u8; (4 << 20) + 1];
    assert!(matches!(
        Car::read(big, &CarLimits::EVENT),
        Err(RepoError::TooLarge { .. })
    ));
    // A block over the limit.
    let (_, event) = setup();
    let limits = CarLimits {
        max_block_size: 100,
        ..CarLimits::EVENT
    };
    assert!(matches!(
        Car::read(event.blocks.0.clone(), &limits),
        Err(RepoError::TooLarge { .. })
    ));
    let limits = CarLimits {
        max_blocks: 2,
        ..CarLimits::EVENT
    };
    assert!(matches!(
        Car::read(event.blocks.0.clone(), &limits),
        Err(RepoError::TooLarge { .. })
    ));
    // Too many operations.
    let mut many = event.clone();
    many.ops = vec![event.ops[0].clone(); 201];
    assert!(matches!(
        decode_commit(&many),
        Err(RepoError::TooLarge { .. })
    ));
}

#[test]
fn bad_cbor_is_an_error() {
    let (repo, event) = setup();
    let key = repo.key.public_key();
    // A record block that is not CBOR, under its own (correct) CID.
    let garbage = vec![0xff, 0x00, 0x13];
    let garbage_cid = CidLink::for_dag_cbor(&garbage);
    let car = Car::read(event.blocks.0.clone(), &CarLimits::EVENT).unwrap();
    let mut blocks: Vec<(CidLink, Vec<u8>)> = car
        .blocks()
        .iter()
        .map(|(c, b)| (c.clone(), b.to_vec()))
        .collect();
    blocks.push((garbage_cid.clone(), garbage));
    let car_bytes = write_car(car.roots(), blocks.iter().map(|(c, b)| (c, b.as_slice())));
    let mut broken = with_blocks(&event, car_bytes);
    broken.ops[0].cid = Nullable::Value(garbage_cid);
    assert!(matches!(
        decode_commit(&broken),
        Err(RepoError::BadBlock { .. })
    ));
    assert!(verify_commit(&broken, &key).is_err());
    // A header that is not CBOR.
    let header = [0x02, 0xff, 0xff];
    assert!(matches!(
        Car::read(header.to_vec(), &CarLimits::EVENT),
        Err(RepoError::BadHeader(_))
    ));
}

#[test]
fn wrong_signature_is_an_error() {
    let (repo, event) = setup();
    let other = PrivateKey::generate(Algorithm::K256).unwrap();
    assert!(matches!(
        verify_commit(&event, &other.public_key()),
        Err(RepoError::Signature(_))
    ));
    // A commit re-signed by another key, under its own CID.
    let car = Car::read(event.blocks.0.clone(), &CarLimits::EVENT).unwrap();
    let commit = atlex::repo::SignedCommit::from_blocks(car.root(), car.blocks()).unwrap();
    let forged = commit
        .commit
        .clone()
        .sign(&other)
        .unwrap()
        .to_block()
        .unwrap();
    let forged_cid = CidLink::for_dag_cbor(&forged);
    let mut blocks: Vec<(CidLink, Vec<u8>)> = car
        .blocks()
        .iter()
        .filter(|(c, _)| *c != car.root())
        .map(|(c, b)| (c.clone(), b.to_vec()))
        .collect();
    blocks.push((forged_cid.clone(), forged));
    let bytes = write_car(
        std::slice::from_ref(&forged_cid),
        blocks.iter().map(|(c, b)| (c, b.as_slice())),
    );
    let mut event = with_blocks(&event, bytes);
    event.commit = forged_cid;
    assert!(matches!(
        verify_commit(&event, &repo.key.public_key()),
        Err(RepoError::Signature(_))
    ));
}

#[test]
fn lying_roots_are_errors() {
    let (repo, event) = setup();
    let key = repo.key.public_key();
    let car = Car::read(event.blocks.0.clone(), &CarLimits::EVENT).unwrap();
    let blocks: Vec<(CidLink, Vec<u8>)> = car
        .blocks()
        .iter()
        .map(|(c, b)| (c.clone(), b.to_vec()))
        .collect();
    // A root that is not among the blocks.
    let absent = CidLink::for_dag_cbor(b"\xa0");
    let bytes = write_car(&[absent], blocks.iter().map(|(c, b)| (c, b.as_slice())));
    assert!(matches!(
        verify_commit(&with_blocks(&event, bytes), &key),
        Err(RepoError::LyingRoots(_))
    ));
    // A root that is a block, but not the event's commit.
    let record = event.ops[0].cid.clone().into_option().unwrap();
    let bytes = write_car(&[record], blocks.iter().map(|(c, b)| (c, b.as_slice())));
    assert!(matches!(
        verify_commit(&with_blocks(&event, bytes), &key),
        Err(RepoError::LyingRoots(_))
    ));
}

#[test]
fn an_mst_that_does_not_prove_the_ops_is_an_error() {
    let (repo, event) = setup();
    let key = repo.key.public_key();
    // An op whose CID is not what the MST holds.
    let mut wrong_cid = event.clone();
    wrong_cid.ops[1].cid = wrong_cid.ops[0].cid.clone();
    assert!(matches!(
        verify_commit(&wrong_cid, &key),
        Err(RepoError::UnprovenOp { .. })
    ));
    // A delete of a key the MST still holds.
    let mut not_deleted = event.clone();
    not_deleted.ops[2].path = path(151);
    assert!(matches!(
        verify_commit(&not_deleted, &key),
        Err(RepoError::UnprovenOp { .. })
    ));
    // An op left out: the inversion does not reach prevData.
    let mut missing_op = event.clone();
    missing_op.ops.remove(2);
    assert!(matches!(
        verify_commit(&missing_op, &key),
        Err(RepoError::UnprovenOp { .. })
    ));
    // A wrong prevData.
    let mut wrong_prev = event.clone();
    wrong_prev.prev_data = Some(CidLink::for_dag_cbor(b"\xa0"));
    assert!(matches!(
        verify_commit(&wrong_prev, &key),
        Err(RepoError::UnprovenOp { .. })
    ));
    // An update or delete without `prev` cannot be inverted.
    let mut no_prev = event.clone();
    no_prev.ops[1].prev = None;
    assert!(matches!(
        verify_commit(&no_prev, &key),
        Err(RepoError::UnprovenOp { .. })
    ));
    // The MST nodes left out: the proof is incomplete.
    let car = Car::read(event.blocks.0.clone(), &CarLimits::EVENT).unwrap();
    let commit = atlex::repo::SignedCommit::from_blocks(car.root(), car.blocks()).unwrap();
    let keep: Vec<(CidLink, Vec<u8>)> = car
        .blocks()
        .iter()
        .filter(|(c, _)| *c == car.root() || *c == commit.data() || is_record(&event, c))
        .map(|(c, b)| (c.clone(), b.to_vec()))
        .collect();
    let bytes = write_car(car.roots(), keep.iter().map(|(c, b)| (c, b.as_slice())));
    assert!(matches!(
        verify_commit(&with_blocks(&event, bytes), &key),
        Err(RepoError::UnprovenOp { .. })
    ));
    // did and rev must match the commit.
    let mut other_did = event.clone();
    other_did.repo = Did::new("did:plc:someoneelse000000000000").unwrap();
    assert!(matches!(
        verify_commit(&other_did, &key),
        Err(RepoError::InvalidCommit(_))
    ));
    // tooBig events are refused.
    let mut too_big = event.clone();
    too_big.too_big = true;
    assert_eq!(verify_commit(&too_big, &key), Err(RepoError::TooBig));
}

fn is_record(event: &Commit, cid: &CidLink) -> bool {
    event
        .ops
        .iter()
        .any(|op| op.cid.clone().into_option().as_ref() == Some(cid))
}

#[test]
fn whole_repo_exports_and_walks() {
    let (memory, _) = setup();
    let (head, _) = memory.head.clone().unwrap();
    let car = write_car(
        std::slice::from_ref(&head),
        memory.blocks.iter().map(|(c, b)| (c, b.as_ref())),
    );
    let repo = Repo::from_car(car).unwrap();
    repo.verify_signature(&memory.key.public_key()).unwrap();
    let records: Vec<_> = repo.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(records.len(), 301); // 300, two created, one deleted
    let keys: Vec<String> = records
        .iter()
        .map(|r| format!("{}/{}", r.collection.as_str(), r.rkey.as_str()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert!(
        records
            .iter()
            .any(|r| matches!(&r.record, AnyRecord::Post(p) if p.text == "edited"))
    );
    assert!(records.iter().all(|r| r.rkey.as_str() != "3k00000000150"));
    // A repository CAR with its MST nodes missing fails the walk, naming the block.
    let commit_only = write_car(
        std::slice::from_ref(&head),
        [(&head, memory.blocks.get(&head).unwrap().as_ref())],
    );
    let repo = Repo::from_car(commit_only).unwrap();
    assert!(matches!(
        repo.records().next(),
        Some(Err(RepoError::MissingBlock { .. }))
    ));
}
