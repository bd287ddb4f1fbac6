//! The job engine: one apalis worker per job kind over our own `PgQueue` backend, plus the
//! per-process background tasks that make the queue safe to share between processes: the
//! NOTIFY listener, the lease keeper, the sweeper that rescues jobs of dead processes, and the
//! pruner. Every process gets a fresh instance id, so nothing a dead process held is ever
//! mistaken for ours. Decisions: docs/job-engine.md.

pub mod ack;
pub mod backend;
mod cancel;
pub mod kind;
mod upkeep;

use upkeep::{
    SWEEP_EVERY, keep_leases, listen, prune, prune_every, spawn_every, sweep, wake_on_commits,
};

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use apalis::layers::WorkerBuilderExt;
use apalis_core::layers::Service;
use apalis_core::task::Task;
use apalis_core::worker::builder::WorkerBuilder;
use futures::FutureExt;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;
use uuid::Uuid;

use crate::config::{JobsConfig, KindSettings};
use crate::domain::jobs::Backoff;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::store::jobs;
pub use kind::{Catalog, Job, JobError, JobKind, Registry};

/// The channel new and re-queued jobs are announced on (payload: the kind).
pub const CHANNEL: &str = "workhorse_jobs";

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
    /// Attempts, their duration and lateness, crashes.
    pub(crate) metrics: Metrics,
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

    /// `n` jobs of `kind` are released (see [`KindState::outstanding`]).
    pub(crate) fn released(&self, kind: &str, n: usize) {
        if let Some(state) = self.kinds.get(kind) {
            state.released(n);
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
    /// Claimed and not yet released: waiting for a slot, running, or ended with the outcome
    /// not yet written. A job counts until its row no longer says it runs here, so a backlog
    /// of outcomes holds back claims instead of growing while the leases of the jobs in it
    /// run out.
    pub(crate) outstanding: AtomicUsize,
    /// Jobs released so far (their pace sizes the claims).
    pub(crate) released: AtomicU64,
    /// Jobs were released: capacity is free.
    pub(crate) freed: Notify,
    /// Jobs of this kind may be due.
    pub(crate) wake: Notify,
}

impl KindState {
    /// `n` jobs' outcomes are written (or need no writing): they no longer count.
    pub(crate) fn released(&self, n: usize) {
        self.outstanding.fetch_sub(n, Ordering::AcqRel);
        self.released.fetch_add(n as u64, Ordering::AcqRel);
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
                    released: AtomicU64::new(0),
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
            metrics: registry.metrics.clone(),
        });
        let ack_drain = CancellationToken::new();
        let ack_writer = tokio::spawn(ack::write_acks(runtime.clone(), ack_rx, ack_drain.clone()));

        let background_stop = CancellationToken::new();
        let listener = listen(runtime.clone(), background_stop.clone()).await;
        let background = vec![
            listener,
            tokio::spawn(wake_on_commits(runtime.clone(), background_stop.clone())),
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
