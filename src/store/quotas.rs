//! Quota counters, the charges jobs hold, the resets that start new periods, and the per-user
//! request-rate state.
//!
//! Every period comes from one SQL function, `quota_period(tz, after, at)` (see the migration
//! `20261204000002_quota_periods.sql`): a period starts at the user's last local midnight but
//! never before the previous one ended, and ends at a local midnight at least one local day
//! later. A period, once started, keeps its end; a new time zone applies from the next period.
//! Local days come from PostgreSQL (`date_trunc('day', t AT TIME ZONE tz) AT TIME ZONE tz`), so
//! days of 23 or 25 hours come out right. Settling a charge happens in the database trigger
//! `settle_quota_charge` (see `20261127000001_quotas.sql`), in the transaction that finishes
//! the job.
//!
//! Functions that compare periods with the time take it as `at` (`*_at`); the plain ones use
//! the daemon's clock. Simulations and tests drive time through `at`.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// One action's counter of a user, as of a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The action, e.g. `scrape`.
    pub action: String,
    /// Units committed (jobs that succeeded) in the current period.
    pub used: i64,
    /// Units held by live jobs.
    pub reserved: i64,
    /// Start of the current period.
    pub period_start: DateTime<Utc>,
    /// End of the current period: a local midnight of the user's zone when it started.
    pub resets_at: DateTime<Utc>,
}

/// The outcome of a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charge {
    /// A unit is reserved for the job; the counter after it.
    Reserved(Usage),
    /// No unit is left; the counter as it is.
    Spent(Usage),
}

/// [`charge_at`] now.
pub async fn charge(
    conn: &mut PgConnection,
    job_id: Uuid,
    user_id: Uuid,
    action: &str,
    limit: Option<u32>,
    default_tz: &str,
) -> anyhow::Result<Charge> {
    charge_at(conn, job_id, user_id, action, limit, default_tz, Utc::now()).await
}

