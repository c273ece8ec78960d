//! `cargo xtask lexicons fetch` against the reference PDS: accounts publish lexicons as
//! `com.atproto.lexicon.schema` records, a DNS server on 127.0.0.1 answers their `_lexicon`
//! TXT records, and the fetch resolves, follows a ref into another namespace (another
//! account), verifies, writes and pins them; `cargo xtask codegen --lexicons` generates them
//! and the result compiles (trybuild); the manifest check fails when a file is edited. Hostile
//! cases: a record whose `id` is not its NSID, an oversize record, a `_lexicon` record naming
//! a DID without a PDS, a namespace without a `_lexicon` record, and a ref chain longer than
//! the bound. Every fetched record is proven by its repository's signed commit
//! (`com.atproto.sync.getRecord`); the `proofs` tests serve hostile proofs from a mock
//! authority (a commit signed by another key, an MST without the record, an MST holding
//! another CID, a proof missing an MST node, a commit by another DID) and a CID other than
//! the pinned one (`--locked`).
//!
//! Without a PDS the PDS tests are skipped with a note, except under `CI=true`, where they
//! fail; the `proofs` tests need no PDS.

mod identity_support;

use std::path::{Path, PathBuf};

use atlex_tests::pds::{Pds, TestAccount};
use atlex_tests::require_pds;
use identity_support::{DnsAnswer, DnsServer, HttpServer, Reply};
use serde_json::{Value, json};
use xtask_lexicon_fetch::{FetchOptions, MANIFEST, Manifest, Target};

const SCHEMA: &str = "com.atproto.lexicon.schema";

/// Publishes `doc` as the lexicon record of `account` (record key = its `id`, or `rkey`).
async fn publish(pds: &Pds, account: &TestAccount, rkey: &str, doc: Value) -> Value {
    let mut record = doc;
    record["$type"] = json!(SCHEMA);
    pds.procedure(
        "com.atproto.repo.putRecord",
        &json!({
            "repo": account.did,
            "collection": SCHEMA,
            "rkey": rkey,
            "record": record,
        }),
        Some(&account.access_jwt),
    )
    .await
    .unwrap_or_else(|error| panic!("putRecord {rkey}: {error}\n{}", pds.stderr_tail()))
}

fn note_doc() -> Value {
    json!({
        "lexicon": 1,
        "id": "com.example.alpha.note",
        "defs": {
            "main": {
                "type": "record",
                "key": "tid",
                "description": "A note with a tag from another namespace.",
                "record": {
                    "type": "object",
                    "required": ["text", "createdAt"],
                    "properties": {
                        "text": {"type": "string", "maxLength": 3000, "maxGraphemes": 300},
                        "tag": {"type": "ref", "ref": "org.example.beta.defs#tag"},
                        "facets": {"type": "array", "items": {"type": "ref", "ref": "app.bsky.richtext.facet"}},
                        "createdAt": {"type": "string", "format": "datetime"}
                    }
                }
            }
        }
    })
}

fn feed_doc() -> Value {
    json!({
        "lexicon": 1,
        "id": "com.example.alpha.feed",
        "defs": {
            "main": {
                "type": "query",
                "parameters": {"type": "params", "properties": {"limit": {"type": "integer", "minimum": 1, "maximum": 100}}},
                "output": {
                    "encoding": "application/json",
                    "schema": {
                        "type": "object",
                        "required": ["items"],
                        "properties": {"items": {"type": "array", "items": {"type": "ref", "ref": "#item"}}}
                    }
                }
            },
            "item": {
                "type": "object",
                "required": ["uri"],
                "properties": {
                    "uri": {"type": "string", "format": "at-uri"},
                    "tag": {"type": "ref", "ref": "org.example.beta.defs#tag"}
                }
            }
        }
    })
}

fn tag_doc() -> Value {
    json!({
        "lexicon": 1,
        "id": "org.example.beta.defs",
        "defs": {
            "tag": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string", "maxLength": 64}}
            }
        }
    })
}

