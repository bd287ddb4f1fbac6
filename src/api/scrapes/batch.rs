//! `/v1/scrapes/batch`: up to 100 URLs scraped with shared options, one scrape (and one
//! `scrape` job, one quota unit) per URL, requested together or not at all.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::ScrapeTags;
use super::body::ScrapeOptionsBody;
use super::out::ScrapeOut;
use crate::api::ApiState;
use crate::api::auth::BearerAuth;
use crate::api::error::ApiError;
use crate::api::idempotency::{FingerprintedJson, Idempotency, Idempotent};
use crate::api::limits;
use crate::store;
use crate::work::{self, scrapes::ScrapeRequest};

/// Batches of scrapes.
pub struct ScrapeBatchesApi;

/// URLs to scrape with the same options.
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct CreateScrapeBatch {
    /// 1 to 100 http or https URLs, each checked like a scrape's `url`.
    #[oai(validator(min_items = 1, max_items = 100))]
    urls: Vec<String>,
    /// How each page is scraped (the fields of `POST /v1/scrapes` besides `url`).
    scrape_options: Option<ScrapeOptionsBody>,
    /// When each scrape finishes, tell every channel of the user.
    notify: Option<bool>,
}

/// A batch: progress and its scrapes.
#[derive(Object)]
struct ScrapeBatchOut {
    /// Id.
    id: Uuid,
    /// `running` while any scrape is unfinished, then `finished`.
    status: String,
    /// URLs in the batch.
    total: i32,
    /// Scrapes that succeeded.
    succeeded: i32,
    /// Scrapes that failed or were cancelled.
    failed: i32,
    /// The scrapes, in the order of the URLs.
    scrapes: Vec<ScrapeOut>,
    /// Created.
    created_at: DateTime<Utc>,
}

#[derive(ApiResponse)]
enum BatchStarted {
    /// The scrapes are queued; follow `Location` for the batch's progress.
    #[oai(status = 202)]
    Accepted(Json<ScrapeBatchOut>, #[oai(header = "Location")] String),
}

fn batch_out(id: Uuid, created_at: DateTime<Utc>, scrapes: Vec<ScrapeOut>) -> ScrapeBatchOut {
    let count = |status: &[&str]| {
        (scrapes.iter())
            .filter(|s| status.contains(&s.status.as_str()))
            .count() as i32
    };
    let succeeded = count(&["succeeded"]);
    let failed = count(&["failed", "cancelled"]);
    let total = scrapes.len() as i32;
    ScrapeBatchOut {
        id,
        status: if succeeded + failed == total {
            "finished"
        } else {
            "running"
        }
        .into(),
        total,
        succeeded,
        failed,
        scrapes,
        created_at,
    }
}

async fn read(
    conn: &mut sqlx::PgConnection,
    id: Uuid,
    owner: Option<Uuid>,
) -> Result<ScrapeBatchOut, ApiError> {
    let (created_at, scrapes) = store::scrapes::batch(conn, id, owner)
        .await?
        .ok_or_else(|| ApiError::not_found(format_args!("batch {id}")))?;
    let scrapes = scrapes.into_iter().map(ScrapeOut::from).collect();
    Ok(batch_out(id, created_at, scrapes))
}

#[OpenApi(prefix_path = "/v1", tag = "ScrapeTags::Scrapes")]
impl ScrapeBatchesApi {
    /// Scrape up to 100 URLs with the same options: one scrape per URL, each a `scrape` job
    /// charging one unit of the `scrape` quota. All are requested or none (a URL that cannot
    /// be scraped is a 422 naming its index; too little quota refuses the batch). Answers 202
    /// with `Location`.
    #[oai(
        path = "/scrapes/batch",
        method = "post",
        operation_id = "scrape_batches_create"
    )]
    async fn create_batch(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        /// Makes retries safe: the same key with the same body returns the first answer again.
        #[oai(
            name = "Idempotency-Key",
            validator(pattern = r"^[!-~]([ -~]{0,253}[!-~])?$")
        )]
        _idempotency_key: Header<Option<String>>,
        body: FingerprintedJson<CreateScrapeBatch>,
        req: &Request,
    ) -> Result<Idempotent<BatchStarted>, ApiError> {
        let idempotency = Idempotency::new(auth.user_id(), req, body.fingerprint)?;
        let body = body.value;
        let page = body.scrape_options.unwrap_or_default().into_settings();
        let template = ScrapeRequest {
            url: String::new(),
            wait_for: page.wait_for,
            timeout_ms: page.timeout_ms,
            screenshot: page.screenshot,
            formats: Some(page.formats),
            summarise: false,
            notify: body.notify.unwrap_or(false),
            options: page.options,
            max_age_ms: None,
        };
        let checked = work::scrapes::check_batch(&state.work, &body.urls, &template).await?;
        let mut tx = state.pool.begin().await?;
        if let Some(replay) = idempotency.claim(&mut tx).await? {
            return Ok(replay);
        }
        let requested = work::scrapes::request_batch(&state.work, &mut tx, &auth.0, checked).await;
        let id = limits::note(req, requested, |_| None)?;
        let out = read(&mut tx, id, None).await?;
        let response = BatchStarted::Accepted(Json(out), location(id));
        let response = idempotency.finish(&mut tx, response).await?;
        tx.commit().await?;
        Ok(response)
    }

    /// A batch: `status`, counts, and its scrapes with their results.
    #[oai(
        path = "/scrapes/batch/:id",
        method = "get",
        operation_id = "scrape_batches_get"
    )]
    async fn get_batch(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
    ) -> Result<Json<ScrapeBatchOut>, ApiError> {
        let mut conn = state.pool.acquire().await?;
        Ok(Json(read(&mut conn, id.0, auth.owner_filter()).await?))
    }
}

fn location(id: Uuid) -> String {
    format!("/v1/scrapes/batch/{id}")
}
