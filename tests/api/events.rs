//! `/v1/events` and `/v1/jobs/{id}/events`: live job state changes in commit order, only the
//! caller's, resumed with `Last-Event-ID`, a `reset` past retention, slow consumers dropped,
//! one job's stream ending with the job, stream tickets, and two daemons sharing one stream.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;
use workhorse::domain::users::Role;

use crate::helpers::{
    TestApp, assert_problem, echo_charges_scrape, insert_queued, spawn_app_with,
    spawn_app_without_workers,
};
use crate::sse::{Sse, SseStream};

const LONG: Duration = Duration::from_secs(30);

async fn open(app: &TestApp, path: &str, token: &str, last: Option<i64>) -> SseStream {
    let mut req = app.request(reqwest::Method::GET, path, Some(token));
    if let Some(last) = last {
        req = req.header("Last-Event-ID", last.to_string());
    }
    SseStream::new(req.send().await.expect("stream opens"))
}

/// The `hello` that opens every stream; returns its head.
async fn hello(stream: &mut SseStream) -> i64 {
    let first = stream.expect().await;
    assert_eq!(first.event, "hello", "{first:?}");
    first.data["head"].as_i64().expect("a head")
}

fn types_of(events: &[Sse], job: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.data["job"] == job)
        .map(|e| e.event.clone())
        .collect()
}

async fn fast_retries(pool: PgPool) -> TestApp {
    spawn_app_with(pool, |c| {
        echo_charges_scrape(c, 100);
        c.jobs.backoff_base = Duration::from_millis(50);
        c.jobs.backoff_jitter = 0.0;
    })
    .await
}

#[sqlx::test]
async fn a_user_sees_every_change_of_their_job_in_order_and_nothing_of_others(pool: PgPool) {
    let app = fast_retries(pool).await;
    let (alice, alice_token) = app.user_with_token("alice", Role::User).await;
    let (_, bob_token) = app.user_with_token("bob", Role::User).await;
    let mut stream = open(&app, "/v1/events", &alice_token, None).await;
    hello(&mut stream).await;

    let bobs = app.enqueue(&bob_token, json!({"kind": "echo"})).await;
    let job = app
        .enqueue(
            &alice_token,
            json!({"kind": "echo", "args": {"fail_attempts": 1}}),
        )
        .await;
    let id = job["id"].as_str().expect("an id").to_owned();
    let events = stream
        .until(LONG, |e| {
            e.event == "job.succeeded" && e.data["job"] == id.as_str()
        })
        .await;

    assert_eq!(
        types_of(&events, &id),
        [
            "job.queued",
            "job.running",
            "job.retrying",
            "job.running",
            "job.succeeded"
        ]
    );
    let ids: Vec<i64> = events.iter().map(|e| e.id.expect("numbered")).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "increasing: {ids:?}");
    for e in &events {
        assert_eq!(e.data["owner"], alice.to_string(), "only alice's: {e:?}");
        assert_ne!(e.data["job"], bobs["id"], "never bob's job");
        assert_eq!(e.data["id"].as_i64(), e.id, "the data carries the id");
    }
    let retrying = events
        .iter()
        .find(|e| e.event == "job.retrying")
        .expect("a retry");
    assert_eq!(retrying.data["attempt"], 1);
    assert!(
        retrying.data["error"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert_eq!(retrying.data["kind"], "echo");
}

#[sqlx::test]
async fn admins_see_everyones_events_only_when_they_ask(pool: PgPool) {
    let app = fast_retries(pool).await;
    let admin = app.admin_token().await;
    let (_, bob_token) = app.user_with_token("bob", Role::User).await;
    let mut all = open(
        &app,
        "/v1/events?all=true&topic=job.succeeded",
        &admin,
        None,
    )
    .await;
    hello(&mut all).await;
    let mut own = open(&app, "/v1/events", &admin, None).await;
    hello(&mut own).await;
    assert_eq!(app.stream_clients(&admin).await, 2, "two streams open");
    let job = app.enqueue(&bob_token, json!({"kind": "echo"})).await;
    let seen = all.until(LONG, |e| e.data["job"] == job["id"]).await;
    assert!(seen.iter().all(|e| e.event == "job.succeeded"), "{seen:?}");
    assert!(
        own.next(Duration::from_millis(500)).await.is_none(),
        "not the admin's own"
    );

    let resp = app.get("/v1/events?all=true", Some(&bob_token)).await;
    assert_problem(resp, 403, "forbidden").await;
    let resp = app
        .get("/v1/events?topic=jobs.dead", Some(&bob_token))
        .await;
    let problem = assert_problem(resp, 422, "validation_failed").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("jobs.dead"),
        "{problem}"
    );
    let resp = app.get("/v1/events", None).await;
    assert_eq!(resp.status().as_u16(), 401);
}

