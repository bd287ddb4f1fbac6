//! The sequencer: one daemon at a time (by advisory lock on its own connection) numbers the
//! committed changes the triggers left in `stream_changes`, in commit order, and announces
//! the last number; it also prunes what is past retention. Another daemon takes over within a
//! second of this one's connection closing. Numbering new jobs also wakes their workers in
//! every process (enqueues send no NOTIFY of their own), so after an enqueue in this process
//! the sequencer looks every millisecond for a short while instead of at its usual pace.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{ConnectOptions, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use super::Inner;
use crate::store::{jobs, stream};

/// Most rows (statements) numbered at once.
const MAX_ROWS: i64 = 1_000;
/// The pace right after an enqueue in this process: its job is woken a millisecond or so after
/// its transaction commits.
const EAGER: Duration = Duration::from_millis(1);
/// How long the eager pace lasts after the last enqueue (covers the enqueuing transaction's
/// remaining work and commit).
const EAGER_FOR: Duration = Duration::from_millis(10);
/// How long a daemon that is not the sequencer waits before trying the lock again.
const STANDBY: Duration = Duration::from_secs(1);
/// How often the sequencer deletes events past `events.retention` and expired tickets (every
/// minute, or every half retention when that is shorter).
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Hold the sequencer's lock when free and number pending changes until `stop`.
pub(super) async fn run(hub: Arc<Inner>, pool: PgPool, stop: CancellationToken) {
    let mut failures = 0u32;
    while !stop.is_cancelled() {
        match serve(&hub, &pool, &stop).await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(60) {
                    tracing::warn!(error = %e, failures, "numbering stream events failed; retrying");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(STANDBY) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// One connection's life: wait for the lock, then number until an error or `stop`.
async fn serve(hub: &Inner, pool: &PgPool, stop: &CancellationToken) -> sqlx::Result<()> {
    let mut conn: PgConnection = pool.connect_options().connect().await?;
    loop {
        if stream::try_lock_sequencer(&mut conn).await? {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(STANDBY) => {}
            _ = stop.cancelled() => return Ok(()),
        }
    }
    tracing::debug!("this daemon numbers stream events");
    let every = hub.config.sequence_every;
    let retention = hub.config.retention;
    let prune_every = (retention / 2).clamp(Duration::from_millis(100), PRUNE_EVERY);
    let mut pruned = tokio::time::Instant::now();
    let mut seen = jobs::enqueues();
    let mut eager_until = pruned;
    loop {
        if pruned.elapsed() >= prune_every {
            pruned = tokio::time::Instant::now();
            let batches = stream::prune(&mut conn, retention).await?;
            stream::prune_tickets(&mut conn).await?;
            if batches > 0 {
                tracing::debug!(batches, "pruned stream events past their retention");
            }
        }
        // Created before the count is read, so no enqueue slips between the two.
        let enqueued = jobs::enqueued();
        let passed = tokio::time::Instant::now();
        let (numbered, last) = stream::sequence(&mut conn, MAX_ROWS).await?;
        if numbered > 0 {
            // This process's clients need not wait for the NOTIFY's round trip.
            hub.announce(last);
        }
        if numbered >= MAX_ROWS {
            continue;
        }
        let now = tokio::time::Instant::now();
        let count = jobs::enqueues();
        if count != seen {
            seen = count;
            eager_until = now + EAGER_FOR;
        }
        let pause = if now < eager_until { EAGER } else { every };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            // A pass at once (the enqueue may have committed already), but at most one per
            // EAGER however fast enqueues come.
            _ = enqueued => tokio::time::sleep_until(passed + EAGER).await,
            _ = stop.cancelled() => return Ok(()),
        }
    }
}
