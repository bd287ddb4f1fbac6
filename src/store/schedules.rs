//! `schedule_ticks`: which cron ticks have fired, arbitrated by the primary key so that each
//! tick fires once across every daemon sharing the database.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::jobs::{self, NewJob};

/// Fire `tick` of `schedule`: record it and enqueue `job` in one transaction. Returns the job's
/// id, or `None` when another daemon fired this tick already.
pub async fn fire(
    pool: &PgPool,
    schedule: &str,
    tick: DateTime<Utc>,
    manual: bool,
    job: &NewJob,
) -> anyhow::Result<Option<Uuid>> {
    let mut tx = pool.begin().await?;
    let claimed = sqlx::query(
        "INSERT INTO schedule_ticks (schedule, tick, manual) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(schedule)
    .bind(tick)
    .bind(manual)
    .execute(&mut *tx)
    .await?;
    if claimed.rows_affected() == 0 {
        return Ok(None);
    }
    let id = jobs::enqueue(&mut tx, job).await?.id();
    sqlx::query("UPDATE schedule_ticks SET job_id = $3 WHERE schedule = $1 AND tick = $2")
        .bind(schedule)
        .bind(tick)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(id))
}

/// The last fired tick of a schedule.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LastTick {
    /// Schedule name.
    pub schedule: String,
    /// The tick time (the trigger time for a manual run).
    pub tick: DateTime<Utc>,
    /// When it was fired.
    pub fired_at: DateTime<Utc>,
    /// Whether an admin triggered it.
    pub manual: bool,
    /// The job it enqueued (gone once pruned).
    pub job_id: Option<Uuid>,
    /// That job's stored state, if it still exists.
    pub job_state: Option<String>,
}

/// The last fired tick of every schedule that has fired.
pub async fn last_ticks(db: impl PgExecutor<'_>) -> anyhow::Result<Vec<LastTick>> {
    Ok(sqlx::query_as(
        "SELECT DISTINCT ON (t.schedule) t.schedule, t.tick, t.fired_at, t.manual, t.job_id, \
                j.state AS job_state \
         FROM schedule_ticks t LEFT JOIN jobs j ON j.id = t.job_id \
         ORDER BY t.schedule, t.fired_at DESC",
    )
    .fetch_all(db)
    .await?)
}

/// The latest tick of `schedule` that fired on time (not an admin's trigger), if any has.
pub async fn last_scheduled_tick(
    db: impl PgExecutor<'_>,
    schedule: &str,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query_scalar(
        "SELECT max(tick) FROM schedule_ticks WHERE schedule = $1 AND NOT manual",
    )
    .bind(schedule)
    .fetch_one(db)
    .await?)
}

/// Forget ticks fired longer ago than `retention`; returns how many. Each schedule's latest
/// scheduled tick stays: a catch-up after a start counts missed ticks from it, and a weekly
/// schedule would otherwise look as if it had never fired.
pub async fn prune(db: impl PgExecutor<'_>, retention: Duration) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM schedule_ticks t \
         WHERE t.fired_at < now() - $1 * interval '1 millisecond' \
           AND (t.manual OR t.tick < (SELECT max(l.tick) FROM schedule_ticks l \
                                      WHERE l.schedule = t.schedule AND NOT l.manual))",
    )
    .bind(retention.as_millis() as f64)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
