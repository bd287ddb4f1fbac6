//! `/v1/ws`: the live event stream over a WebSocket. Subscribe by job id and get the same
//! objects SSE sends, unsubscribe and stop getting them, resume with `since`, never another
//! user's events, `error` replies that keep the socket open, and the checks before the
//! upgrade. How connections end: `ws_ends`.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use workhorse::domain::users::Role;

use crate::helpers::{TestApp, echo_charges_scrape, spawn_app_with};
use crate::sse::SseStream;
use crate::ws_client::{Ws, request, subscribed};

const LONG: Duration = Duration::from_secs(30);

/// Users may enqueue `echo`; jobs stay queued where a test puts them.
pub async fn no_workers(pool: PgPool) -> TestApp {
    spawn_app_with(pool, |c| {
        echo_charges_scrape(c, 100);
        c.jobs.run_workers = false;
    })
    .await
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
async fn a_jobs_events_arrive_in_order_as_the_same_objects_sse_sends(pool: PgPool) {
    let app = fast_retries(pool).await;
    let (_, alice) = app.user_with_token("alice", Role::User).await;
    let resp = app.get("/v1/events", Some(&alice)).await;
    let mut sse = SseStream::new(resp);
    let head = sse.expect().await.data["head"].as_i64().expect("a head");

    let other = app.enqueue(&alice, json!({"kind": "echo"})).await;
    let job = app
        .enqueue(
            &alice,
            json!({"kind": "echo", "args": {"fail_attempts": 1}}),
        )
        .await;
    let id = job["id"].as_str().expect("an id");
    let mut ws = Ws::open(&app, &alice).await;
    let ack = ws
        .ask(
            json!({"type": "subscribe", "jobs": [id], "since": head}),
            "subscribed",
        )
        .await;
    assert_eq!(ack["filter"]["jobs"], json!([id]));
    assert_eq!(ws.expect().await["type"], "hello");
    let events = ws.until(LONG, |e| e["type"] == "job.succeeded").await;

    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        types,
        [
            "job.queued",
            "job.running",
            "job.retrying",
            "job.running",
            "job.succeeded"
        ]
    );
    assert!(events.iter().all(|e| e["job"] == id), "only that job's");
    assert!(events.iter().all(|e| e["job"] != other["id"]));
    let ids: Vec<i64> = events
        .iter()
        .map(|e| e["id"].as_i64().expect("an id"))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "increasing: {ids:?}");
    assert!(ids[0] > head);

    let seen = sse
        .until(LONG, |e| e.event == "job.succeeded" && e.data["job"] == id)
        .await;
    for event in &events {
        let same = seen
            .iter()
            .find(|e| e.id == event["id"].as_i64())
            .expect("SSE sent it too");
        assert_eq!(&same.data, event, "the same object");
        assert_eq!(same.event, event["type"]);
    }
}

#[sqlx::test]
async fn after_an_unsubscribe_its_events_stop_and_the_rest_go_on(pool: PgPool) {
    let app = no_workers(pool).await;
    let (_, alice) = app.user_with_token("alice", Role::User).await;
    let a = app.enqueue(&alice, json!({"kind": "echo"})).await;
    let b = app.enqueue(&alice, json!({"kind": "echo"})).await;
    let mut ws = Ws::open(&app, &alice).await;
    subscribed(
        &mut ws,
        json!({"type": "subscribe", "jobs": [a["id"], b["id"]]}),
    )
    .await;
    let ack = ws
        .ask(
            json!({"type": "unsubscribe", "jobs": [a["id"]]}),
            "unsubscribed",
        )
        .await;
    assert_eq!(ack["filter"]["jobs"], json!([b["id"]]));

    for job in [&a, &b] {
        let path = format!("/v1/jobs/{}/cancel", job["id"].as_str().expect("id"));
        assert_eq!(app.post(&path, Some(&alice)).await.status().as_u16(), 200);
    }
    // `a` was cancelled first: had the unsubscribe not taken, its event would come first.
    let seen = ws.until(LONG, |e| e["type"] == "job.cancelled").await;
    assert!(seen.iter().all(|e| e["job"] == b["id"]), "{seen:#?}");

    // The last resource gone: nothing is selected (not everything), until a new subscribe.
    let ack = ws
        .ask(
            json!({"type": "unsubscribe", "jobs": [b["id"]]}),
            "unsubscribed",
        )
        .await;
    assert_eq!(ack["filter"], Value::Null);
    let c = app.enqueue(&alice, json!({"kind": "echo"})).await;
    ws.ask(
        json!({"type": "subscribe", "topics": ["job.cancelled"]}),
        "subscribed",
    )
    .await;
    let path = format!("/v1/jobs/{}/cancel", c["id"].as_str().expect("id"));
    assert_eq!(app.post(&path, Some(&alice)).await.status().as_u16(), 200);
    let next = ws.expect().await;
    assert_eq!(
        (&next["type"], &next["job"]),
        (&json!("job.cancelled"), &c["id"])
    );
}

