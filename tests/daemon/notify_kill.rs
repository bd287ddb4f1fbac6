//! Notifications across a crash: the daemon is SIGKILLed while a webhook receiver holds the
//! request unanswered, and the delivery still completes after a restart. Delivery is
//! at-least-once; the repeat carries the same `webhook-id`, so a receiver can drop it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use nix::sys::signal::Signal;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, Request, Route, handler, http::StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use crate::helpers::{
    CONFIGURED_START, Daemon, Sandbox, create_token, eventually, fresh_database, http,
};

/// How long the receiver holds its first request: far longer than the test waits for it.
const HANG: Duration = Duration::from_secs(60);
/// A short lease, so that the job of the killed daemon is rescued about a second after the kill.
const LEASE: &str = "1s";
/// The guarantee this test checks: delivered this soon after the kill, restart included.
const RECOVERY: Duration = Duration::from_secs(20);

/// One request the receiver got, and when.
#[derive(Clone, Debug)]
struct Received {
    at: Instant,
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
}

type Log = Arc<Mutex<Vec<Received>>>;

/// A webhook receiver on loopback that never answers its first request and answers every later
/// one with 200 at once.
struct Receiver {
    addr: SocketAddr,
    got: Log,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[handler]
async fn receive(req: &Request, body: Vec<u8>, got: Data<&Log>) -> StatusCode {
    let header = |name: &str| {
        (req.headers().get(name))
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let first = {
        let mut got = got.0.lock().unwrap();
        got.push(Received {
            at: Instant::now(),
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            body,
        });
        got.len() == 1
    };
    if first {
        // The hang ends with the test's runtime at the latest.
        tokio::time::sleep(HANG).await;
    }
    StatusCode::OK
}

impl Receiver {
    async fn start() -> Self {
        let got = Log::default();
        let app = Route::new()
            .at("/hook", poem::post(receive))
            .data(got.clone());
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("binding the receiver");
        let addr = *acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("the receiver's address");
        let server = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Self { addr, got, server }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

/// Whether `r` carries a valid Standard Webhooks signature made with `secret`.
fn signed_with(secret: &str, r: &Received) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .expect("a base64 secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("an HMAC key");
    mac.update(format!("{}.{}.", r.id, r.timestamp).as_bytes());
    mac.update(&r.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    r.signature.split(' ').any(|s| s == expected)
}

/// `GET /v1/deliveries/{id}` on `daemon`.
async fn delivery(daemon: &Daemon, token: &str, id: &str) -> Option<Value> {
    let url = format!("{}/v1/deliveries/{id}", daemon.base_url());
    let resp = http().get(&url).bearer_auth(token).send().await.ok()?;
    (resp.status() == 200).then_some(())?;
    resp.json().await.ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_cut_off_by_sigkill_completes_after_restart_with_the_same_webhook_id() {
    // Arrange: a receiver that hangs on its first request, a daemon with a short lease that
    // may reach loopback, and a webhook channel to the receiver.
    let receiver = Receiver::start().await;
    let db = fresh_database().await;
    let sandbox = Sandbox::new();
    let env = [
        ("WORKHORSE_DATABASE__URL", db.url()),
        ("WORKHORSE_JOBS__LEASE", LEASE),
        ("WORKHORSE_EGRESS__ALLOW", r#"["127.0.0.1"]"#),
        (
            "WORKHORSE_NOTIFY__RETRY_SCHEDULE",
            r#"["200ms","200ms","200ms"]"#,
        ),
    ];
    let mut daemon = sandbox.serve(&env);
    daemon.wait_ready(CONFIGURED_START).await;
    let token = create_token(&sandbox, db.url());
    let client = http();
    let body = json!({
        "kind": "webhook", "name": "crash hook", "url": receiver.url(), "topics": [],
    });
    let resp = (client.post(format!("{}/v1/channels", daemon.base_url())))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .expect("POST /v1/channels");
    assert_eq!(resp.status(), 201, "POST /v1/channels");
    let channel: Value = resp.json().await.expect("the channel");
    let secret = channel["secret"].as_str().expect("the secret").to_string();
    let channel_id = channel["id"].as_str().expect("the channel id");

    // Act: a test delivery; kill the daemon while the receiver holds it, and restart it.
    let test_url = format!("{}/v1/channels/{channel_id}/test", daemon.base_url());
    let resp = (client.post(&test_url).bearer_auth(&token).send())
        .await
        .expect("POST /v1/channels/{id}/test");
    assert_eq!(resp.status(), 202, "POST /v1/channels/{{id}}/test");
    let queued: Value = resp.json().await.expect("the delivery");
    let id = queued["id"].as_str().expect("the delivery id").to_string();
    eventually(
        Duration::from_secs(15),
        "the receiver got the first attempt",
        async || (!receiver.got().is_empty()).then_some(()),
    )
    .await;
    let killed_at = Instant::now();
    daemon.signal(Signal::SIGKILL);
    daemon.wait_exit(Duration::from_secs(10)).await;
    // Kept, so that its log is printed if the test fails.
    let _killed = std::mem::replace(&mut daemon, sandbox.serve(&env));
    daemon.wait_ready(CONFIGURED_START).await;
    let ready_after = killed_at.elapsed();
    let done = eventually(RECOVERY, "the delivery was delivered", async || {
        delivery(&daemon, &token, &id)
            .await
            .filter(|d| d["state"] == "delivered")
    })
    .await;
    let recovered_after = killed_at.elapsed();

    // Assert: the figures first, so that a failing run still shows them.
    let got = receiver.got();
    let repeat_after = got.get(1).map(|r| r.at.duration_since(killed_at));
    eprintln!(
        "notify_kill: restarted daemon ready {:.2} s after the SIGKILL, the repeat reached the \
         receiver after {:.2} s, the delivery was seen delivered after {:.2} s ({} requests, \
         {} attempts)",
        ready_after.as_secs_f64(),
        repeat_after.unwrap_or_default().as_secs_f64(),
        recovered_after.as_secs_f64(),
        got.len(),
        done["attempts"],
    );
    assert!(got.len() >= 2, "the receiver got {} requests", got.len());
    assert!(
        got.iter().all(|r| r.id == id),
        "every request carries webhook-id {id}: {:?}",
        got.iter().map(|r| &r.id).collect::<Vec<_>>()
    );
    assert!(
        Uuid::parse_str(&id).is_ok(),
        "webhook-id {id} is the delivery's uuid"
    );
    assert!(
        got.iter().all(|r| signed_with(&secret, r)),
        "every request verifies against the channel secret"
    );
    assert!(
        got.windows(2).all(|w| w[0].body == w[1].body),
        "a repeat carries the same body"
    );
    assert_eq!(done["state"], "delivered");
    assert_eq!(done["last_status"], 200, "{done}");
    let attempts = done["attempts"].as_i64().expect("attempts");
    assert!(attempts >= 2, "the crashed attempt counts: {done}");
    let status = daemon.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "workhorse exited with {status}");
}
