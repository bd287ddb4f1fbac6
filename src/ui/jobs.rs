//! `/ui/jobs`: jobs filtered by kind, state and owner, a page per job (arguments, result,
//! every attempt's error, trace id) with Retry and Cancel. Reads go through the same store
//! queries as `GET /v1/jobs`, acts through the same `work::jobs` functions as the API.

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use poem::web::{Data, Html, Path, Query, Redirect};
use poem::{IntoResponse, handler};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::extract::{PageError, PageResult, Posted};
use super::layout::{DetailQuery, page, state, time};
use super::session::Session;
use crate::api::ApiState;
use crate::domain::jobs::JobState;
use crate::store;
use crate::store::jobs::{JobDetail, JobFilter, JobSummary};
use crate::work;

const PAGE: i64 = 50;

/// The filters of the jobs page, as query parameters.
#[derive(Deserialize, Default)]
pub struct Filters {
    kind: Option<String>,
    state: Option<String>,
    owner: Option<String>,
    before: Option<String>,
    /// `rows`: only the table's rows, for live updates.
    fragment: Option<String>,
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn shown_state(stored: &str, run_at: DateTime<Utc>) -> &'static str {
    JobState::of(stored, run_at, Utc::now()).map_or("unknown", JobState::as_str)
}

#[handler]
pub async fn list(
    session: Session,
    state: Data<&ApiState>,
    Query(f): Query<Filters>,
) -> PageResult {
    let caller = &session.caller;
    let kind = match nonempty(&f.kind) {
        Some(k) => Some(
            (state.catalog.name(k))
                .ok_or_else(|| PageError::invalid(&format!("unknown job kind {k:?}")))?,
        ),
        None => None,
    };
    let job_state = match nonempty(&f.state) {
        Some(s) if JobState::ALL.iter().any(|j| j.as_str() == s) => Some(s),
        Some(s) => return Err(PageError::invalid(&format!("unknown job state {s:?}"))),
        None => None,
    };
    let owner = match (caller.is_admin(), nonempty(&f.owner)) {
        (false, _) => Some(caller.user_id),
        (true, None) => None,
        (true, Some(o)) => {
            Some(Uuid::try_parse(o).map_err(|_| PageError::invalid("owner must be a user id"))?)
        }
    };
    let before = (nonempty(&f.before).map(Uuid::try_parse).transpose())
        .map_err(|_| PageError::invalid("the page cursor is not valid"))?;
    let filter = JobFilter {
        owner,
        kind,
        state: job_state,
        before,
        limit: PAGE + 1,
    };
    let mut jobs = store::jobs::list_jobs(&state.pool, &filter).await?;
    let next = crate::api::next_cursor(&mut jobs, PAGE, |j| j.id);
    let rows = rows(&jobs);
    if f.fragment.as_deref() == Some("rows") {
        return Ok(Html(rows.into_string()).into_response());
    }
    let query = |before: Option<Uuid>, fragment: bool| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [("kind", &f.kind), ("state", &f.state), ("owner", &f.owner)] {
            if let Some(v) = nonempty(v) {
                q.append_pair(k, v);
            }
        }
        if let Some(b) = before {
            q.append_pair("before", &b.to_string());
        }
        if fragment {
            q.append_pair("fragment", "rows");
        }
        q.finish()
    };
    // Only the first page updates itself: later pages hold older jobs that stay put.
    let live = before
        .is_none()
        .then(|| format!("/ui/jobs?{}", query(None, true)));
    let body = html! {
        h1 { "Jobs" }
        form.filters method="get" action="/ui/jobs" {
            label { "Kind"
                select name="kind" {
                    option value="" { "any" }
                    @for k in state.catalog.names() {
                        option value=(k) selected[nonempty(&f.kind) == Some(k)] { (k) }
                    }
                }
            }
            label { "State"
                select name="state" {
                    option value="" { "any" }
                    @for s in JobState::ALL {
                        option value=(s.as_str()) selected[job_state == Some(s.as_str())] { (s.as_str()) }
                    }
                }
            }
            @if caller.is_admin() {
                label { "Owner (user id)"
                    input type="text" name="owner" value=(nonempty(&f.owner).unwrap_or("")) size="36";
                }
            }
            button type="submit" { "Filter" }
        }
        div.scroll {
            table {
                caption.muted { "Newest first" }
                thead { tr {
                    th scope="col" { "Id" } th scope="col" { "Kind" } th scope="col" { "State" }
                    th scope="col" { "Attempts" } th.optional scope="col" { "Due" }
                    th.optional scope="col" { "Created" } th.optional scope="col" { "Finished" }
                } }
                tbody #jobs data-live=[live] { (rows) }
            }
        }
        @if let Some(next) = next {
            p { a href=(format!("/ui/jobs?{}", query(Some(next), false))) { "Older jobs →" } }
        }
    };
    Ok(page("Jobs", &session, body))
}

