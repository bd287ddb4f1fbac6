//! `bench_jobs`: the job engine's figures on this machine, in-process against a fresh
//! database: bulk enqueue, single enqueue through `POST /v1/jobs`, draining no-op jobs,
//! pickup latency into an idle worker, lateness of scheduled jobs. Prints a Markdown table
//! with each target. Run it through `bench/jobs.sh` (release build); `--quick` smoke-tests it.
//!
//! The live event stream's sequencer runs throughout, as in the daemon. With
//! `BENCH_NO_STREAM=1` the stream's triggers are taken off the scratch database first (the
//! sequencer then finds nothing to number), to measure what they cost the engine.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use clap::Parser;
use serde_json::{Value, json};
use sqlx::{Connection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use workhorse::app::{App, Storage};
use workhorse::config::{Config, DatabaseConfig, EventsConfig, JobsConfig};
use workhorse::engine::Engine;
use workhorse::health::Health;
use workhorse::store::{self, jobs};
use workhorse::stream::Hub;

/// How long an engine may take to stop; every job has finished by then.
const SHUTDOWN: Duration = Duration::from_secs(2);

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

use support::{CpuSnapshot, admin_token, ms, pct, thousands};

#[derive(Parser)]
#[command(about = "Benchmark the job engine (see bench/jobs.sh)")]
struct Args {
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
    let stop = CancellationToken::new();
    if env_flag("BENCH_NO_SEQUENCER") {
        eprintln!("BENCH_NO_SEQUENCER: no sequencer; the stream's pending changes pile up");
    } else {
        Hub::new(pool.clone(), EventsConfig::default()).start(&stop);
    }
    let measured = phases(args, url, &pool).await;
    stop.cancel();
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
    rows.push(row(
        &format!(
            "bulk enqueue, {} jobs, {} per INSERT (one transaction each)",
            thousands(total as f64),
            thousands(chunk.min(total) as f64)
        ),
        format!("{} jobs/s{cpu}", thousands(rate)),
        "≥ 50,000 jobs/s",
        Some(rate >= 50_000.0),
    ));
    truncate(&pool).await?;

    let (requests, clients) = (args.size(args.http_requests, 5_000, 300), args.http_clients);
    eprintln!("HTTP enqueue: {requests} requests from {clients} clients");
    ensure!(clients > 0, "--http-clients must be at least 1");
    let value = match http_enqueue(url, requests, clients).await? {
        Ok(h) => {
            // One warm-up request per client, then the measured ones.
            let stored = count_jobs(&pool).await?;
            let sent = requests + clients;
            ensure!(
                stored == sent as i64,
                "{sent} enqueue requests stored {stored} jobs"
            );
            format!(
                "{} req/s (p50 {}, p99 {})",
                thousands(h.rate),
                ms(h.p50),
                ms(h.p99)
            )
        }
        Err(why) => format!("not measured: {why}"),
    };
    let what =
        format!("POST /v1/jobs (echo), {requests} requests from {clients} keep-alive clients");
    rows.push(row(&what, value, "—", None));
    truncate(&pool).await?;

    let total = args.size(args.drain, 20_000, 2_000);
    eprintln!(
        "drain: {total} no-op jobs at concurrency {}",
        args.concurrency
    );
    let (rate, secs, cpu) = drain_jobs(&pool, &jobs_config, total).await?;
    rows.push(row(
        &format!(
            "drain {} no-op echo jobs, concurrency {}",
            thousands(total as f64),
            args.concurrency
        ),
        format!(
            "{} jobs/s ({secs:.2} s from engine start){cpu}",
            thousands(rate)
        ),
        "≥ 5,000 jobs/s",
        Some(rate >= 5_000.0),
    ));
    truncate(&pool).await?;

    rows.extend(idle_engine(args, &pool, &jobs_config).await?);
    Ok(rows)
}

/// Pickup latency and lateness, on one engine that is idle between jobs; returns two rows.
async fn idle_engine(
    args: &Args,
    pool: &PgPool,
    config: &JobsConfig,
) -> anyhow::Result<[String; 2]> {
    let samples = args.size(args.pickup, 300, 30);
    let scheduled = args.size(args.scheduled, 300, 30);
    let spread = (args.spread_secs).unwrap_or(if args.quick { 2.0 } else { 10.0 });
    let engine = start_engine(pool, config).await?;
    // Let the dispatcher finish its start-up claim and fall asleep.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let timings = async {
        eprintln!("pickup: {samples} single jobs into an idle worker");
        let picked = pickup(pool, samples).await?;
        eprintln!("lateness: {scheduled} jobs scheduled over {spread} s");
        anyhow::Ok((picked, lateness(pool, scheduled, spread).await?))
    }
    .await;
    engine.shutdown(SHUTDOWN).await;
    let (picked, late) = timings?;
    Ok([
        row(
            &format!("pickup into an idle worker (created_at → started_at), {samples} jobs"),
            format!(
                "p50 {}, p95 {}, p99 {}",
                ms(pct(&picked, 50.0)),
                ms(pct(&picked, 95.0)),
                ms(pct(&picked, 99.0))
            ),
            "p95 ≤ 10 ms",
            Some(pct(&picked, 95.0) <= 10.0),
        ),
        row(
            &format!("lateness (run_at → started_at), {scheduled} jobs due over {spread} s"),
            format!(
                "p50 {}, p95 {}, p99 {}, max {}",
                ms(pct(&late, 50.0)),
                ms(pct(&late, 95.0)),
                ms(pct(&late, 99.0)),
                ms(pct(&late, 100.0))
            ),
            "p95 ≤ 250 ms",
            Some(pct(&late, 95.0) <= 250.0),
        ),
    ])
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

/// Throughput and latency of `POST /v1/jobs`.
struct HttpFigures {
    rate: f64,
    p50: f64,
    p99: f64,
}

const ENQUEUE_BODY: &str = r#"{"kind":"echo","args":{}}"#;

/// `requests` single enqueues through the real API (workers off) from `clients` concurrent
/// keep-alive clients. The inner `Err` says why it could not be measured.
async fn http_enqueue(
    url: &str,
    requests: usize,
    clients: usize,
) -> anyhow::Result<Result<HttpFigures, String>> {
    // Its own pool: the app closes the pool it was given when it stops.
    let pool = store::connect_lazy(url, &DatabaseConfig::default())?;
    let token = admin_token(&pool).await?;
    let data_dir = tempfile::tempdir().context("creating a data dir")?;
    let mut config = Config::default();
    config.http.listen = "127.0.0.1:0"
        .parse()
        .context("parsing the listen address")?;
    config.data_dir = data_dir.path().to_path_buf();
    config.jobs.run_workers = false;
    config.jobs.schedules_dir = data_dir.path().to_path_buf();
    let app = App::with_storage(config, Storage::from_pool(pool).await?).await?;
    let endpoint = format!("http://{}/v1/jobs", app.local_addr());
    let shutdown = app.shutdown_token();
    let served = tokio::spawn(app.run());

    let figures = load_http(&endpoint, &token, requests, clients).await;
    shutdown.cancel();
    served.await.context("the app task")??;
    figures
}

async fn load_http(
    endpoint: &str,
    token: &str,
    requests: usize,
    clients: usize,
) -> anyhow::Result<Result<HttpFigures, String>> {
    let mut conns = Vec::new();
    for _ in 0..clients {
        let client = reqwest::Client::new();
        // The first request opens the keep-alive connection and checks the contract.
        let resp = post_job(&client, endpoint, token).await?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND
            || status == reqwest::StatusCode::METHOD_NOT_ALLOWED
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

/// Pre-enqueue `total` no-op jobs, start the engine and time until all have succeeded, on the
/// database's clock: engine start → last finished_at. Returns jobs/s, seconds and the CPU
/// spent.
async fn drain_jobs(
    pool: &PgPool,
    config: &JobsConfig,
    total: usize,
) -> anyhow::Result<(f64, f64, String)> {
    let args = vec![json!({}); total.min(10_000)];
    let mut conn = pool.acquire().await.context("acquiring a connection")?;
    let mut created = 0;
    while created < total {
        let n = args.len().min(total - created);
        jobs::enqueue_many(&mut conn, "echo", 1, &args[..n], &[]).await?;
        created += n;
    }
    // Fresh statistics, as autovacuum keeps them on a queue in steady use.
    sqlx::query("ANALYZE jobs")
        .execute(&mut *conn)
        .await
        .context("analyzing jobs")?;
    drop(conn);
    let started: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(pool)
        .await
        .context("reading the database clock")?;
    let before = CpuSnapshot::take(pool).await?;
    let engine = start_engine(pool, config).await?;
    let deadline =
        Instant::now() + Duration::from_secs(30) + Duration::from_millis(5) * total as u32;
    let waited = loop {
        // Both subqueries are answered by the partial indexes over live jobs.
        let live: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM jobs WHERE state IN ('pending', 'retrying')) \
                 OR EXISTS (SELECT 1 FROM jobs WHERE state = 'running')",
        )
        .fetch_one(pool)
        .await
        .context("polling for live jobs")?;
        if !live {
            break Ok(());
        }
        if Instant::now() > deadline {
            break Err(anyhow::anyhow!("jobs were still live at the deadline"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
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

/// Enqueue `samples` single jobs 10–20 ms apart into an idle engine; returns each job's
/// created_at → started_at in ms (database clock: insert, commit, NOTIFY, wake-up, claim),
/// sorted.
async fn pickup(pool: &PgPool, samples: usize) -> anyhow::Result<Vec<f64>> {
    let mut conn = pool.acquire().await.context("acquiring a connection")?;
    let mut ids = Vec::with_capacity(samples);
    for _ in 0..samples {
        let job = jobs::NewJob::new("echo", json!({}), 1);
        ids.push(jobs::enqueue(&mut conn, &job).await?.id());
        // Jittered, so the gaps do not line up with any periodic task.
        tokio::time::sleep(Duration::from_millis(10 + rand::random_range(0..=10))).await;
    }
    drop(conn);
    let deadline = Instant::now() + Duration::from_secs(10);
    wait_finished(pool, &ids, deadline).await?;
    millis(
        pool,
        "SELECT extract(epoch FROM started_at - created_at)::float8 * 1000 \
         FROM jobs WHERE id = ANY($1)",
        &ids,
    )
    .await
}

/// Enqueue `n` jobs in one statement with run_at evenly spread over the next `spread` seconds;
/// returns each job's run_at → started_at in ms, sorted.
async fn lateness(pool: &PgPool, n: usize, spread: f64) -> anyhow::Result<Vec<f64>> {
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    let offsets: Vec<f64> = (1..=n)
        .map(|i| i as f64 * spread * 1000.0 / n as f64)
        .collect();
    // One statement, so no job is due before the insert commits; run_at is on the database
    // clock, like the claim's now().
    sqlx::query(
        "INSERT INTO jobs (id, kind, args, run_at, max_attempts) \
         SELECT id, 'echo', '{}', now() + ms * interval '1 millisecond', 1 \
         FROM unnest($1::uuid[], $2::float8[]) AS t(id, ms)",
    )
    .bind(&ids)
    .bind(&offsets)
    .execute(pool)
    .await
    .context("enqueueing the scheduled jobs")?;
    let deadline = Instant::now() + Duration::from_secs_f64(spread + 10.0);
    wait_finished(pool, &ids, deadline).await?;
    millis(
        pool,
        "SELECT extract(epoch FROM started_at - run_at)::float8 * 1000 \
         FROM jobs WHERE id = ANY($1)",
        &ids,
    )
    .await
}

/// Wait until every job of `ids` has finished.
async fn wait_finished(pool: &PgPool, ids: &[Uuid], deadline: Instant) -> anyhow::Result<()> {
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE id = ANY($1) AND finished_at IS NULL",
        )
        .bind(ids)
        .fetch_one(pool)
        .await
        .context("polling for finished jobs")?;
        if waiting == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{waiting} jobs had not finished at the deadline");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The milliseconds `sql` computes for the jobs `ids`, sorted.
async fn millis(pool: &PgPool, sql: &'static str, ids: &[Uuid]) -> anyhow::Result<Vec<f64>> {
    let mut values: Vec<f64> = sqlx::query_scalar(sql)
        .bind(ids)
        .fetch_all(pool)
        .await
        .context("reading the timings")?;
    values.sort_by(f64::total_cmp);
    Ok(values)
}

async fn start_engine(pool: &PgPool, config: &JobsConfig) -> anyhow::Result<Engine> {
    Engine::start(
        pool.clone(),
        config,
        workhorse::jobs::registry(pool),
        Health::default(),
    )
    .await
    .context("starting the engine")
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
