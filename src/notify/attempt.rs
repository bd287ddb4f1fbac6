//! One attempt at a delivery, per channel kind, sorted into delivered, worth another attempt,
//! or never worth one. Each error is what the delivery stores and `GET /v1/deliveries` shows:
//! the status in words (`HTTP 500 Internal Server Error`) or a short reason
//! (`connection refused`, `blocked_by_policy: loopback address 127.0.0.1`), never the remote
//! server's body.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;

use super::fcm::{FcmError, FcmMessage, FcmOutcome};
use super::job::Notifier;
use super::webhook;
use super::webpush::{self, PushOutcome, Subscription, WebPushError};
use crate::egress::{Answer, OutboundError};
use crate::store::notifications::{Channel, Delivery};

/// How an attempt went.
pub(super) enum Attempt {
    Delivered(u16),
    /// Worth another attempt (no sooner than `after`, if the receiver said so).
    Transient {
        status: Option<u16>,
        error: String,
        after: Option<Duration>,
    },
    /// Never worth another attempt; `gone` turns the channel off.
    Permanent {
        status: Option<u16>,
        error: String,
        gone: bool,
    },
}

impl Attempt {
    fn transient(error: impl Into<String>) -> Self {
        Self::Transient {
            status: None,
            error: error.into(),
            after: None,
        }
    }

    fn permanent(error: impl Into<String>) -> Self {
        Self::Permanent {
            status: None,
            error: error.into(),
            gone: false,
        }
    }

    /// A refusal by the policy is for good (until an operator allows the address); a failed
    /// connection may not be.
    fn unreached(error: OutboundError) -> Self {
        match error.is_refusal() {
            true => Self::permanent(error.to_string()),
            false => Self::transient(error.to_string()),
        }
    }
}

impl Notifier {
    /// Makes one attempt at `delivery` to `channel`.
    pub(super) async fn attempt(
        &self,
        pool: &PgPool,
        delivery: &Delivery,
        channel: &Channel,
    ) -> Attempt {
        let body = json!({
            "type": delivery.topic,
            "timestamp": delivery.event_at.to_rfc3339(),
            "data": delivery.payload,
        });
        match channel.kind.as_str() {
            "webhook" => self.webhook(delivery, channel, &body).await,
            "fcm" => self.fcm(delivery, channel, &body).await,
            "webpush" => self.webpush(pool, channel, &body).await,
            other => Attempt::permanent(format!("unknown channel kind {other}")),
        }
    }

    async fn webhook(&self, delivery: &Delivery, channel: &Channel, body: &Value) -> Attempt {
        let url = channel.target["url"].as_str().unwrap_or_default();
        let secret = channel.secret.as_deref().unwrap_or_default();
        let bytes = body.to_string().into_bytes();
        let id = delivery.id.to_string();
        match webhook::send(&self.outbound, url, secret, &id, &bytes).await {
            Ok(answer) => webhook_answer(&answer),
            Err(webhook::SendError::Outbound(error)) => Attempt::unreached(error),
            Err(error @ webhook::SendError::Signing(_)) => Attempt::permanent(error.to_string()),
        }
    }

    async fn fcm(&self, delivery: &Delivery, channel: &Channel, body: &Value) -> Attempt {
        let Some(fcm) = &self.fcm else {
            return Attempt::transient("FCM is not configured (notify.fcm_service_account)");
        };
        let message = FcmMessage {
            title: delivery.topic.clone(),
            body: summary_line(&delivery.payload),
            data: [("event".to_string(), body.to_string())]
                .into_iter()
                .collect(),
        };
        let token = channel.target["token"].as_str().unwrap_or_default();
        match fcm.send(token, &message).await {
            Ok(FcmOutcome::Delivered { .. }) => Attempt::Delivered(200),
            Ok(FcmOutcome::Unregistered) => Attempt::Permanent {
                status: Some(404),
                error: "FCM: the registration token is UNREGISTERED".into(),
                gone: true,
            },
            Ok(FcmOutcome::Retry {
                after,
                status,
                reason,
            }) => Attempt::Transient {
                status: Some(status),
                error: format!("FCM: {reason}"),
                after,
            },
            Ok(FcmOutcome::Rejected { status, reason }) => Attempt::Permanent {
                status: Some(status),
                error: format!("FCM refused the message: {reason}"),
                gone: false,
            },
            Err(FcmError::PayloadTooLarge { size, max }) => Attempt::permanent(format!(
                "the message is {size} bytes; FCM takes at most {max}"
            )),
            Err(error) => Attempt::transient(error.to_string()),
        }
    }

    async fn webpush(&self, pool: &PgPool, channel: &Channel, body: &Value) -> Attempt {
        let target = &channel.target;
        let sub = Subscription {
            endpoint: target["endpoint"].as_str().unwrap_or_default().into(),
            p256dh: target["p256dh"].as_str().unwrap_or_default().into(),
            auth: target["auth"].as_str().unwrap_or_default().into(),
        };
        let keys = match self.vapid(pool).await {
            Ok(keys) => keys,
            Err(error) => return Attempt::transient(format!("{error:#}")),
        };
        let payload = body.to_string().into_bytes();
        let subject = &self.config.vapid_subject;
        let ttl = self.config.webpush_ttl;
        match webpush::send(&self.outbound, keys, subject, &sub, &payload, ttl, None).await {
            Ok(outcome) => push_answer(outcome),
            Err(WebPushError::Outbound(error)) => Attempt::unreached(error),
            Err(error) => Attempt::permanent(error.to_string()),
        }
    }
}

/// 2xx delivers; 410 is gone for good (Standard Webhooks); a redirect is not followed, and
/// repeating the same request cannot change that; anything else is worth another attempt.
fn webhook_answer(answer: &Answer) -> Attempt {
    let status = answer.status.as_u16();
    match status {
        200..=299 => Attempt::Delivered(status),
        410 => Attempt::Permanent {
            status: Some(status),
            error: answer.describe(),
            gone: true,
        },
        300..=399 => Attempt::Permanent {
            status: Some(status),
            error: format!("{}: redirects are not followed", answer.describe()),
            gone: false,
        },
        _ => Attempt::Transient {
            status: Some(status),
            error: answer.describe(),
            after: answer.retry_after,
        },
    }
}

/// 2xx delivers; 404 and 410 mean the subscription is gone; 429 and 5xx are worth another
/// attempt; any other answer refuses this message for good.
fn push_answer(outcome: PushOutcome) -> Attempt {
    let status = Some(outcome.status);
    match outcome.status {
        200..=299 => Attempt::Delivered(outcome.status),
        _ if outcome.gone => Attempt::Permanent {
            status,
            error: format!("{}: the subscription is gone", outcome.described),
            gone: true,
        },
        429 | 500..=599 => Attempt::Transient {
            status,
            error: outcome.described,
            after: outcome.retry_after,
        },
        _ => Attempt::Permanent {
            status,
            error: format!(
                "{}: the push service refused the message",
                outcome.described
            ),
            gone: false,
        },
    }
}

/// A one-line text for a push notification's body.
fn summary_line(payload: &Value) -> String {
    let text = match payload.get("message").and_then(Value::as_str) {
        Some(m) => m.to_string(),
        None => payload.to_string(),
    };
    text.chars().take(200).collect()
}
