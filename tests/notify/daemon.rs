//! FCM and Web Push channels through the whole daemon: the API, the outbox and `notify` jobs,
//! against the local fake Google and push service. An `UNREGISTERED` device turns its channel
//! off; a Web Push message arrives decrypted as sent.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::fcm::fake_google::FakeGoogle;
use crate::helpers::start;
use crate::push_service::{Behaviour, PushService};

#[sqlx::test]
async fn fcm_channels_deliver_and_an_unregistered_device_turns_its_channel_off(pool: PgPool) {
    let google = FakeGoogle::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("service-account.json");
    std::fs::write(&key_file, google.account_json()).unwrap();
    let base = google.base().to_string();
    let app = start(pool, move |c| {
        c.notify.fcm_service_account = key_file;
        c.notify.fcm_base = base;
    })
    .await;

    let body = json!({ "kind": "fcm", "name": "phone", "token": "good-device" });
    let channel: Value = app.post("/v1/channels", &body).await.json().await.unwrap();
    let delivery = app.test_channel(channel["id"].as_str().unwrap()).await;
    assert_eq!(delivery["state"], "delivered", "{delivery}");
    let sent = google.delivered();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["token"], "good-device", "{}", sent[0]);
    assert_eq!(sent[0]["notification"]["title"], "channel.test");
    assert_eq!(google.mints(), 1);

    let body = json!({ "kind": "fcm", "name": "old phone", "token": "gone-device" });
    let channel: Value = app.post("/v1/channels", &body).await.json().await.unwrap();
    let id = channel["id"].as_str().unwrap();
    let delivery = app.test_channel(id).await;
    assert_eq!(delivery["state"], "dead", "{delivery}");
    assert_eq!(delivery["attempts"], 1, "not retried: {delivery}");
    let channels = app.get("/v1/channels").await;
    let gone = (channels.as_array().unwrap().iter())
        .find(|c| c["id"] == id)
        .unwrap();
    assert_eq!(gone["enabled"], false);
    assert!(
        gone["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("UNREGISTERED")
    );
}

#[sqlx::test]
async fn a_web_push_message_arrives_decrypted_and_a_gone_subscription_turns_off(pool: PgPool) {
    let service = PushService::start(Behaviour::Accept).await;
    let app = start(pool, |_| {}).await;
    let sub = service.subscription();
    let body = json!({
        "kind": "webpush",
        "name": "browser",
        "subscription": { "endpoint": sub.endpoint, "keys": { "p256dh": sub.p256dh, "auth": sub.auth } },
    });
    let resp = app.post("/v1/channels", &body).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let channel: Value = resp.json().await.unwrap();
    let delivery = app.test_channel(channel["id"].as_str().unwrap()).await;
    assert_eq!(
        delivery["state"],
        "delivered",
        "{delivery}; {:?}",
        service.rejected()
    );
    let received = service.received();
    assert_eq!(received.len(), 1);
    let event: Value = serde_json::from_slice(&received[0].plaintext).unwrap();
    assert_eq!(event["type"], "channel.test");
    assert_eq!(received[0].ttl, 86_400);

    let gone = PushService::start(Behaviour::Status(410)).await;
    let sub = gone.subscription();
    let body = json!({
        "kind": "webpush",
        "name": "old browser",
        "subscription": { "endpoint": sub.endpoint, "keys": { "p256dh": sub.p256dh, "auth": sub.auth } },
    });
    let channel: Value = app.post("/v1/channels", &body).await.json().await.unwrap();
    let delivery = app.test_channel(channel["id"].as_str().unwrap()).await;
    assert_eq!(delivery["state"], "dead", "{delivery}");
    let channels = app.get("/v1/channels").await;
    let off = (channels.as_array().unwrap().iter())
        .find(|c| c["id"] == channel["id"])
        .unwrap();
    assert_eq!(off["enabled"], false);
}
