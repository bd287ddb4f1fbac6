//! The `crawls` table and its frontier, `crawl_pages`: each page once (by normalised URL), in
//! discovery order, with the scrape that visited it.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// A crawl to record.
#[derive(Debug, Clone)]
pub struct NewCrawl {
    /// Id.
    pub id: Uuid,
    /// The user it is for.
    pub owner_id: Uuid,
    /// The start URL.
    pub url: String,
    /// `crawl::options::CrawlOptions`.
    pub options: Value,
    /// Tell every channel of the user when it finishes.
    pub notify_all: bool,
}

/// A stored crawl.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Crawl {
    /// Id.
    pub id: Uuid,
    /// The user it is for.
    pub owner_id: Uuid,
    /// The start URL.
    pub url: String,
    /// `crawl::options::CrawlOptions`.
    pub options: Value,
    /// `running`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// robots.txt as parsed (`crawl::robots::Robots`); `None` before the first step.
    pub robots: Option<Value>,
    /// Pages scraped.
    pub pages_done: i32,
    /// Pages whose scrape failed.
    pub pages_failed: i32,
    /// Why it failed.
    pub error: Option<String>,
    /// Tell every channel of the user when it finishes.
    pub notify_all: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// One page of a crawl.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CrawlPage {
    /// The normalised URL.
    pub url: String,
    /// Discovery order.
    pub seq: i64,
    /// Links from the start page (sitemap pages: 1).
    pub depth: i32,
    /// `queued`, `scraping`, `done`, `failed` or `skipped`.
    pub state: String,
    /// The scrape that visited it.
    pub scrape_id: Option<Uuid>,
}

macro_rules! crawl_select {
    () => {
        "SELECT id, owner_id, url, options, status, robots, pages_done, pages_failed, error, \
                notify_all, created_at, finished_at FROM crawls "
    };
}

/// Insert a crawl with its start page, in the transaction that enqueues its first step.
pub async fn insert(conn: &mut PgConnection, c: &NewCrawl) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO crawls (id, owner_id, url, options, notify_all) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(c.id)
    .bind(c.owner_id)
    .bind(&c.url)
    .bind(&c.options)
    .bind(c.notify_all)
    .execute(&mut *conn)
    .await
    .context("recording a crawl")?;
    add_pages(conn, c.id, &[(c.url.clone(), 0)]).await?;
    Ok(())
}

/// Queue pages not seen before; returns how many were new.
pub async fn add_pages(
    conn: &mut PgConnection,
    crawl_id: Uuid,
    pages: &[(String, i32)],
) -> anyhow::Result<u64> {
    if pages.is_empty() {
        return Ok(0);
    }
    let (urls, depths): (Vec<String>, Vec<i32>) = pages.iter().cloned().unzip();
    let added = sqlx::query(
        "INSERT INTO crawl_pages (crawl_id, url, depth) \
         SELECT $1, url, depth FROM unnest($2::text[], $3::int[]) WITH ORDINALITY AS p(url, depth, n) \
         ORDER BY n \
         ON CONFLICT (crawl_id, url) DO NOTHING",
    )
    .bind(crawl_id)
    .bind(&urls)
    .bind(&depths)
    .execute(conn)
    .await
    .context("queueing a crawl's pages")?;
    Ok(added.rows_affected())
}

/// A crawl by id; `owner` limits it to that user's.
pub async fn find(
    db: impl PgExecutor<'_>,
    id: Uuid,
    owner: Option<Uuid>,
) -> anyhow::Result<Option<Crawl>> {
    sqlx::query_as(concat!(
        crawl_select!(),
        "WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2)"
    ))
    .bind(id)
    .bind(owner)
    .fetch_optional(db)
    .await
    .context("reading a crawl")
}

/// A crawl, locked for the rest of the transaction (one step of a crawl at a time).
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<Option<Crawl>> {
    sqlx::query_as(concat!(crawl_select!(), "WHERE id = $1 FOR UPDATE"))
        .bind(id)
        .fetch_optional(conn)
        .await
        .context("locking a crawl")
}

