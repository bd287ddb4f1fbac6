//! All SQL lives here, one file per table; functions take an executor so the caller decides
//! whether there is a transaction. This module also opens the pool and runs the migrations.

pub mod bounds;
pub mod crawls;
pub mod documents;
pub mod embedded;
pub mod idempotency;
pub mod jobs;
pub mod notifications;
pub mod outbox;
pub mod overview;
pub mod quotas;
pub mod records;
pub mod schedules;
pub mod scrapes;
pub mod sessions;
pub mod stream;
pub mod summaries;
pub mod tokens;
pub mod users;

use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::{DatabaseConfig, redact_url};

/// Our own tables; apalis keeps its own schema.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// A pooled connection idle at least this long is pinged before it is handed out. sqlx already
/// pings every connection when it takes it back, so one used moments ago was checked moments
/// ago: pinging it again on every acquire added a round trip before each query (a second one
/// for `POST /v1/jobs`, whose insert is a single statement). A connection that breaks within
/// this window fails its next query like one in flight when the server went away, and the
/// pool drops it.
pub const CHECK_IDLE_AFTER: Duration = Duration::from_secs(1);

/// Open a pool to `url` without waiting for the server: connections are made on demand, so the
/// daemon keeps running (and `/readyz` says why it is not ready) while PostgreSQL is away.
pub fn connect_lazy(url: &str, config: &DatabaseConfig) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = url
        .parse()
        .with_context(|| format!("parsing database.url {}", redact_url(url)))?;
    Ok(PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        // A connection that broke while it sat idle (PostgreSQL restarted) is noticed before it
        // is handed out; see CHECK_IDLE_AFTER for why only an idle one.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= CHECK_IDLE_AFTER {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .idle_timeout(Duration::from_secs(300))
        .connect_lazy_with(options.application_name("workhorse")))
}

/// Wait until PostgreSQL answers, then apply pending migrations.
pub async fn migrate(pool: &PgPool, wait: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match sqlx::query("SELECT 1").execute(pool).await {
            Ok(_) => break,
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "PostgreSQL is not reachable yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e).context("connecting to PostgreSQL"),
        }
    }
    MIGRATOR.run(pool).await.context("applying migrations")
}

/// Whether every migration shipped with this binary has been applied successfully.
pub async fn migrations_applied(pool: &PgPool) -> anyhow::Result<bool> {
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await
            .context("reading _sqlx_migrations")?;
    Ok(MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .all(|m| applied.binary_search(&m.version).is_ok()))
}
