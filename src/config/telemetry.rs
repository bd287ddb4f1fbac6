//! `[log]` and `[telemetry]`: log output and OpenTelemetry trace export, with their
//! validation.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{ConfigError, is_http_url, serialize_secret_map};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `journal` when systemd connected stderr to the journal (`JOURNAL_STREAM` names
    /// stderr's device and inode), else `pretty`.
    Auto,
    /// Human-readable, for a terminal.
    Pretty,
    /// Plain lines with an sd-daemon `<N>` priority prefix and no timestamp, for journald.
    Journal,
    /// One JSON object a line, for log shippers.
    Json,
}

/// Log output.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `auto`, `pretty`, `journal` or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `workhorse=debug,sqlx=warn`; `RUST_LOG`, when set,
    /// wins.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Auto,
            level: "info".into(),
        }
    }
}

/// OpenTelemetry trace export over OTLP HTTP/protobuf.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Base URL of an OTLP/HTTP receiver (`/v1/traces` is appended); empty turns export off.
    pub otlp_endpoint: String,
    /// Extra headers sent with each export, e.g. an API key.
    #[serde(serialize_with = "serialize_secret_map")]
    pub otlp_headers: BTreeMap<String, SecretString>,
    /// Fraction of new traces sampled, 0.0 to 1.0; a sampled parent is always followed.
    pub sample_ratio: f64,
    /// `service.name` of the exported spans.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: String::new(),
            otlp_headers: BTreeMap::new(),
            sample_ratio: 1.0,
            service_name: "workhorse".into(),
        }
    }
}

impl TelemetryConfig {
    pub(super) fn validate(&self, bad: &dyn Fn(&str) -> ConfigError) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(bad("telemetry.sample_ratio"));
        }
        let endpoint = self.otlp_endpoint.trim();
        if !endpoint.is_empty() && !is_http_url(endpoint) {
            return Err(bad("telemetry.otlp_endpoint"));
        }
        Ok(())
    }
}

/// What a person should write for `log.*` and `telemetry.*` keys.
pub(super) fn expectation(key: &str) -> Option<&'static str> {
    Some(match key {
        "log.format" => "\"auto\", \"pretty\", \"journal\" or \"json\"",
        "telemetry.sample_ratio" => "a number from 0.0 to 1.0",
        "telemetry.otlp_endpoint" => "an http:// or https:// URL, or empty",
        "telemetry.otlp_headers" => "a table of header names to values",
        _ => return None,
    })
}
