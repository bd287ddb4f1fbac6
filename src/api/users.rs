//! `/v1/users` and `/v1/me`: who may use the API.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use sqlx::PgConnection;
use uuid::Uuid;

use super::ApiState;
use super::auth::BearerAuth;
use super::error::ApiError;
use crate::api::closed::{OneOf, Roles, TimeZones};
use crate::config::Config;
use crate::domain::users::Role;
use crate::store;
use crate::work;
use crate::work::users::{UserChanges, UserRequest};

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
    pub role: OneOf<Roles>,
    /// Plan name.
    pub plan: String,
    /// IANA time zone whose midnight resets the user's quotas; absent: the configured default.
    #[oai(skip_serializing_if_is_none)]
    pub timezone: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl From<store::users::User> for UserOut {
    fn from(u: store::users::User) -> Self {
        Self {
            id: u.id,
            name: u.name,
            email: u.email,
            role: u.role.as_str().into(),
            plan: u.plan,
            timezone: u.timezone,
            created_at: u.created_at,
        }
    }
}

/// What an admin sends to create a user.
#[derive(Object)]
struct CreateUser {
    // The patterns name Unicode's white space (char::is_whitespace, which the rules use)
    // explicitly: `\s` means another set in the spec's ECMA-262 dialect (no U+0085, with
    // U+FEFF) than in Rust's, and a fuzzer found an e-mail the two judged differently.
    /// Display name, 1 to 200 characters.
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\u0000]*[^\t\n\x0B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\u0000][^\u0000]*$"
    ))]
    name: String,
    /// Contact address, unique across users.
    #[oai(validator(
        max_length = 254,
        pattern = r"^[^\t\n\x0B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000@\u0000]+@[^\t\n\x0B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000.\u0000][^\t\n\x0B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\u0000]*\.[^\t\n\x0B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\u0000]*[^\t\n\x0B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000.\u0000]$"
    ))]
    email: Option<String>,
    /// `admin` or `user` (default `user`).
    role: Option<OneOf<Roles>>,
    /// One of the configured plans (default `quotas.default_plan`).
    plan: Option<String>,
    /// IANA time zone whose midnight resets the user's quotas (default
    /// `quotas.default_timezone`).
    timezone: Option<OneOf<TimeZones>>,
}

impl From<CreateUser> for UserRequest {
    fn from(c: CreateUser) -> Self {
        Self {
            name: c.name,
            email: c.email,
            role: c.role.map(OneOf::into_inner),
            plan: c.plan,
            timezone: c.timezone.map(OneOf::into_inner),
        }
    }
}

/// Changes to a user: absent fields stay; `null` removes `email` or `timezone`.
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct UpdateUser {
    /// Display name, 1 to 200 characters.
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\u0000]*[^\t\n\x0B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\u0000][^\u0000]*$"
    ))]
    name: Option<String>,
    /// Contact address, unique across users; `null` removes it.
    #[oai(validator(
        max_length = 254,
        pattern = r"^[^\t\n\x0B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000@\u0000]+@[^\t\n\x0B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000.\u0000][^\t\n\x0B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\u0000]*\.[^\t\n\x0B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\u0000]*[^\t\n\x0B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000.\u0000]$"
    ))]
    email: MaybeUndefined<String>,
    /// `admin` or `user` (admins only).
    role: Option<OneOf<Roles>>,
    /// One of the configured plans (admins only).
    plan: Option<String>,
    /// IANA time zone whose midnight resets the quotas; `null` returns to the default. A
    /// change applies from each quota's next period: a running period keeps its end.
    timezone: MaybeUndefined<OneOf<TimeZones>>,
}

impl From<UpdateUser> for UserChanges {
    fn from(u: UpdateUser) -> Self {
        let maybe = |m: MaybeUndefined<String>| match m {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(v) => Some(Some(v)),
        };
        Self {
            name: u.name,
            email: maybe(u.email),
            role: u.role.map(OneOf::into_inner),
            plan: u.plan,
            timezone: maybe(u.timezone.map_value(OneOf::into_inner)),
        }
    }
}

/// A user with their plan's limits and where they stand.
#[derive(Object)]
struct MeOut {
    #[oai(flatten)]
    user: UserOut,
    /// The plan's daily quotas, by action.
    quotas: Vec<QuotaOut>,
    /// The plan's request-rate limit per token.
    rate_limit: RateLimitOut,
    /// When the first of the current quota periods ends: a local midnight of the user's time
    /// zone (of the zone they had when the period started).
    next_reset: DateTime<Utc>,
}

/// One daily quota.
#[derive(Object)]
struct QuotaOut {
    /// The action, e.g. `scrape`.
    action: String,
    /// Units per day; absent: not limited (admins).
    #[oai(skip_serializing_if_is_none)]
    limit: Option<u32>,
    /// Units used by jobs that succeeded in the current period.
    used: i64,
    /// Units held by jobs still running; given back if they fail for good or are cancelled.
    reserved: i64,
    /// Units left now; absent when not limited.
    #[oai(skip_serializing_if_is_none)]
    remaining: Option<i64>,
    /// When the units come back.
    resets_at: DateTime<Utc>,
}

