//! `crawl`: one step of a crawl. The first step reads robots.txt and the sitemaps; every step
//! starts the next queued pages' scrapes (shallowest first) while fewer than
//! `max_concurrency` load and fewer than `limit` were visited, or ends the crawl when nothing
//! loads and nothing is left. Steps of one crawl run one at a time (they lock the crawl's row);
//! a step that finds nothing to do is cheap, so a spare one is harmless.

use anyhow::anyhow;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{Acquire, PgPool};
use url::Url;
use uuid::Uuid;

use super::discover;
use super::scope::normalise;
use crate::egress::OutboundClient;
use crate::engine::{Job, JobError, JobKind};
use crate::notify::job::Notifier;
use crate::store;
use crate::work::crawls::{end, options_of, scope_of};
use crate::work::scrapes::ScrapeRequest;
use crate::work::{self, Work, WorkError};

/// Pages one step looks at at most (refused ones included) before it ends.
const MAX_PAGES_PER_STEP: usize = 1_000;

/// The `crawl` job's arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrawlArgs {
    /// The crawl to take a step further.
    pub crawl_id: Uuid,
}

/// The `crawl` kind.
pub struct CrawlKind {
    /// Where crawls, pages and scrapes are.
    pub pool: PgPool,
    /// Reads robots.txt and sitemaps.
    pub fetcher: OutboundClient,
    /// Where `crawls.finished` goes.
    pub notifier: std::sync::Arc<Notifier>,
    /// The use cases: each page is a scrape requested as `POST /v1/scrapes` does.
    pub work: Work,
}

impl JobKind for CrawlKind {
    const NAME: &'static str = crate::domain::jobs::kinds::CRAWL;
    type Args = CrawlArgs;

    async fn run(&self, job: Job<CrawlArgs>) -> Result<Value, JobError> {
        let id = job.args.crawl_id;
        let Some(crawl) = store::crawls::find(&self.pool, id, job.owner_id).await? else {
            return Err(JobError::permanent(anyhow!(
                "crawl {id} does not exist or is not the job owner's"
            )));
        };
        if crawl.status != "running" {
            return Ok(json!({ "crawl_id": id, "status": crawl.status }));
        }
        if crawl.robots.is_none() {
            self.discover(&crawl).await?;
        }
        let started = self.step(id).await.map_err(|e| match e {
            WorkError::Internal(e) => JobError::Retry(e),
            other => JobError::Retry(anyhow!("{other}")),
        })?;
        Ok(json!({ "crawl_id": id, "pages_started": started }))
    }
}

impl CrawlKind {
    /// Read robots.txt and the sitemaps, keep the rules and queue the sitemap's pages in scope.
    async fn discover(&self, crawl: &store::crawls::Crawl) -> Result<(), JobError> {
        let options = options_of(crawl).map_err(|e| JobError::permanent(anyhow!("{e}")))?;
        let start = Url::parse(&crawl.url).map_err(|e| JobError::permanent(anyhow!(e)))?;
        let robots = discover::robots(&self.fetcher, &start).await;
        let mut tx = self.pool.begin().await.map_err(anyhow::Error::from)?;
        let Some(locked) = store::crawls::lock(&mut tx, crawl.id).await? else {
            return Ok(());
        };
        if locked.robots.is_some() || locked.status != "running" {
            return Ok(());
        }
        let robots = match robots {
            Ok(robots) => robots,
            Err(why) => {
                end(&mut tx, &self.notifier, &locked, "failed", Some(&why))
                    .await
                    .map_err(internal)?;
                tx.commit().await.map_err(anyhow::Error::from)?;
                return Ok(());
            }
        };
        let rules = serde_json::to_value(&robots).map_err(anyhow::Error::from)?;
        store::crawls::set_robots(&mut tx, crawl.id, &rules).await?;
        tx.commit().await.map_err(anyhow::Error::from)?;
        if options.ignore_sitemap || options.max_depth == 0 {
            return Ok(());
        }
        let listed = discover::sitemap_urls(&self.fetcher, &start, &robots).await;
        let mut tx = self.pool.begin().await.map_err(anyhow::Error::from)?;
        let Some(locked) = store::crawls::lock(&mut tx, crawl.id).await? else {
            return Ok(());
        };
        let scope = scope_of(&locked, &options).map_err(internal)?;
        let pages: Vec<(String, i32)> = (listed.iter())
            .filter_map(|l| Url::parse(l).ok())
            .map(|u| normalise(&u))
            .filter(|u| scope.admits(u).is_ok())
            .map(|u| (u.to_string(), 1))
            .collect();
        store::crawls::add_pages(&mut tx, crawl.id, &pages).await?;
        tx.commit().await.map_err(anyhow::Error::from)?;
        Ok(())
    }

