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
}

/// A request whose values passed every check that needs no database; only [`check`] makes
/// one, so [`request`] never sees an unchecked URL.
#[derive(Debug, Clone)]
pub struct CheckedScrape(NewScrape);

/// Check a request's values and its URL against the egress policy (resolving the host, so
/// run it before opening a transaction).
pub async fn check(work: &Work, request: ScrapeRequest) -> WorkResult<CheckedScrape> {
    let config = &work.config.scrape;
    if request.url.chars().count() > 2048 {
        return Err(WorkError::invalid(
            "url",
            "url must be at most 2,048 characters",
        ));
    }
    // The job checks again (names may resolve differently later, and redirects are checked by
    // the egress proxy); refusing what is already known to be refused saves a quota unit.
    let url = (work.policy.check_url(&request.url)).map_err(refused)?;
    if let Err(e @ EgressError::Blocked { .. }) = work.policy.resolve(&url).await {
        return Err(refused(e));
    }
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
    if let Some(bad) = formats.iter().find(|f| !FORMATS.contains(&f.as_str())) {
        return Err(WorkError::invalid(
            "formats",
            format!("unknown format {bad:?}; formats: {}", FORMATS.join(", ")),
        ));
    }
    formats.sort();
    formats.dedup();
    Ok(CheckedScrape(NewScrape {
        id: Uuid::now_v7(),
        owner_id: Uuid::nil(),
        job_id: Uuid::nil(),
        url: url.to_string(),
        wait_for: request.wait_for,
        timeout_ms: timeout_ms as i32,
        screenshot: request.screenshot,
        formats,
        chain_summary: request.summarise,
        notify_all: request.notify,
    }))
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
    let CheckedScrape(mut scrape) = checked;
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