/// Reserve one unit of `action` for `job_id` of `user_id` (enqueued with `quota_action` set to
/// `action`, so that its final state settles the unit), unless `limit` units are already used
/// or reserved in the period current at `at` (`None`: no limit, the unit is only counted). Run
/// it in the transaction that enqueues the job: concurrent charges of one user and action queue
/// on the counter's row lock, so the count never passes the limit. A period that has ended is
/// followed by the next one here too (`quota_period`), so a late reset job never refuses a
/// unit that is due, and a zone changed meanwhile cannot shorten the new period.
pub async fn charge_at(
    conn: &mut PgConnection,
    job_id: Uuid,
    user_id: Uuid,
    action: &str,
    limit: Option<u32>,
    default_tz: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<Charge> {
    let limit = limit.map(i64::from);
    // The counter and the job's charge in one statement: the charge is written only when
    // the counter reserved the unit.
    let row: Option<UsageRow> = sqlx::query_as(
        "WITH z AS ( \
             SELECT coalesce((SELECT timezone FROM users WHERE id = $1), $3) AS tz \
         ), counted AS ( \
         INSERT INTO quota_counters AS q (user_id, action, period_start, resets_at, used, reserved) \
         SELECT $1, $2, p.period_start, p.resets_at, 0, 1 \
         FROM z, quota_period(z.tz, NULL, $5) p \
         WHERE $4::bigint IS NULL OR $4 > 0 \
         ON CONFLICT (user_id, action) DO UPDATE SET \
             used = CASE WHEN q.resets_at <= $5 THEN 0 ELSE q.used END, \
             period_start = CASE WHEN q.resets_at <= $5 \
                 THEN (quota_period((SELECT tz FROM z), q.resets_at, $5)).period_start \
                 ELSE q.period_start END, \
             resets_at = CASE WHEN q.resets_at <= $5 \
                 THEN (quota_period((SELECT tz FROM z), q.resets_at, $5)).resets_at \
                 ELSE q.resets_at END, \
             last_reset = CASE WHEN q.resets_at <= $5 THEN $5 ELSE q.last_reset END, \
             reserved = q.reserved + 1 \
         WHERE $4::bigint IS NULL \
            OR (CASE WHEN q.resets_at <= $5 THEN 0 ELSE q.used END) + q.reserved < $4 \
         RETURNING q.action, q.used::bigint, q.reserved::bigint, q.period_start, q.resets_at \
         ), charge AS ( \
         INSERT INTO quota_charges (job_id, user_id, action, period_start, state) \
         SELECT $6, $1, $2, period_start, 'reserved' FROM counted \
         ON CONFLICT (job_id) DO UPDATE SET state = 'reserved', \
             period_start = excluded.period_start, reserved_at = now(), settled_at = NULL \
         ) \
         SELECT action, used, reserved, period_start, resets_at FROM counted",
    )
    .bind(user_id)
    .bind(action)
    .bind(default_tz)
    .bind(limit)
    .bind(at)
    .bind(job_id)
    .fetch_optional(&mut *conn)
    .await
    .context("charging a quota unit")?;
    let Some(row) = row else {
        let counters = usage_at(&mut *conn, user_id, default_tz, at).await?;
        let counter = match counters.into_iter().find(|u| u.action == action) {
            Some(counter) => counter,
            // A limit of 0 refuses before any counter exists.
            None => {
                let (period_start, resets_at) =
                    current_period_at(&mut *conn, user_id, default_tz, at).await?;
                Usage {
                    action: action.to_string(),
                    used: 0,
                    reserved: 0,
                    period_start,
                    resets_at,
                }
            }
        };
        return Ok(Charge::Spent(counter));
    };
    Ok(Charge::Reserved(Usage::from(row)))
}

/// The user and action a job charged, if it did.
pub async fn charge_of(
    db: impl PgExecutor<'_>,
    job_id: Uuid,
) -> anyhow::Result<Option<(Uuid, String)>> {
    sqlx::query_as("SELECT user_id, action FROM quota_charges WHERE job_id = $1")
        .bind(job_id)
        .fetch_optional(db)
        .await
        .context("reading a job's quota charge")
}

type UsageRow = (String, i64, i64, DateTime<Utc>, DateTime<Utc>);

impl From<UsageRow> for Usage {
    fn from((action, used, reserved, period_start, resets_at): UsageRow) -> Self {
        Self {
            action,
            used,
            reserved,
            period_start,
            resets_at,
        }
    }
}

/// [`usage_at`] now.
pub async fn usage(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    default_tz: &str,
) -> anyhow::Result<Vec<Usage>> {
    usage_at(db, user_id, default_tz, Utc::now()).await
}

/// The counters of `user_id` as of `at`, by action: a period that has ended shows as the one
/// that follows it with nothing used (what the next charge or reset will write).
pub async fn usage_at(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    default_tz: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<Vec<Usage>> {
    let rows: Vec<UsageRow> = sqlx::query_as(
        "WITH z AS ( \
             SELECT coalesce((SELECT timezone FROM users WHERE id = $1), $2) AS tz \
         ) \
         SELECT q.action, \
                CASE WHEN q.resets_at <= $3 THEN 0 ELSE q.used END::bigint, \
                q.reserved::bigint, \
                CASE WHEN q.resets_at <= $3 THEN p.period_start ELSE q.period_start END, \
                CASE WHEN q.resets_at <= $3 THEN p.resets_at ELSE q.resets_at END \
         FROM quota_counters q CROSS JOIN z \
         CROSS JOIN LATERAL quota_period(z.tz, q.resets_at, $3) p \
         WHERE q.user_id = $1 ORDER BY q.action",
    )
    .bind(user_id)
    .bind(default_tz)
    .bind(at)
    .fetch_all(db)
    .await
    .context("reading quota counters")?;
    Ok(rows.into_iter().map(Usage::from).collect())
}

/// [`current_period_at`] now.
pub async fn current_period(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    default_tz: &str,
) -> anyhow::Result<(DateTime<Utc>, DateTime<Utc>)> {
    current_period_at(db, user_id, default_tz, Utc::now()).await
}

/// The period a counter of `user_id` started at `at` would get (for actions without a counter
/// yet): the local day of the user's zone containing `at`, start and end.
pub async fn current_period_at(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    default_tz: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<(DateTime<Utc>, DateTime<Utc>)> {
    sqlx::query_as(
        "WITH z AS ( \
             SELECT coalesce((SELECT timezone FROM users WHERE id = $1), $2) AS tz \
         ) \
         SELECT p.period_start, p.resets_at FROM z, quota_period(z.tz, NULL, $3) p",
    )
    .bind(user_id)
    .bind(default_tz)
    .bind(at)
    .fetch_one(db)
    .await
    .context("computing the current quota period")
}

/// Start the next period of every counter whose period ended at or before `at`: nothing used,
/// the period `quota_period` gives (the user's local day containing `at`, but never starting
/// before the ended one's end). Reserved units stay with their jobs. Running it again for the
/// same `at` changes nothing. Returns the counters reset.
pub async fn reset_due(
    db: impl PgExecutor<'_>,
    at: DateTime<Utc>,
    default_tz: &str,
) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "UPDATE quota_counters q SET used = 0, last_reset = $1, \
             period_start = (quota_period(z.tz, q.resets_at, $1)).period_start, \
             resets_at = (quota_period(z.tz, q.resets_at, $1)).resets_at \
         FROM (SELECT id, coalesce(timezone, $2) AS tz FROM users) z \
         WHERE q.user_id = z.id AND q.resets_at <= $1",
    )
    .bind(at)
    .bind(default_tz)
    .execute(db)
    .await
    .context("resetting quotas")?;
    Ok(done.rows_affected())
}

/// Give `user_id` the units used in their current periods back (an admin's grace): nothing
/// used, the periods and their ends unchanged.
pub async fn reset_user(db: impl PgExecutor<'_>, user_id: Uuid) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "UPDATE quota_counters SET used = 0, last_reset = now() WHERE user_id = $1 AND used > 0",
    )
    .bind(user_id)
    .execute(db)
    .await
    .context("resetting a user's quotas")?;
    Ok(done.rows_affected())
}

