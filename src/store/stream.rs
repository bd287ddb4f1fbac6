//! The live event stream's tables (migrations `event_stream`, `stream_changes`): triggers
//! append each statement's events to `stream_changes` (job changes column-wise, others as
//! JSON); [`sequence`] numbers committed rows where they are, in commit order, and announces
//! the last number; readers fetch numbered rows with [`after`], as JSON events.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
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

/// Number up to `max_rows` committed rows not numbered yet, oldest first, and NOTIFY the last
/// number; and wake the workers of each kind with new pending jobs among them (a NOTIFY on
/// the job engine's channel per kind: enqueues do not notify themselves). Returns how many
/// rows were numbered (0: nothing was waiting) and the last number given out. One
/// statement: it commits or not as a whole.
pub async fn sequence(conn: &mut PgConnection, max_rows: i64) -> sqlx::Result<(i64, i64)> {
    let row: Option<(i64, i64, i64)> = sqlx::query_as(
        "WITH next AS ( \
             SELECT id, n, sum(n) OVER (ORDER BY id) AS upto FROM ( \
                 SELECT id, n FROM stream_changes WHERE first_seq IS NULL \
                 ORDER BY id LIMIT $1) AS waiting), \
         total AS (SELECT count(*) AS rows, coalesce(max(upto), 0) AS n FROM next), \
         head AS ( \
             UPDATE stream_head SET seq = seq + total.n FROM total WHERE total.n > 0 \
             RETURNING stream_head.seq - total.n AS base, stream_head.seq, total.rows), \
         numbered AS ( \
             UPDATE stream_changes c \
             SET first_seq = head.base + next.upto - next.n + 1, last_seq = head.base + next.upto \
             FROM next, head WHERE c.id = next.id), \
         woken AS ( \
             SELECT DISTINCT u.kind FROM next JOIN stream_changes c ON c.id = next.id, \
                 unnest(c.kind, c.state) AS u(kind, state) \
             WHERE c.job IS NOT NULL AND u.state = 'pending') \
         SELECT head.rows, head.seq, \
                (SELECT count(pg_notify('workhorse_jobs', kind)) FROM woken) \
         FROM head \
         WHERE pg_notify('workhorse_stream', head.seq::text)::text IS NOT NULL",
    )
    .bind(max_rows)
    .fetch_optional(conn)
    .await?;
    Ok(row.map_or((0, 0), |(rows, seq, _)| (rows, seq)))
}

/// The last number given out (0 before the first event).
pub async fn head<'e>(db: impl PgExecutor<'e>) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT seq FROM stream_head WHERE id = 1")
        .fetch_one(db)
        .await
}

/// The lowest number still kept, or `None` when every event was pruned.
pub async fn oldest<'e>(db: impl PgExecutor<'e>) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "SELECT first_seq FROM stream_changes WHERE last_seq IS NOT NULL \
         ORDER BY last_seq LIMIT 1",
    )
    .fetch_optional(db)
    .await
}

/// A numbered row as stored: job changes column-wise, or JSON events.
#[derive(sqlx::FromRow)]
struct Changes {
    first_seq: i64,
    at: DateTime<Utc>,
    job: Option<Vec<Uuid>>,
    owner: Option<Vec<Option<Uuid>>>,
    kind: Option<Vec<String>>,
    state: Option<Vec<String>>,
    attempt: Option<Vec<i32>>,
    max_attempts: Option<Vec<i32>>,
    error: Option<Vec<Option<String>>>,
    scrape: Option<Vec<Option<String>>>,
    summary: Option<Vec<Option<String>>>,
    events: Option<Value>,
}

