//! The worker's side: claim with a lease, record success or a failed attempt (fenced by the
//! attempt that owns the job), keep leases, rescue the jobs of workers that died, give jobs
//! back at shutdown.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};
use tracing::Instrument;
use uuid::Uuid;

use super::statement_span;

/// A job a worker has claimed.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    /// Id.
    pub id: Uuid,
    /// Kind.
    pub kind: String,
    /// Arguments.
    pub args: Value,
    /// This attempt's number (1-based).
    pub attempt: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Trace context of the enqueuing request.
    pub trace_context: Value,
    /// The user the job works for.
    pub owner_id: Option<Uuid>,
    /// How late the attempt starts: the claim's time minus the job's due time, in seconds.
    pub lateness_secs: f64,
}

// FENCE: the fenced statements below compare `locked_by` and `state` with
// `IS NOT DISTINCT FROM` (the same as `=` here: the compared values are never NULL) because no
// index can serve it, so the row is found by its primary key. With `=`, the planner, whose
// statistics rarely catch jobs while they run, expects almost no running rows and scans the
// running part of `jobs_gauge_idx` or `jobs_lease_idx` instead: every running job, for each
// fenced statement (measured in issue 16: 80 ms for one batch of 100 completions).

type ClaimRow = (Uuid, String, Value, i32, i32, Value, Option<Uuid>, f64);

/// Claim up to `limit` runnable jobs of `kind` for `worker`, holding them for `lease`. The
/// attempt is counted here, so an attempt whose worker dies still counts. The statement is the
/// `claim_jobs` function (migration 20261206100002): it walks `jobs_claim_idx` in order whatever
/// the statistics say (planned freely, a stale estimate right after a bulk insert made every
/// claim sort the kind's whole backlog), and updates the chosen ids as an array (`id =
/// ANY(…)`), which the primary key serves (joined with them, the planner read the whole table
/// with a hash join whenever it thought the table small).
pub async fn claim(
    db: impl PgExecutor<'_>,
    kind: &str,
    worker: Uuid,
    limit: i64,
    lease: Duration,
) -> anyhow::Result<Vec<ClaimedJob>> {
    let rows: Vec<ClaimRow> = sqlx::query_as("SELECT * FROM claim_jobs($1, $2, $3, $4)")
        .bind(kind)
        .bind(limit)
        .bind(worker)
        .bind(lease.as_millis() as f64)
        .fetch_all(db)
        .instrument(statement_span("claim", "UPDATE"))
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, kind, args, attempt, max_attempts, trace_context, owner_id, lateness_secs)| {
                ClaimedJob {
                    id,
                    kind,
                    args,
                    attempt,
                    max_attempts,
                    trace_context,
                    owner_id,
                    lateness_secs,
                }
            },
        )
        .collect())
}

/// Record success. Fenced by worker and attempt: a worker whose lease was taken over (or whose
/// job was cancelled meanwhile) changes nothing and gets `false`.
pub async fn complete(
    db: impl PgExecutor<'_>,
    id: Uuid,
    worker: Uuid,
    attempt: i32,
    result: Option<&Value>,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'succeeded', result = $4, finished_at = now(), \
                locked_by = NULL, lease_until = NULL \
         WHERE id = $1 AND locked_by IS NOT DISTINCT FROM $2 AND attempts = $3 \
           AND state IS NOT DISTINCT FROM 'running'",
    )
    .bind(id)
    .bind(worker)
    .bind(attempt)
    .bind(result)
    .execute(db)
    .instrument(statement_span("complete", "UPDATE"))
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How a failed attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// It will run again at the given time.
    Retrying(DateTime<Utc>),
    /// It is dead: permanent error or attempts used up.
    Dead,
    /// The worker no longer held the job; nothing changed.
    Stale,
}

