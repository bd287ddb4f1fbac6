//! The `users` table.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::users::{NewUser, Role};

/// A stored user.
#[derive(Debug, Clone)]
pub struct User {
    /// Id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Contact address.
    pub email: Option<String>,
    /// Role.
    pub role: Role,
    /// Plan name.
    pub plan: String,
    /// IANA time zone of the quota resets; `None` uses the configured default.
    pub timezone: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

type UserRow = (
    Uuid,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    DateTime<Utc>,
);

fn from_row((id, name, email, role, plan, timezone, created_at): UserRow) -> anyhow::Result<User> {
    let role = role.parse().map_err(anyhow::Error::msg)?;
    Ok(User {
        id,
        name,
        email,
        role,
        plan,
        timezone,
        created_at,
    })
}

macro_rules! user_columns {
    () => {
        "id, name, email, role, plan, timezone, created_at"
    };
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    /// New display name.
    pub name: Option<String>,
    /// New contact address; `Some(None)` removes it.
    pub email: Option<Option<String>>,
    /// New role.
    pub role: Option<Role>,
    /// New plan.
    pub plan: Option<String>,
    /// New time zone; `Some(None)` returns to the default.
    pub timezone: Option<Option<String>>,
}

/// Apply `patch` to user `id`; `None` when there is no such user. A duplicate email is a
/// unique violation the caller turns into 409.
pub async fn update_user(
    conn: &mut PgConnection,
    id: Uuid,
    patch: &UserPatch,
) -> Result<Option<User>, sqlx::Error> {
    let row: Option<UserRow> = sqlx::query_as(concat!(
        "UPDATE users SET name = coalesce($2, name), \
             email = CASE WHEN $3 THEN $4 ELSE email END, \
             role = coalesce($5, role), plan = coalesce($6, plan), \
             timezone = CASE WHEN $7 THEN $8 ELSE timezone END, updated_at = now() \
         WHERE id = $1 RETURNING ",
        user_columns!()
    ))
    .bind(id)
    .bind(&patch.name)
    .bind(patch.email.is_some())
    .bind(patch.email.clone().flatten())
    .bind(patch.role.map(Role::as_str))
    .bind(&patch.plan)
    .bind(patch.timezone.is_some())
    .bind(patch.timezone.clone().flatten())
    .fetch_optional(conn)
    .await?;
    row.map(from_row)
        .transpose()
        .map_err(|e| sqlx::Error::Decode(e.into()))
}

/// Insert a user. A duplicate email is a unique violation the caller turns into 409.
pub async fn insert_user(conn: &mut PgConnection, user: &NewUser) -> Result<User, sqlx::Error> {
    let row: UserRow = sqlx::query_as(concat!(
        "INSERT INTO users (id, name, email, role, plan) VALUES ($1, $2, $3, $4, $5) \
         RETURNING ",
        user_columns!()
    ))
    .bind(Uuid::now_v7())
    .bind(&user.name)
    .bind(&user.email)
    .bind(user.role.as_str())
    .bind(&user.plan)
    .fetch_one(conn)
    .await?;
    from_row(row).map_err(|e| sqlx::Error::Decode(e.into()))
}

/// Find a user by id.
pub async fn find_user(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<Option<User>> {
    let row: Option<UserRow> = sqlx::query_as(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(from_row).transpose()
}

/// Users ordered by id (creation order), after `after`, at most `limit`.
pub async fn list_users(
    conn: &mut PgConnection,
    after: Option<Uuid>,
    limit: i64,
) -> anyhow::Result<Vec<User>> {
    let rows: Vec<UserRow> = sqlx::query_as(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE $1::uuid IS NULL OR id > $1 ORDER BY id LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(from_row).collect()
}

/// The oldest admin, if there is one.
pub async fn first_admin(conn: &mut PgConnection) -> anyhow::Result<Option<User>> {
    let row: Option<UserRow> = sqlx::query_as(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE role = 'admin' ORDER BY created_at, id LIMIT 1"
    ))
    .fetch_optional(conn)
    .await?;
    row.map(from_row).transpose()
}
