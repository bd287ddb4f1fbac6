//! `PgQueue`: an apalis [`Backend`] over our `jobs` table. A dispatcher task per kind claims
//! up to the free capacity, sized by the kind's pace, whenever it is woken (a NOTIFY for its
//! kind, released jobs, the time of its next due job, or the safety-net poll) and hands the claimed jobs to the apalis
//! worker through a channel. Decisions: docs/job-engine.md.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use apalis_core::backend::finalize::Ephemeral;
use apalis_core::backend::{Backend, BackendConfig};
use apalis_core::task::Task;
use apalis_core::task::builder::TaskBuilder;
use apalis_core::task::task_id::TaskId;
use apalis_core::worker::context::WorkerContext;
use chrono::Utc;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use super::ack::{Ack, AckLayer, Outcome};
use super::kind::Job;
use super::{KindState, Runtime};
use crate::store::jobs::{self, ClaimedJob};

/// Shortest sleep when a due job exists that we could not claim (another process holds it).
const MIN_WAIT: Duration = Duration::from_millis(10);
/// How much work ahead a dispatcher holds: claimed jobs for this long at the kind's recent pace.
const HORIZON: Duration = Duration::from_millis(50);
/// Most jobs held beyond the running attempts, however fast the kind goes.
const MAX_PREFETCH: usize = 256;
/// How often the pace is measured.
const PACE_EVERY: Duration = Duration::from_millis(100);

/// The backend of one kind's apalis worker.
pub struct PgQueue<A> {
    runtime: Arc<Runtime>,
    kind: Arc<KindState>,
    rx: mpsc::Receiver<Task<Job<A>>>,
}

impl<A: DeserializeOwned + Send + 'static> PgQueue<A> {
    /// A queue for `kind`; starts its dispatcher.
    pub(crate) fn start(runtime: Arc<Runtime>, kind: Arc<KindState>) -> Self {
        // Room for everything the dispatcher may hold beyond the running attempts.
        let (tx, rx) = mpsc::channel(kind.settings.concurrency + MAX_PREFETCH);
        tokio::spawn(dispatch::<A>(runtime.clone(), kind.clone(), tx));
        Self { runtime, kind, rx }
    }
}

/// Errors of the queue itself; the dispatcher retries database errors on its own, so the
/// worker never sees one.
#[derive(Debug, thiserror::Error)]
#[error("job queue: {0}")]
pub struct QueueError(String);

impl<A: Send + 'static> Backend for PgQueue<A> {
    type Task = Task<Job<A>>;
    type Error = QueueError;

    fn poll_ready(
        &mut self,
        _: &mut Context<'_>,
        _: &WorkerContext,
    ) -> Poll<Result<(), QueueError>> {
        Poll::Ready(Ok(()))
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        worker: &WorkerContext,
    ) -> Poll<Option<Result<Self::Task, QueueError>>> {
        // Stopping: hand out nothing more (claimed jobs left in the channel are given back by
        // the engine's shutdown) and tell apalis, which then drains the running attempts and
        // ends the worker.
        if self.runtime.stop.is_cancelled() {
            if !worker.is_shutting_down() {
                let _ = worker.stop();
            }
            return Poll::Ready(None);
        }
        self.rx.poll_recv(cx).map(|task| task.map(Ok))
    }

    fn poll_close(
        &mut self,
        _: &mut Context<'_>,
        _: &WorkerContext,
    ) -> Poll<Result<(), QueueError>> {
        self.rx.close();
        Poll::Ready(Ok(()))
    }
}

impl<A> BackendConfig for PgQueue<A> {
    type Args = Job<A>;
    type Id = uuid::Uuid;
    type Kind = Ephemeral;
    type Config = ();
    type Layer = AckLayer;

    fn config(&self) -> &() {
        &()
    }

    fn middleware(&mut self, _: &mut WorkerContext) -> AckLayer {
        AckLayer::new(self.runtime.clone(), self.kind.clone())
    }
}

