//! The `scrapes` table and the documents a scrape produces.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// A scrape to record, before its job runs.
#[derive(Debug, Clone)]
pub struct NewScrape {
    /// Id (also the job's argument).
    pub id: Uuid,
    /// The user it is for.
    pub owner_id: Uuid,
    /// The job doing it.
    pub job_id: Uuid,
    /// The checked URL.
    pub url: String,
    /// CSS selector to wait for.
    pub wait_for: Option<String>,
    /// Load timeout.
    pub timeout_ms: i32,
    /// Whether to keep a screenshot.
    pub screenshot: bool,
    /// Formats to keep: `text`, `html`, `markdown`.
    pub formats: Vec<String>,
    /// Summarise the page's document when the scrape succeeds.
    pub chain_summary: bool,
    /// Tell every channel of the user when it finishes.
    pub notify_all: bool,
    /// The other options (`scrape::options::ScrapeOptions`).
    pub options: Value,
    /// Equal requests share a result under this key (`max_age`).
    pub cache_key: String,
    /// The crawl it is a page of.
    pub crawl_id: Option<Uuid>,
    /// The batch it is one URL of.
    pub batch_id: Option<Uuid>,
}

/// Insert a scrape, in the transaction that enqueues its job.
pub async fn insert(conn: &mut PgConnection, s: &NewScrape) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO scrapes (id, owner_id, job_id, url, wait_for, timeout_ms, screenshot, formats, \
                              chain_summary, notify_all, options, cache_key, crawl_id, \
                              batch_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(s.id)
    .bind(s.owner_id)
    .bind(s.job_id)
    .bind(&s.url)
    .bind(&s.wait_for)
    .bind(s.timeout_ms)
    .bind(s.screenshot)
    .bind(&s.formats)
    .bind(s.chain_summary)
    .bind(s.notify_all)
    .bind(&s.options)
    .bind(&s.cache_key)
    .bind(s.crawl_id)
    .bind(s.batch_id)
    .execute(conn)
    .await
    .context("recording a scrape")?;
    Ok(())
}

/// A stored scrape, with the state of its job while it exists.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Scrape {
    /// Id.
    pub id: Uuid,
    /// The user it is for.
    pub owner_id: Uuid,
    /// The job doing it.
    pub job_id: Uuid,
    /// The requested URL.
    pub url: String,
    /// CSS selector waited for.
    pub wait_for: Option<String>,
    /// Load timeout.
    pub timeout_ms: i32,
    /// Whether a screenshot was asked for.
    pub screenshot: bool,
    /// Formats kept.
    pub formats: Vec<String>,
    /// Summarise the page's document when the scrape succeeds.
    pub chain_summary: bool,
    /// Tell every channel of the user when it finishes.
    pub notify_all: bool,
    /// The other options (`scrape::options::ScrapeOptions`).
    pub options: Value,
    /// How many screenshots the actions took.
    pub action_screenshots: i64,
    /// The crawl it is a page of.
    pub crawl_id: Option<Uuid>,
    /// The summary chained after the scrape.
    pub summary_id: Option<Uuid>,
    /// `succeeded` or `failed` once finished.
    pub outcome: Option<String>,
    /// The URL after redirects.
    pub final_url: Option<String>,
    /// The page's HTTP status, when the browser could tell.
    pub http_status: Option<i32>,
    /// The page title.
    pub title: Option<String>,
    /// `{text, html, markdown}` as asked for.
    pub content: Option<Value>,
    /// Whether a screenshot is stored.
    pub has_screenshot: bool,
    /// Why it failed, as a stable kind.
    pub error_kind: Option<String>,
    /// Why it failed, for a person.
    pub error: Option<String>,
    /// The document the scrape produced.
    pub document_id: Option<Uuid>,
    /// Attempts made.
    pub attempts: i32,
    /// Navigation time of the last attempt.
    pub navigate_ms: Option<i32>,
    /// Selector wait time of the last attempt.
    pub wait_ms: Option<i32>,
    /// Extraction time of the last attempt.
    pub extract_ms: Option<i32>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// The first attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// Finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// The job's stored state, while the job exists.
    pub job_state: Option<String>,
    /// The job's `run_at`, to tell scheduled from pending.
    pub job_run_at: Option<DateTime<Utc>>,
}

macro_rules! scrape_select {
    () => {
        "SELECT s.id, s.owner_id, s.job_id, s.url, s.wait_for, s.timeout_ms, s.screenshot, \
                s.formats, s.chain_summary, s.notify_all, s.options, \
                (SELECT count(*) FROM scrape_screenshots x WHERE x.scrape_id = s.id) \
                    AS action_screenshots, s.crawl_id, \
                s.summary_id, s.outcome, s.final_url, s.http_status, s.title, s.content, \
                s.screenshot_png IS NOT NULL AS has_screenshot, s.error_kind, s.error, \
                s.document_id, s.attempts, s.navigate_ms, s.wait_ms, s.extract_ms, \
                s.created_at, s.started_at, s.finished_at, \
                j.state AS job_state, j.run_at AS job_run_at \
         FROM scrapes s LEFT JOIN jobs j ON j.id = s.job_id "
    };
}

