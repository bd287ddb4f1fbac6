//! `/v1/channels`, `/v1/deliveries` and the VAPID key: where users hear about their work, and
//! the outbox of every delivery.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use serde_json::{Value, json};
use uuid::Uuid;

use super::ApiState;
use super::auth::BearerAuth;
use super::error::ApiError;
use crate::notify::webhook;
use crate::notify::webpush::Subscription;
use crate::store;
use crate::store::notifications::{Channel, Delivery, NewEvent};

/// Topics a channel can subscribe to.
pub const TOPICS: [&str; 5] = [
    "scrapes.finished",
    "summaries.finished",
    "jobs.failed",
    "injector.runs",
    "channel.test",
];

#[derive(Tags)]
enum ChannelTags {
    /// Notification channels, topics and deliveries.
    Notifications,
}

/// Channels and deliveries.
pub struct ChannelsApi;

/// A Web Push subscription, as `PushSubscription.toJSON()` gives it.
#[derive(Object)]
struct PushSubscriptionIn {
    /// The push service URL.
    endpoint: String,
    /// `p256dh` and `auth`, base64url.
    keys: PushKeys,
}

/// A subscription's keys.
#[derive(Object)]
struct PushKeys {
    /// The browser's P-256 public key.
    p256dh: String,
    /// The 16-byte authentication secret.
    auth: String,
}

/// A channel to create.
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct CreateChannel {
    /// `webhook`, `fcm` or `webpush`.
    kind: String,
    /// Display name, 1 to 100 characters.
    name: String,
    /// webhook: the receiver's http(s) URL (private addresses need `egress.allow`).
    url: Option<String>,
    /// fcm: the device's registration token.
    token: Option<String>,
    /// webpush: the browser's subscription.
    subscription: Option<PushSubscriptionIn>,
    /// Topics to receive: `scrapes.finished`, `summaries.finished`, `jobs.failed`,
    /// `injector.runs`.
    topics: Option<Vec<String>>,
}

/// A channel.
#[derive(Object)]
struct ChannelOut {
    /// Id.
    id: Uuid,
    /// `webhook`, `fcm` or `webpush`.
    kind: String,
    /// Display name.
    name: String,
    /// Where deliveries go.
    target: Value,
    /// The webhook signing secret: only in the answer that created the channel.
    #[oai(skip_serializing_if_is_none)]
    secret: Option<String>,
    /// Whether deliveries go out.
    enabled: bool,
    /// Why it was turned off (e.g. the provider said the device is gone).
    #[oai(skip_serializing_if_is_none)]
    disabled_reason: Option<String>,
    /// Subscribed topics.
    topics: Vec<String>,
    /// Created.
    created_at: DateTime<Utc>,
}

impl ChannelOut {
    fn of(c: Channel, with_secret: bool) -> Self {
        Self {
            id: c.id,
            kind: c.kind,
            name: c.name,
            target: c.target,
            secret: c.secret.filter(|_| with_secret),
            enabled: c.enabled,
            disabled_reason: c.disabled_reason,
            topics: c.topics,
            created_at: c.created_at,
        }
    }
}

/// Changes to a channel.
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct UpdateChannel {
    /// The topics to receive (replaces the list).
    topics: Option<Vec<String>>,
    /// Turn the channel on or off.
    enabled: Option<bool>,
}

/// A delivery of an event to a channel.
#[derive(Object)]
struct DeliveryOut {
    /// Id; webhooks send it as `webhook-id`, the same on every attempt.
    id: Uuid,
    /// The event.
    event_id: Uuid,
    /// Its topic.
    topic: String,
    /// Its payload.
    payload: Value,
    /// The channel.
    channel_id: Uuid,
    /// `pending` (will be attempted, again after a failure), `delivered` or `dead`.
    state: String,
    /// Attempts made.
    attempts: i32,
    /// The last answer's HTTP status.
    #[oai(skip_serializing_if_is_none)]
    last_status: Option<i32>,
    /// The last error.
    #[oai(skip_serializing_if_is_none)]
    last_error: Option<String>,
    /// When the next attempt is due.
    #[oai(skip_serializing_if_is_none)]
    next_attempt_at: Option<DateTime<Utc>>,
    /// The job carrying it out.
    job_id: Uuid,
    /// Created.
    created_at: DateTime<Utc>,
    /// Delivered.
    #[oai(skip_serializing_if_is_none)]
    delivered_at: Option<DateTime<Utc>>,
}

