//! `[summarise]`: the model providers, tried in order, and the built-in summariser, with their
//! validation. [`ProviderConfig`] lives here, not in `summarise`, so that config depends on
//! nothing above `domain`; `summarise::providers` re-exports it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, is_http_url};

/// Summaries: the model providers, tried in order, and the built-in summariser.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SummariseConfig {
    /// OpenAI-compatible endpoints, tried in order; none: the built-in extractive summariser.
    pub providers: Vec<ProviderConfig>,
    /// A provider that failed (timeout, 5xx, 429) is skipped this long (429: its Retry-After).
    #[serde(with = "humantime_serde")]
    pub cool_down: Duration,
    /// When every provider is down, answer with the built-in summariser (marked as such)
    /// instead of waiting for one to come back.
    pub fallback_to_builtin: bool,
    /// Largest document text accepted, in bytes (413 above).
    pub max_document_bytes: usize,
}

impl Default for SummariseConfig {
    fn default() -> Self {
        Self {
            providers: Vec::new(),
            cool_down: Duration::from_secs(60),
            fallback_to_builtin: true,
            max_document_bytes: 512 * 1024,
        }
    }
}

/// One OpenAI-compatible endpoint, as configured under `[[summarise.providers]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Name recorded with each summary and used as `preferred`.
    pub name: String,
    /// API base including the version, e.g. `http://127.0.0.1:8081/v1`.
    pub base_url: String,
    /// Model name sent with each request.
    pub model: String,
    /// Name of the environment variable holding the API key; empty for none.
    #[serde(default)]
    pub api_key_env: String,
    /// Context window of the model, in tokens.
    pub context_window: u32,
    /// Longest one call may take, connecting and reading the answer included.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Upper bound on the tokens of one answer (`max_completion_tokens`).
    pub max_output_tokens: u32,
}

impl SummariseConfig {
    pub(super) fn validate(&self, bad: &dyn Fn(&str) -> ConfigError) -> Result<(), ConfigError> {
        if self.max_document_bytes == 0 {
            return Err(bad("summarise.max_document_bytes"));
        }
        if self.cool_down.is_zero() {
            return Err(bad("summarise.cool_down"));
        }
        for (i, p) in self.providers.iter().enumerate() {
            let key = |field: &str| format!("summarise.providers.{i}.{field}");
            if p.name.trim().is_empty() {
                return Err(bad(&key("name")));
            }
            if !is_http_url(&p.base_url) {
                return Err(bad(&key("base_url")));
            }
            if p.model.trim().is_empty() {
                return Err(bad(&key("model")));
            }
            if p.context_window < 512 {
                return Err(bad(&key("context_window")));
            }
            if p.timeout.is_zero() {
                return Err(bad(&key("timeout")));
            }
        }
        Ok(())
    }
}

/// What a person should write for `summarise.*` keys.
pub(super) fn expectation(key: &str) -> Option<&'static str> {
    Some(match key {
        "summarise.max_document_bytes" => "a whole number above 0",
        "summarise.cool_down" => "a duration above 0, like 60s",
        "summarise.fallback_to_builtin" => "true or false",
        "summarise.providers" => {
            "a list of [[summarise.providers]] tables with name, base_url, model, api_key_env, \
             context_window, timeout and max_output_tokens"
        }
        k if k.starts_with("summarise.providers.") && k.ends_with(".base_url") => {
            "an http:// or https:// URL of an OpenAI-compatible API, like http://127.0.0.1:8081/v1"
        }
        k if k.starts_with("summarise.providers.") && k.ends_with(".context_window") => {
            "a number of tokens, at least 512"
        }
        k if k.starts_with("summarise.providers.") => "a non-empty value",
        _ => return None,
    })
}
