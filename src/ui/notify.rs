//! `/ui/channels` and `/ui/deliveries`: a person's notification channels (send a test) and the
//! deliveries to them with their attempts and last answer (retry a dead one), through the same
//! `work::channels` and `work::deliveries` functions as the API.

use maud::html;
use poem::web::{Data, Html, Path, Query, Redirect};
use poem::{IntoResponse, handler};
use serde::Deserialize;
use uuid::Uuid;

use super::extract::{PageResult, Posted};
use super::layout::{page, state, time};
use super::session::Session;
use crate::api::ApiState;
use crate::store;
use crate::work::{self, deliveries::DeliveryFilter};

const PAGE: i64 = 50;

#[handler]
pub async fn channels(session: Session, state_: Data<&ApiState>) -> PageResult {
    let owner = session.caller.owner_filter();
    let channels = store::notifications::list_channels(&state_.pool, owner).await?;
    let body = html! {
        h1 { "Channels" }
        p { a href="/ui/deliveries" { "Deliveries →" } }
        div.scroll { table {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Kind" } th scope="col" { "Topics" }
                th scope="col" { "State" } th scope="col" { "Test" } } }
            tbody {
                @if channels.is_empty() { tr { td colspan="5" .muted { "No channels (POST /v1/channels)." } } }
                @for c in &channels { tr {
                    td { (c.name) }
                    td { (c.kind) }
                    td { @if c.topics.is_empty() { "all" } @else { (c.topics.join(", ")) } }
                    td { @if c.enabled { (state("enabled")) } @else {
                        (state("disabled")) " " (c.disabled_reason.as_deref().unwrap_or("")) } }
                    td { form method="post" action=(format!("/ui/channels/{}/test", c.id)) {
                        input type="hidden" name="csrf" value=(session.csrf);
                        button.secondary type="submit" aria-label=(format!("Send a test to {}", c.name)) { "Send a test" }
                    } }
                } }
            }
        } }
    };
    Ok(page("Channels", &session, body))
}

#[handler]
pub async fn test_channel(
    Posted { session, .. }: Posted,
    state: Data<&ApiState>,
    Path(id): Path<Uuid>,
) -> PageResult {
    let env = work::channels::Env {
        pool: &state.pool,
        config: &state.config,
        notifier: &state.notifier,
    };
    work::channels::test(&env, &session.caller, id).await?;
    Ok(Redirect::see_other("/ui/deliveries").into_response())
}

/// `?state=`, `?before=` and `?fragment=rows`.
#[derive(Deserialize, Default)]
pub struct DeliveryQuery {
    state: Option<String>,
    before: Option<Uuid>,
    fragment: Option<String>,
}

#[handler]
pub async fn deliveries(
    session: Session,
    state_: Data<&ApiState>,
    Query(q): Query<DeliveryQuery>,
) -> PageResult {
    let wanted = q.state.as_deref().filter(|s| !s.is_empty());
    let filter = DeliveryFilter {
        state: wanted,
        channel: None,
        before: q.before,
        limit: PAGE + 1,
    };
    let mut rows = work::deliveries::list(&state_.pool, &session.caller, &filter).await?;
    let next = crate::api::next_cursor(&mut rows, PAGE, |d| d.id);
    let table = html! {
        @if rows.is_empty() { tr { td colspan="7" .muted { "No deliveries." } } }
        @for d in &rows { tr data-id=(d.id) {
            td { (time(Some(d.created_at))) }
            td { (d.topic) }
            td { (state(&d.state)) }
            td { (d.attempts) }
            td { (d.last_status.map(|s| s.to_string()).unwrap_or_default()) }
            td { (d.last_error.as_deref().unwrap_or("")) }
            td { @if d.state == "dead" {
                form method="post" action=(format!("/ui/deliveries/{}/retry", d.id)) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button type="submit" { "Retry" }
                }
            } }
        } }
    };
    if q.fragment.as_deref() == Some("rows") {
        return Ok(Html(table.into_string()).into_response());
    }
    let live = q.before.is_none().then(|| match wanted {
        Some(s) => format!("/ui/deliveries?state={s}&fragment=rows"),
        None => "/ui/deliveries?fragment=rows".to_string(),
    });
    let body = html! {
        h1 { "Deliveries" }
        form.filters method="get" action="/ui/deliveries" {
            label { "State"
                select name="state" {
                    option value="" { "any" }
                    @for s in work::deliveries::STATES {
                        option value=(s) selected[wanted == Some(s)] { (s) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        div.scroll { table {
            thead { tr { th scope="col" { "Created" } th scope="col" { "Topic" } th scope="col" { "State" }
                th scope="col" { "Attempts" } th scope="col" { "Last status" } th scope="col" { "Last error" }
                th scope="col" { "Action" } } }
            tbody #deliveries data-live=[live] { (table) }
        } }
        @if let Some(next) = next {
            p { a href=(format!("/ui/deliveries?before={next}")) { "Older deliveries →" } }
        }
    };
    Ok(page("Deliveries", &session, body))
}

#[handler]
pub async fn retry_delivery(
    Posted { session, .. }: Posted,
    state: Data<&ApiState>,
    Path(id): Path<Uuid>,
) -> PageResult {
    let mut tx = state.pool.begin().await?;
    work::deliveries::retry(&mut tx, &session.caller, id).await?;
    tx.commit().await?;
    Ok(Redirect::see_other("/ui/deliveries").into_response())
}
