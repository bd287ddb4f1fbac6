//! Charging a quota: one unit of an action reserved for a job in the transaction that
//! enqueues it, refused when the plan does not include the action or the period's units are
//! spent. Admins are counted, never refused.

use sqlx::PgConnection;
use uuid::Uuid;

use super::{Caller, Work, WorkError, WorkResult};
use crate::store;
use crate::store::quotas::{Charge, Usage};

/// A unit reserved: the counter after it and the plan's limit (`None` for admins).
#[derive(Debug, Clone)]
pub struct Charged {
    /// The counter after the charge.
    pub usage: Usage,
    /// Units per period for the payer's plan; `None` when unlimited.
    pub limit: Option<u32>,
}

/// Which quota action a job of `kind` charges: `jobs.kinds.<kind>.quota`, else the kind's own.
pub fn action_of(work: &Work, kind: &str) -> Option<String> {
    (work.config.jobs.kinds.get(kind))
        .and_then(|k| k.quota.clone())
        .or_else(|| work.catalog.quota(kind).map(str::to_string))
}

/// Reserve one unit of `action` from `payer` for `job_id`, in the caller's transaction.
pub async fn charge(
    work: &Work,
    conn: &mut PgConnection,
    payer: &Caller,
    job_id: Uuid,
    action: &str,
) -> WorkResult<Charged> {
    let plan = work.plan(payer);
    let limit = match payer.is_admin() {
        true => None,
        false => Some(*plan.quotas.get(action).ok_or_else(|| {
            WorkError::Forbidden(format!(
                "the {} plan does not include {action}; ask an admin to change your plan",
                payer.plan
            ))
        })?),
    };
    let tz = &work.config.quotas.default_timezone;
    match store::quotas::charge(conn, job_id, payer.user_id, action, limit, tz).await? {
        Charge::Reserved(usage) => Ok(Charged { usage, limit }),
        Charge::Spent(usage) => {
            work.metrics.quota_refused(action);
            Err(WorkError::QuotaSpent {
                action: action.to_string(),
                limit: limit.unwrap_or_default(),
                detail: format!(
                    "the daily {action} quota of the {} plan ({} units) is used up ({} used, {} \
                 held by running jobs); it resets at {}",
                    payer.plan,
                    limit.unwrap_or_default(),
                    usage.used,
                    usage.reserved,
                    usage.resets_at.to_rfc3339()
                ),
                usage,
            })
        }
    }
}
