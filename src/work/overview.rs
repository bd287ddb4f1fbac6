//! The installation at a glance, for operators (admins only): queues per kind, live daemon
//! instances, the schedules' next ticks and dead deliveries. Read-only.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::schedules::{self, ScheduleStatus};
use super::{Caller, WorkError, WorkResult};
use crate::domain::schedule::Schedule;
use crate::store;
use crate::store::overview::{Instance, KindQueue};

/// What `workhorse status` shows.
#[derive(Debug, Clone)]
pub struct Overview {
    /// When it was read.
    pub at: DateTime<Utc>,
    /// Each kind with live jobs.
    pub queues: Vec<KindQueue>,
    /// Daemon instances holding leases (only instances running a job hold one).
    pub instances: Vec<Instance>,
    /// The schedules with their next and last runs.
    pub schedules: Vec<ScheduleStatus>,
    /// Deliveries that gave up.
    pub dead_deliveries: i64,
}

/// Read the overview; `schedules` are the ones loaded from `jobs/*.toml`.
pub async fn status(
    conn: &mut PgConnection,
    caller: &Caller,
    schedules: &[Schedule],
) -> WorkResult<Overview> {
    if !caller.is_admin() {
        return Err(WorkError::Forbidden(
            "the overview needs the admin role".into(),
        ));
    }
    Ok(Overview {
        at: Utc::now(),
        queues: store::overview::queues(conn).await?,
        instances: store::overview::live_instances(conn).await?,
        schedules: schedules::list(&mut *conn, schedules).await?,
        dead_deliveries: store::overview::dead_deliveries(conn).await?,
    })
}