impl From<Delivery> for DeliveryOut {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id,
            event_id: d.event_id,
            topic: d.topic,
            payload: d.payload,
            channel_id: d.channel_id,
            state: d.state,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            next_attempt_at: d.next_attempt_at,
            job_id: d.job_id,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

/// A page of deliveries.
#[derive(Object)]
struct DeliveryPage {
    /// Newest first.
    items: Vec<DeliveryOut>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    next_cursor: Option<Uuid>,
}

/// The key browsers subscribe with.
#[derive(Object)]
struct VapidOut {
    /// The VAPID public key (uncompressed P-256 point, base64url): pass it to
    /// `pushManager.subscribe({applicationServerKey})`.
    public_key: String,
}

#[derive(ApiResponse)]
enum ChannelCreated {
    /// Created; for a webhook, `secret` is shown this once.
    #[oai(status = 201)]
    Created(Json<ChannelOut>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
enum Deleted {
    /// Deleted with its deliveries.
    #[oai(status = 204)]
    Done,
}

#[derive(ApiResponse)]
enum TestSent {
    /// A `channel.test` event is queued for this channel; follow `Location`.
    #[oai(status = 202)]
    Accepted(Json<DeliveryOut>, #[oai(header = "Location")] String),
}

fn check_topics(topics: Vec<String>) -> Result<Vec<String>, ApiError> {
    if let Some(bad) = topics.iter().find(|t| !TOPICS.contains(&t.as_str())) {
        return Err(ApiError::unprocessable(format!(
            "unknown topic {bad:?}; topics: {}",
            TOPICS.join(", ")
        )));
    }
    Ok(topics)
}

#[OpenApi(prefix_path = "/v1", tag = "ChannelTags::Notifications")]
impl ChannelsApi {
    /// Register a channel: a signed webhook, an FCM device, or a browser's Web Push
    /// subscription, with the topics it receives.
    #[oai(path = "/channels", method = "post")]
    async fn create_channel(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        body: Json<CreateChannel>,
    ) -> Result<ChannelCreated, ApiError> {
        let body = body.0;
        let name = body.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(ApiError::unprocessable("name must be 1 to 100 characters"));
        }
        let topics = check_topics(body.topics.unwrap_or_default())?;
        let missing = |field: &str| {
            ApiError::unprocessable(format!("a {} channel needs `{field}`", body.kind))
        };
        let (target, secret) = match body.kind.as_str() {
            "webhook" => {
                let url = body.url.as_deref().ok_or_else(|| missing("url"))?;
                let policy = state.notifier.policy();
                let checked = policy
                    .check_url(url)
                    .map_err(|e| ApiError::unprocessable(e.to_string()))?;
                if let Err(e) = policy.resolve(&checked).await
                    && e.is_refusal()
                {
                    return Err(ApiError::unprocessable(e.to_string()));
                }
                (
                    json!({ "url": checked.to_string() }),
                    Some(webhook::new_secret()),
                )
            }
            "fcm" => {
                if !state.notifier.has_fcm() {
                    return Err(ApiError::unprocessable(
                        "FCM is not configured on this server (notify.fcm_service_account)",
                    ));
                }
                let token = body.token.as_deref().ok_or_else(|| missing("token"))?;
                if token.is_empty() || token.len() > 4096 {
                    return Err(ApiError::unprocessable(
                        "token must be 1 to 4,096 characters",
                    ));
                }
                (json!({ "token": token }), None)
            }
            "webpush" => {
                let s = body.subscription.ok_or_else(|| missing("subscription"))?;
                let sub = Subscription {
                    endpoint: s.endpoint,
                    p256dh: s.keys.p256dh,
                    auth: s.keys.auth,
                };
                sub.validate()
                    .map_err(|e| ApiError::unprocessable(e.to_string()))?;
                let policy = state.notifier.policy();
                policy
                    .check_url(&sub.endpoint)
                    .map_err(|e| ApiError::unprocessable(e.to_string()))?;
                (
                    json!({ "endpoint": sub.endpoint, "p256dh": sub.p256dh, "auth": sub.auth }),
                    None,
                )
            }
            other => {
                return Err(ApiError::unprocessable(format!(
                    "kind {other:?} is not one of webhook, fcm, webpush"
                )));
            }
        };
        let mut tx = state.pool.begin().await?;
        let channel = store::notifications::insert_channel(
            &mut tx,
            auth.user_id(),
            &body.kind,
            name,
            &target,
            secret.as_deref(),
            &topics,
        )
        .await?;
        tx.commit().await?;
        let location = format!("/v1/channels/{}", channel.id);
        Ok(ChannelCreated::Created(
            Json(ChannelOut::of(channel, true)),
            location,
        ))
    }

    /// The caller's channels (everyone's for admins), newest first.
    #[oai(path = "/channels", method = "get")]
    async fn list_channels(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
    ) -> Result<Json<Vec<ChannelOut>>, ApiError> {
        let channels =
            store::notifications::list_channels(&state.pool, auth.owner_filter()).await?;
        Ok(Json(
            channels
                .into_iter()
                .map(|c| ChannelOut::of(c, false))
                .collect(),
        ))
    }

    /// Change a channel's topics, or turn it on or off.
    #[oai(path = "/channels/:id", method = "patch")]
    async fn update_channel(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
        body: Json<UpdateChannel>,
    ) -> Result<Json<ChannelOut>, ApiError> {
        let not_found = || ApiError::not_found(format_args!("channel {}", id.0));
        let mut tx = state.pool.begin().await?;
        store::notifications::find_channel(&mut *tx, id.0, auth.owner_filter())
            .await?
            .ok_or_else(not_found)?;
        if let Some(topics) = body.0.topics {
            store::notifications::set_topics(&mut tx, id.0, &check_topics(topics)?).await?;
        }
        if let Some(enabled) = body.0.enabled {
            let reason = (!enabled).then_some("turned off by its owner");
            store::notifications::set_enabled(&mut *tx, id.0, reason).await?;
        }
        let channel = store::notifications::find_channel(&mut *tx, id.0, None)
            .await?
            .ok_or_else(not_found)?;
        tx.commit().await?;
        Ok(Json(ChannelOut::of(channel, false)))
    }

    /// Delete a channel and its deliveries.
    #[oai(path = "/channels/:id", method = "delete")]
    async fn delete_channel(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
    ) -> Result<Deleted, ApiError> {
        if !store::notifications::delete_channel(&state.pool, id.0, auth.owner_filter()).await? {
            return Err(ApiError::not_found(format_args!("channel {}", id.0)));
        }
        Ok(Deleted::Done)
    }

    /// Send a `channel.test` event to this channel only.
    #[oai(path = "/channels/:id/test", method = "post")]
    async fn test_channel(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
    ) -> Result<TestSent, ApiError> {
        let mut tx = state.pool.begin().await?;
        let channel = store::notifications::find_channel(&mut *tx, id.0, auth.owner_filter())
            .await?
            .ok_or_else(|| ApiError::not_found(format_args!("channel {}", id.0)))?;
        if !channel.enabled {
            return Err(ApiError::conflict(format!(
                "channel {} is turned off: {}",
                channel.id,
                channel.disabled_reason.unwrap_or_default()
            )));
        }
        let event = NewEvent {
            topic: "channel.test".into(),
            owner_id: Some(channel.owner_id),
            payload: json!({ "message": format!("Test of channel {}", channel.name) }),
            only_channel: Some(channel.id),
            all_owner_channels: false,
            max_attempts: state.notifier.max_attempts(),
        };
        let (_, deliveries) = store::notifications::publish(&mut tx, &event).await?;
        let delivery_id = deliveries
            .first()
            .copied()
            .ok_or_else(|| ApiError::conflict("the channel took no delivery"))?;
        let delivery = store::notifications::find_delivery(&mut *tx, delivery_id, None)
            .await?
            .ok_or_else(|| ApiError::not_found("delivery"))?;
        tx.commit().await?;
        Ok(TestSent::Accepted(
            Json(delivery.into()),
            format!("/v1/deliveries/{delivery_id}"),
        ))
    }

    /// Deliveries, newest first: the caller's (everyone's for admins).
    #[oai(path = "/deliveries", method = "get")]
    async fn list_deliveries(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        /// Only deliveries in this state: `pending`, `delivered` or `dead`.
        state_filter: Query<Option<String>>,
        /// Only deliveries to this channel.
        channel: Query<Option<Uuid>>,
        /// Cursor from the previous page's `next_cursor`.
        cursor: Query<Option<Uuid>>,
        /// Page size, 1 to 200.
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<i64>,
    ) -> Result<Json<DeliveryPage>, ApiError> {
        if let Some(s) = &state_filter.0
            && !["pending", "delivered", "dead"].contains(&s.as_str())
        {
            return Err(ApiError::unprocessable(
                "state_filter must be pending, delivered or dead",
            ));
        }
        let mut rows = store::notifications::list_deliveries(
            &state.pool,
            auth.owner_filter(),
            state_filter.0.as_deref(),
            channel.0,
            cursor.0,
            limit.0 + 1,
        )
        .await?;
        let next_cursor = super::next_cursor(&mut rows, limit.0, |d| d.id);
        Ok(Json(DeliveryPage {
            items: rows.into_iter().map(DeliveryOut::from).collect(),
            next_cursor,
        }))
    }

    /// A delivery: state, attempts, the last answer.
    #[oai(path = "/deliveries/:id", method = "get")]
    async fn get_delivery(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
    ) -> Result<Json<DeliveryOut>, ApiError> {
        let d = store::notifications::find_delivery(&state.pool, id.0, auth.owner_filter())
            .await?
            .ok_or_else(|| ApiError::not_found(format_args!("delivery {}", id.0)))?;
        Ok(Json(d.into()))
    }

    /// Put a dead delivery back in work with a fresh set of attempts.
    #[oai(path = "/deliveries/:id/retry", method = "post")]
    async fn retry_delivery(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
    ) -> Result<Json<DeliveryOut>, ApiError> {
        let mut tx = state.pool.begin().await?;
        let d = store::notifications::find_delivery(&mut *tx, id.0, auth.owner_filter())
            .await?
            .ok_or_else(|| ApiError::not_found(format_args!("delivery {}", id.0)))?;
        if !store::notifications::retry_delivery(&mut tx, d.id, None).await? {
            return Err(ApiError::conflict(format!(
                "delivery {} is {}; only dead deliveries can be retried",
                d.id, d.state
            )));
        }
        let d = store::notifications::find_delivery(&mut *tx, d.id, None)
            .await?
            .ok_or_else(|| ApiError::not_found("delivery"))?;
        tx.commit().await?;
        Ok(Json(d.into()))
    }

    /// The VAPID public key browsers subscribe to Web Push with (no token needed).
    #[oai(path = "/push/vapid-public-key", method = "get")]
    async fn vapid_public_key(&self, state: Data<&ApiState>) -> Result<Json<VapidOut>, ApiError> {
        let keys = state.notifier.vapid(&state.pool).await?;
        Ok(Json(VapidOut {
            public_key: keys.public_key(),
        }))
    }
}

fn default_limit() -> i64 {
    50
}
