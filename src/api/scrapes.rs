//! `/v1/scrapes`: render a page in headless Chromium as a `scrape` job and keep what it found
//! (title, text, HTML, Markdown, a screenshot) as a scrape and a document.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use serde_json::{Value, json};
use uuid::Uuid;

use super::ApiState;
use super::auth::BearerAuth;
use super::error::ApiError;
use super::idempotency::{FingerprintedJson, Idempotency, Idempotent};
use super::limits;
use crate::api::closed::{OneOf, ScrapeErrorKinds, ScrapeFormats, WorkStatuses, strings};
use crate::domain::jobs::JobState;
use crate::store;
use crate::store::scrapes::Scrape;
use crate::work::{self, scrapes::ScrapeRequest};

#[derive(Tags)]
enum ScrapeTags {
    /// Pages rendered in headless Chromium.
    Scrapes,
}

/// Scrapes.
pub struct ScrapesApi;

/// A page to scrape.
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct CreateScrape {
    /// An http or https URL, at most 2,048 characters. Private, loopback, link-local and
    /// metadata addresses are refused unless the operator allows them (`egress.allow`).
    url: String,
    /// Wait until an element matching this CSS selector exists (at most 500 characters).
    wait_for: Option<String>,
    /// Longest the page may take to load, selector included, in milliseconds (1,000 up to
    /// `scrape.max_timeout`; default `scrape.default_timeout`).
    timeout_ms: Option<u32>,
    /// Keep a PNG screenshot of the window (`GET /v1/scrapes/{id}/screenshot`).
    screenshot: Option<bool>,
    /// What to keep of the page: any of `text`, `html`, `markdown` (default text and markdown).
    formats: Option<Vec<OneOf<ScrapeFormats>>>,
    /// When the scrape succeeds, summarise its document (a `summarise` job charging one unit
    /// of the `summarise` quota; skipped, saying why, when the quota is spent).
    summarise: Option<bool>,
    /// When the scrape finishes, tell every channel of the user, not only those subscribed to
    /// `scrapes.finished`.
    notify: Option<bool>,
}

/// A scrape: what was asked, its status, and what was found.
#[derive(Object)]
struct ScrapeOut {
    /// Id.
    id: Uuid,
    /// `pending`, `scheduled`, `running`, `retrying` (an attempt failed, another follows),
    /// `succeeded`, `failed` or `cancelled`.
    status: OneOf<WorkStatuses>,
    /// The requested URL.
    url: String,
    /// The URL after redirects.
    #[oai(skip_serializing_if_is_none)]
    final_url: Option<String>,
    /// The page's HTTP status, when the browser can tell it.
    #[oai(skip_serializing_if_is_none)]
    http_status: Option<i32>,
    /// The page title.
    #[oai(skip_serializing_if_is_none)]
    title: Option<String>,
    /// The kept formats: `{"text": …, "markdown": …}`.
    #[oai(skip_serializing_if_is_none)]
    content: Option<Value>,
    /// The screenshot's URL, when one was kept.
    #[oai(skip_serializing_if_is_none)]
    screenshot_url: Option<String>,
    /// The document the page became (summaries start from it).
    #[oai(skip_serializing_if_is_none)]
    document_id: Option<Uuid>,
    /// The summary chained after the scrape (`summarise: true`).
    #[oai(skip_serializing_if_is_none)]
    summary_id: Option<Uuid>,
    /// Why the last attempt failed: `timeout`, `selector_not_found`, `navigation_failed`,
    /// `blocked_by_policy`, `driver_unavailable`, `invalid_url`. Only the transient ones
    /// (`timeout`, `driver_unavailable`, network failures) are retried.
    #[oai(skip_serializing_if_is_none)]
    error_kind: Option<OneOf<ScrapeErrorKinds>>,
    /// The error, for a person.
    #[oai(skip_serializing_if_is_none)]
    error: Option<String>,
    /// The job doing the work (`/v1/jobs/{id}` while it is kept).
    job_id: Uuid,
    /// Attempts made.
    attempts: i32,
    /// Timings of the last attempt, in milliseconds.
    #[oai(skip_serializing_if_is_none)]
    timings: Option<Value>,
    /// What was asked: selector, timeout, screenshot, formats.
    options: Value,
    /// Created.
    created_at: DateTime<Utc>,
    /// The first attempt started.
    #[oai(skip_serializing_if_is_none)]
    started_at: Option<DateTime<Utc>>,
    /// Finished.
    #[oai(skip_serializing_if_is_none)]
    finished_at: Option<DateTime<Utc>>,
}

