//! Decoding real `app.bsky.feed.post` records (`cargo xtask bench decode list-page`).
//!
//! * `decode/*`: the 100 post values of the `listRecords` fixture as one JSON array, into
//!   `Vec<atlex Post>`, `Vec<atrium-api post::Record>` and `serde_json::Value`.
//! * `list-page/*`: the raw page bytes, into `RecordPage<Post>` (what `list_records::<Post>`
//!   decodes) and through atrium-api's path: `list_records::Output`, then each record's `value`
//!   (an `Unknown`) through `TryFromUnknown` into `post::Record`.
//!
//! Every decoder is run once on the input before anything is measured; one that fails stops
//! the benchmark with the error.

use std::hint::black_box;
use std::process::ExitCode;

use atlex::app::bsky::feed::post::Post;
use atlex::repo::RecordPage;
use atrium_api::app::bsky::feed::post::Record as AtriumPost;
use atrium_api::com::atproto::repo::list_records::Output as AtriumListOutput;
use atrium_api::types::TryFromUnknown;
use criterion::{Criterion, Throughput};

/// The number of posts in the fixture page.
const POSTS: usize = 100;

struct Inputs {
    /// The 100 post values as one JSON array.
    posts: Vec<u8>,
    /// The raw `listRecords` page.
    page: Vec<u8>,
    /// How many records each input holds.
    records: u64,
}

fn atlex_posts(bytes: &[u8]) -> serde_json::Result<Vec<Post>> {
    serde_json::from_slice(bytes)
}

fn atrium_posts(bytes: &[u8]) -> serde_json::Result<Vec<AtriumPost>> {
    serde_json::from_slice(bytes)
}

fn json_value(bytes: &[u8]) -> serde_json::Result<serde_json::Value> {
    serde_json::from_slice(bytes)
}

fn atlex_page(bytes: &[u8]) -> serde_json::Result<RecordPage<Post>> {
    serde_json::from_slice(bytes)
}

/// A decoded record of atrium-api's path: where it lives and the typed post.
type AtriumEntry = (String, atrium_api::types::string::Cid, AtriumPost);

fn atrium_page(bytes: &[u8]) -> Result<(Option<String>, Vec<AtriumEntry>), String> {
    let output: AtriumListOutput = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let output = output.data;
    let mut records = Vec::with_capacity(output.records.len());
    for record in output.records {
        let record = record.data;
        let post = AtriumPost::try_from_unknown(record.value).map_err(|e| e.to_string())?;
        records.push((record.uri, record.cid, post));
    }
    Ok((output.cursor, records))
}

/// Where the benchmark tells `cargo xtask bench` which records it measured (inside
/// `CRITERION_HOME`, which xtask empties before the run).
const INPUTS_NOTE: &str = "atlex-bench-decode-inputs.txt";

