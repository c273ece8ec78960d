//! The firehose of the reference PDS (`com.atproto.sync.subscribeRepos`): records created,
//! updated and deleted arrive as typed events in order, and a consumer restarted from its saved
//! cursor resumes without loss or duplicates.
//!
//! Without a PDS the test is skipped with a note, except under `CI=true`, where it fails.

use std::sync::Arc;

use atlex::app::bsky::feed::post::Post;
use atlex::auth::{MemoryStore, PasswordSession};
use atlex::com::atproto::sync::subscribe_repos::{self, Message, SubscribeRepos};
use atlex::stream::{
    Consumer, ConsumerEvent, ConsumerOptions, Firehose, MemoryCursor, RecordAction, RepoEvent,
};
use atlex::types::{Datetime, Did, RecordKey};
use atlex::xrpc::Client;
use atlex_tests::require_pds;
use futures::StreamExt;

/// A commit of `did`: its seq and its post operations (action, rkey).
fn post_ops(message: &Message, did: &Did) -> Option<(i64, Vec<(RecordAction, String)>)> {
    let Message::Commit(commit) = message else {
        return None;
    };
    if &commit.repo != did {
        return None;
    }
    let ops = commit
        .ops
        .iter()
        .filter(|op| op.path.starts_with("app.bsky.feed.post/"))
        .map(|op| (RecordAction::from(&op.action), op.path.clone()))
        .collect::<Vec<_>>();
    (!ops.is_empty()).then_some((commit.seq, ops))
}

#[tokio::test]
async fn records_arrive_in_order_and_a_restart_resumes_from_the_cursor() {
    let pds = require_pds!();
    let account = pds.create_account().await.expect("createAccount");
    let did = Did::new(account.did.clone()).unwrap();
    let client = PasswordSession::login(
        pds.url(),
        &account.handle,
        account.password.clone(),
        Arc::new(MemoryStore::new()),
    )
    .await
    .expect("login");

    // Create, update and delete one post.
    let now = Datetime::now();
    let (created, client) = client
        .create_record(&Post::new("first version", now.clone()))
        .await
        .expect("createRecord");
    let rkey = RecordKey::new(created.uri.as_str().rsplit('/').next().unwrap()).unwrap();
    let (_, client) = client
        .put_record(rkey.clone(), &Post::new("second version", now))
        .await
        .expect("putRecord");
    let (_, _client) = client
        .delete_record::<Post>(rkey.clone())
        .await
        .expect("deleteRecord");
    let path = format!("app.bsky.feed.post/{}", rkey.as_str());
    // The account's signing key, from its DID document in the PDS's PLC directory.
    let resolver = atlex::identity::IdentityResolver::builder()
        .plc_url(pds.plc_url())
        .allow_http(true)
        .build()
        .unwrap();
    let key = resolver
        .resolve_did(&did)
        .await
        .expect("resolve the DID")
        .signing_key()
        .expect("the signing key");
    let mut texts = Vec::new();

    // Replay the PDS's stream from the start (its data lives only as long as this test run).
    let anonymous = Client::anonymous(pds.url()).unwrap();
    let mut stream = anonymous
        .sync()
        .subscribe_repos(subscribe_repos::Params::new().cursor(0))
        .await
        .expect("subscribeRepos");
    let mut seen = Vec::new();
    let mut all_seqs = Vec::new();
    while seen.len() < 3 {
        let message = stream
            .next()
            .await
            .expect("the stream ended early")
            .unwrap_or_else(|e| panic!("{e}\n{}", pds.stderr_tail()));
        if let Some(seq) = atlex::stream::Sequenced::seq(&message) {
            if let Some(&last) = all_seqs.last() {
                assert!(seq > last, "seq {seq} after {last}");
            }
            all_seqs.push(seq);
        }
        if let Some((seq, ops)) = post_ops(&message, &did) {
            for (action, op_path) in ops {
                assert_eq!(op_path, path);
                seen.push((seq, action));
            }
            // Verified: CAR roots, signature, every operation proven by the MST.
            let event = RepoEvent::from_firehose(message, Some(&key))
                .unwrap_or_else(|e| panic!("commit {seq} does not verify: {e}"));
            let RepoEvent::Commit(commit) = event else {
                panic!("expected a commit")
            };
            assert!(commit.verified);
            for op in &commit.ops {
                match op.record_as::<Post>() {
                    Some(post) => texts.push(Some(post.expect("a typed Post").text)),
                    None => texts.push(None),
                }
            }
        }
    }
    assert_eq!(
        texts,
        [
            Some("first version".to_owned()),
            Some("second version".to_owned()),
            None
        ]
    );
    let actions: Vec<_> = seen.iter().map(|(_, a)| a.clone()).collect();
    assert_eq!(
        actions,
        [
            RecordAction::Create,
            RecordAction::Update,
            RecordAction::Delete
        ]
    );
    let (create_seq, update_seq, delete_seq) = (seen[0].0, seen[1].0, seen[2].0);
    drop(stream);

    // A consumer that stops right after the create: its cursor store holds the create's seq
    // once it asks for the next item (the update, which it never finishes).
    let store = MemoryCursor::new(Some(create_seq - 1));
    let firehose = || Firehose::<SubscribeRepos>::new(&anonymous, subscribe_repos::Params::new());
    let mut consumer = Consumer::start(
        firehose(),
        Arc::new(store.clone()),
        ConsumerOptions::default(),
    )
    .unwrap();
    let first = next_message(&mut consumer).await;
    assert_eq!(first.0, create_seq);
    let second = next_message(&mut consumer).await;
    assert_eq!(second.0, create_seq + 1);
    drop(consumer);
    assert_eq!(store.get(), Some(create_seq));

    // Restarted from the store: everything after the create, once, in order, up to the delete.
    let mut consumer = Consumer::start(
        firehose(),
        Arc::new(store.clone()),
        ConsumerOptions::default(),
    )
    .unwrap();
    let mut resumed = Vec::new();
    loop {
        let (seq, message) = next_message(&mut consumer).await;
        resumed.push(seq);
        if let Some((_, ops)) = post_ops(&message, &did)
            && ops.iter().any(|(a, _)| *a == RecordAction::Delete)
        {
            break;
        }
    }
    let expected: Vec<i64> = all_seqs
        .iter()
        .copied()
        .filter(|&s| s > create_seq && s <= delete_seq)
        .collect();
    assert_eq!(resumed, expected, "no loss, no duplicates");
    assert!(resumed.contains(&update_seq));
}