#[sqlx::test]
async fn a_reconnect_gets_exactly_the_missed_events_then_live_ones(pool: PgPool) {
    let app = spawn_app_without_workers(pool).await;
    let admin = app.admin_token().await;
    let head = {
        let mut stream = open(&app, "/v1/events", &admin, None).await;
        hello(&mut stream).await
    };
    let mut missed = Vec::new();
    for i in 0..100 {
        let job = app
            .enqueue(&admin, json!({"kind": "echo", "args": {"message": i}}))
            .await;
        missed.push(job["id"].clone());
    }
    let mut stream = open(&app, "/v1/events", &admin, Some(head)).await;
    hello(&mut stream).await;
    let mut replayed = Vec::new();
    while replayed.len() < 100 {
        replayed.push(stream.expect().await);
    }
    let jobs: Vec<Value> = replayed.iter().map(|e| e.data["job"].clone()).collect();
    assert_eq!(jobs, missed, "exactly the missed ones, in order");
    assert!(replayed.iter().all(|e| e.event == "job.queued"));
    let ids: Vec<i64> = replayed.iter().map(|e| e.id.expect("numbered")).collect();
    assert_eq!(ids, (head + 1..=head + 100).collect::<Vec<_>>());

    let live = app.enqueue(&admin, json!({"kind": "echo"})).await;
    let next = stream.expect().await;
    assert_eq!(
        (next.id, &next.data["job"]),
        (Some(head + 101), &live["id"])
    );
}

