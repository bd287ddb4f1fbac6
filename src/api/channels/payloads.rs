//! The request and response bodies of `/v1/channels` and `/v1/deliveries`.

use chrono::{DateTime, Utc};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, Tags};
use serde_json::Value;
use uuid::Uuid;

use crate::api::closed::{ChannelKinds, DeliveryStates, OneOf, Topics, strings};
use crate::notify::webpush::Subscription;
use crate::store::notifications::{Channel, Delivery};
use crate::work::channels::NewChannel;

#[derive(Tags)]
pub(super) enum ChannelTags {
    /// Notification channels, topics and deliveries.
    Notifications,
}

/// A Web Push subscription, as `PushSubscription.toJSON()` gives it.
#[derive(Object)]
pub(super) struct PushSubscriptionIn {
    /// The push service URL.
    pub(super) endpoint: String,
    /// `p256dh` and `auth`, base64url.
    pub(super) keys: PushKeys,
}

/// A subscription's keys.
#[derive(Object)]
pub(super) struct PushKeys {
    /// The browser's P-256 public key.
    pub(super) p256dh: String,
    /// The 16-byte authentication secret.
    pub(super) auth: String,
}

/// A channel to create.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(super) struct CreateChannel {
    /// `webhook`, `fcm` or `webpush`.
    pub(super) kind: OneOf<ChannelKinds>,
    /// Display name, 1 to 100 characters.
    #[oai(validator(
        max_length = 100,
        pattern = r"^[^\u0000]*[^\t\n\x0B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\u0000][^\u0000]*$"
    ))]
    pub(super) name: String,
    /// webhook: the receiver's http(s) URL (private addresses need `egress.allow`).
    pub(super) url: Option<String>,
    /// fcm: the device's registration token.
    pub(super) token: Option<String>,
    /// webpush: the browser's subscription.
    pub(super) subscription: Option<PushSubscriptionIn>,
    /// Topics to receive: `scrapes.finished`, `summaries.finished`, `jobs.failed`,
    /// `injector.runs`.
    pub(super) topics: Option<Vec<OneOf<Topics>>>,
}

/// A channel.
#[derive(Object)]
pub(super) struct ChannelOut {
    /// Id.
    pub(super) id: Uuid,
    /// `webhook`, `fcm` or `webpush`.
    pub(super) kind: OneOf<ChannelKinds>,
    /// Display name.
    pub(super) name: String,
    /// Where deliveries go.
    pub(super) target: Value,
    /// The webhook signing secret: only in the answer that created the channel.
    #[oai(skip_serializing_if_is_none)]
    pub(super) secret: Option<String>,
    /// Whether deliveries go out.
    pub(super) enabled: bool,
    /// Why it was turned off (e.g. the provider said the device is gone).
    #[oai(skip_serializing_if_is_none)]
    pub(super) disabled_reason: Option<String>,
    /// Subscribed topics.
    pub(super) topics: Vec<OneOf<Topics>>,
    /// Created.
    pub(super) created_at: DateTime<Utc>,
}

impl ChannelOut {
    /// The channel as shown; `with_secret` only in the answer that created it.
    pub(super) fn of(c: Channel, with_secret: bool) -> Self {
        Self {
            id: c.id,
            kind: c.kind.into(),
            name: c.name,
            target: c.target,
            secret: c.secret.filter(|_| with_secret),
            enabled: c.enabled,
            disabled_reason: c.disabled_reason,
            topics: c.topics.into_iter().map(OneOf::from).collect(),
            created_at: c.created_at,
        }
    }
}

/// Changes to a channel.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(super) struct UpdateChannel {
    /// The topics to receive (replaces the list).
    pub(super) topics: Option<Vec<OneOf<Topics>>>,
    /// Turn the channel on or off.
    pub(super) enabled: Option<bool>,
}

/// A delivery of an event to a channel.
#[derive(Object)]
pub(super) struct DeliveryOut {
    /// Id; webhooks send it as `webhook-id`, the same on every attempt.
    pub(super) id: Uuid,
    /// The event.
    pub(super) event_id: Uuid,
    /// Its topic.
    pub(super) topic: OneOf<Topics>,
    /// Its payload.
    pub(super) payload: Value,
    /// The channel.
    pub(super) channel_id: Uuid,
    /// `pending` (will be attempted, again after a failure), `delivered` or `dead`.
    pub(super) state: OneOf<DeliveryStates>,
    /// Attempts made.
    pub(super) attempts: i32,
    /// The last answer's HTTP status.
    #[oai(skip_serializing_if_is_none)]
    pub(super) last_status: Option<i32>,
    /// The last error.
    #[oai(skip_serializing_if_is_none)]
    pub(super) last_error: Option<String>,
    /// When the next attempt is due.
    #[oai(skip_serializing_if_is_none)]
    pub(super) next_attempt_at: Option<DateTime<Utc>>,
    /// The job carrying it out.
    pub(super) job_id: Uuid,
    /// Created.
    pub(super) created_at: DateTime<Utc>,
    /// Delivered.
    #[oai(skip_serializing_if_is_none)]
    pub(super) delivered_at: Option<DateTime<Utc>>,
}

impl From<Delivery> for DeliveryOut {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id,
            event_id: d.event_id,
            topic: d.topic.into(),
            payload: d.payload,
            channel_id: d.channel_id,
            state: d.state.into(),
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
pub(super) struct DeliveryPage {
    /// Newest first.
    pub(super) items: Vec<DeliveryOut>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub(super) next_cursor: Option<Uuid>,
}

/// The key browsers subscribe with.
#[derive(Object)]
pub(super) struct VapidOut {
    /// The VAPID public key (uncompressed P-256 point, base64url): pass it to
    /// `pushManager.subscribe({applicationServerKey})`.
    pub(super) public_key: String,
}

#[derive(ApiResponse)]
pub(super) enum ChannelCreated {
    /// Created; for a webhook, `secret` is shown this once.
    #[oai(status = 201)]
    Created(Json<ChannelOut>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
pub(super) enum Deleted {
    /// Deleted with its deliveries.
    #[oai(status = 204)]
    Done,
}

#[derive(ApiResponse)]
pub(super) enum TestSent {
    /// A `channel.test` event is queued for this channel; follow `Location`.
    #[oai(status = 202)]
    Accepted(Json<DeliveryOut>, #[oai(header = "Location")] String),
}

impl From<CreateChannel> for NewChannel {
    fn from(body: CreateChannel) -> Self {
        Self {
            kind: body.kind.into_inner(),
            name: body.name,
            url: body.url,
            token: body.token,
            subscription: body.subscription.map(|s| Subscription {
                endpoint: s.endpoint,
                p256dh: s.keys.p256dh,
                auth: s.keys.auth,
            }),
            topics: strings(body.topics.unwrap_or_default()),
        }
    }
}
