//! A whole repository from the reference PDS (`tests/pds/`): records created, updated and
//! deleted through XRPC come back from `com.atproto.sync.getRepo` as a CAR that
//! `atlex::repo::Repo` reads, walks in key order with typed records, and whose commit
//! signature verifies with the key from the account's DID document (resolved through the
//! PDS's PLC directory). Without a PDS the test is skipped with a note, except under
//! `CI=true`, where it fails.

use atlex::identity::{HandleMethod, IdentityResolver};
use atlex::repo::{AnyRecord, Repo};
use atlex::types::{AtIdentifier, Did};
use atlex_tests::require_pds;
use serde_json::json;

#[tokio::test]
async fn get_repo_walks_and_verifies() {
    let pds = require_pds!();
    let account = pds.create_account().await.expect("createAccount");
    let auth = Some(account.access_jwt.as_str());
    let mut rkeys = Vec::new();
    for n in 0..5 {
        let out = pds
            .procedure(
                "com.atproto.repo.createRecord",
                &json!({
                    "repo": account.did, "collection": "app.bsky.feed.post",
                    "record": {"$type": "app.bsky.feed.post", "text": format!("repo walk {n}"),
                               "createdAt": "2024-05-01T12:00:00.000Z"},
                }),
                auth,
            )
            .await
            .unwrap_or_else(|e| panic!("createRecord: {e}\n{}", pds.stderr_tail()));
        let uri = out["uri"].as_str().unwrap().to_owned();
        rkeys.push(uri.rsplit('/').next().unwrap().to_owned());
    }
    pds.procedure(
        "com.atproto.repo.putRecord",
        &json!({
            "repo": account.did, "collection": "app.bsky.feed.post", "rkey": rkeys[1],
            "record": {"$type": "app.bsky.feed.post", "text": "edited", "createdAt": "2024-05-01T12:00:00.000Z"},
        }),
        auth,
    )
    .await
    .expect("putRecord");
    pds.procedure(
        "com.atproto.repo.deleteRecord",
        &json!({"repo": account.did, "collection": "app.bsky.feed.post", "rkey": rkeys[2]}),
        auth,
    )
    .await
    .expect("deleteRecord");
    pds.procedure(
        "com.atproto.repo.createRecord",
        &json!({
            "repo": account.did, "collection": "com.example.repodata.thing", "validate": false,
            "record": {"$type": "com.example.repodata.thing", "n": 42},
        }),
        auth,
    )
    .await
    .expect("createRecord of an unknown collection");

    let response = pds
        .http()
        .get(pds.xrpc_url("com.atproto.sync.getRepo"))
        .query(&[("did", account.did.as_str())])
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "getRepo: {}",
        response.status()
    );
    let car = response.bytes().await.unwrap();
    let repo = Repo::from_car(car).unwrap();
    assert_eq!(repo.commit().did().as_str(), account.did);

    let latest = pds
        .query(
            "com.atproto.sync.getLatestCommit",
            &[("did", &account.did)],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        latest["cid"].as_str().unwrap(),
        repo.commit_cid().to_string()
    );
    assert_eq!(
        latest["rev"].as_str().unwrap(),
        repo.commit().rev().as_str()
    );

    // The key from the DID document, through the dev PLC directory.
    let resolver = IdentityResolver::builder()
        .plc_url(pds.plc_url())
        .handle_methods(vec![HandleMethod::Xrpc(
            reqwest::Url::parse(pds.url()).unwrap(),
        )])
        .build()
        .unwrap();
    let did = Did::new(account.did.as_str()).unwrap();
    let identity = resolver
        .resolve(&AtIdentifier::new(did.as_str()).unwrap())
        .await
        .unwrap();
    let key = identity
        .signing_key
        .expect("the DID document has an #atproto key");
    repo.verify_signature(&key).unwrap();
    let other = atlex::types::crypto::PrivateKey::generate(key.algorithm()).unwrap();
    assert!(repo.verify_signature(&other.public_key()).is_err());

    let records: Vec<_> = repo.records().collect::<Result<_, _>>().unwrap();
    let posts: Vec<(String, String)> = records
        .iter()
        .filter_map(|r| match &r.record {
            AnyRecord::Post(post) => Some((r.rkey.as_str().to_owned(), post.text.clone())),
            _ => None,
        })
        .collect();
    let mut expected: Vec<(String, String)> = vec![
        (rkeys[0].clone(), "repo walk 0".into()),
        (rkeys[1].clone(), "edited".into()),
        (rkeys[3].clone(), "repo walk 3".into()),
        (rkeys[4].clone(), "repo walk 4".into()),
    ];
    expected.sort();
    assert_eq!(posts, expected);
    let unknown: Vec<_> = records
        .iter()
        .filter_map(|r| match &r.record {
            AnyRecord::Unknown(u) => Some(u),
            _ => None,
        })
        .collect();
    assert!(
        unknown
            .iter()
            .any(|u| u.collection.as_str() == "com.example.repodata.thing"
                && u.data.get("n").and_then(|n| n.as_integer()) == Some(42)),
        "{unknown:?}"
    );
    // Each record's CID is the hash of its bytes, and getRecord agrees.
    let first = &records[0];
    let got = pds
        .query(
            "com.atproto.repo.getRecord",
            &[
                ("repo", &account.did),
                ("collection", first.collection.as_str()),
                ("rkey", first.rkey.as_str()),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(got["cid"].as_str().unwrap(), first.cid.to_string());
}
