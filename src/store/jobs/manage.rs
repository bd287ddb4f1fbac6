//! What people do to jobs: cancel, retry a dead or cancelled one, and the pruning of finished
//! ones.

use std::time::Duration;

use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// The channel a cancelled job's id is announced on, so the process running it stops.
pub const CANCEL_CHANNEL: &str = "workhorse_cancel";

/// Cancel a job that has not finished. With `owner`, only that user's job. Returns whether it
/// was cancelled. A running attempt is told on [`CANCEL_CHANNEL`] when the caller commits; it
/// stops, and as it no longer owns the job nothing it would write is kept. An attempt that is
/// recording its end holds the row's lock: the cancel waits for it and then finds the job
/// finished.
pub async fn cancel(
    conn: &mut PgConnection,
    id: Uuid,
    owner: Option<Uuid>,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'cancelled', finished_at = now(), locked_by = NULL, \
                lease_until = NULL \
         WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2) \
           AND state IN ('pending', 'running', 'retrying') \
         RETURNING pg_notify('workhorse_cancel', id::text)",
    )
    .bind(id)
    .bind(owner)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Put a dead or cancelled job back to pending with a fresh set of attempts (its error history
/// stays). `trace_context` (the retrying request's, see `telemetry::current_trace_context`)
/// replaces the stored one, so the new attempts are children of the retry; an empty one keeps
/// the enqueuing trace. Fails with a unique violation when another live job holds its dedup
/// key.
pub async fn retry(
    conn: &mut PgConnection,
    id: Uuid,
    owner: Option<Uuid>,
    trace_context: &Value,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'pending', run_at = now(), attempts = 0, crashes = 0, \
                dead_reason = NULL, finished_at = NULL, result = NULL, \
                trace_context = COALESCE(NULLIF($3::jsonb, '{}'::jsonb), trace_context) \
         WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2) \
           AND state IN ('dead', 'cancelled') \
         RETURNING pg_notify('workhorse_jobs', kind)",
    )
    .bind(id)
    .bind(owner)
    .bind(trace_context)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Delete up to `batch` finished jobs older than `retention`, oldest first; returns how many.
/// The batch is found in `jobs_finished_idx` order and its rows by primary key. With a plain
/// `LIMIT` the planner picked a sequential scan, which reads past every row earlier batches
/// deleted and vacuum has not yet cleared (`bench/scale.sh` logged a 1.9 s batch on a
/// 10-million-job table), and a join on the batch could become a hash join over the table.
pub async fn prune(
    db: impl PgExecutor<'_>,
    retention: Duration,
    batch: i64,
) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM jobs WHERE id = ANY(ARRAY( \
             SELECT id FROM jobs \
             WHERE state IN ('succeeded', 'dead', 'cancelled') \
               AND finished_at < now() - $1 * interval '1 millisecond' \
             ORDER BY finished_at LIMIT $2))",
    )
    .bind(retention.as_millis() as f64)
    .bind(batch)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