#[sqlx::test]
async fn a_reconnect_past_retention_gets_a_reset(pool: PgPool) {
    let app = spawn_app_without_workers(pool.clone()).await;
    let admin = app.admin_token().await;
    app.enqueue(&admin, json!({"kind": "echo"})).await;
    let head = {
        let mut stream = open(&app, "/v1/events", &admin, None).await;
        hello(&mut stream).await
    };
    app.enqueue(&admin, json!({"kind": "echo"})).await;
    app.enqueue(&admin, json!({"kind": "echo"})).await;
    // What pruning does once `events.retention` has passed.
    let until_numbered = async {
        loop {
            let seq: i64 = sqlx::query_scalar("SELECT seq FROM stream_head")
                .fetch_one(&pool)
                .await
                .expect("head");
            if seq >= head + 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(LONG, until_numbered)
        .await
        .expect("numbered");
    sqlx::query("DELETE FROM stream_changes WHERE first_seq <= $1")
        .bind(head + 1)
        .execute(&pool)
        .await
        .expect("pruned");
    let mut stream = open(&app, "/v1/events", &admin, Some(head)).await;
    let first = stream.expect().await;
    assert_eq!(first.event, "reset", "{first:?}");
    assert!(first.data["head"].as_i64() >= Some(head + 2));

    let resp = app
        .request(reqwest::Method::GET, "/v1/events", Some(&admin))
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .expect("sent");
    // Outside the header's pattern: a malformed parameter, named.
    let problem = assert_problem(resp, 400, "invalid_request").await;
    assert_eq!(
        problem["errors"][0]["parameter"], "Last-Event-ID",
        "{problem}"
    );
}

/// Open a stream over a raw socket with a small receive buffer, and never read it.
async fn stalled_client(app: &TestApp, token: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small buffer");
    let mut conn = socket.connect(app.addr).await.expect("connects");
    let request = format!(
        "GET /v1/events?all=true HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\r\n",
        app.addr
    );
    conn.write_all(request.as_bytes())
        .await
        .expect("request sent");
    conn
}

#[sqlx::test]
async fn a_slow_consumer_is_dropped_while_others_keep_up(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), |c| {
        c.jobs.run_workers = false;
        c.events.client_buffer = 16;
        c.events.slow_after = Duration::from_millis(300);
    })
    .await;
    let admin = app.admin_token().await;
    let mut fast = open(&app, "/v1/events?all=true", &admin, None).await;
    hello(&mut fast).await;
    let mut slow = stalled_client(&app, &admin).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Rounds of 20,000 events in one statement each, until the server has dropped the
    // stalled client: how much the kernel buffers before a write blocks depends on its TCP
    // autotuning, so no one amount is sure to be enough.
    const ROUND: usize = 20_000;
    let mut sent = 0;
    while app.stream_clients(&admin).await != 1 {
        assert!(sent < 10 * ROUND, "still following after {sent} events");
        insert_queued(&pool, ROUND).await;
        for _ in 0..ROUND {
            let e = fast.next(LONG).await.expect("the fast client keeps up");
            assert_eq!(e.event, "job.queued", "{e:?}");
        }
        sent += ROUND;
        // A stalled write takes `slow_after` to be noticed.
        tokio::time::sleep(Duration::from_millis(600)).await;
    }

    // The stalled client, read at last: some events, then `close` with the reason, then
    // the end of the response.
    let mut text = Vec::new();
    let read_all = slow.read_to_end(&mut text);
    let _ = tokio::time::timeout(LONG, read_all).await;
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("event: close"), "closed");
    assert!(text.contains("slow_consumer"), "with the reason");
    assert!(
        text.matches("event: job.queued").count() < sent,
        "dropped before it got everything"
    );
}

#[sqlx::test]
async fn a_jobs_stream_starts_with_its_state_and_ends_with_it(pool: PgPool) {
    let app = fast_retries(pool).await;
    let (_, alice) = app.user_with_token("alice", Role::User).await;
    let (_, bob) = app.user_with_token("bob", Role::User).await;
    let job = app
        .enqueue(&alice, json!({"kind": "echo", "args": {"sleep_ms": 1500}}))
        .await;
    let path = format!("/v1/jobs/{}/events", job["id"].as_str().expect("id"));
    let mut stream = open(&app, &path, &alice, None).await;
    hello(&mut stream).await;
    let snapshot = stream.expect().await;
    assert_eq!(snapshot.event, "snapshot");
    assert_eq!(snapshot.data["job"], job["id"]);
    let rest = stream.until(LONG, |e| e.event == "close").await;
    let types: Vec<&str> = rest.iter().map(|e| e.event.as_str()).collect();
    assert!(types.ends_with(&["job.succeeded", "close"]), "{types:?}");
    assert_eq!(
        rest.last().map(|e| &e.data["reason"]),
        Some(&json!("job_ended"))
    );
    let last_id = rest
        .iter()
        .rev()
        .find_map(|e| e.id)
        .expect("numbered events");
    assert!(
        stream.next(Duration::from_secs(2)).await.is_none(),
        "the response ended"
    );

    // Ended: its state and the end at once; a reconnect is told there is nothing more.
    let mut again = open(&app, &path, &alice, None).await;
    hello(&mut again).await;
    let state = again.expect().await;
    assert_eq!(
        (state.event.as_str(), &state.data["state"]),
        ("snapshot", &json!("succeeded"))
    );
    assert_eq!(again.expect().await.event, "close");
    let resp = app
        .request(reqwest::Method::GET, &path, Some(&alice))
        .header("Last-Event-ID", last_id.to_string())
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 204);

    let resp = app.get(&path, Some(&bob)).await;
    assert_problem(resp, 404, "not_found").await;
    let resp = app
        .get(&format!("/v1/jobs/{}/events", Uuid::new_v4()), Some(&alice))
        .await;
    assert_problem(resp, 404, "not_found").await;
}

