//! The outcome of a `bench_notify` run, read from the outbox: waiting until every delivery is
//! delivered, then the rate and the latencies on the database's clock.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::support::pct;

/// What one scenario measured.
pub struct Figures {
    pub deliveries: usize,
    /// Deliveries/s from the first publish (a backlog: from its first delivery) until the
    /// last delivery, on the database clock.
    pub rate: f64,
    /// Event created → delivery delivered, ms.
    pub p50: f64,
    pub p95: f64,
    /// Wall time of publishing every batch.
    pub publish_secs: f64,
    /// Requests the receiver got (more than the deliveries if any was repeated).
    pub requests: u64,
}

/// Wait until `expected` deliveries are delivered; fails on a dead one or at `deadline`.
pub async fn wait_delivered(
    pool: &PgPool,
    expected: usize,
    deadline: Instant,
) -> anyhow::Result<()> {
    loop {
        let (delivered, dead): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE state = 'delivered'), \
                    count(*) FILTER (WHERE state = 'dead') FROM deliveries",
        )
        .fetch_one(pool)
        .await
        .context("polling the deliveries")?;
        ensure!(dead == 0, "{dead} deliveries are dead");
        if delivered == expected as i64 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {delivered} of {expected} deliveries were delivered at the deadline");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Rate and latencies from the rows, after checking that each delivery took one attempt.
pub async fn figures(
    pool: &PgPool,
    started: Option<DateTime<Utc>>,
    expected: usize,
    publish_secs: f64,
    requests: u64,
) -> anyhow::Result<Figures> {
    type Outcome = (i64, Option<DateTime<Utc>>, Option<DateTime<Utc>>, i64);
    let (count, first, last, retried): Outcome = sqlx::query_as(
        "SELECT count(*), min(delivered_at), max(delivered_at), \
                count(*) FILTER (WHERE attempts <> 1) \
         FROM deliveries",
    )
    .fetch_one(pool)
    .await
    .context("reading the outcome")?;
    ensure!(
        count == expected as i64,
        "{count} deliveries, not {expected}"
    );
    ensure!(
        retried == 0,
        "{retried} deliveries needed more than one attempt"
    );
    let (first, last) = first.zip(last).context("nothing was delivered")?;
    // From the first delivery on, one delivery fewer was timed.
    let (secs, timed) = match started {
        Some(started) => ((last - started).as_seconds_f64(), expected),
        None => ((last - first).as_seconds_f64(), expected - 1),
    };
    let mut latencies: Vec<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM d.delivered_at - e.created_at)::float8 * 1000 \
         FROM deliveries d JOIN events e ON e.id = d.event_id",
    )
    .fetch_all(pool)
    .await
    .context("reading the latencies")?;
    latencies.sort_by(f64::total_cmp);
    Ok(Figures {
        deliveries: expected,
        rate: timed as f64 / secs,
        p50: pct(&latencies, 50.0),
        p95: pct(&latencies, 95.0),
        publish_secs,
        requests,
    })
}
