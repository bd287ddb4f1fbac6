//! Requesting a scrape: the URL checked against the egress policy, the options bounded, the
//! scrape row and its `scrape` job written in the caller's transaction with one unit of the
//! `scrape` quota reserved. A scrape keeps a document, so the plan's `max_documents` applies.

use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::jobs::{self, Requested};
use super::{Caller, Work, WorkError, WorkResult};
use crate::domain::jobs::kinds;
use crate::egress::EgressError;
use crate::scrape::job::FORMATS;
use crate::scrape::options::{ScrapeOptions, cache_key};
use crate::store;
use crate::store::bounds::Held;
use crate::store::scrapes::NewScrape;

/// A scrape as a caller asks for it.
#[derive(Debug, Clone, Default)]
pub struct ScrapeRequest {
    /// An http or https URL.
    pub url: String,
    /// A CSS selector to wait for.
    pub wait_for: Option<String>,
    /// Longest the page may take, in milliseconds.
    pub timeout_ms: Option<u32>,
    /// Keep a screenshot.
    pub screenshot: bool,
    /// What to keep of the page (default text and markdown).
    pub formats: Option<Vec<String>>,
    /// Summarise the document when the scrape succeeds.
    pub summarise: bool,
    /// Tell every channel of the user when it finishes.
    pub notify: bool,
    /// Main content, tags, headers, mobile, wait, actions, full-page screenshot.
    pub options: ScrapeOptions,
    /// Reuse the caller's successful scrape of the same URL and options if it finished
    /// less than this many milliseconds ago.
    pub max_age_ms: Option<u64>,
}

/// The longest `max_age`: 30 days, in milliseconds.
pub const MAX_AGE_MS: u64 = 30 * 24 * 3600 * 1000;

/// A request whose values passed every check that needs no database; only [`check`] makes
/// one, so [`request`] never sees an unchecked URL.
#[derive(Debug, Clone)]
pub struct CheckedScrape(NewScrape, Option<u64>);

/// Check a request's values and its URL against the egress policy (resolving the host, so
/// run it before opening a transaction).
pub async fn check(work: &Work, request: ScrapeRequest) -> WorkResult<CheckedScrape> {
    let config = &work.config.scrape;
    let url = check_url(work, &request.url).await?;
    if let Some(selector) = &request.wait_for
        && (selector.trim().is_empty() || selector.chars().count() > 500 || selector.contains('\0'))
    {
        return Err(WorkError::invalid(
            "wait_for",
            "wait_for must be a CSS selector of 1 to 500 characters",
        ));
    }
    let max = config.max_timeout.as_millis() as u32;
    let timeout_ms = (request.timeout_ms).unwrap_or(config.default_timeout.as_millis() as u32);
    if !(1000..=max).contains(&timeout_ms) {
        return Err(WorkError::invalid(
            "timeout_ms",
            format!("timeout_ms must be between 1000 and {max}"),
        ));
    }
    let mut formats = (request.formats).unwrap_or_else(|| vec!["text".into(), "markdown".into()]);
    check_formats(&formats)?;
    // Asking for an extraction asks for the `json` format, and the other way round.
    if request.options.extraction.is_some() && !formats.iter().any(|f| f == "json") {
        formats.push("json".into());
    }
    if formats.iter().any(|f| f == "json") {
        if request.options.extraction.is_none() {
            return Err(WorkError::invalid(
                "json_options",
                "the json format needs json_options with a schema",
            ));
        }
        if work.config.summarise.providers.is_empty() {
            return Err(WorkError::invalid(
                "formats",
                "the json format needs a model provider and none is configured \
                 ([[summarise.providers]])",
            ));
        }
    }
    formats.sort();
    formats.dedup();
    request
        .options
        .check()
        .map_err(|e| WorkError::invalid(e.0, e.1))?;
    if request.max_age_ms.is_some_and(|ms| ms > MAX_AGE_MS) {
        return Err(WorkError::invalid(
            "max_age",
            format!("max_age must be at most {MAX_AGE_MS} ms (30 days)"),
        ));
    }
    // The `screenshot` format and the flag ask for the same thing.
    let screenshot = request.screenshot || formats.iter().any(|f| f == "screenshot");
    let key = cache_key(
        url.as_str(),
        request.wait_for.as_deref(),
        screenshot,
        &formats,
        &request.options,
    );
    let options =
        serde_json::to_value(&request.options).map_err(|e| WorkError::Internal(e.into()))?;
    Ok(CheckedScrape(
        NewScrape {
            id: Uuid::now_v7(),
            owner_id: Uuid::nil(),
            job_id: Uuid::nil(),
            url: url.to_string(),
            wait_for: request.wait_for,
            timeout_ms: timeout_ms as i32,
            screenshot,
            formats,
            chain_summary: request.summarise,
            notify_all: request.notify,
            options,
            cache_key: key,
            crawl_id: None,
            batch_id: None,
        },
        request.max_age_ms,
    ))
}

