//! `/ui/summaries`: summaries newest first (all of them, or one document's), and a page per
//! summary with its text, provider, model, built-in and cached marks, tokens, chunks, its
//! document and its job. The same store reads as `GET /v1/summaries/{id}`, under the same
//! owner rule: a user sees their own, an admin everyone's.

use chrono::Utc;
use maud::{Markup, html};
use poem::web::{Data, Html, Path, Query};
use poem::{IntoResponse, handler};
use serde::Deserialize;
use uuid::Uuid;

use super::extract::{PageError, PageResult};
use super::layout::{DetailQuery, page, state, time};
use super::session::Session;
use crate::api::ApiState;
use crate::domain::jobs::JobState;
use crate::store;
use crate::store::summaries::{Listed, Summary, SummaryFilter};

const PAGE: i64 = 30;
/// Characters of a summary shown in a listing.
const EXCERPT: usize = 160;

/// `?document=` keeps one document's, `?before=` pages, `?fragment=rows` asks for the table's
/// rows only.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    document: Option<Uuid>,
    before: Option<Uuid>,
    fragment: Option<String>,
}

/// Where a summary's work stands, as the API says it (`pending` … `succeeded`, `failed`).
fn status(s: &Summary) -> String {
    let run_at = s.job_run_at.unwrap_or(s.created_at);
    JobState::of_work(
        s.outcome.as_deref(),
        s.job_state.as_deref(),
        run_at,
        Utc::now(),
    )
}

/// The built-in and cached marks.
fn marks(s: &Summary) -> Markup {
    html! {
        @if s.builtin { " " span.mark title="made by the built-in extractive summariser" { "built-in" } }
        @if s.cached { " " span.mark title="answered from the cache of identical requests" { "cached" } }
    }
}

fn excerpt(text: &str) -> String {
    let mut shown: String = text.chars().take(EXCERPT).collect();
    if text.chars().count() > EXCERPT {
        shown.push('…');
    }
    shown
}

#[handler]
pub async fn list(
    session: Session,
    state: Data<&ApiState>,
    Query(q): Query<ListQuery>,
) -> PageResult {
    let filter = SummaryFilter {
        owner: session.caller.owner_filter(),
        document: q.document,
        before: q.before,
        limit: PAGE + 1,
    };
    let mut summaries = store::summaries::list(&state.pool, &filter).await?;
    let next = crate::api::next_cursor(&mut summaries, PAGE, |s| s.summary.id);
    let rows = rows(&summaries);
    if q.fragment.as_deref() == Some("rows") {
        return Ok(Html(rows.into_string()).into_response());
    }
    let query = |before: Option<Uuid>, fragment: bool| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(d) = q.document {
            query.append_pair("document", &d.to_string());
        }
        if let Some(b) = before {
            query.append_pair("before", &b.to_string());
        }
        if fragment {
            query.append_pair("fragment", "rows");
        }
        query.finish()
    };
    // Only the first page updates itself: later pages hold older summaries that stay put.
    let live = (q.before.is_none()).then(|| format!("/ui/summaries?{}", query(None, true)));
    let body = html! {
        h1 { "Summaries" }
        p { a href="/ui/documents" { "Documents →" }
            @if let Some(d) = q.document { " · " a href="/ui/summaries" { "all summaries" }
                " · only of " a.mono href=(format!("/ui/documents/{d}")) { "this document" } } }
        (table(&rows, live.as_deref()))
        @if let Some(next) = next {
            p { a href=(format!("/ui/summaries?{}", query(Some(next), false))) { "Older summaries →" } }
        }
    };
    Ok(page("Summaries", &session, body))
}

/// The summaries table around `rows`, updating itself from `live` when given.
pub fn table(rows: &Markup, live: Option<&str>) -> Markup {
    html! {
        div.scroll { table {
            thead { tr {
                th scope="col" { "Document" } th scope="col" { "Status" } th scope="col" { "Summary" }
                th.optional scope="col" { "Provider" } th.optional scope="col" { "Created" }
            } }
            tbody #summaries data-live=[live] { (rows) }
        } }
    }
}

/// One row per summary.
pub fn rows(summaries: &[Listed]) -> Markup {
    html! {
        @if summaries.is_empty() { tr { td colspan="5" .muted { "No summaries." } } }
        @for l in summaries {
            @let s = &l.summary;
            tr data-id=(s.id) {
                td { a href=(format!("/ui/summaries/{}", s.id)) { (l.document_title) } }
                td { (state(&status(s))) }
                td { (excerpt(s.text.as_deref().or(s.error.as_deref()).unwrap_or(""))) }
                td.optional { (s.provider.as_deref().unwrap_or("")) (marks(s)) }
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
    let summary = (store::summaries::find(&state.pool, id, owner).await?)
        .ok_or_else(|| PageError::not_found(format_args!("summary {id}")))?;
    let document = store::documents::find(&state.pool, summary.document_id, owner).await?;
    let title = document.as_ref().map_or("", |d| d.title.as_str());
    let detail = html! {
        (detail(&summary))
        @if let Some(d) = &document {
            h2 { "Document" }
            dl {
                dt { "Title" } dd { a href=(format!("/ui/documents/{}", d.id)) { (d.title) } }
                dt { "Source" } dd { (d.source) @if let Some(url) = &d.source_url { ": " (url) } }
                dt { "Size" } dd { (size(d.size)) }
            }
        }
    };
    if q.live_part_only() {
        return Ok(Html(detail.into_string()).into_response());
    }
    let live = format!("/ui/summaries/{id}?fragment=detail");
    let body = html! {
        p { a href="/ui/summaries" { "← Summaries" } }
        h1 { "Summary of " q { (title) } }
        div #summary data-live=(live) data-job=(summary.job_id) { (detail) }
    };
    Ok(page("Summary", &session, body))
}

fn detail(s: &Summary) -> Markup {
    let option = |name: &str| s.options[name].as_str().unwrap_or("default").to_owned();
    html! {
        dl {
            dt { "Status" } dd { (state(&status(s))) }
            dt { "Provider" } dd { (s.provider.as_deref().unwrap_or("")) (marks(s)) }
            dt { "Model" } dd { (s.model.as_deref().unwrap_or("")) }
            dt { "Style, length, language" } dd {
                (option("style")) ", " (option("length")) ", " (option("language"))
            }
            dt { "Tokens in / out" } dd { (s.tokens_in) " / " (s.tokens_out) }
            dt { "Chunks" } dd { (s.chunks) }
            dt { "Model calls" } dd { (s.model_calls) }
            dt { "Attempts" } dd { (s.attempts) }
            dt { "Created" } dd { (time(Some(s.created_at))) }
            dt { "Started" } dd { (time(s.started_at)) }
            dt { "Finished" } dd { (time(s.finished_at)) }
            @if let Some(e) = &s.error { dt { "Error" } dd { (e) } }
            dt { "Job" } dd { a.mono href=(format!("/ui/jobs/{}", s.job_id)) { (s.job_id) } }
        }
        @if let Some(text) = &s.text {
            h2 { "Summary" }
            div.text #summary-text { (text) }
        }
    }
}

/// A size in bytes as a person reads it.
pub fn size(bytes: i32) -> String {
    match bytes {
        b if b < 1_000 => format!("{b} bytes"),
        b if b < 1_000_000 => format!("{:.1} kB", f64::from(b) / 1e3),
        b => format!("{:.1} MB", f64::from(b) / 1e6),
    }
}
