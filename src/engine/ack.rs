//! Acknowledgement: the backend's tower layer sits outside every user layer, so it sees the
//! outcome of each attempt as the handler, the timeout and the panic catcher left it; it
//! records the attempt's span and sends the outcome to one writer task per process, which
//! records successes in batches and failures with their backoff, and then releases the jobs
//! (their kind's dispatcher may claim again). An attempt that recorded its end itself (in the
//! fenced transaction that kept its result, `work::finish`) is not written again and is
//! released at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use apalis_core::error::{AbortError, BoxDynError};
use apalis_core::layers::{Layer, Service};
use apalis_core::task::Task;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use uuid::Uuid;

use super::kind::{Job, JobError};
use super::{KindState, Runtime};
use crate::store::jobs::{self, Failed};

/// How an attempt ended.
#[derive(Debug)]
pub enum Outcome {
    /// It succeeded with this result.
    Succeeded(Option<Value>),
    /// It stopped because the job was cancelled or taken over; there is nothing to record.
    Stopped,
    /// It failed.
    Failed {
        /// What went wrong.
        error: String,
        /// No further attempts.
        permanent: bool,
        /// Retry after this long instead of the configured backoff.
        delay: Option<Duration>,
    },
}

/// One attempt's outcome on its way to the database.
#[derive(Debug)]
pub struct Ack {
    pub(crate) id: Uuid,
    pub(crate) attempt: i32,
    pub(crate) kind: String,
    pub(crate) outcome: Outcome,
}

/// The layer `PgQueue` hands to apalis.
#[derive(Clone)]
pub struct AckLayer {
    runtime: Arc<Runtime>,
    kind: Arc<KindState>,
}

impl AckLayer {
    pub(crate) fn new(runtime: Arc<Runtime>, kind: Arc<KindState>) -> Self {
        Self { runtime, kind }
    }
}

impl<S> Layer<S> for AckLayer {
    type Service = AckService<S>;

    fn layer(&self, inner: S) -> AckService<S> {
        AckService {
            inner,
            runtime: self.runtime.clone(),
            kind: self.kind.clone(),
        }
    }
}

/// See [`AckLayer`].
#[derive(Clone)]
pub struct AckService<S> {
    inner: S,
    runtime: Arc<Runtime>,
    kind: Arc<KindState>,
}

impl<S, A> Service<Task<Job<A>>> for AckService<S>
where
    S: Service<Task<Job<A>>, Response = Value>,
    S::Error: Into<BoxDynError>,
    S::Future: Send + 'static,
{
    type Response = ();
    type Error = BoxDynError;
    type Future = Pin<Box<dyn Future<Output = Result<(), BoxDynError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxDynError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut task: Task<Job<A>>) -> Self::Future {
        let job = &mut task.args;
        let span = tracing::info_span!(
            "job",
            otel.name = format!("job {}", self.kind.name),
            otel.kind = "consumer",
            otel.status_code = tracing::field::Empty,
            job.id = %job.id,
            job.kind = self.kind.name,
            job.attempt = job.attempt,
            job.outcome = tracing::field::Empty,
            error.message = tracing::field::Empty,
        );
        let _ = span.set_parent(crate::telemetry::trace_context_from(&job.trace_context));
        job.span = span.clone();
        let (id, attempt) = (job.id, job.attempt);
        let recorded = job.recorded.clone();
        let attempt_of = format!("{}/{}", job.attempt, job.max_attempts);
        let last_attempt = job.attempt >= job.max_attempts;
        let timeout = self.kind.settings.timeout;
        let runtime = self.runtime.clone();
        let kind = self.kind.clone();
        let started = Instant::now();
        let run = self.inner.call(task);
        Box::pin(async move {
            let outcome = outcome_of(run.await.map_err(Into::into), timeout);
            let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            let _enter = span.enter();
            match &outcome {
                Outcome::Stopped => {
                    span.record("job.outcome", "stopped");
                    tracing::info!(job.id = %id, attempt = attempt_of, elapsed_ms,
                        "job attempt stopped: the job was cancelled or taken over");
                }
                Outcome::Succeeded(_) => {
                    span.record("job.outcome", "succeeded");
                    tracing::debug!(job.id = %id, attempt = attempt_of, elapsed_ms, "job done");
                }
                Outcome::Failed {
                    error, permanent, ..
                } => {
                    span.record("job.outcome", if *permanent { "dead" } else { "failed" });
                    span.record("otel.status_code", "ERROR");
                    span.record("error.message", error.as_str());
                    tracing::warn!(job.id = %id, attempt = attempt_of, elapsed_ms, error,
                        permanent, "job attempt failed");
                }
            }
            let label = match &outcome {
                Outcome::Succeeded(_) => "succeeded",
                Outcome::Stopped => "cancelled",
                Outcome::Failed { permanent, .. } if *permanent || last_attempt => "dead",
                Outcome::Failed { .. } => "failed",
            };
            (runtime.metrics).attempt(kind.name, label, Some(started.elapsed()));
            runtime.attempts.ended(id, attempt);
            if recorded.load(Ordering::Acquire) {
                kind.released(1);
                // The handler's transaction recorded the end; a retry may be due before the
                // dispatcher's next planned look.
                if matches!(
                    outcome,
                    Outcome::Failed {
                        permanent: false,
                        ..
                    }
                ) {
                    runtime.wake(kind.name);
                }
                return Ok(());
            }
            runtime.ack(Ack {
                id,
                attempt,
                kind: kind.name.to_string(),
                outcome,
            });
            Ok(())
        })
    }
}

