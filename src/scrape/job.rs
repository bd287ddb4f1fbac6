//! `scrape`: render a page in headless Chromium (through the `scraper`) and store what it
//! found as a scrape and a document, with its chained summary, its crawl's next step and its
//! events, in one transaction fenced by the attempt.

use std::sync::Arc;

use anyhow::anyhow;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::extract;
use super::scraper::{Failure, stored_options};
use crate::domain::topics::Topic;
use crate::engine::{Job, JobError, JobKind};
use crate::notify::job::Notifier;
use crate::store;
use crate::store::scrapes::{Found, Scrape};
use crate::summarise::summariser::Summariser;
use crate::work::events::{publish_failed, publish_to};
use crate::work::finish::{self, Outcome};
use crate::work::summaries::SummaryRequest;
use crate::work::{self, Work, WorkError};

pub use super::scraper::{ERROR_KINDS, FORMATS, Scraper};

fn crawl_error(e: WorkError) -> JobError {
    JobError::Retry(anyhow!("recording the crawl's page: {e}"))
}

/// The `scrape` job's arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeArgs {
    /// The scrape to do.
    pub scrape_id: Uuid,
}

/// The `scrape` kind.
pub struct ScrapeKind {
    /// Where scrapes and documents are.
    pub pool: PgPool,
    /// The browser.
    pub scraper: Arc<Scraper>,
    /// Where `scrapes.finished` and `jobs.failed` go.
    pub notifier: Arc<Notifier>,
    /// The use cases: a chained summary is requested like `POST /v1/documents/{id}/summaries`.
    pub work: Work,
    /// The model providers the `json` format extracts with.
    pub summariser: Arc<Summariser>,
}

impl ScrapeKind {
    /// Request a summary of the scrape's document through the same use case as
    /// `POST /v1/documents/{id}/summaries`, acting as the scrape's owner (their plan, quota and
    /// bounds); a refusal skips it, saying why. Runs in a savepoint of the scrape's
    /// transaction, so a refusal leaves nothing behind.
    async fn chain_summary(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        scrape: &Scrape,
        document_id: Uuid,
    ) -> anyhow::Result<Value> {
        use sqlx::Acquire;
        let mut savepoint = tx.begin().await?;
        let requested = async {
            let owner = work::caller_of(&mut savepoint, scrape.owner_id).await?;
            let options = work::summaries::check(&self.work, SummaryRequest::default())?;
            work::summaries::request(&self.work, &mut savepoint, &owner, document_id, &options)
                .await
        }
        .await;
        match requested {
            Ok(requested) => {
                store::scrapes::chained(&mut *savepoint, scrape.id, requested.id).await?;
                savepoint.commit().await?;
                Ok(json!({ "summary_id": requested.id }))
            }
            Err(WorkError::Internal(e)) => Err(e),
            Err(refused) => {
                savepoint.rollback().await?;
                Ok(json!({ "skipped": refused.to_string() }))
            }
        }
    }
}

impl ScrapeKind {
    /// Keep the page, its document, the chained summary and the event, together with the
    /// job's end, in one transaction fenced by the attempt.
    async fn succeeded(
        &self,
        job: &Job<ScrapeArgs>,
        scrape: &Scrape,
        found: &Found,
    ) -> Result<Value, JobError> {
        let id = scrape.id;
        let mut tx = finish::begin(&self.pool, job).await?;
        let document_id = store::scrapes::succeeded(&mut tx, scrape, found).await?;
        let summary = match scrape.chain_summary {
            true => self.chain_summary(&mut tx, scrape, document_id).await?,
            false => Value::Null,
        };
        let payload = json!({
            "scrape_id": id, "status": "succeeded", "url": scrape.url,
            "final_url": found.final_url, "document_id": document_id,
            "summary": summary,
            "message": format!("Scraped {}", found.final_url),
        });
        let owner = Some(scrape.owner_id);
        let all = scrape.notify_all;
        let topic = Topic::ScrapesFinished;
        publish_to(&mut tx, self.notifier.config(), topic, owner, payload, all).await?;
        if scrape.crawl_id.is_some() {
            work::crawls::page_finished(&self.work, &mut tx, id, true, &found.links)
                .await
                .map_err(crawl_error)?;
        }
        let result = json!({
            "scrape_id": id,
            "document_id": document_id,
            "final_url": found.final_url,
            "http_status": found.http_status,
        });
        finish::finish(tx, job, Outcome::Succeeded(result)).await
    }

