//! The live event stream's tables (migration `event_stream`): triggers append each statement's
//! events to `stream_pending`; [`sequence`] numbers committed ones into `stream_events` in
//! commit order and announces the last number; readers fetch numbered batches with [`after`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::users::Caller;

/// The channel the sequencer announces new events on (payload: the last number).
pub const CHANNEL: &str = "workhorse_stream";

/// The channel a running summary's text is announced on as the model writes it (payload: a
/// JSON piece, see `summarise::stream`). Not numbered or kept: the stored summary is the truth.
pub const TOKENS_CHANNEL: &str = "workhorse_tokens";

/// The advisory lock that makes one daemon at a time the sequencer.
pub const SEQUENCER_LOCK: i64 = 0x0077_6f72_6b53_4551; // "workSEQ"

/// Numbered events as stored: event `i` of `events` has number `first_seq + i`.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Number of the first event.
    pub first_seq: i64,
    /// The events, a JSON array.
    pub events: Value,
}

/// Take the sequencer's lock on this connection, if no other session holds it.
pub async fn try_lock_sequencer(conn: &mut PgConnection) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(SEQUENCER_LOCK)
        .fetch_one(conn)
        .await
}

/// Number up to `max_rows` committed pending rows, oldest first, as one batch, and NOTIFY its
/// last number. Returns how many pending rows were moved (0: nothing was waiting) and the last
/// number given out. One statement: it commits or not as a whole.
pub async fn sequence(conn: &mut PgConnection, max_rows: i64) -> sqlx::Result<(i64, i64)> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "WITH moved AS ( \
             DELETE FROM stream_pending WHERE id IN \
                 (SELECT id FROM stream_pending ORDER BY id LIMIT $1) \
             RETURNING id, events), \
         agg AS ( \
             SELECT count(DISTINCT m.id) AS moved_rows, count(*) AS n, \
                    jsonb_agg(x.e ORDER BY m.id, x.i) AS events \
             FROM moved m CROSS JOIN LATERAL jsonb_array_elements(m.events) \
                 WITH ORDINALITY AS x(e, i)), \
         head AS ( \
             UPDATE stream_head SET seq = seq + agg.n FROM agg WHERE agg.n > 0 \
             RETURNING stream_head.seq, agg.n, agg.events, agg.moved_rows), \
         ins AS ( \
             INSERT INTO stream_events (first_seq, last_seq, events) \
             SELECT seq - n + 1, seq, events FROM head RETURNING last_seq) \
         SELECT head.moved_rows, ins.last_seq \
         FROM head, ins \
         WHERE pg_notify('workhorse_stream', ins.last_seq::text)::text IS NOT NULL",
    )
    .bind(max_rows)
    .fetch_optional(conn)
    .await?;
    Ok(row.unwrap_or((0, 0)))
}

/// The last number given out (0 before the first event).
pub async fn head<'e>(db: impl PgExecutor<'e>) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT seq FROM stream_head WHERE id = 1")
        .fetch_one(db)
        .await
}

/// The lowest number still kept, or `None` when every event was pruned.
pub async fn oldest<'e>(db: impl PgExecutor<'e>) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("SELECT min(first_seq) FROM stream_events")
        .fetch_one(db)
        .await
}

/// The batches holding events numbered above `after`, oldest first, at most `limit` batches.
pub async fn after<'e>(
    db: impl PgExecutor<'e>,
    after: i64,
    limit: i64,
) -> sqlx::Result<Vec<Batch>> {
    let rows: Vec<(i64, Value)> = sqlx::query_as(
        "SELECT first_seq, events FROM stream_events WHERE last_seq > $1 \
         ORDER BY first_seq LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(first_seq, events)| Batch { first_seq, events })
        .collect())
}

/// Append events written by the application itself (summary progress) in the caller's
/// transaction; each is a JSON object with at least `type` and `owner`.
pub async fn emit<'e>(db: impl PgExecutor<'e>, events: &[Value]) -> sqlx::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO stream_pending (events) \
         SELECT jsonb_agg(e || jsonb_build_object('at', now()) ORDER BY i) \
         FROM jsonb_array_elements($1) WITH ORDINALITY AS x(e, i)",
    )
    .bind(Value::Array(events.to_vec()))
    .execute(db)
    .await?;
    Ok(())
}

/// Delete batches older than `retention`; returns how many went.
pub async fn prune<'e>(db: impl PgExecutor<'e>, retention: Duration) -> sqlx::Result<u64> {
    let cutoff =
        Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let done = sqlx::query("DELETE FROM stream_events WHERE created_at < $1")
        .bind(cutoff)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Delete expired tickets.
pub async fn prune_tickets<'e>(db: impl PgExecutor<'e>) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM stream_tickets WHERE expires_at < now()")
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Keep a ticket's hash for the token that asked for it, until `expires_at`.
pub async fn create_ticket<'e>(
    db: impl PgExecutor<'e>,
    hash: &[u8],
    token_id: Uuid,
    expires_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO stream_tickets (hash, token_id, expires_at) VALUES ($1, $2, $3)")
        .bind(hash)
        .bind(token_id)
        .bind(expires_at)
        .execute(db)
        .await?;
    Ok(())
}

/// The caller a live ticket stands for: its token's user, as long as the token is not revoked.
pub async fn redeem_ticket(conn: &mut PgConnection, hash: &[u8]) -> anyhow::Result<Option<Caller>> {
    let row: Option<(Uuid, Uuid, String, String)> = sqlx::query_as(
        "SELECT t.id, t.user_id, u.role, u.plan \
         FROM stream_tickets s JOIN api_tokens t ON t.id = s.token_id \
         JOIN users u ON u.id = t.user_id \
         WHERE s.hash = $1 AND s.expires_at > now() AND t.revoked_at IS NULL",
    )
    .bind(hash)
    .fetch_optional(conn)
    .await?;
    row.map(super::tokens::caller_of_row).transpose()
}

/// A job's current state as a stream event object (without a number), if it exists and, with
/// `owner`, is that user's.
pub async fn job_snapshot<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    owner: Option<Uuid>,
) -> sqlx::Result<Option<Value>> {
    sqlx::query_scalar(
        "SELECT stream_job_event(j) FROM jobs j \
         WHERE j.id = $1 AND ($2::uuid IS NULL OR j.owner_id = $2)",
    )
    .bind(id)
    .bind(owner)
    .fetch_optional(db)
    .await
}