/// Two accounts: alpha publishes `com.example.alpha.{note,feed}` (which refer to
/// `org.example.beta.defs`), beta publishes `org.example.beta.defs`; the DNS server answers
/// both `_lexicon` names.
struct World {
    dns: DnsServer,
    alpha: TestAccount,
    beta: TestAccount,
    /// What putRecord answered for each published NSID (`uri`, `cid`).
    published: Vec<(String, Value)>,
}

async fn world(pds: &Pds) -> World {
    let alpha = pds.create_account().await.expect("createAccount alpha");
    let beta = pds.create_account().await.expect("createAccount beta");
    let mut published = Vec::new();
    for doc in [note_doc(), feed_doc()] {
        let id = doc["id"].as_str().unwrap().to_owned();
        published.push((id.clone(), publish(pds, &alpha, &id, doc).await));
    }
    published.push((
        "org.example.beta.defs".to_owned(),
        publish(pds, &beta, "org.example.beta.defs", tag_doc()).await,
    ));
    let dns = DnsServer::start(None).await;
    dns.set(
        "_lexicon.alpha.example.com",
        DnsAnswer::Txt(vec!["v=spf1 -all".into(), format!("did={}", alpha.did)]),
    );
    dns.set(
        "_lexicon.beta.example.org",
        DnsAnswer::Txt(vec![format!("did={}", beta.did)]),
    );
    World {
        dns,
        alpha,
        beta,
        published,
    }
}

fn options(pds: &Pds, dns: &DnsServer, targets: &[&str], into: &Path) -> FetchOptions {
    let targets = targets
        .iter()
        .map(|target| Target::parse(target).unwrap())
        .collect();
    let mut options = FetchOptions::new(targets, into.to_owned());
    options.dns = Some(dns.addr);
    options.plc = Some(pds.plc_url().to_owned());
    options.known = atlex_tests::data::official_lexicons_dir();
    options
}

/// A fresh folder under cargo's per-test temporary folder (kept for trybuild, which compiles
/// after the test body returns).
fn scratch(name: &str) -> PathBuf {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lexicon_fetch");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .prefix(&format!("{name}-"))
        .tempdir_in(&base)
        .unwrap()
        .keep()
}

async fn fetch(options: &FetchOptions) -> Result<Vec<String>, xtask_lexicon_fetch::Error> {
    let mut log = Vec::new();
    let result = xtask_lexicon_fetch::fetch(options, &mut log).await;
    eprintln!("{}", String::from_utf8_lossy(&log));
    result
}

fn verify(dir: &Path) -> Result<usize, xtask_lexicon_fetch::Error> {
    xtask_lexicon_fetch::verify::verify(dir, &mut Vec::new())
}

