//! Summaries, their persisted chunk results, and the summary cache.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// A stored summary, with the state of its job while it exists.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Summary {
    /// Id.
    pub id: Uuid,
    /// The user it is for.
    pub owner_id: Uuid,
    /// The document summarised.
    pub document_id: Uuid,
    /// The job doing it.
    pub job_id: Uuid,
    /// style, length, language, provider.
    pub options: Value,
    /// `succeeded` or `failed` once finished.
    pub outcome: Option<String>,
    /// The summary.
    pub text: Option<String>,
    /// The provider that answered (`builtin` for the extractive summariser).
    pub provider: Option<String>,
    /// Its model.
    pub model: Option<String>,
    /// Made by the built-in summariser.
    pub builtin: bool,
    /// Taken from the cache.
    pub cached: bool,
    /// Tokens sent, over all calls.
    pub tokens_in: i32,
    /// Tokens received, over all calls.
    pub tokens_out: i32,
    /// Chunks the document was split into (1 when it fit).
    pub chunks: i32,
    /// Model calls made.
    pub model_calls: i32,
    /// Why it failed.
    pub error: Option<String>,
    /// Attempts made.
    pub attempts: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// The first attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// Finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// The job's stored state, while the job exists.
    pub job_state: Option<String>,
    /// The job's `run_at`.
    pub job_run_at: Option<DateTime<Utc>>,
}

/// Record a requested summary, in the transaction that enqueues its job.
pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    owner_id: Uuid,
    document_id: Uuid,
    job_id: Uuid,
    options: &Value,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO summaries (id, owner_id, document_id, job_id, options) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(owner_id)
    .bind(document_id)
    .bind(job_id)
    .bind(options)
    .execute(conn)
    .await
    .context("recording a summary request")?;
    Ok(())
}

/// The columns of a [`Summary`], over `summaries s LEFT JOIN jobs j`.
macro_rules! summary_columns {
    () => {
        "s.id, s.owner_id, s.document_id, s.job_id, s.options, s.outcome, s.text, \
         s.provider, s.model, s.builtin, s.cached, s.tokens_in, s.tokens_out, s.chunks, \
         s.model_calls, s.error, s.attempts, s.created_at, s.started_at, s.finished_at, \
         j.state AS job_state, j.run_at AS job_run_at"
    };
}

/// A summary; `owner` limits it to that user's.
pub async fn find(
    db: impl PgExecutor<'_>,
    id: Uuid,
    owner: Option<Uuid>,
) -> anyhow::Result<Option<Summary>> {
    sqlx::query_as(concat!(
        "SELECT ",
        summary_columns!(),
        " FROM summaries s LEFT JOIN jobs j ON j.id = s.job_id \
          WHERE s.id = $1 AND ($2::uuid IS NULL OR s.owner_id = $2)"
    ))
    .bind(id)
    .bind(owner)
    .fetch_optional(db)
    .await
    .context("reading a summary")
}

/// A summary in a listing, with its document's title.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Listed {
    /// The summary.
    #[sqlx(flatten)]
    pub summary: Summary,
    /// The title of the document summarised.
    pub document_title: String,
}

/// Which summaries to list: `owner`'s (all when `None`), of one `document`, older than the
/// cursor `before`, at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct SummaryFilter {
    /// Only this user's.
    pub owner: Option<Uuid>,
    /// Only this document's.
    pub document: Option<Uuid>,
    /// Only those older than this one (the previous page's last).
    pub before: Option<Uuid>,
    /// At most this many.
    pub limit: i64,
}

/// Summaries newest first, with their documents' titles.
pub async fn list(db: impl PgExecutor<'_>, filter: &SummaryFilter) -> anyhow::Result<Vec<Listed>> {
    sqlx::query_as(concat!(
        "SELECT ",
        summary_columns!(),
        ", d.title AS document_title \
          FROM summaries s JOIN documents d ON d.id = s.document_id \
          LEFT JOIN jobs j ON j.id = s.job_id \
          WHERE ($1::uuid IS NULL OR s.owner_id = $1) AND ($2::uuid IS NULL OR s.document_id = $2) \
            AND ($3::uuid IS NULL OR s.id < $3) \
          ORDER BY s.id DESC LIMIT $4"
    ))
    .bind(filter.owner)
    .bind(filter.document)
    .bind(filter.before)
    .bind(filter.limit)
    .fetch_all(db)
    .await
    .context("listing summaries")
}

/// Note that an attempt started.
pub async fn started(db: impl PgExecutor<'_>, id: Uuid, attempt: i32) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE summaries SET attempts = $2, started_at = coalesce(started_at, now()) \
         WHERE id = $1",
    )
    .bind(id)
    .bind(attempt)
    .execute(db)
    .await
    .context("marking a summary started")?;
    Ok(())
}

/// A finished summary's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Done {
    /// The summary.
    pub text: String,
    /// Who made it (`builtin` for the extractive summariser).
    pub provider: String,
    /// Its model.
    pub model: String,
    /// Made by the built-in summariser.
    pub builtin: bool,
    /// Tokens sent.
    pub tokens_in: i32,
    /// Tokens received.
    pub tokens_out: i32,
    /// Chunks.
    pub chunks: i32,
    /// Model calls.
    pub model_calls: i32,
}

