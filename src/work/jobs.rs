//! Jobs as use cases: enqueue one (the API's `POST /v1/jobs`, and the common tail of every
//! act that starts work), cancel, retry. The rules live here once: which kinds a user may
//! enqueue, the plan's `priority`, `max_attempts` and live-job bounds, the quota charge.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::quotas::{self, Charged};
use super::{Caller, Work, WorkError, WorkResult, caller_of};
use crate::domain::jobs::kinds;
use crate::store;
use crate::store::bounds::Held;
use crate::store::jobs::{Enqueued, JobDetail, NewJob};

/// Most attempts anyone may ask for; plans bound users further.
pub const MAX_ATTEMPTS: i32 = 100;

/// Kinds whose jobs work on a row their own use case writes first (the scrape, the summary,
/// the delivery), with the use case that starts them. Users start them only that way: through
/// `POST /v1/jobs` they could name another user's row in the arguments.
const STARTED_BY_USE_CASE: [(&str, &str); 4] = [
    (kinds::SCRAPE, "POST /v1/scrapes"),
    (kinds::CRAWL, "POST /v1/crawls"),
    (kinds::SUMMARISE, "POST /v1/documents/{id}/summaries"),
    (kinds::NOTIFY, "publishing an event to a channel"),
];

/// A job as a caller asks for it.
#[derive(Debug, Clone)]
pub struct JobRequest {
    /// The kind's name.
    pub kind: String,
    /// Its arguments (a JSON object; `{}` when none).
    pub args: Value,
    /// Run no earlier than this.
    pub run_at: Option<DateTime<Utc>>,
    /// Higher runs first (default 0).
    pub priority: Option<i16>,
    /// Attempts before the job is dead (default from `[jobs]`).
    pub max_attempts: Option<i32>,
    /// At most one live job of the caller with this kind and key.
    pub dedup_key: Option<String>,
}

/// What starting a job did.
#[derive(Debug, Clone)]
pub struct Started {
    /// The job created, or the caller's live job holding the same dedup key.
    pub enqueued: Enqueued,
    /// The unit reserved for a created job that charges a quota.
    pub charged: Option<Charged>,
    /// That job as stored.
    pub job: JobDetail,
}

/// A row requested with the job that does it (a scrape, a summary): the row's id and the
/// job's start.
#[derive(Debug, Clone)]
pub struct Requested {
    /// The row's id.
    pub id: Uuid,
    /// The job doing it, and the unit charged.
    pub started: Started,
}

/// Enqueue a job for `caller`: users may enqueue the kinds that charge a quota, admins any.
pub async fn enqueue(
    work: &Work,
    conn: &mut PgConnection,
    caller: &Caller,
    request: JobRequest,
) -> WorkResult<Started> {
    let kind = work.catalog.name(&request.kind).ok_or_else(|| {
        WorkError::invalid(
            "kind",
            format!(
                "unknown job kind {:?}; known kinds: {}",
                request.kind,
                work.catalog.names().join(", ")
            ),
        )
    })?;
    let args = request.args;
    if !args.is_object() {
        return Err(WorkError::invalid("args", "args must be a JSON object"));
    }
    // PostgreSQL cannot store U+0000 in jsonb or text; refuse it here rather than fail later.
    if has_nul(&args) {
        return Err(WorkError::invalid(
            "args",
            "args must not contain the character U+0000",
        ));
    }
    if let Some(Err(e)) = work.catalog.check(kind, &args) {
        return Err(WorkError::invalid(
            "args",
            format!("args do not fit job kind {kind}: {e}"),
        ));
    }
    if let Some(n) = request.max_attempts
        && !(1..=MAX_ATTEMPTS).contains(&n)
    {
        return Err(WorkError::invalid(
            "max_attempts",
            format!("max_attempts must be between 1 and {MAX_ATTEMPTS}"),
        ));
    }
    if let Some(key) = &request.dedup_key
        && (!(1..=200).contains(&key.chars().count()) || key.contains('\0'))
    {
        return Err(WorkError::invalid(
            "dedup_key",
            "dedup_key must be 1 to 200 characters, none of them U+0000",
        ));
    }
    if let Some((_, via)) = STARTED_BY_USE_CASE.iter().find(|(k, _)| *k == kind)
        && !caller.is_admin()
    {
        return Err(WorkError::Forbidden(format!(
            "{kind} jobs work on a resource of their own; start one with {via}"
        )));
    }
    let action = quotas::action_of(work, kind);
    if action.is_none() && !caller.is_admin() {
        return Err(WorkError::Forbidden(format!(
            "only admins may enqueue {kind} jobs; users may enqueue the kinds that charge a \
             quota of their plan"
        )));
    }
    let priority = request.priority.unwrap_or(0);
    check_priority(work, caller, priority)?;
    if let Some(n) = request.max_attempts {
        check_attempts(work, caller, n)?;
    }
    let job = NewJob {
        run_at: request.run_at,
        priority,
        dedup_key: request.dedup_key,
        quota_action: action,
        ..new_job(work, caller, kind, args)
    };
    let job = NewJob {
        max_attempts: request.max_attempts.unwrap_or(job.max_attempts),
        ..job
    };
    start(work, conn, caller, &job).await
}

