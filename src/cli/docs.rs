//! `workhorse completions` and `workhorse man`: shell completions and man pages generated
//! from the clap definitions, so they never drift from the commands. `deploy/install.sh`
//! installs both from the installed binary.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Subcommand};
use clap_complete::Shell;

use super::Cli;

/// Completions and man pages.
#[derive(Debug, Subcommand)]
pub enum DocsCommand {
    /// Print shell completions for bash, zsh, fish, elvish or powershell.
    Completions {
        /// The shell.
        shell: Shell,
    },
    /// Print the main man page, or with --out-dir write one page per command there
    /// (workhorse.1, workhorse-jobs.1, workhorse-jobs-list.1, ...).
    Man {
        /// Write every page into this directory (created if missing).
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

/// Run a docs command; it needs no configuration.
pub fn run(command: &DocsCommand) -> ExitCode {
    let result = match command {
        DocsCommand::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(*shell, &mut cmd, "workhorse", &mut std::io::stdout());
            Ok(())
        }
        DocsCommand::Man { out_dir: None } => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .context("writing the man page"),
        DocsCommand::Man { out_dir: Some(dir) } => write_pages(dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("workhorse: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn write_pages(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = Cli::command();
    cmd.build();
    clap_mangen::generate_to(cmd, dir)
        .with_context(|| format!("writing man pages to {}", dir.display()))?;
    eprintln!("man pages written to {}", dir.display());
    Ok(())
}
