//! The official atproto MST and commit-proof vectors against `atlex::repo`:
//!
//! * `mst/key_heights.json`: [`key_height`] of each key;
//! * `mst/common_prefix.json`: [`common_prefix_len`] of each pair;
//! * `mst/example_keys.txt`: a tree of all the keys walks back in order, and a lazily loaded
//!   copy finds each key and rebuilds the same root;
//! * `firehose/commit-proof-fixtures.json`: the tree of `keys` has root `rootBeforeCommit`;
//!   after `adds` and `dels` it has `rootAfterCommit` and its new nodes include every block of
//!   `blocksInProof`; and with **only** the `blocksInProof` blocks, the operations inverted on
//!   the new tree give back `rootBeforeCommit` (the proof a `#commit` event carries).
//!
//! Missing data is a skip note locally and a failure under `CI=true`.

use std::collections::HashSet;
use std::path::Path;

use atlex::repo::mst::{common_prefix_len, key_height, walk};
use atlex::repo::{Blocks, Mst, RepoError};
use atlex::types::CidLink;
use atlex_tests::data::interop_dir;
use serde::Deserialize;

fn read<T: serde::de::DeserializeOwned>(dir: &Path, path: &str) -> T {
    let path = dir.join(path);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[derive(Deserialize)]
struct Height {
    key: String,
    height: u8,
}

#[derive(Deserialize)]
struct Prefix {
    left: String,
    right: String,
    len: usize,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Proof {
    comment: String,
    leaf_value: String,
    keys: Vec<String>,
    adds: Vec<String>,
    dels: Vec<String>,
    root_before_commit: String,
    root_after_commit: String,
    blocks_in_proof: Vec<String>,
}

fn cid(text: &str) -> CidLink {
    CidLink::parse(text).unwrap()
}

fn tree(keys: &[String], value: &CidLink) -> Mst {
    let mut mst = Mst::new();
    let none = Blocks::new();
    for key in keys {
        mst.insert(key, value.clone(), &none).unwrap();
    }
    mst
}

fn blocks_of(mst: &mut Mst) -> (CidLink, Blocks) {
    let (root, nodes) = mst.root_and_nodes(&Blocks::new()).unwrap();
    let mut blocks = Blocks::new();
    for (cid, bytes) in nodes {
        assert_eq!(blocks.insert_dag_cbor(bytes), cid);
    }
    (root, blocks)
}

#[test]
fn key_heights() {
    let Some(dir) = interop_dir() else { return };
    let cases: Vec<Height> = read(&dir, "mst/key_heights.json");
    assert!(cases.len() >= 9);
    for case in cases {
        assert_eq!(
            key_height(case.key.as_bytes()),
            case.height,
            "{:?}",
            case.key
        );
    }
}

#[test]
fn common_prefixes() {
    let Some(dir) = interop_dir() else { return };
    let cases: Vec<Prefix> = read(&dir, "mst/common_prefix.json");
    assert!(cases.len() >= 13);
    for case in cases {
        assert_eq!(
            common_prefix_len(case.left.as_bytes(), case.right.as_bytes()),
            case.len,
            "{:?} / {:?}",
            case.left,
            case.right
        );
    }
}

#[test]
fn example_keys_tree() {
    let Some(dir) = interop_dir() else { return };
    let path = dir.join("mst/example_keys.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    let keys: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    assert!(keys.len() >= 150);
    let value = cid("bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454");
    // Insertion order does not matter: forwards and backwards give the same root.
    let mut forwards = tree(&keys, &value);
    let mut reversed: Vec<String> = keys.clone();
    reversed.reverse();
    let mut backwards = tree(&reversed, &value);
    let (root, blocks) = blocks_of(&mut forwards);
    assert_eq!(backwards.root(&Blocks::new()).unwrap(), root);

    let mut sorted = keys.clone();
    sorted.sort();
    let walked: Vec<String> = walk(&root, &blocks).map(|e| e.unwrap().0).collect();
    assert_eq!(walked, sorted);

    let mut lazy = Mst::load(&root, &blocks).unwrap();
    for key in &keys {
        assert_eq!(
            lazy.get(key, &blocks).unwrap(),
            Some(value.clone()),
            "{key}"
        );
    }
    assert_eq!(lazy.get("A0/000000", &blocks).unwrap(), None);
    assert_eq!(lazy.root(&blocks).unwrap(), root);

    // Removing every key one by one ends in the empty tree.
    let mut shrinking = Mst::load(&root, &blocks).unwrap();
    for key in &keys {
        assert_eq!(shrinking.remove(key, &blocks).unwrap(), Some(value.clone()));
    }
    assert_eq!(
        shrinking.root(&blocks).unwrap(),
        Mst::new().root(&Blocks::new()).unwrap()
    );
}

#[test]
fn commit_proof_fixtures() {
    let Some(dir) = interop_dir() else { return };
    let proofs: Vec<Proof> = read(&dir, "firehose/commit-proof-fixtures.json");
    assert!(proofs.len() >= 6, "expected at least 6 commit proofs");
    let mut needed_more = 0;
    for proof in &proofs {
        let name = &proof.comment;
        let value = cid(&proof.leaf_value);
        let mut before = tree(&proof.keys, &value);
        assert_eq!(
            before.root(&Blocks::new()).unwrap(),
            cid(&proof.root_before_commit),
            "{name}: root before"
        );

        let mut after = before.clone();
        for key in &proof.dels {
            assert!(
                after.remove(key, &Blocks::new()).unwrap().is_some(),
                "{name}: del {key}"
            );
        }
        for key in &proof.adds {
            assert!(
                after
                    .insert(key, value.clone(), &Blocks::new())
                    .unwrap()
                    .is_none()
            );
        }
        let (root_after, all_blocks) = blocks_of(&mut after);
        assert_eq!(
            root_after,
            cid(&proof.root_after_commit),
            "{name}: root after"
        );

        let proof_cids: HashSet<CidLink> = proof.blocks_in_proof.iter().map(|c| cid(c)).collect();
        for block in &proof_cids {
            assert!(
                all_blocks.contains(block),
                "{name}: {block} is not a node of the new tree"
            );
        }
        let mut proof_blocks = all_blocks.clone();
        proof_blocks.retain(|c| proof_cids.contains(c));

        // Invert the operations with only the proof's blocks.
        let mut inverted = Mst::load(&root_after, &proof_blocks).unwrap();
        for key in &proof.adds {
            assert_eq!(
                inverted.remove(key, &proof_blocks).unwrap(),
                Some(value.clone()),
                "{name}"
            );
        }
        for key in &proof.dels {
            assert_eq!(
                inverted.insert(key, value.clone(), &proof_blocks).unwrap(),
                None,
                "{name}"
            );
        }
        assert_eq!(
            inverted.root(&proof_blocks).unwrap(),
            cid(&proof.root_before_commit),
            "{name}: inverted root"
        );

        // With only the new root block, inverting either needs a block it does not have or
        // (when the root alone proves the change) gives the same root: never a wrong one.
        let mut root_only = all_blocks.clone();
        root_only.retain(|c| c == &root_after);
        let mut partial = Mst::load(&root_after, &root_only).unwrap();
        let result = (|| {
            for key in &proof.adds {
                partial.remove(key, &root_only)?;
            }
            for key in &proof.dels {
                partial.insert(key, value.clone(), &root_only)?;
            }
            partial.root(&root_only)
        })();
        match result {
            Err(RepoError::MissingBlock { .. }) => needed_more += 1,
            Ok(root) => assert_eq!(root, cid(&proof.root_before_commit), "{name}: root only"),
            Err(other) => panic!("{name}: root only: {other}"),
        }
    }
    assert!(needed_more > 0, "no proof needed more than the root block");
}
