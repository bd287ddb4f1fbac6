//! The `jobs` table: enqueue inside the caller's transaction (with dedup keys), claim with
//! leases, finish, fail with a backoff schedule stored in the row, rescue the jobs of workers
//! that died, cancel, retry by an operator, prune.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

/// A job about to be enqueued.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Job kind, e.g. `scrape`.
    pub kind: String,
    /// Arguments (ids, not payloads).
    pub args: Value,
    /// Run no earlier than this; `None` means now.
    pub run_at: Option<DateTime<Utc>>,
    /// Higher runs first.
    pub priority: i16,
    /// Attempts before the job is dead.
    pub max_attempts: i32,
    /// At most one live job per (kind, key).
    pub dedup_key: Option<String>,
    /// The user whose resource the job works on.
    pub owner_id: Option<Uuid>,
    /// W3C trace context of the enqueuing request.
    pub trace_context: Value,
    /// The plan quota the job charges (`store::quotas::charge` in the same transaction); the
    /// job's final state then settles the unit.
    pub quota_action: Option<String>,
}

impl NewJob {
    /// A job of `kind` with `args` and defaults for the rest.
    pub fn new(kind: impl Into<String>, args: Value, max_attempts: i32) -> Self {
        Self {
            kind: kind.into(),
            args,
            run_at: None,
            priority: 0,
            max_attempts,
            dedup_key: None,
            owner_id: None,
            trace_context: Value::Object(Default::default()),
            quota_action: None,
        }
    }
}

/// What `enqueue` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// A new job was created.
    Created(Uuid),
    /// A live job with the same dedup key exists; nothing was created.
    Duplicate(Uuid),
}

impl Enqueued {
    /// The id of the job that will do the work.
    pub fn id(self) -> Uuid {
        match self {
            Enqueued::Created(id) | Enqueued::Duplicate(id) => id,
        }
    }
}

/// Enqueue one job on `conn`, which may be inside the caller's transaction: a rollback removes
/// the job together with the caller's rows.
pub async fn enqueue(conn: &mut PgConnection, job: &NewJob) -> anyhow::Result<Enqueued> {
    let id = Uuid::now_v7();
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO jobs (id, kind, args, run_at, priority, max_attempts, dedup_key, owner_id, \
                           trace_context, quota_action) \
         VALUES ($1, $2, $3, coalesce($4, now()), $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (kind, dedup_key) \
             WHERE dedup_key IS NOT NULL AND state IN ('pending', 'running', 'retrying') \
         DO NOTHING RETURNING id",
    )
    .bind(id)
    .bind(&job.kind)
    .bind(&job.args)
    .bind(job.run_at)
    .bind(job.priority)
    .bind(job.max_attempts)
    .bind(&job.dedup_key)
    .bind(job.owner_id)
    .bind(&job.trace_context)
    .bind(&job.quota_action)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = inserted {
        return Ok(Enqueued::Created(id));
    }
    let existing: Uuid = sqlx::query_scalar(
        "SELECT id FROM jobs WHERE kind = $1 AND dedup_key = $2 \
           AND state IN ('pending', 'running', 'retrying')",
    )
    .bind(&job.kind)
    .bind(&job.dedup_key)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Enqueued::Duplicate(existing))
}

/// Enqueue many jobs of one kind in one statement (dedup keys honoured); returns how many
/// were created.
pub async fn enqueue_many(
    conn: &mut PgConnection,
    kind: &str,
    max_attempts: i32,
    args: &[Value],
    dedup_keys: &[Option<String>],
) -> anyhow::Result<u64> {
    anyhow::ensure!(
        dedup_keys.is_empty() || dedup_keys.len() == args.len(),
        "dedup_keys must be empty or one per job"
    );
    let ids: Vec<Uuid> = args.iter().map(|_| Uuid::now_v7()).collect();
    let keys: Vec<Option<String>> = if dedup_keys.is_empty() {
        vec![None; args.len()]
    } else {
        dedup_keys.to_vec()
    };
    let done = sqlx::query(
        "INSERT INTO jobs (id, kind, args, max_attempts, dedup_key) \
         SELECT id, $1, args, $2, key FROM unnest($3::uuid[], $4::jsonb[], $5::text[]) \
             AS t(id, args, key) \
         ON CONFLICT (kind, dedup_key) \
             WHERE dedup_key IS NOT NULL AND state IN ('pending', 'running', 'retrying') \
         DO NOTHING",
    )
    .bind(kind)
    .bind(max_attempts)
    .bind(&ids)
    .bind(args)
    .bind(&keys)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

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
}

type ClaimRow = (Uuid, String, Value, i32, i32, Value);