async fn next_message(consumer: &mut Consumer<Firehose<SubscribeRepos>>) -> (i64, Message) {
    loop {
        match consumer.next().await.expect("the consumer ended") {
            Ok(ConsumerEvent::Message {
                cursor: Some(seq),
                message,
            }) => return (seq, message),
            Ok(ConsumerEvent::Message { cursor: None, .. }) => {}
            Ok(other) => panic!("unexpected {other:?}"),
            Err(error) => panic!("consumer error: {error}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The recorded stream (`tests/fixtures/firehose/recorded.bin.zst`, read by the `firehose`
// benchmark)

/// Checks the committed recording: every frame decodes, in `seq` order, every `#commit`
/// verifies (signature, MST proof with inversion to `prevData`) with the key recorded for its
/// account, and the records come out typed. With `ATLEX_RECORD=1` the recording is first made
/// again from the reference PDS (and written over the committed file); otherwise no PDS is
/// needed.
#[tokio::test]
async fn recorded_stream_decodes_and_verifies_in_order() {
    let path = atlex_tests::firehose::fixture_path();
    if std::env::var("ATLEX_RECORD").is_ok_and(|v| v == "1") {
        let pds = require_pds!();
        let recording = record::record(pds).await;
        recording.write(&path).unwrap();
        eprintln!(
            "recorded {} frames ({} bytes) to {}",
            recording.frames.len(),
            recording.frame_bytes(),
            path.display()
        );
    }
    let recording = atlex_tests::firehose::Recording::read(&path).unwrap();
    check_recording(&recording);
}

#[derive(Debug, Default)]
struct Tally {
    commits: usize,
    multi_op_commits: usize,
    identity: usize,
    account: usize,
    sync: usize,
    creates: usize,
    updates: usize,
    deletes: usize,
    by_collection: std::collections::BTreeMap<String, usize>,
    posts_with_facets: usize,
    posts_with_embeds: usize,
    replies: usize,
    profile_updates: usize,
}

fn check_recording(recording: &atlex_tests::firehose::Recording) {
    use atlex::repo::{Action, AnyRecord, verify_commit, verify_sync};
    use atlex::xrpc::{Frame, decode_frame};

    let mut tally = Tally::default();
    let mut last_seq = None;
    let other_key = |did: &str| {
        recording
            .keys
            .iter()
            .find(|(d, _)| d != did)
            .and_then(|(d, _)| recording.key(d))
    };
    for (index, frame) in recording.frames.iter().enumerate() {
        let message = match decode_frame::<SubscribeRepos>(frame) {
            Ok(Frame::Message(message)) => message,
            Ok(Frame::Error(error)) => panic!("frame {index} is an error frame: {error:?}"),
            Err(error) => panic!("frame {index} does not decode: {error}"),
        };
        let seq = atlex::stream::Sequenced::seq(&message)
            .unwrap_or_else(|| panic!("frame {index} has no seq"));
        if let Some(last) = last_seq {
            assert!(seq > last, "frame {index}: seq {seq} after {last}");
        }
        last_seq = Some(seq);
        match message {
            Message::Commit(event) => {
                let key = recording
                    .key(event.repo.as_str())
                    .unwrap_or_else(|| panic!("no key recorded for {}", event.repo));
                // Only a repository's first commit (no operations) has no previous tree.
                assert!(
                    event.prev_data.is_some() || event.ops.is_empty(),
                    "commit {seq} has no prevData: the inversion would not be checked"
                );
                let verified = verify_commit(&event, &key)
                    .unwrap_or_else(|e| panic!("commit {seq} does not verify: {e}"));
                if !event.ops.is_empty()
                    && let Some(other) = other_key(event.repo.as_str())
                {
                    assert!(
                        verify_commit(&event, &other).is_err(),
                        "commit {seq} verifies with another account's key"
                    );
                }
                tally.commits += 1;
                if verified.ops.len() > 1 {
                    tally.multi_op_commits += 1;
                }
                for op in &verified.ops {
                    *tally
                        .by_collection
                        .entry(op.collection.as_str().to_owned())
                        .or_default() += 1;
                    match op.action {
                        Action::Create => tally.creates += 1,
                        Action::Update => tally.updates += 1,
                        Action::Delete => tally.deletes += 1,
                    }
                    let Some(record) = &op.record else {
                        assert_eq!(op.action, Action::Delete);
                        continue;
                    };
                    match record {
                        AnyRecord::Post(post) => {
                            tally.posts_with_facets += usize::from(post.facets.is_some());
                            tally.posts_with_embeds += usize::from(post.embed.is_some());
                            tally.replies += usize::from(post.reply.is_some());
                        }
                        AnyRecord::Profile(_) => {
                            tally.profile_updates += usize::from(op.action == Action::Update);
                        }
                        AnyRecord::Like(_) | AnyRecord::Follow(_) | AnyRecord::Repost(_) => {}
                        AnyRecord::Unknown(unknown) => panic!(
                            "commit {seq}: a record of {} is not typed: {:?}",
                            unknown.collection, unknown.error
                        ),
                        other => panic!("commit {seq}: unexpected {}", other.collection()),
                    }
                }
            }
            Message::Identity(_) => tally.identity += 1,
            Message::Account(_) => tally.account += 1,
            Message::Sync(event) => {
                let key = recording.key(event.did.as_str()).unwrap();
                verify_sync(&event, &key)
                    .unwrap_or_else(|e| panic!("sync {seq} does not verify: {e}"));
                tally.sync += 1;
            }
            other => panic!("frame {index}: unexpected message {other:?}"),
        }
    }
    eprintln!(
        "recording: {} frames, {} bytes: {tally:#?}",
        recording.frames.len(),
        recording.frame_bytes()
    );
    let count = |collection: &str| tally.by_collection.get(collection).copied().unwrap_or(0);
    assert!(tally.commits >= 300, "{} commits", tally.commits);
    assert!(tally.multi_op_commits >= 2);
    assert!(tally.identity >= 3 && tally.account >= 3, "{tally:?}");
    assert!(count("app.bsky.feed.post") >= 100);
    assert!(count("app.bsky.feed.like") >= 50);
    assert!(count("app.bsky.feed.repost") >= 10);
    assert!(count("app.bsky.graph.follow") >= 6);
    assert!(tally.profile_updates >= 3);
    assert!(tally.deletes >= 20 && tally.updates >= 3);
    assert!(tally.posts_with_facets >= 10 && tally.posts_with_embeds >= 10);
    assert!(tally.replies >= 10);
}

/// Making the recording (only with `ATLEX_RECORD=1`).
mod record {
    use std::collections::HashSet;

    use atlex::com::atproto::sync::subscribe_repos::{self, Message, SubscribeRepos};
    use atlex::net::ws::{WsConnection, WsMessage, WsOptions};
    use atlex::xrpc::{Frame, decode_frame};
    use atlex_tests::firehose::Recording;
    use atlex_tests::pds::{Pds, TestAccount};
    use serde_json::{Value, json};

    /// Accounts in the recording.
    const ACCOUNTS: usize = 3;
    /// Posts per account.
    const POSTS: usize = 60;

    /// A tiny valid PNG (1×1, transparent) for the image embeds.
    const PNG: &[u8] = &[
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f,
        0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00,
        0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];

    const TEXTS: &[&str] = &[
        "Morning walk by the river, the fog was still sitting on the water",
        "Anyone else think the new release notes are unusually readable? Nice work",
        "Trying out a sourdough recipe with 80% hydration. Wish me luck 🍞",
        "Réunion à 14h, n'oubliez pas vos notes — merci !",
        "Three things I learned this week about Merkle search trees",
        "今日はいい天気ですね。散歩に行きましょう",
        "hot take: tabs vs spaces is the wrong question",
        "Reading list for the weekend: two papers on CRDTs and a novel",
    ];

    struct Author {
        account: TestAccount,
        posts: Vec<(String, String)>,
    }

    fn rkey(uri: &str) -> String {
        uri.rsplit('/').next().unwrap().to_owned()
    }

    async fn call(pds: &Pds, nsid: &str, body: Value, auth: &TestAccount) -> Value {
        pds.procedure(nsid, &body, Some(&auth.access_jwt))
            .await
            .unwrap_or_else(|e| panic!("{nsid}: {e}\n{}", pds.stderr_tail()))
    }

    async fn create(pds: &Pds, author: &TestAccount, collection: &str, record: Value) -> Value {
        call(
            pds,
            "com.atproto.repo.createRecord",
            json!({"repo": author.did, "collection": collection, "record": record}),
            author,
        )
        .await
    }

    fn now() -> String {
        atlex::types::Datetime::now().as_str().to_owned()
    }

    /// A post with facets (a mention, a link, a tag), as `text` with byte offsets.
    fn faceted(n: usize, mention: &TestAccount) -> Value {
        let base = TEXTS[n % TEXTS.len()];
        let handle = format!("@{}", mention.handle);
        let link = "https://atproto.com/specs/sync";
        let text = format!("{base} {handle} see {link} #atproto");
        let start = |needle: &str| text.find(needle).unwrap();
        let span = |needle: &str| json!({"byteStart": start(needle), "byteEnd": start(needle) + needle.len()});
        json!({
            "$type": "app.bsky.feed.post", "text": text, "createdAt": now(), "langs": ["en"],
            "facets": [
                {"index": span(&handle), "features": [{"$type": "app.bsky.richtext.facet#mention", "did": mention.did}]},
                {"index": span(link), "features": [{"$type": "app.bsky.richtext.facet#link", "uri": link}]},
                {"index": span("#atproto"), "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "atproto"}]},
            ],
        })
    }

    /// Makes the writes of the recording, then replays the stream from the start and keeps
    /// the frames of the recording's accounts up to its last write.
    pub async fn record(pds: &Pds) -> Recording {
        let mut authors = Vec::new();
        for _ in 0..ACCOUNTS {
            let account = pds.create_account().await.expect("createAccount");
            authors.push(Author {
                account,
                posts: Vec::new(),
            });
        }
        let dids: Vec<String> = authors.iter().map(|a| a.account.did.clone()).collect();
        // Profiles and follows.
        for (i, author) in authors.iter().enumerate() {
            let a = &author.account;
            call(pds, "com.atproto.repo.putRecord", json!({
                "repo": a.did, "collection": "app.bsky.actor.profile", "rkey": "self",
                "record": {"$type": "app.bsky.actor.profile", "displayName": format!("Recorder {i}"),
                           "description": "An account of atlex's recorded firehose"},
            }), a).await;
            for other in dids.iter().filter(|d| **d != a.did) {
                create(
                    pds,
                    a,
                    "app.bsky.graph.follow",
                    json!({"$type": "app.bsky.graph.follow", "subject": other, "createdAt": now()}),
                )
                .await;
            }
        }
        let blob = pds
            .http()
            .post(pds.xrpc_url("com.atproto.repo.uploadBlob"))
            .bearer_auth(&authors[0].account.access_jwt)
            .header("content-type", "image/png")
            .body(PNG.to_vec())
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["blob"]
            .clone();
        let mut likes: Vec<Vec<String>> = vec![Vec::new(); ACCOUNTS];
        let mut reposts: Vec<Vec<String>> = vec![Vec::new(); ACCOUNTS];
        for n in 0..POSTS {
            for i in 0..ACCOUNTS {
                let other = (i + 1 + n % (ACCOUNTS - 1)) % ACCOUNTS;
                let a = authors[i].account.clone();
                let theirs = authors[other].posts.last().cloned();
                let mut post = if n % 3 == 0 {
                    faceted(n + i, &authors[other].account)
                } else {
                    json!({"$type": "app.bsky.feed.post", "createdAt": now(),
                           "text": format!("{} ({n})", TEXTS[(n + i) % TEXTS.len()]), "langs": ["en"]})
                };
                if n % 4 == 1
                    && let Some((uri, cid)) = &theirs
                {
                    let root = json!({"uri": uri, "cid": cid});
                    post["reply"] = json!({"root": root, "parent": root});
                }
                match n % 5 {
                    0 => {
                        post["embed"] = json!({"$type": "app.bsky.embed.external", "external": {
                        "uri": format!("https://example.com/articles/{n}"),
                        "title": "An article worth reading", "description": "Something about distributed systems"}})
                    }
                    2 if i == 0 => {
                        post["embed"] = json!({"$type": "app.bsky.embed.images", "images": [
                        {"image": blob, "alt": "a single transparent pixel", "aspectRatio": {"width": 1, "height": 1}}]})
                    }
                    3 => {
                        if let Some((uri, cid)) = &theirs {
                            post["embed"] = json!({"$type": "app.bsky.embed.record", "record": {"uri": uri, "cid": cid}});
                        }
                    }
                    _ => {}
                }
                let out = create(pds, &a, "app.bsky.feed.post", post).await;
                let made = (
                    out["uri"].as_str().unwrap().to_owned(),
                    out["cid"].as_str().unwrap().to_owned(),
                );
                authors[i].posts.push(made);
                if let Some((uri, cid)) = theirs {
                    let like = create(
                        pds,
                        &a,
                        "app.bsky.feed.like",
                        json!({"$type": "app.bsky.feed.like",
                        "subject": {"uri": uri, "cid": cid}, "createdAt": now()}),
                    )
                    .await;
                    likes[i].push(rkey(like["uri"].as_str().unwrap()));
                    if n % 6 == 0 {
                        let repost = create(
                            pds,
                            &a,
                            "app.bsky.feed.repost",
                            json!({"$type": "app.bsky.feed.repost",
                            "subject": {"uri": uri, "cid": cid}, "createdAt": now()}),
                        )
                        .await;
                        reposts[i].push(rkey(repost["uri"].as_str().unwrap()));
                    }
                }
                // Now and then: a post deleted, a like taken back, a batch of writes.
                if n % 7 == 6 {
                    let middle = authors[i].posts.len() / 2;
                    let (uri, _) = authors[i].posts.remove(middle);
                    call(
                        pds,
                        "com.atproto.repo.deleteRecord",
                        json!({"repo": a.did,
                        "collection": "app.bsky.feed.post", "rkey": rkey(&uri)}),
                        &a,
                    )
                    .await;
                }
                if n % 5 == 4
                    && let Some(like) = likes[i].pop()
                {
                    call(
                        pds,
                        "com.atproto.repo.deleteRecord",
                        json!({"repo": a.did,
                        "collection": "app.bsky.feed.like", "rkey": like}),
                        &a,
                    )
                    .await;
                }
                if n % 13 == 12 {
                    let targets: Vec<(String, String)> =
                        authors[other].posts.iter().rev().take(3).cloned().collect();
                    let mut writes: Vec<Value> = targets.iter().map(|(uri, cid)| json!({
                        "$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.like",
                        "value": {"$type": "app.bsky.feed.like", "subject": {"uri": uri, "cid": cid}, "createdAt": now()}})).collect();
                    if let Some(repost) = reposts[i].pop() {
                        writes.push(json!({"$type": "com.atproto.repo.applyWrites#delete",
                            "collection": "app.bsky.feed.repost", "rkey": repost}));
                    }
                    call(
                        pds,
                        "com.atproto.repo.applyWrites",
                        json!({"repo": a.did, "writes": writes}),
                        &a,
                    )
                    .await;
                }
            }
        }
        // Profile updates, an unfollow, a handle change, a deactivation and reactivation.
        for (i, author) in authors.iter().enumerate() {
            let a = &author.account;
            call(pds, "com.atproto.repo.putRecord", json!({
                "repo": a.did, "collection": "app.bsky.actor.profile", "rkey": "self",
                "record": {"$type": "app.bsky.actor.profile", "displayName": format!("Recorder {i} (edited)"),
                           "description": "Still recording. Edited once."},
            }), a).await;
        }
        let a = &authors[1].account;
        let follows = pds
            .query(
                "com.atproto.repo.listRecords",
                &[("repo", &a.did), ("collection", "app.bsky.graph.follow")],
                None,
            )
            .await
            .unwrap();
        let follow = rkey(follows["records"][0]["uri"].as_str().unwrap());
        call(
            pds,
            "com.atproto.repo.deleteRecord",
            json!({"repo": a.did,
            "collection": "app.bsky.graph.follow", "rkey": follow}),
            a,
        )
        .await;
        let renamed = format!("r{}", &a.handle);
        call(
            pds,
            "com.atproto.identity.updateHandle",
            json!({"handle": renamed}),
            a,
        )
        .await;
        let last = &authors[2].account;
        call(pds, "com.atproto.server.deactivateAccount", json!({}), last).await;
        // activateAccount takes no body at all.
        pds.http()
            .post(pds.xrpc_url("com.atproto.server.activateAccount"))
            .bearer_auth(&last.access_jwt)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
        let out = create(pds, &authors[0].account, "app.bsky.feed.post",
            json!({"$type": "app.bsky.feed.post", "text": "That is all for the recording.", "createdAt": now()})).await;
        let final_rev = out["commit"]["rev"]
            .as_str()
            .expect("createRecord's commit.rev")
            .to_owned();

        // The keys, from the DID documents in the PDS's PLC directory.
        let resolver = atlex::identity::IdentityResolver::builder()
            .plc_url(pds.plc_url())
            .allow_http(true)
            .build()
            .unwrap();
        let mut keys = Vec::new();
        for did in &dids {
            let doc = resolver
                .resolve_did(&atlex::types::Did::new(did.clone()).unwrap())
                .await
                .unwrap();
            keys.push((did.clone(), doc.signing_key().unwrap().to_did_key()));
        }

        // The stream, replayed from the start: only the recording's accounts.
        let service = url::Url::parse(pds.url()).unwrap();
        let url = atlex::xrpc::subscription_url::<SubscribeRepos>(
            &service,
            &subscribe_repos::Params::new().cursor(0),
        )
        .unwrap();
        let options = WsOptions {
            allow_http: true,
            ..WsOptions::default()
        };
        let mut connection = WsConnection::connect(&url, options).await.unwrap();
        let wanted: HashSet<&str> = dids.iter().map(String::as_str).collect();
        let mut frames = Vec::new();
        loop {
            let message = connection
                .next_message()
                .await
                .expect("the stream ended before the last write")
                .unwrap();
            let WsMessage::Binary(bytes) = message else {
                panic!("a text message on the firehose");
            };
            let Frame::Message(message) = decode_frame::<SubscribeRepos>(&bytes).unwrap() else {
                panic!("an error frame");
            };
            let (did, done) = match &message {
                Message::Commit(c) => (
                    c.repo.as_str(),
                    c.rev.as_str() == final_rev && c.repo.as_str() == dids[0],
                ),
                Message::Identity(e) => (e.did.as_str(), false),
                Message::Account(e) => (e.did.as_str(), false),
                Message::Sync(e) => (e.did.as_str(), false),
                _ => ("", false),
            };
            if wanted.contains(did) {
                frames.push(bytes.to_vec());
            }
            if done {
                break;
            }
        }
        Recording { keys, frames }
    }
}
