//! Users as use cases: list them, create one, change one (an admin sets a role or plan; a user
//! changes their own name, email and time zone). The API's `/v1/users` and the operator CLI
//! both come here.

use anyhow::Context;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Caller, WorkError, WorkResult};
use crate::config::Config;
use crate::domain::users::{NewUser, Role, parse_timezone};
use crate::store;
use crate::store::users::{User, UserPatch};

/// What a unique email clash says.
const EMAIL_TAKEN: &str = "a user with this email already exists";

/// A user as an admin asks for one: the fields unchecked.
#[derive(Debug, Clone, Default)]
pub struct UserRequest {
    /// Display name, 1 to 200 characters.
    pub name: String,
    /// Contact address, unique across users.
    pub email: Option<String>,
    /// `admin` or `user` (default `user`).
    pub role: Option<String>,
    /// One of the configured plans (default `quotas.default_plan`).
    pub plan: Option<String>,
    /// IANA time zone of the quota resets (default `quotas.default_timezone`).
    pub timezone: Option<String>,
}

/// Changes to a user, unchecked: `None` leaves a field; `Some(None)` removes an email or
/// returns the time zone to the default.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    /// New display name.
    pub name: Option<String>,
    /// New contact address.
    pub email: Option<Option<String>>,
    /// New role (admins only).
    pub role: Option<String>,
    /// New plan (admins only).
    pub plan: Option<String>,
    /// New time zone.
    pub timezone: Option<Option<String>>,
}

/// Users in creation order after `after`, at most `limit` (admins only).
pub async fn list(
    conn: &mut PgConnection,
    caller: &Caller,
    after: Option<Uuid>,
    limit: i64,
) -> WorkResult<Vec<User>> {
    require_admin(caller)?;
    Ok(store::users::list_users(conn, after, limit).await?)
}

/// Create a user (admins only), on `conn`: a transaction, so a time zone lands with the user.
pub async fn create(
    config: &Config,
    conn: &mut PgConnection,
    caller: &Caller,
    request: UserRequest,
) -> WorkResult<User> {
    require_admin(caller)?;
    let role = match request.role.as_deref() {
        None => Role::User,
        Some(r) => r.parse().map_err(|e| WorkError::invalid("role", e))?,
    };
    let plan = request
        .plan
        .as_deref()
        .unwrap_or(&config.quotas.default_plan);
    let new_user = NewUser::parse(&request.name, request.email.as_deref(), role, Some(plan))
        .map_err(|e| WorkError::invalid(e.field, e.detail))?;
    known_plan(config, &new_user.plan)?;
    let timezone = request.timezone.as_deref().map(timezone).transpose()?;
    let user = store::users::insert_user(conn, &new_user)
        .await
        .map_err(email_taken)?;
    if timezone.is_none() {
        return Ok(user);
    }
    let patch = UserPatch {
        timezone: Some(timezone),
        ..UserPatch::default()
    };
    Ok(store::users::update_user(conn, user.id, &patch)
        .await?
        .context("reading back a created user")?)
}

/// Change user `id`: admins anyone and anything, users their own name, email and time zone.
pub async fn update(
    config: &Config,
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    changes: UserChanges,
) -> WorkResult<User> {
    if !caller.is_admin() && caller.user_id != id {
        return Err(WorkError::not_found(format_args!("user {id}")));
    }
    if !caller.is_admin() && (changes.role.is_some() || changes.plan.is_some()) {
        return Err(WorkError::Forbidden(
            "only an admin can change a user's role or plan".into(),
        ));
    }
    let name = (changes.name)
        .map(|n| NewUser::parse(&n, None, Role::User, None).map(|u| u.name))
        .transpose()
        .map_err(|e| WorkError::invalid("name", e.detail))?;
    let email = match changes.email {
        None => None,
        Some(None) => Some(None),
        Some(Some(e)) => Some(
            NewUser::parse("x", Some(&e), Role::User, None)
                .map_err(|e| WorkError::invalid("email", e.detail))?
                .email,
        ),
    };
    let role = (changes.role.as_deref())
        .map(str::parse)
        .transpose()
        .map_err(|e| WorkError::invalid("role", e))?;
    if let Some(plan) = &changes.plan {
        known_plan(config, plan)?;
    }
    let timezone = match changes.timezone {
        None => None,
        Some(None) => Some(None),
        Some(Some(tz)) => Some(Some(timezone(&tz)?)),
    };
    let patch = UserPatch {
        name,
        email,
        role,
        plan: changes.plan,
        timezone,
    };
    store::users::update_user(conn, id, &patch)
        .await
        .map_err(email_taken)?
        .ok_or_else(|| WorkError::not_found(format_args!("user {id}")))
}

/// Refuse anyone but an admin, as the API does (403).
pub(super) fn require_admin(caller: &Caller) -> WorkResult<()> {
    match caller.is_admin() {
        true => Ok(()),
        false => Err(WorkError::Forbidden(
            "this operation needs the admin role".into(),
        )),
    }
}

fn known_plan(config: &Config, plan: &str) -> WorkResult<()> {
    if config.plans.contains_key(plan) {
        return Ok(());
    }
    Err(WorkError::invalid(
        "plan",
        format!(
            "unknown plan {plan:?}; configured plans: {}",
            config.plans.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    ))
}

fn timezone(name: &str) -> WorkResult<String> {
    parse_timezone(name)
        .map(|tz| tz.name().to_string())
        .map_err(|e| WorkError::invalid("timezone", e))
}

fn email_taken(error: sqlx::Error) -> WorkError {
    match error
        .as_database_error()
        .is_some_and(|d| d.is_unique_violation())
    {
        true => WorkError::Conflict(EMAIL_TAKEN.into()),
        false => WorkError::from(error),
    }
}
