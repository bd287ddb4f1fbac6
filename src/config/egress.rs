//! `[egress]`: where outgoing requests may go, with its validation.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Where outgoing requests may go. Private, loopback, link-local and metadata addresses are
/// refused unless listed here.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressConfig {
    /// Host names (`intranet.example.com`, `*.example.com`), IP addresses and CIDRs
    /// (`10.1.0.0/16`) allowed even though they are private.
    pub allow: Vec<String>,
}

impl EgressConfig {
    pub(super) fn validate(&self, bad: &dyn Fn(&str) -> ConfigError) -> Result<(), ConfigError> {
        // The policy's own parser decides what an entry may be; egress imports nothing of
        // config, so there is no cycle.
        if let Err(e) = crate::egress::EgressPolicy::new(&self.allow) {
            tracing::debug!(error = %e, "bad egress.allow");
            return Err(bad("egress.allow"));
        }
        Ok(())
    }
}

/// What a person should write for `egress.*` keys.
pub(super) fn expectation(key: &str) -> Option<&'static str> {
    Some(match key {
        "egress.allow" => {
            "a list of host names (example.com, *.example.com), IP addresses and CIDRs (10.0.0.0/8)"
        }
        _ => return None,
    })
}