/// Read the handler's result: our `JobError` says whether to retry (a caught panic is an
/// ordinary failed attempt: the bug may be transient); apalis's `AbortError` means no retry; a
/// timeout is a failed attempt.
fn outcome_of(result: Result<Value, BoxDynError>, timeout: Duration) -> Outcome {
    let error = match result {
        Ok(Value::Null) => return Outcome::Succeeded(None),
        Ok(value) => return Outcome::Succeeded(Some(value)),
        Err(error) => error,
    };
    let mut delay = None;
    let (error, permanent) = if let Some(e) = error.downcast_ref::<JobError>() {
        if let JobError::Cancelled = e {
            return Outcome::Stopped;
        }
        if let JobError::RetryIn(wait, _) = e {
            delay = Some(*wait);
        }
        (e.to_string(), matches!(e, JobError::Permanent(_)))
    } else if error.is::<tower::timeout::error::Elapsed>() {
        (format!("timed out after {timeout:?}"), false)
    } else if let Some(abort) = error.downcast_ref::<AbortError>() {
        (abort.to_string(), true)
    } else {
        (error.to_string(), false)
    };
    Outcome::Failed {
        error,
        permanent,
        delay,
    }
}

/// Most outcomes written by one statement.
const BATCH: usize = 1024;

/// Write outcomes until `drain` is cancelled, then write what is queued and return.
pub(crate) async fn write_acks(
    runtime: Arc<Runtime>,
    mut rx: mpsc::UnboundedReceiver<Ack>,
    drain: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            biased;
            ack = rx.recv() => ack,
            _ = drain.cancelled() => rx.try_recv().ok(),
        };
        let Some(first) = first else { return };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(ack) => batch.push(ack),
                Err(_) => break,
            }
        }
        let mut kinds: Vec<(String, usize)> = Vec::new();
        for ack in &batch {
            match kinds.iter_mut().find(|(k, _)| *k == ack.kind) {
                Some((_, n)) => *n += 1,
                None => kinds.push((ack.kind.clone(), 1)),
            }
        }
        write_batch(&runtime, batch).await;
        for (kind, n) in kinds {
            runtime.released(&kind, n);
        }
    }
}

/// Write one batch, retrying while the database is unreachable: an outcome is only lost if the
/// process dies first, and then the lease expiry runs the job again.
async fn write_batch(runtime: &Runtime, batch: Vec<Ack>) {
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for ack in batch {
        match ack.outcome {
            // Normally a no-op (the fenced write finds the job no longer ours); should the job
            // still be ours after all, it is retried rather than left running forever.
            Outcome::Stopped => failed.push((
                ack.id,
                ack.attempt,
                ack.kind,
                JobError::Cancelled.to_string(),
                false,
                None,
            )),
            Outcome::Succeeded(result) => done.push((ack.id, ack.attempt, result)),
            Outcome::Failed {
                error,
                permanent,
                delay,
            } => failed.push((ack.id, ack.attempt, ack.kind, error, permanent, delay)),
        }
    }
    if !done.is_empty() {
        let written = retrying("recording finished jobs", || {
            jobs::complete_many(&runtime.pool, runtime.instance, &done)
        })
        .await;
        if written < done.len() as u64 {
            tracing::info!(
                stale = done.len() as u64 - written,
                "results of jobs cancelled or taken over meanwhile were discarded"
            );
        }
    }
    for (id, attempt, kind, error, permanent, delay) in failed {
        let delay = delay.unwrap_or_else(|| {
            (runtime.backoff).delay(attempt.max(1) as u32, rand::random::<f64>())
        });
        let failed = retrying("recording a failed attempt", || {
            jobs::fail(
                &runtime.pool,
                id,
                runtime.instance,
                attempt,
                &error,
                permanent,
                delay,
            )
        })
        .await;
        match failed {
            Failed::Retrying(at) => {
                tracing::info!(job.id = %id, kind, retry_at = %at, "job will be retried");
                runtime.wake(&kind);
            }
            Failed::Dead => tracing::warn!(job.id = %id, kind, "job is dead"),
            Failed::Stale => {}
        }
    }
}

async fn retrying<T, F, Fut>(what: &str, mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut failures: u32 = 0;
    loop {
        match op().await {
            Ok(value) => return value,
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(20) {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        failures,
                        "{what} failed; retrying"
                    );
                }
                tokio::time::sleep(Duration::from_millis(50 << failures.min(5))).await;
            }
        }
    }
}
