//! Firebase Cloud Messaging (HTTP v1): a sender per service account that mints its own OAuth2
//! access token (JWT bearer grant, RFC 7523), caches it, and sorts FCM's answers into outcomes.
//!
//! How FCM's answers are sorted (its `error.details[].errorCode`, else the HTTP status):
//! - `UNREGISTERED` (404, sometimes 400): the device token is gone → [`FcmOutcome::Unregistered`];
//!   the caller disables the channel. A 404 *without* that code is not taken as one: a wrong
//!   project id or base URL answers 404 too, and must not disable every channel.
//! - 429 (`QUOTA_EXCEEDED`) and 5xx (`UNAVAILABLE`, `INTERNAL`) → [`FcmOutcome::Retry`], with
//!   `Retry-After` when sent.
//! - 401: the access token is dropped and the send is tried once more with a fresh one; a second
//!   401 is [`FcmError::Token`]. `THIRD_PARTY_AUTH_ERROR` (APNs or Web Push credentials) is a
//!   401 that a new token cannot fix, so it is rejected at once.
//! - Anything else (400 `INVALID_ARGUMENT`, 403 `SENDER_ID_MISMATCH`, ...) →
//!   [`FcmOutcome::Rejected`]: sending the same message again would fail the same way.
//!
//! `key` reads the service account and its key; `token` mints and caches the access token.

mod key;
mod token;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use tracing::field::Empty;

pub use key::ServiceAccount;
use token::TokenSource;

use crate::domain;
use crate::egress::span::{Path, redacted_url};

/// Where FCM lives when the configuration names no other base.
pub const DEFAULT_FCM_BASE: &str = "https://fcm.googleapis.com";
/// FCM's limit on the message payload, in bytes; checked on the serialised `message`.
pub const MAX_PAYLOAD: usize = 4096;

/// One notification to send to one device.
#[derive(Debug, Clone, Default)]
pub struct FcmMessage {
    /// The notification's title.
    pub title: String,
    /// The notification's text.
    pub body: String,
    /// Key-value pairs handed to the app.
    pub data: BTreeMap<String, String>,
}

/// What FCM did with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FcmOutcome {
    /// Accepted; `name` is FCM's id for it (`projects/p/messages/...`).
    Delivered {
        /// FCM's message id.
        name: String,
    },
    /// The device token is no longer valid: disable the channel rather than retry.
    Unregistered,
    /// FCM is overloaded or failing: try again, not before `after` when FCM said so.
    Retry {
        /// FCM's `Retry-After`, if it sent one.
        after: Option<Duration>,
        /// The HTTP status.
        status: u16,
        /// The status in words and FCM's error code, e.g. `HTTP 429 Too Many Requests:
        /// QUOTA_EXCEEDED`; never FCM's message text.
        reason: String,
    },
    /// FCM refused this message for good (bad argument, wrong sender, ...).
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The status in words and FCM's error code; never FCM's message text.
        reason: String,
    },
}

/// Why a send could not get an answer from FCM.
#[derive(Debug, thiserror::Error)]
pub enum FcmError {
    /// The service-account key or an endpoint is unusable.
    #[error("FCM configuration: {0}")]
    Config(String),
    /// The message is over FCM's payload limit; it was not sent.
    #[error("the FCM message is {size} bytes, over the limit of {max}")]
    PayloadTooLarge {
        /// The serialised message's size.
        size: usize,
        /// The limit, [`MAX_PAYLOAD`].
        max: usize,
    },
    /// Google refused the grant or FCM refused a fresh access token.
    #[error("FCM access token: {0}")]
    Token(String),
    /// No answer: connection failure, timeout, or the token endpoint is down (429 or 5xx).
    #[error("FCM transport: {0}")]
    Transport(String),
}

/// Sends FCM messages for one service account; share one per account, as it owns the token.
pub struct FcmSender {
    http: reqwest::Client,
    send_url: String,
    token: TokenSource,
}

impl fmt::Debug for FcmSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FcmSender")
            .field("send_url", &self.send_url)
            .field("token_uri", &self.token.token_uri())
            .finish_non_exhaustive()
    }
}