impl ScrapeOut {
    fn finished(&self) -> bool {
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
        Self {
            status: status(&s),
            screenshot_url: s
                .has_screenshot
                .then(|| format!("/v1/scrapes/{}/screenshot", s.id)),
            options: json!({
                "wait_for": s.wait_for,
                "timeout_ms": s.timeout_ms,
                "screenshot": s.screenshot,
                "formats": s.formats,
                "summarise": s.chain_summary,
                "notify": s.notify_all,
            }),
            id: s.id,
            url: s.url,
            final_url: s.final_url,
            http_status: s.http_status,
            title: s.title,
            content: s.content,
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

#[derive(ApiResponse)]
enum ScrapeStarted {
    /// The scrape is queued; follow `Location` for its status.
    #[oai(status = 202)]
    Accepted(Json<ScrapeOut>, #[oai(header = "Location")] String),
    /// With `wait`: the scrape finished in time (succeeded or failed).
    #[oai(status = 200)]
    Finished(Json<ScrapeOut>, #[oai(header = "Location")] String),
}

/// A page of scrapes.
#[derive(Object)]
struct ScrapePage {
    /// Newest first.
    items: Vec<ScrapeOut>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    next_cursor: Option<Uuid>,
}

#[derive(ApiResponse)]
enum Screenshot {
    /// The PNG.
    #[oai(status = 200, content_type = "image/png")]
    Png(Binary<Vec<u8>>),
}

/// `wait` as the spec's pattern allows it (`10s`, `500ms`), cut to at most 60 s and below the
/// request timeout: a longer wait waits that long and then answers 202 as without one.
fn wait_for(wait: Option<&str>, state: &ApiState) -> Option<Duration> {
    let cap = Duration::from_secs(60).min(
        state
            .config
            .http
            .request_timeout
            .saturating_sub(Duration::from_secs(1)),
    );
    let wait = wait?;
    let (number, millis) = match wait.strip_suffix("ms") {
        Some(number) => (number, true),
        None => (wait.strip_suffix('s').unwrap_or(wait), false),
    };
    let n = number.parse::<u64>().ok()?;
    let wanted = match millis {
        true => Duration::from_millis(n),
        false => Duration::from_secs(n),
    };
    Some(wanted.min(cap))
}

fn location(id: Uuid) -> String {
    format!("/v1/scrapes/{id}")
}

#[OpenApi(prefix_path = "/v1", tag = "ScrapeTags::Scrapes")]
impl ScrapesApi {
    /// Scrape a page: it is rendered in headless Chromium by a `scrape` job, which charges one
    /// unit of the `scrape` quota (given back if the scrape fails for good). Answers 202 with
    /// `Location`; with `wait` (e.g. `?wait=10s`, at most 60 s) the finished scrape comes back
    /// directly (200) when it is ready in time.
    #[oai(path = "/scrapes", method = "post", operation_id = "scrapes_create")]
    async fn create_scrape(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        /// Wait this long for the result, e.g. `10s` or `500ms`; at most 60 s (and below the
        /// request timeout): a longer wait is cut to that.
        #[oai(validator(pattern = "^[0-9]{1,6}(ms|s)$"))]
        wait: Query<Option<String>>,
        /// Makes retries safe: the same key with the same body returns the first answer again
        /// (with `Idempotent-Replayed: true`); the same key with another body is refused with
        /// 409. 1 to 255 printable ASCII characters, per user, honoured for 24 hours.
        // Read by `Idempotency::new` from the raw headers; declared here for the spec.
        #[oai(
            name = "Idempotency-Key",
            validator(pattern = r"^[!-~]([ -~]{0,253}[!-~])?$")
        )]
        _idempotency_key: Header<Option<String>>,
        body: FingerprintedJson<CreateScrape>,
        req: &Request,
    ) -> Result<Idempotent<ScrapeStarted>, ApiError> {
        let wait = wait_for(wait.0.as_deref(), &state);
        let idempotency = Idempotency::new(auth.user_id(), req, body.fingerprint)?;
        let body = body.value;
        let request = ScrapeRequest {
            url: body.url,
            wait_for: body.wait_for,
            timeout_ms: body.timeout_ms,
            screenshot: body.screenshot.unwrap_or(false),
            formats: body.formats.map(strings),
            summarise: body.summarise.unwrap_or(false),
            notify: body.notify.unwrap_or(false),
        };
        let checked = work::scrapes::check(&state.work, request).await?;
        let mut tx = state.pool.begin().await?;
        if let Some(replay) = idempotency.claim(&mut tx).await? {
            return Ok(replay);
        }
        let requested = work::scrapes::request(&state.work, &mut tx, &auth.0, checked).await;
        let requested = limits::note(req, requested, |r| r.started.charged.as_ref())?;
        let id = requested.id;
        let stored = store::scrapes::find(&mut *tx, id, None)
            .await?
            .ok_or_else(|| ApiError::not_found(format_args!("scrape {id}")))?;
        let response = ScrapeStarted::Accepted(Json(stored.into()), location(id));
        let response = idempotency.finish(&mut tx, response).await?;
        tx.commit().await?;

        let Some(wait) = wait else {
            return Ok(response);
        };
        let deadline = Instant::now() + wait;
        loop {
            let out = read(&state, id).await?;
            if out.finished() {
                return Ok(Idempotent::Fresh(ScrapeStarted::Finished(
                    Json(out),
                    location(id),
                )));
            }
            if Instant::now() >= deadline {
                return Ok(Idempotent::Fresh(ScrapeStarted::Accepted(
                    Json(out),
                    location(id),
                )));
            }
            tokio::time::sleep(Duration::from_millis(50).min(deadline - Instant::now())).await;
        }
    }

    /// List scrapes, newest first: a user's own, or everyone's for admins.
    #[oai(path = "/scrapes", method = "get", operation_id = "scrapes_list")]
    async fn list_scrapes(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        /// Cursor from the previous page's `next_cursor`.
        cursor: Query<Option<Uuid>>,
        /// Page size, 1 to 200.
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<i64>,
    ) -> Result<Json<ScrapePage>, ApiError> {
        let mut rows =
            store::scrapes::list(&state.pool, auth.owner_filter(), cursor.0, limit.0 + 1).await?;
        let next_cursor = super::next_cursor(&mut rows, limit.0, |s| s.id);
        Ok(Json(ScrapePage {
            items: rows.into_iter().map(ScrapeOut::from).collect(),
            next_cursor,
        }))
    }

    /// A scrape: status, final URL, HTTP status, title, content, timings, error.
    #[oai(path = "/scrapes/:id", method = "get", operation_id = "scrapes_get")]
    async fn get_scrape(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
    ) -> Result<Json<ScrapeOut>, ApiError> {
        let scrape = store::scrapes::find(&state.pool, id.0, auth.owner_filter())
            .await?
            .ok_or_else(|| ApiError::not_found(format_args!("scrape {}", id.0)))?;
        Ok(Json(scrape.into()))
    }

    /// The screenshot of a scrape, as PNG (404 when none was kept).
    #[oai(
        path = "/scrapes/:id/screenshot",
        method = "get",
        operation_id = "scrapes_screenshot_get"
    )]
    async fn get_screenshot(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
    ) -> Result<Screenshot, ApiError> {
        match store::scrapes::screenshot(&state.pool, id.0, auth.owner_filter()).await? {
            Some(Some(png)) => Ok(Screenshot::Png(Binary(png))),
            Some(None) => Err(ApiError::not_found(format_args!(
                "a screenshot of scrape {}",
                id.0
            ))),
            None => Err(ApiError::not_found(format_args!("scrape {}", id.0))),
        }
    }
}

async fn read(state: &ApiState, id: Uuid) -> Result<ScrapeOut, ApiError> {
    let scrape = store::scrapes::find(&state.pool, id, None)
        .await?
        .ok_or_else(|| ApiError::not_found(format_args!("scrape {id}")))?;
    Ok(scrape.into())
}

fn default_limit() -> i64 {
    50
}
