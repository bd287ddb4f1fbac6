//! The command line: the clap tree and where each command goes. The daemon's commands are in
//! `daemon.rs`; the operator's (jobs, status, schedules, users, tokens, deliveries) work
//! straight on the configured database through the same `work::` use cases as the API, so
//! they work while no daemon runs; `docs.rs` writes completions and man pages.
//!
//! Exit codes: 0 done, 1 failed (or some of several ids failed; each is named), 2 usage or
//! configuration errors.

mod daemon;
pub mod deliveries;
pub mod docs;
pub mod jobs;
pub mod operator;
pub mod output;
pub mod schedules;
pub mod status;
pub mod users;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use daemon::{AdminCommand, admin, migrate, print_config, serve};
pub use docs::DocsCommand;
pub use operator::{Partial, Usage};

use crate::config::Sources;

/// One daemon for an HTTP API, durable PostgreSQL-backed jobs, crons, scraping, summaries and
/// push notifications.
#[derive(Debug, Parser)]
#[command(name = "workhorse", version, propagate_version = true)]
pub struct Cli {
    /// Where configuration comes from.
    #[command(flatten)]
    pub sources: SourceArgs,
    /// Print operator commands' output as JSON (stable objects and arrays) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where configuration comes from.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Directory with default.toml and <profile>.toml.
    #[arg(
        long,
        global = true,
        env = "WORKHORSE_CONFIG_DIR",
        default_value = "config"
    )]
    pub config_dir: PathBuf,
    /// Profile whose file is layered over default.toml.
    #[arg(
        long,
        global = true,
        env = "WORKHORSE_PROFILE",
        default_value = "local"
    )]
    pub profile: String,
    /// A config file layered over the config dir (the systemd unit passes
    /// /etc/workhorse/workhorse.toml); WORKHORSE_* variables still win.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl SourceArgs {
    /// The sources to load configuration from.
    pub fn sources(&self) -> Sources {
        Sources {
            config_dir: self.config_dir.clone(),
            profile: self.profile.clone(),
            file: self.config.clone(),
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything: HTTP API, job workers and schedules, until SIGTERM or SIGINT.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the OpenAPI document the server serves at /openapi.json.
    Openapi,
    /// Print the effective configuration (secrets redacted) and where each value came from.
    Config,
    /// First-install tasks.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Operator commands, straight on the configured database.
    #[command(flatten)]
    Operator(OperatorCommand),
    /// Shell completions and man pages.
    #[command(flatten)]
    Docs(DocsCommand),
}

/// The operator's commands: each connects to `database.url`, checks the schema is migrated,
/// and acts as an admin through the `work::` use cases.
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Jobs: list, show, retry, cancel.
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
    /// Queue depth and oldest waiting job per kind, running jobs, live daemon instances, the
    /// schedules' next ticks, dead deliveries.
    Status,
    /// The cron schedules of jobs/*.toml: list, trigger.
    #[command(subcommand)]
    Schedules(schedules::SchedulesCommand),
    /// Users: list, create, set-plan.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// API tokens: revoke.
    #[command(subcommand)]
    Tokens(users::TokensCommand),
    /// Notification deliveries: list, retry.
    #[command(subcommand)]
    Deliveries(deliveries::DeliveriesCommand),
}

impl Command {
    /// Whether the command needs logging and telemetry (commands that print documents or
    /// tables do not).
    pub fn wants_telemetry(&self) -> bool {
        matches!(self, Command::Serve | Command::Migrate | Command::Admin(_))
    }
}

/// The exit code for a command's result: 0 done, 2 usage or configuration errors, else 1.
pub fn exit_code(result: &anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if e.is::<Usage>() => std::process::ExitCode::from(2),
        Err(_) => std::process::ExitCode::FAILURE,
    }
}
