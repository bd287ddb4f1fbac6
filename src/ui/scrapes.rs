//! `/ui/scrapes`: scrapes with their status, URL, timings, screenshot thumbnail and error kind;
//! a page per scrape with the screenshot and a preview of the content. The same store reads as
//! `GET /v1/scrapes`, under the same owner rule.

use chrono::Utc;
use maud::{Markup, html};
use poem::http::{StatusCode, header};
use poem::web::{Data, Html, Path, Query};
use poem::{IntoResponse, handler};
use uuid::Uuid;

use super::extract::{PageError, PageResult};
use super::layout::{DetailQuery, PageQuery, page, state, time};
use super::session::Session;
use crate::api::ApiState;
use crate::domain::jobs::JobState;
use crate::store;
use crate::store::scrapes::Scrape;

const PAGE: i64 = 30;
/// Characters of content shown on a scrape's page.
const PREVIEW: usize = 4_000;

fn status(s: &Scrape) -> String {
    let run_at = s.job_run_at.unwrap_or(s.created_at);
    JobState::of_work(
        s.outcome.as_deref(),
        s.job_state.as_deref(),
        run_at,
        Utc::now(),
    )
}

fn millis(ms: Option<i32>) -> String {
    ms.map(|ms| format!("{ms} ms")).unwrap_or_default()
}

#[handler]
pub async fn list(
    session: Session,
    state: Data<&ApiState>,
    Query(q): Query<PageQuery>,
) -> PageResult {
    let owner = session.caller.owner_filter();
    let mut scrapes = store::scrapes::list(&state.pool, owner, q.before, PAGE + 1).await?;
    let next = crate::api::next_cursor(&mut scrapes, PAGE, |s| s.id);
    let rows = rows(&scrapes);
    if q.rows_only() {
        return Ok(Html(rows.into_string()).into_response());
    }
    let live = q.before.is_none().then_some("/ui/scrapes?fragment=rows");
    let body = html! {
        h1 { "Scrapes" }
        div.scroll { table {
            thead { tr {
                th scope="col" { "Screenshot" } th scope="col" { "URL" } th scope="col" { "Status" }
                th.optional scope="col" { "Load" } th.optional scope="col" { "Extract" }
                th scope="col" { "Error" } th.optional scope="col" { "Created" }
            } }
            tbody #scrapes data-live=[live] { (rows) }
        } }
        @if let Some(next) = next {
            p { a href=(format!("/ui/scrapes?before={next}")) { "Older scrapes →" } }
        }
    };
    Ok(page("Scrapes", &session, body))
}

fn rows(scrapes: &[Scrape]) -> Markup {
    html! {
        @if scrapes.is_empty() { tr { td colspan="7" .muted { "No scrapes." } } }
        @for s in scrapes {
            tr data-id=(s.id) {
                td { @if s.has_screenshot {
                    img.thumb src=(format!("/ui/scrapes/{}/screenshot.png", s.id))
                        alt=(format!("Screenshot of {}", s.url)) width="120" loading="lazy";
                } }
                td { a href=(format!("/ui/scrapes/{}", s.id)) { (s.url) } }
                td { (state(&status(s))) }
                td.optional { (millis(s.navigate_ms)) }
                td.optional { (millis(s.extract_ms)) }
                td { (s.error_kind.as_deref().unwrap_or("")) }
                td.optional { (time(Some(s.created_at))) }
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
    let scrape = (store::scrapes::find(&state.pool, id, owner).await?)
        .ok_or_else(|| PageError::not_found(format_args!("scrape {id}")))?;
    let detail = detail(&scrape);
    if q.live_part_only() {
        return Ok(Html(detail.into_string()).into_response());
    }
    let body = html! {
        p { a href="/ui/scrapes" { "← Scrapes" } }
        h1 { "Scrape of " span.mono { (scrape.url) } }
        div #scrape data-live=(format!("/ui/scrapes/{id}?fragment=detail")) data-job=(scrape.job_id) {
            (detail)
        }
    };
    Ok(page("Scrape", &session, body))
}

fn detail(s: &Scrape) -> Markup {
    let content = s.content.as_ref();
    let text = ["markdown", "text", "html"]
        .iter()
        .find_map(|f| content.and_then(|c| c[*f].as_str()).map(|t| (*f, t)));
    html! {
        dl {
            dt { "Status" } dd { (state(&status(s))) }
            dt { "URL" } dd { a href=(s.url) rel="noreferrer noopener" { (s.url) } }
            @if let Some(f) = &s.final_url { dt { "Final URL" } dd { (f) } }
            @if let Some(code) = s.http_status { dt { "HTTP status" } dd { (code) } }
            @if let Some(t) = &s.title { dt { "Title" } dd { (t) } }
            dt { "Attempts" } dd { (s.attempts) }
            dt { "Load / wait / extract" } dd {
                (millis(s.navigate_ms)) " / " (millis(s.wait_ms)) " / " (millis(s.extract_ms))
            }
            dt { "Created" } dd { (time(Some(s.created_at))) }
            dt { "Finished" } dd { (time(s.finished_at)) }
            @if let Some(kind) = &s.error_kind { dt { "Error" } dd { (kind) ": " (s.error.as_deref().unwrap_or("")) } }
            dt { "Job" } dd { a.mono href=(format!("/ui/jobs/{}", s.job_id)) { (s.job_id) } }
            @if let Some(doc) = s.document_id { dt { "Document" } dd { a.mono href=(format!("/ui/documents/{doc}")) { (doc) } } }
            @if let Some(summary) = s.summary_id { dt { "Summary" } dd { a.mono href=(format!("/ui/summaries/{summary}")) { (summary) } } }
        }
        @if s.has_screenshot {
            h2 { "Screenshot" }
            img.screenshot src=(format!("/ui/scrapes/{}/screenshot.png", s.id))
                alt=(format!("Screenshot of {}", s.url));
        }
        @if let Some((format, text)) = text {
            h2 { "Content (" (format) ")" }
            pre { (text.chars().take(PREVIEW).collect::<String>()) @if text.chars().count() > PREVIEW { "\n…" } }
        }
    }
}

#[handler]
pub async fn screenshot(
    session: Session,
    state: Data<&ApiState>,
    Path(id): Path<Uuid>,
) -> PageResult {
    let owner = session.caller.owner_filter();
    Ok(
        match store::scrapes::screenshot(&state.pool, id, owner).await? {
            Some(Some(png)) => png
                .with_content_type("image/png")
                .with_header(header::CACHE_CONTROL, "private, max-age=3600")
                .into_response(),
            _ => StatusCode::NOT_FOUND.into_response(),
        },
    )
}