/// Claim and hand over jobs of one kind until the engine stops.
async fn dispatch<A: DeserializeOwned + Send + 'static>(
    runtime: Arc<Runtime>,
    kind: Arc<KindState>,
    tx: mpsc::Sender<Task<Job<A>>>,
) {
    let stop = runtime.stop.clone();
    let mut failures: u32 = 0;
    let mut pace = Pace::new(&kind);
    loop {
        if stop.is_cancelled() {
            return;
        }
        // Claim in batches sized by the pace: hold the running attempts plus `prefetch` jobs
        // (what the kind gets through in HORIZON, at least `concurrency`), and claim again
        // once half of that is free, so a busy kind's claims stay large and few while an
        // idle one still claims at once. A held job counts until its outcome is written.
        let concurrency = kind.settings.concurrency;
        let prefetch = pace.prefetch(&kind);
        let busy = kind.outstanding.load(Ordering::Acquire);
        let free = (concurrency + prefetch).saturating_sub(busy);
        if free == 0 || (busy > 0 && free < prefetch.div_ceil(2)) {
            tokio::select! {
                _ = kind.freed.notified() => continue,
                _ = stop.cancelled() => return,
            }
        }
        let claimed = jobs::claim(
            &runtime.pool,
            kind.name,
            runtime.instance,
            free as i64,
            runtime.config.lease,
        )
        .await;
        let claimed = match claimed {
            Ok(claimed) => {
                if failures > 0 {
                    tracing::info!(kind = kind.name, "claiming jobs works again");
                }
                failures = 0;
                claimed
            }
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(50) {
                    tracing::warn!(
                        kind = kind.name,
                        error = format!("{e:#}"),
                        failures,
                        "claiming jobs failed; retrying"
                    );
                }
                // Back off, but try again at once when the listener reconnects and wakes us:
                // the database is back.
                let pause = Duration::from_millis(50 << failures.min(5));
                tokio::select! {
                    _ = tokio::time::sleep(pause) => continue,
                    _ = kind.wake.notified() => continue,
                    _ = stop.cancelled() => return,
                }
            }
        };
        let full = claimed.len() == free;
        for job in claimed {
            kind.outstanding.fetch_add(1, Ordering::AcqRel);
            runtime.metrics.lateness(kind.name, job.lateness_secs);
            match task_of::<A>(&runtime, job) {
                Ok(task) => {
                    if tx.send(task).await.is_err() {
                        // The worker is gone (stopping); shutdown gives the job back.
                        return;
                    }
                }
                Err(ack) => {
                    runtime.metrics.attempt(kind.name, "dead", None);
                    // Released once the writer recorded it.
                    runtime.ack(ack);
                }
            }
        }
        if full {
            continue;
        }
        // Nothing more is due: sleep until woken, until the next due job, or for the poll.
        let poll = runtime.config.poll_interval;
        let wait = match jobs::next_due(&runtime.pool, kind.name).await {
            Ok(Some(at)) => (at - Utc::now())
                .to_std()
                .unwrap_or_default()
                .clamp(MIN_WAIT, poll),
            _ => poll,
        };
        tokio::select! {
            _ = kind.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// A kind's recent pace: jobs released per second, measured every `PACE_EVERY`.
struct Pace {
    at: std::time::Instant,
    seen: u64,
    rate: f64,
}

impl Pace {
    fn new(kind: &KindState) -> Self {
        Self {
            at: std::time::Instant::now(),
            seen: kind.released.load(Ordering::Acquire),
            rate: 0.0,
        }
    }

    /// Jobs to hold beyond the running attempts.
    fn prefetch(&mut self, kind: &KindState) -> usize {
        let elapsed = self.at.elapsed();
        if elapsed >= PACE_EVERY {
            let released = kind.released.load(Ordering::Acquire);
            let rate = (released - self.seen) as f64 / elapsed.as_secs_f64();
            // Follow a rise at once and a fall by halves: a burst after a lull is taken in
            // large claims, and a short lull does not shrink them.
            self.rate = if rate >= self.rate {
                rate
            } else {
                (self.rate + rate) / 2.0
            };
            (self.at, self.seen) = (std::time::Instant::now(), released);
        }
        let concurrency = kind.settings.concurrency;
        ((self.rate * HORIZON.as_secs_f64()) as usize)
            .clamp(concurrency.min(MAX_PREFETCH), MAX_PREFETCH)
    }
}

/// The apalis task for a claimed job, or the permanent failure when its arguments do not
/// decode (an operator can fix the row and retry it).
fn task_of<A: DeserializeOwned>(runtime: &Runtime, job: ClaimedJob) -> Result<Task<Job<A>>, Ack> {
    let args = A::deserialize(&job.args).map_err(|e| Ack {
        id: job.id,
        attempt: job.attempt,
        kind: job.kind.clone(),
        outcome: Outcome::Failed {
            error: format!("the arguments do not fit job kind `{}`: {e}", job.kind),
            permanent: true,
            delay: None,
        },
    })?;
    let job = Job {
        id: job.id,
        attempt: job.attempt,
        max_attempts: job.max_attempts,
        worker: runtime.instance,
        owner_id: job.owner_id,
        trace_context: job.trace_context,
        args,
        span: tracing::Span::none(),
        cancel: runtime.attempts.register(job.id, job.attempt),
        backoff: runtime.backoff,
        recorded: Default::default(),
    };
    let (id, previous, max) = (job.id, job.attempt.max(1) - 1, job.max_attempts.max(1));
    // apalis adds one to the attempt when the task starts, so it then equals ours.
    Ok(TaskBuilder::new(job)
        .task_id(TaskId::from_uuid(id))
        .attempt(previous as usize)
        .max_attempts(max as usize)
        .build())
}