/// A request-rate limit.
#[derive(Object)]
struct RateLimitOut {
    /// Whether it applies (admins are not limited).
    limited: bool,
    /// Requests per window, in bursts of up to this many.
    requests: u32,
    /// The window, in seconds.
    window_seconds: u64,
}

#[derive(ApiResponse)]
enum Updated {
    /// The user as changed.
    #[oai(status = 200)]
    User(Json<UserOut>),
}

/// Read `user`'s limits and counters.
async fn me_out(
    conn: &mut PgConnection,
    config: &Config,
    user: store::users::User,
) -> Result<MeOut, ApiError> {
    let (standing, next_reset) = work::quotas::standing(conn, config, &user).await?;
    let plan = config.plan(&user.plan);
    let admin = user.role == Role::Admin;
    let quotas = (standing.into_iter())
        .map(|q| QuotaOut {
            action: q.action,
            limit: q.limit,
            used: q.used,
            reserved: q.reserved,
            remaining: q.remaining,
            resets_at: q.resets_at,
        })
        .collect();
    Ok(MeOut {
        quotas,
        rate_limit: RateLimitOut {
            limited: !admin,
            requests: plan.rate_limit,
            window_seconds: plan.rate_window.as_secs(),
        },
        next_reset,
        user: user.into(),
    })
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
    #[oai(path = "/users", method = "post", operation_id = "users_create")]
    async fn create_user(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        body: Json<CreateUser>,
    ) -> Result<Created, ApiError> {
        let mut tx = state.pool.begin().await?;
        let user = work::users::create(&state.config, &mut tx, &auth.0, body.0.into()).await?;
        tx.commit().await?;
        let location = format!("/v1/users/{}", user.id);
        Ok(Created::User(Json(user.into()), location))
    }

    /// List users (admin only), in creation order.
    #[oai(path = "/users", method = "get", operation_id = "users_list")]
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
        let mut conn = state.pool.acquire().await?;
        let mut users = work::users::list(&mut conn, &auth.0, cursor.0, limit.0 + 1).await?;
        let next_cursor = super::next_cursor(&mut users, limit.0, |u| u.id);
        Ok(Json(UserPage {
            items: users.into_iter().map(UserOut::from).collect(),
            next_cursor,
        }))
    }

    /// Get a user: admins see anyone, users only themselves.
    #[oai(path = "/users/:id", method = "get", operation_id = "users_get")]
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

    /// Change a user. Admins change anyone and anything; users change their own name, email
    /// and time zone.
    #[oai(path = "/users/:id", method = "patch", operation_id = "users_update")]
    async fn update_user(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
        body: Json<UpdateUser>,
    ) -> Result<Updated, ApiError> {
        let mut conn = state.pool.acquire().await?;
        let user =
            work::users::update(&state.config, &mut conn, &auth.0, id.0, body.0.into()).await?;
        // A new role or plan applies to the next request here; elsewhere, once notified.
        state.tokens.clear();
        Ok(Updated::User(Json(user.into())))
    }

    /// The caller: who the token belongs to, their plan's quotas (used, reserved, remaining)
    /// and rate limit, and the next quota reset.
    #[oai(path = "/me", method = "get", operation_id = "me_get")]
    async fn me(&self, auth: BearerAuth, state: Data<&ApiState>) -> Result<Json<MeOut>, ApiError> {
        let mut conn = state.pool.acquire().await?;
        let user = store::users::find_user(&mut conn, auth.user_id())
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
        Ok(Json(me_out(&mut conn, &state.config, user).await?))
    }

    /// A user with their quotas: admins see anyone, users only themselves.
    #[oai(
        path = "/users/:id/quotas",
        method = "get",
        operation_id = "users_quotas_get"
    )]
    async fn user_quotas(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
    ) -> Result<Json<MeOut>, ApiError> {
        if !auth.can_see(id.0) {
            return Err(ApiError::not_found(format_args!("user {}", id.0)));
        }
        let mut conn = state.pool.acquire().await?;
        let user = store::users::find_user(&mut conn, id.0)
            .await?
            .ok_or_else(|| ApiError::not_found(format_args!("user {}", id.0)))?;
        Ok(Json(me_out(&mut conn, &state.config, user).await?))
    }

    /// Give a user their daily quotas back now (admins only): nothing used in the current
    /// period; units held by running jobs stay held.
    #[oai(
        path = "/users/:id/quotas/reset",
        method = "post",
        operation_id = "users_quotas_reset"
    )]
    async fn reset_user_quotas(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
    ) -> Result<Json<MeOut>, ApiError> {
        let mut conn = state.pool.acquire().await?;
        let user = work::quotas::reset(&mut conn, &auth.0, id.0).await?;
        Ok(Json(me_out(&mut conn, &state.config, user).await?))
    }
}

fn default_limit() -> i64 {
    50
}
