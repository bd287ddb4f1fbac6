//! `[http]`: the listener and its limits, with their validation.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, is_http_url};

/// The HTTP listener and its limits.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address and port to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    pub body_limit_bytes: usize,
    /// Longest a request may take before it is answered with 503.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Origins allowed to call the API from a browser; empty disables CORS.
    pub cors_allow_origins: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            cors_allow_origins: Vec::new(),
        }
    }
}

impl HttpConfig {
    pub(super) fn validate(&self, bad: &dyn Fn(&str) -> ConfigError) -> Result<(), ConfigError> {
        if self.body_limit_bytes == 0 {
            return Err(bad("http.body_limit_bytes"));
        }
        if (self.cors_allow_origins.iter()).any(|o| o != "*" && !is_http_url(o)) {
            return Err(bad("http.cors_allow_origins"));
        }
        Ok(())
    }
}

/// What a person should write for `http.*` keys.
pub(super) fn expectation(key: &str) -> Option<&'static str> {
    Some(match key {
        "http.listen" => "an address and port like 127.0.0.1:8080",
        "http.body_limit_bytes" => "a whole number above 0",
        "http.cors_allow_origins" => {
            "a list of origins like [\"https://app.example.com\"], or [\"*\"]"
        }
        _ => return None,
    })
}