    /// Record the failure (and, on the last attempt, its events) with the job's end.
    async fn failed(
        &self,
        job: &Job<ScrapeArgs>,
        scrape: &Scrape,
        failure: Failure,
    ) -> Result<Value, JobError> {
        let id = scrape.id;
        let last = !failure.transient || job.attempt >= job.max_attempts;
        let mut tx = finish::begin(&self.pool, job).await?;
        store::scrapes::failed(&mut *tx, id, failure.kind, &failure.message, last).await?;
        if last {
            let payload = json!({
                "scrape_id": id, "status": "failed", "url": scrape.url,
                "error_kind": failure.kind, "error": failure.message,
                "message": format!("Scrape of {} failed: {}", scrape.url, failure.kind),
            });
            let owner = Some(scrape.owner_id);
            let all = scrape.notify_all;
            let topic = Topic::ScrapesFinished;
            publish_failed(&mut tx, self.notifier.config(), topic, owner, payload, all).await?;
            if scrape.crawl_id.is_some() {
                work::crawls::page_finished(&self.work, &mut tx, id, false, &[])
                    .await
                    .map_err(crawl_error)?;
            }
        }
        let error = anyhow!("{}: {}", failure.kind, failure.message);
        let error = match failure.transient {
            true => JobError::Retry(error),
            false => JobError::Permanent(error),
        };
        finish::finish(tx, job, Outcome::Failed(error)).await
    }
}

impl ScrapeKind {
    /// With the `json` format: the page's main content, extracted by the model providers.
    async fn extracted(&self, scrape: &Scrape, mut found: Found) -> Result<Found, Failure> {
        let options = stored_options(scrape);
        let (Some(extraction), true) = (
            &options.extraction,
            scrape.formats.iter().any(|f| f == "json"),
        ) else {
            return Ok(found);
        };
        let providers = self.summariser.providers();
        let value = extract::extract(providers, &found.text, extraction)
            .await
            .map_err(Failure::extraction)?;
        if let Value::Object(content) = &mut found.content {
            content.insert("json".into(), value);
        }
        Ok(found)
    }
}

impl JobKind for ScrapeKind {
    const NAME: &'static str = crate::domain::jobs::kinds::SCRAPE;
    const QUOTA: Option<&'static str> = Some("scrape");
    type Args = ScrapeArgs;

    async fn run(&self, job: Job<ScrapeArgs>) -> Result<Value, JobError> {
        let id = job.args.scrape_id;
        // By id and the job's owner: a job naming another user's scrape touches nothing.
        let Some(scrape) = store::scrapes::find(&self.pool, id, job.owner_id).await? else {
            return Err(JobError::permanent(anyhow!(
                "scrape {id} does not exist or is not the job owner's"
            )));
        };
        // An earlier attempt finished it (a job retried by hand after a success).
        if let Some(outcome) = &scrape.outcome {
            return Ok(json!({ "scrape_id": id, "outcome": outcome }));
        }
        store::scrapes::started(&self.pool, id, job.attempt).await?;
        // Dropping the page load closes its browser session mid-page (the pool never reuses
        // it), which also drops the browser's connection to the site.
        let attempt = tokio::select! {
            attempt = self.scraper.attempt(&scrape) => attempt,
            _ = job.cancel.cancelled() => return Err(JobError::Cancelled),
        };
        let attempt = match attempt {
            Ok(found) => self.extracted(&scrape, found).await,
            failed => failed,
        };
        match attempt {
            Ok(found) => self.succeeded(&job, &scrape, &found).await,
            Err(failure) => self.failed(&job, &scrape, failure).await,
        }
    }
}