/// A job of `kind` for `caller` with the configured attempts and the current trace.
pub fn new_job(work: &Work, caller: &Caller, kind: &str, args: Value) -> NewJob {
    let mut job = NewJob::new(kind, args, work.config.jobs.kind(kind).max_attempts);
    job.owner_id = Some(caller.user_id);
    job.trace_context = crate::telemetry::current_trace_context();
    job
}

/// The tail every act that starts a job shares: the live-job bound, the insert, and the
/// charge of a created job's quota, all on `conn`: the caller's transaction, or, on a
/// connection outside one, a transaction of its own when there is more than the insert to do
/// (an admin's uncharged job is the insert alone, one statement that commits by itself).
pub async fn start(
    work: &Work,
    conn: &mut PgConnection,
    caller: &Caller,
    job: &NewJob,
) -> WorkResult<Started> {
    let alone = caller.is_admin() && job.quota_action.is_none();
    if alone || conn.is_in_transaction() {
        return start_on(work, conn, caller, job).await;
    }
    let mut tx = conn.begin().await?;
    let started = start_on(work, &mut tx, caller, job).await?;
    tx.commit().await?;
    Ok(started)
}

async fn start_on(
    work: &Work,
    conn: &mut PgConnection,
    caller: &Caller,
    job: &NewJob,
) -> WorkResult<Started> {
    work.check_bound(conn, caller, Held::LiveJobs).await?;
    let (enqueued, stored) = store::jobs::enqueue_detail(conn, job).await?;
    let charged = match (enqueued, &job.quota_action) {
        (Enqueued::Created(id), Some(action)) => {
            Some(quotas::charge(work, conn, caller, id, action).await?)
        }
        _ => None,
    };
    Ok(Started {
        enqueued,
        charged,
        job: stored,
    })
}

fn check_priority(work: &Work, caller: &Caller, priority: i16) -> WorkResult<()> {
    let max = work.plan(caller).max_priority;
    if caller.is_admin() || priority <= max {
        return Ok(());
    }
    Err(WorkError::Bound {
        bound: "max_priority",
        limit: max.into(),
        value: true,
        detail: format!(
            "priority {priority} is above the {} plan's max_priority of {max}",
            caller.plan
        ),
    })
}

fn check_attempts(work: &Work, caller: &Caller, attempts: i32) -> WorkResult<()> {
    let max = work.plan(caller).max_attempts;
    if caller.is_admin() || attempts <= max {
        return Ok(());
    }
    Err(WorkError::Bound {
        bound: "max_attempts",
        limit: max.into(),
        value: true,
        detail: format!(
            "max_attempts {attempts} is above the {} plan's max_attempts of {max}",
            caller.plan
        ),
    })
}

/// Whether any key or string in `value` contains U+0000.
fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// Cancel a job of `caller` (any job for admins) that has not finished. A crawl's page whose
/// scrape this was counts as failed, and its crawl goes on.
pub async fn cancel(
    work: &Work,
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
) -> WorkResult<()> {
    let owner = caller.owner_filter();
    if store::jobs::cancel(conn, id, owner).await? {
        return super::crawls::page_cut_off(work, conn, id).await;
    }
    let job = store::jobs::find_job(&mut *conn, id, owner)
        .await?
        .ok_or_else(|| WorkError::not_found(format_args!("job {id}")))?;
    Err(WorkError::Conflict(format!(
        "job {id} is {}; only pending, scheduled, running or retrying jobs can be cancelled",
        job.state
    )))
}

/// Run a dead or cancelled job of `caller` again with fresh attempts. A job that charged a
/// quota charges its payer again (its unit came back when it ended), and the retried job
/// counts against its owner's live jobs.
pub async fn retry(
    work: &Work,
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
) -> WorkResult<Option<Charged>> {
    let owner = caller.owner_filter();
    let job = store::jobs::find_job(&mut *conn, id, owner)
        .await?
        .ok_or_else(|| WorkError::not_found(format_args!("job {id}")))?;
    if let Some(owner_id) = job.owner_id {
        let owner = caller_of(conn, owner_id).await?;
        work.check_bound(conn, &owner, Held::LiveJobs).await?;
    }
    let trace = crate::telemetry::current_trace_context();
    let retried = store::jobs::retry(conn, id, owner, &trace)
        .await
        .map_err(|e| {
            match e
                .as_database_error()
                .is_some_and(|d| d.is_unique_violation())
            {
                true => WorkError::Conflict(
                    "another live job of this kind holds this job's dedup_key".into(),
                ),
                false => WorkError::from(e),
            }
        })?;
    if !retried {
        return Err(WorkError::Conflict(format!(
            "job {id} is {}; only dead or cancelled jobs can be retried",
            job.state
        )));
    }
    let Some((payer_id, action)) = store::quotas::charge_of(&mut *conn, id).await? else {
        return Ok(None);
    };
    let payer = caller_of(conn, payer_id).await?;
    Ok(Some(quotas::charge(work, conn, &payer, id, &action).await?))
}
