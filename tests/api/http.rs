//! HTTP behaviour around the handlers: CORS as configured, and graceful shutdown letting an
//! in-flight request finish while new connections are refused.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{spawn_app, spawn_app_with};

#[sqlx::test]
async fn cors_preflight_is_answered_for_a_configured_origin_only(pool: PgPool) {
    let app = spawn_app_with(pool, |c| {
        c.http.cors_allow_origins = vec!["https://app.example.com".into()];
    })
    .await;
    let preflight = |origin: &'static str| {
        app.request(Method::OPTIONS, "/v1/me", None)
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };

    let allowed = preflight("https://app.example.com").await.unwrap();
    let refused = preflight("https://evil.example.net").await.unwrap();

    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin"),
        "{:?}",
        refused.headers()
    );
}

#[sqlx::test]
async fn without_configured_origins_no_cors_headers_are_sent(pool: PgPool) {
    let app = spawn_app(pool).await;

    let resp = app
        .request(Method::GET, "/healthz", None)
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();

    assert_eq!(resp.status(), StatusCode::OK);
    assert!(!resp.headers().contains_key("access-control-allow-origin"));
}

#[sqlx::test]
async fn shutdown_lets_an_in_flight_request_finish_and_then_stops(pool: PgPool) {
    let mut app = spawn_app(pool).await;
    let token = app.admin_token().await;
    let body = br#"{"name": "late but served"}"#;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /v1/users HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        app.addr,
        body.len()
    );
    // The request is in flight: headers and half the body are sent when shutdown starts.
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    app.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stream.write_all(&body[10..]).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();

    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let stopped = tokio::time::timeout(Duration::from_secs(10), &mut app.stopped).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "the app did not stop cleanly: {stopped:?}"
    );
    assert!(
        tokio::net::TcpStream::connect(app.addr).await.is_err(),
        "new connections are refused after shutdown"
    );
}
