//! Handle → DID by DNS TXT `_atproto.<handle>`, against a DNS server this test starts on
//! 127.0.0.1: one record, several records, a wrong prefix, an invalid DID, NXDOMAIN and a
//! server that never answers.

mod identity_support;

use std::time::Duration;

use atlex::identity::{HandleMethod, IdentityError, IdentityResolver, MethodKind};
use atlex::types::Handle;
use identity_support::{DnsAnswer, DnsServer};

const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";

async fn setup() -> (DnsServer, IdentityResolver) {
    let dns = DnsServer::start(None).await;
    let resolver = IdentityResolver::builder()
        .handle_methods([HandleMethod::Dns])
        .dns_server(dns.addr)
        .dns_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    (dns, resolver)
}

fn handle(text: &str) -> Handle {
    Handle::new(text).unwrap()
}

#[tokio::test]
async fn one_did_record() {
    let (dns, resolver) = setup().await;
    dns.set(
        "_atproto.alice.example.com",
        DnsAnswer::Txt(vec![format!("did={DID}")]),
    );
    let did = resolver
        .resolve_handle(&handle("Alice.Example.com"))
        .await
        .unwrap();
    assert_eq!(did.as_str(), DID);
    assert_eq!(dns.queries(), 1);
    // Cached: no second query.
    resolver
        .resolve_handle(&handle("alice.example.com"))
        .await
        .unwrap();
    assert_eq!(dns.queries(), 1);
}

#[tokio::test]
async fn other_records_are_ignored() {
    let (dns, resolver) = setup().await;
    dns.set(
        "_atproto.bob.example.com",
        DnsAnswer::Txt(vec![
            "v=spf1 -all".into(),
            format!("did:{DID}"),
            format!(" did={DID}"),
            format!("did={DID}"),
        ]),
    );
    let did = resolver
        .resolve_handle(&handle("bob.example.com"))
        .await
        .unwrap();
    assert_eq!(did.as_str(), DID);
}

#[tokio::test]
async fn several_did_records_are_an_error() {
    let (dns, resolver) = setup().await;
    dns.set(
        "_atproto.two.example.com",
        DnsAnswer::Txt(vec![
            format!("did={DID}"),
            "did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".into(),
        ]),
    );
    let error = resolver
        .resolve_handle(&handle("two.example.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::MultipleDids { count: 2, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("two.example.com"), "{error}");
}

#[tokio::test]
async fn wrong_prefix_only_is_not_found() {
    let (dns, resolver) = setup().await;
    dns.set(
        "_atproto.wrong.example.com",
        DnsAnswer::Txt(vec![format!("DID={DID}"), format!("atproto={DID}")]),
    );
    let error = resolver
        .resolve_handle(&handle("wrong.example.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::HandleNotFound { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn invalid_did_is_an_error() {
    let (dns, resolver) = setup().await;
    dns.set(
        "_atproto.bad.example.com",
        DnsAnswer::Txt(vec!["did=not a did".into()]),
    );
    let error = resolver
        .resolve_handle(&handle("bad.example.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            IdentityError::InvalidDid {
                method: MethodKind::Dns,
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn nxdomain_is_not_found_and_cached_negatively() {
    let (dns, resolver) = setup().await;
    let error = resolver
        .resolve_handle(&handle("nobody.example.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, IdentityError::HandleNotFound { .. }),
        "{error}"
    );
    assert!(!error.is_transient(), "{error}");
    assert_eq!(dns.queries(), 1);
    resolver
        .resolve_handle(&handle("nobody.example.com"))
        .await
        .unwrap_err();
    assert_eq!(dns.queries(), 1, "the negative answer is cached");
}

#[tokio::test]
async fn timeout_is_transient_and_not_cached() {
    let (dns, resolver) = setup().await;
    dns.set("_atproto.slow.example.com", DnsAnswer::Silent);
    let trace = resolver.trace_handle(&handle("slow.example.com")).await;
    let error = trace.result.unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert_eq!(trace.attempts.len(), 1);
    assert!(
        matches!(
            &trace.attempts[0].outcome,
            Err(IdentityError::MethodFailed {
                method: MethodKind::Dns,
                transient: true,
                ..
            })
        ),
        "{:?}",
        trace.attempts[0].outcome
    );
    // A transient failure is not cached: the next lookup asks again.
    let before = dns.queries();
    resolver
        .resolve_handle(&handle("slow.example.com"))
        .await
        .unwrap_err();
    resolver
        .resolve_handle(&handle("slow.example.com"))
        .await
        .unwrap_err();
    assert!(
        dns.queries() >= before + 2,
        "{} then {}",
        before,
        dns.queries()
    );
}
