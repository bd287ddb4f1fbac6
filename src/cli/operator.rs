//! What every operator command starts from: the configured database (no daemon needed; with
//! no `database.url`, the embedded cluster, shared with a running daemon or started for the
//! command), a check that its schema is this binary's, the use cases' context and the
//! operator's admin [`Caller`]; and how their failures become exit codes.

use std::sync::Arc;

use anyhow::Context;
use sqlx::PgPool;

use super::OperatorCommand;
use crate::app::Storage;
use crate::config::{Config, redact_url};
use crate::domain::schedule::Schedule;
use crate::jobs::{Kinds, registry_for, schedule};
use crate::metrics::Metrics;
use crate::store;
use crate::work::{Caller, Work, WorkError};

/// A usage or configuration error: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// Some of several ids failed (each was named as it failed): exit code 1.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} {what} ids failed")]
pub struct Partial {
    /// What the ids are of, e.g. `job`.
    pub what: String,
    /// How many failed.
    pub failed: usize,
    /// How many were asked for.
    pub total: usize,
}

/// The operator at work: the use cases' context, the admin caller, the output format.
pub struct Operator {
    /// The use cases' context over the configured database.
    pub work: Work,
    /// An admin with no user behind it ([`Caller::operator`]).
    pub caller: Caller,
    /// Print JSON instead of tables.
    pub json: bool,
    embedded: Option<Storage>,
}

/// Connect to a configured server and check its schema is this binary's (no migrations run:
/// an operator command must not change the schema under a running daemon).
async fn connect(url: &str, config: &Config) -> anyhow::Result<PgPool> {
    let pool = store::connect_lazy(url, &config.database)?;
    sqlx::query("SELECT 1")
        .execute(&pool)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {}", redact_url(url)))?;
    // An older or empty schema would fail later with a confusing SQL error.
    if !store::migrations_applied(&pool).await.unwrap_or(false) {
        return Err(Usage(format!(
            "the database at {} is not migrated to this binary's schema; run `workhorse \
             migrate` (or start the daemon) first",
            redact_url(url)
        ))
        .into());
    }
    Ok(pool)
}

impl Operator {
    /// Connect to `database.url`, check the schema, build the use cases' context.
    pub async fn connect(config: Config, json: bool) -> anyhow::Result<Self> {
        let (pool, embedded) = match config.database.url() {
            Some(url) => (connect(url, &config).await?, None),
            // The embedded cluster: shared with the daemon when it runs, else started for
            // this command (and stopped after it), as `admin create-token` does.
            None => {
                let storage = Storage::open(&config).await?;
                (storage.pool.clone(), Some(storage))
            }
        };
        let kinds = Kinds::new(&config)?;
        let registry = registry_for(&pool, &kinds);
        let work = Work {
            pool,
            config: Arc::new(config),
            catalog: registry.catalog(),
            policy: kinds.scraper.policy_handle(),
            // A command is not scraped: its instruments record nowhere.
            metrics: Metrics::default(),
        };
        Ok(Self {
            work,
            caller: Caller::operator(),
            json,
            embedded,
        })
    }

    /// Close the pool, and stop the embedded cluster if this command started it.
    pub async fn close(self) {
        self.work.pool.close().await;
        if let Some(storage) = self.embedded {
            storage.close().await;
        }
    }

    /// The shared pool.
    pub fn pool(&self) -> &PgPool {
        &self.work.pool
    }

    /// The schedules of `jobs.schedules_dir`, as the daemon loads them.
    pub fn schedules(&self) -> anyhow::Result<Vec<Schedule>> {
        let dir = &self.work.config.jobs.schedules_dir;
        schedule::load(dir, &self.work.catalog).map_err(|e| Usage(format!("{e:#}")).into())
    }
}

/// Run an operator command against the configured database.
pub async fn run(config: Config, command: OperatorCommand, json: bool) -> anyhow::Result<()> {
    let op = Operator::connect(config, json).await?;
    let result = match command {
        OperatorCommand::Jobs(cmd) => super::jobs::run(&op, cmd).await,
        OperatorCommand::Status => super::status::run(&op).await,
        OperatorCommand::Schedules(cmd) => super::schedules::run(&op, cmd).await,
        OperatorCommand::Users(cmd) => super::users::run(&op, cmd).await,
        OperatorCommand::Tokens(cmd) => super::users::run_tokens(&op, cmd).await,
        OperatorCommand::Deliveries(cmd) => super::deliveries::run(&op, cmd).await,
    };
    op.close().await;
    result
}

/// A refusal of a use case as the CLI reports it: a bad value is a usage error (exit 2),
/// anything else a failure (exit 1) with the use case's message.
pub fn refused(error: WorkError) -> anyhow::Error {
    match error {
        WorkError::Invalid { .. } | WorkError::TooLarge(_) => Usage(error.to_string()).into(),
        WorkError::Internal(e) => e,
        other => anyhow::anyhow!("{other}"),
    }
}
