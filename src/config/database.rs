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

/// Query parameters of a PostgreSQL URL whose values are secrets (libpq's `password` and
/// `sslpassword`).
const SECRET_PARAMS: [&str; 2] = ["password", "sslpassword"];

/// Hide the passwords of a PostgreSQL URL: the one in `postgres://user:password@host/db` and
/// those given as query parameters (`?password=…`, `&sslpassword=…`).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<redacted>".into();
    };
    let (location, query) = match rest.split_once('?') {
        Some((location, query)) => (location, Some(query)),
        None => (rest, None),
    };
    // The last `@` ends the user info: an unencoded `@` in a password comes before it.
    let location = match location.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:<redacted>@{host}"),
            None => location.to_string(),
        },
        None => location.to_string(),
    };
    let Some(query) = query else {
        return format!("{scheme}://{location}");
    };
    let query = (query.split('&'))
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if SECRET_PARAMS.iter().any(|s| key.eq_ignore_ascii_case(s)) => {
                format!("{key}=<redacted>")
            }
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&");
    format!("{scheme}://{location}?{query}")
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

    #[test]
    fn redact_url_hides_passwords_given_as_query_parameters() {
        // Regression: `?password=` and libpq's `sslpassword` were printed as given.
        assert_eq!(
            redact_url("postgres://app@db/x?sslmode=require&password=hunter2"),
            "postgres://app@db/x?sslmode=require&password=<redacted>"
        );
        assert_eq!(
            redact_url("postgresql://db/x?sslpassword=k3y&Password=p@ss&application_name=w"),
            "postgresql://db/x?sslpassword=<redacted>&Password=<redacted>&application_name=w"
        );
        assert_eq!(
            redact_url("postgres://app:s3cret@db/x?password=hunter2"),
            "postgres://app:<redacted>@db/x?password=<redacted>"
        );
    }

    #[test]
    fn redact_url_hides_a_password_holding_an_at_sign() {
        assert_eq!(
            redact_url("postgres://app:p@ss@db/x"),
            "postgres://app:<redacted>@db/x"
        );
    }
}
