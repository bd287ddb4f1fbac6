//! `[notify]`: delivery retries, FCM and Web Push settings, with their validation.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, is_http_url};

/// Notifications: retries, FCM and Web Push settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Waits between a delivery's attempts: the first retry waits the first entry, and so on;
    /// the delivery is dead after the last.
    #[serde(with = "duration_list")]
    pub retry_schedule: Vec<Duration>,
    /// Fraction of each wait that is random, 0.0 to 1.0.
    pub retry_jitter: f64,
    /// Longest a webhook, FCM or push service request may take.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Deliveries in flight at once in this process, unless `[jobs.kinds.notify] concurrency`
    /// says otherwise: a delivery waits on its receiver, not on this machine, so more run at
    /// once than the `[jobs] concurrency` of work that uses the CPU.
    pub concurrency: usize,
    /// A Google service-account JSON key file for FCM; empty: FCM channels cannot be created.
    pub fcm_service_account: PathBuf,
    /// The FCM API base URL.
    pub fcm_base: String,
    /// The OAuth2 token URL; empty: the one in the service-account key.
    pub fcm_token_uri: String,
    /// The VAPID `sub` claim: a mailto: or https: contact for push services.
    pub vapid_subject: String,
    /// How long push services keep an undelivered Web Push message, in seconds.
    pub webpush_ttl: u32,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        let secs = Duration::from_secs;
        Self {
            retry_schedule: vec![
                secs(5),
                secs(30),
                secs(120),
                secs(600),
                secs(3600),
                secs(4 * 3600),
            ],
            retry_jitter: 0.2,
            timeout: secs(10),
            concurrency: 32,
            fcm_service_account: PathBuf::new(),
            fcm_base: "https://fcm.googleapis.com".into(),
            fcm_token_uri: String::new(),
            vapid_subject: "mailto:admin@localhost".into(),
            webpush_ttl: 86_400,
        }
    }
}

/// A list of durations written like `["5s", "2m"]`.
mod duration_list {
    use std::time::Duration;

    use humantime_serde::re::humantime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(list: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            list.iter()
                .map(|d| humantime::format_duration(*d).to_string()),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        let list = Vec::<String>::deserialize(d)?;
        (list.iter())
            .map(|s| humantime::parse_duration(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

impl NotifyConfig {
    /// Attempts per delivery: the first and one after each wait of `retry_schedule`.
    pub fn max_attempts(&self) -> i32 {
        self.retry_schedule.len() as i32 + 1
    }

    pub(super) fn validate(&self, bad: &dyn Fn(&str) -> ConfigError) -> Result<(), ConfigError> {
        if self.retry_schedule.is_empty() || self.retry_schedule.len() > 30 {
            return Err(bad("notify.retry_schedule"));
        }
        if !(0.0..=1.0).contains(&self.retry_jitter) {
            return Err(bad("notify.retry_jitter"));
        }
        if self.timeout.is_zero() {
            return Err(bad("notify.timeout"));
        }
        if self.concurrency == 0 {
            return Err(bad("notify.concurrency"));
        }
        if !is_http_url(&self.fcm_base) {
            return Err(bad("notify.fcm_base"));
        }
        if !self.fcm_token_uri.is_empty() && !is_http_url(&self.fcm_token_uri) {
            return Err(bad("notify.fcm_token_uri"));
        }
        let subject = &self.vapid_subject;
        if !(subject.starts_with("mailto:") || subject.starts_with("https://")) {
            return Err(bad("notify.vapid_subject"));
        }
        Ok(())
    }
}

/// What a person should write for `notify.*` keys.
pub(super) fn expectation(key: &str) -> Option<&'static str> {
    Some(match key {
        "notify.retry_schedule" => {
            "a list of 1 to 30 durations like [\"5s\", \"30s\", \"2m\", \"1h\"]"
        }
        "notify.retry_jitter" => "a number from 0.0 to 1.0",
        "notify.fcm_base" | "notify.fcm_token_uri" => "an http:// or https:// URL",
        "notify.fcm_service_account" => "the path of a Google service-account JSON key, or empty",
        "notify.vapid_subject" => "a mailto: or https: contact, like mailto:ops@example.com",
        "notify.webpush_ttl" => "a number of seconds",
        "notify.concurrency" => "a whole number from 1",
        _ => return None,
    })
}
