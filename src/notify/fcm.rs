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
//! jsonwebtoken is built without its `use_pem` feature, so the PEM key is unwrapped here (PEM to
//! PKCS#8 to the PKCS#1 `RSAPrivateKey` its aws-lc signer takes).

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use tracing::field::Empty;

/// Where FCM lives when the configuration names no other base.
pub const DEFAULT_FCM_BASE: &str = "https://fcm.googleapis.com";
/// FCM's limit on the message payload, in bytes; checked on the serialised `message`.
pub const MAX_PAYLOAD: usize = 4096;

const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google accepts assertions valid for at most an hour.
const ASSERTION_LIFETIME_SECS: i64 = 3600;
/// A cached token is retired this long before Google says it expires, so a send that starts just
/// before the expiry (plus clock skew and a slow request) never arrives with a dead token.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// The fields of a Google service-account JSON key that the sender needs (others are ignored).
#[derive(Clone, Deserialize)]
pub struct ServiceAccount {
    /// The Firebase project the messages are sent for.
    pub project_id: String,
    /// The service account's email, the `iss` of the grant.
    pub client_email: String,
    /// The PEM private key (PKCS#8, as Google issues it, or PKCS#1).
    pub private_key: String,
    /// Google's token endpoint, normally `https://oauth2.googleapis.com/token`.
    pub token_uri: String,
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .field("private_key", &"[redacted]")
            .field("token_uri", &self.token_uri)
            .finish()
    }
}

impl ServiceAccount {
    /// Reads a service-account key file's JSON; an error names the missing field, never the key.
    pub fn from_json(json: &str) -> Result<Self, FcmError> {
        // serde_json's messages name fields and positions; a wrong type for a string field can
        // only quote a number or a bool, so no key material reaches the error.
        let account: Self = serde_json::from_str(json)
            .map_err(|e| FcmError::Config(format!("reading the service-account key: {e}")))?;
        for (field, value) in [
            ("project_id", &account.project_id),
            ("client_email", &account.client_email),
            ("private_key", &account.private_key),
            ("token_uri", &account.token_uri),
        ] {
            if value.trim().is_empty() {
                return Err(FcmError::Config(format!(
                    "the service-account key has an empty `{field}`"
                )));
            }
        }
        Ok(account)
    }
}

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
        /// FCM's error code and message.
        reason: String,
    },
    /// FCM refused this message for good (bad argument, wrong sender, ...).
    Rejected {
        /// The HTTP status.
        status: u16,
        /// FCM's error code and message.
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
    key: EncodingKey,
    client_email: String,
    token_uri: String,
    send_url: String,
    // A tokio Mutex, held across the grant: concurrent sends with no valid token wait for the one
    // grant in flight instead of each minting their own.
    token: tokio::sync::Mutex<Option<AccessToken>>,
}

struct AccessToken {
    value: String,
    retire_at: Instant,
}

impl fmt::Debug for FcmSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FcmSender")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .field("send_url", &self.send_url)
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
        let key = signing_key(&account.private_key)?;
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
            http,
            key,
            client_email: account.client_email,
            token_uri: token_uri.to_string(),
            send_url: format!(
                "{}/v1/projects/{project}/messages:send",
                fcm_base.as_str().trim_end_matches('/')
            ),
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// Sends `message` to the device with this registration token, in an "fcm send" span.
    pub async fn send(
        &self,
        device_token: &str,
        message: &FcmMessage,
    ) -> Result<FcmOutcome, FcmError> {
        let span = tracing::info_span!(
            "fcm send",
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
            let token = self.access_token().await?;
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
            span.record("http.response.status_code", status.as_u16());
            let after = retry_after(response.headers());
            let bytes = response.bytes().await.map_err(|e| transport("FCM", &e))?;
            if status.is_success() {
                // FCM has taken the message: an odd body must not make the caller send it twice.
                let name = serde_json::from_slice::<Sent>(&bytes)
                    .map(|s| s.name)
                    .unwrap_or_default();
                return Ok(FcmOutcome::Delivered { name });
            }
            let error = GoogleError::parse(status, &bytes);
            if status == StatusCode::UNAUTHORIZED && error.code() != Some("THIRD_PARTY_AUTH_ERROR")
            {
                if retried {
                    return Err(FcmError::Token(format!(
                        "FCM refused a fresh access token: {}",
                        error.reason()
                    )));
                }
                // Revoked or expired early: drop it (unless another send already has) and mint.
                self.forget(&token).await;
                retried = true;
                continue;
            }
            return Ok(classify(status, after, &error));
        }
    }

    /// The cached access token, or a new one when there is none or it is about to expire.
    async fn access_token(&self) -> Result<String, FcmError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.retire_at) {
            return Ok(token.value.clone());
        }
        let minted = self.mint().await?;
        let value = minted.value.clone();
        *cached = Some(minted);
        Ok(value)
    }

    async fn forget(&self, stale: &str) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|t| t.value == stale) {
            *cached = None;
        }
    }

    /// Exchanges a signed assertion for an access token at the token endpoint.
    async fn mint(&self) -> Result<AccessToken, FcmError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: &self.client_email,
            scope: SCOPE,
            aud: &self.token_uri,
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        let assertion = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|e| FcmError::Token(format!("signing the grant: {e}")))?;
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", GRANT_TYPE)
            .append_pair("assertion", &assertion)
            .finish();
        // Measured from before the request, so a slow answer only shortens the token's use.
        let asked_at = Instant::now();
        let response = self
            .http
            .post(&self.token_uri)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| transport("the token endpoint", &e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| transport("the token endpoint", &e))?;
        if !status.is_success() {
            let why = match serde_json::from_slice::<GrantError>(&bytes) {
                Ok(e) => format!("{status}: {} {}", e.error, e.error_description),
                Err(_) => format!("{status}: {}", snippet(&bytes)),
            };
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                return Err(FcmError::Transport(format!(
                    "the token endpoint answered {why}"
                )));
            }
            return Err(FcmError::Token(format!("the grant was refused: {why}")));
        }
        let granted: Granted = serde_json::from_slice(&bytes)
            .map_err(|e| FcmError::Token(format!("the token endpoint's answer: {e}")))?;
        if !granted.token_type.eq_ignore_ascii_case("bearer") || granted.access_token.is_empty() {
            return Err(FcmError::Token(format!(
                "the token endpoint issued a `{}` token, not a bearer token",
                granted.token_type
            )));
        }
        let lifetime = Duration::from_secs(granted.expires_in).saturating_sub(EXPIRY_MARGIN);
        Ok(AccessToken {
            value: granted.access_token,
            retire_at: asked_at + lifetime,
        })
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct Granted {
    access_token: String,
    expires_in: u64,
    #[serde(default = "bearer")]
    token_type: String,
}