impl Changes {
    /// The row's events as the stream sends them, each with the row's `at`.
    fn into_batch(self) -> Batch {
        let at = Value::String(self.at.to_rfc3339_opts(SecondsFormat::Micros, false));
        let events = match (self.events, self.job) {
            (Some(Value::Array(mut events)), _) => {
                for event in &mut events {
                    if let Some(object) = event.as_object_mut() {
                        object.entry("at").or_insert_with(|| at.clone());
                    }
                }
                events
            }
            (_, Some(jobs)) => {
                let column = JobColumns {
                    owner: self.owner.unwrap_or_default(),
                    kind: self.kind.unwrap_or_default(),
                    state: self.state.unwrap_or_default(),
                    attempt: self.attempt.unwrap_or_default(),
                    max_attempts: self.max_attempts.unwrap_or_default(),
                    error: self.error.unwrap_or_default(),
                    scrape: self.scrape.unwrap_or_default(),
                    summary: self.summary.unwrap_or_default(),
                };
                (jobs.iter().enumerate())
                    .map(|(i, job)| column.event(i, *job, &at))
                    .collect()
            }
            _ => Vec::new(),
        };
        Batch {
            first_seq: self.first_seq,
            events: Value::Array(events),
        }
    }
}

/// A statement's job changes, one array per field.
struct JobColumns {
    owner: Vec<Option<Uuid>>,
    kind: Vec<String>,
    state: Vec<String>,
    attempt: Vec<i32>,
    max_attempts: Vec<i32>,
    error: Vec<Option<String>>,
    scrape: Vec<Option<String>>,
    summary: Vec<Option<String>>,
}

impl JobColumns {
    /// Job `i`'s event, as `stream_job_event` (migration `event_stream`) writes a snapshot.
    fn event(&self, i: usize, job: Uuid, at: &Value) -> Value {
        let state = self.state.get(i).map_or("", String::as_str);
        let mut event = serde_json::Map::new();
        let kind = if state == "pending" { "queued" } else { state };
        event.insert("type".into(), Value::String(format!("job.{kind}")));
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                event.insert(key.into(), value);
            }
        };
        let text = |column: &[Option<String>]| column.get(i).cloned().flatten().map(Value::from);
        put(
            "owner",
            self.owner
                .get(i)
                .copied()
                .flatten()
                .map(|o| o.to_string().into()),
        );
        put("at", Some(at.clone()));
        put("job", Some(job.to_string().into()));
        put("kind", self.kind.get(i).cloned().map(Value::from));
        put("state", Some(state.into()));
        put("attempt", self.attempt.get(i).copied().map(Value::from));
        put(
            "max_attempts",
            self.max_attempts.get(i).copied().map(Value::from),
        );
        put("error", text(&self.error));
        put("scrape", text(&self.scrape));
        put("summary", text(&self.summary));
        Value::Object(event)
    }
}

/// The numbered rows holding events numbered above `after`, oldest first, at most `limit`
/// rows, as batches of JSON events.
pub async fn after<'e>(
    db: impl PgExecutor<'e>,
    after: i64,
    limit: i64,
) -> sqlx::Result<Vec<Batch>> {
    let rows: Vec<Changes> = sqlx::query_as(
        "SELECT first_seq, at, job, owner, kind, state, attempt, max_attempts, error, scrape, \
                summary, events \
         FROM stream_changes WHERE last_seq > $1 ORDER BY last_seq LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Changes::into_batch).collect())
}

/// Append events written by the application itself (summary progress) in the caller's
/// transaction; each is a JSON object with at least `type` and `owner`.
pub async fn emit<'e>(db: impl PgExecutor<'e>, events: &[Value]) -> sqlx::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    sqlx::query("INSERT INTO stream_changes (n, events) SELECT jsonb_array_length($1), $1")
        .bind(Value::Array(events.to_vec()))
        .execute(db)
        .await?;
    Ok(())
}

/// Delete numbered rows older than `retention`; returns how many went.
pub async fn prune<'e>(db: impl PgExecutor<'e>, retention: Duration) -> sqlx::Result<u64> {
    let cutoff =
        Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let done = sqlx::query("DELETE FROM stream_changes WHERE last_seq IS NOT NULL AND at < $1")
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
