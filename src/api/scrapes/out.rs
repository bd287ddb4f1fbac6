//! A scrape as the API shows it: status, what was asked, and what was found, with `content`
//! typed per format.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use poem_openapi::Object;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::api::closed::{OneOf, ScrapeErrorKinds, WorkStatuses};
use crate::domain::jobs::JobState;
use crate::scrape::content::{Link, Metadata};
use crate::scrape::options::ScrapeOptions;
use crate::store::scrapes::Scrape;

/// A scrape: what was asked, its status, and what was found.
#[derive(Object)]
pub(super) struct ScrapeOut {
    /// Id.
    pub id: Uuid,
    /// `pending`, `scheduled`, `running`, `retrying` (an attempt failed, another follows),
    /// `succeeded`, `failed` or `cancelled`.
    pub status: OneOf<WorkStatuses>,
    /// The requested URL.
    pub url: String,
    /// The URL after redirects.
    #[oai(skip_serializing_if_is_none)]
    pub final_url: Option<String>,
    /// The page's HTTP status, when the browser can tell it.
    #[oai(skip_serializing_if_is_none)]
    pub http_status: Option<i32>,
    /// The page title.
    #[oai(skip_serializing_if_is_none)]
    pub title: Option<String>,
    /// The kept formats.
    #[oai(skip_serializing_if_is_none)]
    pub content: Option<ScrapeContent>,
    /// The screenshot's URL, when one was kept.
    #[oai(skip_serializing_if_is_none)]
    pub screenshot_url: Option<String>,
    /// The URLs of the screenshots the actions took, in order (empty without any).
    pub action_screenshot_urls: Vec<String>,
    /// The document the page became (summaries start from it).
    #[oai(skip_serializing_if_is_none)]
    pub document_id: Option<Uuid>,
    /// The summary chained after the scrape (`summarise: true`).
    #[oai(skip_serializing_if_is_none)]
    pub summary_id: Option<Uuid>,
    /// Why the last attempt failed: `timeout`, `selector_not_found`, `navigation_failed`,
    /// `driver_unavailable`, `action_failed`, `blocked_by_policy`, `invalid_url`. Only the
    /// transient ones (`timeout`, `driver_unavailable`, network failures) are retried.
    #[oai(skip_serializing_if_is_none)]
    pub error_kind: Option<OneOf<ScrapeErrorKinds>>,
    /// The error, for a person.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
    /// The job doing the work (`/v1/jobs/{id}` while it is kept).
    pub job_id: Uuid,
    /// Attempts made.
    pub attempts: i32,
    /// Timings of the last attempt, in milliseconds.
    #[oai(skip_serializing_if_is_none)]
    pub timings: Option<Value>,
    /// What was asked: selector, timeout, screenshot, formats and the other options (header
    /// names only, never their values).
    pub options: Value,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// The first attempt started.
    #[oai(skip_serializing_if_is_none)]
    pub started_at: Option<DateTime<Utc>>,
    /// Finished.
    #[oai(skip_serializing_if_is_none)]
    pub finished_at: Option<DateTime<Utc>>,
}

/// What a scrape kept of the page, one field per requested format.
#[derive(Object, Default)]
pub(super) struct ScrapeContent {
    /// The content (main content unless `only_main_content` was false) as Markdown.
    #[oai(skip_serializing_if_is_none)]
    pub markdown: Option<String>,
    /// The same as cleaned HTML: no scripts, styles or hidden elements; links absolute.
    #[oai(skip_serializing_if_is_none)]
    pub html: Option<String>,
    /// The rendered page's whole HTML, as the browser had it.
    #[oai(skip_serializing_if_is_none)]
    pub raw_html: Option<String>,
    /// The content as plain text.
    #[oai(skip_serializing_if_is_none)]
    pub text: Option<String>,
    /// Every link of the page: absolute, without fragments, each once, in page order.
    #[oai(skip_serializing_if_is_none)]
    pub links: Option<Vec<ScrapeLink>>,
    /// What the page says about itself.
    #[oai(skip_serializing_if_is_none)]
    pub metadata: Option<ScrapeMetadata>,
    /// The value extracted with `json_options`, valid against its schema.
    #[oai(skip_serializing_if_is_none)]
    pub json: Option<Value>,
}

