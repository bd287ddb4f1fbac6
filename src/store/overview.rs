//! The read-only overview an operator starts from: how deep each kind's queue is and how old
//! its oldest waiting job, what runs, which daemon instances hold leases, how many deliveries
//! are dead. Each statement reads only live rows through a partial index, so the finished
//! jobs a busy installation keeps until pruning do not slow it down.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// The queue of one kind.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KindQueue {
    /// The kind.
    pub kind: String,
    /// Jobs due now (pending or retrying with `run_at` passed).
    pub waiting: i64,
    /// Jobs waiting for a future `run_at` (scheduled, or retrying after a backoff).
    pub later: i64,
    /// Jobs a worker is on.
    pub running: i64,
    /// When the oldest waiting job became due.
    pub oldest_due: Option<DateTime<Utc>>,
}

/// A daemon instance holding leases on running jobs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Instance {
    /// The engine's instance id (the jobs' `locked_by`).
    pub instance: Uuid,
    /// Jobs it runs.
    pub running: i64,
    /// The furthest lease it holds.
    pub lease_until: DateTime<Utc>,
}

/// Per kind: waiting, later, running and the oldest due time; kinds without live jobs are
/// absent.
pub async fn queues(conn: &mut PgConnection) -> anyhow::Result<Vec<KindQueue>> {
    // Two statements, each matching one partial index: waiting jobs by jobs_due_idx
    // (pending, retrying), running ones by jobs_lease_idx. One `state IN (...)` over all
    // three matches neither, and scans every finished job.
    Ok(sqlx::query_as(
        "SELECT kind, sum(waiting)::bigint AS waiting, sum(later)::bigint AS later, \
                sum(running)::bigint AS running, min(oldest_due) AS oldest_due \
         FROM ( \
             SELECT kind, count(*) FILTER (WHERE run_at <= now()) AS waiting, \
                    count(*) FILTER (WHERE run_at > now()) AS later, 0::bigint AS running, \
                    min(run_at) FILTER (WHERE run_at <= now()) AS oldest_due \
             FROM jobs WHERE state IN ('pending', 'retrying') GROUP BY kind \
             UNION ALL \
             SELECT kind, 0, 0, count(*), NULL FROM jobs WHERE state = 'running' GROUP BY kind \
         ) live GROUP BY kind ORDER BY kind",
    )
    .fetch_all(conn)
    .await?)
}

/// The instances holding an unexpired lease, by instance id.
pub async fn live_instances(conn: &mut PgConnection) -> anyhow::Result<Vec<Instance>> {
    Ok(sqlx::query_as(
        "SELECT locked_by AS instance, count(*) AS running, max(lease_until) AS lease_until \
         FROM jobs WHERE state = 'running' AND lease_until > now() AND locked_by IS NOT NULL \
         GROUP BY locked_by ORDER BY locked_by",
    )
    .fetch_all(conn)
    .await?)
}

/// How many deliveries are dead.
pub async fn dead_deliveries(conn: &mut PgConnection) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE state = 'dead'")
            .fetch_one(conn)
            .await?,
    )
}

/// Finished jobs in one five-minute bucket of the last hour.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Bucket {
    /// The bucket's start.
    pub start: DateTime<Utc>,
    /// Jobs that succeeded.
    pub succeeded: i64,
    /// Jobs that died or were cancelled.
    pub failed: i64,
}

/// The most finished jobs [`last_hour`] reads: the chart of a busy installation comes from its
/// most recent jobs rather than from a scan of millions of rows.
pub const SAMPLE: i64 = 20_000;

/// What finished in the last hour (of `owner`, or everyone's), by five-minute bucket, and the
/// lateness (start minus due time) p50 and p95 in seconds, over the most recent [`SAMPLE`]
/// finished jobs (read newest first through the finished-jobs index).
pub async fn last_hour(
    conn: &mut PgConnection,
    owner: Option<Uuid>,
) -> anyhow::Result<(Vec<Bucket>, Option<(f64, f64)>)> {
    let buckets = sqlx::query_as(
        "WITH recent AS ( \
             SELECT finished_at, state, started_at, run_at FROM jobs \
             WHERE state IN ('succeeded', 'dead', 'cancelled') \
               AND finished_at > now() - interval '1 hour' \
               AND ($1::uuid IS NULL OR owner_id = $1) \
             ORDER BY finished_at DESC LIMIT $2) \
         SELECT date_bin('5 minutes', finished_at, now() - interval '1 hour') AS start, \
                count(*) FILTER (WHERE state = 'succeeded') AS succeeded, \
                count(*) FILTER (WHERE state <> 'succeeded') AS failed \
         FROM recent GROUP BY 1 ORDER BY 1",
    )
    .bind(owner)
    .bind(SAMPLE)
    .fetch_all(&mut *conn)
    .await?;
    let lateness: Option<(Option<f64>, Option<f64>)> = sqlx::query_as(
        "WITH recent AS ( \
             SELECT started_at, run_at FROM jobs \
             WHERE state IN ('succeeded', 'dead', 'cancelled') \
               AND finished_at > now() - interval '1 hour' \
               AND ($1::uuid IS NULL OR owner_id = $1) AND started_at IS NOT NULL \
             ORDER BY finished_at DESC LIMIT $2) \
         SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY e), \
                percentile_cont(0.95) WITHIN GROUP (ORDER BY e) \
         FROM (SELECT greatest(extract(epoch FROM started_at - run_at), 0)::float8 AS e \
               FROM recent) l",
    )
    .bind(owner)
    .bind(SAMPLE)
    .fetch_optional(conn)
    .await?;
    let lateness = lateness.and_then(|(p50, p95)| Some((p50?, p95?)));
    Ok((buckets, lateness))
}
