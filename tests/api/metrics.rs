//! `GET /metrics`: job counts and histograms after real jobs ran, the jobs gauge, who may read
//! it (admin token, allow_from networks; 403 for a user's token, 401 for a stranger).

use std::time::Duration;

use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;
use sqlx::PgPool;
use workhorse::domain::users::Role;

use crate::helpers::{TestApp, assert_problem, eventually, spawn_app, spawn_app_with};

/// Scrape the app's metrics as Prometheus would parse them.
async fn scrape(app: &TestApp, token: Option<&str>) -> Scrape {
    let resp = app.get("/metrics", token).await;
    assert_eq!(resp.status().as_u16(), 200, "GET /metrics status");
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = resp.text().await.unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("exposition parses")
}

/// The sample of `metric` whose labels include all of `labels`.
fn find<'a>(scrape: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
}

fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    match find(scrape, metric, labels).map(|s| &s.value) {
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        other => panic!("{metric}{labels:?}: {other:?}"),
    }
}

/// Observations in a histogram series (its `+Inf` bucket).
fn observations(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    match find(scrape, metric, labels).map(|s| &s.value) {
        Some(Value::Histogram(buckets)) => buckets
            .iter()
            .find(|b| b.less_than.is_infinite())
            .map(|b| b.count)
            .unwrap_or_default(),
        other => panic!("{metric}{labels:?} is not a histogram: {other:?}"),
    }
}

async fn state_count(pool: &PgPool, state: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'echo' AND state = $1")
        .bind(state)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn metrics_count_succeeded_and_dead_attempts_with_their_histograms(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let admin = app.admin_token().await;
    const N: usize = 5;
    for i in 0..N {
        app.enqueue(&admin, json!({"kind": "echo", "args": {"message": i}}))
            .await;
    }
    app.enqueue(
        &admin,
        json!({"kind": "echo", "args": {"fail_permanently": true}}),
    )
    .await;
    let settled = eventually(Duration::from_secs(15), || async {
        state_count(&pool, "succeeded").await == N as i64 && state_count(&pool, "dead").await == 1
    })
    .await;
    assert!(settled, "the jobs finished");

    // The attempts are counted as their outcomes are seen; the scrape comes after.
    let metrics = scrape(&app, Some(&admin)).await;
    let echo = |outcome| [("kind", "echo"), ("outcome", outcome)];
    let attempts = "workhorse_job_attempts_total";
    assert_eq!(value(&metrics, attempts, &echo("succeeded")), N as f64);
    assert_eq!(value(&metrics, attempts, &echo("dead")), 1.0);
    assert_eq!(value(&metrics, attempts, &echo("failed")), 0.0);
    let kind = [("kind", "echo")];
    let durations = "workhorse_job_attempt_duration_seconds";
    assert_eq!(observations(&metrics, durations, &kind), (N + 1) as f64);
    let lateness = "workhorse_job_lateness_seconds";
    assert_eq!(observations(&metrics, lateness, &kind), (N + 1) as f64);
    // The dead job stays in the gauge; succeeded jobs are never in it.
    let jobs = |state| [("kind", "echo"), ("state", state)];
    assert_eq!(value(&metrics, "workhorse_jobs", &jobs("dead")), 1.0);
    assert_eq!(value(&metrics, "workhorse_jobs", &jobs("pending")), 0.0);
    assert!(find(&metrics, "workhorse_jobs", &jobs("succeeded")).is_none());
    // The enqueues went through the API, counted under their route template.
    let route = [
        ("http_route", "/v1/jobs"),
        ("http_request_method", "POST"),
        ("http_response_status_code", "202"),
    ];
    let requests = "http_server_request_duration_seconds";
    assert_eq!(observations(&metrics, requests, &route), (N + 1) as f64);
    assert_eq!(
        value(&metrics, "workhorse_build_info", &[]),
        1.0,
        "build info"
    );
    let in_use = value(
        &metrics,
        "workhorse_db_pool_connections",
        &[("state", "in_use")],
    );
    assert!(in_use >= 0.0);
}

#[sqlx::test]
async fn jobs_gauge_counts_live_jobs_once_per_cache_window(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), |c| {
        c.jobs.run_workers = false;
        c.metrics.jobs_cache = Duration::from_millis(300);
    })
    .await;
    let admin = app.admin_token().await;
    let first = scrape(&app, None).await;
    let pending = [("kind", "echo"), ("state", "pending")];
    assert_eq!(value(&first, "workhorse_jobs", &pending), 0.0);

    for _ in 0..3 {
        app.enqueue(&admin, json!({"kind": "echo"})).await;
    }
    // Within the window the count is the cached one.
    let cached = scrape(&app, None).await;
    assert_eq!(value(&cached, "workhorse_jobs", &pending), 0.0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let fresh = scrape(&app, None).await;
    assert_eq!(value(&fresh, "workhorse_jobs", &pending), 3.0);
}

#[sqlx::test]
async fn metrics_refuse_a_users_token_with_403(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (_, user) = app.user_with_token("metrics-user", Role::User).await;
    let resp = app.get("/metrics", Some(&user)).await;
    let problem = assert_problem(resp, 403, "forbidden").await;
    assert!(problem["detail"].as_str().unwrap().contains("admin"));
}

#[sqlx::test]
async fn metrics_refuse_an_unlisted_address_without_a_token_with_401(pool: PgPool) {
    // Loopback is not listed here, so the test client is a stranger.
    let app = spawn_app_with(pool, |c| c.metrics.allow_from = vec!["10.0.0.0/8".into()]).await;
    let resp = app.get("/metrics", None).await;
    let problem = assert_problem(resp, 401, "unauthorized").await;
    assert!(problem["detail"].as_str().unwrap().contains("allow_from"));
    let resp = app.get("/metrics", Some("wh_not-a-real-token")).await;
    assert_problem(resp, 401, "unauthorized").await;

    // An admin's token reads them from anywhere.
    let admin = app.admin_token().await;
    let metrics = scrape(&app, Some(&admin)).await;
    assert!(find(&metrics, "workhorse_build_info", &[]).is_some());
}

#[sqlx::test]
async fn metrics_are_served_without_a_token_to_a_listed_address(pool: PgPool) {
    // The default allow_from lists loopback, where the test client connects from.
    let app = spawn_app(pool).await;
    let metrics = scrape(&app, None).await;
    let echo = [("kind", "echo"), ("outcome", "crashed")];
    assert_eq!(value(&metrics, "workhorse_job_attempts_total", &echo), 0.0);
    let browser = [("state", "idle")];
    assert_eq!(value(&metrics, "workhorse_browser_sessions", &browser), 0.0);
}

#[sqlx::test]
async fn a_stopped_app_leaves_nothing_alive_through_its_metrics(pool: PgPool) {
    // Regression: the browser gauge's callback held the scraper, which holds the metrics.
    let mut app = spawn_app(pool).await;
    let scraper = std::sync::Arc::downgrade(&app.scraper);
    app.shutdown.cancel();
    (&mut app.stopped)
        .await
        .expect("the app task")
        .expect("the app stops");
    drop(app);
    assert!(scraper.upgrade().is_none(), "the scraper outlived its app");
}
