//! Plans and quotas over HTTP: a unit reserved with the enqueue, committed on success, given
//! back on a final failure or a cancel; exact under concurrency; 429 with `Retry-After` and
//! rate-limit headers; `/v1/me`; plan and time zone changes; an admin's reset; the per-user
//! request-rate limit that all of a user's tokens share; the reset job catching up after a
//! start.

use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use workhorse::config::{Config, KindConfig};
use workhorse::domain::users::Role;

use crate::helpers::{TestApp, assert_problem, spawn_app_with};

/// Make `echo` charge the `scrape` quota, and give the `free` plan `scrape` units a day.
fn charging(config: &mut Config, scrape: u32) {
    config.jobs.kinds.insert(
        "echo".into(),
        KindConfig {
            quota: Some("scrape".into()),
            ..KindConfig::default()
        },
    );
    let free = config.plans.get_mut("free").unwrap();
    free.quotas.insert("scrape".into(), scrape);
}

async fn app(pool: PgPool, scrape: u32, workers: bool) -> TestApp {
    spawn_app_with(pool, move |c| {
        charging(c, scrape);
        c.jobs.run_workers = workers;
    })
    .await
}

async fn enqueue(app: &TestApp, token: &str, args: Value) -> Response {
    app.post_json(
        "/v1/jobs",
        Some(token),
        &json!({ "kind": "echo", "args": args }),
    )
    .await
}

fn header(resp: &Response, name: &str) -> String {
    (resp.headers().get(name))
        .unwrap_or_else(|| panic!("no {name} header in {:?}", resp.headers()))
        .to_str()
        .unwrap()
        .to_string()
}

/// The next midnight in `tz` after now.
fn next_midnight(tz: Tz) -> DateTime<Utc> {
    let tomorrow = Utc::now().with_timezone(&tz).date_naive() + chrono::Days::new(1);
    tz.from_local_datetime(&tomorrow.and_time(NaiveTime::MIN))
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
}

fn secs_until(at: DateTime<Utc>) -> i64 {
    (at - Utc::now()).num_seconds()
}

/// The caller's `scrape` quota as `/v1/me` shows it.
async fn scrape_quota(app: &TestApp, token: &str) -> Value {
    let me: Value = app.get("/v1/me", Some(token)).await.json().await.unwrap();
    (me["quotas"].as_array().unwrap().iter())
        .find(|q| q["action"] == "scrape")
        .cloned()
        .unwrap_or_else(|| panic!("no scrape quota in {me}"))
}

/// Poll the caller's `scrape` quota until `check` holds (10 s at most).
async fn wait_for_quota(app: &TestApp, token: &str, check: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let quota = scrape_quota(app, token).await;
        if check(&quota) {
            return quota;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "quota never reached the state: {}",
        scrape_quota(app, token).await
    );
}

async fn wait_for_job(app: &TestApp, token: &str, id: &str, state: &str) {
    for _ in 0..200 {
        let job: Value = (app.get(&format!("/v1/jobs/{id}"), Some(token)).await)
            .json()
            .await
            .unwrap();
        if job["state"] == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} never became {state}");
}

