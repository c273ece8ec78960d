//! Concurrency of identity resolution, counted at the servers:
//!
//! * 1,000 concurrent `resolve` calls for one cold handle make exactly one DNS query, one
//!   HTTPS well-known request and one PLC request (single-flight);
//! * DNS and HTTPS run concurrently: both servers hold their answer until **both** have seen
//!   their request (a barrier of two). Run one after the other, the lookup could never finish;
//!   it does, so the two legs overlap and a cold lookup costs max(DNS, HTTPS), not the sum;
//! * two methods with different DIDs are a conflict.

mod identity_support;

use std::sync::Arc;
use std::time::Duration;

use atlex::identity::{HandleMethod, HandleStatus, IdentityError, IdentityResolver};
use atlex::types::{AtIdentifier, Handle};
use identity_support::{DnsAnswer, DnsServer, HttpServer, Reply, document};
use tokio::sync::Barrier;

const DID: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";

/// A DNS server and an HTTP server (well-known + PLC) that both wait at `barrier` (when given)
/// before answering.
async fn servers(
    barrier: Option<Arc<Barrier>>,
    https_did: &'static str,
) -> (DnsServer, HttpServer) {
    let dns_barrier = barrier.clone();
    let dns = DnsServer::start(Some(Arc::new(move || {
        let barrier = dns_barrier.clone();
        Box::pin(async move {
            if let Some(barrier) = barrier {
                barrier.wait().await;
            }
        })
    })))
    .await;
    dns.set(
        "_atproto.cold.test",
        DnsAnswer::Txt(vec![format!("did={DID}")]),
    );
    let http = HttpServer::start(move |request| {
        let barrier = barrier.clone();
        async move {
            if request.path == "/.well-known/atproto-did" {
                if let Some(barrier) = barrier {
                    barrier.wait().await;
                }
                return Reply::text(https_did);
            }
            if request.path == format!("/{DID}") {
                return Reply::new(200, document(DID, "cold.test", "https://pds.example.com"));
            }
            Reply::new(404, "")
        }
    })
    .await;
    (dns, http)
}

fn resolver(dns: &DnsServer, http: &HttpServer) -> IdentityResolver {
    IdentityResolver::builder()
        .handle_methods([HandleMethod::Dns, HandleMethod::WellKnown])
        .dns_server(dns.addr)
        .dns_timeout(Duration::from_secs(5))
        .well_known_base(reqwest::Url::parse(&http.url()).unwrap())
        .plc_url(http.url())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_cold_resolves_make_one_request_per_server() {
    let (dns, http) = servers(None, DID).await;
    let resolver = resolver(&dns, &http);
    let handle = AtIdentifier::new("cold.test").unwrap();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (resolver, handle) = (resolver.clone(), handle.clone());
            tokio::spawn(async move { resolver.resolve(&handle).await })
        })
        .collect();
    for task in tasks {
        let identity = task.await.unwrap().unwrap();
        assert_eq!(identity.did.as_str(), DID);
        assert_eq!(
            identity.handle,
            HandleStatus::Verified(Handle::new("cold.test").unwrap())
        );
    }
    assert_eq!(dns.queries(), 1, "DNS queries");
    // One well-known request and one PLC request.
    assert_eq!(http.requests(), 2, "HTTP requests (well-known + PLC)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_and_https_run_concurrently() {
    let barrier = Arc::new(Barrier::new(2));
    let (dns, http) = servers(Some(barrier), DID).await;
    let resolver = resolver(&dns, &http);
    // Not a speed assertion: a generous bound that only a deadlock (sequential legs) reaches.
    let trace = tokio::time::timeout(
        Duration::from_secs(20),
        resolver.trace_handle(&Handle::new("cold.test").unwrap()),
    )
    .await
    .expect("DNS and HTTPS did not overlap: each server waits for the other's request");
    assert_eq!(trace.result.unwrap().as_str(), DID);
    assert_eq!(trace.attempts.len(), 2);
    assert_eq!(dns.queries(), 1);
    assert_eq!(http.requests(), 1);
}

#[tokio::test]
async fn different_answers_are_a_conflict() {
    let (dns, http) = servers(None, "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb").await;
    let resolver = resolver(&dns, &http);
    let error = resolver
        .resolve_handle(&Handle::new("cold.test").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, IdentityError::Conflict { .. }), "{error}");
    let text = error.to_string();
    assert!(text.contains(DID) && text.contains("bbbbbbbb"), "{text}");
}
