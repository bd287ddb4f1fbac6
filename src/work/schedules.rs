//! Triggering a schedule by hand: admins only, the schedule's arguments merged key by key
//! with the caller's and checked against the kind, the job enqueued through the schedule's
//! own path (a manual tick row and a job with a unique key).

use serde_json::Value;
use uuid::Uuid;

use super::{Caller, Work, WorkError, WorkResult};
use crate::domain::schedule::Schedule;
use crate::jobs::schedule;

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
