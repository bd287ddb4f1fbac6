//! Latency figures of `bench_jobs`: pickup into an idle worker and lateness of scheduled jobs
//! on an otherwise idle engine, and pickup into an idle worker while another kind drains a
//! paced stream of no-op jobs (busy pickup).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use workhorse::config::JobsConfig;
use workhorse::store::jobs;

use super::support::engine::{self, Busy, SHUTDOWN};
use super::support::figures::figure;
use super::support::{ms, pct, thousands};
use super::{Args, row};
use workhorse::engine::JobKind;

/// Pickup latency and lateness, on one engine that is idle between jobs; returns two rows.
pub async fn idle_engine(
    args: &Args,
    pool: &PgPool,
    config: &JobsConfig,
) -> anyhow::Result<[String; 2]> {
    let samples = args.size(args.pickup, 300, 30);
    let scheduled = args.size(args.scheduled, 300, 30);
    let spread = (args.spread_secs).unwrap_or(if args.quick { 2.0 } else { 10.0 });
    let engine = engine::start(pool, config).await?;
    // Let the dispatcher finish its start-up claim and fall asleep.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let timings = async {
        eprintln!("pickup: {samples} single jobs into an idle worker");
        let picked = engine::pickup(pool, samples).await?;
        eprintln!("lateness: {scheduled} jobs scheduled over {spread} s");
        anyhow::Ok((picked, lateness(pool, scheduled, spread).await?))
    }
    .await;
    engine.shutdown(SHUTDOWN).await;
    let (picked, late) = timings?;
    let (p95, late_p95) = (pct(&picked, 95.0), pct(&late, 95.0));
    let what = format!("pickup into an idle worker (created_at → started_at), {samples} jobs");
    figure("jobs.pickup_p95", p95, "ms", &what);
    let lateness_what =
        format!("lateness (run_at → started_at), {scheduled} jobs due over {spread} s");
    figure("jobs.lateness_p95", late_p95, "ms", &lateness_what);
    Ok([
        row(
            &what,
            format!(
                "p50 {}, p95 {}, p99 {}",
                ms(pct(&picked, 50.0)),
                ms(p95),
                ms(pct(&picked, 99.0))
            ),
            "p95 ≤ 10 ms",
            Some(p95 <= 10.0),
        ),
        row(
            &lateness_what,
            format!(
                "p50 {}, p95 {}, p99 {}, max {}",
                ms(pct(&late, 50.0)),
                ms(late_p95),
                ms(pct(&late, 99.0)),
                ms(pct(&late, 100.0))
            ),
            "p95 ≤ 250 ms",
            Some(late_p95 <= 250.0),
        ),
    ])
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
    engine::wait_finished(pool, &ids, deadline).await?;
    engine::millis(
        pool,
        "SELECT extract(epoch FROM started_at - run_at)::float8 * 1000 \
         FROM jobs WHERE id = ANY($1)",
        &ids,
    )
    .await
}

/// How often the busy kind's producer enqueues a batch.
const PRODUCE_EVERY: Duration = Duration::from_millis(4);

/// Pickup of single echo jobs into their idle worker while a producer enqueues no-op jobs of
/// another kind at `--busy-rate` jobs/s, in a batch every few ms, and the engine drains them
/// at `config`'s concurrency; returns the row.
pub async fn busy_pickup(
    args: &Args,
    pool: &PgPool,
    config: &JobsConfig,
) -> anyhow::Result<String> {
    let samples = args.size(args.pickup, 300, 30);
    let rate = args.busy_rate;
    eprintln!("busy pickup: {samples} single jobs while {rate} no-op jobs/s drain in another kind");
    let engine = engine::start(pool, config).await?;
    let stop = CancellationToken::new();
    let produced = Arc::new(AtomicU64::new(0));
    let producer = tokio::spawn(produce(pool.clone(), rate, stop.clone(), produced.clone()));
    let measured = async {
        // Let the drain settle into its pace.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (from, enqueued) = (
            engine::db_now(pool).await?,
            produced.load(Ordering::Relaxed),
        );
        let clock = Instant::now();
        let picked = engine::pickup_parts(pool, samples).await?;
        let secs = clock.elapsed().as_secs_f64();
        let enqueued = produced.load(Ordering::Relaxed) - enqueued;
        let drained: i64 =
            sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = $1 AND finished_at >= $2")
                .bind(Busy::NAME)
                .bind(from)
                .fetch_one(pool)
                .await
                .context("counting the busy kind's jobs")?;
        anyhow::Ok((picked, enqueued as f64 / secs, drained as f64 / secs))
    }
    .await;
    stop.cancel();
    let produced = producer.await.context("the producer task")?;
    let drained = engine::wait_idle(pool, Instant::now() + Duration::from_secs(120)).await;
    engine.shutdown(SHUTDOWN).await;
    let (parts, enqueued, achieved) = measured?;
    produced?;
    drained?;
    let picked = &parts.total;
    let p95 = pct(picked, 95.0);
    let what = format!(
        "busy pickup: into an idle worker while another kind drains no-op jobs enqueued at \
         {} jobs/s (achieved: {} enqueued/s, {} drained/s), {samples} jobs",
        thousands(rate as f64),
        thousands(enqueued),
        thousands(achieved)
    );
    figure("jobs.busy_pickup_p95", p95, "ms", &what);
    figure(
        "jobs.busy_drain_rate",
        achieved,
        "jobs/s",
        "busy pickup: no-op jobs/s the other kind drained during the pickups",
    );
    Ok(row(
        &what,
        format!(
            "p50 {}, p95 {}, p99 {} (insert + commit p50 {}, p95 {}; then wake-up + claim \
             p50 {}, p95 {})",
            ms(pct(picked, 50.0)),
            ms(p95),
            ms(pct(picked, 99.0)),
            ms(pct(&parts.committed, 50.0)),
            ms(pct(&parts.committed, 95.0)),
            ms(pct(&parts.woken, 50.0)),
            ms(pct(&parts.woken, 95.0)),
        ),
        "p95 ≤ 5 ms",
        Some(p95 <= 5.0),
    ))
}

/// Enqueue no-op jobs of the busy kind at `rate` jobs/s until `stop`: every few ms, one
/// INSERT of as many as are due by then, so a late batch catches up.
async fn produce(
    pool: PgPool,
    rate: u64,
    stop: CancellationToken,
    produced: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await.context("acquiring a connection")?;
    let args = vec![json!({}); (rate / 10).max(1) as usize];
    let started = Instant::now();
    let mut interval = tokio::time::interval(PRODUCE_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.cancelled() => return Ok(()),
        }
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        let n = due.saturating_sub(produced.load(Ordering::Relaxed)) as usize;
        let n = n.min(args.len());
        if n == 0 {
            continue;
        }
        jobs::enqueue_many(&mut conn, Busy::NAME, 1, &args[..n], &[])
            .await
            .context("enqueueing the busy kind's jobs")?;
        produced.fetch_add(n as u64, Ordering::Relaxed);
    }
}
