//! Enqueueing: one job inside the caller's transaction, or many in one statement, with dedup
//! keys scoped to the owner.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{Connection, PgConnection};
use tracing::Instrument;
use uuid::Uuid;

use super::read::{JobDetail, detail_columns};

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
    /// At most one live job per (kind, owner, key); jobs without an owner share one scope.
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
/// The insert is a `producer` span `enqueue {kind}`; when the job carries the caller's own
/// trace context (as every caller's does), the stored context is this span's, so each attempt
/// is its child: request → enqueue → attempt. A context taken elsewhere is stored as given.
pub async fn enqueue(conn: &mut PgConnection, job: &NewJob) -> anyhow::Result<Enqueued> {
    Ok(enqueue_detail(conn, job).await?.0)
}

/// [`enqueue`], with the job as stored: the one created, or the live one holding the dedup
/// key. The statements return it, so the caller needs no read-back.
pub async fn enqueue_detail(
    conn: &mut PgConnection,
    job: &NewJob,
) -> anyhow::Result<(Enqueued, JobDetail)> {
    let span = tracing::info_span!(
        "enqueue",
        otel.name = format!("enqueue {}", job.kind),
        otel.kind = "producer",
        job.kind = %job.kind,
        job.id = tracing::field::Empty,
        job.duplicate = tracing::field::Empty,
    );
    let trace_context = if job.trace_context == crate::telemetry::current_trace_context() {
        span.in_scope(crate::telemetry::current_trace_context)
    } else {
        job.trace_context.clone()
    };
    let result = insert(conn, job, &trace_context)
        .instrument(span.clone())
        .await;
    if let Ok((enqueued, _)) = &result {
        span.record("job.id", tracing::field::display(enqueued.id()));
        span.record("job.duplicate", matches!(enqueued, Enqueued::Duplicate(_)));
    }
    result
}

/// How often an enqueue whose dedup key is held tries again when the holder finishes between
/// the insert and the look-up.
const DEDUP_TRIES: usize = 3;

async fn insert(
    conn: &mut PgConnection,
    job: &NewJob,
    trace_context: &Value,
) -> anyhow::Result<(Enqueued, JobDetail)> {
    for _ in 0..DEDUP_TRIES {
        let id = Uuid::now_v7();
        let inserted: Option<JobDetail> = sqlx::query_as(concat!(
            "INSERT INTO jobs (id, kind, args, run_at, priority, max_attempts, dedup_key, \
                               owner_id, trace_context, quota_action) \
             VALUES ($1, $2, $3, coalesce($4, now()), $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (kind, (coalesce(owner_id, '00000000-0000-0000-0000-000000000000'::uuid)), \
                          dedup_key) \
                 WHERE dedup_key IS NOT NULL AND state IN ('pending', 'running', 'retrying') \
             DO NOTHING RETURNING ",
            detail_columns!()
        ))
        .bind(id)
        .bind(&job.kind)
        .bind(&job.args)
        .bind(job.run_at)
        .bind(job.priority)
        .bind(job.max_attempts)
        .bind(&job.dedup_key)
        .bind(job.owner_id)
        .bind(trace_context)
        .bind(&job.quota_action)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(detail) = inserted {
            // After the insert: a caller without a transaction has committed already, and
            // this process's workers of the kind may take the job at once.
            super::signal_enqueued();
            if !conn.is_in_transaction() {
                super::signal_committed(&job.kind);
            }
            return Ok((Enqueued::Created(detail.job.id), detail));
        }
        // Only a job of the same owner (or, for a job without one, another job without one)
        // can hold the key: the answer never names another user's job.
        let existing: Option<JobDetail> = sqlx::query_as(concat!(
            "SELECT ",
            detail_columns!(),
            " FROM jobs WHERE kind = $1 AND dedup_key = $2 \
               AND owner_id IS NOT DISTINCT FROM $3 \
               AND state IN ('pending', 'running', 'retrying')",
        ))
        .bind(&job.kind)
        .bind(&job.dedup_key)
        .bind(job.owner_id)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(existing) = existing {
            return Ok((Enqueued::Duplicate(existing.job.id), existing));
        }
        // The job holding the key finished between the two statements: the key is free now.
    }
    anyhow::bail!(
        "the dedup key of a {} job was taken and freed {DEDUP_TRIES} times in a row",
        job.kind
    )
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
         ON CONFLICT (kind, (coalesce(owner_id, '00000000-0000-0000-0000-000000000000'::uuid)), \
                      dedup_key) \
             WHERE dedup_key IS NOT NULL AND state IN ('pending', 'running', 'retrying') \
         DO NOTHING",
    )
    .bind(kind)
    .bind(max_attempts)
    .bind(&ids)
    .bind(args)
    .bind(&keys)
    .execute(&mut *conn)
    .await?;
    super::signal_enqueued();
    if !conn.is_in_transaction() && done.rows_affected() > 0 {
        super::signal_committed(kind);
    }
    Ok(done.rows_affected())
}
