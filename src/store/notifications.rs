//! Channels and their topics, events, the delivery outbox, and the VAPID key pair.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use tracing::Instrument;
use uuid::Uuid;

use crate::domain::jobs::kinds;

use super::jobs;

/// A user's channel.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Channel {
    /// Id.
    pub id: Uuid,
    /// Its user.
    pub owner_id: Uuid,
    /// `webhook`, `fcm` or `webpush`.
    pub kind: String,
    /// Display name.
    pub name: String,
    /// Where deliveries go (kind-specific).
    pub target: Value,
    /// The webhook signing secret.
    pub secret: Option<String>,
    /// Whether deliveries go out.
    pub enabled: bool,
    /// Why it was turned off (e.g. FCM said the token is unregistered).
    pub disabled_reason: Option<String>,
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

macro_rules! channel_select {
    () => {
        "SELECT c.id, c.owner_id, c.kind, c.name, c.target, c.secret, c.enabled, \
                c.disabled_reason, c.created_at, \
                coalesce((SELECT array_agg(t.topic ORDER BY t.topic) FROM channel_topics t \
                          WHERE t.channel_id = c.id), '{}') AS topics \
         FROM channels c "
    };
}

/// Store a channel with its topics.
pub async fn insert_channel(
    conn: &mut PgConnection,
    owner_id: Uuid,
    kind: &str,
    name: &str,
    target: &Value,
    secret: Option<&str>,
    topics: &[String],
) -> anyhow::Result<Channel> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO channels (id, owner_id, kind, name, target, secret) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(owner_id)
    .bind(kind)
    .bind(name)
    .bind(target)
    .bind(secret)
    .execute(&mut *conn)
    .await
    .context("storing a channel")?;
    set_topics(&mut *conn, id, topics).await?;
    find_channel(&mut *conn, id, None)
        .await?
        .context("reading back a channel")
}

/// Replace a channel's topics.
pub async fn set_topics(
    conn: &mut PgConnection,
    channel_id: Uuid,
    topics: &[String],
) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM channel_topics WHERE channel_id = $1")
        .bind(channel_id)
        .execute(&mut *conn)
        .await
        .context("replacing channel topics")?;
    sqlx::query(
        "INSERT INTO channel_topics (channel_id, topic) \
         SELECT $1, t FROM unnest($2::text[]) AS t ON CONFLICT DO NOTHING",
    )
    .bind(channel_id)
    .bind(topics)
    .execute(&mut *conn)
    .await
    .context("storing channel topics")?;
    Ok(())
}

/// A channel; `owner` limits it to that user's.
pub async fn find_channel(
    db: impl PgExecutor<'_>,
    id: Uuid,
    owner: Option<Uuid>,
) -> anyhow::Result<Option<Channel>> {
    sqlx::query_as(concat!(
        channel_select!(),
        "WHERE c.id = $1 AND ($2::uuid IS NULL OR c.owner_id = $2)"
    ))
    .bind(id)
    .bind(owner)
    .fetch_optional(db)
    .await
    .context("reading a channel")
}

/// Channels, newest first; `owner` limits them to that user's.
pub async fn list_channels(
    db: impl PgExecutor<'_>,
    owner: Option<Uuid>,
) -> anyhow::Result<Vec<Channel>> {
    sqlx::query_as(concat!(
        channel_select!(),
        "WHERE $1::uuid IS NULL OR c.owner_id = $1 ORDER BY c.id DESC LIMIT 500"
    ))
    .bind(owner)
    .fetch_all(db)
    .await
    .context("listing channels")
}

/// Delete a channel (its deliveries go with it); whether it existed.
pub async fn delete_channel(
    db: impl PgExecutor<'_>,
    id: Uuid,
    owner: Option<Uuid>,
) -> anyhow::Result<bool> {
    let done =
        sqlx::query("DELETE FROM channels WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2)")
            .bind(id)
            .bind(owner)
            .execute(db)
            .await
            .context("deleting a channel")?;
    Ok(done.rows_affected() == 1)
}

/// Turn a channel on (`reason` None) or off with the reason.
pub async fn set_enabled(
    db: impl PgExecutor<'_>,
    id: Uuid,
    reason: Option<&str>,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE channels SET enabled = $2 IS NULL, disabled_reason = $2 WHERE id = $1")
        .bind(id)
        .bind(reason)
        .execute(db)
        .await
        .context("turning a channel on or off")?;
    Ok(())
}

