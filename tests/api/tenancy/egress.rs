//! Exploit 1: a Web Push subscription whose endpoint is a private address turns the daemon into
//! a request forger inside the operator's network, and the delivery log into a reader of it.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use poem::http::StatusCode as PoemStatus;
use poem::{Response, Route};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;
use workhorse::domain::users::Role;

use crate::helpers::{Loopback, TestApp, assert_problem, eventually, spawn_app_with};

/// What the private server answers; it must never reach a user.
const SECRET: &str = "internal-only: db password is hunter2";

/// A server inside the operator's network, answering every push with its secret.
async fn private_server() -> Loopback {
    Loopback::start(Route::new().at(
        "/push",
        poem::post(poem::endpoint::make_sync(|_| {
            Response::builder()
                .status(PoemStatus::BAD_REQUEST)
                .body(SECRET)
        })),
    ))
    .await
}

/// A browser subscription (a real P-256 key and auth secret) pointing at `endpoint`.
fn subscription(endpoint: &str) -> Value {
    let browser = p256::SecretKey::from_slice(&[7u8; 32]).expect("a valid P-256 scalar");
    let p256dh = browser.public_key().to_encoded_point(false);
    json!({
        "endpoint": endpoint,
        "keys": {
            "p256dh": URL_SAFE_NO_PAD.encode(p256dh.as_bytes()),
            "auth": URL_SAFE_NO_PAD.encode([9u8; 16]),
        },
    })
}

/// The default egress policy (nothing private allowed), with quick delivery retries.
async fn app(pool: PgPool) -> TestApp {
    spawn_app_with(pool, |c| {
        c.egress.allow = Vec::new();
        c.notify.retry_schedule = vec![Duration::from_millis(100); 2];
        c.notify.retry_jitter = 0.0;
    })
    .await
}

#[sqlx::test]
async fn a_web_push_channel_to_a_private_address_is_refused_when_created(pool: PgPool) {
    let private = private_server().await;
    let app = app(pool).await;
    let (_, token) = app.user_with_token("mallory", Role::User).await;
    let port = private.addr.port();

    for endpoint in [
        format!("http://127.0.0.1:{port}/push"),
        format!("http://localhost:{port}/push"),
    ] {
        let body =
            json!({ "kind": "webpush", "name": "push", "subscription": subscription(&endpoint) });
        let resp = app.post_json("/v1/channels", Some(&token), &body).await;

        // Regression: a `localhost` endpoint passed, as only IP literals were checked.
        let status = resp.status().as_u16();
        assert_eq!(status, 422, "creating a Web Push channel to {endpoint}");
        assert_problem(resp, 422, "validation_failed").await;
    }
    assert_eq!(private.hits(), 0, "the private server was reached");
}

#[sqlx::test]
async fn a_stored_web_push_channel_to_a_private_address_never_reaches_it(pool: PgPool) {
    let private = private_server().await;
    let app = app(pool).await;
    let (mallory, token) = app.user_with_token("mallory", Role::User).await;
    let (_, other) = app.user_with_token("olivia", Role::User).await;
    // As if created before the check existed, or through another path.
    let endpoint = private.url("/push");
    let sub = subscription(&endpoint);
    let target = json!({ "endpoint": endpoint, "p256dh": sub["keys"]["p256dh"], "auth": sub["keys"]["auth"] });
    let channel = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO channels (id, owner_id, kind, name, target) VALUES ($1, $2, 'webpush', 'push', $3)",
    )
    .bind(channel)
    .bind(mallory)
    .bind(&target)
    .execute(&app.pool)
    .await
    .expect("channel inserted");

    let resp = app
        .post(&format!("/v1/channels/{channel}/test"), Some(&token))
        .await;
    let status = resp.status().as_u16();
    assert!(
        status == 202 || (400..500).contains(&status),
        "status {status}"
    );
    // Wait until the test delivery is settled (or the private server is hit).
    eventually(Duration::from_secs(10), || async {
        let page = app.get_json("/v1/deliveries", &token).await;
        let settled = (page["items"].as_array().into_iter().flatten())
            .all(|d| d["state"] != "pending" || d["attempts"].as_i64() >= Some(1));
        private.hits() > 0 || settled
    })
    .await;

    // Regression: Web Push deliveries skipped the egress policy and logged the answer.
    assert_eq!(private.hits(), 0, "the private server was reached");
    for token in [&token, &other] {
        let deliveries = app
            .get("/v1/deliveries", Some(token))
            .await
            .text()
            .await
            .unwrap();
        assert!(!deliveries.contains(SECRET), "{deliveries}");
    }
}
