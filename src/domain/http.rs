//! HTTP header values as rules: how long a server asked us to wait (`Retry-After`).

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The wait a `Retry-After` value asks for as of `now`: whole seconds, or an HTTP date
/// (RFC 9110; parsed as RFC 2822, which IMF-fixdate is a form of). `None` for a value that
/// is neither, or a date already past: the caller then waits as it would without the header.
pub fn retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&Utc) - now).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-04T17:00:00Z")
            .expect("a time")
            .with_timezone(&Utc)
    }

    #[test]
    fn retry_after_reads_whole_seconds() {
        assert_eq!(retry_after("7", now()), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(" 0 ", now()), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_reads_an_http_date_against_now() {
        let wait = retry_after("Fri, 04 Dec 2026 17:02:00 GMT", now());

        assert_eq!(wait, Some(Duration::from_secs(120)));
    }

    #[test]
    fn retry_after_ignores_a_past_date_and_anything_else() {
        assert_eq!(retry_after("Fri, 04 Dec 2026 16:59:00 GMT", now()), None);
        assert_eq!(retry_after("-3", now()), None);
        assert_eq!(retry_after("1.5", now()), None);
        assert_eq!(retry_after("soon", now()), None);
        assert_eq!(retry_after("", now()), None);
    }
}
