//! `/v1/crawls` and `/v1/map`: a site's pages followed from a start URL, each page a scrape
//! (its own quota unit), politely and resumably; and a site's URLs without rendering them.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use uuid::Uuid;

use super::ApiState;
use super::auth::BearerAuth;
use super::error::ApiError;
use super::idempotency::{FingerprintedJson, Idempotency, Idempotent};
use crate::api::scrapes::body::ScrapeOptionsBody;
use crate::crawl::map::{MapRequest, map};
use crate::crawl::options::{self, CrawlOptions};
use crate::store;
use crate::store::crawls::{Crawl, CrawlPage};
use crate::work::{self, crawls::CrawlRequest};

#[derive(Tags)]
enum CrawlTags {
    /// Sites followed page by page, and mapped.
    Crawls,
}

/// Crawls and maps.
pub struct CrawlsApi;

/// A site to crawl.
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct CreateCrawl {
    /// The start page: http or https, at most 2,048 characters, checked like a scrape's URL.
    url: String,
    /// Pages visited at most, succeeded or failed (1 to 10,000; default 100).
    #[oai(validator(minimum(value = "1"), maximum(value = "10000")))]
    limit: Option<u32>,
    /// Links followed this far from the start page; sitemap pages count as one (0 to 50;
    /// default 10).
    #[oai(validator(maximum(value = "50")))]
    max_depth: Option<u32>,
    /// Regular expressions: only paths (with query) matching one are visited.
    #[oai(validator(max_items = 50))]
    include_paths: Option<Vec<String>>,
    /// Regular expressions: paths matching one are not visited.
    #[oai(validator(max_items = 50))]
    exclude_paths: Option<Vec<String>>,
    /// Visit subdomains of the start host too (default false: the start host only).
    allow_subdomains: Option<bool>,
    /// Do not read `sitemap.xml`: follow links only (default false).
    ignore_sitemap: Option<bool>,
    /// Pages loading at once (1 to 10; default 1: one page at a time per host).
    #[oai(validator(minimum(value = "1"), maximum(value = "10")))]
    max_concurrency: Option<u32>,
    /// Milliseconds between one page's end and the next page's start (0 to 60,000; default
    /// 250). robots.txt's `Crawl-delay` wins when longer.
    #[oai(validator(maximum(value = "60000")))]
    delay_ms: Option<u64>,
    /// How each page is scraped.
    scrape_options: Option<ScrapeOptionsBody>,
    /// When the crawl finishes, tell every channel of the user, not only those subscribed to
    /// `crawls.finished`.
    notify: Option<bool>,
}

impl CreateCrawl {
    fn into_request(self) -> CrawlRequest {
        let mut page = self.scrape_options.unwrap_or_default().into_settings();
        if page.screenshot && !page.formats.iter().any(|f| f == "screenshot") {
            page.formats.push("screenshot".into());
        }
        let options = CrawlOptions {
            limit: self.limit.unwrap_or(options::DEFAULT_LIMIT),
            max_depth: self.max_depth.unwrap_or(options::DEFAULT_DEPTH),
            include_paths: self.include_paths.unwrap_or_default(),
            exclude_paths: self.exclude_paths.unwrap_or_default(),
            allow_subdomains: self.allow_subdomains.unwrap_or(false),
            ignore_sitemap: self.ignore_sitemap.unwrap_or(false),
            max_concurrency: self.max_concurrency.unwrap_or(1),
            delay_ms: self.delay_ms.unwrap_or(options::DEFAULT_DELAY_MS),
            formats: page.formats,
            wait_for: page.wait_for,
            timeout_ms: page.timeout_ms,
            scrape: page.options,
        };
        CrawlRequest {
            url: self.url,
            options,
            notify: self.notify.unwrap_or(false),
        }
    }
}

/// A crawl: its status, counts, and a page of its pages.
#[derive(Object)]
struct CrawlOut {
    /// Id.
    id: Uuid,
    /// `running`, `succeeded`, `failed` or `cancelled`.
    status: String,
    /// The start page.
    url: String,
    /// Pages scraped successfully.
    pages_done: i32,
    /// Pages whose scrape failed.
    pages_failed: i32,
    /// Why the crawl failed (robots.txt unreadable, the quota ran out, …).
    #[oai(skip_serializing_if_is_none)]
    error: Option<String>,
    /// What was asked (header values left out).
    options: serde_json::Value,
    /// The pages, in discovery order, after `cursor` (on `GET /v1/crawls/{id}`).
    pages: Vec<CrawlPageOut>,
    /// Pass as `cursor` for the next pages; absent on the last.
    #[oai(skip_serializing_if_is_none)]
    next_cursor: Option<i64>,
    /// Created.
    created_at: DateTime<Utc>,
    /// Finished.
    #[oai(skip_serializing_if_is_none)]
    finished_at: Option<DateTime<Utc>>,
}

