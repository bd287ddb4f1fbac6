//! Crawls: starting one (the start URL checked, the crawl and its first step written in the
//! caller's transaction), what a finished page adds to the frontier, and cancelling. Each page
//! is a scrape requested through [`super::scrapes`] as the crawl's owner, so every page obeys
//! the same egress policy, plan bounds and quota as `POST /v1/scrapes`.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use sqlx::PgConnection;
use url::Url;
use uuid::Uuid;

use super::scrapes::ScrapeRequest;
use super::{Caller, Work, WorkError, WorkResult};
use crate::crawl::options::CrawlOptions;
use crate::crawl::robots::Robots;
use crate::crawl::scope::{Scope, normalise};
use crate::domain::jobs::kinds;
use crate::domain::topics::Topic;
use crate::notify::job::Notifier;
use crate::store;
use crate::store::crawls::{Crawl, NewCrawl};
use crate::store::jobs::NewJob;
use crate::work::events::publish_to;

/// A crawl as a caller asks for it.
#[derive(Debug, Clone)]
pub struct CrawlRequest {
    /// Where it starts.
    pub url: String,
    /// Its bounds and each page's scrape options.
    pub options: CrawlOptions,
    /// Tell every channel of the user when it finishes.
    pub notify: bool,
}

/// A request whose values passed every check that needs no database.
#[derive(Debug, Clone)]
pub struct CheckedCrawl(NewCrawl);

/// Check the start URL against the egress policy and the options' bounds.
pub async fn check(work: &Work, request: CrawlRequest) -> WorkResult<CheckedCrawl> {
    request
        .options
        .check()
        .map_err(|e| WorkError::invalid(e.0, e.1))?;
    // The start URL and each page's scrape options, checked as a scrape of the start page
    // checks them: a crawl whose every page would be refused is refused itself.
    super::scrapes::check(work, page_request(&request.options, &request.url)).await?;
    let url = (work.policy.check_url(&request.url))
        .map_err(|e| WorkError::invalid("url", e.to_string()))?;
    let options =
        serde_json::to_value(&request.options).map_err(|e| WorkError::Internal(e.into()))?;
    Ok(CheckedCrawl(NewCrawl {
        id: Uuid::now_v7(),
        owner_id: Uuid::nil(),
        url: normalise(&url).to_string(),
        options,
        notify_all: request.notify,
    }))
}

/// The scrape a crawl asks for one of its pages.
pub fn page_request(options: &CrawlOptions, url: &str) -> ScrapeRequest {
    ScrapeRequest {
        url: url.to_string(),
        wait_for: options.wait_for.clone(),
        timeout_ms: options.timeout_ms,
        screenshot: options.formats.iter().any(|f| f == "screenshot"),
        formats: Some(options.formats.clone()),
        options: options.scrape.clone(),
        ..Default::default()
    }
}

/// Write the crawl, its start page and its first step for `caller` on `conn`.
pub async fn start(
    work: &Work,
    conn: &mut PgConnection,
    caller: &Caller,
    checked: CheckedCrawl,
) -> WorkResult<Uuid> {
    let CheckedCrawl(mut crawl) = checked;
    crawl.owner_id = caller.user_id;
    let job = step_job(work, caller.user_id, crawl.id, Duration::ZERO);
    // The first step counts against the caller's live jobs like any job they start.
    super::jobs::start(work, conn, caller, &job).await?;
    store::crawls::insert(conn, &crawl).await?;
    Ok(crawl.id)
}

/// The job that takes crawl `id` a step further, `after` from now.
pub fn step_job(work: &Work, owner: Uuid, id: Uuid, after: Duration) -> NewJob {
    let max_attempts = work.config.jobs.kind(kinds::CRAWL).max_attempts;
    let mut job = NewJob::new(kinds::CRAWL, json!({ "crawl_id": id }), max_attempts);
    job.owner_id = Some(owner);
    job.trace_context = crate::telemetry::current_trace_context();
    if !after.is_zero() {
        job.run_at = chrono::Duration::from_std(after)
            .ok()
            .map(|d| Utc::now() + d);
    }
    job
}

/// The crawl's options as stored.
pub fn options_of(crawl: &Crawl) -> WorkResult<CrawlOptions> {
    serde_json::from_value(crawl.options.clone()).map_err(|e| WorkError::Internal(e.into()))
}

/// The robots.txt rules a crawl keeps (none before its first step).
pub fn robots_of(crawl: &Crawl) -> Robots {
    (crawl.robots.clone())
        .and_then(|r| serde_json::from_value(r).ok())
        .unwrap_or_default()
}

/// How long to wait between two of the crawl's pages: its `delay_ms`, or robots.txt's
/// `Crawl-delay` when longer.
pub fn delay_of(options: &CrawlOptions, robots: &Robots) -> Duration {
    Duration::from_millis(options.delay_ms.max(robots.delay_ms.unwrap_or(0)))
}

