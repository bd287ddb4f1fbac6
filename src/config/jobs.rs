//! `[jobs]`: the job engine's workers, retries, leases, pruning and schedules, per-kind
//! overrides, and their validation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The job engine: workers, retries, leases, pruning, schedules.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Run workers (and schedules) in this process; `false` makes an API-only node.
    pub run_workers: bool,
    /// Jobs of one kind run at once in this process.
    pub concurrency: usize,
    /// Attempts before a job is dead.
    pub max_attempts: i32,
    /// Longest an attempt may run; a longer one is a failed attempt.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Delay after the first failed attempt; it doubles with each further one.
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    /// Longest delay between attempts.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Fraction of each delay that is randomised, 0.0 to 1.0.
    pub backoff_jitter: f64,
    /// How long a claimed job stays ours without a renewal; a killed process's jobs are back
    /// in work this long after its last renewal (renewed every third of it).
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// Workers a job may kill (lease expired) before it is quarantined as dead.
    pub max_crashes: i32,
    /// Safety-net poll for new jobs when no notification arrives.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Finished jobs are deleted this long after they finished.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Directory with one TOML file per cron schedule.
    pub schedules_dir: PathBuf,
    /// Per-kind overrides of `concurrency`, `max_attempts` and `timeout`.
    pub kinds: BTreeMap<String, KindConfig>,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            run_workers: true,
            concurrency: 8,
            max_attempts: 5,
            timeout: Duration::from_secs(300),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(3600),
            backoff_jitter: 0.25,
            lease: Duration::from_secs(6),
            max_crashes: 3,
            poll_interval: Duration::from_secs(1),
            retention: Duration::from_secs(7 * 24 * 3600),
            schedules_dir: PathBuf::from("jobs"),
            kinds: BTreeMap::new(),
        }
    }
}

/// Overrides for one job kind; absent keys take the `[jobs]` value.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct KindConfig {
    /// Jobs of this kind run at once in this process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// Attempts before a job of this kind is dead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<i32>,
    /// Longest an attempt of this kind may run.
    #[serde(
        default,
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// The quota action (see `[plans]`) each job of this kind charges one unit of; users may
    /// enqueue kinds that charge one through `POST /v1/jobs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<String>,
}

/// The effective settings of one job kind.
#[derive(Debug, Clone, Copy)]
pub struct KindSettings {
    /// Jobs of this kind run at once in this process.
    pub concurrency: usize,
    /// Attempts before a job is dead.
    pub max_attempts: i32,
    /// Longest an attempt may run.
    pub timeout: Duration,
}

impl JobsConfig {
    /// The settings of `kind`: its overrides over the `[jobs]` values.
    pub fn kind(&self, kind: &str) -> KindSettings {
        let o = self.kinds.get(kind).cloned().unwrap_or_default();
        KindSettings {
            concurrency: o.concurrency.unwrap_or(self.concurrency),
            max_attempts: o.max_attempts.unwrap_or(self.max_attempts),
            timeout: o.timeout.unwrap_or(self.timeout),
        }
    }

    pub(super) fn validate(&self, bad: &dyn Fn(&str) -> ConfigError) -> Result<(), ConfigError> {
        if self.concurrency == 0 {
            return Err(bad("jobs.concurrency"));
        }
        if self.max_attempts < 1 {
            return Err(bad("jobs.max_attempts"));
        }
        if self.max_crashes < 1 {
            return Err(bad("jobs.max_crashes"));
        }
        if !(0.0..=1.0).contains(&self.backoff_jitter) {
            return Err(bad("jobs.backoff_jitter"));
        }
        for (key, zero) in [
            ("jobs.timeout", self.timeout.is_zero()),
            ("jobs.lease", self.lease < Duration::from_millis(300)),
            ("jobs.poll_interval", self.poll_interval.is_zero()),
            ("jobs.backoff_max", self.backoff_max < self.backoff_base),
        ] {
            if zero {
                return Err(bad(key));
            }
        }
        for (kind, o) in &self.kinds {
            if o.concurrency == Some(0) {
                return Err(bad(&format!("jobs.kinds.{kind}.concurrency")));
            }
            if o.max_attempts.is_some_and(|n| n < 1) {
                return Err(bad(&format!("jobs.kinds.{kind}.max_attempts")));
            }
            if o.timeout.is_some_and(|t| t.is_zero()) {
                return Err(bad(&format!("jobs.kinds.{kind}.timeout")));
            }
        }
        Ok(())
    }
}

/// What a person should write for `jobs.*` keys.
pub(super) fn expectation(key: &str) -> Option<&'static str> {
    Some(match key {
        "jobs.run_workers" => "true or false",
        k if k.starts_with("jobs.") && (k.ends_with("concurrency") || k.ends_with("attempts")) => {
            "a whole number above 0"
        }
        "jobs.max_crashes" => "a whole number above 0",
        "jobs.backoff_jitter" => "a number from 0.0 to 1.0",
        "jobs.lease" => "a duration of at least 300ms, like 6s",
        "jobs.backoff_max" => "a duration like 1h, not shorter than jobs.backoff_base",
        "jobs.backoff_base" | "jobs.poll_interval" | "jobs.retention" => {
            "a duration like 1s, 500ms or 7days"
        }
        "jobs.schedules_dir" => "a directory path",
        "jobs.kinds" => {
            "a table of job kinds, each with concurrency, max_attempts, timeout and quota"
        }
        _ => return None,
    })
}
