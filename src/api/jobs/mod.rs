//! `/v1/jobs`: enqueue (admin), list, inspect, cancel and retry jobs. Users see the jobs of
//! their own resources; admins see all.

mod resources;

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

pub use resources::{JobErrorOut, JobOut, JobPage, JobStateOut, JobSummaryOut};

use super::ApiState;
use super::auth::BearerAuth;
use super::error::ApiError;
use super::idempotency::{FingerprintedJson, Idempotency, Idempotent, fingerprint};
use super::limits;
use crate::api::closed::{JobKinds, JobStates, OneOf};
use crate::store;
use crate::store::jobs::{Enqueued, JobFilter};
use crate::work::{self, jobs::JobRequest};
use resources::known_state;

#[derive(Tags)]
enum JobTags {
    /// Durable background jobs: their state, attempts, errors and results.
    Jobs,
}

/// Jobs.
pub struct JobsApi;

/// A job to enqueue.
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct CreateJob {
    /// The job's kind, e.g. `echo`.
    kind: OneOf<JobKinds>,
    /// Arguments: a JSON object that fits the kind (default `{}`).
    args: Option<Value>,
    /// Run no earlier than this (RFC 3339); default now. A future time shows as `scheduled`.
    run_at: Option<DateTime<Utc>>,
    /// Higher runs first among due jobs of a kind (default 0); at most the plan's
    /// `max_priority` for users.
    priority: Option<i16>,
    /// Attempts before the job is dead, 1 to 100 and at most the plan's `max_attempts`
    /// (default from `[jobs]` configuration).
    #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
    max_attempts: Option<i32>,
    /// At most one live (pending, scheduled, running, retrying) job of a kind and owner holds
    /// a key, 1 to 200 characters; enqueueing another returns the caller's live one.
    #[oai(validator(min_length = 1, max_length = 200, pattern = r"^[^\u0000]*$"))]
    dedup_key: Option<String>,
}

fn known_kind(state: &ApiState, kind: &str) -> Result<&'static str, ApiError> {
    state.catalog.name(kind).ok_or_else(|| {
        ApiError::unprocessable(format!(
            "unknown job kind {kind:?}; known kinds: {}",
            state.catalog.names().join(", ")
        ))
    })
}

#[derive(ApiResponse)]
enum JobEnqueued {
    /// The job was created; it runs at `run_at`.
    #[oai(status = 202)]
    Created(Json<JobOut>, #[oai(header = "Location")] String),
    /// A live job of this kind holds the `dedup_key`: that job, and nothing was created.
    #[oai(status = 200)]
    Existing(Json<JobOut>, #[oai(header = "Location")] String),
}

fn location(id: Uuid) -> String {
    format!("/v1/jobs/{id}")
}

/// Enqueue `request` for the caller on `conn` and answer with the job as stored.
async fn enqueued(
    state: &ApiState,
    conn: &mut PgConnection,
    auth: &BearerAuth,
    request: JobRequest,
    req: &Request,
) -> Result<JobEnqueued, ApiError> {
    let started = work::jobs::enqueue(&state.work, conn, &auth.0, request).await;
    let started = limits::note(req, started, |s| s.charged.as_ref())?;
    let out = Json(JobOut::try_from(started.job)?);
    Ok(match started.enqueued {
        Enqueued::Created(id) => JobEnqueued::Created(out, location(id)),
        Enqueued::Duplicate(id) => JobEnqueued::Existing(out, location(id)),
    })
}

#[OpenApi(prefix_path = "/v1", tag = "JobTags::Jobs")]
impl JobsApi {
    /// Enqueue a job. Users may enqueue kinds that charge a plan quota (one unit, reserved
    /// now, given back if the job fails for good or is cancelled; 429 when the quota is used
    /// up); admins any kind. With `dedup_key`, a live job of the same kind and key is returned
    /// instead of creating a second one (and nothing is charged).
    #[oai(path = "/jobs", method = "post", operation_id = "jobs_create")]
    async fn create_job(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        /// Makes retries safe: the same key with the same body returns the first answer again
        /// (with `Idempotent-Replayed: true`); the same key with another body is refused with
        /// 409. 1 to 255 printable ASCII characters, per user, honoured for 24 hours.
        // Read by `Idempotency::new` from the raw headers; declared here for the spec.
        #[oai(
            name = "Idempotency-Key",
            validator(pattern = r"^[!-~]([ -~]{0,253}[!-~])?$")
        )]
        _idempotency_key: Header<Option<String>>,
        body: FingerprintedJson<CreateJob>,
        req: &Request,
    ) -> Result<Idempotent<JobEnqueued>, ApiError> {
        let idempotency = Idempotency::new(auth.user_id(), req, body.fingerprint)?;
        let body = body.value;
        let request = JobRequest {
            kind: body.kind.into_inner(),
            args: body
                .args
                .unwrap_or_else(|| Value::Object(Default::default())),
            run_at: body.run_at,
            priority: body.priority,
            max_attempts: body.max_attempts,
            dedup_key: body.dedup_key,
        };
        // Without a key the use case needs no transaction of ours: it opens one only when it
        // has more than the insert to do, so an admin's job is one statement.
        if !idempotency.is_keyed() {
            let mut conn = state.pool.acquire().await?;
            let response = enqueued(&state, &mut conn, &auth, request, req).await?;
            return Ok(Idempotent::Fresh(response));
        }
        let mut tx = state.pool.begin().await?;
        if let Some(replay) = idempotency.claim(&mut tx).await? {
            return Ok(replay);
        }
        let response = enqueued(&state, &mut tx, &auth, request, req).await?;
        let response = idempotency.finish(&mut tx, response).await?;
        tx.commit().await?;
        Ok(response)
    }

