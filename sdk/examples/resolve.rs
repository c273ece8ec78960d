//! Looks up an atproto identity and shows how it resolved: the DID, the verified handle, the
//! PDS, the signing key, and which handle method answered and how long each took.
//!
//! ```sh
//! cargo run -p atlex --example resolve -- alice.bsky.social
//! cargo run -p atlex --example resolve -- did:plc:z72i7hdynmk6r22z27h6tvur
//! cargo run -p atlex --example resolve -- --plc http://localhost:2582 \
//!     --xrpc http://localhost:2583 --allow-http alice.test
//! ```
//!
//! Options: `--plc URL` (PLC directory), `--dns IP:PORT` (DNS server instead of the system's),
//! `--xrpc URL` (also ask this service's `resolveHandle`, after DNS and HTTPS), `--only-xrpc`,
//! `--allow-http`, `--timeout SECONDS`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use atlex::identity::{HandleMethod, IdentityResolver, Lookup};
use atlex::types::AtIdentifier;

struct Options {
    identifier: String,
    plc: Option<String>,
    dns: Option<SocketAddr>,
    xrpc: Option<url::Url>,
    only_xrpc: bool,
    allow_http: bool,
    timeout: Option<Duration>,
}

const USAGE: &str = "usage: resolve [--plc URL] [--dns IP:PORT] [--xrpc URL] [--only-xrpc] \
                     [--allow-http] [--timeout SECONDS] <handle or DID>";

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        identifier: String::new(),
        plc: None,
        dns: None,
        xrpc: None,
        only_xrpc: false,
        allow_http: false,
        timeout: None,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--plc" => options.plc = Some(value("--plc")?),
            "--dns" => {
                options.dns = Some(
                    value("--dns")?
                        .parse()
                        .map_err(|error| format!("--dns: {error} (expected IP:PORT)"))?,
                )
            }
            "--xrpc" => {
                options.xrpc = Some(
                    url::Url::parse(&value("--xrpc")?)
                        .map_err(|error| format!("--xrpc: {error}"))?,
                )
            }
            "--only-xrpc" => options.only_xrpc = true,
            "--allow-http" => options.allow_http = true,
            "--timeout" => {
                let seconds: f64 = value("--timeout")?
                    .parse()
                    .map_err(|error| format!("--timeout: {error}"))?;
                options.timeout = Some(
                    Duration::try_from_secs_f64(seconds)
                        .map_err(|error| format!("--timeout: {error}"))?,
                );
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other if other.starts_with("--") => {
                return Err(format!("unknown option {other}\n{USAGE}"));
            }
            other => options.identifier = other.to_owned(),
        }
    }
    if options.identifier.is_empty() {
        return Err(USAGE.to_owned());
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let identifier = match AtIdentifier::new(options.identifier.trim()) {
        Ok(identifier) => identifier,
        Err(error) => {
            eprintln!("not a handle or DID: {error}");
            return ExitCode::from(2);
        }
    };
    let mut methods = if options.only_xrpc {
        vec![]
    } else {
        vec![HandleMethod::Dns, HandleMethod::WellKnown]
    };
    if let Some(xrpc) = &options.xrpc {
        methods.push(HandleMethod::Xrpc(xrpc.clone()));
    }
    let mut builder = IdentityResolver::builder()
        .handle_methods(methods)
        .allow_http(options.allow_http);
    if let Some(plc) = &options.plc {
        builder = builder.plc_url(plc.clone());
    }
    if let Some(dns) = options.dns {
        builder = builder.dns_server(dns);
    }
    if let Some(timeout) = options.timeout {
        builder = builder.timeout(timeout).dns_timeout(timeout);
    }
    let resolver = match builder.build() {
        Ok(resolver) => resolver,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };

    // The handle legs, one by one with their times (the handle in the document for a DID).
    if let AtIdentifier::Handle(handle) = &identifier {
        show_trace(&resolver, handle).await;
    }
    let started = Instant::now();
    let result = resolver.resolve_with(&identifier, Lookup::Fresh).await;
    let elapsed = started.elapsed();
    match result {
        Ok(identity) => {
            println!("did:          {}", identity.did);
            println!("handle:       {}", identity.handle);
            println!("pds:          {}", identity.pds);
            match &identity.signing_key {
                Some(key) => println!("signing key:  {key} ({})", key.algorithm()),
                None => println!("signing key:  (none readable)"),
            }
            if let (AtIdentifier::Did(_), Some(handle)) = (&identifier, identity.document.handle())
            {
                show_trace(&resolver, &handle).await;
            }
            println!("resolved in   {} ms", elapsed.as_millis());
            ExitCode::SUCCESS
        }
        Err(error) => {
            println!("error:        {error}");
            println!("after         {} ms", elapsed.as_millis());
            ExitCode::FAILURE
        }
    }
}

async fn show_trace(resolver: &IdentityResolver, handle: &atlex::types::Handle) {
    let trace = resolver.trace_handle(handle).await;
    println!("handle {handle}:");
    for attempt in &trace.attempts {
        let outcome = match &attempt.outcome {
            Ok(Some(did)) => did.to_string(),
            Ok(None) => "no answer".to_owned(),
            Err(error) => format!("error: {error}"),
        };
        println!(
            "  {:<20} {:>6} ms  {outcome}",
            attempt.method.to_string(),
            attempt.elapsed.as_millis()
        );
    }
    match (&trace.result, trace.answered_by) {
        (Ok(did), Some(method)) => println!("  answered by {method}: {did}"),
        (Ok(did), None) => println!("  answer: {did}"),
        (Err(error), _) => println!("  no DID: {error}"),
    }
}
