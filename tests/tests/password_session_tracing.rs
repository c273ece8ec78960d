//! What a password-session call records with `tracing`: the call's span (NSID, method, status,
//! attempt, duration), the refresh it triggered, and no secret (tokens, signatures, password).
//!
//! This test has a binary of its own and installs its subscriber as the process-wide default
//! before the SDK runs, because of how `tracing` caches interest. Whether a callsite (a span or
//! event macro) is enabled is computed once, when the callsite is first hit by any thread, and
//! cached for the whole process; with at most one subscriber registered, it is computed against
//! the default subscriber of the *thread that hits it first* (tracing-core 0.1.36,
//! `Rebuilder::JustOne` in `callsite.rs`). When this test lived in `password_session.rs` and
//! used `tracing::subscriber::set_default` (a thread-local subscriber), a test running in
//! parallel that reached the `xrpc` span first, on a thread without a subscriber, cached
//! "never" for it, so the call's span was missing from the capture (3 failures in 30 runs of
//! that binary); `rebuild_interest_cache` at the start of the test did not help with callsites
//! first hit after it. Here the subscriber is global and installed before any SDK callsite is
//! hit, and no other test shares the process, so every callsite is registered with it in place.
//!
//! The subscriber records only what happens on threads that asked for it ([`capture::start`]):
//! the test runs on a current-thread runtime, so the SDK's spans and events are all on the test
//! thread, while the mock server's own logging (on its threads) stays out.

mod support;

use atlex::auth::PasswordSession;
use atlex::xrpc::NoBody;
use serde_json::{Value, json};
use support::*;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const DID: &str = "did:plc:alice";
const PASSWORD: &str = "hunter2-app-password";
const CREATE: &str = "/xrpc/com.atproto.server.createSession";
const REFRESH: &str = "/xrpc/com.atproto.server.refreshSession";
const GET_THING: &str = "/xrpc/com.example.getThing";

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A `createSession`/`refreshSession` answer whose DID document points at `pds`.
fn session_body(access: &str, refresh: &str, pds: &str) -> Value {
    json!({
        "accessJwt": access,
        "refreshJwt": refresh,
        "handle": "alice.test",
        "did": DID,
        "active": true,
        "didDoc": {
            "@context": ["https://www.w3.org/ns/did/v1"],
            "id": DID,
            "alsoKnownAs": ["at://alice.test"],
            "service": [{
                "id": "#atproto_pds",
                "type": "AtprotoPersonalDataServer",
                "serviceEndpoint": pds
            }]
        }
    })
}

/// A subscriber, installed once as the global default, that writes every span and event field
/// of the threads that called [`start`] into their capture.
mod capture {
    use std::cell::RefCell;
    use std::fmt::{Debug, Write};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, Once};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::subscriber::Interest;
    use tracing::{Event, Metadata, Subscriber};

    thread_local! {
        static CAPTURE: RefCell<Option<Arc<Mutex<String>>>> = const { RefCell::new(None) };
    }

    /// Installs the global subscriber (once) and captures this thread's spans and events into
    /// the returned buffer.
    pub fn start() -> Arc<Mutex<String>> {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            tracing::subscriber::set_global_default(Global::default())
                .expect("no other global subscriber in this binary");
        });
        let out = Arc::new(Mutex::new(String::new()));
        CAPTURE.with(|capture| *capture.borrow_mut() = Some(out.clone()));
        out
    }

    fn with_capture(f: impl FnOnce(&mut String)) {
        CAPTURE.with(|capture| {
            if let Some(out) = capture.borrow().as_ref() {
                f(&mut out.lock().unwrap());
            }
        });
    }

    #[derive(Default)]
    struct Global {
        next: AtomicU64,
    }

    struct Writer<'a>(&'a mut String);

    impl Visit for Writer<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
            let _ = write!(self.0, "{}={:?} ", field.name(), value);
        }
    }

    impl Subscriber for Global {
        fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
            // Whether a span or event is wanted depends on the thread (`enabled`), so ask
            // every time rather than caching one answer.
            Interest::sometimes()
        }
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            CAPTURE.with(|capture| capture.borrow().is_some())
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            with_capture(|out| {
                let _ = write!(out, "\nspan {} ", span.metadata().name());
                span.record(&mut Writer(out));
            });
            Id::from_u64(self.next.fetch_add(1, Ordering::SeqCst) + 1)
        }
        fn record(&self, _: &Id, values: &Record<'_>) {
            with_capture(|out| {
                out.push_str("\nrecord ");
                values.record(&mut Writer(out));
            });
        }
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            with_capture(|out| {
                out.push_str("\nevent ");
                event.record(&mut Writer(out));
            });
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}

#[tokio::test]
async fn tracing_records_calls_without_secrets() {
    let capture = capture::start();

    let server = MockServer::start().await;
    let (a1, r1) = (jwt("access-1", 7200), jwt("refresh-1", 86400));
    let (a2, r2) = (jwt("access-2", 7200), jwt("refresh-2", 86400));
    Mock::given(path(CREATE))
        .respond_with(ResponseTemplate::new(200).set_body_json(session_body(
            &a1,
            &r1,
            &server.uri(),
        )))
        .mount(&server)
        .await;
    Mock::given(path(GET_THING))
        .and(header("authorization", bearer(&a1).as_str()))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": "ExpiredToken", "message": "Token has expired"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(REFRESH))
        .and(header("authorization", bearer(&r1).as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(session_body(
            &a2,
            &r2,
            &server.uri(),
        )))
        .mount(&server)
        .await;
    Mock::given(path(GET_THING))
        .and(header("authorization", bearer(&a2).as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "things": ["fresh"] })))
        .mount(&server)
        .await;
    let store = TestStore::new();
    let client = PasswordSession::login(&server.uri(), "alice.test", PASSWORD, store.clone())
        .await
        .unwrap();
    let (_, _) = client.call::<GetThing>(params("a"), NoBody).await.unwrap();

    let out = capture.lock().unwrap().clone();
    assert!(
        out.contains("span xrpc nsid=\"com.example.getThing\" method=\"GET\""),
        "{out}"
    );
    assert!(
        out.contains("nsid=\"com.atproto.server.refreshSession\""),
        "{out}"
    );
    assert!(out.contains("status=400"), "{out}");
    assert!(out.contains("attempt=2"), "{out}");
    assert!(out.contains("duration_ms="), "{out}");
    for secret in [
        a1.as_str(),
        r1.as_str(),
        a2.as_str(),
        r2.as_str(),
        "sig-",
        PASSWORD,
    ] {
        assert!(
            !out.contains(secret),
            "{secret} leaked into the trace:\n{out}"
        );
    }
}
