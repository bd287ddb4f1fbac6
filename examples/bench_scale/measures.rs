//! The measures of `bench_scale`, each on the table as the previous steps left it: `GET
//! /v1/jobs` latency, pickup with jobs waiting in other kinds, the daemon's memory with a
//! backlog, pruning while a drain runs, and the table's size after a day of jobs.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use sqlx::PgPool;
use uuid::Uuid;
use workhorse::config::{Config, JobsConfig};
use workhorse::store::jobs;

use super::fill;
use super::support::engine::{self, RunningApp, SHUTDOWN};
use super::support::pct;

/// A kind no worker of this process serves: jobs another daemon would run.
pub const ELSEWHERE: &str = "bench_elsewhere";
/// Rows one pruning statement deletes, as the engine's pruner does (`engine/upkeep.rs`).
const PRUNE_BATCH: i64 = 5_000;

/// p50 and p99 of `GET /v1/jobs` (default page) in ms, for each token in `tokens`: `requests`
/// requests from 4 keep-alive clients against the real `App` (workers off, rate limits lifted).
pub async fn list_latency(
    url: &str,
    tokens: &[&str],
    requests: usize,
) -> anyhow::Result<Vec<(f64, f64)>> {
    let data_dir = tempfile::tempdir().context("creating a data dir")?;
    let mut config = Config::default();
    config.jobs.run_workers = false;
    // The plans' per-token rate limits would answer 429 long before the table matters.
    for plan in config.plans.values_mut() {
        plan.rate_limit = 1_000_000;
    }
    let app = RunningApp::start(url, config, data_dir.path()).await?;
    let endpoint = format!("{}/v1/jobs", app.base);
    let mut out = Vec::new();
    for token in tokens {
        match list_load(&endpoint, token, requests).await {
            Ok(figures) => out.push(figures),
            Err(e) => {
                app.stop().await?;
                return Err(e);
            }
        }
    }
    app.stop().await?;
    Ok(out)
}

