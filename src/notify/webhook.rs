//! Webhooks signed per the Standard Webhooks scheme: `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256 over "id.timestamp.body">`, with a per-channel
//! secret `whsec_<base64>` shown once. Sent through the daemon's shared
//! [`OutboundClient`]: the URL obeys the egress policy and the request goes to the address the
//! policy checked, never to one resolved again later; redirects are not followed.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use sha2::Sha256;

use crate::egress::{Answer, OutboundClient, OutboundError};

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

/// Why a webhook could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The egress policy refused the URL, or no answer came (see [`OutboundError`]).
    #[error("{0}")]
    Outbound(#[from] OutboundError),
    /// The message could not be signed: the channel's secret is malformed.
    #[error("{0}")]
    Signing(String),
}

/// POST `body` to `url` through the shared egress-checked client, signed with `secret`, as
/// delivery `id`. Any answer is `Ok`, whatever its status; its body is not read.
pub async fn send(
    client: &OutboundClient,
    url: &str,
    secret: &str,
    id: &str,
    body: &[u8],
) -> Result<Answer, SendError> {
    let timestamp = chrono::Utc::now().timestamp();
    let signature = sign(secret, id, timestamp, body).map_err(SendError::Signing)?;
    let header = |value: &str| {
        // Ids are UUIDs and signatures base64: this only fails if that ever changes.
        HeaderValue::from_str(value)
            .map_err(|_| SendError::Signing(format!("{value:?} is not a valid header value")))
    };
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("webhook-id", header(id)?);
    headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
    headers.insert("webhook-signature", header(&signature)?);
    Ok(client.post(url, headers, body.to_vec()).await?)
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
