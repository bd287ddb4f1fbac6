//! Every bad-input class answers with RFC 9457 problem+json carrying the request id: unknown
//! routes, wrong methods, malformed JSON, oversized bodies, wrong content types, bad
//! parameters and invalid values.

use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{assert_problem, spawn_app};

#[sqlx::test]
async fn an_unknown_route_is_a_404_problem(pool: PgPool) {
    let app = spawn_app(pool).await;

    for path in ["/v1/nope", "/nope", "/v2/users"] {
        assert_problem(app.get(path, None).await, 404, "not_found").await;
    }
}

#[sqlx::test]
async fn a_wrong_method_is_a_405_problem(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.admin_token().await;

    let resp = app
        .request(Method::PUT, "/v1/me", Some(&token))
        .send()
        .await
        .unwrap();

    assert_problem(resp, 405, "method_not_allowed").await;
}

#[sqlx::test]
async fn malformed_json_is_a_400_problem(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.admin_token().await;

    // Well-formed JSON of the wrong shape is a 422 naming the field (tests/api/validation.rs).
    for body in ["{bad", "", "{\"name\": \"x\"", "nul"] {
        let resp = app
            .request(Method::POST, "/v1/users", Some(&token))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_problem(resp, 400, "invalid_request").await;
    }
}

#[sqlx::test]
async fn a_wrong_content_type_is_a_415_problem(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.admin_token().await;

    let resp = app
        .request(Method::POST, "/v1/users", Some(&token))
        .header("content-type", "text/plain")
        .body(r#"{"name":"x"}"#)
        .send()
        .await
        .unwrap();

    assert_problem(resp, 415, "unsupported_media_type").await;
}

#[sqlx::test]
async fn an_oversized_body_with_content_length_is_a_413_problem(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.admin_token().await;
    let name = "x".repeat(2 * 1024 * 1024);

    let resp = app
        .post_json("/v1/users", Some(&token), &json!({ "name": name }))
        .await;

    assert_problem(resp, 413, "payload_too_large").await;
}

#[sqlx::test]
async fn an_oversized_chunked_body_is_a_413_problem(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.admin_token().await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /v1/users HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        app.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 64 * 1024];
    // 2 MiB without a content-length: the limit must hold while reading.
    for _ in 0..32 {
        let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        if stream.write_all(&frame).await.is_err() {
            break; // the server may close early once the limit is crossed
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;

    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(
        answer.contains("\"code\":\"payload_too_large\""),
        "{answer}"
    );
}

#[sqlx::test]
async fn a_malformed_path_parameter_is_a_400_problem(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.admin_token().await;

    let resp = app.get("/v1/users/not-a-uuid", Some(&token)).await;

    assert_problem(resp, 400, "invalid_request").await;
}

#[sqlx::test]
async fn an_out_of_range_query_parameter_is_a_400_problem(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.admin_token().await;

    let resp = app.get("/v1/users?limit=100000", Some(&token)).await;

    assert_problem(resp, 400, "invalid_request").await;
}

#[sqlx::test]
async fn invalid_values_are_a_422_problem_naming_the_field(pool: PgPool) {
    let app = spawn_app(pool).await;
    let token = app.admin_token().await;

    let cases = [
        (json!({"name": "  "}), "name"),
        (json!({"name": "a", "email": "nope"}), "email"),
        (json!({"name": "a", "role": "root"}), "role"),
        (json!({"name": "a", "plan": "Gold Plan"}), "plan"),
    ];
    for (body, field) in cases {
        let resp = app.post_json("/v1/users", Some(&token), &body).await;
        let problem = assert_problem(resp, 422, "validation_failed").await;
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{problem}"
        );
    }
}

#[sqlx::test]
async fn the_callers_request_id_is_echoed_in_header_and_problem(pool: PgPool) {
    let app = spawn_app(pool).await;

    let resp = app
        .request(Method::GET, "/v1/me", None)
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();

    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let problem = assert_problem(resp, 401, "unauthorized").await;
    assert_eq!(problem["request_id"], "trace-me-42");
}
