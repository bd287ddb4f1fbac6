//! The outermost HTTP layer: request ids, the server span (HTTP semantic conventions, continuing
//! an incoming `traceparent`), the body size limit, the check of JSON bodies against the
//! spec, the request timeout, panics, and problem+json for every error poem raises (a 405 also
//! carries `Allow`).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use opentelemetry::propagation::Extractor;
use poem::http::header::ALLOW;
use poem::http::{HeaderMap, HeaderValue, StatusCode};
use poem::web::RemoteAddr;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::error::{Problem, REQUEST_ID, problem_from_poem};
use super::limits::LimitHeaders;
use super::route_table::{RouteEntry, RouteTable};
use super::validation::{BodySchemas, refuse_body};
use crate::metrics::Metrics;

/// Header carrying the request id both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Settings of the outermost layer.
#[derive(Clone)]
pub struct HttpLayer {
    /// Largest body accepted.
    pub body_limit: usize,
    /// Longest a request may run.
    pub timeout: Duration,
    /// The API's routes, to name spans by route rather than by raw path and to answer a 405
    /// with the methods the path serves.
    pub routes: Arc<RouteTable>,
    /// The JSON body schema of each operation, checked before a handler parses a body.
    pub bodies: Arc<BodySchemas>,
    /// Where request durations are recorded.
    pub metrics: Metrics,
}

impl<E: Endpoint + 'static> Middleware<E> for HttpLayer {
    type Output = HttpEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        HttpEndpoint {
            inner,
            layer: self.clone(),
        }
    }
}

/// The endpoint produced by [`HttpLayer`].
pub struct HttpEndpoint<E> {
    inner: E,
    layer: HttpLayer,
}

impl<E: Endpoint> Endpoint for HttpEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let started = Instant::now();
        let request_id = request_id(req.headers());
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let entry = self.layer.routes.find(&path);
        let route = entry.map(RouteEntry::template);
        let span = tracing::info_span!(
            "HTTP request",
            otel.name = %match &route { Some(r) => format!("{method} {r}"), None => method.clone() },
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            http.request.method = %method,
            http.route = route.as_deref().unwrap_or(""),
            http.response.status_code = tracing::field::Empty,
            url.path = %path,
            url.scheme = "http",
            url.query = redact_query(req.uri().query().unwrap_or("")),
            network.protocol.version = ?req.version(),
            client.address = %client_address(req.remote_addr()),
            user_agent.original = header_str(req.headers(), "user-agent"),
            server.address = host_and_port(header_str(req.headers(), "host")).0,
            server.port = tracing::field::Empty,
            error.type = tracing::field::Empty,
            request_id = %request_id,
        );
        let parent = opentelemetry::global::get_text_map_propagator(|p| {
            p.extract(&HeaderExtractor(req.headers()))
        });
        let _ = span.set_parent(parent);
        if let Some(port) = host_and_port(header_str(req.headers(), "host")).1 {
            span.record("server.port", i64::from(port));
        }

        let response = REQUEST_ID
            .scope(request_id.clone(), async {
                let limits = LimitHeaders::default();
                req.extensions_mut().insert(limits.clone());
                let mut response = match read_body(&mut req, self.layer.body_limit).await {
                    Err(problem) => problem.into_http_response(),
                    Ok(()) => match self.check_body(&mut req, route.as_deref()).await {
                        Some(problem) => {
                            self.refuse_after_auth(req, route.as_deref(), problem).await
                        }
                        None => self.call_inner(req, route.as_deref()).await,
                    },
                };
                response.headers_mut().extend(limits.render());
                response
            })
            .instrument(span.clone())
            .await;

        let status = response.status();
        // The route template, never the raw path, so ids do not make new series; an unknown
        // method is `_OTHER`, as the HTTP semantic conventions say.
        self.layer.metrics.http_request(
            route.as_deref().unwrap_or(""),
            known_method(&method),
            status.as_u16(),
            started.elapsed(),
        );
        // An integer attribute, as the semantic conventions say (u64 would arrive as a string).
        span.record("http.response.status_code", i64::from(status.as_u16()));
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
            span.record("error.type", status.as_str());
        }
        let mut response = response;
        // RFC 9110 requires a 405 to say which methods the resource does serve.
        if status == StatusCode::METHOD_NOT_ALLOWED
            && let Some(allow) = entry.and_then(RouteEntry::allow)
            && let Ok(value) = HeaderValue::from_str(&allow)
        {
            response.headers_mut().insert(ALLOW, value);
        }
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        span.in_scope(|| {
            tracing::info!(
                method = %method,
                path = %path,
                status = status.as_u16(),
                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                "request served"
            );
        });
        Ok(response)
    }
}

