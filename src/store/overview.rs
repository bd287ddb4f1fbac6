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