/// An event to publish.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The topic, e.g. `scrapes.finished`.
    pub topic: String,
    /// The user it is about; `None`: every channel subscribed to the topic.
    pub owner_id: Option<Uuid>,
    /// What happened.
    pub payload: Value,
    /// Only this channel (a channel test), whatever its topics.
    pub only_channel: Option<Uuid>,
    /// Every enabled channel of the owner, whatever its topics (a request asked to be told).
    pub all_owner_channels: bool,
    /// Attempts each delivery gets.
    pub max_attempts: i32,
}

/// Record `event` and a delivery with its `notify` job for every enabled channel it goes to,
/// in the caller's transaction. Returns the event id and the delivery ids.
///
/// One statement, whatever the number of channels: the event, its targets, their jobs and
/// deliveries. Ids are UUIDv7 as elsewhere: each list's ids share a fresh id's leading 96 bits
/// (time and this process's counter) and count up in their last 32, in target order.
pub async fn publish(
    conn: &mut PgConnection,
    event: &NewEvent,
) -> anyhow::Result<(Uuid, Vec<Uuid>)> {
    let event_id = Uuid::now_v7();
    let (delivery_base, job_base) = (Uuid::now_v7(), Uuid::now_v7());
    let trace_context = crate::telemetry::current_trace_context();
    // One producer span for the fan-out's jobs; each job's attempts are its children.
    let span = tracing::info_span!(
        "enqueue",
        otel.name = format!("enqueue {}", kinds::NOTIFY),
        otel.kind = "producer",
        job.kind = kinds::NOTIFY,
        job.count = tracing::field::Empty,
    );
    let job_context = span.in_scope(crate::telemetry::current_trace_context);
    let deliveries: Vec<Uuid> = sqlx::query_scalar(
        "WITH event AS ( \
             INSERT INTO events (id, topic, owner_id, payload, trace_context) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id \
         ), targets AS ( \
             SELECT c.id AS channel_id, c.owner_id, \
                    (row_number() OVER (ORDER BY c.id) - 1)::int AS n \
             FROM channels c \
             WHERE c.enabled AND CASE WHEN $6::uuid IS NOT NULL THEN c.id = $6 \
                 ELSE ($3::uuid IS NULL OR c.owner_id = $3) \
                      AND (($7 AND $3::uuid IS NOT NULL) \
                           OR EXISTS (SELECT 1 FROM channel_topics t \
                                      WHERE t.channel_id = c.id AND t.topic = $2)) END \
         ), ids AS ( \
             SELECT channel_id, owner_id, n, \
                 encode(overlay(uuid_send($8) PLACING int4send(n) FROM 13 FOR 4), 'hex')::uuid \
                     AS delivery_id, \
                 encode(overlay(uuid_send($9) PLACING int4send(n) FROM 13 FOR 4), 'hex')::uuid \
                     AS job_id \
             FROM targets \
         ), queued AS ( \
             INSERT INTO jobs (id, kind, args, max_attempts, owner_id, trace_context) \
             SELECT job_id, $10, jsonb_build_object('delivery_id', delivery_id), $11, \
                    owner_id, $12 \
             FROM ids ORDER BY n RETURNING id \
         ), delivered AS ( \
             INSERT INTO deliveries (id, event_id, channel_id, owner_id, job_id) \
             SELECT i.delivery_id, e.id, i.channel_id, i.owner_id, q.id \
             FROM ids i CROSS JOIN event e JOIN queued q ON q.id = i.job_id \
             ORDER BY i.n RETURNING id \
         ) \
         SELECT id FROM delivered ORDER BY id",
    )
    .bind(event_id)
    .bind(&event.topic)
    .bind(event.owner_id)
    .bind(&event.payload)
    .bind(&trace_context)
    .bind(event.only_channel)
    .bind(event.all_owner_channels)
    .bind(delivery_base)
    .bind(job_base)
    .bind(kinds::NOTIFY)
    .bind(event.max_attempts)
    .bind(&job_context)
    .fetch_all(&mut *conn)
    .instrument(span.clone())
    .await
    .context("recording an event and its deliveries")?;
    if !deliveries.is_empty() {
        jobs::signal_enqueued();
    }
    span.record("job.count", deliveries.len());
    Ok((event_id, deliveries))
}

