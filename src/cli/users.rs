//! `workhorse users` (list, create, set-plan) and `workhorse tokens revoke`, through
//! `work::users` and `work::tokens`.

use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde::Serialize;
use uuid::Uuid;

use super::operator::{Operator, refused};
use super::output::{Outcome, Table, ago, print_json, report};
use crate::store::users::User;
use crate::work;
use crate::work::users::{UserChanges, UserRequest};

/// Users.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List users in creation order.
    List {
        /// Only users created after this one (id): the last id of the previous page.
        #[arg(long, value_name = "USER_ID")]
        after: Option<Uuid>,
        /// At most this many.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
    },
    /// Create a user. Give them a token with the API (POST /v1/users/{id}/tokens).
    Create {
        /// Display name, 1 to 200 characters.
        #[arg(long)]
        name: String,
        /// Contact address, unique across users.
        #[arg(long)]
        email: Option<String>,
        /// `admin` or `user`.
        #[arg(long, default_value = "user")]
        role: String,
        /// One of the configured plans (default: quotas.default_plan).
        #[arg(long)]
        plan: Option<String>,
        /// IANA time zone whose midnight resets the user's quotas (default:
        /// quotas.default_timezone).
        #[arg(long)]
        timezone: Option<String>,
    },
    /// Move a user to another plan; running quota periods keep their counters.
    SetPlan {
        /// The user's id.
        user: Uuid,
        /// One of the configured plans.
        plan: String,
    },
}

/// API tokens.
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Revoke tokens: requests with them are refused from now on.
    Revoke {
        /// The tokens' ids.
        #[arg(required = true)]
        ids: Vec<Uuid>,
    },
}

#[derive(Debug, Serialize)]
struct UserView {
    id: Uuid,
    name: String,
    email: Option<String>,
    role: String,
    plan: String,
    timezone: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            name: u.name,
            email: u.email,
            role: u.role.to_string(),
            plan: u.plan,
            timezone: u.timezone,
            created_at: u.created_at,
        }
    }
}

fn print_users(op: &Operator, users: Vec<User>) -> anyhow::Result<()> {
    let views: Vec<UserView> = users.into_iter().map(UserView::from).collect();
    if op.json {
        return print_json(&views);
    }
    let now = Utc::now();
    let mut table = Table::new(&["ID", "NAME", "EMAIL", "ROLE", "PLAN", "TIMEZONE", "CREATED"]);
    for v in views {
        table.row(vec![
            v.id.to_string(),
            v.name,
            v.email.unwrap_or_else(|| "-".into()),
            v.role,
            v.plan,
            v.timezone.unwrap_or_else(|| "-".into()),
            ago(v.created_at, now),
        ]);
    }
    table.print("no users");
    Ok(())
}

fn print_user(op: &Operator, user: User) -> anyhow::Result<()> {
    if op.json {
        return print_json(&UserView::from(user));
    }
    print_users(op, vec![user])
}

/// Run a `users` command.
pub async fn run(op: &Operator, command: UsersCommand) -> anyhow::Result<()> {
    let config = &op.work.config;
    match command {
        UsersCommand::List { after, limit } => {
            let mut conn = op.pool().acquire().await?;
            let users = work::users::list(&mut conn, &op.caller, after, limit)
                .await
                .map_err(refused)?;
            print_users(op, users)
        }
        UsersCommand::Create {
            name,
            email,
            role,
            plan,
            timezone,
        } => {
            let request = UserRequest {
                name,
                email,
                role: Some(role),
                plan,
                timezone,
            };
            let mut tx = op.pool().begin().await?;
            let user = work::users::create(config, &mut tx, &op.caller, request)
                .await
                .map_err(refused)?;
            tx.commit().await?;
            print_user(op, user)
        }
        UsersCommand::SetPlan { user, plan } => {
            let changes = UserChanges {
                plan: Some(plan),
                ..UserChanges::default()
            };
            let mut conn = op.pool().acquire().await?;
            let user = work::users::update(config, &mut conn, &op.caller, user, changes)
                .await
                .map_err(refused)?;
            print_user(op, user)
        }
    }
}

/// Run a `tokens` command.
pub async fn run_tokens(op: &Operator, command: TokensCommand) -> anyhow::Result<()> {
    let TokensCommand::Revoke { ids } = command;
    let mut conn = op.pool().acquire().await?;
    let mut outcomes = Vec::with_capacity(ids.len());
    for id in ids {
        let outcome = match work::tokens::revoke(&mut conn, &op.caller, id).await {
            Ok(_) => Outcome::done(id, "revoked"),
            Err(e) => Outcome::failed(id, refused(e)),
        };
        outcomes.push(outcome);
    }
    report(&outcomes, "token", "revoked", op.json)
}
