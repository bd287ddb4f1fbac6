//! `GET /metrics` of the real binary, read with a real Prometheus text parser: after a scrape
//! (real Chromium) of a local page chained to a summary by a local OpenAI-compatible model and
//! an echo job, every metric of `workhorse::metrics::NAMES` is served, each has its row in
//! docs/operations.md, and no row documents a metric the code does not have. A bad
//! `metrics.allow_from` stops the daemon with the key named.

use std::collections::BTreeSet;
use std::time::Duration;

use prometheus_parse::Scrape;
use serde_json::{Value, json};

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Route, get, handler};

use crate::helpers::{CONFIGURED_START, Daemon, Sandbox, eventually, fresh_database, http};
use workhorse::metrics::NAMES;

#[path = "../summarise/fake_llm.rs"]
#[allow(dead_code)] // the summarise tests use the rest of it
mod fake_llm;

/// A page to scrape, served on loopback until the test ends.
async fn serve_page() -> (String, tokio::task::JoinHandle<()>) {
    #[handler]
    fn page() -> poem::web::Html<&'static str> {
        poem::web::Html(
            "<html><head><title>Metrics</title></head><body><main><p>Workhorse counts what \
             it does. Prometheus reads the counts. Operators set alerts on them.</p></main>\
             </body></html>",
        )
    }
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("binding the page server");
    let addr = *acceptor.local_addr()[0]
        .as_socket_addr()
        .expect("a TCP address");
    let server = tokio::spawn(async move {
        let _ = poem::Server::new_with_acceptor(acceptor)
            .run(Route::new().at("/", get(page)))
            .await;
    });
    (format!("http://{addr}/"), server)
}

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
    // Arrange: a daemon on its own database with the shipped schedules, a local model and
    // leave to reach loopback; it scrapes a local page, summarises it, and runs an echo job.
    let model = fake_llm::FakeLlm::start(fake_llm::Behaviour::Answer(
        "Workhorse counts what it does.".into(),
    ))
    .await;
    let (page, _page_server) = serve_page().await;
    let db = fresh_database().await;
    let sandbox = Sandbox::new();
    sandbox.write_config(
        "default.toml",
        &format!(
            "[egress]\nallow = [\"127.0.0.1\"]\n\n[[summarise.providers]]\nname = \"fake\"\n\
             base_url = \"{}\"\nmodel = \"fake-model\"\ncontext_window = 8192\n\
             timeout = \"20s\"\nmax_output_tokens = 256\n",
            model.base_url()
        ),
    );
    let schedules = concat!(env!("CARGO_MANIFEST_DIR"), "/jobs");
    let mut daemon = sandbox.serve(&[
        ("WORKHORSE_DATABASE__URL", db.url()),
        ("WORKHORSE_JOBS__SCHEDULES_DIR", schedules),
    ]);
    daemon.wait_ready(CONFIGURED_START).await;
    let token = create_token(&sandbox, db.url());
    let scrapes = format!("{}/v1/scrapes", daemon.base_url());
    let resp = (http().post(&scrapes).bearer_auth(&token))
        .json(&json!({"url": page, "summarise": true}))
        .send()
        .await
        .expect("POST /v1/scrapes");
    assert_eq!(resp.status().as_u16(), 202, "{}", daemon.log());
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

    // The summary's model call is the last thing the chain records.
    let summarised = async || {
        let (_, text) = scrape(&daemon, None).await;
        text.contains("gen_ai_client_token_usage").then_some(())
    };
    eventually(
        Duration::from_secs(60),
        "the scrape and its summary",
        summarised,
    )
    .await;

    // Act: scrape as a local Prometheus would (no token, from loopback), and as an admin.
    let (status, text) = scrape(&daemon, None).await;
    let (admin_status, _) = scrape(&daemon, Some(&token)).await;

    // Assert: the exposition parses, and every metric is in it.
    assert_eq!((status, admin_status), (200, 200), "{}", daemon.log());
    let parsed = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("it parses");
    let served: BTreeSet<&str> = parsed.samples.iter().map(|s| s.metric.as_str()).collect();
    let missing: Vec<_> = NAMES.iter().filter(|n| !served.contains(*n)).collect();
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
    let page = parsed.samples.iter().find(|s| {
        s.metric == "workhorse_scrape_page_duration_seconds"
            && s.labels.get("outcome") == Some("ok")
    });
    assert!(page.is_some(), "{text}");
    let tokens = parsed.samples.iter().find(|s| {
        s.metric == "gen_ai_client_token_usage"
            && s.labels.get("gen_ai_provider_name") == Some("fake")
            && s.labels.get("gen_ai_token_type") == Some("output")
    });
    assert!(tokens.is_some(), "{text}");
    daemon.terminate(Duration::from_secs(20)).await;
}

#[test]
fn a_bad_allow_from_network_stops_the_daemon_naming_key_and_expectation() {
    let sandbox = Sandbox::new();
    let output = sandbox
        .command(&["serve"])
        .env("WORKHORSE_METRICS__ALLOW_FROM", r#"["10.0.0.0/33"]"#)
        .output()
        .expect("running workhorse serve");
    assert_eq!(
        output.status.code(),
        Some(2),
        "exit status {}",
        output.status
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`metrics.allow_from`"), "{stderr}");
    assert!(stderr.contains("WORKHORSE_METRICS__ALLOW_FROM"), "{stderr}");
    assert!(stderr.contains("a list of networks"), "{stderr}");
}
