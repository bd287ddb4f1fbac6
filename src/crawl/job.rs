//! `crawl`: one step of a crawl. The first step reads robots.txt and the sitemaps; every step
//! starts the next queued pages' scrapes (shallowest first) while fewer than
//! `max_concurrency` load and fewer than `limit` were visited, or ends the crawl when nothing
//! loads and nothing is left. Steps of one crawl run one at a time (they lock the crawl's row);
//! a step that finds nothing to do is cheap, so a spare one is harmless.

use std::time::Duration;

use anyhow::anyhow;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{Acquire, PgPool};
use url::Url;
use uuid::Uuid;

use super::discover;
use super::scope::Scope;
use crate::egress::OutboundClient;
use crate::engine::{Job, JobError, JobKind};
use crate::notify::job::Notifier;
use crate::store;
use crate::work::crawls::{end, options_of, page_request, scope_of, step_job};
use crate::work::{self, Work, WorkError};

/// Pages one step looks at at most (refused ones included) before the next step goes on.
const MAX_PAGES_PER_STEP: usize = 1_000;
/// While pages load, a step comes back this often to notice one whose job ended unreported.
const WATCHDOG: Duration = Duration::from_secs(30);
/// When the owner's live jobs are at their plan's bound, the step tries again after this.
const BOUND_RETRY: Duration = Duration::from_secs(5);

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
        let stepped = async {
            if crawl.robots.is_none() {
                self.discover(&crawl).await?;
            }
            self.step(id).await.map_err(|e| match e {
                WorkError::Internal(e) => JobError::Retry(e),
                other => JobError::Retry(anyhow!("{other}")),
            })
        }
        .await;
        match stepped {
            Ok(started) => Ok(json!({ "crawl_id": id, "pages_started": started })),
            // The last attempt: no step would come after it, so the crawl ends here, saying why.
            Err(JobError::Retry(e)) if job.attempt >= job.max_attempts => {
                let why = format!("a step of the crawl kept failing: {e:#}");
                self.give_up(id, &why).await?;
                Err(JobError::Permanent(e))
            }
            Err(e) => Err(e),
        }
    }
}

impl CrawlKind {
    /// End crawl `id` as failed with `why` (its last step failed for good).
    async fn give_up(&self, id: Uuid, why: &str) -> Result<(), JobError> {
        let mut tx = self.pool.begin().await.map_err(anyhow::Error::from)?;
        if let Some(crawl) = store::crawls::lock(&mut tx, id).await? {
            end(&mut tx, &self.notifier, &crawl, "failed", Some(why))
                .await
                .map_err(internal)?;
        }
        tx.commit().await.map_err(anyhow::Error::from)?;
        Ok(())
    }
}

impl CrawlKind {
    /// Read robots.txt and the sitemaps, then keep the rules and queue the sitemap's pages in
    /// scope in one transaction (a step cut off in between reads both again).
    async fn discover(&self, crawl: &store::crawls::Crawl) -> Result<(), JobError> {
        let options = options_of(crawl).map_err(|e| JobError::permanent(anyhow!("{e}")))?;
        let start = Url::parse(&crawl.url).map_err(|e| JobError::permanent(anyhow!(e)))?;
        let robots = discover::robots(&self.fetcher, &start).await;
        let listed = match (&robots, options.ignore_sitemap || options.max_depth == 0) {
            (Ok(robots), false) => discover::sitemap_urls(&self.fetcher, &start, robots).await,
            _ => Vec::new(),
        };
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
        let scope = Scope::new(
            &start,
            options.allow_subdomains,
            &options.include_paths,
            &options.exclude_paths,
            robots,
        );
        let pages: Vec<(String, i32)> = (listed.iter())
            .filter_map(|l| Url::parse(l).ok())
            .map(|u| scope.canonical(&u))
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
        // Pages whose scrape job ended without telling the crawl (timed out, dead, cancelled
        // before it ran) failed.
        store::crawls::reap_lost_pages(&mut tx, id).await?;
        let mut started = 0;
        let mut looked = 0;
        loop {
            let (loading, visited) = store::crawls::counts(&mut tx, id).await?;
            let free = (i64::from(options.max_concurrency) - loading)
                .min(i64::from(options.limit) - visited);
            if free > 0 && looked >= MAX_PAGES_PER_STEP {
                // A long run of refused pages: the next step goes on from here.
                let again = step_job(&self.work, crawl.owner_id, id, Duration::ZERO);
                store::jobs::enqueue(&mut tx, &again).await?;
                break;
            }
            let next = match free > 0 {
                true => store::crawls::next_queued(&mut tx, id, free).await?,
                false => Vec::new(),
            };
            if next.is_empty() {
                if loading == 0 {
                    end(&mut tx, &self.notifier, &crawl, "succeeded", None).await?;
                } else {
                    // A watchdog: finished pages schedule the next step themselves, this one
                    // notices pages whose scrape job ended some other way.
                    let watch = step_job(&self.work, crawl.owner_id, id, WATCHDOG);
                    store::jobs::enqueue(&mut tx, &watch).await?;
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
                let request = page_request(&options, &page.url);
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
                    // Too many live jobs passes as pages finish: try again a little later.
                    Err(WorkError::Bound {
                        bound: "max_live_jobs",
                        ..
                    }) => {
                        savepoint.rollback().await?;
                        let later = step_job(&self.work, crawl.owner_id, id, BOUND_RETRY);
                        store::jobs::enqueue(&mut tx, &later).await?;
                        tx.commit().await?;
                        return Ok(started);
                    }
                    // Out of quota, or another plan bound: the crawl stops with what it has.
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
