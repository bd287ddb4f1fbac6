//! HTTP client spans (OpenTelemetry HTTP semantic conventions) for requests sent on a user's
//! behalf, with the URL redacted: no credentials, no query, and no path when the path is a
//! capability (a Web Push endpoint).

use tracing::Span;
use tracing::field::Empty;
use url::Url;

/// Whether a URL's path may appear in a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// The path is an address like any other (a webhook's `/hooks/orders`).
    Shown,
    /// The path grants access (a push subscription's endpoint): only `/…` is shown.
    Secret,
}

/// `scheme://host:port/path` of `url`: user info, query and fragment dropped; the port always
/// written; the path replaced by `/…` when it is [`Path::Secret`].
pub fn redacted_url(url: &Url, path: Path) -> String {
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        Some(host) => host.to_string(),
        None => String::new(),
    };
    let port = url.port_or_known_default().unwrap_or_default();
    let path = match path {
        Path::Shown => url.path(),
        Path::Secret => "/…",
    };
    format!("{}://{host}:{port}{path}", url.scheme())
}

/// An `info` span of kind client named after `method`, with the request's semantic attributes;
/// [`record_status`] and [`record_error`] fill in how it ended.
pub fn client(method: &'static str, url: &Url, path: Path) -> Span {
    tracing::info_span!(
        "HTTP client request",
        otel.name = method,
        otel.kind = "client",
        otel.status_code = Empty,
        http.request.method = method,
        url.full = redacted_url(url, path),
        server.address = url.host_str().unwrap_or_default(),
        server.port = i64::from(url.port_or_known_default().unwrap_or_default()),
        http.response.status_code = Empty,
        error.type = Empty,
    )
}

/// The answer's status; a 4xx or 5xx marks the span as an error, named by its code.
pub fn record_status(span: &Span, status: u16) {
    span.record("http.response.status_code", i64::from(status));
    if status >= 400 {
        span.record("error.type", status.to_string());
        span.record("otel.status_code", "ERROR");
    }
}

/// No answer: the span is an error of type `kind` (e.g. `timeout`, `blocked_by_policy`).
pub fn record_error(span: &Span, kind: &str) {
    span.record("error.type", kind);
    span.record("otel.status_code", "ERROR");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).expect("a URL")
    }

    #[test]
    fn credentials_query_and_fragment_never_reach_the_trace() {
        let redacted = redacted_url(
            &url("https://user:pass@hooks.example.com/in/orders?sig=abc#top"),
            Path::Shown,
        );
        assert_eq!(redacted, "https://hooks.example.com:443/in/orders");
    }

    #[test]
    fn a_secret_path_is_replaced_and_the_default_port_written() {
        let redacted = redacted_url(
            &url("http://push.example.com/wpush/v2/gAAAAABk-secret"),
            Path::Secret,
        );
        assert_eq!(redacted, "http://push.example.com:80/…");
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        let redacted = redacted_url(&url("http://[::1]:8081/hook"), Path::Shown);
        assert_eq!(redacted, "http://[::1]:8081/hook");
    }
}