#[sqlx::test]
async fn a_reconnect_with_since_gets_exactly_what_it_missed_then_live_events(pool: PgPool) {
    let app = no_workers(pool).await;
    let (_, alice) = app.user_with_token("alice", Role::User).await;
    let head = {
        let mut ws = Ws::open(&app, &alice).await;
        subscribed(&mut ws, json!({"type": "subscribe"})).await
    };
    let mut missed = Vec::new();
    for i in 0..5 {
        let job = app
            .enqueue(&alice, json!({"kind": "echo", "args": {"message": i}}))
            .await;
        missed.push(job["id"].clone());
    }
    let mut ws = Ws::open(&app, &alice).await;
    subscribed(&mut ws, json!({"type": "subscribe", "since": head})).await;
    let mut replayed = Vec::new();
    for _ in 0..5 {
        replayed.push(ws.expect().await);
    }
    let jobs: Vec<Value> = replayed.iter().map(|e| e["job"].clone()).collect();
    assert_eq!(jobs, missed, "exactly the missed ones, in order");
    let ids: Vec<i64> = replayed
        .iter()
        .map(|e| e["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, (head + 1..=head + 5).collect::<Vec<_>>());
    let live = app.enqueue(&alice, json!({"kind": "echo"})).await;
    let next = ws.expect().await;
    assert_eq!(
        (next["id"].as_i64(), &next["job"]),
        (Some(head + 6), &live["id"])
    );
    // Only the first subscribe opens the stream: a later `since` replays nothing.
    ws.ask(json!({"type": "subscribe", "since": head}), "subscribed")
        .await;
    let pong = ws.ask(json!({"type": "ping"}), "pong").await;
    assert_eq!(pong, json!({"type": "pong"}));

    // Events no longer kept (here: not yet numbered): a reset to re-read state from.
    let mut ws = Ws::open(&app, &alice).await;
    ws.ask(
        json!({"type": "subscribe", "since": head + 1_000}),
        "subscribed",
    )
    .await;
    let reset = ws.expect().await;
    assert_eq!(reset["type"], "reset", "{reset}");
    assert_eq!(reset["head"].as_i64(), Some(head + 6));
}

#[sqlx::test]
async fn a_user_never_gets_another_users_events_nor_everyones(pool: PgPool) {
    let app = no_workers(pool).await;
    let (alice_id, alice) = app.user_with_token("alice", Role::User).await;
    let (_, bob) = app.user_with_token("bob", Role::User).await;
    let admin = app.admin_token().await;
    let mut ws = Ws::open(&app, &alice).await;
    subscribed(&mut ws, json!({"type": "subscribe", "topics": ["job"]})).await;
    let mut everyone = Ws::open(&app, &admin).await;
    subscribed(&mut everyone, json!({"type": "subscribe", "all": true})).await;

    let bobs = app.enqueue(&bob, json!({"kind": "echo"})).await;
    let alices = app.enqueue(&alice, json!({"kind": "echo"})).await;
    let next = ws.expect().await;
    assert_eq!(
        next["job"], alices["id"],
        "bob's came first and was not sent"
    );
    assert_eq!(next["owner"], alice_id.to_string());
    let seen = everyone.until(LONG, |e| e["job"] == alices["id"]).await;
    assert!(
        seen.iter().any(|e| e["job"] == bobs["id"]),
        "the admin sees all"
    );

    let error = ws
        .ask(json!({"type": "subscribe", "all": true}), "error")
        .await;
    assert_eq!(error["field"], "all");
    assert!(
        error["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("admin"),
        "{error}"
    );
    // Refused, not applied: still only alice's, still open.
    app.enqueue(&bob, json!({"kind": "echo"})).await;
    let again = app.enqueue(&alice, json!({"kind": "echo"})).await;
    assert_eq!(ws.expect().await["job"], again["id"]);
}

#[sqlx::test]
async fn bad_messages_are_answered_and_the_socket_stays_open(pool: PgPool) {
    let app = no_workers(pool).await;
    let (_, alice) = app.user_with_token("alice", Role::User).await;
    let mut ws = Ws::open(&app, &alice).await;
    let bad = [
        (Message::text("not json"), None),
        (Message::text(r#"{"type":"subscrib"}"#), Some("type")),
        (
            Message::text(r#"{"type":"subscribe","topics":["jobs.dead"]}"#),
            Some("topics"),
        ),
        (
            Message::text(r#"{"type":"subscribe","jobs":[42]}"#),
            Some("jobs"),
        ),
        (
            Message::text(r#"{"type":"subscribe","topic":["job"]}"#),
            Some("topic"),
        ),
        (
            Message::text(r#"{"type":"unsubscribe","since":3}"#),
            Some("since"),
        ),
        (
            Message::text(format!(r#"{{"type":"ping","x":"{}"}}"#, "x".repeat(70_000))),
            None,
        ),
        (Message::binary(vec![1, 2, 3]), None),
    ];
    for (message, field) in bad {
        let sent = format!("{message:.60?}");
        ws.send_raw(message).await;
        let reply = ws.expect().await;
        assert_eq!(reply["type"], "error", "{sent}: {reply}");
        assert_eq!(reply["field"].as_str(), field, "{sent}: {reply}");
        assert!(reply["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let unknown = ws
        .ask(
            json!({"type": "subscribe", "topics": ["jobs.dead"]}),
            "error",
        )
        .await;
    assert!(
        unknown["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("jobs.dead")
    );
    ws.ask(json!({"type": "ping"}), "pong").await;
    subscribed(&mut ws, json!({"type": "subscribe", "topics": ["job"]})).await;
    let job = app.enqueue(&alice, json!({"kind": "echo"})).await;
    assert_eq!(ws.expect().await["job"], job["id"]);
}

#[sqlx::test]
async fn the_upgrade_is_checked_before_it_happens(pool: PgPool) {
    let app = no_workers(pool).await;
    let (_, alice) = app.user_with_token("alice", Role::User).await;
    let refused = |result: Result<_, WsError>| match result {
        Err(WsError::Http(resp)) => {
            let ct = resp.headers()["content-type"].to_str().unwrap_or_default();
            assert!(ct.starts_with("application/problem+json"), "{ct}");
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap_or_default())
                .expect("a problem");
            (resp.status().as_u16(), body)
        }
        Err(e) => panic!("refused without a response: {e}"),
        Ok(_) => panic!("upgraded"),
    };
    let (status, problem) =
        refused(tokio_tungstenite::connect_async(request(&app, "/v1/ws", None)).await);
    assert_eq!((status, &problem["code"]), (401, &json!("unauthorized")));
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("ticket")
    );
    let fake = format!("wh_{}", "a".repeat(43));
    let (status, _) =
        refused(tokio_tungstenite::connect_async(request(&app, "/v1/ws", Some(&fake))).await);
    assert_eq!(status, 401);
    let (status, _) = refused(
        tokio_tungstenite::connect_async(request(&app, "/v1/ws?ticket=wht_nope", None)).await,
    );
    assert_eq!(status, 401);

    let resp = app.post("/v1/events/tickets", Some(&alice)).await;
    let ticket: Value = resp.json().await.expect("a ticket");
    let path = format!(
        "/v1/ws?ticket={}",
        ticket["ticket"].as_str().expect("ticket")
    );
    let mut ws = Ws::open_path(&app, &path, None).await;
    subscribed(&mut ws, json!({"type": "subscribe"})).await;
    let job = app.enqueue(&alice, json!({"kind": "echo"})).await;
    assert_eq!(ws.expect().await["job"], job["id"]);

    let resp = app.get("/v1/ws", Some(&alice)).await;
    assert_eq!(resp.status().as_u16(), 426);
    assert_eq!(resp.headers()["upgrade"], "websocket");
    let problem: Value = resp.json().await.expect("a problem");
    assert_eq!(problem["code"], "upgrade_required");
    let resp = app
        .request(reqwest::Method::HEAD, "/v1/ws", Some(&alice))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 426);
    let resp = app.post("/v1/ws", Some(&alice)).await;
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.headers()["allow"], "GET, HEAD");
}
