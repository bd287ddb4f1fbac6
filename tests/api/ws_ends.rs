//! How `/v1/ws` connections end: the heartbeat closes a client that stops answering, a client
//! that does not read is dropped while others keep up, and shutdown tells every connection
//! why, each with a `close` message and a Close frame carrying the reason; a message over the
//! read limit ends the connection.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;
use workhorse::domain::users::Role;

use crate::helpers::{insert_queued, spawn_app_with};
use crate::ws::no_workers;
use crate::ws_client::{Got, Ws, request, subscribed};

const LONG: Duration = Duration::from_secs(30);

#[sqlx::test]
async fn the_server_pings_and_closes_a_client_that_stops_answering(pool: PgPool) {
    let app = spawn_app_with(pool, |c| {
        c.events.keep_alive = Duration::from_millis(200);
    })
    .await;
    let (_, alice) = app.user_with_token("alice", Role::User).await;
    // Reading, the client answers each Ping with a Pong: it stays open past 2 × keep_alive.
    let mut ws = Ws::open(&app, &alice).await;
    for _ in 0..4 {
        let got = ws.next_any(Duration::from_secs(5)).await;
        assert!(matches!(got, Some(Got::Ping)), "{got:?}");
    }
    ws.ask(json!({"type": "ping"}), "pong").await;

    // Not reading, it never answers: closed with the reason.
    let mut silent = Ws::open(&app, &alice).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mut got = Vec::new();
    while let Some(message) = silent.next_any(Duration::from_secs(5)).await {
        let end = matches!(message, Got::Close(..));
        got.push(message);
        if end {
            break;
        }
    }
    let close = got.iter().find_map(|g| match g {
        Got::Json(v) if v["type"] == "close" => Some(v["reason"].clone()),
        _ => None,
    });
    assert_eq!(close, Some(json!("heartbeat_timeout")), "{got:?}");
    assert!(
        matches!(got.last(), Some(Got::Close(1001, r)) if r == "heartbeat_timeout"),
        "{got:?}"
    );
}

#[sqlx::test]
async fn a_client_that_does_not_read_is_dropped_while_others_keep_up(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), |c| {
        c.jobs.run_workers = false;
        c.events.client_buffer = 16;
        c.events.slow_after = Duration::from_millis(300);
    })
    .await;
    let admin = app.admin_token().await;
    let mut fast = Ws::open(&app, &admin).await;
    subscribed(&mut fast, json!({"type": "subscribe", "all": true})).await;
    // A small receive buffer, and never read once subscribed.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small buffer");
    let conn = socket.connect(app.addr).await.expect("connects");
    let (socket, _) = tokio_tungstenite::client_async(
        request(&app, "/v1/ws", Some(&admin)),
        MaybeTlsStream::Plain(conn),
    )
    .await
    .expect("the upgrade");
    let mut slow = Ws { socket };
    subscribed(&mut slow, json!({"type": "subscribe", "all": true})).await;

    // Rounds of 20,000 events (about 5 MB) in one statement each, until the server has
    // dropped the stalled client: how much the kernel buffers before a write blocks depends
    // on its TCP autotuning, so no one amount is sure to be enough.
    const ROUND: usize = 20_000;
    let mut sent = 0;
    while app.stream_clients(&admin).await != 1 {
        assert!(sent < 10 * ROUND, "still following after {sent} events");
        insert_queued(&pool, ROUND).await;
        for _ in 0..ROUND {
            let e = fast.next(LONG).await.expect("the fast client keeps up");
            assert_eq!(e["type"], "job.queued", "{e}");
        }
        sent += ROUND;
        // A stalled write takes `slow_after` to be noticed.
        tokio::time::sleep(Duration::from_millis(600)).await;
    }

    // The stalled client, read at last: some events, then the end of the connection, with
    // the reason when it took the goodbye in time (it did not read for long here).
    let (mut events, mut reason) = (0, None);
    let deadline = tokio::time::Instant::now() + 4 * LONG;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not dropped after {events} events"
        );
        match tokio::time::timeout(LONG, slow.socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let message: Value = serde_json::from_str(&text).expect("JSON");
                match message["type"].as_str() {
                    Some("job.queued") => events += 1,
                    Some("close") => reason = Some(message["reason"].clone()),
                    _ => panic!("unexpected {message}"),
                }
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                let frame = frame.expect("a code");
                assert_eq!(u16::from(frame.code), 1013, "try again later");
                assert_eq!(frame.reason.as_str(), "slow_consumer");
                break;
            }
            Ok(Some(Ok(_))) => {}
            // Dropped without the goodbye, or at the end.
            Ok(Some(Err(_)) | None) => break,
            Err(_) => panic!("still open after {events} events"),
        }
    }
    assert!(events < sent, "dropped before it got everything");
    if let Some(reason) = reason {
        assert_eq!(reason, "slow_consumer");
    }
}

#[sqlx::test]
async fn at_shutdown_every_connection_is_told_why(pool: PgPool) {
    let app = no_workers(pool).await;
    let (_, alice) = app.user_with_token("alice", Role::User).await;
    let mut following = Ws::open(&app, &alice).await;
    subscribed(&mut following, json!({"type": "subscribe"})).await;
    let mut idle = Ws::open(&app, &alice).await;
    idle.ask(json!({"type": "ping"}), "pong").await;

    app.shutdown.cancel();
    for ws in [&mut following, &mut idle] {
        let close = ws.expect().await;
        assert_eq!(close, json!({"type": "close", "reason": "shutting_down"}));
        let frame = ws.next_any(Duration::from_secs(10)).await;
        assert!(
            matches!(&frame, Some(Got::Close(1001, r)) if r == "shutting_down"),
            "{frame:?}"
        );
    }
}

#[sqlx::test]
async fn a_message_over_the_read_limit_ends_the_connection(pool: PgPool) {
    let app = no_workers(pool).await;
    let (_, alice) = app.user_with_token("alice", Role::User).await;
    let mut ws = Ws::open(&app, &alice).await;
    let huge = format!(r#"{{"type":"ping","x":"{}"}}"#, "x".repeat(2 << 20));
    // The server may stop reading before the client has written it all.
    let _ = futures::SinkExt::send(&mut ws.socket, Message::text(huge)).await;
    // Not answered with an `error` (as a message over 64 KiB is): dropped.
    let got = tokio::time::timeout(LONG, ws.socket.next())
        .await
        .expect("the connection ends");
    assert!(
        matches!(got, None | Some(Err(_)) | Some(Ok(Message::Close(_)))),
        "{got:?}"
    );
}