/// A delivery with its event and channel.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Delivery {
    /// Id (also the webhook's `webhook-id`: a repeat carries the same one).
    pub id: Uuid,
    /// The event.
    pub event_id: Uuid,
    /// The event's topic.
    pub topic: String,
    /// The event's payload.
    pub payload: Value,
    /// When the event happened.
    pub event_at: DateTime<Utc>,
    /// The channel.
    pub channel_id: Uuid,
    /// Its user.
    pub owner_id: Uuid,
    /// The job carrying it out.
    pub job_id: Uuid,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    /// Attempts made.
    pub attempts: i32,
    /// The last answer's HTTP status.
    pub last_status: Option<i32>,
    /// The last error.
    pub last_error: Option<String>,
    /// When the next attempt is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Delivered.
    pub delivered_at: Option<DateTime<Utc>>,
}

macro_rules! delivery_select {
    () => {
        "SELECT d.id, d.event_id, e.topic, e.payload, e.created_at AS event_at, d.channel_id, \
                d.owner_id, d.job_id, d.state, d.attempts, d.last_status, d.last_error, \
                d.next_attempt_at, d.created_at, d.delivered_at \
         FROM deliveries d JOIN events e ON e.id = d.event_id "
    };
}

/// A delivery; `owner` limits it to that user's.
pub async fn find_delivery(
    db: impl PgExecutor<'_>,
    id: Uuid,
    owner: Option<Uuid>,
) -> anyhow::Result<Option<Delivery>> {
    sqlx::query_as(concat!(
        delivery_select!(),
        "WHERE d.id = $1 AND ($2::uuid IS NULL OR d.owner_id = $2)"
    ))
    .bind(id)
    .bind(owner)
    .fetch_optional(db)
    .await
    .context("reading a delivery")
}

/// Deliveries newest first, optionally of one state and one channel, after the cursor.
pub async fn list_deliveries(
    db: impl PgExecutor<'_>,
    owner: Option<Uuid>,
    state: Option<&str>,
    channel: Option<Uuid>,
    before: Option<Uuid>,
    limit: i64,
) -> anyhow::Result<Vec<Delivery>> {
    sqlx::query_as(concat!(
        delivery_select!(),
        "WHERE ($1::uuid IS NULL OR d.owner_id = $1) AND ($2::text IS NULL OR d.state = $2) \
           AND ($3::uuid IS NULL OR d.channel_id = $3) AND ($4::uuid IS NULL OR d.id < $4) \
         ORDER BY d.id DESC LIMIT $5"
    ))
    .bind(owner)
    .bind(state)
    .bind(channel)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
    .context("listing deliveries")
}

/// Put a dead delivery back in work (its job too); whether it was dead.
pub async fn retry_delivery(
    conn: &mut PgConnection,
    id: Uuid,
    owner: Option<Uuid>,
) -> anyhow::Result<bool> {
    let job: Option<Uuid> = sqlx::query_scalar(
        "UPDATE deliveries SET state = 'pending', next_attempt_at = now() \
         WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2) AND state = 'dead' \
         RETURNING job_id",
    )
    .bind(id)
    .bind(owner)
    .fetch_optional(&mut *conn)
    .await
    .context("putting a delivery back")?;
    let Some(job) = job else { return Ok(false) };
    // The job is dead (or, after a crash, still about to become so): run it again.
    jobs::retry(
        &mut *conn,
        job,
        None,
        &crate::telemetry::current_trace_context(),
    )
    .await?;
    Ok(true)
}

/// The installation's VAPID private key, created by the first daemon that asks.
pub async fn vapid_private_key(db: &sqlx::PgPool, generated: &[u8]) -> anyhow::Result<Vec<u8>> {
    sqlx::query_scalar(
        "WITH created AS ( \
             INSERT INTO vapid_keys (id, private_key) VALUES (1, $1) \
             ON CONFLICT (id) DO NOTHING RETURNING private_key \
         ) \
         SELECT private_key FROM created UNION ALL SELECT private_key FROM vapid_keys \
         LIMIT 1",
    )
    .bind(generated)
    .fetch_one(db)
    .await
    .context("reading the VAPID key")
}