/// Crawls newest first, after the cursor `before`; `owner` limits them to that user's.
pub async fn list(
    db: impl PgExecutor<'_>,
    owner: Option<Uuid>,
    before: Option<Uuid>,
    limit: i64,
) -> anyhow::Result<Vec<Crawl>> {
    sqlx::query_as(concat!(
        crawl_select!(),
        "WHERE ($1::uuid IS NULL OR owner_id = $1) AND ($2::uuid IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    ))
    .bind(owner)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
    .context("listing crawls")
}

/// A crawl's pages in discovery order after `after` (a `seq`), at most `limit`; `states`
/// limits them to those states.
pub async fn pages(
    db: impl PgExecutor<'_>,
    crawl_id: Uuid,
    after: i64,
    limit: i64,
    states: &[&str],
) -> anyhow::Result<Vec<CrawlPage>> {
    let states: Vec<String> = states.iter().map(|s| s.to_string()).collect();
    sqlx::query_as(
        "SELECT url, seq, depth, state, scrape_id FROM crawl_pages \
         WHERE crawl_id = $1 AND seq > $2 AND state = ANY($4) ORDER BY seq LIMIT $3",
    )
    .bind(crawl_id)
    .bind(after)
    .bind(limit)
    .bind(&states)
    .fetch_all(db)
    .await
    .context("listing a crawl's pages")
}

/// Pages loading now, and pages visited or loading (what counts toward `limit`).
pub async fn counts(conn: &mut PgConnection, crawl_id: Uuid) -> anyhow::Result<(i64, i64)> {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE state = 'scraping'), \
                count(*) FILTER (WHERE state IN ('scraping', 'done', 'failed')) \
         FROM crawl_pages WHERE crawl_id = $1",
    )
    .bind(crawl_id)
    .fetch_one(conn)
    .await
    .context("counting a crawl's pages")
}

/// The next `n` queued pages, shallowest first, then in discovery order.
pub async fn next_queued(
    conn: &mut PgConnection,
    crawl_id: Uuid,
    n: i64,
) -> anyhow::Result<Vec<CrawlPage>> {
    sqlx::query_as(
        "SELECT url, seq, depth, state, scrape_id FROM crawl_pages \
         WHERE crawl_id = $1 AND state = 'queued' ORDER BY depth, seq LIMIT $2",
    )
    .bind(crawl_id)
    .bind(n)
    .fetch_all(conn)
    .await
    .context("picking a crawl's next pages")
}

/// Set a page's state (and the scrape visiting it).
pub async fn mark(
    conn: &mut PgConnection,
    crawl_id: Uuid,
    url: &str,
    state: &str,
    scrape_id: Option<Uuid>,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE crawl_pages SET state = $3, scrape_id = coalesce($4, scrape_id) \
         WHERE crawl_id = $1 AND url = $2",
    )
    .bind(crawl_id)
    .bind(url)
    .bind(state)
    .bind(scrape_id)
    .execute(conn)
    .await
    .context("marking a crawl's page")?;
    Ok(())
}

/// The page a finished scrape visited, now `done` or `failed`, with its crawl's counters
/// moved; `None` when the scrape is no crawl's page still loading (so a repeated finish
/// counts once). Returns the crawl id and the page's depth.
pub async fn page_finished(
    conn: &mut PgConnection,
    scrape_id: Uuid,
    ok: bool,
) -> anyhow::Result<Option<(Uuid, i32)>> {
    let state = if ok { "done" } else { "failed" };
    let row: Option<(Uuid, i32)> = sqlx::query_as(
        "UPDATE crawl_pages SET state = $2 WHERE scrape_id = $1 AND state = 'scraping' \
         RETURNING crawl_id, depth",
    )
    .bind(scrape_id)
    .bind(state)
    .fetch_optional(&mut *conn)
    .await
    .context("finishing a crawl's page")?;
    if let Some((crawl_id, _)) = row {
        sqlx::query(
            "UPDATE crawls SET pages_done = pages_done + $2::int, \
                               pages_failed = pages_failed + (1 - $2::int) WHERE id = $1",
        )
        .bind(crawl_id)
        .bind(i32::from(ok))
        .execute(conn)
        .await
        .context("counting a crawl's page")?;
    }
    Ok(row)
}

