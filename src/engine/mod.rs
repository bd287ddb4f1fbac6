//! The job engine: one apalis worker per job kind over our own `PgQueue` backend, plus the
//! per-process background tasks that make the queue safe to share between processes: the
//! NOTIFY listener, the lease keeper, the sweeper that rescues jobs of dead processes, and the
//! pruner. Every process gets a fresh instance id, so nothing a dead process held is ever
//! mistaken for ours. Decisions: docs/job-engine.md.

pub mod ack;
pub mod backend;
mod cancel;
pub mod kind;

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use apalis::layers::WorkerBuilderExt;
use apalis_core::layers::Service;
use apalis_core::task::Task;
use apalis_core::worker::builder::WorkerBuilder;
use futures::FutureExt;
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;
use uuid::Uuid;

use crate::config::{JobsConfig, KindSettings};
use crate::domain::jobs::Backoff;
use crate::health::Health;
use crate::store::jobs;
pub use kind::{Catalog, Job, JobError, JobKind, Registry};

/// The channel new and re-queued jobs are announced on (payload: the kind).
pub const CHANNEL: &str = "workhorse_jobs";
/// How often the sweeper looks for jobs whose lease ran out.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// How often finished jobs past their retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Most rows one pruning statement deletes.
const PRUNE_BATCH: i64 = 5_000;

/// What the workers of one process share.
pub(crate) struct Runtime {
    pub(crate) pool: PgPool,
    pub(crate) instance: Uuid,
    pub(crate) config: JobsConfig,
    pub(crate) backoff: Backoff,
    kinds: BTreeMap<&'static str, Arc<KindState>>,
    acks: mpsc::UnboundedSender<ack::Ack>,
    /// The attempts this process holds, with their cancellation tokens.
    pub(crate) attempts: cancel::Attempts,
    /// Cancelled when the workers must stop taking jobs.
    pub(crate) stop: CancellationToken,
}

impl Runtime {
    pub(crate) fn ack(&self, ack: ack::Ack) {
        // The writer outlives every worker; a send only fails after shutdown gave up on it.
        let _ = self.acks.send(ack);
    }

    pub(crate) fn wake(&self, kind: &str) {
        if let Some(state) = self.kinds.get(kind) {
            state.wake.notify_one();
        }
    }

    fn wake_all(&self) {
        self.kinds.values().for_each(|k| k.wake.notify_one());
    }
}

/// One kind's dispatcher state.
pub(crate) struct KindState {
    pub(crate) name: &'static str,
    pub(crate) settings: KindSettings,
    /// Claimed and not yet finished.
    pub(crate) outstanding: AtomicUsize,
    /// A job finished: capacity is free.
    pub(crate) freed: Notify,
    /// Jobs of this kind may be due.
    pub(crate) wake: Notify,
}

impl KindState {
    pub(crate) fn finished(&self) {
        self.outstanding.fetch_sub(1, Ordering::AcqRel);
        self.freed.notify_one();
    }
}

/// A started worker.
pub(crate) type Started = JoinHandle<()>;

/// Build and start the apalis worker of `kind`.
pub(crate) fn start_worker<K: JobKind>(runtime: &Arc<Runtime>, kind: K) -> Started {
    let Some(state) = runtime.kinds.get(K::NAME).cloned() else {
        // `Engine::start` creates a state for every registered kind before starting workers.
        return tokio::spawn(async {});
    };
    let settings = state.settings;
    let queue = backend::PgQueue::<K::Args>::start(runtime.clone(), state);
    let worker = WorkerBuilder::new(format!("{}@{}", K::NAME, runtime.instance))
        .backend(queue)
        .concurrency(settings.concurrency)
        .timeout(settings.timeout)
        .build(Handler(Arc::new(kind)));
    tokio::spawn(async move {
        if let Err(e) = worker.run().await {
            tracing::error!(kind = K::NAME, error = %e, "worker stopped with an error");
        }
    })
}

/// Runs a kind's handler as its own tokio task (so that one worker uses every core), inside
/// the attempt's span; a panic is a failed attempt; dropping the future (the timeout layer)
/// aborts the task. (apalis's `parallelize` and `catch_panic` would do the first two, but
/// their higher-ranked types make the worker future fail the `Send` check of `tokio::spawn`.)
struct Handler<K>(Arc<K>);

impl<K: JobKind> Service<Task<Job<K::Args>>> for Handler<K> {
    type Response = Value;
    type Error = JobError;
    type Future = Pin<Box<dyn Future<Output = Result<Value, JobError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), JobError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, task: Task<Job<K::Args>>) -> Self::Future {
        let kind = self.0.clone();
        let job = task.args;
        let span = job.span.clone();
        let run = async move {
            match AssertUnwindSafe(kind.run(job)).catch_unwind().await {
                Ok(outcome) => outcome,
                Err(panic) => Err(JobError::Retry(anyhow::anyhow!(
                    "the handler panicked: {}",
                    panic_message(&panic)
                ))),
            }
        };
        let task = AbortOnDropHandle::new(tokio::spawn(run.instrument(span)));
        Box::pin(async move {
            match task.await {
                Ok(outcome) => outcome,
                Err(e) => Err(JobError::Retry(anyhow::anyhow!(
                    "the job's task failed: {e}"
                ))),
            }
        })
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".into()
    }
}

