//! Configuration: built-in defaults < `config/default.toml` < `config/<profile>.toml` < `--config`
//! file < `WORKHORSE_*` environment (`__` nests), loaded with figment into typed structs.
//!
//! This file holds the top-level [`Config`], the loading of its layers and the validation entry;
//! each section lives in its own file with its validation and the expectations its error
//! messages name. Every type is re-exported here, so `crate::config::X` is the path to use.
//! Config depends on nothing above `domain` (only `egress`'s parser checks `egress.allow`).

mod database;
mod egress;
mod events;
mod http;
mod jobs;
mod metrics;
mod notify;
mod plans;
mod provenance;
mod scrape;
mod shutdown;
mod summarise;
mod telemetry;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub use database::{DatabaseConfig, redact_url};
pub use egress::EgressConfig;
pub use events::EventsConfig;
pub use http::HttpConfig;
pub use jobs::{JobsConfig, KindConfig, KindSettings};
pub use metrics::MetricsConfig;
pub use notify::NotifyConfig;
pub use plans::{PlanConfig, QuotasConfig};
pub use scrape::{SandboxMode, ScrapeConfig};
pub use shutdown::ShutdownConfig;
pub use summarise::{ProviderConfig, SummariseConfig};
pub use telemetry::{LogConfig, LogFormat, TelemetryConfig};

/// Environment variables that configure the daemon start with this prefix.
pub const ENV_PREFIX: &str = "WORKHORSE_";

/// Everything the daemon can be told, with a default for every key.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the daemon keeps its state (the embedded PostgreSQL cluster, screenshots).
    pub data_dir: PathBuf,
    /// The HTTP listener and its limits.
    pub http: HttpConfig,
    /// Which PostgreSQL to use.
    pub database: DatabaseConfig,
    /// Log output.
    pub log: LogConfig,
    /// OpenTelemetry trace export.
    pub telemetry: TelemetryConfig,
    /// Prometheus metrics at `GET /metrics` and their OTLP export.
    pub metrics: MetricsConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// The job engine: workers, retries, leases, pruning, schedules.
    pub jobs: JobsConfig,
    /// Plans by name: each plan's daily quotas and request-rate limit.
    pub plans: BTreeMap<String, PlanConfig>,
    /// How quotas are applied: default plan and time zone.
    pub quotas: QuotasConfig,
    /// Where outgoing requests (scraped pages, webhooks) may go.
    pub egress: EgressConfig,
    /// Scraping: the WebDriver and the browser session pool.
    pub scrape: ScrapeConfig,
    /// Summaries: the model providers and the built-in summariser.
    pub summarise: SummariseConfig,
    /// Notifications: retries, FCM and Web Push settings.
    pub notify: NotifyConfig,
    /// The live event stream: retention for reconnects, heartbeats, slow clients.
    pub events: EventsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            http: HttpConfig::default(),
            database: DatabaseConfig::default(),
            log: LogConfig::default(),
            telemetry: TelemetryConfig::default(),
            metrics: MetricsConfig::default(),
            shutdown: ShutdownConfig::default(),
            jobs: JobsConfig::default(),
            plans: plans::default_plans(),
            quotas: QuotasConfig::default(),
            egress: EgressConfig::default(),
            scrape: ScrapeConfig::default(),
            summarise: SummariseConfig::default(),
            notify: NotifyConfig::default(),
            events: EventsConfig::default(),
        }
    }
}

/// Where to look for configuration files.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Directory with `default.toml` and `<profile>.toml`.
    pub config_dir: PathBuf,
    /// Profile whose file is layered over `default.toml`.
    pub profile: String,
    /// An explicit file layered over both (the systemd unit's `/etc/workhorse/workhorse.toml`).
    pub file: Option<PathBuf>,
}

/// A bad configuration value, described in one line naming key, source and expectation.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

/// The loaded configuration together with the figment it came from, for provenance.
pub struct Loaded {
    /// The typed configuration.
    pub config: Config,
    figment: Figment,
}

impl Sources {
    fn figment(&self) -> Figment {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        let profile_file = self.config_dir.join(format!("{}.toml", self.profile));
        // Exactly these paths: `Toml::file` would also search parent directories, and
        // `file_exact` fails on a missing file, so absent layers are skipped here.
        for file in [self.config_dir.join("default.toml"), profile_file] {
            if file.is_file() {
                figment = figment.merge(Toml::file_exact(file));
            }
        }
        if let Some(file) = &self.file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment.merge(
            Env::prefixed(ENV_PREFIX)
                .split("__")
                .ignore(&["CONFIG_DIR", "PROFILE"]),
        )
    }

    /// Load and validate the configuration.
    pub fn load(&self) -> Result<Loaded, ConfigError> {
        if let Some(file) = &self.file
            && !file.is_file()
        {
            return Err(ConfigError(format!(
                "config file {} given with --config does not exist",
                file.display()
            )));
        }
        let figment = self.figment();
        let config: Config = figment
            .extract()
            .map_err(|e| provenance::describe(&figment, e))?;
        validate(&config, &figment)?;
        Ok(Loaded { config, figment })
    }
}

/// Check every section; the first bad value is named with its key and source.
fn validate(config: &Config, figment: &Figment) -> Result<(), ConfigError> {
    let bad = |key: &str| provenance::bad_value(figment, key);
    config.telemetry.validate(&bad)?;
    config.metrics.validate(&bad)?;
    config.database.validate(&bad)?;
    config.http.validate(&bad)?;
    config.jobs.validate(&bad)?;
    config.egress.validate(&bad)?;
    config.scrape.validate(&bad)?;
    config.notify.validate(&bad)?;
    config.events.validate(&bad)?;
    config.summarise.validate(&bad)?;
    plans::validate(&config.quotas, &config.plans, &bad)
}

/// What a person should write for keys whose serde message is not helpful on its own.
fn expectation(key: &str) -> Option<&'static str> {
    // Every `*timeout` key of every section is a duration.
    if key.ends_with("timeout") {
        return Some("a duration like 30s, 500ms or 5m");
    }
    if key == "data_dir" {
        return Some("a directory path");
    }
    let sections: [fn(&str) -> Option<&'static str>; 11] = [
        events::expectation,
        http::expectation,
        metrics::expectation,
        database::expectation,
        telemetry::expectation,
        jobs::expectation,
        plans::expectation,
        summarise::expectation,
        notify::expectation,
        egress::expectation,
        scrape::expectation,
    ];
    sections.iter().find_map(|expectation| expectation(key))
}

fn is_http_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

fn serialize_secret<S: serde::Serializer>(s: &SecretString, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.expose_secret())
}

fn serialize_secret_map<S: serde::Serializer>(
    map: &BTreeMap<String, SecretString>,
    ser: S,
) -> Result<S::Ok, S::Error> {
    ser.collect_map(map.iter().map(|(k, v)| (k, v.expose_secret())))
}

/// Resolve a path from the config relative to the working directory, for messages and children.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_default_toml_matches_built_in_defaults() {
        let shipped: Config = Figment::from(Toml::file_exact(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml"),
        ))
        .extract()
        .expect("config/default.toml parses");
        let built_in = Config::default();
        assert_eq!(
            serde_json::to_value(&shipped).unwrap(),
            serde_json::to_value(&built_in).unwrap()
        );
    }
}
