//! Schedules as use cases: list them with their last and next run, and trigger one by hand
//! (admins only, the schedule's arguments merged key by key with the caller's and checked
//! against the kind, the job enqueued through the schedule's own path: a manual tick row and
//! a job with a unique key).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::{Caller, Work, WorkError, WorkResult};
use crate::domain::jobs::JobState;
use crate::domain::schedule::Schedule;
use crate::jobs::schedule;
use crate::store;

/// A schedule with its last and next run.
#[derive(Debug, Clone)]
pub struct ScheduleStatus {
    /// The schedule as loaded from `jobs/*.toml`.
    pub schedule: Schedule,
    /// The next tick (none when disabled).
    pub next_run_at: Option<DateTime<Utc>>,
    /// The last run, by tick or manual trigger, by any daemon.
    pub last_run: Option<LastRun>,
}

/// The last run of a schedule.
#[derive(Debug, Clone)]
pub struct LastRun {
    /// The tick time (the trigger time for a manual run).
    pub tick: DateTime<Utc>,
    /// When it was fired.
    pub fired_at: DateTime<Utc>,
    /// Whether an admin triggered it.
    pub manual: bool,
    /// The job it enqueued, until it is pruned.
    pub job_id: Option<Uuid>,
    /// That job's state as the API names it, while the job exists.
    pub job_state: Option<&'static str>,
}

/// Every schedule of `schedules` with its last and next run, by name.
pub async fn list(
    db: impl PgExecutor<'_>,
    schedules: &[Schedule],
) -> WorkResult<Vec<ScheduleStatus>> {
    let last = store::schedules::last_ticks(db).await?;
    let now = Utc::now();
    let mut out: Vec<ScheduleStatus> = (schedules.iter())
        .map(|s| ScheduleStatus {
            next_run_at: s.enabled.then(|| s.next_tick(now)).flatten(),
            last_run: (last.iter())
                .find(|t| t.schedule == s.name)
                .map(|t| LastRun {
                    tick: t.tick,
                    fired_at: t.fired_at,
                    manual: t.manual,
                    job_id: t.job_id,
                    job_state: (t.job_state.as_deref())
                        .and_then(|stored| JobState::of(stored, t.tick, now))
                        .map(JobState::as_str),
                }),
            schedule: s.clone(),
        })
        .collect();
    out.sort_by(|a, b| a.schedule.name.cmp(&b.schedule.name));
    Ok(out)
}

/// Run the schedule named `name` of `schedules` now for `caller`, with `overrides` replacing
/// some of its arguments; returns the job's id.
pub async fn trigger(
    work: &Work,
    caller: &Caller,
    schedules: &[Schedule],
    name: &str,
    overrides: Option<Value>,
) -> WorkResult<Uuid> {
    if !caller.is_admin() {
        return Err(WorkError::Forbidden(
            "triggering a schedule needs the admin role".into(),
        ));
    }
    let Some(found) = schedules.iter().find(|s| s.name == name) else {
        return Err(WorkError::not_found(format_args!("schedule {name:?}")));
    };
    let mut run = found.clone();
    if let Some(overrides) = overrides {
        let (Some(args), Some(overrides)) = (run.args.as_object_mut(), overrides.as_object())
        else {
            return Err(WorkError::invalid("args", "args must be a JSON object"));
        };
        for (key, value) in overrides {
            args.insert(key.clone(), value.clone());
        }
        if let Some(Err(e)) = work.catalog.check(&run.kind, &run.args) {
            return Err(WorkError::invalid(
                "args",
                format!("args do not fit job kind {}: {e}", run.kind),
            ));
        }
    }
    Ok(schedule::trigger(&work.pool, &run, &work.config.jobs).await?)
}