/// One page of a crawl.
#[derive(Object)]
struct CrawlPageOut {
    /// The page's URL (normalised: no fragment).
    url: String,
    /// Links from the start page (sitemap pages: 1).
    depth: i32,
    /// `queued`, `scraping`, `done`, `failed` or `skipped` (robots.txt, or the crawl ended).
    state: String,
    /// The page's scrape (`GET /v1/scrapes/{id}`).
    #[oai(skip_serializing_if_is_none)]
    scrape_id: Option<Uuid>,
}

fn crawl_out(c: Crawl, pages: Vec<CrawlPage>, next_cursor: Option<i64>) -> CrawlOut {
    // Each page's options as a scrape shows them: no header values, no typed text.
    let mut options = c.options.clone();
    if let (Ok(stored), Some(scrape)) = (
        serde_json::from_value::<CrawlOptions>(c.options.clone()),
        options.get_mut("scrape"),
    ) {
        *scrape = stored.scrape.shown();
    }
    CrawlOut {
        id: c.id,
        status: c.status,
        url: c.url,
        pages_done: c.pages_done,
        pages_failed: c.pages_failed,
        error: c.error,
        options,
        pages: pages
            .into_iter()
            .map(|p| CrawlPageOut {
                url: p.url,
                depth: p.depth,
                state: p.state,
                scrape_id: p.scrape_id,
            })
            .collect(),
        next_cursor,
        created_at: c.created_at,
        finished_at: c.finished_at,
    }
}

