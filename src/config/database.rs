//! `[database]`: which PostgreSQL to use, its validation, and how its URL is shown redacted.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{ConfigError, serialize_secret};

/// Which PostgreSQL to use: a URL, or the embedded cluster under `data_dir` when none is given.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://` URL; empty means the embedded cluster.
    #[serde(serialize_with = "serialize_secret")]
    pub url: SecretString,
    /// Upper bound of the connection pool.
    pub max_connections: u32,
    /// How long to wait for a connection before a request fails.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// Directory holding `initdb` and `postgres` for the embedded cluster; empty searches.
    pub embedded_bin_dir: PathBuf,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from(String::new()),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            embedded_bin_dir: PathBuf::new(),
        }
    }
}

impl DatabaseConfig {
    /// The configured URL, if any.
    pub fn url(&self) -> Option<&str> {
        let url = self.url.expose_secret().trim();
        (!url.is_empty()).then_some(url)
    }

    pub(super) fn validate(&self, bad: &dyn Fn(&str) -> ConfigError) -> Result<(), ConfigError> {
        if self.max_connections == 0 {
            return Err(bad("database.max_connections"));
        }
        if let Some(url) = self.url()
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(bad("database.url"));
        }
        Ok(())
    }
}

/// What a person should write for `database.*` keys.
pub(super) fn expectation(key: &str) -> Option<&'static str> {
    Some(match key {
        "database.embedded_bin_dir" => "a directory path",
        "database.max_connections" => "a whole number above 0",
        "database.url" => "a postgres:// URL, or empty for the embedded cluster",
        _ => return None,
    })
}

/// Hide the password of a `postgres://user:password@host/db` URL.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<redacted>".into();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:<redacted>@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_only_the_password() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db:5432/x"),
            "postgres://app:<redacted>@db:5432/x"
        );
        assert_eq!(redact_url("postgres://app@db/x"), "postgres://app@db/x");
    }
}
