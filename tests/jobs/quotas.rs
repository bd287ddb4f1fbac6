//! Quota periods against a real PostgreSQL: each user's period runs from their local midnight
//! to the next, also on the days daylight saving starts or ends; running the reset again
//! changes nothing; a reset missed for days starts the current period, not a past one; a
//! period, once started, keeps its end whatever zone the user moves to, and a user who moves
//! every hour for two simulated days never gets more than the limit in any period.

use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;
use workhorse::store::jobs::NewJob;
use workhorse::store::quotas::{self, Charge, Usage};
use workhorse::store::users::{UserPatch, update_user};

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

/// Move `user` to `zone`, as `PATCH /v1/users/{id} {"timezone": …}` does.
async fn move_to(pool: &PgPool, user: Uuid, zone: &str) {
    let patch = UserPatch {
        timezone: Some(Some(zone.to_string())),
        ..UserPatch::default()
    };
    let mut conn = pool.acquire().await.unwrap();
    update_user(&mut conn, user, &patch).await.unwrap().unwrap();
}

/// Enqueue a job of `user` charging `scrape` at `at`, as a request does: job and unit commit
/// together, or neither does.
async fn charge(pool: &PgPool, user: Uuid, limit: u32, at: DateTime<Utc>) -> (Uuid, Charge) {
    let mut tx = pool.begin().await.unwrap();
    let mut job = NewJob::new("echo", json!({}), 1);
    job.owner_id = Some(user);
    job.quota_action = Some("scrape".into());
    let id = workhorse::store::jobs::enqueue(&mut tx, &job)
        .await
        .unwrap()
        .id();
    let charge = quotas::charge_at(&mut tx, id, user, "scrape", Some(limit), "UTC", at)
        .await
        .unwrap();
    match charge {
        Charge::Reserved(_) => tx.commit().await.unwrap(),
        Charge::Spent(_) => tx.rollback().await.unwrap(),
    }
    (id, charge)
}

/// Finish a job in `state`; the `settle_quota_charge` trigger commits or refunds its unit.
async fn finish(pool: &PgPool, job: Uuid, state: &str) {
    sqlx::query("UPDATE jobs SET state = $2, finished_at = now() WHERE id = $1")
        .bind(job)
        .bind(state)
        .execute(pool)
        .await
        .unwrap();
}

async fn shown(pool: &PgPool, user: Uuid, at: DateTime<Utc>) -> Option<Usage> {
    let counters = quotas::usage_at(pool, user, "UTC", at).await.unwrap();
    counters.into_iter().find(|u| u.action == "scrape")
}

fn period(charge: &Charge) -> (DateTime<Utc>, DateTime<Utc>) {
    let (Charge::Reserved(u) | Charge::Spent(u)) = charge;
    (u.period_start, u.resets_at)
}

#[sqlx::test]
async fn a_zone_change_neither_shortens_the_running_period_nor_starts_a_short_one(pool: PgPool) {
    // Regression: the first charge after a zone change started a period ending at the new
    // zone's next midnight, so moving every hour gave ~24 daily quotas a day.
    let u = user(&pool, Some("UTC")).await;
    let (job, first) = charge(&pool, u, 1, at("2026-06-01T10:00:00Z")).await;
    finish(&pool, job, "succeeded").await;
    assert_eq!(
        period(&first),
        (at("2026-06-01T00:00:00Z"), at("2026-06-02T00:00:00Z"))
    );

    // In Tokyo it is already June 2nd, but the running period keeps its end.
    move_to(&pool, u, "Asia/Tokyo").await;
    let (_, refused) = charge(&pool, u, 1, at("2026-06-01T20:00:00Z")).await;
    assert!(matches!(refused, Charge::Spent(_)), "{refused:?}");
    assert_eq!(period(&refused), period(&first));
    assert_eq!(
        quotas::reset_due(&pool, at("2026-06-01T20:00:00Z"), "UTC")
            .await
            .unwrap(),
        0
    );

    // The next period starts where the last one ended (09:00 in Tokyo) and runs to the
    // Tokyo midnight after the next, not to the one 15 hours away.
    let (_, second) = charge(&pool, u, 1, at("2026-06-02T00:30:00Z")).await;
    assert!(matches!(second, Charge::Reserved(_)), "{second:?}");
    assert_eq!(
        period(&second),
        (at("2026-06-02T00:00:00Z"), at("2026-06-03T15:00:00Z"))
    );

    // From then on the periods are Tokyo's days.
    let n = quotas::reset_due(&pool, at("2026-06-03T15:00:00Z"), "UTC")
        .await
        .unwrap();
    assert_eq!(n, 1);
    let (_, _, start, end) = read(&pool, u).await;
    assert_eq!(
        (start, end),
        (at("2026-06-03T15:00:00Z"), at("2026-06-04T15:00:00Z"))
    );
}

