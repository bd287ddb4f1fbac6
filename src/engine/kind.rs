//! What a job kind is: its stable name, its argument type and its handler; and the registry
//! the daemon builds its workers and the API's argument checks from.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::jobs::Backoff;

/// One attempt of a job, as its handler receives it.
#[derive(Debug)]
pub struct Job<A> {
    /// The job's id.
    pub id: Uuid,
    /// This attempt's number, from 1.
    pub attempt: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// The process running the attempt.
    pub worker: Uuid,
    /// The user the job works for; `None` for system work (schedules, operators). Handlers
    /// load the objects named in `args` by id and this owner.
    pub owner_id: Option<Uuid>,
    /// W3C trace context of the request that enqueued the job.
    pub trace_context: Value,
    /// The decoded arguments.
    pub args: A,
    /// The attempt's span; the handler runs inside it.
    pub span: tracing::Span,
    /// Cancelled when this attempt no longer owns the job: someone cancelled it (in this
    /// process or another), or its lease could not be renewed. Handlers stop at their next
    /// await point and return [`JobError::Cancelled`]; whatever they would write is fenced
    /// anyway (`work::finish`).
    pub cancel: CancellationToken,
    /// The retry schedule, for a failure the handler records itself.
    pub(crate) backoff: Backoff,
    /// Set once the handler recorded the attempt's end in its own fenced transaction, so the
    /// ack layer leaves the row alone.
    pub(crate) recorded: Arc<AtomicBool>,
}

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt (after the backoff), e.g. a timeout or a 503 from a service.
    #[error("{0:#}")]
    Retry(anyhow::Error),
    /// Another attempt would fail the same way, e.g. a 404 or invalid input: the job is dead.
    #[error("{0:#}")]
    Permanent(anyhow::Error),
    /// Worth another attempt after this long (a kind's own retry schedule, or a service's
    /// `Retry-After`) rather than after the configured backoff.
    #[error("{1:#}")]
    RetryIn(std::time::Duration, anyhow::Error),
    /// The attempt stopped because it no longer owns the job (cancelled, or taken over after
    /// its lease ran out); it kept nothing.
    #[error("the attempt stopped: the job was cancelled or is no longer this worker's")]
    Cancelled,
}

impl JobError {
    /// A permanent error: no further attempts.
    pub fn permanent(error: impl Into<anyhow::Error>) -> Self {
        JobError::Permanent(error.into())
    }
}

impl From<anyhow::Error> for JobError {
    fn from(error: anyhow::Error) -> Self {
        JobError::Retry(error)
    }
}

impl From<sqlx::Error> for JobError {
    fn from(error: sqlx::Error) -> Self {
        JobError::Retry(error.into())
    }
}

/// A kind of job. `NAME` is stored in every row and never renamed.
pub trait JobKind: Send + Sync + 'static {
    /// The stable name, e.g. `scrape`.
    const NAME: &'static str;
    /// The arguments, stored as JSON. They are checked when a job is enqueued through the API.
    type Args: DeserializeOwned + Send + Sync + Unpin + 'static;
    /// The plan quota (see `[plans]`) each job of this kind charges one unit of, if any.
    const QUOTA: Option<&'static str> = None;
    /// Run one attempt; the JSON returned is stored as the job's result.
    fn run(&self, job: Job<Self::Args>) -> impl Future<Output = Result<Value, JobError>> + Send;
}

/// Checks a kind's arguments; `Err` says what is wrong.
pub type Validator = fn(&Value) -> Result<(), String>;

fn validate<A: DeserializeOwned>(args: &Value) -> Result<(), String> {
    A::deserialize(args).map(drop).map_err(|e| e.to_string())
}

pub(crate) type Starter = Box<dyn FnOnce(&Arc<super::Runtime>) -> super::Started + Send>;

/// The job kinds this daemon runs.
#[derive(Default)]
pub struct Registry {
    pub(crate) kinds: Vec<(&'static str, Entry, Starter)>,
    catalog: Catalog,
    /// Where the engine records attempts, lateness and crashes.
    pub metrics: crate::metrics::Metrics,
}

impl Registry {
    /// An empty registry whose engine records in `metrics`.
    pub fn measured(metrics: crate::metrics::Metrics) -> Self {
        Self {
            metrics,
            ..Self::default()
        }
    }

    /// Add a kind with its handler.
    pub fn register<K: JobKind>(&mut self, kind: K) {
        let starter: Starter = Box::new(move |runtime| super::start_worker(runtime, kind));
        let entry = Entry {
            validate: validate::<K::Args>,
            quota: K::QUOTA,
        };
        self.kinds.push((K::NAME, entry, starter));
    }

    /// The names, argument checks and quotas, for the API: filled from the kinds registered
    /// by the first call, so call it after the last `register`.
    pub fn catalog(&self) -> Catalog {
        (self.catalog.0).get_or_init(|| self.kinds.iter().map(|(n, e, _)| (*n, *e)).collect());
        self.catalog.clone()
    }

    /// The catalog this registry will have, before it is filled: for a kind that needs it
    /// (a use case it calls) while the registry is still being built.
    pub fn catalog_handle(&self) -> Catalog {
        self.catalog.clone()
    }
}

/// What the API knows of a kind.
#[derive(Clone, Copy)]
pub(crate) struct Entry {
    validate: Validator,
    quota: Option<&'static str>,
}

/// The known kinds with their argument checks and quotas; cheap to clone.
#[derive(Clone, Default)]
pub struct Catalog(Arc<OnceLock<BTreeMap<&'static str, Entry>>>);

/// What an unfilled catalog knows.
static NO_KINDS: BTreeMap<&'static str, Entry> = BTreeMap::new();

impl Catalog {
    fn kinds(&self) -> &BTreeMap<&'static str, Entry> {
        self.0.get().unwrap_or(&NO_KINDS)
    }

    /// Check `args` for `kind`: `None` when the kind is unknown.
    pub fn check(&self, kind: &str, args: &Value) -> Option<Result<(), String>> {
        self.kinds().get(kind).map(|e| (e.validate)(args))
    }

    /// The quota a job of `kind` charges, as the kind declares it.
    pub fn quota(&self, kind: &str) -> Option<&'static str> {
        self.kinds().get(kind).and_then(|e| e.quota)
    }

    /// The kind names, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds().keys().copied().collect()
    }

    /// The static name of a known kind.
    pub fn name(&self, kind: &str) -> Option<&'static str> {
        self.kinds().get_key_value(kind).map(|(k, _)| *k)
    }
}