async fn list_load(endpoint: &str, token: &str, requests: usize) -> anyhow::Result<(f64, f64)> {
    let clients = 4;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (endpoint, token) = (endpoint.to_string(), token.to_string());
        let share = requests / clients + usize::from(c < requests % clients);
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().no_proxy().build()?;
            let mut latencies = Vec::with_capacity(share);
            // One warm-up request opens the connection.
            for i in 0..=share {
                let sent = Instant::now();
                let resp = (client.get(&endpoint).bearer_auth(&token).send().await)
                    .context("sending GET /v1/jobs")?;
                let status = resp.status();
                let body = resp.bytes().await.context("reading GET /v1/jobs")?;
                ensure!(status == 200, "GET /v1/jobs answered {status}");
                ensure!(body.len() > 2, "GET /v1/jobs answered an empty body");
                if i > 0 {
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                }
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    for task in tasks {
        latencies.extend(task.await.context("a client task")??);
    }
    latencies.sort_by(f64::total_cmp);
    Ok((pct(&latencies, 50.0), pct(&latencies, 99.0)))
}

/// Pickup p50/p95 (ms) of `samples` single echo jobs into an idle worker while `waiting`
/// pending jobs of a kind this process does not serve sit in the table.
pub async fn pickup_with_waiting(
    pool: &PgPool,
    owners: &[Uuid],
    config: &JobsConfig,
    waiting: u64,
    samples: usize,
) -> anyhow::Result<(f64, f64)> {
    fill::pending(pool, owners, ELSEWHERE, "{}", waiting).await?;
    let engine = engine::start(pool, config).await?;
    // Let the dispatchers finish their start-up claims and fall asleep.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let picked = engine::pickup(pool, samples).await;
    engine.shutdown(SHUTDOWN).await;
    let picked = picked?;
    fill::remove(pool, ELSEWHERE).await?;
    Ok((pct(&picked, 50.0), pct(&picked, 95.0)))
}

/// What the memory measure saw.
pub struct Memory {
    /// This process's RSS before the engine started, and after it ran with the backlog (MiB).
    pub before: f64,
    pub after: f64,
    /// Jobs the engine held (running or claimed) at the end.
    pub held: i64,
}

/// This process's RSS before and after the engine ran for `secs` with `backlog` pending echo
/// jobs in a kind it serves, each of which sleeps ten minutes: the workers stay busy and the
/// dispatcher holds what it claimed, never the backlog.
pub async fn memory(
    pool: &PgPool,
    owners: &[Uuid],
    config: &JobsConfig,
    backlog: u64,
    secs: u64,
) -> anyhow::Result<Memory> {
    fill::pending(pool, owners, "echo", r#"{"sleep_ms": 600000}"#, backlog).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = fill::rss_mib()?;
    let engine = engine::start(pool, config).await?;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let after = fill::rss_mib();
    let held: Result<i64, _> =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'echo' AND state = 'running'")
            .fetch_one(pool)
            .await;
    engine.shutdown(SHUTDOWN).await;
    fill::remove(pool, "echo").await?;
    Ok(Memory {
        before,
        after: after?,
        held: held.context("counting running jobs")?,
    })
}

/// What the pruning measure saw.
pub struct Pruned {
    /// Finished jobs deleted per second, and in how long.
    pub rate: f64,
    pub secs: f64,
    /// The drain's jobs/s meanwhile.
    pub drain_rate: f64,
}

/// Insert `n` jobs finished past the default retention, then delete them with the engine's
/// pruning statement (`store::jobs::prune`, in batches as `engine/upkeep.rs` runs it) while an
/// engine drains `drain` no-op jobs. The engine's own pruner keeps out of it (a long
/// retention), so one pruner deletes everything.
pub async fn prune_while_draining(
    pool: &PgPool,
    owners: &[Uuid],
    config: &JobsConfig,
    n: u64,
    drain: usize,
) -> anyhow::Result<Pruned> {
    let retention = JobsConfig::default().retention;
    let past = fill::Finished {
        n,
        from_secs: 2.0 * fill::secs(retention),
        to_secs: fill::secs(retention) + 3600.0,
    };
    fill::finished(pool, owners, &past).await?;
    let config = JobsConfig {
        retention: Duration::from_secs(10 * 365 * 24 * 3600),
        ..config.clone()
    };
    let pruning = async {
        // Let the drain's enqueue finish and its engine start.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        let mut total = 0;
        loop {
            let deleted = jobs::prune(pool, retention, PRUNE_BATCH)
                .await
                .context("pruning")?;
            total += deleted;
            if deleted < PRUNE_BATCH as u64 {
                break;
            }
        }
        anyhow::Ok((total, started.elapsed().as_secs_f64()))
    };
    let (drained, pruned) = tokio::join!(engine::drain(pool, &config, drain), pruning);
    let (drained, (total, secs)) = (drained?, pruned?);
    ensure!(total == n, "pruned {total} of {n} jobs past retention");
    Ok(Pruned {
        rate: total as f64 / secs,
        secs,
        drain_rate: drained.rate,
    })
}

/// The table's size after a day: `jobs` no-op echo jobs enqueued and run by the engine
/// (inserted, claimed, leased, completed) on an emptied table, then vacuumed as autovacuum
/// would. Returns (table with its TOAST, indexes) in MiB, each index's size, and the drain.
pub async fn day(
    pool: &PgPool,
    config: &JobsConfig,
    jobs: usize,
) -> anyhow::Result<(f64, f64, Vec<(String, f64)>, engine::Drained)> {
    let mut conn = pool.acquire().await.context("acquiring a connection")?;
    fill::truncate(&mut conn).await?;
    drop(conn);
    let drained = engine::drain(pool, config, jobs).await?;
    sqlx::query("VACUUM ANALYZE jobs")
        .execute(pool)
        .await
        .context("vacuuming jobs")?;
    let (total, indexes): (i64, i64) =
        sqlx::query_as("SELECT pg_total_relation_size('jobs'), pg_indexes_size('jobs')")
            .fetch_one(pool)
            .await
            .context("reading the table's size")?;
    let each: Vec<(String, i64)> = sqlx::query_as(
        "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) \
         FROM pg_index WHERE indrelid = 'jobs'::regclass ORDER BY 2 DESC",
    )
    .fetch_all(pool)
    .await
    .context("reading the indexes' sizes")?;
    let mib = |b: i64| b as f64 / (1024.0 * 1024.0);
    let each = each.into_iter().map(|(n, b)| (n, mib(b))).collect();
    Ok((mib(total - indexes), mib(indexes), each, drained))
}