/// A link of a page.
#[derive(Object)]
pub(super) struct ScrapeLink {
    /// Absolute address.
    pub url: String,
    /// The anchor text (or its title or image `alt`); may be empty.
    pub text: String,
}

/// A page's metadata.
#[derive(Object)]
pub(super) struct ScrapeMetadata {
    /// `<title>`, else `og:title`.
    #[oai(skip_serializing_if_is_none)]
    pub title: Option<String>,
    /// `<meta name="description">`, else `og:description`.
    #[oai(skip_serializing_if_is_none)]
    pub description: Option<String>,
    /// `<html lang>`.
    #[oai(skip_serializing_if_is_none)]
    pub language: Option<String>,
    /// `<link rel="canonical">`, absolute.
    #[oai(skip_serializing_if_is_none)]
    pub canonical_url: Option<String>,
    /// The main document's HTTP status.
    #[oai(skip_serializing_if_is_none)]
    pub status_code: Option<u16>,
    /// The address after redirects.
    pub final_url: String,
    /// Every `og:*` property by its full name (`og:title`).
    pub og: BTreeMap<String, String>,
    /// Every `twitter:*` property by its full name (`twitter:card`).
    pub twitter: BTreeMap<String, String>,
}

impl ScrapeContent {
    fn from_stored(stored: &Value) -> Self {
        let text = |name: &str| stored.get(name).and_then(Value::as_str).map(str::to_string);
        let links = stored.get("links").and_then(|v| {
            let links: Vec<Link> = serde_json::from_value(v.clone()).ok()?;
            Some(
                links
                    .into_iter()
                    .map(|l| ScrapeLink {
                        url: l.url,
                        text: l.text,
                    })
                    .collect(),
            )
        });
        let metadata = stored.get("metadata").and_then(|v| {
            let m: Metadata = serde_json::from_value(v.clone()).ok()?;
            Some(ScrapeMetadata {
                title: m.title,
                description: m.description,
                language: m.language,
                canonical_url: m.canonical_url,
                status_code: m.status_code,
                final_url: m.final_url,
                og: m.og,
                twitter: m.twitter,
            })
        });
        Self {
            markdown: text("markdown"),
            html: text("html"),
            raw_html: text("raw_html"),
            text: text("text"),
            links,
            metadata,
            json: stored.get("json").cloned(),
        }
    }
}

impl ScrapeOut {
    pub(super) fn finished(&self) -> bool {
        matches!(self.status.as_str(), "succeeded" | "failed" | "cancelled")
    }
}

fn status(s: &Scrape) -> OneOf<WorkStatuses> {
    let run_at = s.job_run_at.unwrap_or(s.created_at);
    JobState::of_work(
        s.outcome.as_deref(),
        s.job_state.as_deref(),
        run_at,
        Utc::now(),
    )
    .into()
}

impl From<Scrape> for ScrapeOut {
    fn from(s: Scrape) -> Self {
        let timings = s.navigate_ms.map(|navigate| {
            json!({ "navigate_ms": navigate, "wait_ms": s.wait_ms, "extract_ms": s.extract_ms })
        });
        let stored: ScrapeOptions = serde_json::from_value(s.options.clone()).unwrap_or_default();
        let mut options = json!({
            "wait_for": s.wait_for,
            "timeout_ms": s.timeout_ms,
            "screenshot": s.screenshot,
            "formats": s.formats,
            "summarise": s.chain_summary,
            "notify": s.notify_all,
        });
        if let (Some(options), Value::Object(more)) = (options.as_object_mut(), stored.shown()) {
            options.extend(more);
        }
        Self {
            status: status(&s),
            screenshot_url: s
                .has_screenshot
                .then(|| format!("/v1/scrapes/{}/screenshot", s.id)),
            action_screenshot_urls: (1..=s.action_screenshots)
                .map(|n| format!("/v1/scrapes/{}/screenshots/{n}", s.id))
                .collect(),
            options,
            id: s.id,
            url: s.url,
            final_url: s.final_url,
            http_status: s.http_status,
            title: s.title,
            content: s.content.as_ref().map(ScrapeContent::from_stored),
            document_id: s.document_id,
            summary_id: s.summary_id,
            error_kind: s.error_kind.map(OneOf::from),
            error: s.error,
            job_id: s.job_id,
            attempts: s.attempts,
            timings,
            created_at: s.created_at,
            started_at: s.started_at,
            finished_at: s.finished_at,
        }
    }
}