/// Claim up to `limit` runnable jobs of `kind` for `worker`, holding them for `lease`. The
/// attempt is counted here, so an attempt whose worker dies still counts.
pub async fn claim(
    db: impl PgExecutor<'_>,
    kind: &str,
    worker: Uuid,
    limit: i64,
    lease: Duration,
) -> anyhow::Result<Vec<ClaimedJob>> {
    let rows: Vec<ClaimRow> = sqlx::query_as(
        "WITH next AS ( \
             SELECT id FROM jobs \
             WHERE kind = $1 AND state IN ('pending', 'retrying') AND run_at <= now() \
             ORDER BY priority DESC, run_at, id \
             LIMIT $2 FOR UPDATE SKIP LOCKED \
         ) \
         UPDATE jobs j SET state = 'running', attempts = j.attempts + 1, locked_by = $3, \
                lease_until = now() + $4 * interval '1 millisecond', started_at = now() \
         FROM next WHERE j.id = next.id \
         RETURNING j.id, j.kind, j.args, j.attempts, j.max_attempts, j.trace_context",
    )
    .bind(kind)
    .bind(limit)
    .bind(worker)
    .bind(lease.as_millis() as f64)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, kind, args, attempt, max_attempts, trace_context)| ClaimedJob {
                id,
                kind,
                args,
                attempt,
                max_attempts,
                trace_context,
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
         WHERE id = $1 AND locked_by = $2 AND attempts = $3 AND state = 'running'",
    )
    .bind(id)
    .bind(worker)
    .bind(attempt)
    .bind(result)
    .execute(db)
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
         WHERE id = $1 AND locked_by = $2 AND attempts = $3 AND state = 'running' \
         RETURNING state, run_at",
    )
    .bind(id)
    .bind(worker)
    .bind(attempt)
    .bind(error)
    .bind(permanent)
    .bind(delay.as_millis() as f64)
    .fetch_optional(db)
    .await?;
    Ok(match row {
        None => Failed::Stale,
        Some((state, _)) if state == "dead" => Failed::Dead,
        Some((_, run_at)) => Failed::Retrying(run_at),
    })
}

/// Extend the leases of every job `worker` is running; returns how many.
pub async fn extend_leases(
    db: impl PgExecutor<'_>,
    worker: Uuid,
    lease: Duration,
) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "UPDATE jobs SET lease_until = now() + $2 * interval '1 millisecond' \
         WHERE locked_by = $1 AND state = 'running'",
    )
    .bind(worker)
    .bind(lease.as_millis() as f64)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Put running jobs whose lease ran out (their worker died) back in work at once, counting the
/// crash, and wake the workers of their kinds. A job that has now killed `max_crashes` workers,
/// or used up its attempts, is dead. Returns the ids rescued and the ids quarantined.
pub async fn rescue_expired(
    db: &PgPool,
    max_crashes: i32,
) -> anyhow::Result<(Vec<Uuid>, Vec<Uuid>)> {
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
         FROM lost WHERE j.id = lost.id \
         RETURNING j.id, j.state, j.kind",
    )
    .bind(max_crashes)
    .fetch_all(db)
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
    let (dead, rescued): (Vec<_>, Vec<_>) = rows.into_iter().partition(|(_, s, _)| s == "dead");
    Ok((
        rescued.into_iter().map(|(id, _, _)| id).collect(),
        dead.into_iter().map(|(id, _, _)| id).collect(),
    ))
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
        "UPDATE jobs j SET state = 'succeeded', result = d.result, finished_at = now(), \
                locked_by = NULL, lease_until = NULL \
         FROM unnest($2::uuid[], $3::int[], $4::jsonb[]) AS d(id, attempt, result) \
         WHERE j.id = d.id AND j.locked_by = $1 AND j.attempts = d.attempt \
           AND j.state = 'running'",
    )
    .bind(worker)
    .bind(&ids)
    .bind(&attempts)
    .bind(&results)
    .execute(db)
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

/// Cancel a job that has not finished. With `owner`, only that user's job. Returns whether it
/// was cancelled; a running job's result is discarded when its worker reports back.
pub async fn cancel(
    conn: &mut PgConnection,
    id: Uuid,
    owner: Option<Uuid>,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'cancelled', finished_at = now(), locked_by = NULL, \
                lease_until = NULL \
         WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2) \
           AND state IN ('pending', 'running', 'retrying')",
    )
    .bind(id)
    .bind(owner)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Put a dead or cancelled job back to pending with a fresh set of attempts (its error history
/// stays). Fails with a unique violation when another live job holds its dedup key.
pub async fn retry(
    conn: &mut PgConnection,
    id: Uuid,
    owner: Option<Uuid>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'pending', run_at = now(), attempts = 0, crashes = 0, \
                dead_reason = NULL, finished_at = NULL, result = NULL \
         WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2) \
           AND state IN ('dead', 'cancelled') \
         RETURNING pg_notify('workhorse_jobs', kind)",
    )
    .bind(id)
    .bind(owner)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Delete up to `batch` finished jobs older than `retention`; returns how many.