impl FcmSender {
    /// Builds a sender, parsing the key and the endpoints up front. `fcm_base` is normally
    /// [`DEFAULT_FCM_BASE`]; `token_uri_override` replaces the account's `token_uri` (and so the
    /// grant's `aud`), e.g. to point both at a local server.
    pub fn new(
        account: ServiceAccount,
        fcm_base: &str,
        token_uri_override: Option<&str>,
        http: reqwest::Client,
    ) -> Result<Self, FcmError> {
        let key = key::signing_key(&account.private_key)?;
        let fcm_base = http_url("the FCM base URL", fcm_base)?;
        let token_uri = http_url(
            "the token URI",
            token_uri_override.unwrap_or(&account.token_uri),
        )?;
        let project = account.project_id.trim();
        // Project ids are letters, digits and hyphens, with a `domain:` prefix for old ones; they
        // go into the URL path unescaped.
        if project.is_empty()
            || !project
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':'))
        {
            return Err(FcmError::Config(format!("`{project}` is not a project id")));
        }
        Ok(Self {
            send_url: format!(
                "{}/v1/projects/{project}/messages:send",
                fcm_base.as_str().trim_end_matches('/')
            ),
            token: TokenSource::new(
                http.clone(),
                key,
                account.client_email,
                token_uri.to_string(),
            ),
            http,
        })
    }

    /// Sends `message` to the device with this registration token, in an "fcm send" span.
    pub async fn send(
        &self,
        device_token: &str,
        message: &FcmMessage,
    ) -> Result<FcmOutcome, FcmError> {
        // The send URL names the project, not the device: it is shown like any address.
        let target = url::Url::parse(&self.send_url).ok();
        let span = tracing::info_span!(
            "fcm send",
            otel.kind = "client",
            http.request.method = "POST",
            url.full = target.as_ref().map(|u| redacted_url(u, Path::Shown)).unwrap_or_default(),
            server.address = target.as_ref().and_then(|u| u.host_str()).unwrap_or_default(),
            server.port = target.as_ref().and_then(|u| u.port_or_known_default()).map_or(0, i64::from),
            fcm.outcome = Empty,
            http.response.status_code = Empty,
            otel.status_code = Empty,
            error.type = Empty,
        );
        let result = self
            .deliver(device_token, message, &span)
            .instrument(span.clone())
            .await;
        let outcome = match &result {
            Ok(FcmOutcome::Delivered { .. }) => "delivered",
            Ok(FcmOutcome::Unregistered) => "unregistered",
            Ok(FcmOutcome::Retry { .. }) => "retry",
            Ok(FcmOutcome::Rejected { .. }) => "rejected",
            Err(FcmError::Config(_)) => "config",
            Err(FcmError::PayloadTooLarge { .. }) => "payload_too_large",
            Err(FcmError::Token(_)) => "token",
            Err(FcmError::Transport(_)) => "transport",
        };
        span.record("fcm.outcome", outcome);
        if outcome == "delivered" {
            span.record("otel.status_code", "OK");
        } else {
            span.record("otel.status_code", "ERROR");
            span.record("error.type", outcome);
        }
        result
    }

    async fn deliver(
        &self,
        device_token: &str,
        message: &FcmMessage,
        span: &tracing::Span,
    ) -> Result<FcmOutcome, FcmError> {
        let wire = WireMessage {
            token: device_token,
            notification: WireNotification {
                title: &message.title,
                body: &message.body,
            },
            data: &message.data,
        };
        let serialised = serde_json::to_vec(&wire)
            .map_err(|e| FcmError::Config(format!("serialising the message: {e}")))?;
        if serialised.len() > MAX_PAYLOAD {
            return Err(FcmError::PayloadTooLarge {
                size: serialised.len(),
                max: MAX_PAYLOAD,
            });
        }
        let mut body = Vec::with_capacity(serialised.len() + 12);
        body.extend_from_slice(b"{\"message\":");
        body.extend_from_slice(&serialised);
        body.push(b'}');

        let mut retried = false;
        loop {
            let token = self.token.get().await?;
            let response = self
                .http
                .post(&self.send_url)
                .bearer_auth(&token)
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await
                .map_err(|e| transport("FCM", &e))?;
            let status = response.status();
            span.record("http.response.status_code", i64::from(status.as_u16()));
            let after = retry_after(response.headers());
            let bytes = response.bytes().await.map_err(|e| transport("FCM", &e))?;
            if status.is_success() {
                // FCM has taken the message: an odd body must not make the caller send it twice.
                let name = serde_json::from_slice::<Sent>(&bytes)
                    .map(|s| s.name)
                    .unwrap_or_default();
                return Ok(FcmOutcome::Delivered { name });
            }
            let error = GoogleError::parse(&bytes);
            if status == StatusCode::UNAUTHORIZED && error.code() != Some("THIRD_PARTY_AUTH_ERROR")
            {
                if retried {
                    return Err(FcmError::Token(format!(
                        "FCM refused a fresh access token: {}",
                        error.reason(status)
                    )));
                }
                // Revoked or expired early: drop it (unless another send already has) and mint.
                self.token.forget(&token).await;
                retried = true;
                continue;
            }
            return Ok(classify(status, after, &error));
        }
    }
}