#[sqlx::test]
async fn an_admin_reset_gives_units_back_without_moving_the_period(pool: PgPool) {
    let u = user(&pool, Some("Europe/Berlin")).await;
    counter(&pool, u, at("2026-06-01T22:00:00Z"), 7).await;
    move_to(&pool, u, "America/Los_Angeles").await;

    assert_eq!(quotas::reset_user(&pool, u).await.unwrap(), 1);

    assert_eq!(
        read(&pool, u).await,
        (0, 1, at("2026-05-31T22:00:00Z"), at("2026-06-01T22:00:00Z"))
    );
}

/// Zones with odd offsets (+5:45, -3:30, +12:45, +14, -11), daylight saving (Berlin and Tehran
/// do not; Berlin springs forward in the simulated days) and a half-hour DST (Lord Howe).
const ZONES: [&str; 12] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Asia/Kathmandu",
    "America/St_Johns",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Tehran",
];

#[sqlx::test]
async fn a_user_who_moves_every_hour_never_gets_more_than_the_limit_in_a_period(pool: PgPool) {
    // Two simulated days from just before Europe springs forward, hour by hour, for users who
    // each move to a random zone every hour, ask for more units than they have, and whose jobs
    // succeed, die or are cancelled at random; the reset job runs at random times.
    const LIMIT: u32 = 4;
    let start = at("2026-03-28T00:00:00Z");
    for seed in 0..8u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let u = user(&pool, Some(ZONES[rng.random_range(0..ZONES.len())])).await;
        let mut clock = start;
        let mut held: Vec<Uuid> = Vec::new();
        let mut periods: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
        for hour in 0..48 {
            let minute = TimeDelta::minutes(rng.random_range(0..60));
            clock = clock.max(start + TimeDelta::hours(hour) + minute);
            move_to(&pool, u, ZONES[rng.random_range(0..ZONES.len())]).await;
            if rng.random_bool(0.5) {
                quotas::reset_due(&pool, clock, "UTC").await.unwrap();
            }
            for job in std::mem::take(&mut held) {
                match rng.random_range(0..10) {
                    0..=4 => finish(&pool, job, "succeeded").await,
                    5 => finish(&pool, job, "dead").await,
                    6 => finish(&pool, job, "cancelled").await,
                    _ => held.push(job),
                }
            }
            for _ in 0..rng.random_range(0..=LIMIT + 2) {
                clock += TimeDelta::seconds(rng.random_range(1..120));
                let before = shown(&pool, u, clock).await;
                let (job, charge) = charge(&pool, u, LIMIT, clock).await;
                let (Charge::Reserved(usage) | Charge::Spent(usage)) = &charge;
                let now = period(&charge);
                if let Some(before) = before {
                    assert_eq!(
                        (before.period_start, before.resets_at),
                        now,
                        "seed {seed}: the usage shown is the period the next charge gets"
                    );
                }
                assert!(
                    usage.used + usage.reserved <= i64::from(LIMIT),
                    "seed {seed}: {usage:?}"
                );
                // A refused charge after a period ended only shows the next period; the first
                // unit granted starts it.
                if matches!(charge, Charge::Spent(_)) {
                    if let Some(&last) = periods.last().filter(|p| clock < p.1) {
                        assert_eq!(now, last, "seed {seed}: the running period moved");
                    }
                } else if periods.last() != Some(&now) {
                    if let Some(&(_, end)) = periods.last() {
                        assert!(
                            clock >= end,
                            "seed {seed}: a period was cut short at {clock}"
                        );
                        assert!(
                            now.0 >= end,
                            "seed {seed}: {now:?} overlaps the last period"
                        );
                    }
                    let length = now.1 - now.0;
                    assert!(
                        (TimeDelta::hours(23)..=TimeDelta::hours(49)).contains(&length),
                        "seed {seed}: a period of {length} at {clock}: {now:?}"
                    );
                    periods.push(now);
                }
                if matches!(charge, Charge::Reserved(_)) {
                    held.push(job);
                }
            }
            // The counter agrees with the charges: units committed in its period, units held.
            if let Some(counter) = shown(&pool, u, clock).await {
                let (used, reserved): (i64, i64) = sqlx::query_as(
                    "SELECT count(*) FILTER (WHERE state = 'committed' AND period_start = $2), \
                            count(*) FILTER (WHERE state = 'reserved') \
                     FROM quota_charges WHERE user_id = $1",
                )
                .bind(u)
                .bind(counter.period_start)
                .fetch_one(&pool)
                .await
                .unwrap();
                assert_eq!(
                    (counter.used, counter.reserved),
                    (used, reserved),
                    "seed {seed}"
                );
            }
        }

        let committed: Vec<(DateTime<Utc>, i64)> = sqlx::query_as(
            "SELECT period_start, count(*) FROM quota_charges \
             WHERE user_id = $1 AND state = 'committed' GROUP BY period_start",
        )
        .bind(u)
        .fetch_all(&pool)
        .await
        .unwrap();
        for (period_start, units) in committed {
            assert!(
                units <= i64::from(LIMIT),
                "seed {seed}: {units} units from {period_start}"
            );
        }
        // Periods of at least 23 hours: two days meet at most four of them (24 before the fix).
        assert!(periods.len() <= 4, "seed {seed}: {periods:?}");
    }
}
