//! Web Push sender: RFC 8291 `aes128gcm` message encryption ([`encryption`]), RFC 8292 VAPID
//! authorisation ([`vapid`]) and RFC 8030 delivery to a browser's push service ([`delivery`])
//! through the daemon's egress-checked [`crate::egress::OutboundClient`].

mod delivery;
mod encryption;
mod vapid;

pub use delivery::{PushOutcome, send};
pub use encryption::{MAX_PAYLOAD, encrypt};
pub use vapid::{VapidKeys, vapid_authorization};

use url::Url;

use crate::egress::OutboundError;

/// Why a push message could not be built or delivered.
#[derive(Debug, thiserror::Error)]
pub enum WebPushError {
    /// The subscription's endpoint or keys are unusable; sending again will not help.
    #[error("invalid push subscription: {0}")]
    InvalidSubscription(String),
    /// The plaintext does not fit one message.
    #[error("push payload is {size} bytes, more than the {max} that fit one message")]
    PayloadTooLarge {
        /// The payload's length in bytes.
        size: usize,
        /// [`MAX_PAYLOAD`].
        max: usize,
    },
    /// Our side could not build the message: a bad VAPID key or subject, an unknown urgency,
    /// a cipher failure. Permanent until the configuration changes; never the subscription's
    /// fault.
    #[error("web push: {0}")]
    Crypto(String),
    /// The push service was not reached: the egress policy refused its address (permanent
    /// until an operator allows it) or the connection failed (transient).
    #[error("{0}")]
    Outbound(#[from] OutboundError),
}

/// A browser's push subscription, as `PushSubscription.toJSON()` gives it (keys in base64url).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// The push service URL to POST messages to.
    pub endpoint: String,
    /// The user agent's P-256 public key: a 65-byte uncompressed point.
    pub p256dh: String,
    /// The user agent's 16-byte authentication secret.
    pub auth: String,
}

impl Subscription {
    /// Checks the endpoint's shape (https, or http for tests) and decodes both keys. Whether
    /// the endpoint's address may be reached is the egress policy's call.
    pub fn validate(&self) -> Result<(), WebPushError> {
        self.endpoint_url()?;
        self.recipient()?;
        Ok(())
    }

    fn endpoint_url(&self) -> Result<Url, WebPushError> {
        endpoint_url(&self.endpoint)
    }
}

fn endpoint_url(endpoint: &str) -> Result<Url, WebPushError> {
    // The endpoint is a capability URL, so errors name its problem but never repeat it.
    let url = Url::parse(endpoint).map_err(|e| {
        WebPushError::InvalidSubscription(format!("the endpoint is not a URL: {e}"))
    })?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(WebPushError::InvalidSubscription(format!(
            "the endpoint must be an https URL with a host, not {}:",
            url.scheme()
        )));
    }
    Ok(url)
}
