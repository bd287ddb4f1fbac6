//! `bench_jobs`: the job engine's figures on this machine, in-process against a fresh
//! database: bulk enqueue, single enqueue through `POST /v1/jobs`, draining no-op jobs,
//! pickup latency into an idle worker, lateness of scheduled jobs, and pickup into an idle
//! worker while another kind drains a paced stream of no-op jobs (`bench_jobs/latency.rs`).
//! Prints a Markdown table with each target; with `BENCH_FIGURES` set, also appends each
//! figure to that file (`support/figures.rs`). Run it through `bench/jobs.sh` (release
//! build); `--quick` smoke-tests it.
//!
//! The live event stream's sequencer runs throughout, as in the daemon. With
//! `BENCH_NO_STREAM=1` the stream's triggers are taken off the scratch database first (the
//! sequencer then finds nothing to number), to measure what they cost the engine.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chrono::{DateTime, Utc};
use clap::Parser;
use serde_json::json;
use sqlx::{Connection, PgPool};
use workhorse::config::{DatabaseConfig, JobsConfig};
use workhorse::store::{self, jobs};

#[path = "bench_jobs/http.rs"]
mod http;
#[path = "bench_jobs/latency.rs"]
mod latency;
#[path = "bench_jobs/wrk.rs"]
mod wrk;

/// Takes the live event stream's triggers off the benchmark database: `jobs_notify_insert`
/// back to its body before the stream (migration `job_engine`), the statement triggers that
/// feed `stream_changes` disabled.
const NO_STREAM_SQL: &str = "
    CREATE OR REPLACE FUNCTION jobs_notify_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('workhorse_jobs', kind) FROM (SELECT DISTINCT kind FROM inserted) AS kinds;
        RETURN NULL;
    END
    $$;
    ALTER TABLE jobs DISABLE TRIGGER jobs_stream_update;
    ALTER TABLE events DISABLE TRIGGER events_stream_insert;
    ALTER TABLE deliveries DISABLE TRIGGER deliveries_stream_update;";

/// Whether `BENCH_NO_STREAM` asks for the stream's triggers to be taken off.
fn no_stream() -> bool {
    env_flag("BENCH_NO_STREAM")
}

/// Whether the environment variable `name` is set to something other than empty or 0.
fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Sizes and connection; every size has a full and a `--quick` default.
#[path = "support/mod.rs"]
mod support;

use support::engine::{self as bench_engine, SHUTDOWN};
use support::figures::figure;
use support::{CpuSnapshot, ms, thousands};

#[derive(Parser)]
#[command(about = "Benchmark the job engine (see bench/jobs.sh)")]
pub struct Args {
    /// Small sizes for a smoke run; the figures mean nothing.
    #[arg(long)]
    quick: bool,
    /// Server to create the benchmark database on.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    admin_url: String,
    /// Name of the database to create and drop [default: wh_bench_jobs_<pid>].
    #[arg(long)]
    database: Option<String>,
    /// Jobs for the bulk enqueue [default: 100000, quick 5000].
    #[arg(long)]
    bulk: Option<usize>,
    /// Jobs per INSERT statement (one transaction each) in the bulk enqueue.
    #[arg(long, default_value_t = 10_000)]
    bulk_chunk: usize,
    /// Requests to POST /v1/jobs [default: 5000, quick 300].
    #[arg(long)]
    http_requests: Option<usize>,
    /// Concurrent keep-alive HTTP clients.
    #[arg(long, default_value_t = 32)]
    http_clients: usize,
    /// Seconds of POST /v1/jobs load when wrk sends it [default: 10, quick 2].
    #[arg(long)]
    http_seconds: Option<u64>,
    /// No-op jobs to drain [default: 20000, quick 2000].
    #[arg(long)]
    drain: Option<usize>,
    /// Worker concurrency while draining.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Single jobs enqueued one at a time into an idle worker [default: 300, quick 30].
    #[arg(long)]
    pickup: Option<usize>,
    /// Scheduled jobs [default: 300, quick 30].
    #[arg(long)]
    scheduled: Option<usize>,
    /// Seconds over which the scheduled jobs' run_at is spread [default: 10, quick 2].
    #[arg(long)]
    spread_secs: Option<f64>,
    /// No-op jobs/s enqueued into another kind during the busy pickup.
    #[arg(long, default_value_t = 5_000)]
    busy_rate: u64,
}