    /// List jobs, newest first: a user's own, or everyone's for admins.
    #[oai(path = "/jobs", method = "get", operation_id = "jobs_list")]
    async fn list_jobs(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        /// Only jobs of this kind.
        kind: Query<Option<OneOf<JobKinds>>>,
        /// Only jobs in this state: pending, scheduled, running, retrying, succeeded, dead or
        /// cancelled.
        #[oai(name = "state")]
        job_state: Query<Option<OneOf<JobStates>>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<Uuid>>,
        /// Page size, 1 to 200.
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<i64>,
    ) -> Result<Json<JobPage>, ApiError> {
        let kind = kind
            .0
            .as_ref()
            .map(|k| known_kind(&state, k.as_str()))
            .transpose()?;
        let job_state = job_state
            .0
            .as_ref()
            .map(OneOf::as_str)
            .map(known_state)
            .transpose()?;
        let filter = JobFilter {
            owner: auth.owner_filter(),
            kind,
            state: job_state,
            before: cursor.0,
            limit: limit.0 + 1,
        };
        let mut jobs = store::jobs::list_jobs(&state.pool, &filter).await?;
        let next_cursor = crate::api::next_cursor(&mut jobs, limit.0, |j| j.id);
        let items =
            (jobs.into_iter().map(JobSummaryOut::try_from)).collect::<anyhow::Result<_>>()?;
        Ok(Json(JobPage { items, next_cursor }))
    }

    /// A job with its attempts, errors, timings and result.
    #[oai(path = "/jobs/:id", method = "get", operation_id = "jobs_get")]
    async fn get_job(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
    ) -> Result<Json<JobOut>, ApiError> {
        let job = store::jobs::find_job_detail(&state.pool, id.0, auth.owner_filter())
            .await?
            .ok_or_else(|| ApiError::not_found(format_args!("job {}", id.0)))?;
        Ok(Json(JobOut::try_from(job)?))
    }

    /// Cancel a job that has not finished. A running attempt's result is discarded.
    #[oai(
        path = "/jobs/:id/cancel",
        method = "post",
        operation_id = "jobs_cancel"
    )]
    async fn cancel_job(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
    ) -> Result<Json<JobOut>, ApiError> {
        let mut tx = state.pool.begin().await?;
        work::jobs::cancel(&state.work, &mut tx, &auth.0, id.0).await?;
        tx.commit().await?;
        let mut conn = state.pool.acquire().await?;
        let job = store::jobs::find_job_detail(&mut *conn, id.0, auth.owner_filter())
            .await?
            .ok_or_else(|| ApiError::not_found(format_args!("job {}", id.0)))?;
        Ok(Json(JobOut::try_from(job)?))
    }

    /// Run a dead or cancelled job again, with a fresh set of attempts (its errors stay).
    #[oai(path = "/jobs/:id/retry", method = "post", operation_id = "jobs_retry")]
    async fn retry_job(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
        /// Makes retries of this request safe: the same key returns the first answer again
        /// (with `Idempotent-Replayed: true`). 1 to 255 printable ASCII characters, per user,
        /// honoured for 24 hours.
        // Read by `Idempotency::new` from the raw headers; declared here for the spec.
        #[oai(
            name = "Idempotency-Key",
            validator(pattern = r"^[!-~]([ -~]{0,253}[!-~])?$")
        )]
        _idempotency_key: Header<Option<String>>,
        req: &Request,
    ) -> Result<Idempotent<Json<JobOut>>, ApiError> {
        let print = fingerprint(req.method().as_str(), req.uri().path(), b"");
        let idempotency = Idempotency::new(auth.user_id(), req, print)?;
        let owner = auth.owner_filter();
        let mut tx = state.pool.begin().await?;
        if let Some(replay) = idempotency.claim(&mut tx).await? {
            return Ok(replay);
        }
        let retried = work::jobs::retry(&state.work, &mut tx, &auth.0, id.0).await;
        limits::note(req, retried, Option::as_ref)?;
        let job = store::jobs::find_job_detail(&mut *tx, id.0, owner)
            .await?
            .ok_or_else(|| ApiError::not_found(format_args!("job {}", id.0)))?;
        let out = JobOut::try_from(job)?;
        let response = idempotency.finish(&mut tx, Json(out)).await?;
        tx.commit().await?;
        Ok(response)
    }
}

fn default_limit() -> i64 {
    50
}
