//! Quota counters, the charges jobs hold, daily resets, and the per-token request-rate state.
//!
//! A period runs from one local midnight of the user to the next, computed by PostgreSQL from
//! the user's IANA time zone (`date_trunc('day', t AT TIME ZONE tz) AT TIME ZONE tz`), so days
//! of 23 or 25 hours come out right. Settling a charge happens in the database trigger
//! `settle_quota_charge` (see the migration), in the transaction that finishes the job.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// One action's counter of a user, as of now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The action, e.g. `scrape`.
    pub action: String,
    /// Units committed (jobs that succeeded) in the current period.
    pub used: i64,
    /// Units held by live jobs.
    pub reserved: i64,
    /// Start of the current period (the user's last local midnight).
    pub period_start: DateTime<Utc>,
    /// End of the current period (the user's next local midnight).
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

/// Reserve one unit of `action` for `job_id` of `user_id` (enqueued with `quota_action` set to
/// `action`, so that its final state settles the unit), unless `limit` units are already used
/// or reserved in the current period (`None`: no limit, the unit is only counted). Run it in the
/// transaction that enqueues the job: concurrent charges of one user and action queue on the
/// counter's row lock, so the count never passes the limit. A period that has ended is started
/// over here too, so a late reset job never refuses a unit that is due.
pub async fn charge(
    conn: &mut PgConnection,
    job_id: Uuid,
    user_id: Uuid,
    action: &str,
    limit: Option<u32>,
    default_tz: &str,
) -> anyhow::Result<Charge> {
    let limit = limit.map(i64::from);
    let row: Option<UsageRow> = sqlx::query_as(
        "WITH z AS ( \
             SELECT coalesce((SELECT timezone FROM users WHERE id = $1), $3) AS tz \
         ), p AS ( \
             SELECT date_trunc('day', now() AT TIME ZONE tz) AT TIME ZONE tz AS start, \
                    (date_trunc('day', now() AT TIME ZONE tz) + interval '1 day') \
                        AT TIME ZONE tz AS ends \
             FROM z \
         ) \
         INSERT INTO quota_counters AS q (user_id, action, period_start, resets_at, used, reserved) \
         SELECT $1, $2, p.start, p.ends, 0, 1 FROM p WHERE $4::bigint IS NULL OR $4 > 0 \
         ON CONFLICT (user_id, action) DO UPDATE SET \
             used = CASE WHEN q.resets_at <= now() THEN 0 ELSE q.used END, \
             period_start = CASE WHEN q.resets_at <= now() THEN EXCLUDED.period_start \
                                 ELSE q.period_start END, \
             resets_at = CASE WHEN q.resets_at <= now() THEN EXCLUDED.resets_at \
                              ELSE q.resets_at END, \
             last_reset = CASE WHEN q.resets_at <= now() THEN now() ELSE q.last_reset END, \
             reserved = q.reserved + 1 \
         WHERE $4::bigint IS NULL \
            OR (CASE WHEN q.resets_at <= now() THEN 0 ELSE q.used END) + q.reserved < $4 \
         RETURNING q.action, q.used::bigint, q.reserved::bigint, q.period_start, q.resets_at",
    )
    .bind(user_id)
    .bind(action)
    .bind(default_tz)
    .bind(limit)
    .fetch_optional(&mut *conn)
    .await
    .context("charging a quota unit")?;
    let Some(row) = row else {
        let counters = usage(&mut *conn, user_id, default_tz).await?;
        let counter = match counters.into_iter().find(|u| u.action == action) {
            Some(counter) => counter,
            // A limit of 0 refuses before any counter exists.
            None => {
                let (period_start, resets_at) =
                    current_period(&mut *conn, user_id, default_tz).await?;
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
    let usage = Usage::from(row);
    sqlx::query(
        "INSERT INTO quota_charges (job_id, user_id, action, period_start, state) \
         VALUES ($1, $2, $3, $4, 'reserved') \
         ON CONFLICT (job_id) DO UPDATE SET state = 'reserved', period_start = $4, \
             reserved_at = now(), settled_at = NULL",
    )
    .bind(job_id)
    .bind(user_id)
    .bind(action)
    .bind(usage.period_start)
    .execute(&mut *conn)
    .await
    .context("recording a quota charge")?;
    Ok(Charge::Reserved(usage))
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

/// The counters of `user_id` as of now, by action: a period that has ended shows as the
/// current one with nothing used (what the next charge or reset will write).
pub async fn usage(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    default_tz: &str,
) -> anyhow::Result<Vec<Usage>> {
    let rows: Vec<UsageRow> = sqlx::query_as(
        "WITH z AS ( \
             SELECT coalesce((SELECT timezone FROM users WHERE id = $1), $2) AS tz \
         ) \
         SELECT q.action, \
                CASE WHEN q.resets_at <= now() THEN 0 ELSE q.used END::bigint, \
                q.reserved::bigint, \
                CASE WHEN q.resets_at <= now() \
                     THEN date_trunc('day', now() AT TIME ZONE z.tz) AT TIME ZONE z.tz \
                     ELSE q.period_start END, \
                CASE WHEN q.resets_at <= now() \
                     THEN (date_trunc('day', now() AT TIME ZONE z.tz) + interval '1 day') \
                          AT TIME ZONE z.tz \
                     ELSE q.resets_at END \
         FROM quota_counters q, z WHERE q.user_id = $1 ORDER BY q.action",
    )
    .bind(user_id)
    .bind(default_tz)
    .fetch_all(db)
    .await
    .context("reading quota counters")?;
    Ok(rows.into_iter().map(Usage::from).collect())
}

/// The current period of `user_id` (for actions without a counter yet): start and end.
pub async fn current_period(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    default_tz: &str,
) -> anyhow::Result<(DateTime<Utc>, DateTime<Utc>)> {
    sqlx::query_as(
        "WITH z AS ( \
             SELECT coalesce((SELECT timezone FROM users WHERE id = $1), $2) AS tz \
         ) \
         SELECT date_trunc('day', now() AT TIME ZONE tz) AT TIME ZONE tz, \
                (date_trunc('day', now() AT TIME ZONE tz) + interval '1 day') AT TIME ZONE tz \
         FROM z",
    )
    .bind(user_id)
    .bind(default_tz)
    .fetch_one(db)
    .await
    .context("computing the current quota period")
}

/// Start a new period for every counter whose period ended at or before `at`: nothing used,
/// the period containing `at` in the user's time zone. Reserved units stay with their jobs.
/// Running it again for the same `at` changes nothing. Returns the counters reset.
pub async fn reset_due(
    db: impl PgExecutor<'_>,
    at: DateTime<Utc>,
    default_tz: &str,
) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "UPDATE quota_counters q SET used = 0, last_reset = $1, \
             period_start = date_trunc('day', $1 AT TIME ZONE z.tz) AT TIME ZONE z.tz, \
             resets_at = (date_trunc('day', $1 AT TIME ZONE z.tz) + interval '1 day') \
                         AT TIME ZONE z.tz \
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

/// Reset `user_id`'s counters now (an admin's grace): nothing used in the current period.
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
    /// How far the token's theoretical arrival time is ahead of now (after this request, when
    /// allowed).
    pub ahead: Duration,
}

/// Count a request of `token_id` against `limit` requests per `window` (GCRA, one statement):
/// allowed when it leaves the token's arrival time at most `window` ahead of now.
pub async fn hit_rate(
    db: impl PgExecutor<'_>,
    token_id: Uuid,
    limit: u32,
    window: Duration,
) -> anyhow::Result<RateHit> {
    let interval = window.as_micros() as f64 / f64::from(limit.max(1));
    let (allowed, ahead): (bool, f64) = sqlx::query_as(
        "WITH hit AS ( \
             INSERT INTO rate_limits AS r (token_id, tat) \
             VALUES ($1, now() + $2 * interval '1 microsecond') \
             ON CONFLICT (token_id) DO UPDATE \
                 SET tat = greatest(r.tat, now()) + $2 * interval '1 microsecond' \
                 WHERE greatest(r.tat, now()) + $2 * interval '1 microsecond' \
                       <= now() + $3 * interval '1 microsecond' \
             RETURNING tat \
         ) \
         SELECT true, extract(epoch FROM tat - now())::float8 FROM hit \
         UNION ALL \
         SELECT false, extract(epoch FROM tat - now())::float8 FROM rate_limits \
         WHERE token_id = $1 AND NOT EXISTS (SELECT 1 FROM hit)",
    )
    .bind(token_id)
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
