//! `[metrics]`: who may read `GET /metrics` without a token, how long the jobs gauge is cached,
//! and how often metrics go to the OTLP receiver; with their validation.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Prometheus metrics at `GET /metrics`, and their OTLP export.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Networks (CIDR, or a single address) whose requests may read `/metrics` without a
    /// token; everyone else needs an admin token.
    pub allow_from: Vec<String>,
    /// How long one count of the jobs table serves the `workhorse_jobs` gauge.
    #[serde(with = "humantime_serde")]
    pub jobs_cache: Duration,
    /// How often metrics are pushed to `<telemetry.otlp_endpoint>/v1/metrics`, when set.
    #[serde(with = "humantime_serde")]
    pub export_interval: Duration,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            allow_from: vec!["127.0.0.1/32".into(), "::1/128".into()],
            jobs_cache: Duration::from_secs(5),
            export_interval: Duration::from_secs(60),
        }
    }
}

impl MetricsConfig {
    pub(super) fn validate(&self, bad: &dyn Fn(&str) -> ConfigError) -> Result<(), ConfigError> {
        if self.allow_from.iter().any(|n| parse_network(n).is_none()) {
            return Err(bad("metrics.allow_from"));
        }
        // A zero cache would count the jobs table on every scrape; an hour would hide a backlog.
        let cache = Duration::from_millis(100)..=Duration::from_secs(3600);
        if !cache.contains(&self.jobs_cache) {
            return Err(bad("metrics.jobs_cache"));
        }
        if self.export_interval < Duration::from_secs(1) {
            return Err(bad("metrics.export_interval"));
        }
        Ok(())
    }

    /// The networks of `allow_from`; entries that do not parse (refused by validation) are
    /// left out.
    pub fn networks(&self) -> Vec<IpNet> {
        self.allow_from
            .iter()
            .filter_map(|n| parse_network(n))
            .collect()
    }
}

/// `10.0.0.0/8`, or a single address such as `10.1.2.3` (a /32 or /128).
fn parse_network(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// What a person should write for `metrics.*` keys.
pub(super) fn expectation(key: &str) -> Option<&'static str> {
    Some(match key {
        "metrics.allow_from" => {
            "a list of networks like [\"127.0.0.1/32\", \"::1/128\", \"10.0.0.0/8\"], or []"
        }
        "metrics.jobs_cache" => "a duration from 100ms to 1h, like 5s",
        "metrics.export_interval" => "a duration of at least 1s, like 60s",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_from_takes_networks_and_single_addresses() {
        let config = MetricsConfig {
            allow_from: vec!["10.0.0.0/8".into(), "192.168.1.7".into(), "::1/128".into()],
            ..MetricsConfig::default()
        };
        let nets = config.networks();
        assert_eq!(nets.len(), 3);
        assert!(nets[1].contains(&"192.168.1.7".parse::<IpAddr>().unwrap()));
        assert!(parse_network("10.0.0.0/33").is_none());
        assert!(parse_network("localhost").is_none());
    }
}
