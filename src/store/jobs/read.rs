//! Reading jobs: one by id (with its owner check) and pages of a user's or everyone's jobs.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

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
    Ok(find_job_detail(db, id, owner)
        .await?
        .map(|detail| detail.job))
}

/// A job with everything the API shows about it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobDetail {
    /// The stored job.
    #[sqlx(flatten)]
    pub job: Job,
    /// Higher runs first.
    pub priority: i16,
    /// The W3C trace context of the work that enqueued it (`traceparent`, `tracestate`).
    pub trace_context: Value,
}

/// The columns of a [`JobDetail`], for statements that return one.
macro_rules! detail_columns {
    () => {
        "id, kind, args, state, run_at, attempts, max_attempts, crashes, dedup_key, owner_id, \
         errors, result, dead_reason, created_at, started_at, finished_at, priority, \
         trace_context"
    };
}
pub(super) use detail_columns;

/// Find a job with its priority; with `owner`, only that user's.
pub async fn find_job_detail(
    db: impl PgExecutor<'_>,
    id: Uuid,
    owner: Option<Uuid>,
) -> anyhow::Result<Option<JobDetail>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        detail_columns!(),
        " FROM jobs WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2)"
    ))
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

/// The states the `workhorse_jobs` gauge counts: live ones and dead (finished successes and
/// cancellations grow without end and are left out).
pub const GAUGE_STATES: [&str; 4] = ["pending", "running", "retrying", "dead"];

/// Jobs by kind and state, over [`GAUGE_STATES`] only; served by `jobs_gauge_idx`, so the cost
/// follows the live and dead jobs, not the finished ones.
pub async fn count_by_kind_and_state(
    db: impl PgExecutor<'_>,
) -> anyhow::Result<Vec<(String, String, i64)>> {
    let rows = sqlx::query_as(
        "SELECT kind, state, count(*) FROM jobs \
         WHERE state IN ('pending', 'running', 'retrying', 'dead') \
         GROUP BY kind, state",
    )
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// Jobs by state as the API names them (`scheduled` included), of `owner` or everyone's.
pub async fn count_by_state(
    db: impl PgExecutor<'_>,
    owner: Option<Uuid>,
) -> anyhow::Result<Vec<(String, i64)>> {
    let rows = sqlx::query_as(
        "SELECT CASE WHEN state = 'pending' AND run_at > now() THEN 'scheduled' ELSE state END \
                AS shown, count(*) \
         FROM jobs WHERE ($1::uuid IS NULL OR owner_id = $1) \
         GROUP BY shown ORDER BY shown",
    )
    .bind(owner)
    .fetch_all(db)
    .await?;
    Ok(rows)
}