/// Record a failed attempt: the error is appended to the row; the job retries after `delay`
/// unless the error is permanent or this was the last attempt.
pub async fn fail(
    db: impl PgExecutor<'_>,
    id: Uuid,
    worker: Uuid,
    attempt: i32,
    error: &str,
    permanent: bool,
    delay: Duration,
) -> anyhow::Result<Failed> {
    let row: Option<(String, DateTime<Utc>)> = sqlx::query_as(
        "UPDATE jobs SET \
             errors = errors || jsonb_build_array(jsonb_build_object( \
                 'attempt', attempts, 'at', now(), 'error', $4::text, 'permanent', $5::bool)), \
             state = CASE WHEN $5 OR attempts >= max_attempts THEN 'dead' ELSE 'retrying' END, \
             dead_reason = CASE WHEN $5 THEN 'permanent error' \
                                WHEN attempts >= max_attempts THEN 'attempts used up' END, \
             finished_at = CASE WHEN $5 OR attempts >= max_attempts THEN now() END, \
             run_at = CASE WHEN $5 OR attempts >= max_attempts THEN run_at \
                           ELSE now() + $6 * interval '1 millisecond' END, \
             locked_by = NULL, lease_until = NULL \
         WHERE id = $1 AND locked_by IS NOT DISTINCT FROM $2 AND attempts = $3 \
           AND state IS NOT DISTINCT FROM 'running' \
         RETURNING state, run_at",
    )
    .bind(id)
    .bind(worker)
    .bind(attempt)
    .bind(error)
    .bind(permanent)
    .bind(delay.as_millis() as f64)
    .fetch_optional(db)
    .instrument(statement_span("fail", "UPDATE"))
    .await?;
    Ok(match row {
        None => Failed::Stale,
        Some((state, _)) if state == "dead" => Failed::Dead,
        Some((_, run_at)) => Failed::Retrying(run_at),
    })
}

/// Extend the leases of every job `worker` is running; returns their ids. A job the worker
/// believes it runs but which is not among them was cancelled or taken over.
pub async fn extend_leases(
    db: impl PgExecutor<'_>,
    worker: Uuid,
    lease: Duration,
) -> anyhow::Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        // Rows locked in id order, as `complete_many` locks them: the two run on different
        // connections of one worker and would otherwise deadlock. Locked rows cannot change
        // before the update, which finds them by primary key alone (see `complete_many`).
        "WITH mine AS ( \
             SELECT id FROM jobs WHERE locked_by = $1 AND state = 'running' \
             ORDER BY id FOR UPDATE) \
         UPDATE jobs j SET lease_until = now() + $2 * interval '1 millisecond' \
         FROM mine WHERE j.id = mine.id \
         RETURNING j.id",
    )
    .bind(worker)
    .bind(lease.as_millis() as f64)
    .fetch_all(db)
    .await?)
}

/// Lock the job's row for the attempt `attempt` of `worker`, in the caller's transaction:
/// `true` when the attempt still owns the running job. Until the transaction ends no cancel,
/// rescue or other attempt can change the row, so what the transaction writes next is kept
/// only together with the attempt's end ([`complete`] or [`fail`] on the same transaction).
pub async fn fence(
    conn: &mut sqlx::PgConnection,
    id: Uuid,
    worker: Uuid,
    attempt: i32,
) -> anyhow::Result<bool> {
    let held: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM jobs \
         WHERE id = $1 AND locked_by IS NOT DISTINCT FROM $2 AND attempts = $3 \
           AND state IS NOT DISTINCT FROM 'running' \
         FOR UPDATE",
    )
    .bind(id)
    .bind(worker)
    .bind(attempt)
    .fetch_optional(conn)
    .await?;
    Ok(held.is_some())
}

/// Put running jobs whose lease ran out (their worker died) back in work at once, counting the
/// crash, and wake the workers of their kinds. A job that has now killed `max_crashes` workers,
/// or used up its attempts, is dead. Returns the ids rescued and the ids quarantined.
pub async fn rescue_expired(
    db: &PgPool,
    max_crashes: i32,
) -> anyhow::Result<(Vec<Uuid>, Vec<Uuid>)> {
    let rows = rescue_expired_by_kind(db, max_crashes).await?;
    let (dead, rescued): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.dead);
    Ok((
        rescued.into_iter().map(|r| r.id).collect(),
        dead.into_iter().map(|r| r.id).collect(),
    ))
}

/// A job whose worker stopped responding, put back in work (or quarantined).
#[derive(Debug, Clone)]
pub struct Rescued {
    /// Id.
    pub id: Uuid,
    /// Kind (the crashed attempts are counted by kind).
    pub kind: String,
    /// Whether the job is now dead rather than retrying.
    pub dead: bool,
}