#[sqlx::test]
async fn a_stream_ticket_opens_streams_only_and_dies_with_its_token(pool: PgPool) {
    let app = fast_retries(pool.clone()).await;
    let (_, alice) = app.user_with_token("alice", Role::User).await;
    let resp = app.post("/v1/events/tickets", Some(&alice)).await;
    assert_eq!(resp.status().as_u16(), 201);
    let ticket: Value = resp.json().await.expect("JSON");
    let ticket = ticket["ticket"].as_str().expect("a ticket").to_owned();
    assert!(ticket.starts_with("wht_"));

    let url = format!("/v1/events?ticket={ticket}");
    let resp = app.get(&url, None).await;
    let mut stream = SseStream::new(resp);
    hello(&mut stream).await;
    let job = app.enqueue(&alice, json!({"kind": "echo"})).await;
    let seen = stream.until(LONG, |e| e.data["job"] == job["id"]).await;
    assert_eq!(seen.last().map(|e| e.event.as_str()), Some("job.queued"));

    // Not a token: no other operation takes it.
    let resp = app.get(&format!("/v1/jobs?ticket={ticket}"), None).await;
    assert_eq!(resp.status().as_u16(), 401);
    let resp = app.get(&format!("/v1/events?ticket={ticket}x"), None).await;
    assert_eq!(resp.status().as_u16(), 401);
    // The server's own spans never hold it.
    sqlx::query("UPDATE api_tokens SET revoked_at = now()")
        .execute(&pool)
        .await
        .expect("revoked");
    let resp = app.get(&url, None).await;
    assert_eq!(resp.status().as_u16(), 401);
}

#[sqlx::test]
async fn a_client_of_one_daemon_sees_the_jobs_another_daemon_runs(pool: PgPool) {
    let api_only = spawn_app_without_workers(pool.clone()).await;
    let worker = fast_retries(pool).await;
    let admin = api_only.admin_token().await;
    let mut stream = open(&api_only, "/v1/events", &admin, None).await;
    hello(&mut stream).await;
    let job = worker
        .enqueue(
            &admin,
            json!({"kind": "echo", "args": {"fail_attempts": 1}}),
        )
        .await;
    let id = job["id"].as_str().expect("id").to_owned();
    let events = stream
        .until(LONG, |e| {
            e.event == "job.succeeded" && e.data["job"] == id.as_str()
        })
        .await;
    assert_eq!(
        types_of(&events, &id),
        [
            "job.queued",
            "job.running",
            "job.retrying",
            "job.running",
            "job.succeeded"
        ]
    );
}

#[sqlx::test]
async fn events_keep_coming_when_the_sequencing_daemon_stops(pool: PgPool) {
    // Its own pool: stopping a daemon closes its pool.
    let own = sqlx::pool::PoolOptions::new()
        .connect_with((*pool.connect_options()).clone())
        .await
        .expect("a second pool");
    let first = spawn_app_without_workers(own).await;
    // The first daemon holds the sequencer's lock before the second starts.
    let locked = crate::helpers::eventually(LONG, || async {
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(&pool)
        .await
        .expect("pg_locks");
        held == 1
    })
    .await;
    assert!(locked, "the first daemon sequences");
    let second = fast_retries(pool).await;
    let admin = second.admin_token().await;
    let mut stream = open(&second, "/v1/events", &admin, None).await;
    hello(&mut stream).await;
    let before = second.enqueue(&admin, json!({"kind": "echo"})).await;
    stream
        .until(LONG, |e| {
            e.event == "job.succeeded" && e.data["job"] == before["id"]
        })
        .await;

    first.shutdown.cancel();
    while !first.stopped.is_finished() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = second.enqueue(&admin, json!({"kind": "echo"})).await;
    let seen = stream
        .until(LONG, |e| {
            e.event == "job.succeeded" && e.data["job"] == after["id"]
        })
        .await;
    assert_eq!(types_of(&seen, after["id"].as_str().expect("id")).len(), 3);
}