#[derive(Serialize)]
struct WireMessage<'a> {
    token: &'a str,
    notification: WireNotification<'a>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    data: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct WireNotification<'a> {
    title: &'a str,
    body: &'a str,
}

#[derive(Deserialize)]
struct Sent {
    name: String,
}

/// A Google API error body (`{"error": {"status", "details": [{"errorCode"}]}}`), or
/// something else. Only the error codes are kept: the `message` and any other text are the
/// remote server's words, which are not stored or shown.
enum GoogleError {
    Parsed(ErrorBody),
    Unparsed,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(rename = "errorCode")]
    error_code: Option<String>,
}

impl GoogleError {
    fn parse(body: &[u8]) -> Self {
        match serde_json::from_slice::<ErrorEnvelope>(body) {
            Ok(envelope) => Self::Parsed(envelope.error),
            Err(_) => Self::Unparsed,
        }
    }

    /// FCM's own error code, from the `FcmError` detail.
    fn code(&self) -> Option<&str> {
        match self {
            Self::Parsed(e) => e.details.iter().find_map(|d| d.error_code.as_deref()),
            Self::Unparsed => None,
        }
    }

    /// The status in words and FCM's error code (else Google's status code), e.g.
    /// `HTTP 400 Bad Request: INVALID_ARGUMENT`.
    fn reason(&self, status: StatusCode) -> String {
        let code = match self {
            Self::Parsed(e) => self.code().or(Some(e.status.as_str())),
            Self::Unparsed => None,
        };
        with_code(status, code)
    }
}

/// `HTTP 400 Bad Request: CODE`, with the code only if it looks like one (letters, digits and
/// underscores, as Google's `INVALID_ARGUMENT` and OAuth's `invalid_grant` are).
fn with_code(status: StatusCode, code: Option<&str>) -> String {
    let described = crate::egress::describe_status(status.as_u16());
    let code = code.filter(|code| {
        (1..=64).contains(&code.len())
            && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    });
    match code {
        Some(code) => format!("{described}: {code}"),
        None => described,
    }
}

/// Sorts a non-2xx answer by the rules in the module docs.
fn classify(status: StatusCode, after: Option<Duration>, error: &GoogleError) -> FcmOutcome {
    if error.code() == Some("UNREGISTERED") {
        return FcmOutcome::Unregistered;
    }
    let (status, reason) = (status.as_u16(), error.reason(status));
    match status {
        429 | 500..=599 => FcmOutcome::Retry {
            after,
            status,
            reason,
        },
        _ => FcmOutcome::Rejected { status, reason },
    }
}

/// `Retry-After`, if Google sent a usable one (a date already past counts as none: the
/// delivery waits at least its backoff either way).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    domain::http::retry_after(value, chrono::Utc::now())
}

fn transport(whom: &str, e: &reqwest::Error) -> FcmError {
    let mut why = format!("{whom}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        why.push_str(": ");
        why.push_str(&cause.to_string());
        source = cause.source();
    }
    FcmError::Transport(why)
}

fn http_url(what: &str, value: &str) -> Result<url::Url, FcmError> {
    let parsed = url::Url::parse(value.trim())
        .map_err(|e| FcmError::Config(format!("{what} `{value}`: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(FcmError::Config(format!("{what} `{value}` is not http(s)")));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unregistered_is_found_in_the_details_whatever_the_status() {
        let body = br#"{"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "gone",
            "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest"},
                        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                         "errorCode": "UNREGISTERED"}]}}"#;

        let error = GoogleError::parse(body);

        assert_eq!(
            classify(StatusCode::BAD_REQUEST, None, &error),
            FcmOutcome::Unregistered
        );
    }

    #[test]
    fn a_bare_404_is_rejected_not_unregistered() {
        let error = GoogleError::parse(b"<html>Not Found</html>");

        let outcome = classify(StatusCode::NOT_FOUND, None, &error);

        assert!(
            matches!(outcome, FcmOutcome::Rejected { status: 404, .. }),
            "{outcome:?}"
        );
    }
}
