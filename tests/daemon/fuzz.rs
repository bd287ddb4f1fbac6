//! The API contract, checked by a fuzzer: schemathesis (pinned, installed by deploy/test.sh)
//! runs every check it has (server errors, statuses and bodies the spec does not list, valid
//! requests refused, invalid ones accepted, methods, auth, resources after delete) against a
//! daemon of its own, with a fixed seed, following the links it infers from create to get.
//! Its configuration, with the few exceptions it allows and why, is
//! tests/contract/schemathesis.toml. Skipped, with a `SKIPPED:` line, where schemathesis is
//! not installed, unless `WORKHORSE_REQUIRE_SCHEMATHESIS=1`.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::{CONFIGURED_START, Sandbox, create_token, fresh_database, http};

const REQUIRE_ENV: &str = "WORKHORSE_REQUIRE_SCHEMATHESIS";
const INSTALL: &str = "python3 -m pip install schemathesis==4.32.5";
/// Test cases per operation and phase: enough to reach each operation with a valid body.
const EXAMPLES: &str = "25";
const SEED: &str = "1";

fn schemathesis() -> Command {
    Command::new("st")
}

/// Whether schemathesis runs here; prints `SKIPPED:` (or panics when it is required) if not.
fn installed() -> bool {
    let why = match schemathesis().arg("--version").output() {
        Ok(out) if out.status.success() => return true,
        Ok(out) => format!(
            "st --version failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("schemathesis (st) cannot run: {e}"),
    };
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!("{why} (and {REQUIRE_ENV}=1); install it with `{INSTALL}`");
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {why}; install it with `{INSTALL}` to run this test"
    );
    false
}

async fn post(base: &str, token: &str, path: &str, body: Value) -> Value {
    let response = (http().post(format!("{base}{path}")).bearer_auth(token))
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    assert!(
        response.status().is_success(),
        "POST {path}: {}",
        response.status()
    );
    response.json().await.expect("a JSON answer")
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_nothing_with_every_check() {
    if !installed() {
        return;
    }
    // Arrange: a daemon, an admin token for the fuzzer, and a user and token it may demote
    // and revoke without locking itself out.
    let db = fresh_database().await;
    let sandbox = Sandbox::new();
    // Its admin token enqueues every kind with arguments that fit: an injection of up to a
    // million rows is stopped after 2 s, once, so the fuzzer does not load the machine.
    let mut daemon = sandbox.serve(&[
        ("WORKHORSE_DATABASE__URL", db.url()),
        ("WORKHORSE_JOBS__KINDS__INJECT__TIMEOUT", "2s"),
        ("WORKHORSE_JOBS__KINDS__INJECT__MAX_ATTEMPTS", "1"),
    ]);
    daemon.wait_ready(CONFIGURED_START).await;
    let token = create_token(&sandbox, db.url());
    let base = daemon.base_url();
    let user = post(&base, &token, "/v1/users", json!({"name": "sacrifice"})).await;
    let user_id = user["id"].as_str().expect("the user's id");
    let spare = post(
        &base,
        &token,
        &format!("/v1/users/{user_id}/tokens"),
        json!({"name": "spare"}),
    )
    .await;
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract/schemathesis.toml");
    let reports = tempfile::TempDir::new().expect("a report directory");

    // Act
    let output = schemathesis()
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{base}/openapi.json"))
        .args([
            "--checks",
            "all",
            "--seed",
            SEED,
            "--max-examples",
            EXAMPLES,
        ])
        .args(["--workers", "2", "--no-color", "--report", "junit"])
        .arg("--report-dir")
        .arg(reports.path())
        .arg("--header")
        .arg(format!("Authorization: Bearer {token}"))
        .env("SACRIFICE_USER", user_id)
        .env(
            "SACRIFICE_TOKEN",
            spare["id"].as_str().expect("the token's id"),
        )
        // Its cache of crashes goes to the report directory, not into the checkout.
        .current_dir(reports.path())
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .expect("running schemathesis");

    // Assert: a clean run; on failure, its failures and summary.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout
        .find("FAILURES")
        .or_else(|| stdout.find("SUMMARY"))
        .map_or(&stdout[..], |at| &stdout[at..]);
    assert!(
        output.status.success(),
        "schemathesis failed:\n{summary}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Every operation the daemon serves was fuzzed.
    let spec: Value = (http().get(format!("{base}/openapi.json")).send().await)
        .expect("GET /openapi.json")
        .json()
        .await
        .expect("the spec");
    let served: usize = (spec["paths"].as_object().expect("paths").values())
        .filter_map(Value::as_object)
        .map(|operations| operations.len())
        .sum();
    let all = format!("{served} selected / {served} total");
    assert!(stdout.contains(&all), "not {all}: {stdout}");
}
