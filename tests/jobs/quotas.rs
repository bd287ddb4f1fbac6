//! The daily quota reset against a real PostgreSQL: each user's period runs from their local
//! midnight to the next, also on the days daylight saving starts or ends; running the reset
//! again changes nothing; a reset missed for days starts the current period, not a past one.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;
use workhorse::store::quotas;

async fn user(pool: &PgPool, timezone: Option<&str>) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO users (id, name, role, timezone) \
         VALUES (gen_random_uuid(), 'u', 'user', $1) RETURNING id",
    )
    .bind(timezone)
    .fetch_one(pool)
    .await
    .unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A counter with `used` units whose period ends at `resets_at`.
async fn counter(pool: &PgPool, user: Uuid, resets_at: DateTime<Utc>, used: i32) {
    sqlx::query(
        "INSERT INTO quota_counters (user_id, action, period_start, resets_at, used, reserved) \
         VALUES ($1, 'scrape', $2 - interval '1 day', $2, $3, 1)",
    )
    .bind(user)
    .bind(resets_at)
    .bind(used)
    .execute(pool)
    .await
    .unwrap();
}

/// used, reserved, period_start, resets_at
async fn read(pool: &PgPool, user: Uuid) -> (i32, i32, DateTime<Utc>, DateTime<Utc>) {
    sqlx::query_as(
        "SELECT used, reserved, period_start, resets_at FROM quota_counters WHERE user_id = $1",
    )
    .bind(user)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn periods_follow_local_midnights_across_daylight_saving_changes(pool: PgPool) {
    // Berlin springs forward on 2026-03-29 (a 23-hour day); New York falls back on
    // 2026-11-01 (a 25-hour day); a user without a zone takes the default, here Tokyo.
    let berlin = user(&pool, Some("Europe/Berlin")).await;
    let new_york = user(&pool, Some("America/New_York")).await;
    let default = user(&pool, None).await;
    counter(&pool, berlin, at("2026-03-28T23:00:00Z"), 3).await;
    counter(&pool, new_york, at("2026-11-01T04:00:00Z"), 4).await;
    counter(&pool, default, at("2026-03-28T15:00:00Z"), 5).await;

    // The run at Berlin's midnight starts Berlin's day and Tokyo's (already due), not New
    // York's.
    let n = quotas::reset_due(&pool, at("2026-03-28T23:00:00Z"), "Asia/Tokyo")
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        read(&pool, berlin).await,
        (0, 1, at("2026-03-28T23:00:00Z"), at("2026-03-29T22:00:00Z")),
        "the held unit stays; the day has 23 hours"
    );
    assert_eq!(
        read(&pool, default).await,
        (0, 1, at("2026-03-28T15:00:00Z"), at("2026-03-29T15:00:00Z"))
    );
    assert_eq!(read(&pool, new_york).await.0, 4);

    // New York's run, 30 s late: the period is the local day, 25 hours long.
    let n = quotas::reset_due(&pool, at("2026-11-01T04:00:30Z"), "Asia/Tokyo")
        .await
        .unwrap();
    // Berlin's and Tokyo's periods ended long before this date too.
    assert_eq!(n, 3);
    assert_eq!(
        read(&pool, new_york).await,
        (0, 1, at("2026-11-01T04:00:00Z"), at("2026-11-02T05:00:00Z"))
    );
    // Berlin, back on standard time by November: midnight is 23:00 UTC.
    let (_, _, start, end) = read(&pool, berlin).await;
    assert_eq!(
        (start, end),
        (at("2026-10-31T23:00:00Z"), at("2026-11-01T23:00:00Z"))
    );
}

#[sqlx::test]
async fn a_second_run_in_the_same_period_changes_nothing(pool: PgPool) {
    let u = user(&pool, Some("Europe/Berlin")).await;
    counter(&pool, u, at("2026-06-01T22:00:00Z"), 7).await;
    let run = at("2026-06-01T22:00:05Z");
    assert_eq!(quotas::reset_due(&pool, run, "UTC").await.unwrap(), 1);
    let first = read(&pool, u).await;
    // Units used after the reset stay used when the job runs again.
    sqlx::query("UPDATE quota_counters SET used = 2")
        .execute(&pool)
        .await
        .unwrap();
    for later in ["2026-06-01T22:00:05Z", "2026-06-02T12:00:00Z"] {
        assert_eq!(quotas::reset_due(&pool, at(later), "UTC").await.unwrap(), 0);
    }
    let (used, _, start, end) = read(&pool, u).await;
    assert_eq!((used, start, end), (2, first.2, first.3));
}

#[sqlx::test]
async fn a_reset_missed_for_days_starts_the_current_period(pool: PgPool) {
    let u = user(&pool, Some("America/New_York")).await;
    counter(&pool, u, at("2026-07-01T04:00:00Z"), 9).await;
    // The daemon was down for four days; the catch-up run is at 10:00 New York time.
    let run = at("2026-07-05T14:00:00Z");
    assert_eq!(quotas::reset_due(&pool, run, "UTC").await.unwrap(), 1);
    assert_eq!(
        read(&pool, u).await,
        (0, 1, at("2026-07-05T04:00:00Z"), at("2026-07-06T04:00:00Z"))
    );
}
