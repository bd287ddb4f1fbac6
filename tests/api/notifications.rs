//! Channels and the delivery outbox over HTTP with real webhook receivers on loopback: Standard
//! Webhooks signatures a receiver verifies, replays and stale timestamps it can detect, retries
//! until a failing receiver succeeds (exactly one success), dead deliveries and their retry, a
//! 410 turning the channel off, topics, and the egress policy.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use poem::{EndpointExt, Request, Response, Route, handler, http::StatusCode as PoemStatus};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::PgPool;
use workhorse::domain::users::Role;

use crate::helpers::{Loopback, TestApp, assert_problem, spawn_app_with};

/// One request a receiver got.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
}

/// A webhook receiver answering the statuses in `script` in turn (then 200).
struct Receiver {
    site: Loopback,
    got: Arc<Mutex<Vec<Received>>>,
}

type Shared = (Arc<Mutex<Vec<Received>>>, Arc<Mutex<Vec<u16>>>);

#[handler]
async fn receive(req: &Request, body: Vec<u8>, state: poem::web::Data<&Shared>) -> Response {
    let header = |name: &str| {
        (req.headers().get(name))
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (got, script) = state.0;
    got.lock().unwrap().push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
    });
    let mut script = script.lock().unwrap();
    let status = if script.is_empty() {
        200
    } else {
        script.remove(0)
    };
    Response::builder()
        .status(PoemStatus::from_u16(status).unwrap())
        .body("")
}

impl Receiver {
    async fn start(script: &[u16]) -> Self {
        let got = Arc::new(Mutex::new(Vec::new()));
        let shared: Shared = (got.clone(), Arc::new(Mutex::new(script.to_vec())));
        let route = Route::new().at("/hook", poem::post(receive).data(shared));
        let site = Loopback::start(route).await;
        Self { site, got }
    }

