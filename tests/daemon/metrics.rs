//! `GET /metrics` of the real binary, read with a real Prometheus text parser: every metric of
//! `workhorse::metrics::NAMES` is served and has its row in docs/operations.md, and no row
//! documents a metric the code does not have.

use std::collections::BTreeSet;
use std::time::Duration;

use prometheus_parse::Scrape;
use serde_json::{Value, json};

use crate::helpers::{CONFIGURED_START, Daemon, Sandbox, eventually, fresh_database, http};
use workhorse::metrics::NAMES;

/// Metrics whose series appear only once a browser page or a model call happened, which this
/// test does not arrange (tests/scrape and tests/summarise drive those clients); their
/// families must still be documented.
const NEED_A_BROWSER_OR_MODEL: [&str; 3] = [
    "workhorse_scrape_page_duration_seconds",
    "gen_ai_client_operation_duration_seconds",
    "gen_ai_client_token_usage",
];

/// The metric names in the first column of the table under `### Every metric` in
/// docs/operations.md.
fn documented() -> BTreeSet<String> {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
        .expect("reading docs/operations.md");
    let section = page
        .split("\n### Every metric")
        .nth(1)
        .expect("docs/operations.md has a ### Every metric section");
    let section = section.split("\n#").next().unwrap_or_default();
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .filter(|name| name.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(str::to_string)
        .collect()
}

/// `workhorse admin create-token` against `db_url`; returns the printed token.
fn create_token(sandbox: &Sandbox, db_url: &str) -> String {
    let output = sandbox
        .command(&["admin", "create-token"])
        .env("WORKHORSE_DATABASE__URL", db_url)
        .env("WORKHORSE_LOG__FORMAT", "json")
        .output()
        .expect("running workhorse admin create-token");
    assert!(output.status.success(), "admin create-token failed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout.lines().last().unwrap_or_default().trim().to_string()
}

async fn scrape(daemon: &Daemon, token: Option<&str>) -> (u16, String) {
    let mut req = http().get(format!("{}/metrics", daemon.base_url()));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("GET /metrics");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

#[test]
fn every_metric_is_documented_and_every_documented_metric_exists() {
    let names: BTreeSet<String> = NAMES.iter().map(|n| n.to_string()).collect();
    let docs = documented();
    let undocumented: Vec<_> = names.difference(&docs).collect();
    let unknown: Vec<_> = docs.difference(&names).collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/operations.md: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "documented but not in metrics::NAMES: {unknown:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_daemon_serves_every_documented_metric_to_prometheus() {
    // Arrange: a daemon on its own database with the shipped schedules, that ran one job.
    let db = fresh_database().await;
    let sandbox = Sandbox::new();
    let schedules = concat!(env!("CARGO_MANIFEST_DIR"), "/jobs");
    let mut daemon = sandbox.serve(&[
        ("WORKHORSE_DATABASE__URL", db.url()),
        ("WORKHORSE_JOBS__SCHEDULES_DIR", schedules),
    ]);
    daemon.wait_ready(CONFIGURED_START).await;
    let token = create_token(&sandbox, db.url());
    let jobs = format!("{}/v1/jobs", daemon.base_url());
    let job: Value = (http().post(&jobs).bearer_auth(&token))
        .json(&json!({"kind": "echo", "args": {"message": "metrics"}}))
        .send()
        .await
        .expect("POST /v1/jobs")
        .json()
        .await
        .expect("the job");
    let url = format!("{jobs}/{}", job["id"].as_str().expect("a job id"));
    eventually(
        Duration::from_secs(20),
        "the echo job succeeds",
        async || {
            let resp = http().get(&url).bearer_auth(&token).send().await.ok()?;
            let job: Value = resp.json().await.ok()?;
            (job["state"] == "succeeded").then_some(())
        },
    )
    .await;

    // Act: scrape as a local Prometheus would (no token, from loopback), and as an admin.
    let (status, text) = scrape(&daemon, None).await;
    let (admin_status, _) = scrape(&daemon, Some(&token)).await;

    // Assert: the exposition parses, and every metric is in it.
    assert_eq!((status, admin_status), (200, 200), "{}", daemon.log());
    let parsed = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("it parses");
    let served: BTreeSet<&str> = parsed.samples.iter().map(|s| s.metric.as_str()).collect();
    let missing: Vec<_> = (NAMES.iter())
        .filter(|n| !NEED_A_BROWSER_OR_MODEL.contains(n))
        .filter(|n| !served.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "missing from /metrics: {missing:?}\n{text}"
    );
    let succeeded = parsed.samples.iter().find(|s| {
        s.metric == "workhorse_job_attempts_total"
            && s.labels.get("kind") == Some("echo")
            && s.labels.get("outcome") == Some("succeeded")
    });
    assert!(
        matches!(succeeded.map(|s| &s.value), Some(prometheus_parse::Value::Counter(v)) if *v == 1.0),
        "{succeeded:?}"
    );
    daemon.terminate(Duration::from_secs(20)).await;
}