/// Keep the parsed robots.txt.
pub async fn set_robots(conn: &mut PgConnection, id: Uuid, robots: &Value) -> anyhow::Result<()> {
    sqlx::query("UPDATE crawls SET robots = $2 WHERE id = $1")
        .bind(id)
        .bind(robots)
        .execute(conn)
        .await
        .context("keeping a crawl's robots.txt")?;
    Ok(())
}

/// End a running crawl as `status`; queued pages are skipped. Returns whether it was running.
pub async fn finish(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
    error: Option<&str>,
) -> anyhow::Result<bool> {
    let ended = sqlx::query(
        "UPDATE crawls SET status = $2, error = $3, finished_at = now() \
         WHERE id = $1 AND status = 'running'",
    )
    .bind(id)
    .bind(status)
    .bind(error)
    .execute(&mut *conn)
    .await
    .context("ending a crawl")?;
    sqlx::query(
        "UPDATE crawl_pages SET state = 'skipped' WHERE crawl_id = $1 AND state = 'queued'",
    )
    .bind(id)
    .execute(conn)
    .await
    .context("skipping a crawl's queued pages")?;
    Ok(ended.rows_affected() == 1)
}

/// The jobs of the pages loading now (to cancel with the crawl).
pub async fn loading_jobs(conn: &mut PgConnection, crawl_id: Uuid) -> anyhow::Result<Vec<Uuid>> {
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT s.job_id FROM crawl_pages p JOIN scrapes s ON s.id = p.scrape_id \
         WHERE p.crawl_id = $1 AND p.state = 'scraping'",
    )
    .bind(crawl_id)
    .fetch_all(conn)
    .await
    .context("listing a crawl's loading pages")?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// A queued page that cannot be scraped at all (its URL is refused): failed, and counted.
pub async fn fail_page(conn: &mut PgConnection, crawl_id: Uuid, url: &str) -> anyhow::Result<()> {
    mark(conn, crawl_id, url, "failed", None).await?;
    sqlx::query("UPDATE crawls SET pages_failed = pages_failed + 1 WHERE id = $1")
        .bind(crawl_id)
        .execute(conn)
        .await
        .context("counting a crawl's failed page")?;
    Ok(())
}

/// The scrape of job `job_id` when it is a crawl's page still loading.
pub async fn loading_scrape_of_job(
    conn: &mut PgConnection,
    job_id: Uuid,
) -> anyhow::Result<Option<Uuid>> {
    let row: Option<(Uuid,)> = sqlx::query_as(
        "SELECT s.id FROM scrapes s JOIN crawl_pages p ON p.scrape_id = s.id \
         WHERE s.job_id = $1 AND p.state = 'scraping'",
    )
    .bind(job_id)
    .fetch_optional(conn)
    .await
    .context("finding a crawl's page by its job")?;
    Ok(row.map(|(id,)| id))
}

/// Pages loading whose scrape job ended without finishing them (timed out, dead, cancelled,
/// pruned): failed, and counted. Returns how many.
pub async fn reap_lost_pages(conn: &mut PgConnection, crawl_id: Uuid) -> anyhow::Result<u64> {
    let lost: Vec<(String,)> = sqlx::query_as(
        "UPDATE crawl_pages p SET state = 'failed' \
         FROM scrapes s LEFT JOIN jobs j ON j.id = s.job_id \
         WHERE p.crawl_id = $1 AND p.state = 'scraping' AND s.id = p.scrape_id \
           AND (j.id IS NULL OR j.state IN ('dead', 'cancelled', 'succeeded')) \
         RETURNING p.url",
    )
    .bind(crawl_id)
    .fetch_all(&mut *conn)
    .await
    .context("reaping a crawl's lost pages")?;
    if !lost.is_empty() {
        sqlx::query("UPDATE crawls SET pages_failed = pages_failed + $2 WHERE id = $1")
            .bind(crawl_id)
            .bind(lost.len() as i32)
            .execute(conn)
            .await
            .context("counting a crawl's lost pages")?;
    }
    Ok(lost.len() as u64)
}
