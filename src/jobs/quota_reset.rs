//! `quota_reset`: start the next quota period of every counter whose period ended, at each
//! user's local midnight (`store::quotas::reset_due`: never before the ended one's end, and
//! never shorter than a local day after a zone change). `jobs/quota-reset.toml` runs it every
//! 15 minutes (every time zone's midnight falls on a quarter hour) and catches up a run missed
//! while no daemon was up. Running it again changes nothing: only counters whose period is
//! over are touched.

use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::engine::{Job, JobError, JobKind};
use crate::store;

/// `quota_reset` takes no arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaResetArgs {}

/// The `quota_reset` kind.
pub struct QuotaReset {
    /// Where the counters are.
    pub pool: PgPool,
    /// The time zone of users without their own (`quotas.default_timezone`).
    pub default_timezone: String,
}

impl JobKind for QuotaReset {
    const NAME: &'static str = crate::domain::jobs::kinds::QUOTA_RESET;
    type Args = QuotaResetArgs;

    async fn run(&self, _job: Job<QuotaResetArgs>) -> Result<Value, JobError> {
        let at = Utc::now();
        let reset = store::quotas::reset_due(&self.pool, at, &self.default_timezone).await?;
        if reset > 0 {
            tracing::info!(counters = reset, "quota periods started");
        }
        Ok(json!({ "counters_reset": reset, "at": at }))
    }
}
