//! Limits as numbers: the request-rate limiter's arithmetic (GCRA) and the headers that tell a
//! client where it stands (IETF draft `RateLimit-Policy` / `RateLimit`, and the common
//! `X-RateLimit-Limit` / `-Remaining` / `-Reset`).

use std::time::Duration;

use chrono::{DateTime, Utc};

/// A generic cell rate algorithm limit: `limit` requests per `window`, in bursts of up to
/// `limit`. The state is one timestamp per user, shared by all of the user's tokens: the
/// theoretical arrival time (TAT) of the next request; a request is allowed when it leaves the
/// TAT at most `window` ahead of now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Requests per window.
    pub limit: u32,
    /// The window.
    pub window: Duration,
}

impl Gcra {
    /// The time one request adds to the TAT (`window / limit`).
    pub fn interval(&self) -> Duration {
        self.window / self.limit.max(1)
    }

    /// Requests still allowed right now when the TAT is `ahead` of now.
    pub fn remaining(&self, ahead: Duration) -> u32 {
        let room = self.window.saturating_sub(ahead).as_micros();
        let per = self.interval().as_micros().max(1);
        (room / per).min(u128::from(self.limit)) as u32
    }

    /// How long a refused caller must wait when the TAT is `ahead` of now.
    pub fn retry_after(&self, ahead: Duration) -> Duration {
        (ahead + self.interval()).saturating_sub(self.window)
    }
}

/// One limit as the response headers describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitState {
    /// The policy's name: `requests` for the rate limit, the action for a quota.
    pub name: String,
    /// Units per window.
    pub limit: u64,
    /// Units left now.
    pub remaining: u64,
    /// The window's length.
    pub window: Duration,
    /// When the units are all back (the rate limit) or the quota resets.
    pub resets_at: DateTime<Utc>,
}

impl LimitState {
    /// Whole seconds from `now` until `resets_at`, rounded up.
    pub fn reset_secs(&self, now: DateTime<Utc>) -> u64 {
        ceil_secs(self.resets_at - now)
    }
}

/// Whole seconds of `d`, rounded up; 0 for negative durations.
pub fn ceil_secs(d: chrono::TimeDelta) -> u64 {
    let micros = d.num_microseconds().unwrap_or(i64::MAX).max(0) as u64;
    micros.div_ceil(1_000_000)
}

/// The headers for `limits` (every policy that applies to the request) with `primary` (the
/// one a client most needs: the quota a request charges, else the rate limit) in
/// `X-RateLimit-*`. `X-RateLimit-Reset` is a Unix time in seconds, as GitHub and most APIs send
/// it; the draft's `t` is seconds from now.
pub fn headers(
    limits: &[LimitState],
    primary: &LimitState,
    now: DateTime<Utc>,
) -> Vec<(&'static str, String)> {
    let policy = (limits.iter())
        .map(|l| format!("\"{}\";q={};w={}", l.name, l.limit, l.window.as_secs()))
        .collect::<Vec<_>>()
        .join(", ");
    let state = (limits.iter())
        .map(|l| format!("\"{}\";r={};t={}", l.name, l.remaining, l.reset_secs(now)))
        .collect::<Vec<_>>()
        .join(", ");
    let reset_at =
        primary.resets_at.timestamp() + i64::from(primary.resets_at.timestamp_subsec_micros() > 0);
    vec![
        ("RateLimit-Policy", policy),
        ("RateLimit", state),
        ("X-RateLimit-Limit", primary.limit.to_string()),
        ("X-RateLimit-Remaining", primary.remaining.to_string()),
        ("X-RateLimit-Reset", reset_at.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_minute(limit: u32) -> Gcra {
        Gcra {
            limit,
            window: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_fresh_user_has_the_whole_burst() {
        let g = per_minute(60);
        assert_eq!(g.interval(), Duration::from_secs(1));
        // After the first request the TAT is one interval ahead.
        assert_eq!(g.remaining(Duration::from_secs(1)), 59);
        assert_eq!(g.remaining(Duration::ZERO), 60);
        assert_eq!(g.remaining(Duration::from_secs(60)), 0);
    }

    #[test]
    fn a_refused_request_waits_for_one_interval_to_free() {
        let g = per_minute(60);
        // TAT exactly a window ahead: the next request fits after one interval.
        assert_eq!(
            g.retry_after(Duration::from_secs(60)),
            Duration::from_secs(1)
        );
        assert_eq!(
            g.retry_after(Duration::from_millis(60_500)),
            Duration::from_millis(1_500)
        );
        assert_eq!(g.retry_after(Duration::from_secs(10)), Duration::ZERO);
    }

    #[test]
    fn headers_list_every_policy_and_put_the_primary_in_x_ratelimit() {
        let now: DateTime<Utc> = "2026-11-27T10:00:00Z".parse().unwrap();
        let rate = LimitState {
            name: "requests".into(),
            limit: 120,
            remaining: 119,
            window: Duration::from_secs(60),
            resets_at: now + chrono::Duration::milliseconds(500),
        };
        let quota = LimitState {
            name: "scrape".into(),
            limit: 20,
            remaining: 3,
            window: Duration::from_secs(86_400),
            resets_at: "2026-11-28T00:00:00Z".parse().unwrap(),
        };
        let h = headers(&[rate, quota.clone()], &quota, now);
        let get = |name: &str| h.iter().find(|(n, _)| *n == name).unwrap().1.clone();
        assert_eq!(
            get("RateLimit-Policy"),
            "\"requests\";q=120;w=60, \"scrape\";q=20;w=86400"
        );
        assert_eq!(
            get("RateLimit"),
            "\"requests\";r=119;t=1, \"scrape\";r=3;t=50400"
        );
        assert_eq!(get("X-RateLimit-Limit"), "20");
        assert_eq!(get("X-RateLimit-Remaining"), "3");
        assert_eq!(get("X-RateLimit-Reset"), "1795824000");
    }
}