/// A scrape by id; `owner` limits it to that user's.
pub async fn find(
    db: impl PgExecutor<'_>,
    id: Uuid,
    owner: Option<Uuid>,
) -> anyhow::Result<Option<Scrape>> {
    sqlx::query_as(concat!(
        scrape_select!(),
        "WHERE s.id = $1 AND ($2::uuid IS NULL OR s.owner_id = $2)"
    ))
    .bind(id)
    .bind(owner)
    .fetch_optional(db)
    .await
    .context("reading a scrape")
}

/// Scrapes newest first, after the cursor `before`, at most `limit`; `owner` limits them to
/// that user's.
pub async fn list(
    db: impl PgExecutor<'_>,
    owner: Option<Uuid>,
    before: Option<Uuid>,
    limit: i64,
) -> anyhow::Result<Vec<Scrape>> {
    sqlx::query_as(concat!(
        scrape_select!(),
        "WHERE ($1::uuid IS NULL OR s.owner_id = $1) AND ($2::uuid IS NULL OR s.id < $2) \
         ORDER BY s.id DESC LIMIT $3"
    ))
    .bind(owner)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
    .context("listing scrapes")
}

/// The screenshot of a scrape; `owner` limits it to that user's. `None`: no such scrape;
/// `Some(None)`: no screenshot.
pub async fn screenshot(
    db: impl PgExecutor<'_>,
    id: Uuid,
    owner: Option<Uuid>,
) -> anyhow::Result<Option<Option<Vec<u8>>>> {
    let row: Option<(Option<Vec<u8>>,)> = sqlx::query_as(
        "SELECT screenshot_png FROM scrapes WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2)",
    )
    .bind(id)
    .bind(owner)
    .fetch_optional(db)
    .await
    .context("reading a screenshot")?;
    Ok(row.map(|(png,)| png))
}

/// Note that an attempt started.
pub async fn started(db: impl PgExecutor<'_>, id: Uuid, attempt: i32) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE scrapes SET attempts = $2, started_at = coalesce(started_at, now()) WHERE id = $1",
    )
    .bind(id)
    .bind(attempt)
    .execute(db)
    .await
    .context("marking a scrape started")?;
    Ok(())
}

/// What a successful attempt found.
#[derive(Debug, Clone)]
pub struct Found {
    /// The URL after redirects.
    pub final_url: String,
    /// The HTTP status, when known.
    pub http_status: Option<i32>,
    /// The title.
    pub title: String,
    /// `{text, html, markdown}` as asked for.
    pub content: Value,
    /// The page text, for the document.
    pub text: String,
    /// PNG bytes.
    pub screenshot: Option<Vec<u8>>,
    /// PNGs the actions took, in order.
    pub action_screenshots: Vec<Vec<u8>>,
    /// The page's links (absolute, each once), kept for a crawl's page only.
    pub links: Vec<String>,
    /// Timings in ms: navigate, wait, extract.
    pub timings: (i32, i32, i32),
}

/// Record a successful scrape and the document it produced, in one transaction with nothing
/// else; returns the document's id.
pub async fn succeeded(
    conn: &mut PgConnection,
    scrape: &Scrape,
    found: &Found,
) -> anyhow::Result<Uuid> {
    let document_id = Uuid::now_v7();
    let title = match found.title.trim() {
        "" => found.final_url.clone(),
        t => t.to_string(),
    };
    sqlx::query(
        "INSERT INTO documents (id, owner_id, title, text, source, source_url) \
         VALUES ($1, $2, $3, $4, 'scrape', $5)",
    )
    .bind(document_id)
    .bind(scrape.owner_id)
    .bind(&title)
    .bind(&found.text)
    .bind(&found.final_url)
    .execute(&mut *conn)
    .await
    .context("storing a scraped document")?;
    sqlx::query(
        "UPDATE scrapes SET outcome = 'succeeded', final_url = $2, http_status = $3, title = $4, \
                content = $5, screenshot_png = $6, document_id = $7, error_kind = NULL, \
                error = NULL, navigate_ms = $8, wait_ms = $9, extract_ms = $10, \
                finished_at = now() \
         WHERE id = $1",
    )
    .bind(scrape.id)
    .bind(&found.final_url)
    .bind(found.http_status)
    .bind(&found.title)
    .bind(&found.content)
    .bind(&found.screenshot)
    .bind(document_id)
    .bind(found.timings.0)
    .bind(found.timings.1)
    .bind(found.timings.2)
    .execute(&mut *conn)
    .await
    .context("recording a scrape's result")?;
    // An earlier attempt's (a retried job's) would be stale.
    sqlx::query("DELETE FROM scrape_screenshots WHERE scrape_id = $1")
        .bind(scrape.id)
        .execute(&mut *conn)
        .await
        .context("replacing a scrape's action screenshots")?;
    for (n, png) in found.action_screenshots.iter().enumerate() {
        sqlx::query("INSERT INTO scrape_screenshots (scrape_id, n, png) VALUES ($1, $2, $3)")
            .bind(scrape.id)
            .bind(n as i32 + 1)
            .bind(png)
            .execute(&mut *conn)
            .await
            .context("storing an action's screenshot")?;
    }
    Ok(document_id)
}

