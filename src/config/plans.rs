//! `[plans]` and `[quotas]`: what each plan gives its users (quotas, request rate, bounds on
//! what they hold and ask for) and how quotas apply, with their validation.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError};

/// What a plan gives its users: units per day for each action, and a request rate.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlanConfig {
    /// Units per day (reset at the user's local midnight) by action, e.g. `scrape = 20`. An
    /// action missing here is not part of the plan.
    #[serde(default)]
    pub quotas: BTreeMap<String, u32>,
    /// Requests per token allowed in `rate_window`, in bursts of up to that many.
    pub rate_limit: u32,
    /// The window of `rate_limit`.
    #[serde(with = "humantime_serde", default = "one_minute")]
    pub rate_window: Duration,
    /// Unrevoked API tokens a user may hold.
    #[serde(default = "PlanConfig::default_max_tokens")]
    pub max_tokens: u32,
    /// Notification channels a user may have.
    #[serde(default = "PlanConfig::default_max_channels")]
    pub max_channels: u32,
    /// Documents a user may keep.
    #[serde(default = "PlanConfig::default_max_documents")]
    pub max_documents: u32,
    /// Live (pending, scheduled, running, retrying) jobs a user may have at once.
    #[serde(default = "PlanConfig::default_max_live_jobs")]
    pub max_live_jobs: u32,
    /// Highest `priority` a user may give a job (any lower one is allowed).
    #[serde(default)]
    pub max_priority: i16,
    /// Most attempts a user may ask for a job.
    #[serde(default = "PlanConfig::default_max_attempts")]
    pub max_attempts: i32,
}

impl Default for PlanConfig {
    /// No quotas, 120 requests a minute, the free plan's bounds.
    fn default() -> Self {
        Self {
            quotas: BTreeMap::new(),
            rate_limit: 120,
            rate_window: one_minute(),
            max_tokens: Self::default_max_tokens(),
            max_channels: Self::default_max_channels(),
            max_documents: Self::default_max_documents(),
            max_live_jobs: Self::default_max_live_jobs(),
            max_priority: 0,
            max_attempts: Self::default_max_attempts(),
        }
    }
}

impl PlanConfig {
    fn default_max_tokens() -> u32 {
        10
    }
    fn default_max_channels() -> u32 {
        10
    }
    fn default_max_documents() -> u32 {
        1_000
    }
    fn default_max_live_jobs() -> u32 {
        100
    }
    fn default_max_attempts() -> i32 {
        5
    }
}

fn one_minute() -> Duration {
    Duration::from_secs(60)
}

/// The plans a fresh install has: `free` and `pro`.
pub(super) fn default_plans() -> BTreeMap<String, PlanConfig> {
    let plan = |scrape, summarise, rate_limit| PlanConfig {
        quotas: BTreeMap::from([
            ("scrape".to_string(), scrape),
            ("summarise".to_string(), summarise),
        ]),
        rate_limit,
        ..PlanConfig::default()
    };
    let pro = PlanConfig {
        max_tokens: 50,
        max_channels: 100,
        max_documents: 100_000,
        max_live_jobs: 2_000,
        max_priority: 10,
        max_attempts: 10,
        ..plan(1000, 500, 1200)
    };
    BTreeMap::from([
        ("free".to_string(), plan(20, 10, 120)),
        ("pro".to_string(), pro),
    ])
}

/// How quotas are applied.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotasConfig {
    /// The plan of users created without one; must be one of `[plans]`.
    pub default_plan: String,
    /// IANA time zone whose midnight resets quotas of users without their own time zone.
    pub default_timezone: String,
}

impl Default for QuotasConfig {
    fn default() -> Self {
        Self {
            default_plan: "free".into(),
            default_timezone: "UTC".into(),
        }
    }
}

impl Config {
    /// The plan called `name`; an unknown name (a plan removed from the configuration) gets
    /// the default plan.
    pub fn plan(&self, name: &str) -> &PlanConfig {
        (self.plans.get(name))
            .or_else(|| self.plans.get(&self.quotas.default_plan))
            .expect("validation keeps quotas.default_plan among the plans")
    }
}

