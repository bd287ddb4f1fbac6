//! The `documents` table: pasted texts and scraped pages.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

/// A stored document.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Document {
    /// Id.
    pub id: Uuid,
    /// The user it belongs to.
    pub owner_id: Uuid,
    /// Title.
    pub title: String,
    /// The text (empty in listings).
    pub text: String,
    /// Length of the text in bytes.
    pub size: i32,
    /// `upload` or `scrape`.
    pub source: String,
    /// The scraped page.
    pub source_url: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// Where a document's text came from: `upload` (this module's [`insert`]) or `scrape`
/// (`store::scrapes`, when a scrape succeeds).
pub const SOURCES: [&str; 2] = ["upload", "scrape"];

/// Store a pasted document.
pub async fn insert(
    db: impl PgExecutor<'_>,
    owner_id: Uuid,
    title: &str,
    text: &str,
) -> anyhow::Result<Document> {
    sqlx::query_as(
        "INSERT INTO documents (id, owner_id, title, text, source) VALUES ($1, $2, $3, $4, 'upload') \
         RETURNING id, owner_id, title, text, octet_length(text) AS size, source, source_url, \
                   created_at",
    )
    .bind(Uuid::now_v7())
    .bind(owner_id)
    .bind(title)
    .bind(text)
    .fetch_one(db)
    .await
    .context("storing a document")
}

/// A document with its text; `owner` limits it to that user's.
pub async fn find(
    db: impl PgExecutor<'_>,
    id: Uuid,
    owner: Option<Uuid>,
) -> anyhow::Result<Option<Document>> {
    sqlx::query_as(
        "SELECT id, owner_id, title, text, octet_length(text) AS size, source, source_url, \
                created_at \
         FROM documents WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2)",
    )
    .bind(id)
    .bind(owner)
    .fetch_optional(db)
    .await
    .context("reading a document")
}

/// Documents newest first without their text, after the cursor `before`, at most `limit`.
pub async fn list(
    db: impl PgExecutor<'_>,
    owner: Option<Uuid>,
    before: Option<Uuid>,
    limit: i64,
) -> anyhow::Result<Vec<Document>> {
    sqlx::query_as(
        "SELECT id, owner_id, title, '' AS text, octet_length(text) AS size, source, source_url, \
                created_at \
         FROM documents \
         WHERE ($1::uuid IS NULL OR owner_id = $1) AND ($2::uuid IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3",
    )
    .bind(owner)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
    .context("listing documents")
}

/// Delete a document (and its summaries); whether it existed.
pub async fn delete(
    db: impl PgExecutor<'_>,
    id: Uuid,
    owner: Option<Uuid>,
) -> anyhow::Result<bool> {
    let done =
        sqlx::query("DELETE FROM documents WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2)")
            .bind(id)
            .bind(owner)
            .execute(db)
            .await
            .context("deleting a document")?;
    Ok(done.rows_affected() == 1)
}