pub async fn prune(
    db: impl PgExecutor<'_>,
    retention: Duration,
    batch: i64,
) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM jobs WHERE id IN ( \
             SELECT id FROM jobs \
             WHERE state IN ('succeeded', 'dead', 'cancelled') \
               AND finished_at < now() - $1 * interval '1 millisecond' \
             LIMIT $2)",
    )
    .bind(retention.as_millis() as f64)
    .bind(batch)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// A stored job, for the API and tests.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    /// Id.
    pub id: Uuid,
    /// Kind.
    pub kind: String,
    /// Arguments.
    pub args: Value,
    /// Stored state.
    pub state: String,
    /// When it runs (next).
    pub run_at: DateTime<Utc>,
    /// Attempts made.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Workers it killed.
    pub crashes: i32,
    /// Dedup key.
    pub dedup_key: Option<String>,
    /// Owner.
    pub owner_id: Option<Uuid>,
    /// Each attempt's error.
    pub errors: Value,
    /// Result of the successful attempt.
    pub result: Option<Value>,
    /// Why it is dead.
    pub dead_reason: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Start of the last attempt.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// Find a job; with `owner`, only that user's.
pub async fn find_job(
    db: impl PgExecutor<'_>,
    id: Uuid,
    owner: Option<Uuid>,
) -> anyhow::Result<Option<Job>> {
    Ok(sqlx::query_as(
        "SELECT id, kind, args, state, run_at, attempts, max_attempts, crashes, dedup_key, \
                owner_id, errors, result, dead_reason, created_at, started_at, finished_at \
         FROM jobs WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2)",
    )
    .bind(id)
    .bind(owner)
    .fetch_optional(db)
    .await?)
}

/// A job with everything the API shows about it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobDetail {
    /// The stored job.
    #[sqlx(flatten)]
    pub job: Job,
    /// Higher runs first.
    pub priority: i16,
}

/// Find a job with its priority; with `owner`, only that user's.
pub async fn find_job_detail(
    db: impl PgExecutor<'_>,
    id: Uuid,
    owner: Option<Uuid>,
) -> anyhow::Result<Option<JobDetail>> {
    Ok(sqlx::query_as(
        "SELECT id, kind, args, state, run_at, attempts, max_attempts, crashes, dedup_key, \
                owner_id, errors, result, dead_reason, created_at, started_at, finished_at, \
                priority \
         FROM jobs WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2)",
    )
    .bind(id)
    .bind(owner)
    .fetch_optional(db)
    .await?)
}

/// Which jobs [`list_jobs`] returns.
#[derive(Debug, Clone, Default)]
pub struct JobFilter<'a> {
    /// Only this user's jobs; `None` for everyone's.
    pub owner: Option<Uuid>,
    /// Only this kind.
    pub kind: Option<&'a str>,
    /// Only this state as the API names it: a stored state, or `scheduled` (pending with a
    /// future `run_at`; `pending` then means due now).
    pub state: Option<&'a str>,
    /// Only jobs with a smaller id (older, as ids are UUIDv7): the last id of the previous page.
    pub before: Option<Uuid>,
    /// At most this many.
    pub limit: i64,
}

/// A job in a list.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobSummary {
    /// Id.
    pub id: Uuid,
    /// Kind.
    pub kind: String,
    /// Stored state.
    pub state: String,
    /// When it runs (next).
    pub run_at: DateTime<Utc>,
    /// Attempts made.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
}

// The filters and order shared by both statements of `list_jobs`.
macro_rules! list_jobs_filter {
    () => {
        "AND ($2::text IS NULL OR kind = $2) \
         AND ($3::text IS NULL OR $3 = CASE WHEN state = 'pending' AND run_at > now() \
                                            THEN 'scheduled' ELSE state END) \
         AND id < coalesce($4::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff') \
         ORDER BY id DESC LIMIT $5"
    };
}

/// Jobs matching `filter`, newest first.
pub async fn list_jobs(
    db: impl PgExecutor<'_>,
    filter: &JobFilter<'_>,
) -> anyhow::Result<Vec<JobSummary>> {
    // Two statements so each plan walks its own index newest first: a user's jobs by
    // `jobs_owner_idx`, everyone's by the primary key. The cursor defaults to the largest
    // uuid so the range stays usable by the index.
    let query = match filter.owner {
        Some(_) => concat!(
            "SELECT id, kind, state, run_at, attempts, max_attempts, created_at, finished_at \
             FROM jobs WHERE owner_id = $1 ",
            list_jobs_filter!()
        ),
        None => concat!(
            "SELECT id, kind, state, run_at, attempts, max_attempts, created_at, finished_at \
             FROM jobs WHERE $1::uuid IS NULL ",
            list_jobs_filter!()
        ),
    };
    Ok(sqlx::query_as(query)
        .bind(filter.owner)
        .bind(filter.kind)
        .bind(filter.state)
        .bind(filter.before)
        .bind(filter.limit)
        .fetch_all(db)
        .await?)
}
