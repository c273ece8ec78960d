//! Identity against the reference PDS and its PLC directory (`tests/pds/`): accounts created
//! here resolve from their handle and from their DID; `resolveHandle` goes through the PDS; a
//! handle that the account's document does not list back is reported invalid; login by handle
//! works with no service URL.
//!
//! The PDS's handle domain (`.test`) resolves neither by DNS nor by HTTPS, so the resolver is
//! given the PDS as its `resolveHandle` service and the dev PLC directory. Without a PDS the
//! tests are skipped with a note, except under `CI=true`, where they fail.

mod identity_support;

use std::sync::Arc;

use atlex::auth::{MemoryStore, PasswordSession, SessionStore};
use atlex::identity::{HandleMethod, HandleStatus, IdentityResolver, Lookup, MethodKind};
use atlex::types::{AtIdentifier, Handle};
use atlex_tests::require_pds;
use identity_support::{HttpServer, Reply};

fn resolver(pds: &atlex_tests::pds::Pds, extra: Vec<HandleMethod>) -> IdentityResolver {
    let mut methods = vec![HandleMethod::Xrpc(reqwest::Url::parse(pds.url()).unwrap())];
    methods.extend(extra);
    IdentityResolver::builder()
        .plc_url(pds.plc_url())
        .handle_methods(methods)
        .build()
        .unwrap()
}

#[tokio::test]
async fn accounts_resolve_from_handle_and_from_did() {
    let pds = require_pds!();
    let account = pds.create_account().await.expect("createAccount");
    let resolver = resolver(pds, vec![]);

    let by_handle = resolver
        .resolve(&AtIdentifier::new(account.handle.as_str()).unwrap())
        .await
        .unwrap_or_else(|error| panic!("{error}\n{}", pds.stderr_tail()));
    assert_eq!(by_handle.did.as_str(), account.did);
    assert_eq!(
        by_handle.handle,
        HandleStatus::Verified(Handle::new(account.handle.as_str()).unwrap())
    );
    assert_eq!(
        by_handle.pds.as_str().trim_end_matches('/'),
        pds.url().trim_end_matches('/')
    );
    let key = by_handle
        .signing_key
        .clone()
        .expect("the PDS publishes an #atproto key");
    assert!(key.to_did_key().starts_with("did:key:z"), "{key}");

    let by_did = resolver
        .resolve_with(
            &AtIdentifier::new(account.did.as_str()).unwrap(),
            Lookup::Fresh,
        )
        .await
        .unwrap();
    assert_eq!(by_did.handle, by_handle.handle);
    assert_eq!(by_did.pds, by_handle.pds);

    // resolveHandle through the PDS answered.
    let trace = resolver
        .trace_handle(&Handle::new(account.handle.as_str()).unwrap())
        .await;
    assert_eq!(trace.answered_by, Some(MethodKind::Xrpc));
    assert_eq!(trace.result.unwrap().as_str(), account.did);

    // A client for the account from its identity.
    let client = by_did.client().unwrap();
    assert_eq!(client.service_url(), by_did.pds);
}

#[tokio::test]
async fn a_handle_not_listed_back_is_invalid() {
    let pds = require_pds!();
    let account = pds.create_account().await.expect("createAccount");
    // A server that claims `liar.test` belongs to the account (its well-known answer), which
    // the account's document does not confirm.
    let did = account.did.clone();
    let liar = HttpServer::start(move |request| {
        let did = did.clone();
        async move {
            if request.path == "/.well-known/atproto-did"
                && request.host.as_deref() == Some("liar.test")
            {
                Reply::text(did)
            } else {
                Reply::new(404, "")
            }
        }
    })
    .await;
    let resolver = IdentityResolver::builder()
        .plc_url(pds.plc_url())
        .handle_methods([
            HandleMethod::Xrpc(reqwest::Url::parse(pds.url()).unwrap()),
            HandleMethod::WellKnown,
        ])
        .well_known_base(reqwest::Url::parse(&liar.url()).unwrap())
        .build()
        .unwrap();
    let identity = resolver
        .resolve(&AtIdentifier::new("liar.test").unwrap())
        .await
        .unwrap();
    assert_eq!(identity.did.as_str(), account.did);
    assert_eq!(identity.handle, HandleStatus::Invalid);
    assert_eq!(identity.handle.to_string(), "handle.invalid");
    assert_eq!(liar.requests(), 1);
}

#[tokio::test]
async fn login_by_handle_without_a_service_url() {
    let pds = require_pds!();
    let account = pds.create_account().await.expect("createAccount");
    let resolver = resolver(pds, vec![]);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let client = PasswordSession::login_with_resolver(
        &resolver,
        &AtIdentifier::new(account.handle.as_str()).unwrap(),
        account.password.clone(),
        store.clone(),
    )
    .await
    .unwrap_or_else(|error| panic!("{error}\n{}", pds.stderr_tail()));
    assert_eq!(
        client.did().map(|did| did.to_string()),
        Some(account.did.clone())
    );
    let (output, _client) = match client.server().get_session().await {
        Ok(answer) => answer,
        Err(error) => panic!("getSession: {error}"),
    };
    assert_eq!(output.handle.as_str(), account.handle);

    // A wrong password is the PDS's refusal, not an identity failure.
    let error = PasswordSession::login_with_resolver(
        &resolver,
        &AtIdentifier::new(account.did.as_str()).unwrap(),
        "wrong-password",
        store,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, atlex::auth::LoginError::Login(_)),
        "{error}"
    );
}
