//! What a user holds, counted for the plan bounds (`max_tokens`, `max_channels`,
//! `max_documents`, `max_live_jobs`), and the per-user lock that makes count-then-insert safe.

use anyhow::Context;
use sqlx::PgConnection;
use uuid::Uuid;

/// The stored objects a plan bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Unrevoked API tokens.
    Tokens,
    /// Notification channels.
    Channels,
    /// Documents.
    Documents,
    /// Pending, scheduled, running or retrying jobs.
    LiveJobs,
}

impl Held {
    fn count_sql(self) -> &'static str {
        match self {
            Held::Tokens => {
                "SELECT count(*) FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL"
            }
            Held::Channels => "SELECT count(*) FROM channels WHERE owner_id = $1",
            Held::Documents => "SELECT count(*) FROM documents WHERE owner_id = $1",
            Held::LiveJobs => {
                "SELECT count(*) FROM jobs WHERE owner_id = $1 \
                 AND state IN ('pending', 'running', 'retrying')"
            }
        }
    }

    /// A number that keys this object class's lock, distinct per class.
    fn lock_class(self) -> i32 {
        match self {
            Held::Tokens => 1,
            Held::Channels => 2,
            Held::Documents => 3,
            Held::LiveJobs => 4,
        }
    }
}

/// Take the transaction-scoped lock on `user_id`'s objects of one class, then count them.
/// Concurrent creations of one user and class queue on the lock until the first commits, so
/// a count taken here and an insert in the same transaction never pass the bound together.
pub async fn lock_and_count(
    conn: &mut PgConnection,
    user_id: Uuid,
    held: Held,
) -> anyhow::Result<i64> {
    // Two-key advisory lock: (class, a 32-bit hash of the user id); a hash collision only
    // makes two users wait for each other briefly.
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2::text))")
        .bind(held.lock_class())
        .bind(user_id)
        .execute(&mut *conn)
        .await
        .context("locking a user's objects for a plan bound")?;
    sqlx::query_scalar(held.count_sql())
        .bind(user_id)
        .fetch_one(&mut *conn)
        .await
        .with_context(|| format!("counting a user's {held:?}"))
}