/// What the rate limiter decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateHit {
    /// Whether the request may go ahead.
    pub allowed: bool,
    /// How far the user's theoretical arrival time is ahead of now (after this request, when
    /// allowed).
    pub ahead: Duration,
}

/// Count a request of `user_id`, whichever of their tokens made it, against `limit` requests
/// per `window` (GCRA, one statement): allowed when it leaves the user's arrival time at most
/// `window` ahead of now. All of a user's tokens share the one state, so minting tokens does
/// not multiply the rate.
pub async fn hit_rate(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    limit: u32,
    window: Duration,
) -> anyhow::Result<RateHit> {
    let interval = window.as_micros() as f64 / f64::from(limit.max(1));
    let (allowed, ahead): (bool, f64) = sqlx::query_as(
        "WITH hit AS ( \
             INSERT INTO rate_limits AS r (user_id, tat) \
             VALUES ($1, now() + $2 * interval '1 microsecond') \
             ON CONFLICT (user_id) DO UPDATE \
                 SET tat = greatest(r.tat, now()) + $2 * interval '1 microsecond' \
                 WHERE greatest(r.tat, now()) + $2 * interval '1 microsecond' \
                       <= now() + $3 * interval '1 microsecond' \
             RETURNING tat \
         ) \
         SELECT true, extract(epoch FROM tat - now())::float8 FROM hit \
         UNION ALL \
         SELECT false, extract(epoch FROM tat - now())::float8 FROM rate_limits \
         WHERE user_id = $1 AND NOT EXISTS (SELECT 1 FROM hit)",
    )
    .bind(user_id)
    .bind(interval)
    .bind(window.as_micros() as f64)
    .fetch_one(db)
    .await
    .context("counting a request against the rate limit")?;
    Ok(RateHit {
        allowed,
        ahead: Duration::from_secs_f64(ahead.max(0.0)),
    })
}