/// Loads the inputs and checks that every decoder accepts them.
///
/// atlex and `serde_json::Value` must decode every record of the page. A record atrium-api
/// rejects is left out of every input (all sides decode the same bytes), and said loudly: on
/// stderr and in [`INPUTS_NOTE`], which xtask prints under its table.
fn prepare() -> Result<Inputs, String> {
    let original = atlex_bench::list_page_bytes().map_err(|e| e.to_string())?;
    let mut page = atlex_bench::RawPage::parse(&original).map_err(|e| e.to_string())?;
    if page.records.len() != POSTS {
        return Err(format!(
            "the fixture page has {} records, expected {POSTS}",
            page.records.len()
        ));
    }
    let mut rejected = Vec::new();
    for (index, record) in page.records.iter().enumerate() {
        let bytes = record.value.get().as_bytes();
        serde_json::from_slice::<Post>(bytes)
            .map_err(|e| format!("atlex Post rejects record #{index} ({}): {e}", record.uri))?;
        serde_json::from_slice::<serde_json::Value>(bytes)
            .map_err(|e| format!("serde_json::Value rejects record #{index}: {e}"))?;
        if let Err(error) = serde_json::from_slice::<AtriumPost>(bytes) {
            rejected.push(format!(
                "#{index} {} ({error}): {}",
                record.uri,
                record.value.get()
            ));
        }
    }
    let note = if rejected.is_empty() {
        format!(
            "decode inputs: all {POSTS} records of {}",
            atlex_bench::LIST_PAGE_FIXTURE
        )
    } else {
        let kept = POSTS - rejected.len();
        format!(
            "decode inputs: atrium-api rejects {} of the {POSTS} real posts, so every side decodes \
             the {kept} it accepts (same bytes, in a page rebuilt around them):\n  {}",
            rejected.len(),
            rejected.join("\n  ")
        )
    };
    eprintln!("{note}");
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        let home = std::path::PathBuf::from(home);
        std::fs::create_dir_all(&home)
            .and_then(|()| std::fs::write(home.join(INPUTS_NOTE), format!("{note}\n")))
            .map_err(|e| format!("writing {INPUTS_NOTE}: {e}"))?;
    }
    let page_bytes = if rejected.is_empty() {
        original
    } else {
        page.records.retain(|record| {
            serde_json::from_slice::<AtriumPost>(record.value.get().as_bytes()).is_ok()
        });
        page.to_bytes().map_err(|e| e.to_string())?
    };
    let posts = page.values_array();
    let expected = page.records.len();
    let count = |what: &str, n: usize| {
        if n == expected {
            Ok(())
        } else {
            Err(format!("{what} decoded {n} records, expected {expected}"))
        }
    };
    let decoded = atlex_posts(&posts).map_err(|e| format!("atlex Vec<Post>: {e}"))?;
    count("atlex Vec<Post>", decoded.len())?;
    let decoded = atrium_posts(&posts).map_err(|e| format!("atrium-api Vec<post::Record>: {e}"))?;
    count("atrium-api Vec<post::Record>", decoded.len())?;
    let decoded = json_value(&posts).map_err(|e| format!("serde_json::Value: {e}"))?;
    count("serde_json::Value", decoded.as_array().map_or(0, Vec::len))?;
    let decoded = atlex_page(&page_bytes).map_err(|e| format!("atlex RecordPage<Post>: {e}"))?;
    count("atlex RecordPage<Post>", decoded.records.len())?;
    let decoded =
        atrium_page(&page_bytes).map_err(|e| format!("atrium-api listRecords path: {e}"))?;
    count("atrium-api listRecords path", decoded.1.len())?;
    Ok(Inputs {
        posts,
        page: page_bytes,
        records: expected as u64,
    })
}

fn decode(c: &mut Criterion, inputs: &Inputs) {
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(inputs.records));
    group.bench_function("atlex", |b| {
        b.iter(|| atlex_posts(black_box(&inputs.posts)))
    });
    group.bench_function("atrium-api", |b| {
        b.iter(|| atrium_posts(black_box(&inputs.posts)))
    });
    group.bench_function("serde_json-value", |b| {
        b.iter(|| json_value(black_box(&inputs.posts)))
    });
    group.finish();
}

fn list_page(c: &mut Criterion, inputs: &Inputs) {
    let mut group = c.benchmark_group("list-page");
    group.throughput(Throughput::Elements(inputs.records));
    group.bench_function("atlex", |b| b.iter(|| atlex_page(black_box(&inputs.page))));
    group.bench_function("atrium-api", |b| {
        b.iter(|| atrium_page(black_box(&inputs.page)))
    });
    group.finish();
}

fn main() -> ExitCode {
    let inputs = match prepare() {
        Ok(inputs) => inputs,
        Err(error) => {
            eprintln!("error: the decode benchmark input does not decode: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut criterion = Criterion::default().configure_from_args();
    decode(&mut criterion, &inputs);
    list_page(&mut criterion, &inputs);
    criterion.final_summary();
    ExitCode::SUCCESS
}
