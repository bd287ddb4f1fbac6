//! The use cases: one function per act (enqueue a job, request a scrape or a summary, cancel,
//! retry, trigger a schedule, create a channel, publish an event). Each takes the [`Caller`]
//! and applies the same checks in the same order, wherever the act starts (API, dashboard,
//! CLI, a schedule, a job chaining work for its owner):
//!
//! 1. input bounds (lengths, ranges, known names), before anything is read,
//! 2. ownership of every object named,
//! 3. plan rules (what the plan includes, the `priority` and `max_attempts` it allows),
//! 4. the egress policy for addresses the daemon will reach for the user,
//! 5. object caps (tokens, channels, documents, live jobs per user),
//! 6. the quota (one unit reserved in the transaction that enqueues the job), last because it
//!    writes.
//!
//! Entry points parse their input, call one function here and map the [`WorkError`] to their
//! own shape (`api::error` turns it into problem+json). All SQL stays in `store/`.

pub mod channels;
pub mod crawls;
pub mod deliveries;
pub mod documents;
pub mod events;
pub mod finish;
pub mod jobs;
pub mod overview;
pub mod quotas;
pub mod schedules;
pub mod scrapes;
pub mod stream;
pub mod summaries;
pub mod tokens;
pub mod users;

use std::sync::Arc;

use anyhow::Context;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::config::{Config, PlanConfig};
use crate::egress::EgressPolicy;
use crate::engine::Catalog;
use crate::metrics::Metrics;
use crate::store;
use crate::store::bounds::Held;
use crate::store::quotas::Usage;

pub use crate::domain::users::Caller;

/// What the use cases need: the pool, the configuration (plans, kinds), the job kinds and the
/// egress policy. Cheap to clone; one per process.
#[derive(Clone)]
pub struct Work {
    /// The shared pool.
    pub pool: PgPool,
    /// The daemon's configuration.
    pub config: Arc<Config>,
    /// The job kinds, their argument checks and quotas.
    pub catalog: Catalog,
    /// What addresses the daemon may reach for a user.
    pub policy: Arc<EgressPolicy>,
    /// Where quota refusals are counted.
    pub metrics: Metrics,
}

impl Work {
    /// The plan of `caller`.
    pub fn plan(&self, caller: &Caller) -> &PlanConfig {
        self.config.plan(&caller.plan)
    }

    /// Refuse with the bound's name when `caller` already holds as many `held` objects as
    /// the plan allows; see [`check_bound`].
    pub async fn check_bound(
        &self,
        conn: &mut PgConnection,
        caller: &Caller,
        held: Held,
    ) -> WorkResult<()> {
        check_bound(conn, &self.config, caller, held).await
    }
}

/// Refuse with the bound's name when `caller` already holds as many `held` objects as the
/// plan allows (admins are unbounded). Takes the user's lock for that class of objects until
/// the transaction ends, so the insert that follows cannot race another.
pub async fn check_bound(
    conn: &mut PgConnection,
    config: &Config,
    caller: &Caller,
    held: Held,
) -> WorkResult<()> {
    if caller.is_admin() {
        return Ok(());
    }
    let plan = config.plan(&caller.plan);
    let (bound, limit, what) = match held {
        Held::Tokens => ("max_tokens", plan.max_tokens, "API tokens"),
        Held::Channels => ("max_channels", plan.max_channels, "channels"),
        Held::Documents => ("max_documents", plan.max_documents, "documents"),
        Held::LiveJobs => ("max_live_jobs", plan.max_live_jobs, "live jobs"),
    };
    let count = store::bounds::lock_and_count(conn, caller.user_id, held).await?;
    if count < i64::from(limit) {
        return Ok(());
    }
    Err(WorkError::Bound {
        bound,
        limit: limit.into(),
        value: false,
        detail: format!(
            "the {} plan allows {limit} {what} per user and {count} are held; remove some or \
             ask an admin for another plan",
            caller.plan
        ),
    })
}

/// The caller acting for `user_id` when no token is involved: a job chaining work for its
/// owner, a schedule, the CLI.
pub async fn caller_of(conn: &mut PgConnection, user_id: Uuid) -> WorkResult<Caller> {
    let user = store::users::find_user(conn, user_id)
        .await?
        .with_context(|| format!("user {user_id} no longer exists"))?;
    Ok(Caller {
        user_id: user.id,
        role: user.role,
        token_id: None,
        plan: user.plan,
    })
}

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
    /// A value is larger than allowed (413).
    #[error("{0}")]
    TooLarge(String),
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
    /// The daily quota of `action` is spent (429 with `Retry-After` until it resets).
    #[error("{detail}")]
    QuotaSpent {
        /// The quota's action, e.g. `scrape`.
        action: String,
        /// The counter as it is: when units come back is its `resets_at`.
        usage: Usage,
        /// Units per period for the payer's plan.
        limit: u32,
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
