//! A local OTLP/HTTP trace receiver for the daemon's tests, decoding real exports, and helpers
//! to read the spans it got.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Request, Response, Route};
use prost::Message;

/// One exported span with the resource it was exported under.
#[derive(Clone, Debug)]
pub struct Received {
    pub resource: Vec<KeyValue>,
    pub span: Span,
}

/// A local OTLP/HTTP trace receiver that decodes what it gets, as a collector would.
pub struct OtlpReceiver {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<Received>>>,
    server: tokio::task::JoinHandle<()>,
}

impl OtlpReceiver {
    pub async fn start() -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let store = spans.clone();
        let export = poem::endpoint::make(move |req: Request| {
            let store = store.clone();
            async move { receive(req, &store).await }
        });
        let app = Route::new().at("/v1/traces", poem::post(export));
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("binding the OTLP receiver");
        let addr = *acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("a TCP address");
        let server = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Self {
            addr,
            spans,
            server,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn spans(&self) -> Vec<Received> {
        self.spans.lock().expect("the span store").clone()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Decode one export request; anything but protobuf is refused so that the test sees nothing.
async fn receive(mut req: Request, store: &Mutex<Vec<Received>>) -> Response {
    let content_type = req.content_type().unwrap_or_default().to_string();
    let body = req.take_body().into_bytes().await.unwrap_or_default();
    if content_type != "application/x-protobuf" {
        return Response::builder()
            .status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .finish();
    }
    let Ok(export) = ExportTraceServiceRequest::decode(body) else {
        return Response::builder().status(StatusCode::BAD_REQUEST).finish();
    };
    let mut spans = store.lock().expect("the span store");
    for resource_spans in export.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| r.attributes)
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                spans.push(Received {
                    resource: resource.clone(),
                    span,
                });
            }
        }
    }
    Response::builder()
        .content_type("application/x-protobuf")
        .body(ExportTraceServiceResponse::default().encode_to_vec())
}

pub fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

pub fn string(value: &str) -> Value {
    Value::StringValue(value.to_string())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The spans of the trace `trace_id` (lowercase hex).
pub fn trace(spans: &[Received], trace_id: &str) -> Vec<Span> {
    (spans.iter())
        .filter(|r| hex(&r.span.trace_id) == trace_id)
        .map(|r| r.span.clone())
        .collect()
}

/// The span named `name` in `spans`; fails the test, showing the spans, when there is none.
pub fn named<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    (spans.iter().find(|s| s.name == name))
        .unwrap_or_else(|| panic!("no span {name:?} in:\n{}", tree(spans)))
}

/// Whether `ancestor` is `span`'s parent, grandparent, ... within `spans`.
pub fn descends_from(spans: &[Span], span: &Span, ancestor: &Span) -> bool {
    let mut parent = span.parent_span_id.clone();
    while !parent.is_empty() {
        if parent == ancestor.span_id {
            return true;
        }
        match spans.iter().find(|s| s.span_id == parent) {
            Some(up) => parent = up.parent_span_id.clone(),
            None => return false,
        }
    }
    false
}

/// Attributes every span has (where in the code, which thread, busy and idle time): left out
/// of [`tree`].
const NOISE: [&str; 5] = ["code.", "thread.", "busy_ns", "idle_ns", "target"];

/// The spans as an indented tree in start order, each with its kind and attributes: what
/// docs/operations.md shows.
pub fn tree(spans: &[Span]) -> String {
    fn walk(spans: &[Span], parent: &[u8], depth: usize, out: &mut String) {
        let mut children: Vec<&Span> = (spans.iter())
            .filter(|s| s.parent_span_id == parent)
            .collect();
        children.sort_by_key(|s| s.start_time_unix_nano);
        for span in children {
            let kind = SpanKind::try_from(span.kind).map_or("?", |k| k.as_str_name());
            let attributes: Vec<String> = (span.attributes.iter())
                .filter(|kv| !NOISE.iter().any(|n| kv.key.starts_with(n)))
                .filter_map(|kv| {
                    Some(format!(
                        "{}={}",
                        kv.key,
                        show(kv.value.as_ref()?.value.as_ref()?)
                    ))
                })
                .collect();
            let ms = span
                .end_time_unix_nano
                .saturating_sub(span.start_time_unix_nano)
                / 1_000_000;
            out.push_str(&format!(
                "{}{} [{}, {ms} ms] {}\n",
                "  ".repeat(depth),
                span.name,
                kind.trim_start_matches("SPAN_KIND_").to_lowercase(),
                attributes.join(" ")
            ));
            walk(spans, &span.span_id, depth + 1, out);
        }
    }
    let ids: Vec<&[u8]> = spans.iter().map(|s| s.span_id.as_slice()).collect();
    let mut out = String::new();
    // Roots: spans whose parent is not among them (the caller's span, or none).
    let mut roots: Vec<&[u8]> = (spans.iter())
        .map(|s| s.parent_span_id.as_slice())
        .filter(|p| !ids.contains(p))
        .collect();
    roots.sort();
    roots.dedup();
    for root in roots {
        walk(spans, root, 0, &mut out);
    }
    out
}

fn show(value: &Value) -> String {
    match value {
        Value::StringValue(s) => format!("{s:?}"),
        Value::IntValue(i) => i.to_string(),
        Value::BoolValue(b) => b.to_string(),
        Value::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    }
}
