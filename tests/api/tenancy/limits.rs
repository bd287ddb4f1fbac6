//! Exploits 3 and 4: more tokens for more requests, and a time-zone change for an early reset.

use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::json;
use sqlx::PgPool;
use workhorse::domain::users::Role;

use crate::helpers::{assert_problem, echo_charges_scrape, spawn_app_with};

#[sqlx::test]
async fn a_users_tokens_share_one_request_rate(pool: PgPool) {
    let app = spawn_app_with(pool, |c| {
        let free = c.plans.get_mut("free").expect("a free plan");
        free.rate_limit = 5;
        free.rate_window = Duration::from_secs(60);
    })
    .await;
    let (mallory, first) = app.user_with_token("mallory", Role::User).await;
    let tokens = [
        first,
        app.another_token(mallory).await,
        app.another_token(mallory).await,
    ];
    let (_, other) = app.user_with_token("olivia", Role::User).await;

    let mut accepted = 0;
    for _round in 0..4 {
        for token in &tokens {
            let resp = app.get("/v1/me", Some(token)).await;
            match resp.status().as_u16() {
                200 => accepted += 1,
                _ => {
                    assert_problem(resp, 429, "rate_limited").await;
                }
            }
        }
    }

    // Regression: the limit was per token, so three tokens made three times the requests.
    assert!(accepted <= 5, "{accepted} of 12 requests were accepted");
    // Another user's requests are their own.
    assert_eq!(app.get("/v1/me", Some(&other)).await.status().as_u16(), 200);
}

/// The next midnight in `tz` after now.
fn next_midnight(tz: Tz) -> DateTime<Utc> {
    let tomorrow = Utc::now().with_timezone(&tz).date_naive() + chrono::Days::new(1);
    (tz.from_local_datetime(&tomorrow.and_time(NaiveTime::MIN)))
        .earliest()
        .map_or(DateTime::<Utc>::MAX_UTC, |t| t.with_timezone(&Utc))
}

/// The time zone whose midnight comes soonest from now.
fn zone_with_the_soonest_midnight() -> Tz {
    (chrono_tz::TZ_VARIANTS.iter().copied())
        .filter(|tz| tz.name().contains('/') && !tz.name().starts_with("Etc/"))
        .min_by_key(|tz| next_midnight(*tz))
        .expect("time zones")
}

#[sqlx::test]
async fn a_time_zone_change_keeps_the_current_quota_period(pool: PgPool) {
    let app = spawn_app_with(pool, |c| {
        echo_charges_scrape(c, 2);
        c.jobs.run_workers = false;
    })
    .await;
    let (mallory, token) = app.user_with_token("mallory", Role::User).await;
    let (_, other) = app.user_with_token("olivia", Role::User).await;
    let echo = json!({ "kind": "echo" });
    app.enqueue(&token, echo.clone()).await;
    let before = app.quota(&token, "scrape").await;
    let zone = zone_with_the_soonest_midnight();
    println!(
        "moving to {} (midnight at {}) from a period ending {}",
        zone.name(),
        next_midnight(zone),
        before["resets_at"]
    );

    let path = format!("/v1/users/{mallory}");
    let resp = app
        .patch_json(&path, &token, &json!({ "timezone": zone.name() }))
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    app.enqueue(&token, echo.clone()).await;
    let after = app.quota(&token, "scrape").await;
    let third = app.post_json("/v1/jobs", Some(&token), &echo).await;

    // Regression guard: the period that started keeps its end; the new zone applies next.
    assert_eq!(after["resets_at"], before["resets_at"], "{before} {after}");
    let held =
        |q: &serde_json::Value| q["used"].as_i64().unwrap() + q["reserved"].as_i64().unwrap();
    assert_eq!((held(&before), held(&after)), (1, 2), "{before} {after}");
    let problem = assert_problem(third, 429, "quota_exhausted").await;
    assert_eq!(problem["quota"], "scrape");
    // The other user's period is untouched.
    assert_eq!(held(&app.quota(&other, "scrape").await), 0);
}