/// [`rescue_expired`], saying each job's kind and whether it is now dead. The lost ids are
/// looked up as an array (`id = ANY(ARRAY(…))`), an index probe per id, as the claim does: a
/// join with the CTE could be planned as a hash join reading the whole table when the
/// statistics misjudge how many leases expired.
pub async fn rescue_expired_by_kind(db: &PgPool, max_crashes: i32) -> anyhow::Result<Vec<Rescued>> {
    let rows: Vec<(Uuid, String, String)> = sqlx::query_as(
        "WITH lost AS ( \
             SELECT id FROM jobs WHERE state = 'running' AND lease_until < now() \
             FOR UPDATE SKIP LOCKED \
         ) \
         UPDATE jobs j SET \
             crashes = j.crashes + 1, \
             errors = j.errors || jsonb_build_array(jsonb_build_object( \
                 'attempt', j.attempts, 'at', now(), \
                 'error', 'the worker stopped responding (process killed or hung)', \
                 'permanent', false)), \
             state = CASE WHEN j.crashes + 1 >= $1 OR j.attempts >= j.max_attempts \
                          THEN 'dead' ELSE 'retrying' END, \
             dead_reason = CASE \
                 WHEN j.crashes + 1 >= $1 \
                     THEN format('quarantined: killed its worker %s times', j.crashes + 1) \
                 WHEN j.attempts >= j.max_attempts THEN 'attempts used up' END, \
             finished_at = CASE WHEN j.crashes + 1 >= $1 OR j.attempts >= j.max_attempts \
                                THEN now() END, \
             run_at = least(j.run_at, now()), locked_by = NULL, lease_until = NULL \
         WHERE j.id = ANY(ARRAY(SELECT id FROM lost)) \
         RETURNING j.id, j.state, j.kind",
    )
    .bind(max_crashes)
    .fetch_all(db)
    .instrument(statement_span("rescue", "UPDATE"))
    .await?;
    let mut kinds: Vec<&str> = (rows.iter())
        .filter(|(_, state, _)| state != "dead")
        .map(|(_, _, kind)| kind.as_str())
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    if !kinds.is_empty() {
        sqlx::query("SELECT pg_notify('workhorse_jobs', k) FROM unnest($1::text[]) AS k")
            .bind(&kinds)
            .execute(db)
            .await?;
    }
    Ok(rows
        .into_iter()
        .map(|(id, state, kind)| Rescued {
            id,
            kind,
            dead: state == "dead",
        })
        .collect())
}

/// Record the success of many attempts of `worker` in one statement (each fenced like
/// [`complete`]); returns how many were recorded.
pub async fn complete_many(
    db: impl PgExecutor<'_>,
    worker: Uuid,
    done: &[(Uuid, i32, Option<Value>)],
) -> anyhow::Result<u64> {
    let ids: Vec<Uuid> = done.iter().map(|d| d.0).collect();
    let attempts: Vec<i32> = done.iter().map(|d| d.1).collect();
    let results: Vec<Option<Value>> = done.iter().map(|d| d.2.clone()).collect();
    let updated = sqlx::query(
        // Rows locked in id order, as `extend_leases` locks them (see there). Each row is
        // found by primary key alone: see `FENCE` for the `IS NOT DISTINCT FROM`. The fence
        // is checked once, where the rows are locked (a locked row cannot change before the
        // update). Before, the planner scanned the state index once per job: 80 ms for 100
        // jobs instead of 2.
        "WITH d AS (SELECT * FROM unnest($2::uuid[], $3::int[], $4::jsonb[]) \
                    AS d(id, attempt, result)), \
         held AS ( \
             SELECT j.id, d.result FROM d JOIN jobs j ON j.id = d.id \
             WHERE j.locked_by IS NOT DISTINCT FROM $1 AND j.attempts = d.attempt \
               AND j.state IS NOT DISTINCT FROM 'running' \
             ORDER BY j.id FOR UPDATE OF j) \
         UPDATE jobs j SET state = 'succeeded', result = held.result, finished_at = now(), \
                locked_by = NULL, lease_until = NULL \
         FROM held WHERE j.id = held.id",
    )
    .bind(worker)
    .bind(&ids)
    .bind(&attempts)
    .bind(&results)
    .execute(db)
    .instrument(statement_span("complete", "UPDATE"))
    .await?;
    Ok(updated.rows_affected())
}

/// When the next waiting job of `kind` becomes due, if any is waiting.
pub async fn next_due(
    db: impl PgExecutor<'_>,
    kind: &str,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query_scalar(
        "SELECT run_at FROM jobs WHERE kind = $1 AND state IN ('pending', 'retrying') \
         ORDER BY run_at LIMIT 1",
    )
    .bind(kind)
    .fetch_optional(db)
    .await?)
}

/// Give back every job `worker` still holds (claimed but not started, or interrupted by a
/// shutdown): they are due again at once and the interrupted attempt does not count.
pub async fn release_held(db: impl PgExecutor<'_>, worker: Uuid) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'pending', attempts = attempts - 1, run_at = now(), \
                locked_by = NULL, lease_until = NULL \
         WHERE locked_by = $1 AND state = 'running'",
    )
    .bind(worker)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
