//! `/ui/schedules`: the cron schedules from `jobs/*.toml` with their zone, next and last run;
//! admins trigger one now, with optional arguments merged over the schedule's, through the same
//! `work::schedules::trigger` as `POST /v1/schedules/{name}/trigger`.

use maud::html;
use poem::web::{Data, Path, Redirect};
use poem::{IntoResponse, handler};
use serde::Deserialize;
use serde_json::Value;

use super::extract::{PageError, PageResult, Posted};
use super::layout::{self, page, time};
use super::session::Session;
use crate::api::ApiState;
use crate::work;

#[handler]
pub async fn list(session: Session, state: Data<&ApiState>) -> PageResult {
    let statuses = work::schedules::list(&state.pool, &state.schedules).await?;
    let admin = session.caller.is_admin();
    let body = html! {
        h1 { "Schedules" }
        @if statuses.is_empty() { p.muted { "No schedules are configured (jobs/*.toml)." } }
        @for st in &statuses {
            @let s = &st.schedule;
            section.card {
                h2 { (s.name) @if !s.enabled { " " span.muted { "(disabled)" } } }
                @if !s.description.is_empty() { p { (s.description) } }
                dl {
                    dt { "Cron" } dd.mono { (s.cron_expr) }
                    dt { "Zone" } dd { (s.timezone.name()) }
                    dt { "Job kind" } dd { (s.kind) }
                    dt { "Arguments" } dd.mono { (s.args) }
                    dt { "Next run" } dd { (time(st.next_run_at)) }
                    dt { "Last run" } dd {
                        @if let Some(last) = &st.last_run {
                            (time(Some(last.fired_at))) @if last.manual { " (triggered)" }
                            @if let Some(job) = last.job_id {
                                " " a href=(format!("/ui/jobs/{job}")) { "job" }
                                @if let Some(js) = last.job_state { " " (layout::state(js)) }
                            }
                        } @else { "never" }
                    }
                }
                @if admin {
                    form.filters method="post" action=(format!("/ui/schedules/{}/trigger", s.name)) {
                        input type="hidden" name="csrf" value=(session.csrf);
                        label { "Arguments to override (JSON object, optional)"
                            input type="text" name="args" size="40" placeholder="{}";
                        }
                        button type="submit" { "Run now" }
                    }
                }
            }
        }
    };
    Ok(page("Schedules", &session, body))
}

/// The trigger form.
#[derive(Deserialize)]
pub struct TriggerForm {
    args: Option<String>,
}

#[handler]
pub async fn trigger(
    Posted { session, form }: Posted<TriggerForm>,
    state: Data<&ApiState>,
    Path(name): Path<String>,
) -> PageResult {
    let overrides = match form
        .args
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        None => None,
        Some(raw) => match serde_json::from_str::<Value>(raw) {
            Ok(v @ Value::Object(_)) => Some(v),
            _ => {
                return Err(PageError::invalid(
                    "The arguments must be a JSON object, like {\"rows\": 10}.",
                ));
            }
        },
    };
    let job = work::schedules::trigger(
        &state.work,
        &session.caller,
        &state.schedules,
        &name,
        overrides,
    )
    .await?;
    Ok(Redirect::see_other(format!("/ui/jobs/{job}")).into_response())
}
