//! `Idempotency-Key` on the POSTs that start work: replays, refusals, per-user keys,
//! concurrent duplicates, expiry.

use std::time::Duration;

use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use workhorse::domain::users::Role;
use workhorse::store;

use crate::helpers::{assert_problem, spawn_app_without_workers};

#[sqlx::test]
async fn the_same_idempotency_key_and_body_replays_the_first_answer(pool: PgPool) {
    let app = spawn_app_without_workers(pool).await;
    let admin = app.admin_token().await;
    let body = json!({"kind": "echo", "args": {"message": "once"}});

    let first = app
        .post_json_with_key("/v1/jobs", &admin, "order-42", &body)
        .await;
    let second = app
        .post_json_with_key("/v1/jobs", &admin, "order-42", &body)
        .await;

    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    assert_eq!(second.status(), StatusCode::ACCEPTED);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(second.headers()["location"], first.headers()["location"]);
    assert!(
        second.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let (first, second) = (first.text().await.unwrap(), second.text().await.unwrap());
    assert_eq!(
        first, second,
        "the replay is byte for byte the first answer"
    );
    assert_eq!(app.job_count().await, 1);
}

#[sqlx::test]
async fn the_same_idempotency_key_with_another_body_is_a_409(pool: PgPool) {
    let app = spawn_app_without_workers(pool).await;
    let admin = app.admin_token().await;
    let first = json!({"kind": "echo", "args": {"message": "a"}});
    let other = json!({"kind": "echo", "args": {"message": "b"}});

    app.post_json_with_key("/v1/jobs", &admin, "k1", &first)
        .await;
    let resp = app
        .post_json_with_key("/v1/jobs", &admin, "k1", &other)
        .await;

    assert_problem(resp, 409, "idempotency_key_reused").await;
}

#[sqlx::test]
async fn idempotency_keys_belong_to_one_user(pool: PgPool) {
    let app = spawn_app_without_workers(pool).await;
    let (_, root) = app.user_with_token("root", Role::Admin).await;
    let (_, ops) = app.user_with_token("ops", Role::Admin).await;
    let body = json!({"kind": "echo"});

    let a: Value = app
        .post_json_with_key("/v1/jobs", &root, "same", &body)
        .await
        .json()
        .await
        .unwrap();
    let resp = app
        .post_json_with_key("/v1/jobs", &ops, "same", &body)
        .await;

    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert!(resp.headers().get("idempotent-replayed").is_none());
    let b: Value = resp.json().await.unwrap();
    assert_ne!(a["id"], b["id"]);
}

#[sqlx::test]
async fn a_malformed_idempotency_key_is_a_400(pool: PgPool) {
    let app = spawn_app_without_workers(pool).await;
    let admin = app.admin_token().await;
    let too_long = "k".repeat(256);
    let keys = [
        HeaderValue::from_static(""),
        HeaderValue::from_str(&too_long).unwrap(),
        HeaderValue::from_bytes(b"tab\there").unwrap(),
        HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap(),
    ];

    for key in keys {
        let resp = app
            .request(Method::POST, "/v1/jobs", Some(&admin))
            .header("Idempotency-Key", key.clone())
            .json(&json!({"kind": "echo"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{key:?}");
        let problem = assert_problem(resp, 400, "invalid_request").await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("Idempotency-Key"),
            "{problem}"
        );
    }
    let twice = app
        .request(Method::POST, "/v1/jobs", Some(&admin))
        .header("Idempotency-Key", "a")
        .header("Idempotency-Key", "b")
        .json(&json!({"kind": "echo"}))
        .send()
        .await
        .unwrap();
    assert_problem(twice, 400, "invalid_request").await;
    assert_eq!(app.job_count().await, 0, "no key is ever ignored");
    let longest = app
        .post_json_with_key(
            "/v1/jobs",
            &admin,
            &"k".repeat(255),
            &json!({"kind": "echo"}),
        )
        .await;
    assert_eq!(longest.status(), StatusCode::ACCEPTED);
}

#[sqlx::test]
async fn a_refused_request_does_not_use_up_its_idempotency_key(pool: PgPool) {
    let app = spawn_app_without_workers(pool).await;
    let admin = app.admin_token().await;

    let refused = app
        .post_json_with_key("/v1/jobs", &admin, "k", &json!({"kind": "nope"}))
        .await;
    let accepted = app
        .post_json_with_key("/v1/jobs", &admin, "k", &json!({"kind": "echo"}))
        .await;

    assert_problem(refused, 422, "validation_failed").await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    assert!(accepted.headers().get("idempotent-replayed").is_none());
}

#[sqlx::test]
async fn concurrent_requests_with_one_idempotency_key_create_one_job(pool: PgPool) {
    let app = spawn_app_without_workers(pool).await;
    let admin = app.admin_token().await;
    let body = json!({"kind": "echo", "args": {"message": "race"}});

    let answers = futures::future::join_all(
        (0..8).map(|_| app.post_json_with_key("/v1/jobs", &admin, "race-key", &body)),
    )
    .await;

    let mut ids = Vec::new();
    let mut replays = 0;
    for resp in answers {
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        replays += resp.headers().contains_key("idempotent-replayed") as usize;
        let job: Value = resp.json().await.unwrap();
        ids.push(job["id"].as_str().unwrap().to_string());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every answer names the same job");
    assert_eq!(replays, 7);
    assert_eq!(app.job_count().await, 1);
}

#[sqlx::test]
async fn a_key_older_than_a_day_is_taken_over_and_pruned(pool: PgPool) {
    let app = spawn_app_without_workers(pool).await;
    let admin = app.admin_token().await;
    app.post_json_with_key("/v1/jobs", &admin, "old", &json!({"kind": "echo"}))
        .await;
    app.post_json_with_key("/v1/jobs", &admin, "fresh", &json!({"kind": "echo"}))
        .await;
    sqlx::query(
        "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'",
    )
    .execute(&app.pool)
    .await
    .unwrap();

    let other_body = json!({"kind": "echo", "priority": 1});
    let taken_over = app
        .post_json_with_key("/v1/jobs", &admin, "old", &other_body)
        .await;
    assert_eq!(taken_over.status(), StatusCode::ACCEPTED);
    assert!(taken_over.headers().get("idempotent-replayed").is_none());

    sqlx::query(
        "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let pruned = store::idempotency::prune_idempotency(&app.pool, Duration::from_secs(86_400))
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    let left: Vec<String> = sqlx::query_scalar("SELECT key FROM idempotency_keys")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, ["fresh"]);
}

#[sqlx::test]
async fn a_retry_with_an_idempotency_key_is_replayed_instead_of_a_409(pool: PgPool) {
    let app = spawn_app_without_workers(pool).await;
    let admin = app.admin_token().await;
    let job = app.enqueue(&admin, json!({"kind": "echo"})).await;
    let id = job["id"].as_str().unwrap();
    app.post(&format!("/v1/jobs/{id}/cancel"), Some(&admin))
        .await;
    let retry = || {
        app.request(Method::POST, &format!("/v1/jobs/{id}/retry"), Some(&admin))
            .header("Idempotency-Key", "retry-1")
            .send()
    };

    let first = retry().await.unwrap();
    let second = retry().await.unwrap();

    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(first.text().await.unwrap(), second.text().await.unwrap());
}
