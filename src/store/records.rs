//! The injector's `records`: reading them newest first, and per-category statistics.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

/// One stored record.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Record {
    /// Id (increasing).
    pub id: i64,
    /// The client it was injected for.
    pub client_id: String,
    /// When it was stamped.
    pub completed_at: DateTime<Utc>,
    /// The sample's id.
    pub transaction_id: String,
    /// Customer id.
    pub customer_id: String,
    /// Customer name.
    pub customer_name: String,
    /// Merchant.
    pub merchant: String,
    /// Category.
    pub category: String,
    /// Amount, as decimal text.
    pub amount: String,
    /// ISO 4217 currency.
    pub currency: String,
    /// Payment method.
    pub payment_method: String,
    /// ISO 3166 country.
    pub country: String,
    /// Last four card digits, when a card was used.
    pub card_last4: String,
    /// approved, declined or refunded.
    pub status: String,
}

/// Which records: a client, a time range, and a position to continue after.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    /// Only this client's.
    pub client_id: Option<String>,
    /// Completed at or after.
    pub from: Option<DateTime<Utc>>,
    /// Completed before.
    pub to: Option<DateTime<Utc>>,
    /// Continue after this (completed_at, id), newest first.
    pub after: Option<(DateTime<Utc>, i64)>,
}

/// Records newest first, at most `limit`.
pub async fn list(
    db: impl PgExecutor<'_>,
    filter: &RecordFilter,
    limit: i64,
) -> anyhow::Result<Vec<Record>> {
    let (after_at, after_id) = filter.after.unzip();
    sqlx::query_as(
        "SELECT id, client_id, completed_at, transaction_id, customer_id, customer_name, \
                merchant, category, amount::text AS amount, currency, payment_method, country, \
                card_last4, status \
         FROM records \
         WHERE ($1::text IS NULL OR client_id = $1) \
           AND ($2::timestamptz IS NULL OR completed_at >= $2) \
           AND ($3::timestamptz IS NULL OR completed_at < $3) \
           AND ($4::timestamptz IS NULL OR (completed_at, id) < ($4, $5)) \
         ORDER BY completed_at DESC, id DESC LIMIT $6",
    )
    .bind(&filter.client_id)
    .bind(filter.from)
    .bind(filter.to)
    .bind(after_at)
    .bind(after_id)
    .bind(limit)
    .fetch_all(db)
    .await
    .context("listing records")
}

/// Count and sum of amounts by category (amounts summed as stored, whatever the currency).
pub async fn stats(
    db: impl PgExecutor<'_>,
    filter: &RecordFilter,
) -> anyhow::Result<Vec<(String, i64, String)>> {
    sqlx::query_as(
        "SELECT category, count(*), sum(amount)::text FROM records \
         WHERE ($1::text IS NULL OR client_id = $1) \
           AND ($2::timestamptz IS NULL OR completed_at >= $2) \
           AND ($3::timestamptz IS NULL OR completed_at < $3) \
         GROUP BY category ORDER BY category",
    )
    .bind(&filter.client_id)
    .bind(filter.from)
    .bind(filter.to)
    .fetch_all(db)
    .await
    .context("computing record statistics")
}
