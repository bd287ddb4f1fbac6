//! Dashboard sessions (`ui_sessions`): created at sign-in from an API token, found by the hash
//! of the cookie's secret, ended at sign-out, with the token, or when they expire.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::users::Caller;

/// Keep a new session for `token_id`.
pub async fn create(
    db: impl PgExecutor<'_>,
    hash: &[u8],
    token_id: Uuid,
    csrf: &str,
    expires_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO ui_sessions (hash, token_id, csrf, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(hash)
    .bind(token_id)
    .bind(csrf)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// A live session as found: who, its CSRF token, and the event stream's last number when it
/// was read.
pub struct Found {
    /// The signed-in caller.
    pub caller: Caller,
    /// The session's CSRF token.
    pub csrf: String,
    /// `stream_head` at the time of the read: a page built after it shows every change up to
    /// this number, so its live view asks for the events after it.
    pub stream_seq: i64,
}

/// The caller and CSRF token of a live session whose token is not revoked, with the stream's
/// head read in the same statement (before anything the page shows).
pub async fn find(conn: &mut PgConnection, hash: &[u8]) -> anyhow::Result<Option<Found>> {
    let row: Option<(Uuid, Uuid, String, String, String, i64)> = sqlx::query_as(
        "SELECT t.id, t.user_id, u.role, u.plan, s.csrf, \
                (SELECT seq FROM stream_head WHERE id = 1) \
         FROM ui_sessions s JOIN api_tokens t ON t.id = s.token_id \
         JOIN users u ON u.id = t.user_id \
         WHERE s.hash = $1 AND s.expires_at > now() AND t.revoked_at IS NULL",
    )
    .bind(hash)
    .fetch_optional(conn)
    .await?;
    row.map(|(token_id, user_id, role, plan, csrf, stream_seq)| {
        Ok(Found {
            caller: super::tokens::caller_of_row((token_id, user_id, role, plan))?,
            csrf,
            stream_seq,
        })
    })
    .transpose()
}

/// End a session.
pub async fn delete(db: impl PgExecutor<'_>, hash: &[u8]) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM ui_sessions WHERE hash = $1")
        .bind(hash)
        .execute(db)
        .await?;
    Ok(())
}

/// Delete expired sessions; returns how many went.
pub async fn prune(db: impl PgExecutor<'_>) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM ui_sessions WHERE expires_at < now()")
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}
