//! Print typed events (posts with their text, follows, likes) from a relay's or PDS's firehose,
//! or from Jetstream.
//!
//! ```sh
//! cargo run -p atlex --example firehose_tail -- --url wss://bsky.network --count 20
//! cargo run -p atlex --example firehose_tail -- --jetstream \
//!     --url wss://jetstream2.us-east.bsky.network --collection app.bsky.feed.post
//! cargo run -p atlex --example firehose_tail -- --cursor 0 --collection app.bsky.feed.post --count 3
//! ```
//!
//! `--url` defaults to `ATLEX_PDS_URL`, else `wss://bsky.network`. `--collection` (repeatable)
//! keeps only operations in those collections; `--count N` stops after N of them; `--cursor`
//! resumes after a cursor (`0` replays a PDS's whole stream); `--timeout SECS` (default 60)
//! fails when the count is not reached in time.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use atlex::app::bsky::feed::like::Like;
use atlex::app::bsky::feed::post::Post;
use atlex::app::bsky::graph::follow::Follow;
use atlex::com::atproto::sync::subscribe_repos::{self, SubscribeRepos};
use atlex::net::ws::WsOptions;
use atlex::stream::jetstream::{Jetstream, JetstreamOptions};
use atlex::stream::{
    Consumer, ConsumerEvent, ConsumerOptions, Firehose, MemoryCursor, RecordOp, RepoEvent,
};
use futures::StreamExt;
use url::Url;

const USAGE: &str = "usage: firehose_tail [--url URL] [--jetstream] [--collection NSID]... \
                     [--count N] [--cursor N] [--timeout SECS]";

struct Args {
    url: String,
    jetstream: bool,
    collections: Vec<String>,
    count: usize,
    cursor: Option<i64>,
    timeout: Duration,
}

fn args() -> Result<Args, String> {
    let mut out = Args {
        url: std::env::var("ATLEX_PDS_URL").unwrap_or_else(|_| "wss://bsky.network".to_owned()),
        jetstream: false,
        collections: Vec::new(),
        count: 10,
        cursor: None,
        timeout: Duration::from_secs(60),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--url" => out.url = value()?,
            "--jetstream" => out.jetstream = true,
            "--collection" => out.collections.push(value()?),
            "--count" => out.count = value()?.parse().map_err(|e| format!("--count: {e}"))?,
            "--cursor" => {
                out.cursor = Some(value()?.parse().map_err(|e| format!("--cursor: {e}"))?)
            }
            "--timeout" => {
                let secs: u64 = value()?.parse().map_err(|e| format!("--timeout: {e}"))?;
                out.timeout = Duration::from_secs(secs);
            }
            "--help" | "-h" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(out)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let timeout = args.timeout;
    match tokio::time::timeout(timeout, run(args)).await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(error)) => {
            eprintln!("firehose_tail: {error}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("firehose_tail: not enough events within {timeout:?}");
            ExitCode::FAILURE
        }
    }
}

/// One line for an operation: posts with their text, follows and likes with their subject.
fn describe(did: &str, op: &RecordOp) -> String {
    let action = format!("{:?}", op.action).to_lowercase();
    let what = if let Some(post) = op.record_as::<Post>() {
        match post {
            Ok(post) => format!("post {:?}", post.text),
            Err(error) => format!("post that does not decode: {error}"),
        }
    } else if let Some(Ok(follow)) = op.record_as::<Follow>() {
        format!("follow of {}", follow.subject)
    } else if let Some(Ok(like)) = op.record_as::<Like>() {
        format!("like of {}", like.subject.uri)
    } else {
        op.collection.as_str().to_owned()
    };
    format!(
        "{did} {action} {}/{}: {what}",
        op.collection.as_str(),
        op.rkey.as_str()
    )
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(MemoryCursor::new(args.cursor));
    let options = ConsumerOptions::default();
    let keep = |op: &RecordOp| {
        args.collections.is_empty() || args.collections.iter().any(|c| c == op.collection.as_str())
    };
    let mut printed = 0;
    if args.jetstream {
        let mut filters = JetstreamOptions::new();
        for collection in &args.collections {
            filters = filters.collection(collection.clone())?;
        }
        let mut consumer = Consumer::start(Jetstream::new(&args.url, filters)?, store, options)?;
        while printed < args.count {
            let Some(item) = consumer.next().await else {
                return Err("the stream ended".into());
            };
            match item {
                Ok(ConsumerEvent::Message { message, .. }) => {
                    if let RepoEvent::Commit(commit) = &message.event {
                        for op in commit.ops.iter().filter(|op| keep(op)) {
                            println!("{}", describe(commit.did.as_str(), op));
                            printed += 1;
                        }
                    }
                }
                Ok(other) => eprintln!("{other:?}"),
                Err(error) => eprintln!("error: {error}"),
            }
        }
        return Ok(());
    }
    let url = Url::parse(&args.url)?;
    let ws = WsOptions {
        // A PDS on this machine (the tests' reference PDS) may be plain `http`.
        allow_http: atlex::net::is_loopback(&url),
        ..WsOptions::default()
    };
    let source = Firehose::<SubscribeRepos>::at(url, subscribe_repos::Params::new(), ws);
    let mut consumer = Consumer::start(source, store, options)?;
    while printed < args.count {
        let Some(item) = consumer.next().await else {
            return Err("the stream ended".into());
        };
        match item {
            Ok(ConsumerEvent::Message { message, .. }) => {
                // Records decoded from the commit's CAR (not verified: that needs each
                // account's key; see `RepoEvent::from_firehose`).
                match RepoEvent::from_firehose(message, None) {
                    Ok(RepoEvent::Commit(commit)) => {
                        for op in commit.ops.iter().filter(|op| keep(op)) {
                            println!("{}", describe(commit.did.as_str(), op));
                            printed += 1;
                        }
                    }
                    Ok(_) => {}
                    Err(error) => eprintln!("bad commit: {error}"),
                }
            }
            Ok(other) => eprintln!("{other:?}"),
            Err(error) => eprintln!("error: {error}"),
        }
    }
    Ok(())
}