fn bearer() -> String {
    "Bearer".to_owned()
}

#[derive(Deserialize)]
struct GrantError {
    error: String,
    #[serde(default)]
    error_description: String,
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

/// A Google API error body (`{"error": {"status", "message", "details": [{"errorCode"}]}}`), or
/// the start of whatever else came back.
enum GoogleError {
    Parsed(ErrorBody),
    Raw(String),
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
    message: String,
    #[serde(default)]
    details: Vec<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(rename = "errorCode")]
    error_code: Option<String>,
}

impl GoogleError {
    fn parse(status: StatusCode, body: &[u8]) -> Self {
        match serde_json::from_slice::<ErrorEnvelope>(body) {
            Ok(envelope) => Self::Parsed(envelope.error),
            Err(_) => Self::Raw(format!("{status}: {}", snippet(body))),
        }
    }

    /// FCM's own error code, from the `FcmError` detail.
    fn code(&self) -> Option<&str> {
        match self {
            Self::Parsed(e) => e.details.iter().find_map(|d| d.error_code.as_deref()),
            Self::Raw(_) => None,
        }
    }

    fn reason(&self) -> String {
        match self {
            Self::Parsed(e) => {
                let code = self.code().unwrap_or(&e.status);
                format!("{code}: {}", e.message)
            }
            Self::Raw(raw) => raw.clone(),
        }
    }
}

/// Sorts a non-2xx answer by the rules in the module docs.
fn classify(status: StatusCode, after: Option<Duration>, error: &GoogleError) -> FcmOutcome {
    if error.code() == Some("UNREGISTERED") {
        return FcmOutcome::Unregistered;
    }
    let (status, reason) = (status.as_u16(), error.reason());
    match status {
        429 | 500..=599 => FcmOutcome::Retry {
            after,
            status,
            reason,
        },
        _ => FcmOutcome::Rejected { status, reason },
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
            .to_std()
            .unwrap_or_default(),
    )
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

fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .trim()
        .chars()
        .take(300)
        .collect()
}

