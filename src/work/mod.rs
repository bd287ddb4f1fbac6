//! The use cases: one function per act (enqueue a job, request a scrape or a summary, cancel,
//! retry, trigger a schedule, create a channel, publish an event). Each takes the [`Caller`]
//! and applies the same checks in the same order, wherever the act starts (API, dashboard,
//! CLI, a schedule, a job chaining work for its owner):
//!
//! 1. ownership of every object named,
//! 2. plan rules (what the plan includes, the `priority` and `max_attempts` it allows),
//! 3. the quota (one unit reserved in the transaction that enqueues the job),
//! 4. object caps (tokens, channels, documents, live jobs per user),
//! 5. the egress policy for addresses the daemon will reach for the user,
//! 6. input bounds.
//!
//! Entry points parse their input, call one function here and map the [`WorkError`] to their
//! own shape (`api::error` turns it into problem+json). All SQL stays in `store/`.

pub mod finish;

use chrono::{DateTime, Utc};

pub use crate::domain::users::Caller;

/// Why a piece of work was refused; each variant is a 4xx at the API except `Internal`.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    /// A value of the request is not acceptable (422); `field` names it when one does.
    #[error("{detail}")]
    Invalid {
        /// The JSON field or parameter at fault, e.g. `priority`.
        field: Option<&'static str>,
        /// What is wrong, for a person.
        detail: String,
    },
    /// The caller's role or plan does not allow the act (403).
    #[error("{0}")]
    Forbidden(String),
    /// The object does not exist or is not the caller's (404); names what was looked for.
    #[error("{0} not found")]
    NotFound(String),
    /// The act conflicts with the object's state (409), e.g. cancelling a finished job.
    #[error("{0}")]
    Conflict(String),
    /// A bound of the caller's plan would be passed (403 naming the bound, e.g.
    /// `max_channels`), or a requested value is above what the plan allows (422).
    #[error("{detail}")]
    Bound {
        /// The plan setting, e.g. `max_channels` or `max_priority`.
        bound: &'static str,
        /// Its value for the caller's plan.
        limit: i64,
        /// Whether a requested value (not a count of stored objects) is at fault.
        value: bool,
        /// What happened, for a person.
        detail: String,
    },
    /// The daily quota of `action` is spent (429 with `Retry-After` until `resets_at`).
    #[error("{detail}")]
    QuotaSpent {
        /// The quota's action, e.g. `scrape`.
        action: String,
        /// When units come back.
        resets_at: DateTime<Utc>,
        /// What happened, for a person.
        detail: String,
    },
    /// Something failed on our side (500 at the API, a retry in a job).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl WorkError {
    /// 422 for `field`.
    pub fn invalid(field: &'static str, detail: impl Into<String>) -> Self {
        WorkError::Invalid {
            field: Some(field),
            detail: detail.into(),
        }
    }

    /// 404 for `what`.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        WorkError::NotFound(what.to_string())
    }
}

impl From<sqlx::Error> for WorkError {
    fn from(error: sqlx::Error) -> Self {
        WorkError::Internal(error.into())
    }
}

/// The result of a use case.
pub type WorkResult<T> = Result<T, WorkError>;
