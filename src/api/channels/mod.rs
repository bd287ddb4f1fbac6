//! `/v1/channels`, `/v1/deliveries` and the VAPID key: where users hear about their work, and
//! the outbox of every delivery. Creating a channel and testing one are `work::channels` use
//! cases; the bodies are in `payloads.rs`.

mod payloads;

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use uuid::Uuid;

use super::ApiState;
use super::auth::BearerAuth;
use super::error::ApiError;
use crate::api::closed::{DeliveryStates, OneOf, strings};
use crate::store;
use crate::work::channels::{self as work, Env, check_topics};
use crate::work::deliveries::{self, DeliveryFilter};
use payloads::{
    ChannelCreated, ChannelOut, ChannelTags, CreateChannel, Deleted, DeliveryOut, DeliveryPage,
    TestSent, UpdateChannel, VapidOut,
};

/// Channels and deliveries.
pub struct ChannelsApi;

fn env<'a>(state: &'a ApiState) -> Env<'a> {
    Env {
        pool: &state.pool,
        config: &state.config,
        notifier: &state.notifier,
    }
}

#[OpenApi(prefix_path = "/v1", tag = "ChannelTags::Notifications")]
impl ChannelsApi {
    /// Register a channel: a signed webhook, an FCM device, or a browser's Web Push
    /// subscription, with the topics it receives.
    #[oai(path = "/channels", method = "post", operation_id = "channels_create")]
    async fn create_channel(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        body: Json<CreateChannel>,
    ) -> Result<ChannelCreated, ApiError> {
        let channel = work::create(&env(&state), &auth.0, body.0.into()).await?;
        let location = format!("/v1/channels/{}", channel.id);
        Ok(ChannelCreated::Created(
            Json(ChannelOut::of(channel, true)),
            location,
        ))
    }

    /// The caller's channels (everyone's for admins), newest first.
    #[oai(path = "/channels", method = "get", operation_id = "channels_list")]
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
    #[oai(
        path = "/channels/:id",
        method = "patch",
        operation_id = "channels_update"
    )]
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
            store::notifications::set_topics(&mut tx, id.0, &check_topics(strings(topics))?)
                .await?;
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
    #[oai(
        path = "/channels/:id",
        method = "delete",
        operation_id = "channels_delete"
    )]
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
    #[oai(
        path = "/channels/:id/test",
        method = "post",
        operation_id = "channels_test"
    )]
    async fn test_channel(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
    ) -> Result<TestSent, ApiError> {
        let delivery = work::test(&env(&state), &auth.0, id.0).await?;
        let location = format!("/v1/deliveries/{}", delivery.id);
        Ok(TestSent::Accepted(Json(delivery.into()), location))
    }

    /// Deliveries, newest first: the caller's (everyone's for admins).
    #[oai(path = "/deliveries", method = "get", operation_id = "deliveries_list")]
    #[allow(clippy::too_many_arguments)] // poem-openapi takes each parameter as an argument
    async fn list_deliveries(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        /// Only deliveries in this state: `pending`, `delivered` or `dead`.
        #[oai(name = "state")]
        in_state: Query<Option<OneOf<DeliveryStates>>>,
        /// The old name of `state`, read only when `state` is not given.
        #[oai(deprecated)]
        state_filter: Query<Option<OneOf<DeliveryStates>>>,
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
        // An unknown value is refused under either name, even when `state` wins over it.
        if let Some(old) = state_filter.0.as_ref().map(OneOf::as_str)
            && !deliveries::STATES.contains(&old)
        {
            let detail =
                format!("unknown delivery state {old:?}: expected pending, delivered or dead");
            return Err(ApiError::invalid_parameter("state_filter", detail));
        }
        let filter = DeliveryFilter {
            state: (in_state.0.as_ref())
                .or(state_filter.0.as_ref())
                .map(OneOf::as_str),
            channel: channel.0,
            before: cursor.0,
            limit: limit.0 + 1,
        };
        let mut rows = deliveries::list(&state.pool, &auth.0, &filter)
            .await
            .map_err(|e| ApiError::from_parameters(e, "state"))?;
        let next_cursor = super::next_cursor(&mut rows, limit.0, |d| d.id);
        Ok(Json(DeliveryPage {
            items: rows.into_iter().map(DeliveryOut::from).collect(),
            next_cursor,
        }))
    }

    /// A delivery: state, attempts, the last answer.
    #[oai(
        path = "/deliveries/:id",
        method = "get",
        operation_id = "deliveries_get"
    )]
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
    #[oai(
        path = "/deliveries/:id/retry",
        method = "post",
        operation_id = "deliveries_retry"
    )]
    async fn retry_delivery(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
    ) -> Result<Json<DeliveryOut>, ApiError> {
        let mut tx = state.pool.begin().await?;
        let d = deliveries::retry(&mut tx, &auth.0, id.0).await?;
        tx.commit().await?;
        Ok(Json(d.into()))
    }

    /// The VAPID public key browsers subscribe to Web Push with (no token needed).
    #[oai(
        path = "/push/vapid-public-key",
        method = "get",
        operation_id = "push_vapid_key_get"
    )]
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
