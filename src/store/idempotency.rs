//! The `idempotency_keys` table: per user, the first answer to a POST that carried an
//! `Idempotency-Key`, claimed inside the transaction that does the work and kept for a day.

use std::time::Duration;

use anyhow::Context;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// How long a key is honoured; older rows are ignored (a new request takes the key over) and
/// may be pruned.
pub const KEY_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The first request made with a key, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRequest {
    /// SHA-256 of that request's method, path and body.
    pub fingerprint: Vec<u8>,
    /// Its answer's status; `None` only while its transaction runs (never seen once committed).
    pub status: Option<i16>,
    /// Its answer's JSON body, exactly as sent.
    pub body: Option<String>,
    /// Its answer's `Location` header.
    pub location: Option<String>,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is ours in this transaction: do the work, then [`save`] the answer.
    Claimed,
    /// An earlier request (committed, within [`KEY_LIFETIME`]) holds the key.
    Taken(StoredRequest),
}

type StoredRow = (Vec<u8>, Option<i16>, Option<String>, Option<String>);

/// Claim `key` for `user_id` on `conn`, which should be the transaction doing the work. A
/// concurrent request with the same key waits here until this transaction ends, then sees its
/// committed row (or takes the key if it rolled back). A row older than [`KEY_LIFETIME`] is
/// replaced.
pub async fn claim(
    conn: &mut PgConnection,
    user_id: Uuid,
    key: &str,
    fingerprint: &[u8],
) -> anyhow::Result<Claim> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 \
           AND created_at < now() - $3 * interval '1 millisecond'",
    )
    .bind(user_id)
    .bind(key)
    .bind(KEY_LIFETIME.as_millis() as f64)
    .execute(&mut *conn)
    .await
    .context("replacing an expired idempotency key")?;
    // The row may be pruned between the two statements below; then the next insert wins.
    for _ in 0..3 {
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys (user_id, key, fingerprint) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, key) DO NOTHING",
        )
        .bind(user_id)
        .bind(key)
        .bind(fingerprint)
        .execute(&mut *conn)
        .await
        .context("claiming an idempotency key")?;
        if claimed.rows_affected() == 1 {
            return Ok(Claim::Claimed);
        }
        let row: Option<StoredRow> = sqlx::query_as(
            "SELECT fingerprint, status, body::text, location FROM idempotency_keys \
             WHERE user_id = $1 AND key = $2",
        )
        .bind(user_id)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
        .context("reading an idempotency key")?;
        if let Some((fingerprint, status, body, location)) = row {
            return Ok(Claim::Taken(StoredRequest {
                fingerprint,
                status,
                body,
                location,
            }));
        }
    }
    anyhow::bail!("the idempotency key kept disappearing while it was being claimed")
}

/// Store the answer of the request that claimed `key`, in the same transaction. `body` must
/// be JSON (or `None` for an empty body).
pub async fn save(
    conn: &mut PgConnection,
    user_id: Uuid,
    key: &str,
    status: i16,
    body: Option<&str>,
    location: Option<&str>,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE idempotency_keys SET status = $3, body = $4::json, location = $5 \
         WHERE user_id = $1 AND key = $2",
    )
    .bind(user_id)
    .bind(key)
    .bind(status)
    .bind(body)
    .bind(location)
    .execute(conn)
    .await
    .context("saving the answer for an idempotency key")?;
    Ok(())
}

/// Delete keys created more than `older_than` ago; returns how many.
pub async fn prune_idempotency(
    db: impl PgExecutor<'_>,
    older_than: Duration,
) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE created_at < now() - $1 * interval '1 millisecond'",
    )
    .bind(older_than.as_millis() as f64)
    .execute(db)
    .await
    .context("pruning idempotency keys")?;
    Ok(done.rows_affected())
}