fn http_url(what: &str, value: &str) -> Result<url::Url, FcmError> {
    let parsed = url::Url::parse(value.trim())
        .map_err(|e| FcmError::Config(format!("{what} `{value}`: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(FcmError::Config(format!("{what} `{value}` is not http(s)")));
    }
    Ok(parsed)
}

/// The signing key from a PEM private key, tried once so a bad key fails here, not at a send.
/// Errors describe the key's shape only, never its content.
fn signing_key(pem: &str) -> Result<EncodingKey, FcmError> {
    let bad = |why: &str| FcmError::Config(format!("the service account's private_key: {why}"));
    // Keys pasted into environment variables often carry `\n` literally.
    let pem = pem.replace("\\n", "\n");
    let (label, der) = pem_block(&pem).map_err(bad)?;
    let rsa_der = match label {
        "PRIVATE KEY" => pkcs8_rsa_key(&der).map_err(bad)?,
        "RSA PRIVATE KEY" => der,
        _ => return Err(bad("not an RSA private key")),
    };
    let key = EncodingKey::from_rsa_der(&rsa_der);
    jsonwebtoken::crypto::sign(b"probe", &key, Algorithm::RS256)
        .map_err(|_| bad("not a usable RSA key (2048 to 8192 bits)"))?;
    Ok(key)
}

/// The label and decoded body of the first PEM block.
fn pem_block(pem: &str) -> Result<(&str, Vec<u8>), &'static str> {
    let start = pem
        .find("-----BEGIN ")
        .ok_or("no `-----BEGIN` line (not PEM)")?;
    let rest = &pem[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----").ok_or("a broken `-----BEGIN` line")?;
    let label = &rest[..label_end];
    let rest = &rest[label_end + "-----".len()..];
    let end = rest
        .find(&format!("-----END {label}-----"))
        .ok_or("no matching `-----END` line")?;
    let base64: String = rest[..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = STANDARD
        .decode(base64)
        .map_err(|_| "the PEM body is not base64")?;
    Ok((label, der))
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo` (RFC 5208).
fn pkcs8_rsa_key(der: &[u8]) -> Result<Vec<u8>, &'static str> {
    const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    const NOT_PKCS8: &str = "not a PKCS#8 private key";
    let Some((0x30, info, _)) = der_element(der) else {
        return Err(NOT_PKCS8);
    };
    let Some((0x02, _version, rest)) = der_element(info) else {
        return Err(NOT_PKCS8);
    };
    let Some((0x30, algorithm, rest)) = der_element(rest) else {
        return Err(NOT_PKCS8);
    };
    let Some((0x06, oid, _)) = der_element(algorithm) else {
        return Err(NOT_PKCS8);
    };
    if oid != RSA_ENCRYPTION {
        return Err("a PKCS#8 key that is not RSA");
    }
    let Some((0x04, key, _)) = der_element(rest) else {
        return Err(NOT_PKCS8);
    };
    Ok(key.to_vec())
}

/// One DER element: its tag, its contents and what follows it.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 4 {
            return None;
        }
        let (bytes, after) = rest.split_at_checked(octets)?;
        rest = after;
        bytes.iter().fold(0, |len, &b| len << 8 | usize::from(b))
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn from_json_names_the_missing_field() {
        let json = r#"{"type": "service_account", "project_id": "p",
            "private_key": "-----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----\n",
            "token_uri": "https://oauth2.googleapis.com/token"}"#;

        let error = ServiceAccount::from_json(json).expect_err("client_email is missing");

        let text = error.to_string();
        assert!(text.contains("client_email"), "{text}");
        assert!(!text.contains("SECRET"), "{text}");
    }

    #[test]
    fn debug_of_an_account_hides_the_key() {
        let account = ServiceAccount {
            project_id: "p".into(),
            client_email: "a@p.iam.gserviceaccount.com".into(),
            private_key: "SECRET".into(),
            token_uri: "https://oauth2.googleapis.com/token".into(),
        };

        assert!(!format!("{account:?}").contains("SECRET"));
    }

    #[test]
    fn a_key_that_is_not_pem_or_not_rsa_is_refused_without_quoting_it() {
        let not_pem = signing_key("SECRET").expect_err("not PEM");
        let ec =
            signing_key("-----BEGIN EC PRIVATE KEY-----\nU0VDUkVU\n-----END EC PRIVATE KEY-----")
                .expect_err("not RSA");
        let junk = signing_key("-----BEGIN PRIVATE KEY-----\nU0VDUkVU\n-----END PRIVATE KEY-----")
            .expect_err("not PKCS#8");

        for error in [not_pem, ec, junk] {
            let text = error.to_string();
            assert!(matches!(error, FcmError::Config(_)), "{text}");
            assert!(
                !text.contains("SECRET") && !text.contains("U0VDUkVU"),
                "{text}"
            );
        }
    }

    #[test]
    fn der_element_reads_long_form_lengths_and_refuses_overruns() {
        let mut long = vec![0x04, 0x81, 200];
        long.extend(std::iter::repeat_n(7, 200));
        long.push(0xff);

        let (tag, contents, rest) = der_element(&long).expect("a long-form element");

        assert_eq!((tag, contents.len(), rest), (0x04, 200, &[0xff][..]));
        assert!(der_element(&[0x04, 0x05, 1, 2]).is_none());
    }

    #[test]
    fn unregistered_is_found_in_the_details_whatever_the_status() {
        let body = br#"{"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "gone",
            "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest"},
                        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                         "errorCode": "UNREGISTERED"}]}}"#;

        let error = GoogleError::parse(StatusCode::BAD_REQUEST, body);

        assert_eq!(
            classify(StatusCode::BAD_REQUEST, None, &error),
            FcmOutcome::Unregistered
        );
    }

    #[test]
    fn a_bare_404_is_rejected_not_unregistered() {
        let error = GoogleError::parse(StatusCode::NOT_FOUND, b"<html>Not Found</html>");

        let outcome = classify(StatusCode::NOT_FOUND, None, &error);

        assert!(
            matches!(outcome, FcmOutcome::Rejected { status: 404, .. }),
            "{outcome:?}"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));

        let later = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_str(&later).expect("a header"),
        );
        let after = retry_after(&headers).expect("a date");
        assert!(after > Duration::from_secs(100) && after <= Duration::from_secs(120));
    }
}