#[derive(ApiResponse)]
enum CrawlStarted {
    /// The crawl runs; follow `Location` for its progress.
    #[oai(status = 202)]
    Accepted(Json<CrawlOut>, #[oai(header = "Location")] String),
}

/// A page of crawls.
#[derive(Object)]
struct CrawlList {
    /// Newest first (without their pages).
    items: Vec<CrawlOut>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    next_cursor: Option<Uuid>,
}

/// A site to map.
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct CreateMap {
    /// The start page, checked like a scrape's URL.
    url: String,
    /// URLs returned at most (1 to 5,000; default 1,000).
    #[oai(validator(minimum(value = "1"), maximum(value = "5000")))]
    limit: Option<u32>,
    /// Include subdomains of the start host (default false).
    include_subdomains: Option<bool>,
    /// Only URLs containing this text, case-insensitive (at most 200 characters).
    #[oai(validator(max_length = 200))]
    search: Option<String>,
}

/// A site's URLs.
#[derive(Object)]
struct MapOut {
    /// The start page, then the sitemaps' pages, then the start page's links; each once, on
    /// the start host, allowed by robots.txt.
    links: Vec<MapLink>,
}

/// One URL of a map.
#[derive(Object)]
struct MapLink {
    /// The URL (no fragment).
    url: String,
    /// `sitemap` or `page` (the start page or one of its links).
    source: String,
}

fn location(id: Uuid) -> String {
    format!("/v1/crawls/{id}")
}

#[OpenApi(prefix_path = "/v1", tag = "CrawlTags::Crawls")]
impl CrawlsApi {
    /// Crawl a site: from `url`, follow links (and `sitemap.xml`) on the same host, honouring
    /// robots.txt, one page at a time with a delay unless told otherwise. Each page is a
    /// scrape charging one unit of the `scrape` quota; the crawl stops (`failed`) when the
    /// quota runs out. Answers 202 with `Location`; `crawls.finished` is published at the end.
    #[oai(path = "/crawls", method = "post", operation_id = "crawls_create")]
    async fn create_crawl(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        /// Makes retries safe: the same key with the same body returns the first answer again.
        #[oai(
            name = "Idempotency-Key",
            validator(pattern = r"^[!-~]([ -~]{0,253}[!-~])?$")
        )]
        _idempotency_key: Header<Option<String>>,
        body: FingerprintedJson<CreateCrawl>,
        req: &Request,
    ) -> Result<Idempotent<CrawlStarted>, ApiError> {
        let idempotency = Idempotency::new(auth.user_id(), req, body.fingerprint)?;
        let checked = work::crawls::check(&state.work, body.value.into_request()).await?;
        let mut tx = state.pool.begin().await?;
        if let Some(replay) = idempotency.claim(&mut tx).await? {
            return Ok(replay);
        }
        let id = work::crawls::start(&state.work, &mut tx, &auth.0, checked).await?;
        let crawl = store::crawls::find(&mut *tx, id, None)
            .await?
            .ok_or_else(|| ApiError::not_found(format_args!("crawl {id}")))?;
        let response =
            CrawlStarted::Accepted(Json(crawl_out(crawl, Vec::new(), None)), location(id));
        let response = idempotency.finish(&mut tx, response).await?;
        tx.commit().await?;
        Ok(response)
    }

    /// List crawls, newest first: a user's own, or everyone's for admins.
    #[oai(path = "/crawls", method = "get", operation_id = "crawls_list")]
    async fn list_crawls(
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
    ) -> Result<Json<CrawlList>, ApiError> {
        let mut rows =
            store::crawls::list(&state.pool, auth.owner_filter(), cursor.0, limit.0 + 1).await?;
        let next_cursor = super::next_cursor(&mut rows, limit.0, |c| c.id);
        Ok(Json(CrawlList {
            items: rows
                .into_iter()
                .map(|c| crawl_out(c, Vec::new(), None))
                .collect(),
            next_cursor,
        }))
    }

    /// A crawl: status, `pages_done`, `pages_failed`, and its pages in discovery order with
    /// their scrape ids (a page of them; follow `next_cursor`).
    #[oai(path = "/crawls/:id", method = "get", operation_id = "crawls_get")]
    async fn get_crawl(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
        /// The previous answer's `next_cursor`.
        #[oai(validator(minimum(value = "0")))]
        cursor: Query<Option<i64>>,
        /// Pages per answer, 1 to 1,000.
        #[oai(
            default = "default_pages",
            validator(minimum(value = "1"), maximum(value = "1000"))
        )]
        limit: Query<i64>,
    ) -> Result<Json<CrawlOut>, ApiError> {
        let crawl = store::crawls::find(&state.pool, id.0, auth.owner_filter())
            .await?
            .ok_or_else(|| ApiError::not_found(format_args!("crawl {}", id.0)))?;
        let all = ["queued", "scraping", "done", "failed", "skipped"];
        let mut pages = store::crawls::pages(
            &state.pool,
            crawl.id,
            cursor.0.unwrap_or(0),
            limit.0 + 1,
            &all,
        )
        .await?;
        let next = super::next_cursor(&mut pages, limit.0, |p| p.seq);
        Ok(Json(crawl_out(crawl, pages, next)))
    }

    /// Cancel a running crawl: no page starts any more and the loading ones are cancelled
    /// (409 when it already ended).
    #[oai(
        path = "/crawls/:id/cancel",
        method = "post",
        operation_id = "crawls_cancel"
    )]
    async fn cancel_crawl(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
    ) -> Result<Json<CrawlOut>, ApiError> {
        let mut tx = state.pool.begin().await?;
        work::crawls::cancel(&state.work, &mut tx, &state.notifier, &auth.0, id.0).await?;
        tx.commit().await?;
        let crawl = store::crawls::find(&state.pool, id.0, None)
            .await?
            .ok_or_else(|| ApiError::not_found(format_args!("crawl {}", id.0)))?;
        Ok(Json(crawl_out(crawl, Vec::new(), None)))
    }

    /// Map a site: its URLs from its sitemaps and its start page's links, read without a
    /// browser (no quota is charged), on the start host, allowed by robots.txt.
    #[oai(path = "/map", method = "post", operation_id = "map_create")]
    async fn create_map(
        &self,
        _auth: BearerAuth,
        state: Data<&ApiState>,
        body: Json<CreateMap>,
    ) -> Result<Json<MapOut>, ApiError> {
        let body = body.0;
        let url = work::scrapes::check_url(&state.work, &body.url).await?;
        let request = MapRequest {
            url,
            limit: body.limit.unwrap_or(1000) as usize,
            include_subdomains: body.include_subdomains.unwrap_or(false),
            search: body.search.filter(|s| !s.trim().is_empty()),
        };
        let links = map(state.scraper.fetcher(), &request).await;
        Ok(Json(MapOut {
            links: links
                .into_iter()
                .map(|m| MapLink {
                    url: m.url,
                    source: m.source.to_string(),
                })
                .collect(),
        }))
    }
}

fn default_limit() -> i64 {
    50
}

fn default_pages() -> i64 {
    100
}