#[tokio::test]
async fn fetch_pin_generate_compile_and_verify() {
    let pds = require_pds!();
    // The official lexicons: refs into them are not fetched, and codegen resolves them.
    if atlex_tests::data::official_lexicons_dir().is_none() {
        return;
    }
    let world = world(pds).await;
    let dir = scratch("fetched");
    let lexicons = dir.join("lexicons");

    // A pattern: every alpha record; the ref into org.example.beta is followed; the ref into
    // app.bsky (official) is not.
    let written = fetch(&options(
        pds,
        &world.dns,
        &["com.example.alpha.*"],
        &lexicons,
    ))
    .await
    .unwrap_or_else(|error| panic!("{error}\n{}", pds.stderr_tail()));
    assert_eq!(
        written,
        [
            "com.example.alpha.feed",
            "com.example.alpha.note",
            "org.example.beta.defs"
        ]
    );
    for file in [
        "com/example/alpha/feed.json",
        "com/example/alpha/note.json",
        "org/example/beta/defs.json",
    ] {
        assert!(lexicons.join(file).is_file(), "{file}");
    }
    assert!(
        !lexicons.join("app").exists(),
        "official refs are not fetched"
    );

    // The manifest pins what the PDS reported at publication.
    let manifest = Manifest::load(&lexicons).unwrap().expect("manifest");
    assert_eq!(manifest.lexicons.len(), 3);
    for (nsid, answer) in &world.published {
        let pin = manifest
            .lexicons
            .iter()
            .find(|pin| &pin.nsid == nsid)
            .unwrap_or_else(|| panic!("{nsid} not pinned"));
        let owner = if nsid.starts_with("org.") {
            &world.beta
        } else {
            &world.alpha
        };
        assert_eq!(pin.did, owner.did, "{nsid}");
        assert_eq!(pin.uri, answer["uri"].as_str().unwrap(), "{nsid}");
        assert_eq!(pin.cid, answer["cid"].as_str().unwrap(), "{nsid}");
        assert_eq!(pin.uri, format!("at://{}/{SCHEMA}/{nsid}", owner.did));
        // Proven by the account's signed commit (com.atproto.sync.getRecord).
        assert!(
            pin.rev.as_deref().is_some_and(|rev| rev.len() == 13),
            "{nsid}: {:?}",
            pin.rev
        );
    }
    assert_eq!(verify(&lexicons).unwrap(), 3);

    // A single NSID into a second folder gives the same files (and the same pins).
    let single = dir.join("single");
    fetch(&options(
        pds,
        &world.dns,
        &["com.example.alpha.note"],
        &single,
    ))
    .await
    .unwrap();
    let again = Manifest::load(&single).unwrap().unwrap();
    assert_eq!(
        again
            .lexicons
            .iter()
            .map(|pin| pin.nsid.as_str())
            .collect::<Vec<_>>(),
        ["com.example.alpha.note", "org.example.beta.defs"]
    );

    // Generate with `cargo xtask codegen --lexicons DIR --out …` (xtask's own code path).
    let generated = dir.join("generated");
    let command = xtask::cli::parse([
        "codegen".into(),
        "--lexicons".into(),
        lexicons.clone().into_os_string(),
        "--out".into(),
        generated.clone().into_os_string(),
        "--root".into(),
        "crate::generated".into(),
        "--single-file".into(),
    ])
    .unwrap();
    let mut log = Vec::new();
    xtask::run(command, &atlex_tests::data::workspace_root(), &mut log)
        .unwrap_or_else(|error| panic!("codegen: {error}\n{}", String::from_utf8_lossy(&log)));
    let lib = generated.join("lib.rs");
    assert!(lib.is_file(), "{}", String::from_utf8_lossy(&log));
    // … and compile it, using the generated types across both namespaces and atlex's.
    let main = dir.join("uses_generated.rs");
    std::fs::write(
        &main,
        format!(
            "#![deny(warnings)]\n#![allow(dead_code)]\n\
             #[path = {lib:?}]\n#[rustfmt::skip]\n#[allow(missing_docs)]\nmod generated;\n\n\
             use generated::com::example::alpha::note::Note;\n\
             use generated::org::example::beta::defs::Tag;\n\n\
             fn main() {{\n\
             \x20   let note = Note::new(\"hello\".to_owned(), atlex::types::Datetime::now())\n\
             \x20       .tag(Tag::new(\"rust\".to_owned()));\n\
             \x20   assert_eq!(<Note as atlex::types::Record>::NSID, \"com.example.alpha.note\");\n\
             \x20   let _ = note;\n\
             }}\n",
            lib = lib.display().to_string()
        ),
    )
    .unwrap();
    trybuild::TestCases::new().pass(&main);

    // Editing a pinned file fails the check, naming the file and the sha256.
    let note = lexicons.join("com/example/alpha/note.json");
    let original = std::fs::read_to_string(&note).unwrap();
    let edited = original.replace("A note with a tag", "A note with a changed tag");
    assert_ne!(edited, original);
    std::fs::write(&note, &edited).unwrap();
    let error = verify(&lexicons).unwrap_err().to_string();
    assert!(error.contains("com.example.alpha.note"), "{error}");
    assert!(error.contains("sha256"), "{error}");
    // … and so does editing the sha256 in the manifest to match: the record CID no longer does.
    let text = std::fs::read_to_string(lexicons.join(MANIFEST)).unwrap();
    let old = xtask_lexicon_fetch::sha256_hex(original.as_bytes());
    let new = xtask_lexicon_fetch::sha256_hex(edited.as_bytes());
    std::fs::write(lexicons.join(MANIFEST), text.replace(&old, &new)).unwrap();
    let error = verify(&lexicons).unwrap_err().to_string();
    assert!(!error.contains("sha256"), "{error}");
    assert!(error.contains("`cid`"), "{error}");
    // A file the manifest does not list fails it too.
    std::fs::write(&note, &original).unwrap();
    std::fs::write(lexicons.join(MANIFEST), &text).unwrap();
    assert_eq!(verify(&lexicons).unwrap(), 3);
    std::fs::write(lexicons.join("com/example/alpha/stray.json"), "{}").unwrap();
    let error = verify(&lexicons).unwrap_err().to_string();
    assert!(error.contains("stray.json: not pinned"), "{error}");
}

