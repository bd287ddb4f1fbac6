//! Metrics over OTLP: with `telemetry.otlp_endpoint` set, the daemon pushes the same
//! instruments `/metrics` serves to `<endpoint>/v1/metrics` every `metrics.export_interval`,
//! decoded here as a collector would.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Request, Response, Route};
use prost::Message;

use crate::helpers::{CONFIGURED_START, Sandbox, eventually, fresh_database, http};

/// What the receiver saw: metric names, and the `service.name` of each export.
#[derive(Default)]
struct Seen {
    names: BTreeSet<String>,
    services: BTreeSet<String>,
}

/// Decode one OTLP/HTTP protobuf metrics export.
async fn receive(mut req: Request, seen: &Mutex<Seen>) -> Response {
    let body = req.take_body().into_bytes().await.unwrap_or_default();
    let Ok(export) = ExportMetricsServiceRequest::decode(body) else {
        return Response::builder().status(StatusCode::BAD_REQUEST).finish();
    };
    let mut seen = seen.lock().expect("the metric store");
    for resource in export.resource_metrics {
        let attributes = resource.resource.map(|r| r.attributes).unwrap_or_default();
        let service = attributes.iter().find(|kv| kv.key == "service.name");
        if let Some(Value::StringValue(name)) =
            service.and_then(|kv| kv.value.as_ref()?.value.clone())
        {
            seen.services.insert(name);
        }
        for scope in resource.scope_metrics {
            seen.names.extend(scope.metrics.into_iter().map(|m| m.name));
        }
    }
    Response::builder()
        .content_type("application/x-protobuf")
        .body(ExportMetricsServiceResponse::default().encode_to_vec())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_pushed_to_the_otlp_receiver_every_export_interval() {
    // Arrange: a receiver, and a daemon exporting to it every second.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let store = seen.clone();
    let export = poem::endpoint::make(move |req: Request| {
        let store = store.clone();
        async move { receive(req, &store).await }
    });
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("binding the OTLP receiver");
    let addr: SocketAddr = *acceptor.local_addr()[0]
        .as_socket_addr()
        .expect("a TCP address");
    let receiver = tokio::spawn(async move {
        let app = Route::new().at("/v1/metrics", poem::post(export));
        let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
    });
    let db = fresh_database().await;
    let sandbox = Sandbox::new();
    let endpoint = format!("http://{addr}");
    let mut daemon = sandbox.serve(&[
        ("WORKHORSE_DATABASE__URL", db.url()),
        ("WORKHORSE_TELEMETRY__OTLP_ENDPOINT", endpoint.as_str()),
        ("WORKHORSE_TELEMETRY__SERVICE_NAME", "workhorse-otlp-test"),
        ("WORKHORSE_METRICS__EXPORT_INTERVAL", "1s"),
    ]);
    daemon.wait_ready(CONFIGURED_START).await;

    // Act: one request to time, then wait for the exports that carry it.
    let url = format!("{}/healthz", daemon.base_url());
    http().get(&url).send().await.expect("GET /healthz");
    let expected = [
        "workhorse.jobs",
        "workhorse.job.attempts",
        "workhorse.db.pool.connections",
        "http.server.request.duration",
    ];
    let exported = async || {
        let seen = seen.lock().expect("the metric store");
        expected
            .iter()
            .all(|n| seen.names.contains(*n))
            .then_some(())
    };
    eventually(Duration::from_secs(20), "the OTLP metric exports", exported).await;

    // Assert: under the configured service name, and /metrics still serves.
    let services = seen.lock().expect("the metric store").services.clone();
    assert!(services.contains("workhorse-otlp-test"), "{services:?}");
    let metrics = format!("{}/metrics", daemon.base_url());
    let resp = http().get(&metrics).send().await.expect("GET /metrics");
    assert_eq!(resp.status().as_u16(), 200);
    daemon.terminate(Duration::from_secs(20)).await;
    receiver.abort();
}