impl Args {
    fn size(&self, given: Option<usize>, full: usize, quick: usize) -> usize {
        given.unwrap_or(if self.quick { quick } else { full })
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    support::init_tracing();
    // Two worker threads: the machine's cores, shared by the load generator and the engine.
    support::runtime()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let (args, database) = (&args, args.database.clone());
    let rows =
        support::with_scratch_database(&args.admin_url, database, "jobs", |url| async move {
            measure(args, &url).await
        })
        .await?;
    support::warn_if_debug();
    if no_stream() {
        println!("(BENCH_NO_STREAM: the live event stream's triggers were off)\n");
    }
    if env_flag("BENCH_NO_SEQUENCER") {
        println!("(BENCH_NO_SEQUENCER: no sequencer ran)\n");
    }
    println!("| measure | value | target | |\n|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}

/// Every phase in turn on the database at `url`, emptying the queue between them; returns
/// the table rows.
async fn measure(args: &Args, url: &str) -> anyhow::Result<Vec<String>> {
    // The daemon's own pool settings.
    let pool = store::connect_lazy(url, &DatabaseConfig::default())?;
    store::migrate(&pool, Duration::from_secs(10)).await?;
    if no_stream() {
        eprintln!("BENCH_NO_STREAM: taking the live event stream's triggers off");
        sqlx::raw_sql(NO_STREAM_SQL)
            .execute(&pool)
            .await
            .context("taking the stream's triggers off")?;
    }
    // The sequencer, as the daemon runs it; the hub's fetcher has no clients.
    let stop = match env_flag("BENCH_NO_SEQUENCER") {
        true => {
            eprintln!("BENCH_NO_SEQUENCER: no sequencer; the stream's pending changes pile up");
            None
        }
        false => Some(bench_engine::sequencer(&pool)),
    };
    let measured = phases(args, url, &pool).await;
    if let Some(stop) = stop {
        stop.cancel();
    }
    let rows = measured?;
    pool.close().await;
    Ok(rows)
}

/// Every phase in turn, emptying the queue between them; returns the table rows.
async fn phases(args: &Args, url: &str, pool: &PgPool) -> anyhow::Result<Vec<String>> {
    let pool = pool.clone();
    let jobs_config = JobsConfig {
        concurrency: args.concurrency,
        ..JobsConfig::default()
    };
    let mut rows = Vec::new();

    let (total, chunk) = (args.size(args.bulk, 100_000, 5_000), args.bulk_chunk);
    eprintln!("bulk enqueue: {total} jobs in statements of {chunk}");
    let before = CpuSnapshot::take(&pool).await?;
    let rate = bulk_enqueue(&pool, total, chunk).await?;
    let cpu = cpu_note(&pool, before, total).await?;
    let what = format!(
        "bulk enqueue, {} jobs, {} per INSERT (one transaction each)",
        thousands(total as f64),
        thousands(chunk.min(total) as f64)
    );
    figure("jobs.bulk_enqueue", rate, "jobs/s", &what);
    rows.push(row(
        &what,
        format!("{} jobs/s{cpu}", thousands(rate)),
        "≥ 50,000 jobs/s",
        Some(rate >= 50_000.0),
    ));
    truncate(&pool).await?;

    let (requests, clients) = (args.size(args.http_requests, 5_000, 300), args.http_clients);
    let seconds = (args.http_seconds).unwrap_or(if args.quick { 2 } else { 10 });
    eprintln!("HTTP enqueue: {clients} clients");
    ensure!(clients > 0, "--http-clients must be at least 1");
    let measured = http::http_enqueue(url, requests, clients, Duration::from_secs(seconds)).await?;
    let what = match &measured {
        Ok(h) if h.from_wrk => format!(
            "POST /v1/jobs (echo), {clients} keep-alive connections from wrk (its own process) \
             for {seconds} s"
        ),
        _ => format!("POST /v1/jobs (echo), {requests} requests from {clients} keep-alive clients"),
    };
    let value = match measured {
        Ok(h) => {
            // Every request counted, and the warm-ups, stored one job each (wrk does not count
            // those in flight when it stops, so there may be more).
            let stored = count_jobs(&pool).await?;
            ensure!(
                stored == h.sent as i64 || (h.from_wrk && stored > h.sent as i64),
                "{} enqueue requests stored {stored} jobs",
                h.sent
            );
            figure("jobs.post", h.rate, "req/s", &what);
            figure("jobs.post_p99", h.p99, "ms", &what);
            format!(
                "{} req/s (p50 {}, p99 {})",
                thousands(h.rate),
                ms(h.p50),
                ms(h.p99)
            )
        }
        Err(why) => format!("not measured: {why}"),
    };
    rows.push(row(&what, value, "—", None));
    truncate(&pool).await?;

    let total = args.size(args.drain, 20_000, 2_000);
    eprintln!(
        "drain: {total} no-op jobs at concurrency {}",
        args.concurrency
    );
    let (rate, secs, cpu) = drain_jobs(&pool, &jobs_config, total).await?;
    let what = format!(
        "drain {} no-op echo jobs, concurrency {}",
        thousands(total as f64),
        args.concurrency
    );
    figure("jobs.drain", rate, "jobs/s", &what);
    rows.push(row(
        &what,
        format!(
            "{} jobs/s ({secs:.2} s from engine start){cpu}",
            thousands(rate)
        ),
        "≥ 5,000 jobs/s",
        Some(rate >= 5_000.0),
    ));
    truncate(&pool).await?;

    rows.extend(latency::idle_engine(args, &pool, &jobs_config).await?);
    truncate(&pool).await?;
    rows.push(latency::busy_pickup(args, &pool, &jobs_config).await?);
    Ok(rows)
}

/// Enqueue `total` no-op jobs with `enqueue_many`, `chunk` per statement and transaction, on
/// one connection; returns jobs/s.
async fn bulk_enqueue(pool: &PgPool, total: usize, chunk: usize) -> anyhow::Result<f64> {
    ensure!(chunk > 0, "--bulk-chunk must be at least 1");
    let args = vec![json!({}); chunk.min(total)];
    let mut conn = pool.acquire().await.context("acquiring a connection")?;
    let started = Instant::now();
    let mut created = 0;
    while created < total as u64 {
        let n = chunk.min(total - created as usize);
        let mut tx = conn.begin().await.context("beginning a transaction")?;
        created += jobs::enqueue_many(&mut tx, "echo", 1, &args[..n], &[])
            .await
            .context("bulk enqueue")?;
        tx.commit().await.context("committing a bulk enqueue")?;
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    ensure!(
        count_jobs(pool).await? == total as i64,
        "bulk enqueue lost jobs"
    );
    Ok(rate)
}

/// Pre-enqueue `total` no-op jobs, start the engine and time until all have succeeded, on the
/// database's clock: engine start → last finished_at. Returns jobs/s, seconds and the CPU
/// spent.
async fn drain_jobs(
    pool: &PgPool,
    config: &JobsConfig,
    total: usize,
) -> anyhow::Result<(f64, f64, String)> {
    bench_engine::enqueue_noop(pool, "echo", total).await?;
    // Fresh statistics, as autovacuum keeps them on a queue in steady use.
    sqlx::query("ANALYZE jobs")
        .execute(pool)
        .await
        .context("analyzing jobs")?;
    let started = bench_engine::db_now(pool).await?;
    let before = CpuSnapshot::take(pool).await?;
    let engine = bench_engine::start(pool, config).await?;
    let deadline =
        Instant::now() + Duration::from_secs(30) + Duration::from_millis(5) * total as u32;
    let waited = bench_engine::wait_idle(pool, deadline).await;
    let cpu = cpu_note(pool, before, total).await?;
    engine.shutdown(SHUTDOWN).await;
    waited?;
    let (succeeded, last): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE state = 'succeeded'), max(finished_at) FROM jobs",
    )
    .fetch_one(pool)
    .await
    .context("reading the drain's outcome")?;
    ensure!(
        succeeded == total as i64,
        "only {succeeded} of {total} jobs succeeded"
    );
    let secs = (last.context("no job finished")? - started).as_seconds_f64();
    Ok((total as f64 / secs, secs, cpu))
}

/// "; CPU per 1,000 jobs: …" since `before`, or nothing when /proc does not show the server.
async fn cpu_note(
    pool: &PgPool,
    before: Option<CpuSnapshot>,
    jobs: usize,
) -> anyhow::Result<String> {
    let (Some(before), Some(now)) = (before, CpuSnapshot::take(pool).await?) else {
        return Ok(String::new());
    };
    let (own, backends) = now.since(&before);
    let per = 1000.0 / jobs.max(1) as f64;
    Ok(format!(
        "; CPU per 1,000 jobs: this process {:.0} ms, PostgreSQL backends {:.0} ms",
        own * per * 1000.0,
        backends * per * 1000.0
    ))
}

async fn truncate(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query("TRUNCATE jobs, echo_runs, quota_charges, stream_changes")
        .execute(pool)
        .await
        .context("truncating jobs")?;
    Ok(())
}

async fn count_jobs(pool: &PgPool) -> anyhow::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(pool)
        .await
        .context("counting jobs")
}

fn row(what: &str, value: String, target: &str, pass: Option<bool>) -> String {
    let verdict = match pass {
        Some(true) => "PASS",
        Some(false) => "FAIL",
        None => "",
    };
    format!("| {what} | {value} | {target} | {verdict} |")
}
