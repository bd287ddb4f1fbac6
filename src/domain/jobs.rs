//! Job rules that need no I/O: states as the API shows them, and the retry backoff.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The stable names of the job kinds: stored in every row, never renamed. Each kind's
/// `JobKind::NAME` is one of these, and the use cases that start a kind name it by these.
pub mod kinds {
    /// Diagnostics: echoes its arguments, optionally sleeping or failing.
    pub const ECHO: &str = "echo";
    /// Render a page in headless Chromium.
    pub const SCRAPE: &str = "scrape";
    /// Take a crawl one step: read robots.txt and the sitemap, start the next pages' scrapes.
    pub const CRAWL: &str = "crawl";
    /// Summarise a document.
    pub const SUMMARISE: &str = "summarise";
    /// Deliver one event to one channel.
    pub const NOTIFY: &str = "notify";
    /// Insert sample transactions.
    pub const INJECT: &str = "inject";
    /// Start new quota periods.
    pub const QUOTA_RESET: &str = "quota_reset";
}

/// A job's state as a person sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting to run now.
    Pending,
    /// Waiting for its `run_at` in the future.
    Scheduled,
    /// A worker is on it.
    Running,
    /// Failed; will run again at `run_at`.
    Retrying,
    /// Finished successfully.
    Succeeded,
    /// Failed for good (permanent error, attempts used up, or it kept killing its worker).
    Dead,
    /// Cancelled by a person.
    Cancelled,
}

impl JobState {
    /// Every state, in the order a job may pass through them.
    pub const ALL: [JobState; 7] = [
        JobState::Pending,
        JobState::Scheduled,
        JobState::Running,
        JobState::Retrying,
        JobState::Succeeded,
        JobState::Dead,
        JobState::Cancelled,
    ];

    /// The status of work a job does for a resource (a scrape, a summary): the outcome the job
    /// recorded once finished, else its job's state; a job that is dead (or pruned) without
    /// recording one failed.
    pub fn of_work(
        outcome: Option<&str>,
        job_state: Option<&str>,
        run_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> String {
        if let Some(outcome) = outcome {
            return outcome.to_string();
        }
        match job_state.and_then(|stored| JobState::of(stored, run_at, now)) {
            Some(JobState::Dead) | None => "failed",
            Some(state) => state.as_str(),
        }
        .to_string()
    }

    /// Every status [`JobState::of_work`] gives, in the API's order: the states, with `failed`
    /// for `dead` (a finished job records `succeeded`, `failed` or `cancelled` as its outcome).
    pub fn work_statuses() -> Vec<&'static str> {
        Self::ALL
            .map(|state| match state {
                JobState::Dead => "failed",
                state => state.as_str(),
            })
            .to_vec()
    }

    /// The state of a stored row: `pending` with a future `run_at` reads as scheduled.
    pub fn of(stored: &str, run_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<Self> {
        Some(match stored {
            "pending" if run_at > now => JobState::Scheduled,
            "pending" => JobState::Pending,
            "running" => JobState::Running,
            "retrying" => JobState::Retrying,
            "succeeded" => JobState::Succeeded,
            "dead" => JobState::Dead,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }

    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Scheduled => "scheduled",
            JobState::Running => "running",
            JobState::Retrying => "retrying",
            JobState::Succeeded => "succeeded",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }
}

/// Exponential backoff with jitter: attempt n waits `base * 2^(n-1)`, capped at `max`, then
/// scaled by a random factor in `[1 - jitter, 1]` so that jobs failing together spread out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay after the first failed attempt.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Fraction of the delay that is randomised, 0.0 to 1.0.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(3600),
            jitter: 0.25,
        }
    }
}

impl Backoff {
    /// Delay before the next try after failed attempt `attempt` (1-based); `unit` is a random
    /// number in `[0, 1)`.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(31);
        let full = self.base.saturating_mul(1u32 << exponent).min(self.max);
        let jitter = self.jitter.clamp(0.0, 1.0) * unit.clamp(0.0, 1.0);
        full.mul_f64(1.0 - jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_attempt_up_to_the_cap() {
        let b = Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
            jitter: 0.0,
        };
        let delays: Vec<u64> = (1..=7).map(|n| b.delay(n, 0.5).as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(b.delay(1000, 0.0), Duration::from_secs(60));
    }

    #[test]
    fn jitter_shortens_the_delay_by_at_most_its_fraction() {
        let b = Backoff {
            base: Duration::from_secs(10),
            max: Duration::from_secs(100),
            jitter: 0.5,
        };
        assert_eq!(b.delay(1, 0.0), Duration::from_secs(10));
        assert_eq!(b.delay(1, 1.0), Duration::from_secs(5));
        assert_eq!(b.delay(1, 0.5), Duration::from_millis(7500));
    }

    #[test]
    fn a_pending_job_in_the_future_reads_as_scheduled() {
        let now = Utc::now();
        let later = now + chrono::Duration::seconds(5);
        assert_eq!(
            JobState::of("pending", later, now),
            Some(JobState::Scheduled)
        );
        assert_eq!(JobState::of("pending", now, now), Some(JobState::Pending));
        assert_eq!(JobState::of("bogus", now, now), None);
    }
}