#[tokio::test]
async fn a_record_whose_id_is_not_its_nsid_is_refused() {
    let pds = require_pds!();
    let account = pds.create_account().await.expect("createAccount");
    let mut doc = tag_doc();
    doc["id"] = json!("net.example.bad.other");
    publish(pds, &account, "net.example.bad.wrong", doc).await;
    let dns = DnsServer::start(None).await;
    dns.set(
        "_lexicon.bad.example.net",
        DnsAnswer::Txt(vec![format!("did={}", account.did)]),
    );
    let into = scratch("wrong-id").join("out");
    let error = fetch(&options(pds, &dns, &["net.example.bad.wrong"], &into))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("net.example.bad.wrong: http://")
            && error.contains("com.atproto.repo.getRecord")
            && error.contains("`id` is `net.example.bad.other`"),
        "{error}"
    );
    assert!(!into.exists(), "nothing is written");
}

#[tokio::test]
async fn an_oversize_record_is_refused() {
    let pds = require_pds!();
    let account = pds.create_account().await.expect("createAccount");
    let mut doc = tag_doc();
    doc["id"] = json!("net.example.big.huge");
    doc["description"] = json!("x".repeat(40 * 1024));
    publish(pds, &account, "net.example.big.huge", doc).await;
    let dns = DnsServer::start(None).await;
    dns.set(
        "_lexicon.big.example.net",
        DnsAnswer::Txt(vec![format!("did={}", account.did)]),
    );
    let into = scratch("oversize").join("out");
    let mut options = options(pds, &dns, &["net.example.big.huge"], &into);
    options.max_record_bytes = 16 * 1024;
    let error = fetch(&options).await.unwrap_err().to_string();
    assert!(
        error.contains("net.example.big.huge")
            && error.contains("getRecord")
            && error.contains("16384"),
        "{error}"
    );
    assert!(!into.exists(), "nothing is written");
    // With room for it, the same record is accepted.
    options.max_record_bytes = 256 * 1024;
    fetch(&options).await.unwrap();
}

#[tokio::test]
async fn a_did_without_a_pds_and_a_namespace_without_a_record_are_named() {
    let pds = require_pds!();
    // did:web:localhost%3A<port>, whose document lists no PDS (its id needs the port, which
    // is known once the server listens).
    let id = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let slot = id.clone();
    let server = HttpServer::start(move |_request| {
        let body = json!({"id": slot.get().cloned(), "alsoKnownAs": [], "service": []});
        async move { Reply::new(200, body.to_string()) }
    })
    .await;
    let port_did = format!("did:web:localhost%3A{}", server.addr.port());
    id.set(port_did.clone()).unwrap();
    let dns = DnsServer::start(None).await;
    dns.set(
        "_lexicon.nopds.example.net",
        DnsAnswer::Txt(vec![format!("did={port_did}")]),
    );
    let into = scratch("no-pds").join("out");
    let error = fetch(&options(
        pds,
        &dns,
        &[
            "net.example.nopds.thing",
            "net.example.none.thing",
            "net.example.gone.*",
        ],
        &into,
    ))
    .await
    .unwrap_err();
    let all = error.to_string();
    assert_eq!(error.problems.len(), 3, "{all}");
    let find = |needle: &str| {
        error
            .problems
            .iter()
            .find(|problem| problem.contains(needle))
            .unwrap_or_else(|| panic!("no problem names {needle}: {all}"))
            .clone()
    };
    let no_pds = find("net.example.nopds.thing");
    assert!(
        no_pds.contains(&port_did) && no_pds.contains("no usable PDS"),
        "{all}"
    );
    let none = find("net.example.none.thing");
    assert!(
        none.contains("_lexicon.none.example.net") && none.contains("no `did=` TXT record"),
        "{all}"
    );
    let gone = find("net.example.gone.*");
    assert!(gone.contains("_lexicon.gone.example.net"), "{all}");
    assert!(!gone.contains("gone.x"), "{all}");
    assert!(!into.exists(), "nothing is written");
    assert!(server.requests() >= 1);
}