/// Note the summary chained after a scrape.
pub async fn chained(db: impl PgExecutor<'_>, id: Uuid, summary_id: Uuid) -> anyhow::Result<()> {
    sqlx::query("UPDATE scrapes SET summary_id = $2 WHERE id = $1")
        .bind(id)
        .bind(summary_id)
        .execute(db)
        .await
        .context("noting a chained summary")?;
    Ok(())
}

/// Record an attempt's error; `last` marks the scrape failed for good.
pub async fn failed(
    db: impl PgExecutor<'_>,
    id: Uuid,
    kind: &str,
    error: &str,
    last: bool,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE scrapes SET error_kind = $2, error = $3, \
                outcome = CASE WHEN $4 THEN 'failed' ELSE outcome END, \
                finished_at = CASE WHEN $4 THEN now() ELSE finished_at END \
         WHERE id = $1",
    )
    .bind(id)
    .bind(kind)
    .bind(error)
    .bind(last)
    .execute(db)
    .await
    .context("recording a scrape's error")?;
    Ok(())
}

/// The owner's latest successful scrape under `cache_key` that finished after `since`.
pub async fn fresh(
    db: impl PgExecutor<'_>,
    owner: Uuid,
    cache_key: &str,
    since: DateTime<Utc>,
) -> anyhow::Result<Option<Scrape>> {
    sqlx::query_as(concat!(
        scrape_select!(),
        "WHERE s.owner_id = $1 AND s.cache_key = $2 AND s.outcome = 'succeeded' \
           AND s.finished_at > $3 \
         ORDER BY s.finished_at DESC LIMIT 1"
    ))
    .bind(owner)
    .bind(cache_key)
    .bind(since)
    .fetch_optional(db)
    .await
    .context("looking for a fresh scrape")
}

/// The `n`th (from 1) screenshot an action of a scrape took; `owner` limits it to that user's.
/// `None`: no such scrape; `Some(None)`: no such screenshot.
pub async fn action_screenshot(
    db: impl PgExecutor<'_>,
    id: Uuid,
    n: i32,
    owner: Option<Uuid>,
) -> anyhow::Result<Option<Option<Vec<u8>>>> {
    let row: Option<(Option<Vec<u8>>,)> = sqlx::query_as(
        "SELECT x.png FROM scrapes s \
         LEFT JOIN scrape_screenshots x ON x.scrape_id = s.id AND x.n = $2 \
         WHERE s.id = $1 AND ($3::uuid IS NULL OR s.owner_id = $3)",
    )
    .bind(id)
    .bind(n)
    .bind(owner)
    .fetch_optional(db)
    .await
    .context("reading an action's screenshot")?;
    Ok(row.map(|(png,)| png))
}

/// Record a batch of scrapes (its scrapes are inserted with its id).
pub async fn insert_batch(
    conn: &mut PgConnection,
    id: Uuid,
    owner: Uuid,
    total: i32,
) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO scrape_batches (id, owner_id, total) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(owner)
        .bind(total)
        .execute(conn)
        .await
        .context("recording a batch of scrapes")?;
    Ok(())
}

/// A batch's creation time and its scrapes, in the order of its URLs; `None` when there is no
/// such batch (of `owner`'s, when given).
pub async fn batch(
    conn: &mut PgConnection,
    id: Uuid,
    owner: Option<Uuid>,
) -> anyhow::Result<Option<(DateTime<Utc>, Vec<Scrape>)>> {
    let found: Option<(DateTime<Utc>,)> = sqlx::query_as(
        "SELECT created_at FROM scrape_batches WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2)",
    )
    .bind(id)
    .bind(owner)
    .fetch_optional(&mut *conn)
    .await
    .context("reading a batch")?;
    let Some((created_at,)) = found else {
        return Ok(None);
    };
    let scrapes = sqlx::query_as(concat!(
        scrape_select!(),
        "WHERE s.batch_id = $1 ORDER BY s.id"
    ))
    .bind(id)
    .fetch_all(conn)
    .await
    .context("reading a batch's scrapes")?;
    Ok(Some((created_at, scrapes)))
}
