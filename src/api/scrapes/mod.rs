//! `/v1/scrapes`: render a page in headless Chromium as a `scrape` job and keep what it found
//! (main content as Markdown, HTML and text, the raw HTML, links, metadata, screenshots) as a
//! scrape and a document. `body` is the request, `out` the scrape as shown.

mod batch;
pub(crate) mod body;
mod out;

use std::time::{Duration, Instant};

use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use uuid::Uuid;

use super::ApiState;
use super::auth::BearerAuth;
use super::error::ApiError;
use super::idempotency::{FingerprintedJson, Idempotency, Idempotent};
use super::limits;
use crate::store;
use crate::work;
use body::CreateScrape;
use out::ScrapeOut;

pub use batch::ScrapeBatchesApi;

#[derive(Tags)]
enum ScrapeTags {
    /// Pages rendered in headless Chromium.
    Scrapes,
}

/// Scrapes.
pub struct ScrapesApi;

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
    /// directly (200) when it is ready in time. With `max_age`, your own fresh enough scrape of
    /// the same URL and options comes back at once (200, no charge).
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
        let request = body.value.into_request();
        let checked = work::scrapes::check(&state.work, request).await?;
        let mut tx = state.pool.begin().await?;
        if let Some(replay) = idempotency.claim(&mut tx).await? {
            return Ok(replay);
        }
        if let Some(id) = work::scrapes::fresh(&mut tx, &auth.0, &checked).await? {
            let out = read(&state, id).await?;
            let response = ScrapeStarted::Finished(Json(out), location(id));
            let response = idempotency.finish(&mut tx, response).await?;
            tx.commit().await?;
            return Ok(response);
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

    /// The screenshot of a scrape, as PNG (409 while the scrape runs, after it failed, or when
    /// none was asked for).
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
            Some(None) => Err(no_screenshot(&state, id.0, "a screenshot").await),
            None => Err(ApiError::not_found(format_args!("scrape {}", id.0))),
        }
    }

    /// The `n`th screenshot (from 1) a `screenshot` action of the scrape took, as PNG (409 when
    /// the scrape has no such screenshot).
    #[oai(
        path = "/scrapes/:id/screenshots/:n",
        method = "get",
        operation_id = "scrapes_action_screenshot_get"
    )]
    async fn get_action_screenshot(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
        /// Which screenshot, counting from 1 in the order the actions took them.
        #[oai(validator(minimum(value = "1"), maximum(value = "50")))]
        n: Path<i32>,
    ) -> Result<ActionScreenshot, ApiError> {
        let found =
            store::scrapes::action_screenshot(&state.pool, id.0, n.0, auth.owner_filter()).await?;
        match found {
            Some(Some(png)) => Ok(ActionScreenshot::Png(Binary(png))),
            Some(None) => Err(no_screenshot(&state, id.0, &format!("screenshot {}", n.0)).await),
            None => Err(ApiError::not_found(format_args!("scrape {}", id.0))),
        }
    }
}

/// A screenshot an action took.
#[derive(ApiResponse)]
enum ActionScreenshot {
    /// The PNG.
    #[oai(status = 200, content_type = "image/png")]
    Png(Binary<Vec<u8>>),
}

/// 409 for a scrape that exists but has no such screenshot, saying why: it has not finished,
/// it failed, or the screenshot was not asked for. (Not 404: the scrape is there, and a
/// screenshot may come with its state.)
async fn no_screenshot(state: &ApiState, id: Uuid, what: &str) -> ApiError {
    let why = match read(state, id).await {
        Ok(out) if !out.finished() => format!(
            "scrape {id} is {} and has no {what} yet",
            out.status.as_str()
        ),
        Ok(out) if out.status.as_str() != "succeeded" => {
            format!("scrape {id} is {} and kept no {what}", out.status.as_str())
        }
        Ok(_) => format!("scrape {id} has no {what}: none was asked for"),
        Err(e) => return e,
    };
    ApiError::conflict(why)
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
