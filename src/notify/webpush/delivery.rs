//! RFC 8030 delivery: one encrypted, VAPID-signed POST to the subscription's push service,
//! through the shared egress-checked client, and what the service answered.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue};

use super::vapid::VAPID_LIFETIME;
use super::{Subscription, VapidKeys, WebPushError, encrypt, vapid_authorization};
use crate::egress::{Answer, OutboundClient};

/// The values RFC 8030 §5.3 defines for the `Urgency` header.
const URGENCIES: [&str; 4] = ["very-low", "low", "normal", "high"];

/// What the push service answered. Its body is not kept: it is the service's to say, not ours
/// to store or show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushOutcome {
    /// The HTTP status; 201 means accepted.
    pub status: u16,
    /// 404 or 410: the subscription no longer exists and should be deleted.
    pub gone: bool,
    /// The service's `Retry-After`, in seconds or as a date, if it sent one.
    pub retry_after: Option<Duration>,
    /// The status in words safe to store, e.g. `HTTP 503 Service Unavailable`.
    pub described: String,
}

impl From<Answer> for PushOutcome {
    fn from(answer: Answer) -> Self {
        let status = answer.status.as_u16();
        Self {
            status,
            gone: status == 404 || status == 410,
            described: answer.describe(),
            retry_after: answer.retry_after,
        }
    }
}

/// Encrypts `payload` and POSTs it to the subscription's endpoint with VAPID, `TTL` (seconds the
/// service may hold it) and, if given, `Urgency`, through `client`, which applies the egress
/// policy. Any answer is an `Ok(PushOutcome)`; a refused address or a failed connection is
/// [`WebPushError::Outbound`]. Timeouts are the client's.
pub async fn send(
    client: &OutboundClient,
    keys: &VapidKeys,
    subject: &str,
    sub: &Subscription,
    payload: &[u8],
    ttl: u32,
    urgency: Option<&str>,
) -> Result<PushOutcome, WebPushError> {
    sub.endpoint_url()?;
    let body = encrypt(sub, payload)?;
    let mut authorization = HeaderValue::try_from(vapid_authorization(
        keys,
        &sub.endpoint,
        subject,
        VAPID_LIFETIME,
    )?)
    .map_err(|e| WebPushError::Crypto(format!("the VAPID header: {e}")))?;
    authorization.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static("aes128gcm"));
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert("ttl", HeaderValue::from(ttl));
    headers.insert(AUTHORIZATION, authorization);
    if let Some(urgency) = urgency {
        let known = URGENCIES.iter().find(|known| **known == urgency);
        let Some(known) = known else {
            return Err(WebPushError::Crypto(format!(
                "urgency {urgency:?} is not one of {URGENCIES:?}"
            )));
        };
        headers.insert("urgency", HeaderValue::from_static(known));
    }
    let answer = client
        .post_to_capability(&sub.endpoint, headers, body)
        .await?;
    Ok(answer.into())
}
