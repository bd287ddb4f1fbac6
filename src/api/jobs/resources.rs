//! The job resources the API answers with: a job with its attempts, errors and result, the
//! summaries of a listing, and the states a person can act on.

use anyhow::Context;
use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};
use serde_json::Value;
use uuid::Uuid;

use crate::api::error::ApiError;
use crate::domain::jobs::JobState;
use crate::store::jobs::{JobDetail, JobSummary};
/// A job's state as a person can act on it.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase", remote = "JobState")]
pub enum JobStateOut {
    /// Waiting to run now.
    Pending,
    /// Waiting for its `run_at` in the future.
    Scheduled,
    /// A worker is on it.
    Running,
    /// An attempt failed; it runs again at `run_at`.
    Retrying,
    /// Finished successfully; see `result`.
    Succeeded,
    /// Failed for good (permanent error, attempts used up, or it kept killing its worker); see
    /// `dead_reason` and `errors`. Can be retried.
    Dead,
    /// Cancelled by a person. Can be retried.
    Cancelled,
}

fn api_state(stored: &str, run_at: DateTime<Utc>) -> anyhow::Result<JobStateOut> {
    JobState::of(stored, run_at, Utc::now())
        .map(JobStateOut::from)
        .with_context(|| format!("a job has the unknown stored state {stored:?}"))
}

/// One failed attempt.
#[derive(Object, serde::Deserialize)]
pub struct JobErrorOut {
    /// The attempt's number, from 1.
    pub attempt: i32,
    /// When it failed.
    pub at: DateTime<Utc>,
    /// What went wrong.
    pub error: String,
    /// Whether the error ruled out further attempts.
    pub permanent: bool,
}

/// A job.
#[derive(Object)]
pub struct JobOut {
    /// Id (UUIDv7: ids sort by creation time).
    pub id: Uuid,
    /// Kind, e.g. `echo`.
    pub kind: String,
    /// Arguments.
    pub args: Value,
    /// State.
    pub state: JobStateOut,
    /// Higher runs first.
    pub priority: i16,
    /// When it runs next (for a finished job: when it last became due).
    pub run_at: DateTime<Utc>,
    /// Attempts made so far.
    pub attempts: i32,
    /// Attempts allowed before it is dead.
    pub max_attempts: i32,
    /// Attempts whose worker died (process killed or hung).
    pub crashes: i32,
    /// At most one live job per kind holds a key.
    #[oai(skip_serializing_if_is_none)]
    pub dedup_key: Option<String>,
    /// The user whose resource the job works on.
    #[oai(skip_serializing_if_is_none)]
    pub owner_id: Option<Uuid>,
    /// Each failed attempt, oldest first.
    pub errors: Vec<JobErrorOut>,
    /// What the successful attempt returned.
    #[oai(skip_serializing_if_is_none)]
    pub result: Option<Value>,
    /// Why it is dead.
    #[oai(skip_serializing_if_is_none)]
    pub dead_reason: Option<String>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When its last attempt started.
    #[oai(skip_serializing_if_is_none)]
    pub started_at: Option<DateTime<Utc>>,
    /// When it succeeded, died or was cancelled.
    #[oai(skip_serializing_if_is_none)]
    pub finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<JobDetail> for JobOut {
    type Error = anyhow::Error;
    fn try_from(d: JobDetail) -> anyhow::Result<Self> {
        let job = d.job;
        // The errors column is written by our own SQL; a malformed entry is skipped rather
        // than failing the whole request.
        let errors = match job.errors {
            Value::Array(items) => (items.into_iter())
                .filter_map(|e| serde_json::from_value(e).ok())
                .collect(),
            _ => Vec::new(),
        };
        Ok(Self {
            state: api_state(&job.state, job.run_at)?,
            id: job.id,
            kind: job.kind,
            args: job.args,
            priority: d.priority,
            run_at: job.run_at,
            attempts: job.attempts,
            max_attempts: job.max_attempts,
            crashes: job.crashes,
            dedup_key: job.dedup_key,
            owner_id: job.owner_id,
            errors,
            result: job.result,
            dead_reason: job.dead_reason,
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
        })
    }
}

/// A job as listed.
#[derive(Object)]
pub struct JobSummaryOut {
    /// Id.
    pub id: Uuid,
    /// Kind.
    pub kind: String,
    /// State.
    pub state: JobStateOut,
    /// Attempts made so far.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// When it runs next.
    pub run_at: DateTime<Utc>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When it succeeded, died or was cancelled.
    #[oai(skip_serializing_if_is_none)]
    pub finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<JobSummary> for JobSummaryOut {
    type Error = anyhow::Error;
    fn try_from(j: JobSummary) -> anyhow::Result<Self> {
        Ok(Self {
            state: api_state(&j.state, j.run_at)?,
            id: j.id,
            kind: j.kind,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            run_at: j.run_at,
            created_at: j.created_at,
            finished_at: j.finished_at,
        })
    }
}

/// A page of jobs.
#[derive(Object)]
pub struct JobPage {
    /// Jobs, newest first.
    pub items: Vec<JobSummaryOut>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<Uuid>,
}

/// The API state named `state`, or 422 naming the known ones.
pub(super) fn known_state(state: &str) -> Result<&'static str, ApiError> {
    let names = JobState::ALL.map(JobState::as_str);
    names.into_iter().find(|s| *s == state).ok_or_else(|| {
        ApiError::unprocessable(format!(
            "unknown job state {state:?}; known states: {}",
            names.join(", ")
        ))
    })
}
