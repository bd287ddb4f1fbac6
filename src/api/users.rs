//! `/v1/users` and `/v1/me`: who may use the API.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use uuid::Uuid;

use super::ApiState;
use super::auth::BearerAuth;
use super::error::ApiError;
use crate::domain::users::{NewUser, Role};
use crate::store;

#[derive(Tags)]
enum UserTags {
    /// Users, their roles and plans.
    Users,
}

/// Users.
pub struct UsersApi;

/// A user.
#[derive(Object)]
pub struct UserOut {
    /// Id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Contact address.
    #[oai(skip_serializing_if_is_none)]
    pub email: Option<String>,
    /// `admin` or `user`.
    pub role: String,
    /// Plan name.
    pub plan: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl From<store::users::User> for UserOut {
    fn from(u: store::users::User) -> Self {
        Self {
            id: u.id,
            name: u.name,
            email: u.email,
            role: u.role.to_string(),
            plan: u.plan,
            created_at: u.created_at,
        }
    }
}

/// What an admin sends to create a user.
#[derive(Object)]
struct CreateUser {
    /// Display name, 1 to 200 characters.
    name: String,
    /// Contact address, unique across users.
    email: Option<String>,
    /// `admin` or `user` (default `user`).
    role: Option<String>,
    /// Plan name (default `free`).
    plan: Option<String>,
}

impl TryFrom<CreateUser> for NewUser {
    type Error = ApiError;
    fn try_from(c: CreateUser) -> Result<Self, ApiError> {
        let role = match c.role.as_deref() {
            None => Role::User,
            Some(r) => r.parse().map_err(ApiError::unprocessable)?,
        };
        NewUser::parse(&c.name, c.email.as_deref(), role, c.plan.as_deref())
            .map_err(ApiError::unprocessable)
    }
}

#[derive(ApiResponse)]
enum Created {
    /// The user was created.
    #[oai(status = 201)]
    User(Json<UserOut>, #[oai(header = "Location")] String),
}

/// A page of users.
#[derive(Object)]
struct UserPage {
    /// Users in creation order.
    items: Vec<UserOut>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    next_cursor: Option<Uuid>,
}

#[OpenApi(prefix_path = "/v1", tag = "UserTags::Users")]
impl UsersApi {
    /// Create a user (admin only). Give them a token with `POST /v1/users/{id}/tokens`.
    #[oai(path = "/users", method = "post")]
    async fn create_user(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        body: Json<CreateUser>,
    ) -> Result<Created, ApiError> {
        auth.require_admin()?;
        let new_user = NewUser::try_from(body.0)?;
        let mut conn = state.pool.acquire().await?;
        let user = store::users::insert_user(&mut conn, &new_user)
            .await
            .map_err(|e| ApiError::from_db(e, "a user with this email already exists"))?;
        let location = format!("/v1/users/{}", user.id);
        Ok(Created::User(Json(user.into()), location))
    }

    /// List users (admin only), in creation order.
    #[oai(path = "/users", method = "get")]
    async fn list_users(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        /// Cursor from the previous page's `next_cursor`.
        cursor: Query<Option<Uuid>>,
        /// Page size, 1 to 200.
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<i64>,
    ) -> Result<Json<UserPage>, ApiError> {
        auth.require_admin()?;
        let mut conn = state.pool.acquire().await?;
        let mut users = store::users::list_users(&mut conn, cursor.0, limit.0 + 1).await?;
        let next_cursor = if users.len() as i64 > limit.0 {
            users.truncate(limit.0 as usize);
            users.last().map(|u| u.id)
        } else {
            None
        };
        Ok(Json(UserPage {
            items: users.into_iter().map(UserOut::from).collect(),
            next_cursor,
        }))
    }

    /// Get a user: admins see anyone, users only themselves.
    #[oai(path = "/users/:id", method = "get")]
    async fn get_user(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
    ) -> Result<Json<UserOut>, ApiError> {
        if !auth.can_see(id.0) {
            return Err(ApiError::not_found(format_args!("user {}", id.0)));
        }
        let mut conn = state.pool.acquire().await?;
        let user = store::users::find_user(&mut conn, id.0)
            .await?
            .ok_or_else(|| ApiError::not_found(format_args!("user {}", id.0)))?;
        Ok(Json(user.into()))
    }

    /// The caller: who the token belongs to.
    #[oai(path = "/me", method = "get")]
    async fn me(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
    ) -> Result<Json<UserOut>, ApiError> {
        let mut conn = state.pool.acquire().await?;
        let user = store::users::find_user(&mut conn, auth.user_id())
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
        Ok(Json(user.into()))
    }
}

fn default_limit() -> i64 {
    50
}
