//! The daemon's commands: `serve`, `migrate`, `config` (print it with provenance) and
//! `admin create-token` (the first admin token of a fresh install).

use anyhow::Context;
use clap::Subcommand;

use crate::app::{App, Storage};
use crate::config::{Config, Loaded};
use crate::domain::tokens;
use crate::domain::users::{NewUser, Role};
use crate::store;

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
