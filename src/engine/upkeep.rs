//! The per-process background tasks of the engine: the lease keeper, the sweeper that puts
//! the jobs of dead processes back in work, the pruner, and the NOTIFY listener that wakes
//! dispatchers and cancels attempts.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{CHANNEL, Runtime};
use crate::store::jobs;

/// How often the sweeper looks for jobs whose lease ran out.
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// How often finished jobs past their retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Most rows one pruning statement deletes.
const PRUNE_BATCH: i64 = 5_000;

/// How often finished jobs are pruned: every minute, or every half retention when that is
/// shorter, so a short retention still bounds the table.
pub(super) fn prune_every(retention: Duration) -> Duration {
    (retention / 2).clamp(Duration::from_millis(100), PRUNE_EVERY)
}

/// Run `tick` now and then every `period` until `stop`.
pub(super) fn spawn_every<F, Fut>(
    stop: &CancellationToken,
    period: Duration,
    mut tick: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let stop = stop.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => tick().await,
                _ = stop.cancelled() => return,
            }
        }
    })
}

/// Renew the leases of every job this process holds, and stop the attempts whose job is no
/// longer ours (cancelled while a notification was lost, or rescued after we hung).
pub(super) async fn keep_leases(runtime: Arc<Runtime>) {
    let before = runtime.attempts.snapshot();
    match jobs::extend_leases(&runtime.pool, runtime.instance, runtime.config.lease).await {
        Ok(renewed) => runtime.attempts.lost(before, &renewed),
        Err(e) => tracing::warn!(error = format!("{e:#}"), "renewing job leases failed"),
    }
}

/// Put jobs whose process died back in work.
pub(super) async fn sweep(runtime: Arc<Runtime>) {
    match jobs::rescue_expired_by_kind(&runtime.pool, runtime.config.max_crashes).await {
        Ok(found) => {
            // The attempt that held the lease crashed, whichever process ran it.
            for job in &found {
                runtime.metrics.attempt(&job.kind, "crashed", None);
            }
            let (dead, rescued): (Vec<_>, Vec<_>) = found.into_iter().partition(|r| r.dead);
            let rescued: Vec<_> = rescued.into_iter().map(|r| r.id).collect();
            let dead: Vec<_> = dead.into_iter().map(|r| r.id).collect();
            if !rescued.is_empty() {
                tracing::warn!(jobs = rescued.len(), ids = ?rescued,
                    "rescued jobs whose worker stopped responding");
            }
            if !dead.is_empty() {
                tracing::error!(jobs = dead.len(), ids = ?dead,
                    "quarantined jobs that kept killing their worker");
            }
        }
        Err(e) => tracing::warn!(error = format!("{e:#}"), "rescuing expired jobs failed"),
    }
}

/// Delete finished jobs and cron ticks past their retention, expired idempotency keys and
/// dashboard sessions.
pub(super) async fn prune(runtime: Arc<Runtime>) {
    let mut total = 0;
    loop {
        match jobs::prune(&runtime.pool, runtime.config.retention, PRUNE_BATCH).await {
            Ok(n) => {
                total += n;
                if n < PRUNE_BATCH as u64 {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "pruning finished jobs failed");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(jobs = total, "pruned finished jobs");
    }
    if let Err(e) = crate::store::schedules::prune(&runtime.pool, runtime.config.retention).await {
        tracing::warn!(error = format!("{e:#}"), "pruning old cron ticks failed");
    }
    if let Err(e) = crate::store::sessions::prune(&runtime.pool).await {
        tracing::warn!(error = %e, "pruning expired dashboard sessions failed");
    }
    let keys = crate::store::idempotency::KEY_LIFETIME;
    if let Err(e) = crate::store::idempotency::prune_idempotency(&runtime.pool, keys).await {
        tracing::warn!(
            error = format!("{e:#}"),
            "pruning expired idempotency keys failed"
        );
    }
}

/// Forward NOTIFYs: new jobs to the kinds' dispatchers, cancelled jobs to their attempts. A
/// lost connection may have lost notifications, so every kind is woken after a reconnect; the
/// poll covers the time without a connection, and the lease keeper the lost cancels.
pub(super) async fn listen(runtime: Arc<Runtime>, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut failures: u32 = 0;
        while !stop.is_cancelled() {
            let mut listener = match PgListener::connect_with(&runtime.pool).await {
                Ok(mut l) => match l.listen_all([CHANNEL, jobs::CANCEL_CHANNEL]).await {
                    Ok(()) => l,
                    Err(e) => {
                        failures += 1;
                        warn_listener(failures, &e);
                        pause(&stop, failures).await;
                        continue;
                    }
                },
                Err(e) => {
                    failures += 1;
                    warn_listener(failures, &e);
                    pause(&stop, failures).await;
                    continue;
                }
            };
            if failures > 0 {
                tracing::info!("listening for new jobs again");
            }
            failures = 0;
            runtime.wake_all();
            loop {
                let next = tokio::select! {
                    n = listener.try_recv() => n,
                    _ = stop.cancelled() => return,
                };
                match next {
                    Ok(Some(n)) if n.channel() == jobs::CANCEL_CHANNEL => {
                        match n.payload().parse::<Uuid>() {
                            Ok(id) => runtime.attempts.cancel(id),
                            Err(_) => tracing::warn!(
                                payload = n.payload(),
                                "a cancel notification without a job id"
                            ),
                        }
                    }
                    Ok(Some(notification)) => runtime.wake(notification.payload()),
                    Ok(None) => runtime.wake_all(),
                    Err(e) => {
                        failures += 1;
                        warn_listener(failures, &e);
                        runtime.wake_all();
                        break;
                    }
                }
            }
        }
    })
}

fn warn_listener(failures: u32, error: &sqlx::Error) {
    if failures == 1 || failures.is_multiple_of(50) {
        tracing::warn!(error = %error, failures,
            "listening for new jobs failed; polling meanwhile");
    }
}

async fn pause(stop: &CancellationToken, failures: u32) {
    let wait = Duration::from_millis(100 << failures.min(4));
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = stop.cancelled() => {}
    }
}

/// Wake a kind's workers as soon as this process commits an enqueue of it (see
/// `store::jobs::signal_committed`): no wait for the sequencer's NOTIFY, which still follows
/// and also wakes the other processes.
pub(super) async fn wake_on_commits(runtime: Arc<Runtime>, stop: CancellationToken) {
    let mut committed = jobs::committed();
    loop {
        let kind = tokio::select! {
            () = stop.cancelled() => return,
            kind = committed.recv() => kind,
        };
        match kind {
            Ok(kind) => runtime.wake(&kind),
            // Names lost to a burst: the NOTIFY wakes those kinds.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}
