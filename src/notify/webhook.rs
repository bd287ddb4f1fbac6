//! Webhooks signed per the Standard Webhooks scheme: `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256 over "id.timestamp.body">`, with a per-channel
//! secret `whsec_<base64>` shown once. The URL obeys the egress policy; the request goes to the
//! address the policy checked, never to one resolved again later.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::egress::{EgressError, EgressPolicy};

/// The prefix of webhook secrets.
pub const SECRET_PREFIX: &str = "whsec_";

/// A new random signing secret.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The `webhook-signature` value for `id`, `timestamp` (Unix seconds) and `body`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let key = STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .map_err(|e| format!("the webhook secret is not base64: {e}"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// What a receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `Retry-After` in seconds, if sent.
    pub retry_after: Option<Duration>,
}

/// Why a webhook could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The URL is refused by the egress policy (or does not resolve).
    #[error("{0}")]
    Egress(#[from] EgressError),
    /// Connecting, sending or reading failed.
    #[error("{0}")]
    Transport(String),
    /// The secret is malformed.
    #[error("{0}")]
    Secret(String),
}

/// POST `body` to `url`, signed with `secret`, as delivery `id`.
pub async fn send(
    policy: &EgressPolicy,
    url: &str,
    secret: &str,
    id: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<Answer, SendError> {
    let parsed = policy.check_url(url)?;
    let addrs = policy.resolve(&parsed).await?;
    let host = parsed.host_str().unwrap_or_default().to_string();
    let timestamp = chrono::Utc::now().timestamp();
    let signature = sign(secret, id, timestamp, body).map_err(SendError::Secret)?;
    let client = reqwest::Client::builder()
        .resolve_to_addrs(&host, &addrs)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .no_proxy()
        .build()
        .map_err(|e| SendError::Transport(e.to_string()))?;
    let resp = client
        .post(parsed)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("workhorse/", env!("CARGO_PKG_VERSION")),
        )
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| SendError::Transport(format!("{e}")))?;
    let retry_after = (resp.headers().get("retry-after"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    Ok(Answer {
        status: resp.status().as_u16(),
        retry_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example from the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(secret, id, 1614265330, body).unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn new_secrets_are_distinct_and_decode() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert!(sign(&a, "x", 1, b"{}").is_ok());
        assert!(sign("whsec_%%%", "x", 1, b"{}").is_err());
    }
}