    /// Start what the crawl's bounds allow, or end it; returns how many pages started.
    async fn step(&self, id: Uuid) -> Result<usize, WorkError> {
        let mut tx = self.pool.begin().await?;
        let Some(crawl) = store::crawls::lock(&mut tx, id).await? else {
            return Ok(0);
        };
        if crawl.status != "running" {
            return Ok(0);
        }
        let options = options_of(&crawl)?;
        let scope = scope_of(&crawl, &options)?;
        let caller = work::caller_of(&mut tx, crawl.owner_id).await?;
        let mut started = 0;
        let mut looked = 0;
        loop {
            let (loading, visited) = store::crawls::counts(&mut tx, id).await?;
            let free = (i64::from(options.max_concurrency) - loading)
                .min(i64::from(options.limit) - visited);
            let next = match free > 0 && looked < MAX_PAGES_PER_STEP {
                true => store::crawls::next_queued(&mut tx, id, free).await?,
                false => Vec::new(),
            };
            if next.is_empty() {
                if loading == 0 {
                    end(&mut tx, &self.notifier, &crawl, "succeeded", None).await?;
                }
                break;
            }
            for page in next {
                looked += 1;
                let url = Url::parse(&page.url).map_err(|e| WorkError::Internal(e.into()))?;
                // Pages queued before robots.txt was read (the start page) are checked now.
                let admitted = match page.depth {
                    0 => scope.admits_start(&url),
                    _ => scope.admits(&url),
                };
                if admitted.is_err() {
                    store::crawls::mark(&mut tx, id, &page.url, "skipped", None).await?;
                    continue;
                }
                let request = ScrapeRequest {
                    url: page.url.clone(),
                    wait_for: options.wait_for.clone(),
                    timeout_ms: options.timeout_ms,
                    screenshot: options.formats.iter().any(|f| f == "screenshot"),
                    formats: Some(options.formats.clone()),
                    options: options.scrape.clone(),
                    ..Default::default()
                };
                let checked = match work::scrapes::check(&self.work, request).await {
                    Ok(checked) => checked.in_crawl(id),
                    Err(WorkError::Invalid { .. }) => {
                        store::crawls::fail_page(&mut tx, id, &page.url).await?;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let mut savepoint = tx.begin().await?;
                match work::scrapes::request(&self.work, &mut savepoint, &caller, checked).await {
                    Ok(requested) => {
                        savepoint.commit().await?;
                        store::crawls::mark(&mut tx, id, &page.url, "scraping", Some(requested.id))
                            .await?;
                        started += 1;
                    }
                    Err(WorkError::Internal(e)) => return Err(WorkError::Internal(e)),
                    // Out of quota, or a plan bound: the crawl stops with what it has.
                    Err(refused) => {
                        savepoint.rollback().await?;
                        let why = format!("stopped after {visited} pages: {refused}");
                        end(&mut tx, &self.notifier, &crawl, "failed", Some(&why)).await?;
                        tx.commit().await?;
                        return Ok(started);
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(started)
    }
}

fn internal(e: WorkError) -> JobError {
    JobError::Retry(anyhow!("{e}"))
}
