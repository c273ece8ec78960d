//! Smoke test of the reference-PDS harness (`atlex_tests::pds`): the PDS starts, accounts can
//! be created, and sessions and server descriptions come back as the harness expects.
//!
//! Talks plain HTTP only, so it depends on nothing but the harness.

use atlex_tests::pds::PdsError;
use atlex_tests::require_pds;
use serde_json::{Value, json};

fn str_field<'a>(value: &'a Value, field: &str) -> &'a str {
    value
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("response has no string field {field:?}: {value}"))
}

#[tokio::test]
async fn describe_server_lists_the_handle_domain() {
    let pds = require_pds!();
    let out = pds
        .query("com.atproto.server.describeServer", &[], None)
        .await
        .unwrap_or_else(|err| panic!("describeServer: {err}\n{}", pds.stderr_tail()));
    assert!(str_field(&out, "did").starts_with("did:"), "{out}");
    let domains = out["availableUserDomains"]
        .as_array()
        .unwrap_or_else(|| panic!("no availableUserDomains: {out}"));
    assert!(
        domains
            .iter()
            .any(|d| d.as_str() == Some(pds.handle_domain())),
        "{} not among {out}",
        pds.handle_domain()
    );
}

#[tokio::test]
async fn created_account_can_sign_in_and_read_its_session() {
    let pds = require_pds!();
    let account = pds
        .create_account()
        .await
        .unwrap_or_else(|err| panic!("createAccount: {err}\n{}", pds.stderr_tail()));
    assert!(account.did.starts_with("did:plc:"), "{account:?}");
    assert!(account.handle.ends_with(pds.handle_domain()), "{account:?}");
    assert!(!account.access_jwt.is_empty() && !account.refresh_jwt.is_empty());

    // The access token from createAccount works.
    let session = pds
        .query(
            "com.atproto.server.getSession",
            &[],
            Some(&account.access_jwt),
        )
        .await
        .unwrap_or_else(|err| panic!("getSession: {err}"));
    assert_eq!(str_field(&session, "did"), account.did);
    assert_eq!(str_field(&session, "handle"), account.handle);

    // Signing in by handle and by DID both give a session for the same account.
    for identifier in [&account.handle, &account.did] {
        let created = pds
            .procedure(
                "com.atproto.server.createSession",
                &json!({ "identifier": identifier, "password": account.password }),
                None,
            )
            .await
            .unwrap_or_else(|err| panic!("createSession as {identifier}: {err}"));
        assert_eq!(str_field(&created, "did"), account.did);
        assert_eq!(str_field(&created, "handle"), account.handle);
        let access = str_field(&created, "accessJwt");
        let session = pds
            .query("com.atproto.server.getSession", &[], Some(access))
            .await
            .unwrap_or_else(|err| panic!("getSession with the new token: {err}"));
        assert_eq!(str_field(&session, "did"), account.did);
    }
}

#[tokio::test]
async fn wrong_password_is_an_xrpc_error() {
    let pds = require_pds!();
    let account = pds.create_account().await.expect("createAccount");
    let err = pds
        .procedure(
            "com.atproto.server.createSession",
            &json!({ "identifier": account.handle, "password": "not-the-password" }),
            None,
        )
        .await
        .expect_err("createSession with a wrong password must fail");
    match err {
        PdsError::Xrpc { status, error, .. } => {
            assert_eq!(status, 401, "{error:?}");
            assert_eq!(error.as_deref(), Some("AuthenticationRequired"));
        }
        other => panic!("expected an XRPC error, got {other}"),
    }
}

#[tokio::test]
async fn accounts_get_distinct_handles_and_dids() {
    let pds = require_pds!();
    let a = pds.create_account().await.expect("first account");
    let b = pds.create_account().await.expect("second account");
    assert_ne!(a.did, b.did);
    assert_ne!(a.handle, b.handle);
    // The DID document is in the PLC directory.
    let doc: Value = pds
        .http()
        .get(format!("{}/{}", pds.plc_url(), a.did))
        .send()
        .await
        .expect("PLC request")
        .error_for_status()
        .expect("PLC status")
        .json()
        .await
        .expect("PLC JSON");
    assert_eq!(doc["id"], a.did, "{doc}");
}

#[test]
fn a_spawned_pds_stops_when_dropped() {
    use atlex_tests::pds::{Pds, harness_dir};
    // Only when the shared one works (so that setup problems skip or fail in one place).
    if Pds::shared().is_none() {
        return;
    }
    let own = Pds::spawn(&harness_dir()).unwrap_or_else(|err| panic!("spawn: {err}"));
    let pid = own.pid().expect("a spawned PDS has a pid");
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    assert!(proc_dir.exists(), "PDS process {pid} is not running");
    let vars = own.env_vars();
    assert!(
        vars.iter()
            .any(|(k, v)| *k == "ATLEX_PDS_URL" && v == own.url())
    );
    assert!(
        vars.iter()
            .any(|(k, v)| *k == "ATLEX_PLC_URL" && v == own.plc_url())
    );
    drop(own);
    // Dropping closes its stdin and reaps it.
    assert!(
        !proc_dir.exists(),
        "PDS process {pid} still exists after drop"
    );
}