#[sqlx::test]
async fn fifty_simultaneous_requests_against_five_units_give_exactly_five(pool: PgPool) {
    let app = app(pool, 5, false).await;
    let (user_id, token) = app.user_with_token("ann", Role::User).await;

    let requests = (0..50).map(|_| enqueue(&app, &token, json!({})));
    let responses = futures::future::join_all(requests).await;

    let mut accepted = 0;
    let mut refused = Vec::new();
    for resp in responses {
        match resp.status() {
            StatusCode::ACCEPTED => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => refused.push(resp),
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(accepted, 5);
    assert_eq!(refused.len(), 45);
    let (used, reserved): (i32, i32) =
        sqlx::query_as("SELECT used, reserved FROM quota_counters WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((used, reserved), (0, 5));
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE owner_id = $1")
        .bind(user_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(jobs, 5, "a refused request leaves no job behind");

    // Every refusal says which quota, until when, and carries the headers.
    let expected_wait = secs_until(next_midnight(Tz::UTC));
    for resp in refused {
        let retry_after: i64 = header(&resp, "retry-after").parse().unwrap();
        assert!(
            (expected_wait - 2..=expected_wait + 2).contains(&retry_after),
            "Retry-After {retry_after}, expected about {expected_wait}"
        );
        assert_eq!(header(&resp, "x-ratelimit-limit"), "5");
        assert_eq!(header(&resp, "x-ratelimit-remaining"), "0");
        let problem = assert_problem(resp, 429, "quota_exhausted").await;
        assert_eq!(problem["quota"], "scrape");
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("scrape") && detail.contains("free"),
            "{detail}"
        );
    }
}

#[sqlx::test]
async fn responses_carry_the_quota_and_the_rate_limit(pool: PgPool) {
    let app = app(pool, 3, false).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;
    let midnight = next_midnight(Tz::UTC);

    let resp = enqueue(&app, &token, json!({})).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    // X-RateLimit-* describe the quota the request charged; RateLimit lists both policies.
    assert_eq!(header(&resp, "x-ratelimit-limit"), "3");
    assert_eq!(header(&resp, "x-ratelimit-remaining"), "2");
    assert_eq!(
        header(&resp, "x-ratelimit-reset"),
        midnight.timestamp().to_string()
    );
    assert_eq!(
        header(&resp, "ratelimit-policy"),
        "\"requests\";q=120;w=60, \"scrape\";q=3;w=86400"
    );
    let state = header(&resp, "ratelimit");
    let secs = secs_until(midnight);
    let expected =
        [secs, secs + 1].map(|t| format!("\"requests\";r=119;t=1, \"scrape\";r=2;t={t}"));
    assert!(expected.contains(&state), "RateLimit: {state}");

    // Other responses carry the request-rate limit.
    let resp = app.get("/v1/me", Some(&token)).await;
    assert_eq!(header(&resp, "x-ratelimit-limit"), "120");
    assert_eq!(header(&resp, "x-ratelimit-remaining"), "118");
    assert_eq!(header(&resp, "ratelimit-policy"), "\"requests\";q=120;w=60");
    let me: Value = resp.json().await.unwrap();
    assert_eq!(me["plan"], "free");
    assert_eq!(me["rate_limit"]["limited"], true);
    assert_eq!(me["rate_limit"]["requests"], 120);
    assert_eq!(me["rate_limit"]["window_seconds"], 60);
    let next: DateTime<Utc> = me["next_reset"].as_str().unwrap().parse().unwrap();
    assert_eq!(next, midnight);
    let scrape = (me["quotas"].as_array().unwrap().iter())
        .find(|q| q["action"] == "scrape")
        .unwrap();
    assert_eq!(scrape["limit"], 3);
    assert_eq!(scrape["used"], 0);
    assert_eq!(scrape["reserved"], 1);
    assert_eq!(scrape["remaining"], 2);
    // The plan's other quota shows too, untouched.
    let summarise = (me["quotas"].as_array().unwrap().iter())
        .find(|q| q["action"] == "summarise")
        .unwrap();
    assert_eq!(summarise["used"], 0);
    assert_eq!(summarise["remaining"], 10);

    // Admins are not limited: no headers, no limits in /v1/me.
    let admin = app.admin_token().await;
    let resp = app.get("/v1/me", Some(&admin)).await;
    assert!(resp.headers().get("x-ratelimit-limit").is_none());
    let me: Value = resp.json().await.unwrap();
    assert_eq!(me["rate_limit"]["limited"], false);
    assert!(me["quotas"][0].get("limit").is_none(), "{me}");
}

#[sqlx::test]
async fn a_unit_is_committed_on_success_and_given_back_on_a_final_failure_or_a_cancel(
    pool: PgPool,
) {
    let app = app(pool, 5, true).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;

    // Success: the reserved unit becomes a used one.
    let job: Value = enqueue(&app, &token, json!({})).await.json().await.unwrap();
    wait_for_job(&app, &token, job["id"].as_str().unwrap(), "succeeded").await;
    let quota = wait_for_quota(&app, &token, |q| q["reserved"] == 0).await;
    assert_eq!(
        (quota["used"].clone(), quota["remaining"].clone()),
        (json!(1), json!(4))
    );

    // Dead after a permanent error: the unit comes back.
    let job: Value = (enqueue(&app, &token, json!({ "fail_permanently": true })).await)
        .json()
        .await
        .unwrap();
    wait_for_job(&app, &token, job["id"].as_str().unwrap(), "dead").await;
    let quota = wait_for_quota(&app, &token, |q| q["reserved"] == 0).await;
    assert_eq!(quota["used"], 1);

    // Cancelled while scheduled: the unit comes back.
    let later = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let body = json!({ "kind": "echo", "args": {}, "run_at": later });
    let job: Value = (app.post_json("/v1/jobs", Some(&token), &body).await)
        .json()
        .await
        .unwrap();
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(scrape_quota(&app, &token).await["reserved"], 1);
    let resp = app
        .post(&format!("/v1/jobs/{id}/cancel"), Some(&token))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let quota = scrape_quota(&app, &token).await;
    assert_eq!(
        (quota["used"].clone(), quota["reserved"].clone()),
        (json!(1), json!(0))
    );

    // A retried job charges again, and commits when it succeeds.
    let resp = app
        .post(&format!("/v1/jobs/{id}/retry"), Some(&token))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    wait_for_job(&app, &token, &id, "succeeded").await;
    let quota = wait_for_quota(&app, &token, |q| q["reserved"] == 0).await;
    assert_eq!(quota["used"], 2);

    let states: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM quota_charges GROUP BY state ORDER BY state")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        states,
        [("committed".to_string(), 2), ("refunded".to_string(), 1)]
    );
}

#[sqlx::test]
async fn a_retry_is_refused_when_the_quota_is_spent(pool: PgPool) {
    let app = app(pool, 1, false).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;
    let job: Value = enqueue(&app, &token, json!({})).await.json().await.unwrap();
    let id = job["id"].as_str().unwrap();
    app.post(&format!("/v1/jobs/{id}/cancel"), Some(&token))
        .await;
    // The unit came back with the cancel and another job took it.
    assert_eq!(
        enqueue(&app, &token, json!({})).await.status(),
        StatusCode::ACCEPTED
    );

    let resp = app
        .post(&format!("/v1/jobs/{id}/retry"), Some(&token))
        .await;
    assert_problem(resp, 429, "quota_exhausted").await;
    let job: Value = (app.get(&format!("/v1/jobs/{id}"), Some(&token)).await)
        .json()
        .await
        .unwrap();
    assert_eq!(job["state"], "cancelled", "a refused retry changes nothing");
}

#[sqlx::test]
async fn plans_decide_who_may_start_what(pool: PgPool) {
    let app = app(pool, 5, false).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;

    // A kind that charges nothing stays admin-only.
    let resp = app
        .post_json("/v1/jobs", Some(&token), &json!({ "kind": "quota_reset" }))
        .await;
    assert_problem(resp, 403, "forbidden").await;

    // An unknown plan (removed from the configuration) falls back to the default plan.
    let (bob, bob_token) = app.user_with_token("bob", Role::User).await;
    sqlx::query("UPDATE users SET plan = 'gone' WHERE id = $1")
        .bind(bob)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        enqueue(&app, &bob_token, json!({})).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(scrape_quota(&app, &bob_token).await["limit"], 5);

    // Admins are counted but never refused.
    let admin = app.admin_token().await;
    for _ in 0..7 {
        assert_eq!(
            enqueue(&app, &admin, json!({})).await.status(),
            StatusCode::ACCEPTED
        );
    }
    let me: Value = app.get("/v1/me", Some(&admin)).await.json().await.unwrap();
    let scrape = (me["quotas"].as_array().unwrap().iter())
        .find(|q| q["action"] == "scrape")
        .unwrap();
    assert_eq!(scrape["reserved"], 7);
    assert!(scrape.get("limit").is_none() && scrape.get("remaining").is_none());
}

#[sqlx::test]
async fn an_action_outside_the_plan_is_forbidden(pool: PgPool) {
    let app = spawn_app_with(pool, |c| {
        charging(c, 5);
        c.plans.get_mut("free").unwrap().quotas.remove("scrape");
        c.jobs.run_workers = false;
    })
    .await;
    let (_, token) = app.user_with_token("ann", Role::User).await;
    let resp = enqueue(&app, &token, json!({})).await;
    let problem = assert_problem(resp, 403, "forbidden").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("does not include scrape")
    );
}

#[sqlx::test]
async fn admins_change_plans_and_users_their_time_zone(pool: PgPool) {
    let app = app(pool, 5, false).await;
    let admin = app.admin_token().await;
    let (id, token) = app.user_with_token("ann", Role::User).await;
    let path = format!("/v1/users/{id}");
    let patch = |token: &str, body: Value| {
        app.request(reqwest::Method::PATCH, &path, Some(token))
            .json(&body)
            .send()
    };

    let resp = patch(&admin, json!({ "plan": "pro" })).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["plan"], "pro");
    assert_eq!(scrape_quota(&app, &token).await["limit"], 1000);

    let resp = patch(&token, json!({ "plan": "free" })).await.unwrap();
    assert_problem(resp, 403, "forbidden").await;
    let resp = patch(&admin, json!({ "plan": "gold" })).await.unwrap();
    let problem = assert_problem(resp, 422, "validation_failed").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("free, pro"),
        "{problem}"
    );
    let resp = patch(&token, json!({ "timezone": "Mars/Olympus" }))
        .await
        .unwrap();
    assert_problem(resp, 422, "validation_failed").await;
    let resp = patch(&token, json!({ "colour": "blue" })).await.unwrap();
    let problem = assert_problem(resp, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["pointer"], "/colour", "{problem}");

    // A user sets their own time zone; the next reset is their local midnight.
    let resp = patch(&token, json!({ "timezone": "Asia/Kathmandu" }))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let me: Value = app.get("/v1/me", Some(&token)).await.json().await.unwrap();
    assert_eq!(me["timezone"], "Asia/Kathmandu");
    let next: DateTime<Utc> = me["next_reset"].as_str().unwrap().parse().unwrap();
    assert_eq!(next, next_midnight(chrono_tz::Asia::Kathmandu));
    // `null` returns to the default.
    let resp = patch(&token, json!({ "timezone": null })).await.unwrap();
    assert!(
        resp.json::<Value>()
            .await
            .unwrap()
            .get("timezone")
            .is_none()
    );

    // Nobody else's account.
    let (_, other) = app.user_with_token("bob", Role::User).await;
    let resp = patch(&other, json!({ "name": "x" })).await.unwrap();
    assert_problem(resp, 404, "not_found").await;
}