/// The running engine of this process.
pub struct Engine {
    runtime: Arc<Runtime>,
    workers: Vec<Started>,
    background: Vec<JoinHandle<()>>,
    background_stop: CancellationToken,
    ack_writer: JoinHandle<()>,
    ack_drain: CancellationToken,
    health: Health,
}

impl Engine {
    /// Start the workers of every registered kind and the background tasks.
    pub async fn start(
        pool: PgPool,
        config: &JobsConfig,
        registry: Registry,
        health: Health,
    ) -> anyhow::Result<Self> {
        let instance = Uuid::now_v7();
        let kinds = (registry.kinds.iter())
            .map(|(name, _, _)| {
                let state = KindState {
                    name,
                    settings: config.kind(name),
                    outstanding: AtomicUsize::new(0),
                    freed: Notify::new(),
                    wake: Notify::new(),
                };
                (*name, Arc::new(state))
            })
            .collect();
        let (acks, ack_rx) = mpsc::unbounded_channel();
        let runtime = Arc::new(Runtime {
            pool: pool.clone(),
            instance,
            config: config.clone(),
            backoff: Backoff {
                base: config.backoff_base,
                max: config.backoff_max,
                jitter: config.backoff_jitter,
            },
            kinds,
            acks,
            attempts: cancel::Attempts::default(),
            stop: CancellationToken::new(),
        });
        let ack_drain = CancellationToken::new();
        let ack_writer = tokio::spawn(ack::write_acks(runtime.clone(), ack_rx, ack_drain.clone()));

        let background_stop = CancellationToken::new();
        let listener = listen(runtime.clone(), background_stop.clone()).await;
        let background = vec![
            listener,
            spawn_every(&background_stop, runtime.config.lease / 3, {
                let runtime = runtime.clone();
                move || keep_leases(runtime.clone())
            }),
            spawn_every(&background_stop, SWEEP_EVERY, {
                let runtime = runtime.clone();
                move || sweep(runtime.clone())
            }),
            spawn_every(&background_stop, prune_every(config.retention), {
                let runtime = runtime.clone();
                move || prune(runtime.clone())
            }),
        ];
        let workers = (registry.kinds.into_iter())
            .map(|(_, _, start)| start(&runtime))
            .collect();
        health.up("workers");
        tracing::info!(%instance, kinds = ?runtime.kinds.keys().collect::<Vec<_>>(),
            "job workers started");
        Ok(Self {
            runtime,
            workers,
            background,
            background_stop,
            ack_writer,
            ack_drain,
            health,
        })
    }

    /// This process's instance id (the `locked_by` of the jobs it runs).
    pub fn instance(&self) -> Uuid {
        self.runtime.instance
    }

    /// Stop taking jobs, let running attempts finish within `timeout`, record their outcomes,
    /// and give back every job still held so that another process takes it at once.
    pub async fn shutdown(self, timeout: Duration) {
        self.health.down("workers", "shutting down");
        self.runtime.stop.cancel();
        let deadline = tokio::time::Instant::now() + timeout;
        for worker in self.workers {
            let abort = worker.abort_handle();
            if tokio::time::timeout_at(deadline, worker).await.is_err() {
                tracing::warn!("jobs still running at the shutdown timeout are given back");
                abort.abort();
            }
        }
        self.ack_drain.cancel();
        let abort = self.ack_writer.abort_handle();
        let grace = deadline.max(tokio::time::Instant::now() + Duration::from_secs(2));
        if tokio::time::timeout_at(grace, self.ack_writer)
            .await
            .is_err()
        {
            tracing::warn!("outcomes not yet written are lost; those jobs will run again");
            abort.abort();
        }
        match jobs::release_held(&self.runtime.pool, self.runtime.instance).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "gave back jobs not finished at shutdown"),
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "could not give back held jobs; they return when their lease runs out"
            ),
        }
        self.background_stop.cancel();
        for task in self.background {
            let _ = task.await;
        }
    }
}

/// Run `tick` now and then every `period` until `stop`.
/// How often finished jobs are pruned: every minute, or every half retention when that is
/// shorter, so a short retention still bounds the table.
fn prune_every(retention: Duration) -> Duration {
    (retention / 2).clamp(Duration::from_millis(100), PRUNE_EVERY)
}

fn spawn_every<F, Fut>(stop: &CancellationToken, period: Duration, mut tick: F) -> JoinHandle<()>
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
async fn keep_leases(runtime: Arc<Runtime>) {
    let before = runtime.attempts.snapshot();
    match jobs::extend_leases(&runtime.pool, runtime.instance, runtime.config.lease).await {
        Ok(renewed) => runtime.attempts.lost(before, &renewed),
        Err(e) => tracing::warn!(error = format!("{e:#}"), "renewing job leases failed"),
    }
}

/// Put jobs whose process died back in work.
async fn sweep(runtime: Arc<Runtime>) {
    match jobs::rescue_expired(&runtime.pool, runtime.config.max_crashes).await {
        Ok((rescued, dead)) => {
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

/// Delete finished jobs and cron ticks past their retention, and expired idempotency keys.
async fn prune(runtime: Arc<Runtime>) {
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
async fn listen(runtime: Arc<Runtime>, stop: CancellationToken) -> JoinHandle<()> {
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
