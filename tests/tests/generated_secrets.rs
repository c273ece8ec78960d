//! Credentials in generated types (passwords, JWTs, tokens) never reach `Debug` output, so they
//! cannot leak into logs or panic messages.

use atlex::com::atproto::server::{create_app_password, create_session, delete_account};

#[test]
fn generated_debug_redacts_credentials() {
    let input = create_session::Input::new("alice.test", "hunter2-password")
        .auth_factor_token("factor-123456");
    let shown = format!("{input:?} {input:#?}");
    assert!(!shown.contains("hunter2-password"), "{shown}");
    assert!(!shown.contains("factor-123456"), "{shown}");
    assert!(
        shown.contains("alice.test"),
        "the rest stays visible: {shown}"
    );

    let output = create_session::Output::new(
        "access.jwt.value",
        "refresh.jwt.value",
        atlex::handle!("alice.test"),
        atlex::did!("did:plc:abc"),
    );
    let shown = format!("{output:?}");
    assert!(!shown.contains("access.jwt.value"), "{shown}");
    assert!(!shown.contains("refresh.jwt.value"), "{shown}");
    assert!(shown.contains("did:plc:abc"), "{shown}");

    let delete = delete_account::Input::new(atlex::did!("did:plc:abc"), "pw-secret", "tok-secret");
    let shown = format!("{delete:?}");
    assert!(
        !shown.contains("pw-secret") && !shown.contains("tok-secret"),
        "{shown}"
    );

    let app = create_app_password::AppPassword::new(
        "name",
        "app-pw-secret",
        atlex::types::Datetime::now(),
    );
    assert!(!format!("{app:?}").contains("app-pw-secret"));
}

#[test]
fn codes_and_unknown_fields_of_credential_types_are_redacted() {
    use atlex::com::atproto::server::{create_account, create_invite_code};
    let mut output = create_session::Output::new(
        "access.jwt.value",
        "refresh.jwt.value",
        atlex::handle!("alice.test"),
        atlex::did!("did:plc:abc"),
    );
    output.extra.insert(
        "someFutureToken",
        atlex::types::Data::String("EXTRA-SECRET".to_owned()),
    );
    let shown = format!("{output:?}");
    assert!(!shown.contains("EXTRA-SECRET"), "{shown}");
    assert!(shown.contains("<1 redacted>"), "{shown}");

    let invite = create_invite_code::Output::new("INVITE-SECRET");
    let shown = format!("{invite:?}");
    assert!(!shown.contains("INVITE-SECRET"), "{shown}");

    let account = create_account::Input::new(atlex::handle!("alice.test"))
        .invite_code("INVITE-SECRET")
        .verification_code("VERIFY-SECRET")
        .password("PW-SECRET");
    let shown = format!("{account:?}");
    for secret in ["INVITE-SECRET", "VERIFY-SECRET", "PW-SECRET"] {
        assert!(!shown.contains(secret), "{shown}");
    }
}