#[sqlx::test]
async fn a_time_zone_change_keeps_the_running_period(pool: PgPool) {
    let app = app(pool, 5, false).await;
    let (id, token) = app.user_with_token("ann", Role::User).await;
    let resp = enqueue(&app, &token, json!({})).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let before = scrape_quota(&app, &token).await;

    // In Kiritimati (UTC+14) the next midnight is at most 10 hours away from UTC's.
    let resp = (app.request(
        reqwest::Method::PATCH,
        &format!("/v1/users/{id}"),
        Some(&token),
    ))
    .json(&json!({ "timezone": "Pacific/Kiritimati" }))
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let me: Value = app.get("/v1/me", Some(&token)).await.json().await.unwrap();
    let resets_at: DateTime<Utc> = before["resets_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(resets_at, next_midnight(Tz::UTC));
    assert_eq!(
        scrape_quota(&app, &token).await["resets_at"],
        before["resets_at"]
    );
    // `next_reset` is the earliest end among the plan's quotas: the ones never charged start
    // their period in the new zone, so it is Kiritimati's next midnight when that comes first
    // (between 00:00 and 10:00 UTC), else the running period's end.
    let next_reset: DateTime<Utc> = me["next_reset"].as_str().unwrap().parse().unwrap();
    let kiritimati: Tz = "Pacific/Kiritimati".parse().unwrap();
    assert_eq!(next_reset, resets_at.min(next_midnight(kiritimati)));
}

#[sqlx::test]
async fn an_admin_gives_one_user_their_quota_back_now(pool: PgPool) {
    let app = app(pool, 1, true).await;
    let admin = app.admin_token().await;
    let (id, token) = app.user_with_token("ann", Role::User).await;
    let job: Value = enqueue(&app, &token, json!({})).await.json().await.unwrap();
    wait_for_job(&app, &token, job["id"].as_str().unwrap(), "succeeded").await;
    wait_for_quota(&app, &token, |q| q["used"] == 1 && q["reserved"] == 0).await;
    assert_eq!(
        enqueue(&app, &token, json!({})).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    let reset = format!("/v1/users/{id}/quotas/reset");
    assert_problem(app.post(&reset, Some(&token)).await, 403, "forbidden").await;
    let resp = app.post(&reset, Some(&admin)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let quotas: Value = resp.json().await.unwrap();
    let scrape = (quotas["quotas"].as_array().unwrap().iter())
        .find(|q| q["action"] == "scrape")
        .unwrap();
    assert_eq!(
        (scrape["used"].clone(), scrape["remaining"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(
        enqueue(&app, &token, json!({})).await.status(),
        StatusCode::ACCEPTED
    );
}

#[sqlx::test]
async fn a_user_past_their_rate_gets_429_with_retry_after(pool: PgPool) {
    let app = spawn_app_with(pool, |c| {
        let free = c.plans.get_mut("free").unwrap();
        free.rate_limit = 5;
        free.rate_window = Duration::from_secs(60);
    })
    .await;
    let (_, token) = app.user_with_token("ann", Role::User).await;

    for left in (0..5).rev() {
        let resp = app.get("/v1/me", Some(&token)).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(header(&resp, "x-ratelimit-remaining"), left.to_string());
    }
    let resp = app.get("/v1/me", Some(&token)).await;
    let retry_after: u64 = header(&resp, "retry-after").parse().unwrap();
    // One request every 12 s refills the burst of 5 per minute.
    assert!(
        (11..=12).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    assert_eq!(header(&resp, "x-ratelimit-remaining"), "0");
    let problem = assert_problem(resp, 429, "rate_limited").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("5 requests"),
        "{problem}"
    );

    // Admins are not limited.
    let admin = app.admin_token().await;
    for _ in 0..10 {
        assert_eq!(
            app.get("/v1/me", Some(&admin)).await.status(),
            StatusCode::OK
        );
    }
}

#[sqlx::test]
async fn three_tokens_of_one_user_share_one_burst(pool: PgPool) {
    // Regression: the rate state was per token, so 3 tokens gave 360 requests against a
    // burst of 120.
    let app = spawn_app_with(pool, |c| {
        let free = c.plans.get_mut("free").unwrap();
        free.rate_limit = 6;
        free.rate_window = Duration::from_secs(3600);
    })
    .await;
    let (id, first) = app.user_with_token("ann", Role::User).await;
    let mut tokens = vec![first];
    let mut conn = app.pool.acquire().await.unwrap();
    for name in ["second", "third"] {
        let minted = workhorse::domain::tokens::mint();
        workhorse::store::tokens::insert_token(&mut conn, id, name, &minted)
            .await
            .unwrap();
        tokens.push(minted.secret);
    }

    let mut statuses = Vec::new();
    for _ in 0..4 {
        for token in &tokens {
            statuses.push(app.get("/v1/me", Some(token)).await.status());
        }
    }

    let accepted = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = (statuses.iter()).filter(|s| **s == StatusCode::TOO_MANY_REQUESTS);
    assert_eq!((accepted, refused.count()), (6, 6), "{statuses:?}");
    // Another user has their own burst.
    let (_, bob) = app.user_with_token("bob", Role::User).await;
    assert_eq!(app.get("/v1/me", Some(&bob)).await.status(), StatusCode::OK);
}

#[sqlx::test]
async fn a_reset_missed_while_no_daemon_ran_is_caught_up_at_start(pool: PgPool) {
    // Before the start: the reset schedule last fired yesterday and a counter's period ended
    // then, with units used.
    workhorse::app::Storage::from_pool(pool.clone())
        .await
        .unwrap();
    let user: (uuid::Uuid,) = sqlx::query_as(
        "INSERT INTO users (id, name, role) VALUES (gen_random_uuid(), 'ann', 'user') RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO quota_counters (user_id, action, period_start, resets_at, used) \
         VALUES ($1, 'scrape', now() - interval '2 days', now() - interval '1 day', 4)",
    )
    .bind(user.0)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO schedule_ticks (schedule, tick, manual) \
         VALUES ('quota-reset', date_trunc('minute', now() - interval '1 day'), false)",
    )
    .execute(&pool)
    .await
    .unwrap();

    // The repository's jobs/ holds the quota-reset schedule with catch_up.
    let app = spawn_app_with(pool, |_| {}).await;
    let mut reset = None;
    for _ in 0..100 {
        let row: (i32, DateTime<Utc>) =
            sqlx::query_as("SELECT used, resets_at FROM quota_counters WHERE user_id = $1")
                .bind(user.0)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        if row.0 == 0 {
            reset = Some(row.1);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resets_at = reset.expect("the missed reset ran at start");
    assert_eq!(resets_at, next_midnight(Tz::UTC));
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'quota_reset'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(runs, 1);
}
