//! `/v1/schedules`: the cron schedules from `jobs/*.toml`, with their last and next run, and
//! an admin's manual trigger.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use uuid::Uuid;

use super::ApiState;
use super::auth::BearerAuth;
use super::error::ApiError;
use crate::api::closed::{JobStates, OneOf};
use crate::work;

#[derive(Tags)]
enum ScheduleTags {
    /// Cron schedules that enqueue jobs.
    Schedules,
}

/// Schedules.
pub struct SchedulesApi;

/// A schedule with its last and next run.
#[derive(Object)]
struct ScheduleOut {
    /// Unique name (the file's `name`).
    name: String,
    /// Cron expression: 5 fields, or 6 with seconds first.
    cron: String,
    /// IANA time zone the expression is read in.
    timezone: String,
    /// Job kind each tick enqueues.
    kind: String,
    /// The job's arguments.
    args: serde_json::Value,
    /// Whether ticks fire.
    enabled: bool,
    /// Whether a start fires the latest tick missed while no daemon ran.
    catch_up: bool,
    /// What it is for.
    description: String,
    /// The next tick (none when disabled).
    #[oai(skip_serializing_if_is_none)]
    next_run_at: Option<DateTime<Utc>>,
    /// The last run, by tick or manual trigger, by any daemon.
    #[oai(skip_serializing_if_is_none)]
    last_run: Option<LastRunOut>,
}

/// The last run of a schedule.
#[derive(Object)]
struct LastRunOut {
    /// The tick time (the trigger time for a manual run).
    tick: DateTime<Utc>,
    /// When it was fired.
    fired_at: DateTime<Utc>,
    /// Whether an admin triggered it.
    manual: bool,
    /// The job it enqueued; `/v1/jobs/{id}` shows it until it is pruned.
    #[oai(skip_serializing_if_is_none)]
    job_id: Option<Uuid>,
    /// That job's state, while it exists.
    #[oai(skip_serializing_if_is_none)]
    job_state: Option<OneOf<JobStates>>,
}

/// Changes for one manual run.
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct TriggerIn {
    /// Arguments replacing the schedule's for this run (key by key), e.g. `{"rows": 5000}`.
    args: Option<serde_json::Value>,
}

/// The job a manual trigger enqueued.
#[derive(Object)]
struct TriggeredOut {
    /// The schedule.
    schedule: String,
    /// The job; follow `Location` for its state.
    job_id: Uuid,
}

#[derive(ApiResponse)]
enum Triggered {
    /// The job is enqueued.
    #[oai(status = 202)]
    Accepted(
        Json<TriggeredOut>,
        /// The job's URL.
        #[oai(header = "Location")]
        String,
    ),
}

#[OpenApi(prefix_path = "/v1", tag = "ScheduleTags::Schedules")]
impl SchedulesApi {
    /// List the schedules with their last and next run, by name.
    #[oai(path = "/schedules", method = "get", operation_id = "schedules_list")]
    async fn list_schedules(
        &self,
        _auth: BearerAuth,
        state: Data<&ApiState>,
    ) -> Result<Json<Vec<ScheduleOut>>, ApiError> {
        let statuses = work::schedules::list(&state.pool, &state.schedules).await?;
        let out = (statuses.into_iter())
            .map(|st| {
                let s = st.schedule;
                ScheduleOut {
                    name: s.name,
                    cron: s.cron_expr,
                    timezone: s.timezone.name().to_string(),
                    kind: s.kind,
                    args: s.args,
                    enabled: s.enabled,
                    catch_up: s.catch_up,
                    description: s.description,
                    next_run_at: st.next_run_at,
                    last_run: st.last_run.map(|t| LastRunOut {
                        tick: t.tick,
                        fired_at: t.fired_at,
                        manual: t.manual,
                        job_id: t.job_id,
                        job_state: t.job_state.map(OneOf::from),
                    }),
                }
            })
            .collect();
        Ok(Json(out))
    }

    /// Run a schedule's job now, outside its ticks (admins only): send `{}`, or
    /// `{"args": {...}}` to replace some of its arguments for this run. Disabled schedules can
    /// be triggered too.
    #[oai(
        path = "/schedules/:name/trigger",
        method = "post",
        operation_id = "schedules_trigger"
    )]
    async fn trigger_schedule(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        name: Path<String>,
        body: Json<TriggerIn>,
    ) -> Result<Triggered, ApiError> {
        let id =
            work::schedules::trigger(&state.work, &auth.0, &state.schedules, &name.0, body.0.args)
                .await?;
        let found = name.0;
        Ok(Triggered::Accepted(
            Json(TriggeredOut {
                schedule: found,
                job_id: id,
            }),
            format!("/v1/jobs/{id}"),
        ))
    }
}
