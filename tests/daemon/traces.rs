//! One trace end to end, as a collector receives it: the request (or cron tick) that enqueued
//! a job, each attempt as its child, and the client spans inside the attempt.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{EndpointExt, Route, handler};
use serde_json::{Value as Json, json};

use crate::helpers::{
    CONFIGURED_START, Daemon, Sandbox, TestDatabase, create_token, eventually, fresh_database, http,
};
use crate::otlp::{OtlpReceiver, attr, descends_from, hex, named, string, trace, tree};

/// A webhook receiver that answers 204 and counts what it got.
struct Hook {
    addr: SocketAddr,
    got: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Hook {
    async fn start() -> Self {
        #[handler]
        fn hook(got: poem::web::Data<&Arc<AtomicUsize>>) -> poem::http::StatusCode {
            got.fetch_add(1, Ordering::SeqCst);
            poem::http::StatusCode::NO_CONTENT
        }
        let got = Arc::new(AtomicUsize::new(0));
        let app = Route::new().at("/hook", poem::post(hook)).data(got.clone());
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("binding the webhook receiver");
        let addr = *acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("a TCP address");
        let server = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Self { addr, got, server }
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A daemon exporting traces to `otlp`, allowed to reach loopback, with the queue's `db`
/// spans on; `env` adds to that.
async fn traced_daemon(
    otlp: &OtlpReceiver,
    db: &TestDatabase,
    sandbox: &Sandbox,
    env: &[(&str, &str)],
) -> Daemon {
    let endpoint = otlp.endpoint();
    let mut vars = vec![
        ("WORKHORSE_DATABASE__URL", db.url()),
        ("WORKHORSE_TELEMETRY__OTLP_ENDPOINT", endpoint.as_str()),
        ("WORKHORSE_EGRESS__ALLOW", r#"["127.0.0.1"]"#),
        ("WORKHORSE_LOG__LEVEL", "info,workhorse::store::jobs=debug"),
    ];
    vars.extend_from_slice(env);
    let mut daemon = sandbox.serve(&vars);
    daemon.wait_ready(CONFIGURED_START).await;
    daemon
}

/// A fresh trace id and the caller's span id, and the `traceparent` naming them.
fn caller() -> (String, String, String) {
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let span_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    let traceparent = format!("00-{trace_id}-{span_id}-01");
    (trace_id, span_id, traceparent)
}

fn of_kind(spans: &[Span], kind: SpanKind) -> Vec<&Span> {
    spans.iter().filter(|s| s.kind == kind as i32).collect()
}

/// The job's state from the database.
async fn job_state(db: &TestDatabase, id: &str) -> Option<String> {
    let id: uuid::Uuid = id.parse().ok()?;
    sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut db.connect().await)
        .await
        .ok()?
}

#[tokio::test(flavor = "multi_thread")]
async fn a_channel_test_is_one_trace_from_the_request_to_the_webhook_post() {
    // Arrange: a daemon, a webhook channel pointing at a local receiver.
    let otlp = OtlpReceiver::start().await;
    let hook = Hook::start().await;
    let db = fresh_database().await;
    let sandbox = Sandbox::new();
    let mut daemon = traced_daemon(&otlp, &db, &sandbox, &[]).await;
    let token = create_token(&sandbox, db.url());
    let client = http();
    let url = format!("http://{}/hook", hook.addr);
    let channel: Json = (client.post(format!("{}/v1/channels", daemon.base_url())))
        .bearer_auth(&token)
        .json(&json!({"kind": "webhook", "name": "traced", "url": url, "topics": []}))
        .send()
        .await
        .expect("POST /v1/channels")
        .json()
        .await
        .expect("a channel");
    let channel_id = channel["id"].as_str().expect("a channel id").to_string();
    let (trace_id, caller_span, traceparent) = caller();

    // Act
    let resp = (client.post(format!(
        "{}/v1/channels/{channel_id}/test",
        daemon.base_url()
    )))
    .bearer_auth(&token)
    .header("traceparent", &traceparent)
    .json(&json!({}))
    .send()
    .await
    .expect("POST /v1/channels/{id}/test");
    assert!(resp.status().is_success(), "{}", resp.status());
    eventually(
        Duration::from_secs(20),
        "the webhook delivered",
        async || (hook.got.load(Ordering::SeqCst) > 0).then_some(()),
    )
    .await;
    // Spans are batched and flushed on shutdown.
    assert!(daemon.terminate(Duration::from_secs(30)).await.success());

    // Assert: request → attempt → delivery → HTTP client span, one trace.
    let spans = trace(&otlp.spans(), &trace_id);
    println!("{}", tree(&spans));
    eprintln!(
        "ALL: {:?}",
        otlp.spans()
            .iter()
            .map(|r| r.span.name.clone())
            .collect::<Vec<_>>()
    );
    let servers = of_kind(&spans, SpanKind::Server);
    let server = servers.first().expect("the request's server span");
    assert_eq!(hex(&server.parent_span_id), caller_span);
    let enqueue = named(&spans, "enqueue notify");
    assert_eq!(enqueue.kind, SpanKind::Producer as i32);
    assert!(descends_from(&spans, enqueue, server), "{}", tree(&spans));
    let attempt = named(&spans, "job notify");
    assert_eq!(attempt.kind, SpanKind::Consumer as i32);
    assert_eq!(attempt.parent_span_id, enqueue.span_id, "{}", tree(&spans));
    let post = named(&spans, "POST");
    assert_eq!(post.kind, SpanKind::Client as i32);
    assert!(descends_from(&spans, post, attempt), "{}", tree(&spans));
    let attributes = &post.attributes;
    let port = i64::from(hook.addr.port());
    assert_eq!(
        attr(attributes, "http.request.method"),
        Some(&string("POST"))
    );
    // Redacted to scheme://host:port/path; this URL has nothing to drop.
    assert_eq!(attr(attributes, "url.full"), Some(&string(&url)));
    assert_eq!(
        attr(attributes, "server.address"),
        Some(&string("127.0.0.1"))
    );
    assert_eq!(
        attr(attributes, "server.port"),
        Some(&Value::IntValue(port))
    );
    assert_eq!(
        attr(attributes, "http.response.status_code"),
        Some(&Value::IntValue(204))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_attempt_after_a_retry_is_a_child_of_the_retry_request() {
    // Arrange: a job that died on its only attempt.
    let otlp = OtlpReceiver::start().await;
    let db = fresh_database().await;
    let sandbox = Sandbox::new();
    let mut daemon = traced_daemon(&otlp, &db, &sandbox, &[]).await;
    let token = create_token(&sandbox, db.url());
    let client = http();
    let job: Json = (client.post(format!("{}/v1/jobs", daemon.base_url())))
        .bearer_auth(&token)
        .json(&json!({"kind": "echo", "args": {"fail_permanently": true}, "max_attempts": 1}))
        .send()
        .await
        .expect("POST /v1/jobs")
        .json()
        .await
        .expect("a job");
    let id = job["id"].as_str().expect("a job id").to_string();
    eventually(Duration::from_secs(20), "the job dead", async || {
        (job_state(&db, &id).await.as_deref() == Some("dead")).then_some(())
    })
    .await;
    let (trace_id, _, traceparent) = caller();

    // Act
    let resp = (client.post(format!("{}/v1/jobs/{id}/retry", daemon.base_url())))
        .bearer_auth(&token)
        .header("traceparent", &traceparent)
        .send()
        .await
        .expect("POST /v1/jobs/{id}/retry");
    assert!(resp.status().is_success(), "{}", resp.status());
    eventually(
        Duration::from_secs(20),
        "the retried job dead again",
        async || (job_state(&db, &id).await.as_deref() == Some("dead")).then_some(()),
    )
    .await;
    assert!(daemon.terminate(Duration::from_secs(30)).await.success());

    // Assert
    let spans = trace(&otlp.spans(), &trace_id);
    let server = *of_kind(&spans, SpanKind::Server)
        .first()
        .unwrap_or_else(|| panic!("no server span in:\n{}", tree(&spans)));
    let attempt = named(&spans, "job echo");
    assert!(descends_from(&spans, attempt, server), "{}", tree(&spans));
    assert_eq!(attr(&attempt.attributes, "job.id"), Some(&string(&id)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cron_ticks_job_runs_in_the_ticks_trace() {
    // Arrange: a schedule firing an echo job every second.
    let otlp = OtlpReceiver::start().await;
    let db = fresh_database().await;
    let sandbox = Sandbox::new();
    let schedules = tempfile::TempDir::new().expect("a schedules dir");
    std::fs::write(
        schedules.path().join("tick.toml"),
        "name = \"tick\"\ncron = \"* * * * * *\"\nkind = \"echo\"\n",
    )
    .expect("writing the schedule");
    let dir = schedules.path().to_string_lossy().to_string();
    let env = [("WORKHORSE_JOBS__SCHEDULES_DIR", dir.as_str())];

    // Act
    let mut daemon = traced_daemon(&otlp, &db, &sandbox, &env).await;
    eventually(Duration::from_secs(20), "a ticked job done", async || {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE kind = 'echo' AND state = 'succeeded'",
        )
        .fetch_one(&mut db.connect().await)
        .await
        .ok()?;
        (done > 0).then_some(())
    })
    .await;
    assert!(daemon.terminate(Duration::from_secs(30)).await.success());

    // Assert: some tick's trace holds the attempt of the job it enqueued.
    let all = otlp.spans();
    let ticks: Vec<&Span> = (all.iter().map(|r| &r.span))
        .filter(|s| s.name == "cron tick" && s.parent_span_id.is_empty())
        .collect();
    let joined = ticks.iter().any(|tick| {
        let spans = trace(&all, &hex(&tick.trace_id));
        (spans.iter())
            .filter(|s| s.name == "job echo")
            .any(|attempt| descends_from(&spans, attempt, tick))
    });
    let names: Vec<&str> = all.iter().map(|r| r.span.name.as_str()).collect();
    assert!(
        joined,
        "no tick's trace holds its job's attempt; spans: {names:?}"
    );
}