/// Record a finished summary; `cache_key` also stores it in the cache.
pub async fn succeeded(
    conn: &mut PgConnection,
    id: Uuid,
    done: &Done,
    cached: bool,
    cache_key: Option<&str>,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE summaries SET outcome = 'succeeded', text = $2, provider = $3, model = $4, \
                builtin = $5, cached = $6, tokens_in = $7, tokens_out = $8, chunks = $9, \
                model_calls = $10, error = NULL, finished_at = now() \
         WHERE id = $1",
    )
    .bind(id)
    .bind(&done.text)
    .bind(&done.provider)
    .bind(&done.model)
    .bind(done.builtin)
    .bind(cached)
    .bind(done.tokens_in)
    .bind(done.tokens_out)
    .bind(done.chunks)
    .bind(done.model_calls)
    .execute(&mut *conn)
    .await
    .context("recording a summary")?;
    if let Some(key) = cache_key {
        sqlx::query(
            "INSERT INTO summary_cache (key, text, provider, model, builtin, tokens_in, \
                                        tokens_out, chunks) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(&done.text)
        .bind(&done.provider)
        .bind(&done.model)
        .bind(done.builtin)
        .bind(done.tokens_in)
        .bind(done.tokens_out)
        .bind(done.chunks)
        .execute(&mut *conn)
        .await
        .context("caching a summary")?;
    }
    Ok(())
}

/// Record an attempt's error; `last` marks the summary failed for good.
pub async fn failed(
    db: impl PgExecutor<'_>,
    id: Uuid,
    error: &str,
    last: bool,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE summaries SET error = $2, \
                outcome = CASE WHEN $3 THEN 'failed' ELSE outcome END, \
                finished_at = CASE WHEN $3 THEN now() ELSE finished_at END \
         WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(last)
    .execute(db)
    .await
    .context("recording a summary's error")?;
    Ok(())
}

/// A cached answer.
pub async fn cached(db: impl PgExecutor<'_>, key: &str) -> anyhow::Result<Option<Done>> {
    let row: Option<(String, String, String, bool, i32, i32, i32)> = sqlx::query_as(
        "SELECT text, provider, model, builtin, tokens_in, tokens_out, chunks \
         FROM summary_cache WHERE key = $1",
    )
    .bind(key)
    .fetch_optional(db)
    .await
    .context("reading the summary cache")?;
    Ok(row.map(
        |(text, provider, model, builtin, tokens_in, tokens_out, chunks)| Done {
            text,
            provider,
            model,
            builtin,
            tokens_in,
            tokens_out,
            chunks,
            model_calls: 0,
        },
    ))
}

/// A chunk's result, kept so that a restarted job resumes after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The chunk's summary.
    pub text: String,
    /// Tokens sent.
    pub tokens_in: i32,
    /// Tokens received.
    pub tokens_out: i32,
    /// The provider that answered.
    pub provider: String,
    /// Its model.
    pub model: String,
}

/// The chunk results of `round` kept so far, by index.
pub async fn chunks(
    db: impl PgExecutor<'_>,
    id: Uuid,
    round: i32,
) -> anyhow::Result<Vec<(i32, Chunk)>> {
    let rows: Vec<(i32, String, i32, i32, String, String)> = sqlx::query_as(
        "SELECT idx, text, tokens_in, tokens_out, provider, model FROM summary_chunks \
         WHERE summary_id = $1 AND round = $2 ORDER BY idx",
    )
    .bind(id)
    .bind(round)
    .fetch_all(db)
    .await
    .context("reading summary chunks")?;
    Ok(rows
        .into_iter()
        .map(|(idx, text, tokens_in, tokens_out, provider, model)| {
            (
                idx,
                Chunk {
                    text,
                    tokens_in,
                    tokens_out,
                    provider,
                    model,
                },
            )
        })
        .collect())
}

/// Keep a chunk's result (committed at once, so a restart resumes after it).
pub async fn save_chunk(
    db: impl PgExecutor<'_>,
    id: Uuid,
    round: i32,
    idx: i32,
    chunk: &Chunk,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO summary_chunks (summary_id, round, idx, text, provider, model, tokens_in, \
                                     tokens_out) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(round)
    .bind(idx)
    .bind(&chunk.text)
    .bind(&chunk.provider)
    .bind(&chunk.model)
    .bind(chunk.tokens_in)
    .bind(chunk.tokens_out)
    .execute(db)
    .await
    .context("keeping a summary chunk")?;
    Ok(())
}

/// Send a piece of a summary being made to whoever listens on `channel` (`pg_notify`, so on a
/// pool it goes out at once, outside any transaction). The payload stays under PostgreSQL's
/// 8000-byte limit; the caller splits longer ones.
pub async fn notify_tokens(
    db: impl PgExecutor<'_>,
    channel: &str,
    payload: &str,
) -> anyhow::Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(db)
        .await
        .context("sending a summary's tokens")?;
    Ok(())
}
