//! Deliveries as use cases: list the outbox (a user's own, everyone's for admins) and put a
//! dead delivery back in work. The API's `/v1/deliveries` and the operator CLI both come here.

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::{Caller, WorkError, WorkResult};
use crate::store;
use crate::store::notifications::Delivery;

/// The states a delivery can be in.
pub const STATES: [&str; 3] = ["pending", "delivered", "dead"];

/// Which deliveries [`list`] returns.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter<'a> {
    /// Only this state: `pending`, `delivered` or `dead`.
    pub state: Option<&'a str>,
    /// Only deliveries to this channel.
    pub channel: Option<Uuid>,
    /// Only deliveries older than this one (the last id of the previous page).
    pub before: Option<Uuid>,
    /// At most this many.
    pub limit: i64,
}

/// Deliveries newest first: the caller's, everyone's for admins.
pub async fn list(
    db: impl PgExecutor<'_>,
    caller: &Caller,
    filter: &DeliveryFilter<'_>,
) -> WorkResult<Vec<Delivery>> {
    if let Some(state) = filter.state
        && !STATES.contains(&state)
    {
        return Err(WorkError::invalid(
            "state",
            format!("unknown delivery state {state:?}: expected pending, delivered or dead"),
        ));
    }
    Ok(store::notifications::list_deliveries(
        db,
        caller.owner_filter(),
        filter.state,
        filter.channel,
        filter.before,
        filter.limit,
    )
    .await?)
}

/// Put dead delivery `id` (the caller's, any for admins) back in work with a fresh set of
/// attempts, its job too; on `conn`, a transaction. Returns the delivery as it now is.
pub async fn retry(conn: &mut PgConnection, caller: &Caller, id: Uuid) -> WorkResult<Delivery> {
    let d = store::notifications::find_delivery(&mut *conn, id, caller.owner_filter())
        .await?
        .ok_or_else(|| WorkError::not_found(format_args!("delivery {id}")))?;
    if !store::notifications::retry_delivery(conn, d.id, None).await? {
        return Err(WorkError::Conflict(format!(
            "delivery {} is {}; only dead deliveries can be retried",
            d.id, d.state
        )));
    }
    store::notifications::find_delivery(&mut *conn, d.id, None)
        .await?
        .ok_or_else(|| WorkError::not_found(format_args!("delivery {id}")))
}
