//! `[shutdown]`: how long in-flight work gets after SIGTERM.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Graceful shutdown.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How long in-flight requests and jobs get to finish after SIGTERM.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
        }
    }
}
