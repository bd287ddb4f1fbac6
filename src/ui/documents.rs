//! `/ui/documents`: documents newest first (pasted, or scraped pages) with their title, source
//! and size, and a page per document with the start of its text and its summaries. The same
//! store reads as `GET /v1/documents`, under the same owner rule.

use maud::{Markup, html};
use poem::web::{Data, Html, Path, Query};
use poem::{IntoResponse, handler};
use uuid::Uuid;

use super::extract::{PageError, PageResult};
use super::layout::{PageQuery, page, time};
use super::session::Session;
use super::summaries;
use crate::api::ApiState;
use crate::store;
use crate::store::documents::Document;
use crate::store::summaries::SummaryFilter;

const PAGE: i64 = 50;
/// Characters of text shown on a document's page.
const PREVIEW: usize = 4_000;

#[handler]
pub async fn list(
    session: Session,
    state: Data<&ApiState>,
    Query(q): Query<PageQuery>,
) -> PageResult {
    let owner = session.caller.owner_filter();
    let mut documents = store::documents::list(&state.pool, owner, q.before, PAGE + 1).await?;
    let next = crate::api::next_cursor(&mut documents, PAGE, |d| d.id);
    let rows = rows(&documents);
    if q.rows_only() {
        return Ok(Html(rows.into_string()).into_response());
    }
    let live = q.before.is_none().then_some("/ui/documents?fragment=rows");
    let body = html! {
        h1 { "Documents" }
        p { a href="/ui/summaries" { "Summaries →" } }
        div.scroll { table {
            thead { tr {
                th scope="col" { "Title" } th scope="col" { "Source" } th scope="col" { "Size" }
                th.optional scope="col" { "Created" }
            } }
            tbody #documents data-live=[live] { (rows) }
        } }
        @if let Some(next) = next {
            p { a href=(format!("/ui/documents?before={next}")) { "Older documents →" } }
        }
    };
    Ok(page("Documents", &session, body))
}

fn rows(documents: &[Document]) -> Markup {
    html! {
        @if documents.is_empty() {
            tr { td colspan="4" .muted { "No documents (POST /v1/documents, or a scrape)." } }
        }
        @for d in documents {
            tr data-id=(d.id) {
                td { a href=(format!("/ui/documents/{}", d.id)) { (d.title) } }
                td { (source(d)) }
                td { (summaries::size(d.size)) }
                td.optional { (time(Some(d.created_at))) }
            }
        }
    }
}

fn source(d: &Document) -> Markup {
    html! {
        (d.source)
        @if let Some(url) = &d.source_url {
            ": " a href=(url) rel="noreferrer noopener" { (url) }
        }
    }
}

#[handler]
pub async fn show(session: Session, state: Data<&ApiState>, Path(id): Path<Uuid>) -> PageResult {
    let owner = session.caller.owner_filter();
    let document = (store::documents::find(&state.pool, id, owner).await?)
        .ok_or_else(|| PageError::not_found(format_args!("document {id}")))?;
    let filter = SummaryFilter {
        owner,
        document: Some(id),
        before: None,
        limit: 100,
    };
    let listed = store::summaries::list(&state.pool, &filter).await?;
    let live = format!("/ui/summaries?document={id}&fragment=rows");
    let text = &document.text;
    let body = html! {
        p { a href="/ui/documents" { "← Documents" } }
        h1 { (document.title) }
        dl {
            dt { "Source" } dd { (source(&document)) }
            dt { "Size" } dd { (summaries::size(document.size)) }
            dt { "Created" } dd { (time(Some(document.created_at))) }
            dt { "Owner" } dd.mono { (document.owner_id) }
        }
        h2 { "Summaries" }
        (summaries::table(&summaries::rows(&listed), Some(&live)))
        h2 { "Text" }
        pre { (text.chars().take(PREVIEW).collect::<String>()) @if text.chars().count() > PREVIEW { "\n…" } }
    };
    Ok(page("Document", &session, body))
}
