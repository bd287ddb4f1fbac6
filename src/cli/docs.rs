//! `workhorse completions` and `workhorse man`: shell completions and man pages generated
//! from the clap definitions, so they never drift from the commands. `deploy/install.sh`
//! installs both from the installed binary.

use std::io::Write;
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
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "workhorse", &mut script);
            print(&script)
        }
        DocsCommand::Man { out_dir: None } => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .context("rendering the man page")
                .and_then(|()| print(&page))
        }
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

/// Write `bytes` to stdout. A reader that stops early (`| head`) is not an error: the
/// command ends quietly, as other tools do, instead of panicking on the closed pipe.
fn print(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing to standard output")
        }
        _ => Ok(()),
    }
}

fn write_pages(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = Cli::command();
    // Building gives every subcommand its full display name (workhorse-jobs-retry).
    cmd.build();
    let written = write_page(&cmd, dir)?;
    eprintln!("{written} man pages written to {}", dir.display());
    Ok(())
}

/// Write `cmd`'s page and its subcommands', skipping clap's `help` subcommands (their pages
/// would only repeat the others); returns how many were written.
fn write_page(cmd: &clap::Command, dir: &Path) -> anyhow::Result<usize> {
    let name = cmd.get_display_name().unwrap_or_else(|| cmd.get_name());
    let path = dir.join(format!("{name}.1"));
    let mut file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    clap_mangen::Man::new(cmd.clone())
        .render(&mut file)
        .with_context(|| format!("writing {}", path.display()))?;
    let mut written = 1;
    for sub in cmd.get_subcommands() {
        if sub.get_name() != "help" && !sub.is_hide_set() {
            written += write_page(sub, dir)?;
        }
    }
    Ok(written)
}
