//! Publishing an event: the act every job kind performs when its work ends (a scrape or
//! summary finished, a job failed, an injector run). The event and one delivery per matching
//! channel are written in the caller's transaction, so they commit with the outcome.

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::config::NotifyConfig;
use crate::domain::topics::Topic;
use crate::store;
use crate::store::notifications::NewEvent;

/// Publish an event to the channels subscribed to `topic` (of `owner_id`, when given), in the
/// caller's transaction, with the configured attempts per delivery.
pub async fn publish(
    conn: &mut PgConnection,
    notify: &NotifyConfig,
    topic: Topic,
    owner_id: Option<Uuid>,
    payload: Value,
) -> anyhow::Result<Uuid> {
    publish_to(conn, notify, topic, owner_id, payload, false).await
}

/// [`publish`], or with `all_channels` to every enabled channel of `owner_id` whatever its
/// topics.
pub async fn publish_to(
    conn: &mut PgConnection,
    notify: &NotifyConfig,
    topic: Topic,
    owner_id: Option<Uuid>,
    payload: Value,
    all_channels: bool,
) -> anyhow::Result<Uuid> {
    let event = NewEvent {
        topic: topic.as_str().into(),
        owner_id,
        payload,
        only_channel: None,
        all_owner_channels: all_channels,
        max_attempts: notify.max_attempts(),
    };
    Ok(store::notifications::publish(conn, &event).await?.0)
}

/// A piece of work failed for good: the same payload on its `finished` topic (to every
/// channel of `owner_id` with `all_channels`) and on `jobs.failed`.
pub async fn publish_failed(
    conn: &mut PgConnection,
    notify: &NotifyConfig,
    finished: Topic,
    owner_id: Option<Uuid>,
    payload: Value,
    all_channels: bool,
) -> anyhow::Result<()> {
    let failed = payload.clone();
    publish_to(conn, notify, finished, owner_id, payload, all_channels).await?;
    publish(conn, notify, Topic::JobsFailed, owner_id, failed).await?;
    Ok(())
}
