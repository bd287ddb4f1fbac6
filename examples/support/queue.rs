//! The job queue side of `bench_events`: echo jobs inserted straight into `jobs`, drains
//! timed on the database's clock, waiting for the queue and the stream's sequencer to settle,
//! and the reads of `stream_changes`. An overloaded run is reported, not failed: what did not
//! finish within [`SETTLE_TIMEOUT`] is counted and cancelled.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{Connection, PgPool};
use uuid::Uuid;

use super::support::thousands;

/// Jobs per INSERT when enqueueing a drain's backlog.
const DRAIN_CHUNK: usize = 10_000;
/// How long jobs and delivery may go on before the figures are taken anyway.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Insert `n` no-op echo jobs in one statement, tagged `tag`, each owned by one of `owners`
/// at random.
pub async fn insert(
    conn: &mut sqlx::PgConnection,
    owners: &[Uuid],
    n: u64,
    tag: &str,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO jobs (id, kind, args, max_attempts, owner_id) \
         SELECT gen_random_uuid(), 'echo', jsonb_build_object('message', $3::text), 1, \
                $1[1 + floor(random() * cardinality($1))::int] \
         FROM generate_series(1, $2)",
    )
    .bind(owners)
    .bind(n as i64)
    .bind(tag)
    .execute(conn)
    .await
    .context("inserting echo jobs")?;
    Ok(())
}

/// Index and sequential scans of `stream_changes` so far (the hub's fetches and the clients'
/// catch-ups from the database), from the statistics collector.
pub async fn stream_reads(pool: &PgPool) -> anyhow::Result<i64> {
    // The counters are flushed about once a second.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    sqlx::query_scalar(
        "SELECT (coalesce(idx_scan, 0) + coalesce(seq_scan, 0))::int8 \
         FROM pg_stat_user_tables WHERE relname = 'stream_changes'",
    )
    .fetch_one(pool)
    .await
    .context("reading the scans of stream_changes")
}

/// A drain's rate.
pub struct Drained {
    /// Jobs per second.
    pub rate: f64,
    /// From the commit to the last `finished_at`.
    pub secs: f64,
    /// Jobs that succeeded within the limit, of `total`.
    pub done: i64,
    /// Jobs enqueued.
    pub total: usize,
}

impl Drained {
    /// "N jobs/s (S s)", and what did not finish.
    pub fn describe(&self) -> String {
        let mut text = format!("{} jobs/s ({:.2} s)", thousands(self.rate), self.secs);
        if self.done < self.total as i64 {
            text += &format!(
                ", **not finished**: {} of {} succeeded within {} s, the rest cancelled",
                thousands(self.done as f64),
                thousands(self.total as f64),
                SETTLE_TIMEOUT.as_secs()
            );
        }
        text
    }
}

/// Insert `total` jobs in one transaction, then time from its commit to the last one's
/// `finished_at` (database clock), for at most [`SETTLE_TIMEOUT`].
pub async fn drain(
    pool: &PgPool,
    owners: &[Uuid],
    total: usize,
    tag: &str,
) -> anyhow::Result<Drained> {
    let mut conn = pool.acquire().await.context("acquiring a connection")?;
    let mut tx = conn.begin().await.context("beginning a transaction")?;
    let mut created = 0;
    while created < total {
        let n = DRAIN_CHUNK.min(total - created);
        insert(&mut tx, owners, n as u64, tag).await?;
        created += n;
    }
    tx.commit().await.context("committing the drain's jobs")?;
    let started: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(&mut *conn)
        .await?;
    drop(conn);
    let finished = wait_jobs(pool, SETTLE_TIMEOUT).await?;
    let (done, last) = succeeded(pool, tag).await?;
    if finished.is_none() {
        cancel_live(pool).await?;
    }
    let secs = (last.context("no job finished")? - started).as_seconds_f64();
    Ok(Drained {
        rate: done as f64 / secs,
        secs,
        done,
        total,
    })
}

/// How many jobs tagged `tag` succeeded, and the last one's `finished_at`.
pub async fn succeeded(pool: &PgPool, tag: &str) -> anyhow::Result<(i64, Option<DateTime<Utc>>)> {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE state = 'succeeded'), max(finished_at) \
         FROM jobs WHERE args ->> 'message' = $1",
    )
    .bind(tag)
    .fetch_one(pool)
    .await
    .context("counting succeeded jobs")
}

/// Cancel the jobs still waiting (an overloaded run), so the next phase starts on an empty
/// queue, and let the running ones finish.
pub async fn cancel_live(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE jobs SET state = 'cancelled', finished_at = now() \
         WHERE state IN ('pending', 'retrying')",
    )
    .execute(pool)
    .await
    .context("cancelling the jobs left")?;
    wait_jobs(pool, SETTLE_TIMEOUT).await?;
    Ok(())
}

/// Wait until no job is live; returns how long that took, or `None` after `limit`.
pub async fn wait_jobs(pool: &PgPool, limit: Duration) -> anyhow::Result<Option<Duration>> {
    let started = Instant::now();
    loop {
        let live: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM jobs WHERE state IN ('pending', 'retrying')) \
                 OR EXISTS (SELECT 1 FROM jobs WHERE state = 'running')",
        )
        .fetch_one(pool)
        .await
        .context("polling for live jobs")?;
        if !live {
            return Ok(Some(started.elapsed()));
        }
        if started.elapsed() >= limit {
            eprintln!("jobs were still live after {limit:?}");
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until the sequencer has numbered every change; returns the head.
pub async fn settle_stream(pool: &PgPool) -> anyhow::Result<i64> {
    let started = Instant::now();
    loop {
        let (pending, head): (bool, i64) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM stream_changes WHERE first_seq IS NULL), \
             (SELECT seq FROM stream_head)",
        )
        .fetch_one(pool)
        .await
        .context("reading the stream's state")?;
        if !pending {
            return Ok(head);
        }
        if started.elapsed() >= SETTLE_TIMEOUT {
            eprintln!("changes were still pending after {SETTLE_TIMEOUT:?}");
            return Ok(head);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
