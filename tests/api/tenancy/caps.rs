//! Exploit 8: filling the shared database through objects without limit. The plan caps each
//! user's tokens, channels, documents and live jobs; a freed slot can be used again; one
//! user's count never limits another.

use reqwest::Response;
use serde_json::{Value, json};
use sqlx::PgPool;
use workhorse::domain::users::Role;

use crate::helpers::{TestApp, assert_problem, echo_charges_scrape, spawn_app_with};

/// Assert the refusal of a request past the plan's `bound`.
async fn assert_capped(resp: Response, bound: &str) {
    let status = resp.status().as_u16();
    assert_eq!(status, 403, "one past {bound}");
    let problem = assert_problem(resp, 403, "plan_limit").await;
    assert_eq!(problem["bound"], bound, "{problem}");
}

/// POST `body` to `path` `n` times, asserting `status` each time; returns the last answer.
async fn create(
    app: &TestApp,
    token: &str,
    path: &str,
    body: &Value,
    n: usize,
    status: u16,
) -> Value {
    let mut last = Value::Null;
    for i in 0..n {
        let resp = app.post_json(path, Some(token), body).await;
        assert_eq!(resp.status().as_u16(), status, "{path} #{}", i + 1);
        last = resp.json().await.unwrap();
    }
    last
}

#[sqlx::test]
async fn a_user_holds_at_most_max_tokens_and_revoking_one_frees_a_slot(pool: PgPool) {
    let app = spawn_app_with(pool, |_| {}).await;
    let (mallory, token) = app.user_with_token("mallory", Role::User).await;
    let (olivia, other) = app.user_with_token("olivia", Role::User).await;
    let path = format!("/v1/users/{mallory}/tokens");
    let body = json!({ "name": "more" });
    // One token from the start, nine more: the free plan's ten.
    let tenth = create(&app, &token, &path, &body, 9, 201).await;

    let eleventh = app.post_json(&path, Some(&token), &body).await;
    // Regression: tokens had no cap.
    assert_capped(eleventh, "max_tokens").await;
    let revoked = app
        .delete(
            &format!("/v1/tokens/{}", tenth["id"].as_str().unwrap()),
            Some(&token),
        )
        .await;
    assert_eq!(revoked.status().as_u16(), 204);
    create(&app, &token, &path, &body, 1, 201).await;
    let path = format!("/v1/users/{olivia}/tokens");
    create(&app, &other, &path, &body, 1, 201).await;
}

#[sqlx::test]
async fn a_user_has_at_most_max_channels(pool: PgPool) {
    let app = spawn_app_with(pool, |c| c.egress.allow = vec!["127.0.0.1".into()]).await;
    let (_, token) = app.user_with_token("mallory", Role::User).await;
    let (_, other) = app.user_with_token("olivia", Role::User).await;
    let body = json!({ "kind": "webhook", "name": "hook", "url": "http://127.0.0.1:9/hook" });
    let tenth = create(&app, &token, "/v1/channels", &body, 10, 201).await;

    let eleventh = app.post_json("/v1/channels", Some(&token), &body).await;
    // Regression: channels had no cap.
    assert_capped(eleventh, "max_channels").await;
    let deleted = app
        .delete(
            &format!("/v1/channels/{}", tenth["id"].as_str().unwrap()),
            Some(&token),
        )
        .await;
    assert_eq!(deleted.status().as_u16(), 204);
    create(&app, &token, "/v1/channels", &body, 1, 201).await;
    create(&app, &other, "/v1/channels", &body, 1, 201).await;
}

#[sqlx::test]
async fn a_user_keeps_at_most_max_documents(pool: PgPool) {
    let app = spawn_app_with(pool, |c| {
        c.plans.get_mut("free").expect("a free plan").max_documents = 3;
    })
    .await;
    let (_, token) = app.user_with_token("mallory", Role::User).await;
    let (_, other) = app.user_with_token("olivia", Role::User).await;
    let body = json!({ "title": "Notes", "text": "A sentence to keep." });
    let third = create(&app, &token, "/v1/documents", &body, 3, 201).await;

    let fourth = app.post_json("/v1/documents", Some(&token), &body).await;
    // Regression: documents had no cap.
    assert_capped(fourth, "max_documents").await;
    let deleted = app
        .delete(
            &format!("/v1/documents/{}", third["id"].as_str().unwrap()),
            Some(&token),
        )
        .await;
    assert_eq!(deleted.status().as_u16(), 204);
    create(&app, &token, "/v1/documents", &body, 1, 201).await;
    create(&app, &other, "/v1/documents", &body, 1, 201).await;
}

#[sqlx::test]
async fn a_user_has_at_most_max_live_jobs(pool: PgPool) {
    let app = spawn_app_with(pool, |c| {
        echo_charges_scrape(c, 20);
        c.plans.get_mut("free").expect("a free plan").max_live_jobs = 3;
        c.jobs.run_workers = false;
    })
    .await;
    let (_, token) = app.user_with_token("mallory", Role::User).await;
    let (_, other) = app.user_with_token("olivia", Role::User).await;
    let body = json!({ "kind": "echo", "args": { "sleep_ms": 600000 } });
    let third = create(&app, &token, "/v1/jobs", &body, 3, 202).await;

    let fourth = app.post_json("/v1/jobs", Some(&token), &body).await;
    // Regression: live jobs had no cap.
    assert_capped(fourth, "max_live_jobs").await;
    let cancelled = app
        .post(
            &format!("/v1/jobs/{}/cancel", third["id"].as_str().unwrap()),
            Some(&token),
        )
        .await;
    assert_eq!(cancelled.status().as_u16(), 200);
    create(&app, &token, "/v1/jobs", &body, 1, 202).await;
    create(&app, &other, "/v1/jobs", &body, 1, 202).await;
}