impl<E: Endpoint> HttpEndpoint<E> {
    /// The 422 for a JSON body that does not match its operation's schema.
    async fn check_body(&self, req: &mut Request, route: Option<&str>) -> Option<Problem> {
        refuse_body(req, &self.layer.bodies, route?).await
    }

    /// Answer `problem` for a body that failed the check, but only once the caller is known:
    /// the operation runs with a body no JSON payload accepts, so its credentials and rate
    /// limit are checked as for any request (a bad or revoked token is a 401, not a 422 that
    /// would tell an unauthenticated caller about the body), and its handler never runs.
    async fn refuse_after_auth(
        &self,
        mut req: Request,
        route: Option<&str>,
        problem: Problem,
    ) -> Response {
        req.set_body(&b"\0"[..]);
        let response = self.call_inner(req, route).await;
        match response.status() {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS => {
                response
            }
            _ => problem.into_http_response(),
        }
    }

    /// Run the inner endpoint with the timeout, turning errors and panics into problem+json.
    async fn call_inner(&self, req: Request, route: Option<&str>) -> Response {
        let call = AssertUnwindSafe(self.inner.call(req)).catch_unwind();
        match tokio::time::timeout(self.layer.timeout, call).await {
            Ok(Ok(Ok(output))) => output.into_response(),
            Ok(Ok(Err(error))) => problem_from_poem(error, route),
            Ok(Err(panic)) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(panic = %message, "request handler panicked");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; the logs have details under this request id",
                )
                .into_http_response()
            }
            Err(_) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!("the request did not finish within {:?}", self.layer.timeout),
            )
            .into_http_response(),
        }
    }
}

/// Read the whole body up to the limit (API bodies are small JSON documents) so an oversized or
/// endless body is refused with 413 before any handler runs.
async fn read_body(req: &mut Request, limit: usize) -> Result<(), Problem> {
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let body = req.take_body();
    match body.into_bytes_limit(limit).await {
        Ok(bytes) => {
            req.set_body(bytes);
            Ok(())
        }
        Err(poem::error::ReadBodyError::PayloadTooLarge) => Err(too_large()),
        Err(e) => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("the request body could not be read: {e}"),
        )),
    }
}

/// Use the caller's `x-request-id` when it is a sane token, else make one.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

fn known_method(method: &str) -> &str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("_OTHER")
}

/// The host and port of a `Host` header (`example.com:8080`, `[::1]:8080`, `example.com`).
fn host_and_port(host: &str) -> (&str, Option<u16>) {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !port.contains(']') => (name, port.parse().ok()),
        _ => (host, None),
    };
    (name.trim_start_matches('[').trim_end_matches(']'), port)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn client_address(addr: &RemoteAddr) -> String {
    addr.as_socket_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The query as spans record it: a stream ticket opens the caller's streams, so its value is
/// replaced.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("ticket", _)) => "ticket=REDACTED",
            _ => pair,
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_address_is_the_host_header_without_its_port() {
        assert_eq!(
            host_and_port("example.com:8080"),
            ("example.com", Some(8080))
        );
        assert_eq!(host_and_port("example.com"), ("example.com", None));
        assert_eq!(host_and_port("[::1]:8080"), ("::1", Some(8080)));
        assert_eq!(host_and_port("[::1]"), ("::1", None));
        assert_eq!(host_and_port(""), ("", None));
    }

    #[test]
    fn request_id_is_taken_from_a_sane_header_only() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&headers), "abc-123");
        headers.insert(
            REQUEST_ID_HEADER,
            HeaderValue::from_static("bad id <script>"),
        );
        assert_ne!(request_id(&headers), "bad id <script>");
    }

    #[test]
    fn stream_tickets_never_reach_a_span() {
        assert_eq!(
            super::redact_query("topic=job&ticket=wht_secret&all=true"),
            "topic=job&ticket=REDACTED&all=true"
        );
        assert_eq!(super::redact_query(""), "");
    }
}
