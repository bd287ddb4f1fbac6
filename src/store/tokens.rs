//! The `api_tokens` table: bearer tokens stored as hashes, revocable, with last-used time.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::tokens::MintedToken;
use crate::domain::users::Caller;

/// A stored token, without its secret.
#[derive(Debug, Clone)]
pub struct Token {
    /// Id.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// What the token is for, as its creator named it.
    pub name: String,
    /// First characters of the secret.
    pub prefix: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last time it authenticated a request (updated at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

type TokenRow = (
    Uuid,
    Uuid,
    String,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

fn from_row(r: TokenRow) -> Token {
    Token {
        id: r.0,
        user_id: r.1,
        name: r.2,
        prefix: r.3,
        created_at: r.4,
        last_used_at: r.5,
        revoked_at: r.6,
    }
}

macro_rules! token_columns {
    () => {
        "id, user_id, name, prefix, created_at, last_used_at, revoked_at"
    };
}

/// Store a minted token for `user_id`.
pub async fn insert_token(
    conn: &mut PgConnection,
    user_id: Uuid,
    name: &str,
    minted: &MintedToken,
) -> anyhow::Result<Token> {
    let row: TokenRow = sqlx::query_as(concat!("INSERT INTO api_tokens (id, user_id, name, prefix, token_hash) VALUES ($1, $2, $3, $4, $5) \
         RETURNING ", token_columns!()))
    .bind(Uuid::now_v7())
    .bind(user_id)
    .bind(name)
    .bind(&minted.prefix)
    .bind(&minted.hash)
    .fetch_one(conn)
    .await?;
    Ok(from_row(row))
}

/// Look up the caller of an unrevoked token by its hash and note that it was used. The
/// last-used time is written at most once a minute so busy tokens do not turn every request
/// into a write.
pub async fn authenticate(conn: &mut PgConnection, hash: &[u8]) -> anyhow::Result<Option<Caller>> {
    let row: Option<(Uuid, Uuid, String, String)> = sqlx::query_as(
        "WITH found AS ( \
             SELECT t.id, t.user_id, u.role, u.plan, t.last_used_at \
             FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL \
         ), touched AS ( \
             UPDATE api_tokens SET last_used_at = now() \
             WHERE id = (SELECT id FROM found) \
               AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute') \
         ) \
         SELECT id, user_id, role, plan FROM found",
    )
    .bind(hash)
    .fetch_optional(conn)
    .await?;
    row.map(caller_of_row).transpose()
}

/// Note that the tokens `ids` authenticated requests (served from the API's token cache):
/// their last-used time, kept to the minute, in one statement.
pub async fn touch(conn: &mut PgConnection, ids: &[Uuid]) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE api_tokens SET last_used_at = now() \
         WHERE id = ANY($1) \
           AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
    )
    .bind(ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// The caller a token row stands for: `(token id, user id, role, plan)`, as the token, ticket
/// and session lookups read it.
pub(crate) fn caller_of_row(
    (token_id, user_id, role, plan): (Uuid, Uuid, String, String),
) -> anyhow::Result<Caller> {
    Ok(Caller {
        user_id,
        role: role.parse().map_err(anyhow::Error::msg)?,
        token_id: Some(token_id),
        plan,
    })
}

/// Tokens of a user, newest first.
pub async fn list_tokens(conn: &mut PgConnection, user_id: Uuid) -> anyhow::Result<Vec<Token>> {
    let rows: Vec<TokenRow> = sqlx::query_as(concat!(
        "SELECT ",
        token_columns!(),
        " FROM api_tokens WHERE user_id = $1 ORDER BY id DESC"
    ))
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// Find a token by id; with `owner`, only if it belongs to that user.
pub async fn find_token(
    conn: &mut PgConnection,
    id: Uuid,
    owner: Option<Uuid>,
) -> anyhow::Result<Option<Token>> {
    let row: Option<TokenRow> = sqlx::query_as(concat!(
        "SELECT ",
        token_columns!(),
        " FROM api_tokens WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2)"
    ))
    .bind(id)
    .bind(owner)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(from_row))
}

/// Revoke a token (idempotent: an already revoked token keeps its first revocation time).
pub async fn revoke_token(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<()> {
    sqlx::query("UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