#[tokio::test]
async fn refs_beyond_the_bound_are_refused() {
    let pds = require_pds!();
    let world = world(pds).await;
    let into = scratch("depth").join("out");
    let mut options = options(pds, &world.dns, &["com.example.alpha.note"], &into);
    options.max_depth = 0;
    let error = fetch(&options).await.unwrap_err().to_string();
    assert!(
        error.contains("org.example.beta.defs") && error.contains("--max-depth 0"),
        "{error}"
    );
    options.max_depth = 1;
    options.max_docs = 1;
    let error = fetch(&options).await.unwrap_err().to_string();
    assert!(error.contains("--max-docs 1"), "{error}");
    assert!(!into.exists(), "nothing is written");
}

// ---------------------------------------------------------------------------------------------
// Record proofs against a mock authority (no PDS needed): a did:web document with a signing
// key, `getRecord` and `sync.getRecord` served from one local HTTP server, so the proof can
// be made hostile in each way the verification must catch.

mod proofs {
    use std::sync::{Arc, Mutex, OnceLock};

    use atlex::repo::car::write_car;
    use atlex::repo::{Blocks, Mst, UnsignedCommit};
    use atlex::types::crypto::{Algorithm, PrivateKey};
    use atlex::types::{CidLink, Data, Did, Tid};

    use super::*;

    const NSID: &str = "net.example.mock.thing";

