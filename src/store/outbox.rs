//! The delivery outbox as the `notify` job works it: a delivery with its event and channel in
//! one read, and attempts recorded many to a statement.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::notifications::{Channel, Delivery};

/// A delivery to carry out, with its channel (a channel's deletion removes its deliveries, so
/// a delivery found has one). The channel's topics are not read: sending needs none.
pub async fn find_outgoing(
    db: impl PgExecutor<'_>,
    id: Uuid,
    owner: Option<Uuid>,
) -> anyhow::Result<Option<(Delivery, Channel)>> {
    let row: Option<OutgoingRow> = sqlx::query_as(
        "SELECT d.id, d.event_id, e.topic, e.payload, e.created_at AS event_at, d.channel_id, \
                d.owner_id, d.job_id, d.state, d.attempts, d.last_status, d.last_error, \
                d.next_attempt_at, d.created_at, d.delivered_at, \
                c.kind AS channel_kind, c.name AS channel_name, c.target AS channel_target, \
                c.secret AS channel_secret, c.enabled AS channel_enabled, \
                c.disabled_reason AS channel_disabled_reason, \
                c.created_at AS channel_created_at \
         FROM deliveries d JOIN events e ON e.id = d.event_id \
              JOIN channels c ON c.id = d.channel_id \
         WHERE d.id = $1 AND ($2::uuid IS NULL OR d.owner_id = $2)",
    )
    .bind(id)
    .bind(owner)
    .fetch_optional(db)
    .await
    .context("reading a delivery and its channel")?;
    Ok(row.map(OutgoingRow::split))
}

#[derive(sqlx::FromRow)]
struct OutgoingRow {
    #[sqlx(flatten)]
    delivery: Delivery,
    channel_kind: String,
    channel_name: String,
    channel_target: Value,
    channel_secret: Option<String>,
    channel_enabled: bool,
    channel_disabled_reason: Option<String>,
    channel_created_at: DateTime<Utc>,
}

impl OutgoingRow {
    fn split(self) -> (Delivery, Channel) {
        let channel = Channel {
            id: self.delivery.channel_id,
            owner_id: self.delivery.owner_id,
            kind: self.channel_kind,
            name: self.channel_name,
            target: self.channel_target,
            secret: self.channel_secret,
            enabled: self.channel_enabled,
            disabled_reason: self.channel_disabled_reason,
            topics: Vec::new(),
            created_at: self.channel_created_at,
        };
        (self.delivery, channel)
    }
}

/// One attempt's outcome, as the delivery keeps it.
#[derive(Debug, Clone)]
pub struct Attempted {
    /// The delivery.
    pub id: Uuid,
    /// Attempts made, this one included.
    pub attempt: i32,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<i32>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// `delivered`, `pending` (to be tried again) or `dead`.
    pub state: &'static str,
    /// When the next attempt is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Record attempts of distinct deliveries in one statement: the attempt count, the last status
/// and error, the state and when the next attempt is due (`delivered_at` set on delivery).
pub async fn record_attempts(
    db: impl PgExecutor<'_>,
    attempts: &[Attempted],
) -> anyhow::Result<()> {
    let ids: Vec<Uuid> = attempts.iter().map(|a| a.id).collect();
    let numbers: Vec<i32> = attempts.iter().map(|a| a.attempt).collect();
    let statuses: Vec<Option<i32>> = attempts.iter().map(|a| a.status).collect();
    let errors: Vec<Option<&str>> = attempts.iter().map(|a| a.error.as_deref()).collect();
    let states: Vec<&str> = attempts.iter().map(|a| a.state).collect();
    let next: Vec<Option<DateTime<Utc>>> = attempts.iter().map(|a| a.next_attempt_at).collect();
    sqlx::query(
        "UPDATE deliveries d SET attempts = t.attempts, last_status = t.status, \
                last_error = t.error, state = t.state, next_attempt_at = t.next, \
                delivered_at = CASE WHEN t.state = 'delivered' THEN now() ELSE d.delivered_at END \
         FROM unnest($1::uuid[], $2::int[], $3::int[], $4::text[], $5::text[], \
                     $6::timestamptz[]) AS t(id, attempts, status, error, state, next) \
         WHERE d.id = t.id",
    )
    .bind(&ids)
    .bind(&numbers)
    .bind(&statuses)
    .bind(&errors)
    .bind(&states)
    .bind(&next)
    .execute(db)
    .await
    .context("recording delivery attempts")?;
    Ok(())
}
