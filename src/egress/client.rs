//! The one outbound HTTP client for everything sent on a user's behalf (webhooks, Web Push):
//! names are resolved by a resolver that applies the egress policy, so a connection only ever
//! goes to an address that was checked; IP literals are checked before the request; redirects
//! are not followed; one connection pool (and one TLS configuration) serves every delivery.
//!
//! Why no redirects at all, rather than re-checked ones: a receiver or push service that
//! redirects is misconfigured (Standard Webhooks and RFC 8030 expect the answer from the URL
//! given), a followed POST would carry the signed or encrypted body somewhere the user did not
//! name, and an IP-literal `Location` would bypass the resolver that does the checking. A 3xx is
//! handed back as the answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use tracing::Instrument;
use url::Host;

use super::EgressPolicy;
use super::failure::OutboundError;
use super::span::{self, Path};
use crate::domain;

/// How much of an answer's body is read (and thrown away) so its connection can be reused;
/// a longer body closes the connection instead. Bodies are never kept: what a remote server
/// says is not ours to store or show.
const DRAIN_LIMIT: usize = 64 * 1024;
/// The longest a connection attempt may take, within the request's own timeout.
// A dead address should fail over to the next one (happy eyeballs) long before the delivery's
// timeout; 10 s is what the policy's name lookup gets too.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a remote server answered: its status and when it asked us to come back. The body is
/// read and discarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// `Retry-After`, in seconds or as an HTTP date, if sent.
    pub retry_after: Option<Duration>,
}

impl Answer {
    /// The status in words safe to store, e.g. `HTTP 500 Internal Server Error`: the code and
    /// its standard reason phrase, never the phrase or body the server sent.
    pub fn describe(&self) -> String {
        describe_status(self.status.as_u16())
    }
}

/// An HTTP status in words safe to store, e.g. `HTTP 500 Internal Server Error`: the code and
/// its standard reason phrase, whatever phrase the server sent.
pub fn describe_status(status: u16) -> String {
    match StatusCode::from_u16(status)
        .ok()
        .and_then(|status| status.canonical_reason())
    {
        Some(reason) => format!("HTTP {status} {reason}"),
        None => format!("HTTP {status}"),
    }
}

/// An HTTP client that only reaches what the egress policy allows, pinned to the addresses it
/// checked. Build one per daemon and share it: it holds the connection pool.
#[derive(Clone)]
pub struct OutboundClient {
    http: reqwest::Client,
    policy: Arc<EgressPolicy>,
}

impl std::fmt::Debug for OutboundClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundClient")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl OutboundClient {
    /// A client obeying `policy`, each request (connect, send, answer) bounded by `timeout`.
    pub fn new(policy: Arc<EgressPolicy>, timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(PolicyResolver(Arc::clone(&policy))))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the name itself, past the policy.
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .user_agent(concat!("workhorse/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("building the outbound HTTP client: {e}"))?;
        Ok(Self { http, policy })
    }

    /// The egress policy this client applies.
    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// POSTs `body` with `headers` to `url` and returns the answer, whatever its status. A
    /// refusal by the policy, a failed connection or a timeout is an [`OutboundError`] whose
    /// text never repeats the URL. The request is an HTTP client span showing the URL's path.
    pub async fn post(
        &self,
        url: &str,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<Answer, OutboundError> {
        self.send(url, headers, body, Path::Shown).await
    }

    /// As [`OutboundClient::post`], to a URL whose path is a capability (a Web Push
    /// endpoint): its span shows scheme, host and port only.
    pub async fn post_to_capability(
        &self,
        url: &str,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<Answer, OutboundError> {
        self.send(url, headers, body, Path::Secret).await
    }

    async fn send(
        &self,
        url: &str,
        headers: HeaderMap,
        body: Vec<u8>,
        path: Path,
    ) -> Result<Answer, OutboundError> {
        // Scheme and IP literals here; names are checked by the resolver as they connect.
        let url = self.policy.check_url(url)?;
        let span = span::client("POST", &url, path);
        let exchange = async {
            let response = (self.http.post(url).headers(headers).body(body).send().await)
                .map_err(OutboundError::from_reqwest)?;
            let answer = Answer {
                status: response.status(),
                retry_after: retry_after(response.headers()),
            };
            drain(response).await;
            Ok(answer)
        };
        let result: Result<Answer, OutboundError> = exchange.instrument(span.clone()).await;
        match &result {
            Ok(answer) => span::record_status(&span, answer.status.as_u16()),
            Err(e) => span::record_error(&span, e.kind()),
        }
        result
    }
}

/// A document fetched with GET: its status, the address after redirects, and its body.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The final answer's status.
    pub status: StatusCode,
    /// The address after redirects.
    pub url: url::Url,
    /// The body as text (invalid UTF-8 replaced), at most the bytes asked for.
    pub body: String,
}

/// Redirects a GET follows at most, each target checked like the first.
const MAX_REDIRECTS: usize = 5;

impl OutboundClient {
    /// GETs a public document (`robots.txt`, a sitemap, a page to map), following up to five
    /// redirects, each checked against the policy as the first URL is (a document read for a
    /// crawl has no body of ours to carry elsewhere, unlike a webhook). Reads at most
    /// `max_bytes` of the body.
    pub async fn get_document(
        &self,
        url: &str,
        max_bytes: usize,
    ) -> Result<Fetched, OutboundError> {
        let mut url = self.policy.check_url(url)?;
        for _ in 0..=MAX_REDIRECTS {
            let span = span::client("GET", &url, Path::Shown);
            let request = self.http.get(url.clone()).send().instrument(span.clone());
            let mut response = request.await.map_err(|e| {
                let e = OutboundError::from_reqwest(e);
                span::record_error(&span, e.kind());
                e
            })?;
            span::record_status(&span, response.status().as_u16());
            let location = (response.headers().get(reqwest::header::LOCATION))
                .and_then(|v| v.to_str().ok())
                .and_then(|l| url.join(l).ok());
            if response.status().is_redirection()
                && let Some(next) = location
            {
                url = self.policy.check_url(next.as_str())?;
                continue;
            }
            let mut body = Vec::new();
            while body.len() < max_bytes {
                match response.chunk().await {
                    Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                    Ok(None) => break,
                    Err(e) => return Err(OutboundError::from_reqwest(e)),
                }
            }
            body.truncate(max_bytes);
            return Ok(Fetched {
                status: response.status(),
                url,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        Err(OutboundError::BadUrl(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }
}

/// Resolves names for the client and refuses any whose addresses the policy blocks, so the
/// connection goes to exactly the addresses checked.
struct PolicyResolver(Arc<EgressPolicy>);

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.0);
        let name = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: the connector puts the URL's port in.
            let addrs: Vec<SocketAddr> = policy.resolve_host(&name, Host::Domain(&name), 0).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Reads up to [`DRAIN_LIMIT`] of the body so the connection can go back to the pool.
async fn drain(mut response: reqwest::Response) {
    let mut read = 0;
    while read < DRAIN_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            _ => break,
        }
    }
}

/// `Retry-After`, if the server sent a usable one.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    domain::http::retry_after(value, chrono::Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_described_by_its_code_and_standard_reason() {
        let answer = |code| Answer {
            status: StatusCode::from_u16(code).expect("a status"),
            retry_after: None,
        };

        assert_eq!(answer(500).describe(), "HTTP 500 Internal Server Error");
        assert_eq!(answer(410).describe(), "HTTP 410 Gone");
        assert_eq!(answer(599).describe(), "HTTP 599");
    }
}
