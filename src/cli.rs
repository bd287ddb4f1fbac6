//! The command line: `serve`, `migrate`, `openapi`, `config`, `admin create-token`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::app::{App, Storage};
use crate::config::{Config, Loaded, Sources};
use crate::domain::tokens;
use crate::domain::users::{NewUser, Role};
use crate::store;

/// One daemon for an HTTP API, durable PostgreSQL-backed jobs, crons, scraping, summaries and
/// push notifications.
#[derive(Debug, Parser)]
#[command(name = "workhorse", version, propagate_version = true)]
pub struct Cli {
    /// Where configuration comes from.
    #[command(flatten)]
    pub sources: SourceArgs,
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
    /// Operator tasks.
    #[command(subcommand)]
    Admin(AdminCommand),
}

/// Operator tasks.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create the first admin user if there is none, and print a new admin API token as the
    /// last line of stdout.
    CreateToken {
        /// Name of the new token.
        #[arg(long, default_value = "created by workhorse admin create-token")]
        name: String,
        /// Name of the admin user, if one has to be created.
        #[arg(long, default_value = "admin")]
        admin_name: String,
        /// Email of the admin user, if one has to be created.
        #[arg(long)]
        admin_email: Option<String>,
    },
}

impl Command {
    /// Whether the command needs logging and telemetry (commands that print documents do not).
    pub fn wants_telemetry(&self) -> bool {
        matches!(self, Command::Serve | Command::Migrate | Command::Admin(_))
    }
}

/// Print `workhorse config` output.
pub fn print_config(loaded: &Loaded) {
    let rows = loaded.explain();
    let width = rows
        .iter()
        .map(|(k, v, _)| k.len() + v.len() + 3)
        .max()
        .unwrap_or(0);
    for (key, value, source) in rows {
        let line = format!("{key} = {value}");
        println!("{line:width$}  # {source}");
    }
}

/// `workhorse serve`.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let app = App::build(config).await?;
    crate::lifecycle::shutdown_on_signals(app.shutdown_token())?;
    app.run().await
}

/// `workhorse migrate`.
pub async fn migrate(config: Config) -> anyhow::Result<()> {
    let storage = Storage::open(&config).await?;
    tracing::info!("migrations applied");
    storage.close().await;
    Ok(())
}

/// `workhorse admin create-token`.
pub async fn admin(config: Config, command: AdminCommand) -> anyhow::Result<()> {
    let AdminCommand::CreateToken {
        name,
        admin_name,
        admin_email,
    } = command;
    let new_admin = NewUser::parse(&admin_name, admin_email.as_deref(), Role::Admin, None)
        .map_err(anyhow::Error::msg)
        .context("checking --admin-name and --admin-email")?;
    let storage = Storage::open(&config).await?;
    let result = async {
        let mut tx = storage.pool.begin().await?;
        // Two operators running this at once must not both create a "first" admin.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('workhorse.first_admin'))")
            .execute(&mut *tx)
            .await?;
        let admin = match store::users::first_admin(&mut tx).await? {
            Some(admin) => admin,
            None => {
                let admin = store::users::insert_user(&mut tx, &new_admin)
                    .await
                    .context("creating the first admin user")?;
                eprintln!("created admin user {} ({})", admin.name, admin.id);
                admin
            }
        };
        let minted = tokens::mint();
        let token = store::tokens::insert_token(&mut tx, admin.id, &name, &minted).await?;
        tx.commit().await?;
        eprintln!(
            "new token {} for admin {} ({}); it is shown only once:",
            token.id, admin.name, admin.id
        );
        println!("{}", minted.secret);
        anyhow::Ok(())
    }
    .await;
    storage.close().await;
    result
}
