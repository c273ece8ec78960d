//! Read the home timeline page by page; where the service has no timeline (a PDS without an
//! AppView, such as the reference PDS the tests run), read the account's own posts instead,
//! also page by page.
//!
//! ```sh
//! cargo run -p atlex --example timeline -- --handle alice.bsky.social \
//!     --password APP-PASSWORD --page-size 10 --pages 3
//! ```
//!
//! `--pds`, `--handle` and `--password` can also come from `ATLEX_PDS_URL`, `ATLEX_HANDLE` and
//! `ATLEX_PASSWORD`.

mod common;

use std::process::ExitCode;

use atlex::app::bsky::feed::get_timeline::{self, GetTimeline};
use atlex::com::atproto::repo::list_records::{self, ListRecords};
use atlex::types::AtIdentifier;
use atlex::xrpc::{Client, Error};
use futures::StreamExt;

const USAGE: &str = "usage: timeline [--pds URL] [--handle HANDLE] [--password APP-PASSWORD] \
                     [--page-size N] [--pages N]";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match common::args(USAGE) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("timeline: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: common::Args) -> Result<(), Box<dyn std::error::Error>> {
    let page_size = common::number(&args.rest, "--page-size", 10)?;
    let pages = usize::try_from(common::number(&args.rest, "--pages", 3)?)?;
    let client = common::login(&args).await?;

    // `pages` follows the cursor: each item of the stream is one page (one request).
    let mut timeline = client.pages::<GetTimeline>(get_timeline::Params::new().limit(page_size));
    match timeline.next().await {
        Some(Ok(first)) => {
            print_timeline_page(1, &first);
            let mut shown = 1;
            while shown < pages {
                match timeline.next().await {
                    Some(page) => {
                        shown += 1;
                        print_timeline_page(shown, &page?);
                    }
                    None => break,
                }
            }
            Ok(())
        }
        None => Ok(()),
        // The server answered, but has no timeline for us: a PDS without an AppView answers
        // `getTimeline` with an error status.
        Some(Err(error @ (Error::Xrpc { .. } | Error::Status(_)))) => {
            println!(
                "getTimeline is not available on {} ({error}); listing your own posts instead",
                args.pds
            );
            own_posts(&client, page_size, pages).await
        }
        Some(Err(error)) => Err(error.into()),
    }
}

fn print_timeline_page(number: usize, page: &get_timeline::Output) {
    println!("--- timeline page {number} ({} posts)", page.feed.len());
    for item in &page.feed {
        println!("{} by @{}", item.post.uri, item.post.author.handle);
    }
}

/// The account's `app.bsky.feed.post` records, newest first, `page_size` per request.
async fn own_posts(
    client: &Client,
    page_size: i64,
    pages: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let did = client.did().ok_or("the session has no DID")?;
    let params =
        list_records::Params::new(AtIdentifier::Did(did), atlex::nsid!("app.bsky.feed.post"))
            .limit(page_size);
    let mut stream = client.pages::<ListRecords>(params).take(pages);
    let mut number = 0;
    let mut total = 0;
    while let Some(page) = stream.next().await {
        let page = page?;
        number += 1;
        total += page.records.len();
        println!("--- page {number} ({} records)", page.records.len());
        for record in &page.records {
            // Records come back untyped (`Data`); `client.get_record::<Post>` gives typed ones.
            let value = serde_json::to_value(&record.value)?;
            let text = value
                .get("text")
                .and_then(|text| text.as_str())
                .unwrap_or("");
            println!("{}: {text}", record.uri);
        }
    }
    println!("{total} posts in {number} pages");
    Ok(())
}
