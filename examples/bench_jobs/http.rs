//! Single enqueues through the real API for `bench_jobs`: `POST /v1/jobs` from keep-alive
//! clients against the `App` with its workers off: wrk in its own process where it is
//! installed (`bench_jobs/wrk.rs`), else reqwest clients in this process.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::Value;
use workhorse::config::{Config, DatabaseConfig};
use workhorse::store;

use super::support::engine::RunningApp;
use super::support::{admin_token, pct};
use super::wrk;

/// Throughput and latency of `POST /v1/jobs`.
pub struct HttpFigures {
    pub rate: f64,
    pub p50: f64,
    pub p99: f64,
    /// Requests answered 202, warm-ups included: all of them for in-process clients; those
    /// wrk counted (it does not count the ones in flight when it stops) for wrk.
    pub sent: usize,
    /// Whether wrk sent them (else clients in this process).
    pub from_wrk: bool,
}

const ENQUEUE_BODY: &str = r#"{"kind":"echo","args":{}}"#;

/// Single enqueues through the real API (workers off) from `clients` concurrent keep-alive
/// clients: wrk for `duration` where it is installed, else `requests` from this process.
/// The inner `Err` says why it could not be measured.
pub async fn http_enqueue(
    url: &str,
    requests: usize,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Result<HttpFigures, String>> {
    let pool = store::connect_lazy(url, &DatabaseConfig::default())?;
    let token = admin_token(&pool).await?;
    pool.close().await;
    let data_dir = tempfile::tempdir().context("creating a data dir")?;
    let mut config = Config::default();
    config.jobs.run_workers = false;
    let app = RunningApp::start(url, config, data_dir.path()).await?;
    let endpoint = format!("{}/v1/jobs", app.base);
    let figures = match wrk::available() {
        true => load_wrk(&endpoint, &token, clients, duration).await,
        false => load_http(&endpoint, &token, requests, clients).await,
    };
    app.stop().await?;
    figures
}

/// One request to check the contract, then wrk.
async fn load_wrk(
    endpoint: &str,
    token: &str,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Result<HttpFigures, String>> {
    let client = reqwest::Client::builder().no_proxy().build()?;
    if let Err(why) = warm_up(&client, endpoint, token).await? {
        return Ok(Err(why));
    }
    let mut figures = wrk::post(endpoint, token, ENQUEUE_BODY, clients, duration).await?;
    figures.sent += 1;
    Ok(Ok(figures))
}

/// One request that must be answered 202 with an id; `Err` when the route is missing.
async fn warm_up(
    client: &reqwest::Client,
    endpoint: &str,
    token: &str,
) -> anyhow::Result<Result<(), String>> {
    let resp = post_job(client, endpoint, token).await?;
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::METHOD_NOT_ALLOWED
    {
        return Ok(Err(format!("POST /v1/jobs answered {status}")));
    }
    let body: Value = resp.json().await.context("reading the enqueue response")?;
    ensure!(
        status == reqwest::StatusCode::ACCEPTED,
        "POST /v1/jobs answered {status}: {body}"
    );
    ensure!(
        body["id"].is_string(),
        "POST /v1/jobs answered without an id: {body}"
    );
    Ok(Ok(()))
}

async fn load_http(
    endpoint: &str,
    token: &str,
    requests: usize,
    clients: usize,
) -> anyhow::Result<Result<HttpFigures, String>> {
    let mut conns = Vec::new();
    for _ in 0..clients {
        let client = reqwest::Client::builder().no_proxy().build()?;
        // The first request opens the keep-alive connection and checks the contract.
        if let Err(why) = warm_up(&client, endpoint, token).await? {
            return Ok(Err(why));
        }
        conns.push(client);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (conns.into_iter())
        .map(|client| {
            let (next, endpoint, token) = (next.clone(), endpoint.to_string(), token.to_string());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < requests {
                    let sent = Instant::now();
                    let resp = post_job(&client, &endpoint, &token).await?;
                    let status = resp.status();
                    let body = resp.bytes().await.context("reading the enqueue response")?;
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                    if status != reqwest::StatusCode::ACCEPTED {
                        bail!(
                            "POST /v1/jobs answered {status}: {}",
                            String::from_utf8_lossy(&body)
                        );
                    }
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(requests);
    for task in tasks {
        latencies.extend(task.await.context("an HTTP client task")??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    Ok(Ok(HttpFigures {
        rate: requests as f64 / elapsed,
        p50: pct(&latencies, 50.0),
        p99: pct(&latencies, 99.0),
        sent: requests + clients,
        from_wrk: false,
    }))
}

async fn post_job(
    client: &reqwest::Client,
    endpoint: &str,
    token: &str,
) -> anyhow::Result<reqwest::Response> {
    client
        .post(endpoint)
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(ENQUEUE_BODY)
        .send()
        .await
        .context("sending POST /v1/jobs")
}