    fn url(&self) -> String {
        self.site.url("/hook")
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

/// What a receiver following Standard Webhooks does: check the signature, refuse timestamps
/// more than five minutes away, and refuse an id it has already processed.
fn verify(secret: &str, r: &Received, now: i64, seen: &mut Vec<String>) -> Result<Value, String> {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").ok_or("no whsec_ prefix")?)
        .map_err(|e| e.to_string())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", r.id, r.timestamp).as_bytes());
    mac.update(&r.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    if !r.signature.split(' ').any(|s| s == expected) {
        return Err("bad signature".into());
    }
    let ts: i64 = r.timestamp.parse().map_err(|_| "bad timestamp")?;
    if (now - ts).abs() > 300 {
        return Err("stale timestamp".into());
    }
    if seen.contains(&r.id) {
        return Err("replayed id".into());
    }
    seen.push(r.id.clone());
    serde_json::from_slice(&r.body).map_err(|e| e.to_string())
}

async fn app(pool: PgPool, allow: bool) -> TestApp {
    spawn_app_with(pool, move |c| {
        if allow {
            c.egress.allow = vec!["127.0.0.1".into()];
        }
        c.notify.retry_schedule = vec![Duration::from_millis(100); 3];
        c.notify.retry_jitter = 0.0;
    })
    .await
}

async fn webhook(app: &TestApp, token: &str, url: &str, topics: &[&str]) -> Value {
    let body = json!({ "kind": "webhook", "name": "my hook", "url": url, "topics": topics });
    let resp = app.post_json("/v1/channels", Some(token), &body).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json().await.unwrap()
}

async fn wait_for_delivery(app: &TestApp, token: &str, id: &str, state: &str) -> Value {
    for _ in 0..200 {
        let d: Value = (app.get(&format!("/v1/deliveries/{id}"), Some(token)).await)
            .json()
            .await
            .unwrap();
        if d["state"] == state {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("delivery {id} never became {state}");
}

#[sqlx::test]
async fn a_test_webhook_is_signed_and_a_receiver_can_verify_it(pool: PgPool) {
    let receiver = Receiver::start(&[]).await;
    let app = app(pool, true).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;
    let channel = webhook(&app, &token, &receiver.url(), &["summaries.finished"]).await;
    let secret = channel["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(channel["topics"], json!(["summaries.finished"]));
    // The secret is shown once.
    let list: Value = app
        .get("/v1/channels", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert!(list[0].get("secret").is_none(), "{list}");

    let path = format!("/v1/channels/{}/test", channel["id"].as_str().unwrap());
    let resp = app.post(&path, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let delivery: Value = resp.json().await.unwrap();
    let id = delivery["id"].as_str().unwrap();
    let done = wait_for_delivery(&app, &token, id, "delivered").await;
    assert_eq!(done["last_status"], 200);
    assert_eq!(done["attempts"], 1);

    let got = receiver.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, id, "webhook-id is the delivery id");
    let now = chrono::Utc::now().timestamp();
    let mut seen = Vec::new();
    let event = verify(&secret, &got[0], now, &mut seen).expect("the signature verifies");
    assert_eq!(event["type"], "channel.test");
    assert!(
        event["data"]["message"]
            .as_str()
            .unwrap()
            .contains("my hook")
    );
    // A replay of the same message is detectable, and so is a stale one or a forged body.
    assert_eq!(
        verify(&secret, &got[0], now, &mut seen),
        Err("replayed id".into())
    );
    assert_eq!(
        verify(&secret, &got[0], now + 3600, &mut Vec::new()),
        Err("stale timestamp".into())
    );
    let mut forged = got[0].clone();
    forged.body = br#"{"type":"channel.test","data":{"message":"pay me"}}"#.to_vec();
    assert_eq!(
        verify(&secret, &forged, now, &mut Vec::new()),
        Err("bad signature".into())
    );
}

#[sqlx::test]
async fn a_receiver_that_fails_twice_gets_the_event_once_at_the_end(pool: PgPool) {
    let receiver = Receiver::start(&[500, 503]).await;
    let app = app(pool, true).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;
    let channel = webhook(&app, &token, &receiver.url(), &[]).await;
    let path = format!("/v1/channels/{}/test", channel["id"].as_str().unwrap());
    let delivery: Value = app.post(&path, Some(&token)).await.json().await.unwrap();
    let id = delivery["id"].as_str().unwrap();

    let done = wait_for_delivery(&app, &token, id, "delivered").await;
    assert_eq!(done["attempts"], 3, "{done}");
    let got = receiver.got();
    assert_eq!(got.len(), 3);
    // Every attempt is the same message: a receiver keeps the first it accepts.
    assert!(got.iter().all(|r| r.id == id));
    let secret = channel["secret"].as_str().unwrap();
    let mut seen = Vec::new();
    let now = chrono::Utc::now().timestamp();
    let accepted = got[2..]
        .iter()
        .filter(|r| verify(secret, r, now, &mut seen).is_ok())
        .count();
    assert_eq!(accepted, 1);
}

#[sqlx::test]
async fn a_dead_delivery_is_retried_and_a_gone_receiver_turns_the_channel_off(pool: PgPool) {
    let receiver = Receiver::start(&[500, 500, 500, 500]).await;
    let app = app(pool, true).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;
    let channel = webhook(&app, &token, &receiver.url(), &[]).await;
    let channel_id = channel["id"].as_str().unwrap().to_string();
    let test = format!("/v1/channels/{channel_id}/test");
    let delivery: Value = app.post(&test, Some(&token)).await.json().await.unwrap();
    let id = delivery["id"].as_str().unwrap();

    // Four attempts (one plus a schedule of three), all failing: dead.
    let dead = wait_for_delivery(&app, &token, id, "dead").await;
    assert_eq!(dead["attempts"], 4, "{dead}");
    assert_eq!(dead["last_status"], 500);
    let list: Value = (app.get("/v1/deliveries?state=dead", Some(&token)).await)
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"][0]["id"], id);
    // The deprecated name of the filter still works, and `state` wins over it.
    for query in ["state_filter=dead", "state=dead&state_filter=delivered"] {
        let old: Value = (app
            .get(&format!("/v1/deliveries?{query}"), Some(&token))
            .await)
            .json()
            .await
            .unwrap();
        assert_eq!(old["items"], list["items"], "{query}");
    }
    // An unknown old-name value is refused even beside a valid `state`.
    let bad = app
        .get("/v1/deliveries?state=dead&state_filter=gone", Some(&token))
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // The receiver is fixed: a retry delivers it.
    let resp = app
        .post(&format!("/v1/deliveries/{id}/retry"), Some(&token))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    wait_for_delivery(&app, &token, id, "delivered").await;
    let resp = app
        .post(&format!("/v1/deliveries/{id}/retry"), Some(&token))
        .await;
    assert_problem(resp, 409, "conflict").await;

    // A receiver answering 410 is gone: the channel is turned off, nothing is retried.
    let gone = Receiver::start(&[410]).await;
    let channel = webhook(&app, &token, &gone.url(), &[]).await;
    let test = format!("/v1/channels/{}/test", channel["id"].as_str().unwrap());
    let delivery: Value = app.post(&test, Some(&token)).await.json().await.unwrap();
    let d = wait_for_delivery(&app, &token, delivery["id"].as_str().unwrap(), "dead").await;
    assert_eq!(d["attempts"], 1);
    let channels: Value = app
        .get("/v1/channels", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    let off = (channels.as_array().unwrap().iter())
        .find(|c| c["id"] == channel["id"])
        .unwrap();
    assert_eq!(off["enabled"], false);
    assert!(off["disabled_reason"].as_str().unwrap().contains("410"));
    assert_problem(app.post(&test, Some(&token)).await, 409, "conflict").await;
}

#[sqlx::test]
async fn a_finished_summary_reaches_the_channels_subscribed_to_its_topic(pool: PgPool) {
    let subscribed = Receiver::start(&[]).await;
    let other = Receiver::start(&[]).await;
    let app = app(pool, true).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;
    let channel = webhook(&app, &token, &subscribed.url(), &["summaries.finished"]).await;
    webhook(&app, &token, &other.url(), &["scrapes.finished"]).await;

    let doc: Value = (app
        .post_json(
            "/v1/documents",
            Some(&token),
            &json!({ "title": "Notes", "text": "One sentence here. Another sentence there." }),
        )
        .await)
        .json()
        .await
        .unwrap();
    let path = format!("/v1/documents/{}/summaries", doc["id"].as_str().unwrap());
    let summary: Value = app
        .post_json(&path, Some(&token), &json!({}))
        .await
        .json()
        .await
        .unwrap();

    for _ in 0..200 {
        if !subscribed.got().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = subscribed.got();
    assert_eq!(got.len(), 1);
    let secret = channel["secret"].as_str().unwrap();
    let event = verify(
        secret,
        &got[0],
        chrono::Utc::now().timestamp(),
        &mut Vec::new(),
    )
    .unwrap();
    assert_eq!(event["type"], "summaries.finished");
    assert_eq!(event["data"]["summary_id"], summary["id"]);
    assert_eq!(event["data"]["status"], "succeeded");
    assert!(
        other.got().is_empty(),
        "a channel not subscribed to the topic got it"
    );
}

#[sqlx::test]
async fn channels_are_checked_when_created(pool: PgPool) {
    let app = app(pool, false).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;
    for (body, needle) in [
        (
            json!({ "kind": "webhook", "name": "x", "url": "http://127.0.0.1:9/hook" }),
            "loopback",
        ),
        (
            json!({ "kind": "webhook", "name": "x", "url": "http://169.254.169.254/" }),
            "metadata",
        ),
        (json!({ "kind": "webhook", "name": "x" }), "url"),
        (json!({ "kind": "sms", "name": "x" }), "sms"),
        (
            json!({ "kind": "fcm", "name": "x", "token": "t" }),
            "FCM is not configured",
        ),
        (
            json!({ "kind": "webhook", "name": "x", "url": "https://example.com/", "topics": ["nope"] }),
            "nope",
        ),
        (
            json!({ "kind": "webpush", "name": "x", "subscription": { "endpoint": "https://push.example.com/x", "keys": { "p256dh": "AAAA", "auth": "AAAA" } } }),
            "p256dh",
        ),
    ] {
        let resp = app.post_json("/v1/channels", Some(&token), &body).await;
        let problem = assert_problem(resp, 422, "validation_failed").await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(needle), "{detail} should mention {needle}");
    }
    // The VAPID public key is public and stable.
    let a: Value = app
        .get("/v1/push/vapid-public-key", None)
        .await
        .json()
        .await
        .unwrap();
    let b: Value = app
        .get("/v1/push/vapid-public-key", None)
        .await
        .json()
        .await
        .unwrap();
    let key = a["public_key"].as_str().unwrap();
    assert_eq!(a, b);
    assert_eq!(
        STANDARD
            .decode(key.replace('-', "+").replace('_', "/") + "=")
            .map(|k| k.len())
            .ok(),
        Some(65)
    );
}

#[sqlx::test]
async fn delivery_outcomes_reach_the_owners_event_stream(pool: PgPool) {
    let receiver = Receiver::start(&[500]).await;
    let app = app(pool, true).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;
    let channel = webhook(&app, &token, &receiver.url(), &[]).await;
    let resp = app
        .get("/v1/events?topic=delivery&topic=channel.test", Some(&token))
        .await;
    let mut stream = crate::sse::SseStream::new(resp);
    assert_eq!(stream.expect().await.event, "hello");
    let path = format!("/v1/channels/{}/test", channel["id"].as_str().unwrap());
    let delivery: Value = app.post(&path, Some(&token)).await.json().await.unwrap();

    let seen = stream
        .until(Duration::from_secs(30), |e| e.event == "delivery.delivered")
        .await;
    let types: Vec<&str> = seen.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        types,
        ["channel.test", "delivery.failed", "delivery.delivered"]
    );
    let failed = &seen[1].data;
    assert_eq!(failed["delivery"], delivery["id"]);
    assert_eq!(failed["channel"], channel["id"]);
    assert_eq!(
        (&failed["status"], &failed["attempt"]),
        (&json!(500), &json!(1))
    );
    assert_eq!(seen[2].data["attempt"], 2);
    assert_eq!(
        seen[0].data["event"], seen[1].data["event"],
        "the event delivered"
    );
}
