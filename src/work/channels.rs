//! Channels: create one (its kind and target, its topics, the plan's `max_channels`, the egress
//! policy for the address the daemon will reach) and send one a test event.

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::{Caller, WorkError, WorkResult};
use crate::config::Config;
use crate::domain::topics::Topic;
use crate::egress::{EgressError, OutboundError};
use crate::notify::job::Notifier;
use crate::notify::webhook;
use crate::notify::webpush::Subscription;
use crate::store;
use crate::store::bounds::Held;
use crate::store::notifications::{Channel, Delivery, NewEvent};

/// What the channel use cases work with besides the caller.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    /// The database.
    pub pool: &'a PgPool,
    /// The plans (`max_channels`).
    pub config: &'a Config,
    /// The senders: the egress policy, whether FCM is configured, attempts per delivery.
    pub notifier: &'a Notifier,
}

/// A channel to create, as the caller gave it; [`create`] checks every field.
#[derive(Debug, Clone)]
pub struct NewChannel {
    /// `webhook`, `fcm` or `webpush`.
    pub kind: String,
    /// Display name, 1 to 100 characters.
    pub name: String,
    /// webhook: the receiver's http(s) URL.
    pub url: Option<String>,
    /// fcm: the device's registration token.
    pub token: Option<String>,
    /// webpush: the browser's subscription.
    pub subscription: Option<Subscription>,
    /// Topics to receive: names of [`Topic`]s.
    pub topics: Vec<String>,
}

/// Creates a channel for the caller: a webhook (with a new signing secret), an FCM device or a
/// Web Push subscription. A webhook URL or push endpoint that the egress policy refuses is a
/// 422 naming the field; one more channel than the plan's `max_channels` is refused (admins
/// are unbounded).
pub async fn create(env: &Env<'_>, caller: &Caller, input: NewChannel) -> WorkResult<Channel> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(WorkError::invalid(
            "name",
            "name must be 1 to 100 characters",
        ));
    }
    let topics = check_topics(input.topics)?;
    let (target, secret) =
        target(env, &input.kind, input.url, input.token, input.subscription).await?;
    // The bound is counted under a lock held until the insert commits; the checks above run
    // first because an egress check may wait on a name lookup.
    let mut tx = env.pool.begin().await?;
    super::check_bound(&mut tx, env.config, caller, Held::Channels).await?;
    let channel = store::notifications::insert_channel(
        &mut tx,
        caller.user_id,
        &input.kind,
        name,
        &target,
        secret.as_deref(),
        &topics,
    )
    .await?;
    tx.commit().await?;
    Ok(channel)
}

/// Queues a `channel.test` event for the caller's channel `id` only, and returns its delivery.
pub async fn test(env: &Env<'_>, caller: &Caller, id: Uuid) -> WorkResult<Delivery> {
    let mut tx = env.pool.begin().await?;
    let channel = store::notifications::find_channel(&mut *tx, id, caller.owner_filter())
        .await?
        .ok_or_else(|| WorkError::not_found(format_args!("channel {id}")))?;
    if !channel.enabled {
        return Err(WorkError::Conflict(format!(
            "channel {} is turned off: {}",
            channel.id,
            channel.disabled_reason.unwrap_or_default()
        )));
    }
    let event = NewEvent {
        topic: Topic::ChannelTest.as_str().into(),
        owner_id: Some(channel.owner_id),
        payload: json!({ "message": format!("Test of channel {}", channel.name) }),
        only_channel: Some(channel.id),
        all_owner_channels: false,
        max_attempts: env.notifier.max_attempts(),
    };
    let (_, deliveries) = store::notifications::publish(&mut tx, &event).await?;
    let delivery_id = deliveries
        .first()
        .copied()
        .ok_or_else(|| WorkError::Conflict("the channel took no delivery".into()))?;
    let delivery = store::notifications::find_delivery(&mut *tx, delivery_id, None)
        .await?
        .ok_or_else(|| WorkError::not_found(format_args!("delivery {delivery_id}")))?;
    tx.commit().await?;
    Ok(delivery)
}

/// Refuses a name that is not a [`Topic`] (422 naming `topics`).
pub fn check_topics(topics: Vec<String>) -> WorkResult<Vec<String>> {
    if let Some(bad) = topics.iter().find(|t| t.parse::<Topic>().is_err()) {
        return Err(WorkError::invalid(
            "topics",
            format!(
                "unknown topic {bad:?}; topics: {}",
                Topic::names().join(", ")
            ),
        ));
    }
    Ok(topics)
}

/// The kinds of channel, in the order the API lists them.
pub const KINDS: [&str; 3] = ["webhook", "fcm", "webpush"];

/// The stored target of a channel of `kind` and, for a webhook, its new signing secret.
async fn target(
    env: &Env<'_>,
    kind: &str,
    url: Option<String>,
    token: Option<String>,
    subscription: Option<Subscription>,
) -> WorkResult<(Value, Option<String>)> {
    let missing = |field: &'static str| {
        WorkError::invalid(field, format!("a {kind} channel needs `{field}`"))
    };
    match kind {
        "webhook" => {
            let url = url.ok_or_else(|| missing("url"))?;
            let checked = reachable(env, "url", &url).await?;
            Ok((json!({ "url": checked }), Some(webhook::new_secret())))
        }
        "fcm" => {
            if !env.notifier.has_fcm() {
                return Err(WorkError::invalid(
                    "kind",
                    "FCM is not configured on this server (notify.fcm_service_account)",
                ));
            }
            let token = token.ok_or_else(|| missing("token"))?;
            if token.is_empty() || token.len() > 4096 {
                return Err(WorkError::invalid(
                    "token",
                    "token must be 1 to 4,096 characters",
                ));
            }
            Ok((json!({ "token": token }), None))
        }
        "webpush" => {
            let sub = subscription.ok_or_else(|| missing("subscription"))?;
            sub.validate()
                .map_err(|e| WorkError::invalid("subscription", e.to_string()))?;
            // The endpoint is stored as given: it is a capability URL the push service minted.
            reachable(env, "subscription.endpoint", &sub.endpoint).await?;
            let target =
                json!({ "endpoint": sub.endpoint, "p256dh": sub.p256dh, "auth": sub.auth });
            Ok((target, None))
        }
        other => Err(WorkError::invalid(
            "kind",
            format!("kind {other:?} is not one of {}", KINDS.join(", ")),
        )),
    }
}

/// Checks that the egress policy lets the daemon reach `url` (given as `field`) and returns it
/// normalised. A name that does not resolve now is accepted: each delivery checks again.
async fn reachable(env: &Env<'_>, field: &'static str, url: &str) -> WorkResult<String> {
    let policy = env.notifier.policy();
    let checked = policy.check_url(url).map_err(|e| refused(field, e))?;
    match policy.resolve(&checked).await {
        Err(e) if e.is_refusal() => Err(refused(field, e)),
        _ => Ok(checked.to_string()),
    }
}

/// A 422 naming `field` and the policy's reason, without repeating the URL (a push endpoint is
/// a capability).
fn refused(field: &'static str, error: EgressError) -> WorkError {
    let (host, remedy) = match &error {
        EgressError::Blocked { host, ip, .. } => {
            let named = (*host != ip.to_string()).then(|| format!(" ({host} resolves to it)"));
            let remedy = "; an operator can allow it with egress.allow";
            (named.unwrap_or_default(), remedy)
        }
        _ => (String::new(), ""),
    };
    let why = OutboundError::from(error);
    WorkError::invalid(field, format!("`{field}` is refused: {why}{host}{remedy}"))
}
