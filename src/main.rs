//! The `workhorse` binary: parse the command line, load config, start telemetry, run.

use std::process::ExitCode;

use clap::Parser;
use workhorse::cli::{self, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Openapi = cli.command {
        println!("{}", workhorse::api::spec_json());
        return ExitCode::SUCCESS;
    }
    if let Command::Docs(docs) = &cli.command {
        return cli::docs::run(docs);
    }
    let loaded = match cli.sources.sources().load() {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("workhorse: {e}");
            return ExitCode::from(2);
        }
    };
    if let Command::Config = cli.command {
        cli::print_config(&loaded);
        return ExitCode::SUCCESS;
    }
    let config = loaded.config;
    // One rustls provider for the whole process: two get compiled in, and clients that build
    // their own TLS config panic when none is chosen.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();

    let telemetry = if cli.command.wants_telemetry() {
        match workhorse::telemetry::init(&config.log, &config.telemetry) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("workhorse: {e:#}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("workhorse: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve => cli::serve(config).await,
            Command::Migrate => cli::migrate(config).await,
            Command::Admin(cmd) => cli::admin(config, cmd).await,
            Command::Operator(cmd) => cli::operator::run(config, cmd, cli.json).await,
            Command::Openapi | Command::Config | Command::Docs(_) => Ok(()),
        }
    });
    if let Err(e) = &result {
        tracing::error!(error = format!("{e:#}"), "workhorse failed");
        eprintln!("workhorse: {e:#}");
    }
    // Leave background tasks a bounded time, then flush spans after the runtime is gone.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    if let Some(t) = telemetry {
        t.shutdown();
    }
    cli::exit_code(&result)
}
