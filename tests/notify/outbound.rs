//! Everything the daemon sends on a user's behalf goes through one egress-checked, pooled
//! client: through the whole daemon (API, outbox, `notify` jobs) against real receivers on
//! loopback. Refused endpoints at creation and at delivery, redirects, stored errors without
//! the remote body, connection reuse, and the plan's `max_channels`.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use workhorse::domain::users::Role;
use workhorse::store;

use crate::helpers::{Receiver, Reply, start};
use crate::push_service::{Behaviour, PushService};

fn webpush_body(endpoint: &str, service: &PushService) -> Value {
    let sub = service.subscription();
    json!({
        "kind": "webpush",
        "name": "browser",
        "subscription": { "endpoint": endpoint, "keys": { "p256dh": sub.p256dh, "auth": sub.auth } },
    })
}

#[sqlx::test]
async fn a_loopback_web_push_endpoint_is_refused_at_creation_naming_the_field(pool: PgPool) {
    // The bug: a subscription on http://localhost:8080/... was accepted and then POSTed to.
    let service = PushService::start(Behaviour::Accept).await;
    let app = start(pool, |c| c.egress.allow.clear()).await;
    let endpoint = service.subscription().endpoint;

    let by_address = app
        .post("/v1/channels", &webpush_body(&endpoint, &service))
        .await;
    let by_name = app
        .post(
            "/v1/channels",
            &webpush_body(&endpoint.replace("127.0.0.1", "localhost"), &service),
        )
        .await;

    for resp in [by_address, by_name] {
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let problem: Value = resp.json().await.unwrap();
        let detail = problem["detail"].as_str().unwrap();
        assert_eq!(problem["code"], "validation_failed");
        assert!(detail.contains("`subscription.endpoint`"), "{detail}");
        assert!(
            detail.contains("blocked_by_policy: loopback address"),
            "{detail}"
        );
        assert!(
            !detail.contains("/push/"),
            "the capability URL leaked: {detail}"
        );
    }
    assert_eq!(service.count(), 0);
    assert_eq!(app.get("/v1/channels").await, json!([]));
}

#[sqlx::test]
async fn a_webhook_whose_name_resolves_to_loopback_is_refused_at_delivery(pool: PgPool) {
    let receiver = Receiver::start("127.0.0.1", Reply::status(200, "")).await;
    let app = start(pool, |c| c.egress.allow.clear()).await;
    let url = receiver.url().replace("127.0.0.1", "localhost");
    // Stored directly: a channel made before the check, or a name that changed its answer.
    let mut conn = app.pool.acquire().await.unwrap();
    let target = json!({ "url": url });
    let secret = workhorse::notify::webhook::new_secret();
    let channel = store::notifications::insert_channel(
        &mut conn,
        app.user_id,
        "webhook",
        "old",
        &target,
        Some(&secret),
        &[],
    )
    .await
    .unwrap();

    let delivery = app.test_channel(&channel.id.to_string()).await;

    assert_eq!(delivery["state"], "dead", "{delivery}");
    assert_eq!(
        delivery["attempts"], 1,
        "a refusal is not retried: {delivery}"
    );
    let error = delivery["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("blocked_by_policy: loopback address "),
        "{error}"
    );
    assert_eq!(receiver.count(), 0);
}

#[sqlx::test]
async fn a_redirect_to_a_private_address_is_not_followed(pool: PgPool) {
    let private = Receiver::start("127.0.0.2", Reply::status(200, "")).await;
    let redirector = Receiver::start("127.0.0.1", Reply::redirect(private.url())).await;
    let app = start(pool, |_| {}).await;
    let channel = app.webhook(&redirector.url()).await;

    let delivery = app.test_channel(channel["id"].as_str().unwrap()).await;

    assert_eq!(delivery["state"], "dead", "{delivery}");
    assert_eq!(delivery["last_status"], 302);
    assert_eq!(
        delivery["last_error"],
        "HTTP 302 Found: redirects are not followed"
    );
    assert_eq!(redirector.count(), 1);
    assert_eq!(private.count(), 0);
}

#[sqlx::test]
async fn a_receivers_error_body_is_never_stored_only_its_status(pool: PgPool) {
    // The bug: the first 500 characters of a private server's answer showed up in
    // GET /v1/deliveries.
    let receiver = Receiver::start("127.0.0.1", Reply::status(500, "db password: hunter2")).await;
    let push = PushService::start(Behaviour::Status(500)).await;
    let app = start(pool, |_| {}).await;
    let hook = app.webhook(&receiver.url()).await;
    let browser = app
        .channel(&webpush_body(&push.subscription().endpoint, &push))
        .await;

    let by_webhook = app.test_channel(hook["id"].as_str().unwrap()).await;
    let by_push = app.test_channel(browser["id"].as_str().unwrap()).await;

    for delivery in [&by_webhook, &by_push] {
        assert_eq!(delivery["state"], "dead", "{delivery}");
        assert_eq!(delivery["last_status"], 500);
        assert_eq!(delivery["last_error"], "HTTP 500 Internal Server Error");
    }
    let listed = app.get("/v1/deliveries").await.to_string();
    assert!(!listed.contains("hunter2"), "{listed}");
    assert!(!listed.contains("unsubscribed"), "{listed}");
    assert_eq!(receiver.count(), 2, "both attempts reached it");
}

#[sqlx::test]
async fn deliveries_share_one_pooled_connection(pool: PgPool) {
    let receiver = Receiver::start("127.0.0.1", Reply::status(204, "")).await;
    let app = start(pool, |_| {}).await;
    let first = app.webhook(&receiver.url()).await;
    let second = app.webhook(&receiver.url()).await;

    let one = app.test_channel(first["id"].as_str().unwrap()).await;
    let two = app.test_channel(second["id"].as_str().unwrap()).await;

    assert_eq!(one["state"], "delivered", "{one}");
    assert_eq!(two["state"], "delivered", "{two}");
    let peers = receiver.peers();
    assert_eq!(peers.len(), 2);
    assert_eq!(
        peers[0], peers[1],
        "a client per delivery opens a connection each"
    );
}

#[sqlx::test]
async fn one_channel_more_than_max_channels_is_refused_but_admins_are_unbounded(pool: PgPool) {
    let receiver = Receiver::start("127.0.0.1", Reply::status(200, "")).await;
    let app = start(pool, |c| {
        for plan in c.plans.values_mut() {
            plan.max_channels = 2;
        }
    })
    .await;
    let (_, admin) = app.user("root", Role::Admin).await;
    let body = json!({ "kind": "webhook", "name": "hook", "url": receiver.url() });

    // Six at once: the bound is counted under a lock, so exactly two get in.
    let attempts = (0..6).map(|_| app.post("/v1/channels", &body));
    let answers = futures::future::join_all(attempts).await;
    let by_admin = [
        app.post_as(&admin, "/v1/channels", &body).await,
        app.post_as(&admin, "/v1/channels", &body).await,
        app.post_as(&admin, "/v1/channels", &body).await,
    ];

    let created = answers
        .iter()
        .filter(|resp| resp.status() == StatusCode::CREATED)
        .count();
    assert_eq!(created, 2);
    for resp in answers
        .into_iter()
        .filter(|r| r.status() != StatusCode::CREATED)
    {
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let problem: Value = resp.json().await.unwrap();
        assert_eq!(problem["code"], "plan_limit", "{problem}");
        assert_eq!(problem["bound"], "max_channels", "{problem}");
    }
    assert!(by_admin.iter().all(|r| r.status() == StatusCode::CREATED));
}