/// Check `[quotas]` and every plan of `plans`.
pub(super) fn validate(
    quotas: &QuotasConfig,
    plans: &BTreeMap<String, PlanConfig>,
    bad: &dyn Fn(&str) -> ConfigError,
) -> Result<(), ConfigError> {
    if !plans.contains_key(&quotas.default_plan) {
        return Err(bad("quotas.default_plan"));
    }
    if quotas.default_timezone.parse::<chrono_tz::Tz>().is_err() {
        return Err(bad("quotas.default_timezone"));
    }
    for (name, plan) in plans {
        if !crate::domain::users::is_plan_name(name) {
            return Err(bad(&format!("plans.{name}")));
        }
        let key = |field: &str| format!("plans.{name}.{field}");
        for (field, wrong) in [
            ("rate_limit", plan.rate_limit == 0),
            ("rate_window", plan.rate_window.is_zero()),
            // A user without a token cannot call the API at all.
            ("max_tokens", plan.max_tokens == 0),
            ("max_priority", plan.max_priority < 0),
            ("max_attempts", plan.max_attempts < 1),
        ] {
            if wrong {
                return Err(bad(&key(field)));
            }
        }
    }
    Ok(())
}

/// What a person should write for `quotas.*` and `plans.*` keys.
pub(super) fn expectation(key: &str) -> Option<&'static str> {
    Some(match key {
        "quotas.default_plan" => "the name of one of the [plans]",
        "quotas.default_timezone" => "an IANA time zone like UTC or Europe/Berlin",
        "plans" => "a table of plans, each with quotas, rate_limit and rate_window",
        k if k.starts_with("plans.") && k.ends_with(".rate_limit") => "a whole number above 0",
        k if k.starts_with("plans.") && k.ends_with(".rate_window") => {
            "a duration above 0, like 1m"
        }
        k if k.starts_with("plans.") && k.contains(".quotas") => {
            "a table of actions to units per day, like { scrape = 20 }"
        }
        k if k.starts_with("plans.")
            && (k.ends_with(".max_tokens") || k.ends_with(".max_attempts")) =>
        {
            "a whole number above 0"
        }
        k if k.starts_with("plans.") && k.ends_with(".max_priority") => {
            "a whole number from 0 to 32767"
        }
        k if k.starts_with("plans.")
            && (k.ends_with(".max_channels")
                || k.ends_with(".max_documents")
                || k.ends_with(".max_live_jobs")) =>
        {
            "a whole number, 0 or more"
        }
        k if k.starts_with("plans.") => {
            "a plan name of a-z, 0-9, _ and - with quotas, rate_limit and rate_window"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use figment::Figment;
    use figment::providers::Serialized;

    use crate::config::{Config, PlanConfig, validate};

    fn error_with(change: impl Fn(&mut PlanConfig)) -> String {
        let mut config = Config::default();
        change(config.plans.get_mut("pro").unwrap());
        let figment = Figment::from(Serialized::defaults(&config));
        match validate(&config, &figment) {
            Ok(()) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn plan_bounds_out_of_range_are_refused_by_name() {
        type Change = fn(&mut PlanConfig);
        let cases: [(&str, Change); 3] = [
            ("plans.pro.max_attempts", |p| p.max_attempts = 0),
            ("plans.pro.max_priority", |p| p.max_priority = -1),
            ("plans.pro.max_tokens", |p| p.max_tokens = 0),
        ];
        for (key, change) in cases {
            let error = error_with(change);
            assert!(error.contains(&format!("`{key}`")), "{key}: {error}");
            assert!(error.contains("expected a whole number"), "{key}: {error}");
        }
    }

    #[test]
    fn the_shipped_plans_and_a_plan_without_channels_are_valid() {
        assert_eq!(error_with(|_| {}), "");
        assert_eq!(error_with(|p| p.max_channels = 0), "");
    }
}
