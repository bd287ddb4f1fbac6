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

/// Where a user stands on one of their plan's daily quotas.
#[derive(Debug, Clone)]
pub struct Standing {
    /// The action, e.g. `scrape`.
    pub action: String,
    /// Units per period; `None`: not limited (admins).
    pub limit: Option<u32>,
    /// Units used by jobs that succeeded in the current period.
    pub used: i64,
    /// Units held by jobs still running.
    pub reserved: i64,
    /// Units left now; `None` when not limited.
    pub remaining: Option<i64>,
    /// When the units come back.
    pub resets_at: chrono::DateTime<chrono::Utc>,
}

/// Every quota of `user`'s plan (and any action they hold units of) with where they stand,
/// by action; and the earliest reset (after a zone change the running periods keep their
/// ends, which the zone's next midnight no longer tells).
pub async fn standing(
    conn: &mut PgConnection,
    config: &crate::config::Config,
    user: &store::users::User,
) -> WorkResult<(Vec<Standing>, chrono::DateTime<chrono::Utc>)> {
    let tz = &config.quotas.default_timezone;
    let counters = store::quotas::usage(&mut *conn, user.id, tz).await?;
    let (_, next_reset) = store::quotas::current_period(&mut *conn, user.id, tz).await?;
    let plan = config.plan(&user.plan);
    let admin = user.role == crate::domain::users::Role::Admin;
    let mut actions: Vec<String> = plan.quotas.keys().cloned().collect();
    actions.extend(counters.iter().map(|c| c.action.clone()));
    actions.sort();
    actions.dedup();
    let quotas: Vec<Standing> = (actions.into_iter())
        .map(|action| {
            let limit = (!admin).then(|| plan.quotas.get(&action).copied().unwrap_or(0));
            let counter = counters.iter().find(|c| c.action == action);
            let used = counter.map_or(0, |c| c.used);
            let reserved = counter.map_or(0, |c| c.reserved);
            Standing {
                remaining: limit.map(|l| (i64::from(l) - used - reserved).max(0)),
                limit,
                used,
                reserved,
                resets_at: counter.map_or(next_reset, |c| c.resets_at),
                action,
            }
        })
        .collect();
    let next_reset = (quotas.iter().map(|q| q.resets_at).min()).unwrap_or(next_reset);
    Ok((quotas, next_reset))
}

/// Give user `id` their daily quotas back now (admins only): nothing used in the current
/// periods, whose ends stay; units held by running jobs stay held. Returns the user.
pub async fn reset(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
) -> WorkResult<store::users::User> {
    super::users::require_admin(caller)?;
    let user = (store::users::find_user(conn, id).await?)
        .ok_or_else(|| WorkError::not_found(format_args!("user {id}")))?;
    let reset = store::quotas::reset_user(&mut *conn, user.id).await?;
    tracing::info!(user = %user.id, by = %caller.user_id, counters = reset, "quotas reset by an admin");
    Ok(user)
}