    /// How the mock authority answers `com.atproto.sync.getRecord`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Proof {
        /// The real proof.
        Good,
        /// The commit is signed by a key that is not the DID document's.
        WrongSignature,
        /// The MST of the signed commit does not hold the record's key.
        RecordNotInMst,
        /// The MST holds another CID (an older version of the record) at the record's key.
        OtherCid,
        /// An MST node on the path is left out of the CAR.
        MissingNode,
        /// The commit is by another DID.
        OtherDid,
    }

    fn record(description: &str) -> Value {
        let mut doc = tag_doc();
        doc["id"] = json!(NSID);
        doc["description"] = json!(description);
        doc["$type"] = json!(SCHEMA);
        doc
    }

    fn block(value: &Value) -> (CidLink, Vec<u8>) {
        let data = Data::from_json_object(value).unwrap();
        (data.cid().unwrap(), data.to_dag_cbor().unwrap())
    }

    /// The CAR `sync.getRecord` would answer for `value` in `did`'s repository, made hostile
    /// as `proof` says.
    fn proof_car(proof: Proof, did: &str, key: &PrivateKey, value: &Value) -> Vec<u8> {
        let (record_cid, record_bytes) = block(value);
        let (old_cid, _) = block(&record("an older version"));
        let mut mst = Mst::new();
        let none = Blocks::new();
        // Enough other keys that the tree has more than one level.
        for i in 0..200 {
            let (cid, _) = block(&json!({"i": i}));
            mst.insert(&format!("app.example.item/{i:05}"), cid, &none)
                .unwrap();
        }
        let path = format!("{SCHEMA}/{NSID}");
        match proof {
            Proof::RecordNotInMst => {}
            Proof::OtherCid => {
                mst.insert(&path, old_cid, &none).unwrap();
            }
            _ => {
                mst.insert(&path, record_cid.clone(), &none).unwrap();
            }
        }
        let (root, nodes) = mst.root_and_nodes(&none).unwrap();
        let mut blocks = Blocks::new();
        for (_, bytes) in &nodes {
            blocks.insert_dag_cbor(bytes.clone());
        }
        // The proof carries every MST node (a superset of the path to the record), except for
        // MissingNode, which keeps only the root.
        if proof == Proof::MissingNode {
            blocks.retain(|cid| cid == &root);
            assert!(nodes.len() > 1, "the tree has more than one level");
        }
        blocks.insert_dag_cbor(record_bytes);
        let other_key;
        let signer = if proof == Proof::WrongSignature {
            other_key = PrivateKey::generate(Algorithm::K256).unwrap();
            &other_key
        } else {
            key
        };
        let author = if proof == Proof::OtherDid {
            "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
        } else {
            did
        };
        let commit = UnsignedCommit {
            did: Did::new(author).unwrap(),
            data: root,
            rev: Tid::now(),
            prev: None,
        }
        .sign(signer)
        .unwrap();
        let commit_cid = blocks.insert_dag_cbor(commit.to_block().unwrap());
        let list: Vec<(CidLink, Vec<u8>)> = blocks
            .iter()
            .map(|(cid, bytes)| (cid.clone(), bytes.to_vec()))
            .collect();
        write_car(
            &[commit_cid],
            list.iter().map(|(cid, bytes)| (cid, bytes.as_slice())),
        )
    }

    /// A mock authority for `NSID`: DNS `_lexicon.mock.example.net` → `did:web:localhost%3A<port>`,
    /// whose document (served by the same server) has `key` and this server as its PDS.
    struct Mock {
        server: HttpServer,
        dns: DnsServer,
        did: String,
        /// The paths asked for.
        seen: Arc<Mutex<Vec<String>>>,
        /// The record CID `getRecord` reported.
        cid: String,
    }

    async fn mock(proof: Proof) -> Mock {
        let key = PrivateKey::generate(Algorithm::K256).unwrap();
        let value = record("A mock lexicon.");
        let cid = block(&value).0.to_string();
        let did_slot = Arc::new(OnceLock::<String>::new());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (slot, log, public, answer_cid) = (
            did_slot.clone(),
            seen.clone(),
            key.public_key().to_multikey(),
            cid.clone(),
        );
        let server = HttpServer::start(move |request| {
            log.lock().unwrap().push(request.path.clone());
            let did = slot.get().cloned().unwrap_or_default();
            let pds = format!(
                "http://127.0.0.1:{}",
                did.rsplit("%3A").next().unwrap_or("")
            );
            let reply = if request.path == "/.well-known/did.json" {
                Reply::new(
                    200,
                    json!({
                        "@context": ["https://www.w3.org/ns/did/v1"],
                        "id": did,
                        "alsoKnownAs": [],
                        "verificationMethod": [{
                            "id": format!("{did}#atproto"),
                            "type": "Multikey",
                            "controller": did,
                            "publicKeyMultibase": public,
                        }],
                        "service": [{
                            "id": "#atproto_pds",
                            "type": "AtprotoPersonalDataServer",
                            "serviceEndpoint": pds,
                        }]
                    })
                    .to_string(),
                )
            } else if request
                .path
                .starts_with("/xrpc/com.atproto.repo.getRecord?")
            {
                Reply::new(
                    200,
                    json!({
                        "uri": format!("at://{did}/{SCHEMA}/{NSID}"),
                        "cid": answer_cid,
                        "value": record("A mock lexicon."),
                    })
                    .to_string(),
                )
            } else if request
                .path
                .starts_with("/xrpc/com.atproto.sync.getRecord?")
            {
                let mut reply = Reply::new(
                    200,
                    proof_car(proof, &did, &key, &record("A mock lexicon.")),
                );
                reply.headers = vec![("content-type".into(), "application/vnd.ipld.car".into())];
                reply
            } else {
                Reply::new(404, r#"{"error":"NotFound"}"#)
            };
            async move { reply }
        })
        .await;
        let did = format!("did:web:localhost%3A{}", server.addr.port());
        did_slot.set(did.clone()).unwrap();
        let dns = DnsServer::start(None).await;
        dns.set(
            "_lexicon.mock.example.net",
            DnsAnswer::Txt(vec![format!("did={did}")]),
        );
        Mock {
            server,
            dns,
            did,
            seen,
            cid,
        }
    }

    fn mock_options(mock: &Mock, into: &Path) -> FetchOptions {
        let mut options = FetchOptions::new(vec![Target::parse(NSID).unwrap()], into.to_owned());
        options.dns = Some(mock.dns.addr);
        options
    }

    #[tokio::test]
    async fn a_proven_record_is_pinned_with_its_commit() {
        let mock = mock(Proof::Good).await;
        let into = scratch("proof-good").join("out");
        let written = fetch(&mock_options(&mock, &into)).await.unwrap();
        assert_eq!(written, [NSID]);
        let manifest = Manifest::load(&into).unwrap().unwrap();
        let pin = &manifest.lexicons[0];
        assert_eq!(pin.did, mock.did);
        assert_eq!(pin.cid, mock.cid);
        assert!(pin.rev.is_some(), "the commit's rev is pinned");
        assert!(
            mock.seen
                .lock()
                .unwrap()
                .iter()
                .any(|path| path.starts_with("/xrpc/com.atproto.sync.getRecord?")),
            "the proof was asked for"
        );
        assert_eq!(verify(&into).unwrap(), 1);
        assert!(mock.server.requests() >= 3);
    }

    #[tokio::test]
    async fn hostile_proofs_are_refused_and_nothing_is_written() {
        for (proof, needles) in [
            (
                Proof::WrongSignature,
                &["signature does not verify", "did:key:"][..],
            ),
            (
                Proof::RecordNotInMst,
                &["has no `com.atproto.lexicon.schema/net.example.mock.thing`"][..],
            ),
            (
                Proof::OtherCid,
                &["the signed MST holds", "but the record's `cid` is"][..],
            ),
            (
                Proof::MissingNode,
                &["the MST does not prove", "is not in the proof"][..],
            ),
            (
                Proof::OtherDid,
                &["the proof's commit is by did:plc:ewvi7nxzyoun6zhxrhs64oiz"][..],
            ),
        ] {
            let mock = mock(proof).await;
            let into = scratch("proof-bad").join("out");
            let error = fetch(&mock_options(&mock, &into)).await.unwrap_err();
            let all = error.to_string();
            assert_eq!(error.problems.len(), 1, "{proof:?}: {all}");
            assert!(
                all.starts_with(&format!("{NSID}: http://127.0.0.1:"))
                    && all.contains("com.atproto.sync.getRecord"),
                "{proof:?}: {all}"
            );
            for needle in needles {
                assert!(all.contains(needle), "{proof:?}: {needle} in {all}");
            }
            assert!(!into.exists(), "{proof:?}: nothing is written");
        }
    }

    #[tokio::test]
    async fn a_cid_other_than_the_pinned_one_is_reported_or_refused_when_locked() {
        let mock = mock(Proof::Good).await;
        let into = scratch("proof-pinned").join("out");
        fetch(&mock_options(&mock, &into)).await.unwrap();
        // Pretend the pin is of an earlier version of the record.
        let (old, _) = block(&record("an older version"));
        let path = into.join(MANIFEST);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace(&mock.cid, &old.to_string())).unwrap();

        let mut options = mock_options(&mock, &into);
        options.locked = true;
        let error = fetch(&options).await.unwrap_err().to_string();
        assert!(
            error.contains(&format!("the record's CID is {}", mock.cid))
                && error.contains(&format!("pins {old}"))
                && error.contains("--locked"),
            "{error}"
        );
        // The manifest is untouched.
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains(&old.to_string())
        );

        // Without --locked, the new CID is pinned and the change is reported.
        options.locked = false;
        let mut log = Vec::new();
        xtask_lexicon_fetch::fetch(&options, &mut log)
            .await
            .unwrap();
        let log = String::from_utf8(log).unwrap();
        assert!(log.contains("changed since it was pinned"), "{log}");
        assert_eq!(
            Manifest::load(&into).unwrap().unwrap().lexicons[0].cid,
            mock.cid
        );
    }
}
