//! The `oauth_webapp` example end to end in a real browser: Debian's headless Chromium, driven
//! by playwright-core (`tests/pds/browser-webapp.mjs`), opens the app, enters a handle, signs
//! in and consents on the reference PDS's own pages, lands back on the app, and posts through a
//! second app process; both processes share one PostgreSQL store. Screenshots of each step go
//! to `target/oauth-browser/`.
//!
//! Needs: the reference PDS, PostgreSQL (`$ATLEX_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`), `/usr/bin/chromium` (`$CHROMIUM`), and the
//! example built with PostgreSQL (`cargo build -p atlex --example oauth_webapp --features
//! postgres`; `$ATLEX_OAUTH_WEBAPP_BIN`, default `target/debug/examples/oauth_webapp`). Without
//! one of them the test skips with a note, and fails under `CI=true`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use atlex_tests::data::{is_ci, note_skip, workspace_root};
use atlex_tests::pds::harness_dir;
use atlex_tests::require_pds;

fn unavailable(reason: &str) {
    assert!(
        !is_ci(),
        "CI=true and the browser test cannot run: {reason}"
    );
    eprintln!("skipping: {reason}");
    note_skip(reason);
}

/// A child process killed when the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts one app process and waits for its "listening on" line.
fn start_app(bin: &PathBuf, args: &[String], env: &[(&'static str, String)]) -> Running {
    let mut child = Command::new(bin)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|error| panic!("running {}: {error}", bin.display()));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let running = Running(child);
    loop {
        match lines.next() {
            Some(Ok(line)) if line.starts_with("listening on ") => break,
            Some(Ok(_)) => continue,
            other => panic!("the web app exited before listening: {other:?}"),
        }
    }
    // Keep draining its stdout so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    running
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_on_one_process_and_post_through_another_in_chromium() {
    let pds = require_pds!();
    let root = workspace_root();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    if !PathBuf::from(&chromium).exists() {
        return unavailable(&format!(
            "no Chromium at {chromium} (apt-get install chromium)"
        ));
    }
    let bin = std::env::var_os("ATLEX_OAUTH_WEBAPP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/debug/examples/oauth_webapp"));
    if !bin.exists() {
        return unavailable(&format!(
            "no web-app binary at {} (cargo build -p atlex --example oauth_webapp --features postgres)",
            bin.display()
        ));
    }
    let postgres = std::env::var("ATLEX_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    if tokio::net::TcpStream::connect("127.0.0.1:5432")
        .await
        .is_err()
        && !std::env::var("ATLEX_POSTGRES_URL").is_ok_and(|v| !v.is_empty())
    {
        return unavailable("PostgreSQL is not reachable at 127.0.0.1:5432");
    }
    let node = atlex_tests::pds::node_binary(&harness_dir());
    if !harness_dir().join("node_modules/playwright-core").exists() {
        return unavailable("playwright-core is not installed (tests/pds/setup.sh)");
    }

    let account = pds.create_account().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    let (port_a, port_b) = (free_port(), free_port());
    let public = format!("https://webapp.atlex.internal:{port_a}");
    let schema = format!("oauthapps_browser_{}", std::process::id());
    let env = pds.env_vars();
    let common = |listen: u16, name: &str| -> Vec<String> {
        [
            "--public-url",
            &public,
            "--listen",
            &format!("127.0.0.1:{listen}"),
            "--keys",
            keys.to_str().unwrap(),
            "--store",
            &postgres,
            "--pg-schema",
            &schema,
            "--name",
            name,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let mut args_a = common(port_a, "app A");
    args_a.push("--generate-keys".to_owned());
    let _a = start_app(&bin, &args_a, &env);
    let _b = start_app(&bin, &common(port_b, "app B"), &env);

    let shots = root.join("target/oauth-browser");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let output = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::process::Command::new(&node)
            .arg("browser-webapp.mjs")
            .current_dir(harness_dir())
            .env("APP", &public)
            .env("APP_A_LOCAL", format!("http://127.0.0.1:{port_a}"))
            .env("APP_B_LOCAL", format!("http://127.0.0.1:{port_b}"))
            .env("HANDLE", &account.handle)
            .env("PASSWORD", &account.password)
            .env("SCREENSHOTS", &shots)
            .env("CHROMIUM", &chromium)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the browser script took more than 180 s")
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser script failed ({}):\n{stderr}\n{}",
        output.status,
        pds.stderr_tail()
    );
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["ok"], true, "{result}");
    for step in [
        "app-a-sign-in-form",
        "pds-sign-in",
        "pds-consent",
        "app-a-signed-in",
        "app-b-compose",
        "app-b-posted",
    ] {
        let found = std::fs::read_dir(&shots)
            .unwrap()
            .filter_map(Result::ok)
            .any(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .ends_with(&format!("{step}.png"))
            });
        assert!(found, "no screenshot of {step} in {}", shots.display());
    }

    // The post is really in the account's repo.
    let records = pds
        .query(
            "com.atproto.repo.listRecords",
            &[
                ("repo", account.did.as_str()),
                ("collection", "app.bsky.feed.post"),
            ],
            None,
        )
        .await
        .unwrap();
    let text = result["text"].as_str().unwrap();
    assert!(records.to_string().contains(text), "{records}");
}