/// The scope of a crawl's links.
pub fn scope_of(crawl: &Crawl, options: &CrawlOptions) -> WorkResult<Scope> {
    let start = Url::parse(&crawl.url).map_err(|e| WorkError::Internal(e.into()))?;
    Ok(Scope::new(
        &start,
        options.allow_subdomains,
        &options.include_paths,
        &options.exclude_paths,
        robots_of(crawl),
    ))
}

/// A crawl's page finished (in the scrape's finishing transaction): count it, queue the links
/// it found that are in scope and not seen, and schedule the crawl's next step after its delay.
pub async fn page_finished(
    work: &Work,
    conn: &mut PgConnection,
    scrape_id: Uuid,
    ok: bool,
    links: &[String],
) -> WorkResult<()> {
    let Some((crawl_id, depth)) = store::crawls::page_finished(conn, scrape_id, ok).await? else {
        return Ok(());
    };
    let Some(crawl) = store::crawls::lock(conn, crawl_id).await? else {
        return Ok(());
    };
    if crawl.status != "running" {
        return Ok(());
    }
    let options = options_of(&crawl)?;
    if ok && (depth as u32) < options.max_depth {
        let scope = scope_of(&crawl, &options)?;
        let found: Vec<(String, i32)> = (links.iter())
            .filter_map(|l| Url::parse(l).ok())
            .map(|u| scope.canonical(&u))
            .filter(|u| scope.admits(u).is_ok())
            .map(|u| (u.to_string(), depth + 1))
            .collect();
        store::crawls::add_pages(conn, crawl_id, &found).await?;
    }
    let delay = delay_of(&options, &robots_of(&crawl));
    store::jobs::enqueue(conn, &step_job(work, crawl.owner_id, crawl_id, delay)).await?;
    Ok(())
}

/// The job `job_id` was cancelled: if it was a crawl's page loading, the page failed.
pub async fn page_cut_off(work: &Work, conn: &mut PgConnection, job_id: Uuid) -> WorkResult<()> {
    match store::crawls::loading_scrape_of_job(conn, job_id).await? {
        Some(scrape_id) => page_finished(work, conn, scrape_id, false, &[]).await,
        None => Ok(()),
    }
}

/// End a crawl as `status` and publish `crawls.finished`; nothing when it already ended.
pub async fn end(
    conn: &mut PgConnection,
    notifier: &Notifier,
    crawl: &Crawl,
    status: &str,
    error: Option<&str>,
) -> WorkResult<()> {
    if !store::crawls::finish(conn, crawl.id, status, error).await? {
        return Ok(());
    }
    let ended = store::crawls::find(&mut *conn, crawl.id, None).await?;
    let (done, failed) = ended.map_or((0, 0), |c| (c.pages_done, c.pages_failed));
    let payload = json!({
        "crawl_id": crawl.id, "status": status, "url": crawl.url,
        "pages_done": done, "pages_failed": failed, "error": error,
        "message": format!("Crawl of {} {status}: {done} pages, {failed} failed", crawl.url),
    });
    let topic = Topic::CrawlsFinished;
    let (owner, all) = (Some(crawl.owner_id), crawl.notify_all);
    publish_to(conn, notifier.config(), topic, owner, payload, all).await?;
    Ok(())
}

/// Cancel `caller`'s running crawl `id`: no page starts any more, the loading ones are
/// cancelled, `crawls.finished` says so.
pub async fn cancel(
    work: &Work,
    conn: &mut PgConnection,
    notifier: &Notifier,
    caller: &Caller,
    id: Uuid,
) -> WorkResult<()> {
    let owner = (!caller.is_admin()).then_some(caller.user_id);
    let Some(crawl) = store::crawls::find(&mut *conn, id, owner).await? else {
        return Err(WorkError::not_found(format_args!("crawl {id}")));
    };
    if crawl.status != "running" {
        return Err(WorkError::Conflict(format!(
            "crawl {id} is {} and cannot be cancelled",
            crawl.status
        )));
    }
    // The loading pages' jobs first, the crawl's row after: a page finishing meanwhile takes
    // its job's row and then the crawl's, so the other order could deadlock.
    for job in store::crawls::loading_jobs(conn, id).await? {
        // A page that finished meanwhile is left as it is.
        match super::jobs::cancel(work, conn, caller, job).await {
            Ok(()) | Err(WorkError::Conflict(_)) | Err(WorkError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let Some(crawl) = store::crawls::lock(conn, crawl.id).await? else {
        return Err(WorkError::not_found(format_args!("crawl {id}")));
    };
    end(conn, notifier, &crawl, "cancelled", None).await
}