fn rows(jobs: &[JobSummary]) -> Markup {
    html! {
        @if jobs.is_empty() {
            tr { td colspan="7" .muted { "No jobs." } }
        }
        @for j in jobs {
            tr data-id=(j.id) {
                td.id { a href=(format!("/ui/jobs/{}", j.id)) { (j.id) } }
                td { (j.kind) }
                td { (state(shown_state(&j.state, j.run_at))) }
                td { (j.attempts) " / " (j.max_attempts) }
                td.optional { (time(Some(j.run_at))) }
                td.optional { (time(Some(j.created_at))) }
                td.optional { (time(j.finished_at)) }
            }
        }
    }
}

#[handler]
pub async fn show(
    session: Session,
    state: Data<&ApiState>,
    Path(id): Path<Uuid>,
    Query(q): Query<DetailQuery>,
) -> PageResult {
    let owner = session.caller.owner_filter();
    let job = (store::jobs::find_job_detail(&state.pool, id, owner).await?)
        .ok_or_else(|| PageError::not_found(format_args!("job {id}")))?;
    let detail = detail(&job, &session);
    if q.live_part_only() {
        return Ok(Html(detail.into_string()).into_response());
    }
    let live = format!("/ui/jobs/{id}?fragment=detail");
    let body = html! {
        p { a href="/ui/jobs" { "← Jobs" } }
        h1 { "Job " span.mono { (id) } }
        div #job data-live=(live) data-job=(id) { (detail) }
    };
    Ok(page("Job", &session, body))
}

fn detail(d: &JobDetail, session: &Session) -> Markup {
    let j = &d.job;
    let shown = shown_state(&j.state, j.run_at);
    let trace_id = d.trace_context["traceparent"]
        .as_str()
        .and_then(|tp| tp.split('-').nth(1))
        .unwrap_or("");
    let live = matches!(j.state.as_str(), "pending" | "running" | "retrying");
    let retryable = matches!(j.state.as_str(), "dead" | "cancelled");
    let errors = j.errors.as_array().cloned().unwrap_or_default();
    html! {
        div.actions {
            @if retryable {
                form method="post" action=(format!("/ui/jobs/{}/retry", j.id)) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button type="submit" { "Retry" }
                }
            }
            @if live {
                form method="post" action=(format!("/ui/jobs/{}/cancel", j.id)) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button.danger type="submit" { "Cancel" }
                }
            }
        }
        dl {
            dt { "Kind" } dd { (j.kind) }
            dt { "State" } dd #job-state { (state(shown)) }
            dt { "Attempts" } dd #job-attempts { (j.attempts) " of " (j.max_attempts) }
            dt { "Priority" } dd { (d.priority) }
            dt { "Due" } dd { (time(Some(j.run_at))) }
            dt { "Created" } dd { (time(Some(j.created_at))) }
            dt { "Started" } dd { (time(j.started_at)) }
            dt { "Finished" } dd { (time(j.finished_at)) }
            @if let Some(owner) = j.owner_id { dt { "Owner" } dd.mono { (owner) } }
            @if let Some(key) = &j.dedup_key { dt { "Dedup key" } dd { (key) } }
            @if let Some(reason) = &j.dead_reason { dt { "Dead because" } dd { (reason) } }
            dt { "Trace id" } dd.mono { (trace_id) }
        }
        h2 { "Arguments" }
        pre { (pretty(&j.args)) }
        @if let Some(result) = &j.result {
            h2 { "Result" }
            pre { (pretty(result)) }
        }
        h2 { "Attempts that failed" }
        @if errors.is_empty() {
            p.muted { "None." }
        } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Attempt" } th scope="col" { "At" } th scope="col" { "Error" } } }
                tbody { @for e in &errors { tr {
                    td { (e["attempt"]) }
                    td { (e["at"].as_str().unwrap_or("")) }
                    td { (e["error"].as_str().unwrap_or("")) @if e["permanent"] == true { " (permanent)" } }
                } } }
            } }
        }
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

#[handler]
pub async fn retry(
    Posted { session, .. }: Posted,
    state: Data<&ApiState>,
    Path(id): Path<Uuid>,
) -> PageResult {
    let mut tx = state.pool.begin().await?;
    work::jobs::retry(&state.work, &mut tx, &session.caller, id).await?;
    tx.commit().await?;
    Ok(Redirect::see_other(format!("/ui/jobs/{id}")).into_response())
}

#[handler]
pub async fn cancel(
    Posted { session, .. }: Posted,
    state: Data<&ApiState>,
    Path(id): Path<Uuid>,
) -> PageResult {
    let mut tx = state.pool.begin().await?;
    work::jobs::cancel(&state.work, &mut tx, &session.caller, id).await?;
    tx.commit().await?;
    Ok(Redirect::see_other(format!("/ui/jobs/{id}")).into_response())
}