impl CheckedScrape {
    /// The scrape as a page of `crawl_id`.
    pub fn in_crawl(mut self, crawl_id: Uuid) -> Self {
        self.0.crawl_id = Some(crawl_id);
        self
    }

    /// The scrape as one URL of batch `batch_id`.
    pub fn in_batch(mut self, batch_id: Uuid) -> Self {
        self.0.batch_id = Some(batch_id);
        self
    }
}

/// With `max_age`: the caller's successful scrape of the same URL and options younger than
/// that, which answers the request without a browser and without a charge.
pub async fn fresh(
    conn: &mut PgConnection,
    caller: &Caller,
    checked: &CheckedScrape,
) -> WorkResult<Option<Uuid>> {
    let CheckedScrape(scrape, Some(max_age_ms)) = checked else {
        return Ok(None);
    };
    let age = chrono::Duration::milliseconds(i64::try_from(*max_age_ms).unwrap_or(i64::MAX));
    let since = chrono::Utc::now() - age;
    let found = store::scrapes::fresh(&mut *conn, caller.user_id, &scrape.cache_key, since).await?;
    Ok(found.map(|s| s.id))
}

/// A URL a user asks to be fetched (a scrape, a crawl's start, a map): http(s), at most 2,048
/// characters, not known to be refused by the egress policy. Resolves the host, so run it
/// before opening a transaction. The fetch checks again (names may resolve differently later,
/// and redirects are checked as they come); refusing what is already known to be refused
/// saves a quota unit.
pub async fn check_url(work: &Work, url: &str) -> WorkResult<url::Url> {
    if url.chars().count() > 2048 {
        return Err(WorkError::invalid(
            "url",
            "url must be at most 2,048 characters",
        ));
    }
    let url = (work.policy.check_url(url)).map_err(refused)?;
    if let Err(e @ EgressError::Blocked { .. }) = work.policy.resolve(&url).await {
        return Err(refused(e));
    }
    Ok(url)
}

/// Every format is one a scrape can keep.
pub fn check_formats(formats: &[String]) -> WorkResult<()> {
    match formats.iter().find(|f| !FORMATS.contains(&f.as_str())) {
        Some(bad) => Err(WorkError::invalid(
            "formats",
            format!("unknown format {bad:?}; formats: {}", FORMATS.join(", ")),
        )),
        None => Ok(()),
    }
}

fn refused(e: EgressError) -> WorkError {
    WorkError::invalid("url", e.to_string())
}

/// Write the scrape and its job for `caller` on `conn` (the caller's transaction).
pub async fn request(
    work: &Work,
    conn: &mut PgConnection,
    caller: &Caller,
    checked: CheckedScrape,
) -> WorkResult<Requested> {
    let CheckedScrape(mut scrape, _) = checked;
    work.check_bound(conn, caller, Held::Documents).await?;
    let mut job = jobs::new_job(
        work,
        caller,
        kinds::SCRAPE,
        json!({ "scrape_id": scrape.id }),
    );
    job.quota_action = Some("scrape".into());
    let started = jobs::start(work, conn, caller, &job).await?;
    scrape.owner_id = caller.user_id;
    scrape.job_id = started.enqueued.id();
    store::scrapes::insert(conn, &scrape).await?;
    Ok(Requested {
        id: scrape.id,
        started,
    })
}

/// Most URLs in one batch.
pub const MAX_BATCH: usize = 100;

/// Check every URL of a batch (each with the same options); a fault names the URL's index.
pub async fn check_batch(
    work: &Work,
    urls: &[String],
    template: &ScrapeRequest,
) -> WorkResult<Vec<CheckedScrape>> {
    if urls.is_empty() || urls.len() > MAX_BATCH {
        return Err(WorkError::invalid(
            "urls",
            format!("urls takes 1 to {MAX_BATCH} URLs"),
        ));
    }
    let mut checked = Vec::with_capacity(urls.len());
    for (i, url) in urls.iter().enumerate() {
        let request = ScrapeRequest {
            url: url.clone(),
            ..template.clone()
        };
        match check(work, request).await {
            Ok(c) => checked.push(c),
            Err(WorkError::Invalid { field, detail }) => {
                let field = field.unwrap_or("urls");
                return Err(WorkError::Invalid {
                    field: Some(if field == "url" { "urls" } else { field }),
                    detail: format!("urls[{i}] ({url}): {detail}"),
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(checked)
}

/// Write a batch and one scrape (and job) per URL for `caller` on `conn`, all or none; returns
/// the batch's id.
pub async fn request_batch(
    work: &Work,
    conn: &mut PgConnection,
    caller: &Caller,
    checked: Vec<CheckedScrape>,
) -> WorkResult<Uuid> {
    let id = Uuid::now_v7();
    store::scrapes::insert_batch(conn, id, caller.user_id, checked.len() as i32).await?;
    for scrape in checked {
        request(work, conn, caller, scrape.in_batch(id)).await?;
    }
    Ok(id)
}
