//! Log in with a password and post.
//!
//! ```sh
//! cargo run -p atlex --example post -- --pds https://bsky.social \
//!     --handle alice.bsky.social --password APP-PASSWORD "Hello from atlex"
//! ```
//!
//! `--pds`, `--handle` and `--password` can also come from `ATLEX_PDS_URL`, `ATLEX_HANDLE` and
//! `ATLEX_PASSWORD`. Prints the new post's `at://` URI.

mod common;

use std::process::ExitCode;

use atlex::app::bsky::feed::post::Post;
use atlex::types::Datetime;

const USAGE: &str = "usage: post [--pds URL] [--handle HANDLE] [--password APP-PASSWORD] [TEXT]";

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
            eprintln!("post: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: common::Args) -> Result<(), Box<dyn std::error::Error>> {
    let text = if args.rest.is_empty() {
        "Hello from atlex".to_owned()
    } else {
        args.rest.join(" ")
    };
    let client = common::login(&args).await?;
    println!("logged in as {} on {}", args.handle, args.pds);

    // The record is checked against its lexicon (length in bytes and graphemes, language
    // tags) before it is sent.
    let post = Post::new(text, Datetime::now()).langs(vec![atlex::language!("en")]);
    let (created, _client) = client.create_record(&post).await?;
    println!("posted {} (cid {})", created.uri, created.cid);
    Ok(())
}
