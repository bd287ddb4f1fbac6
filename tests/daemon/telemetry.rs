//! Trace export: the daemon's server spans reach an OTLP/HTTP receiver, continuing the caller's
//! W3C `traceparent`.

use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use crate::helpers::{CONFIGURED_START, Sandbox, fresh_database, http};
use crate::otlp::{OtlpReceiver, Received, attr, hex, string};

/// Start a daemon exporting to a local receiver, send one `GET /healthz` per entry (with that
/// `traceparent` when given), stop the daemon so it flushes, and return the server span of each
/// request in order.
async fn exported_healthz_spans(
    traceparents: &[Option<&str>],
    env: &[(&str, &str)],
) -> Vec<Received> {
    let receiver = OtlpReceiver::start().await;
    let db = fresh_database().await;
    let sandbox = Sandbox::new();
    let endpoint = receiver.endpoint();
    let mut vars = vec![
        ("WORKHORSE_DATABASE__URL", db.url()),
        ("WORKHORSE_TELEMETRY__OTLP_ENDPOINT", endpoint.as_str()),
    ];
    vars.extend_from_slice(env);
    let mut daemon = sandbox.serve(&vars);
    daemon.wait_ready(CONFIGURED_START).await;
    let mut request_ids = Vec::new();
    for traceparent in traceparents {
        let mut request = http().get(format!("{}/healthz", daemon.base_url()));
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", *traceparent);
        }
        let response = request.send().await.expect("GET /healthz");
        assert_eq!(response.status(), 200);
        let id = response
            .headers()
            .get("x-request-id")
            .and_then(|id| id.to_str().ok());
        request_ids.push(string(id.expect("an x-request-id header")));
    }
    // Spans are batched and flushed on shutdown, so the daemon stops before we look.
    let status = daemon.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "workhorse exited with {status}");
    let spans = receiver.spans();
    request_ids
        .iter()
        .map(|id| {
            spans
                .iter()
                .find(|r| attr(&r.span.attributes, "request_id") == Some(id))
                .cloned()
                .unwrap_or_else(|| panic!("no span with request_id {id:?} among {spans:#?}"))
        })
        .collect()
}

/// A random W3C trace id and span id in lowercase hex.
fn caller_ids() -> (String, String) {
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let span_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    (trace_id, span_id)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_with_traceparent_is_exported_as_a_server_span_in_the_callers_trace() {
    // Arrange
    let (trace_id, caller_span_id) = caller_ids();
    let traceparent = format!("00-{trace_id}-{caller_span_id}-01");

    // Act
    let spans = exported_healthz_spans(&[Some(&traceparent)], &[]).await;
    let Received { resource, span } = &spans[0];

    // Assert
    assert_eq!(hex(&span.trace_id), trace_id);
    assert_eq!(hex(&span.parent_span_id), caller_span_id);
    assert_eq!(span.name, "GET /healthz");
    assert_eq!(span.kind, SpanKind::Server as i32);
    let attributes = &span.attributes;
    assert_eq!(
        attr(attributes, "http.request.method"),
        Some(&string("GET"))
    );
    assert_eq!(attr(attributes, "http.route"), Some(&string("/healthz")));
    assert_eq!(attr(attributes, "url.path"), Some(&string("/healthz")));
    assert!(attr(attributes, "http.response.status_code").is_some());
    // `server.address` is the Host header's host; its port is `server.port`.
    assert_eq!(
        attr(attributes, "server.address"),
        Some(&string("127.0.0.1"))
    );
    assert!(attr(attributes, "server.port").is_some());
    assert_eq!(attr(resource, "service.name"), Some(&string("workhorse")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_without_traceparent_starts_a_new_trace() {
    // Arrange: a traced request first, so a leaked context would show up in the second.
    let (trace_id, span_id) = caller_ids();
    let traceparent = format!("00-{trace_id}-{span_id}-01");

    // Act
    let spans = exported_healthz_spans(&[Some(&traceparent), None], &[]).await;
    let span = &spans[1].span;

    // Assert
    assert_ne!(hex(&span.trace_id), trace_id);
    assert_eq!(span.trace_id.len(), 16);
    assert!(
        span.trace_id.iter().any(|b| *b != 0),
        "an all-zero trace id"
    );
    assert!(span.parent_span_id.is_empty(), "a new trace has no parent");
    assert_eq!(span.name, "GET /healthz");
}

// Bug: src/api/middleware.rs records the status as u16, which tracing-opentelemetry 0.34 turns
// into the string "200"; the HTTP semantic conventions (and backends' dashboards) want an int.
#[tokio::test(flavor = "multi_thread")]
// Regression: http.response.status_code was exported as the string "200".
async fn the_response_status_code_is_exported_as_an_integer() {
    // Act
    let spans = exported_healthz_spans(&[None], &[]).await;

    // Assert
    assert_eq!(
        attr(&spans[0].span.attributes, "http.response.status_code"),
        Some(&Value::IntValue(200))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_configured_service_name_names_the_exported_resource() {
    // Act
    let spans =
        exported_healthz_spans(&[None], &[("WORKHORSE_TELEMETRY__SERVICE_NAME", "wh-test")]).await;

    // Assert
    assert_eq!(
        attr(&spans[0].resource, "service.name"),
        Some(&string("wh-test"))
    );
}
