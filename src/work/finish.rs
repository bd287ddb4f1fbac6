//! Finishing a job's attempt: the kind's outcome, its side effects (rows, events, chained work)
//! and the job's end commit in one transaction, fenced by the attempt that owns the job. A
//! cancelled attempt, or one whose job was taken over, keeps nothing; the quota unit is
//! settled by the job's end in the same transaction (committed on success, refunded on
//! `dead` or `cancelled`), so a unit is refunded exactly when no result was kept.
//!
//! A kind calls [`begin`] once its work is done, writes its outcome on the transaction, and
//! hands it to [`finish`]; the engine's ack layer then sees the job already recorded.

use std::sync::atomic::Ordering;

use serde_json::Value;
use sqlx::{PgPool, Postgres, Transaction};

use crate::engine::{Job, JobError};
use crate::store;

/// The transaction an attempt records its end in; it holds the job's row.
pub type Fenced = Transaction<'static, Postgres>;

/// How an attempt ended, as its kind tells it.
#[derive(Debug)]
pub enum Outcome {
    /// It succeeded; the value is stored as the job's result.
    Succeeded(Value),
    /// It failed: `Retry`/`RetryIn` come back after their delay (or the job is dead after its
    /// last attempt), `Permanent` is dead at once.
    Failed(JobError),
}

/// Open the transaction that records `job`'s attempt, locking its row: until it ends no
/// cancel, rescue or other attempt can change the job. `Err(JobError::Cancelled)` when the
/// attempt no longer owns the job: the caller must then write nothing and stop.
pub async fn begin<A>(pool: &PgPool, job: &Job<A>) -> Result<Fenced, JobError> {
    let mut tx = pool.begin().await?;
    if store::jobs::fence(&mut tx, job.id, job.worker, job.attempt).await? {
        Ok(tx)
    } else {
        tx.rollback().await?;
        Err(JobError::Cancelled)
    }
}

/// Record the end of `job`'s attempt in `tx` (from [`begin`]) and commit it together with
/// everything the kind wrote there; returns what the handler should return.
pub async fn finish<A>(mut tx: Fenced, job: &Job<A>, outcome: Outcome) -> Result<Value, JobError> {
    let recorded = match &outcome {
        Outcome::Succeeded(result) => {
            store::jobs::complete(&mut *tx, job.id, job.worker, job.attempt, Some(result)).await?
        }
        Outcome::Failed(JobError::Cancelled) => false,
        Outcome::Failed(error) => {
            let delay = match error {
                JobError::RetryIn(delay, _) => *delay,
                _ => (job.backoff).delay(job.attempt.max(1) as u32, rand::random::<f64>()),
            };
            let permanent = matches!(error, JobError::Permanent(_));
            let failed = store::jobs::fail(
                &mut *tx,
                job.id,
                job.worker,
                job.attempt,
                &error.to_string(),
                permanent,
                delay,
            )
            .await?;
            failed != store::jobs::Failed::Stale
        }
    };
    // The row is locked by `begin`, so only a caller that skipped it (or a cancelled outcome)
    // gets here without recording; then nothing of the transaction may stay.
    if !recorded {
        tx.rollback().await?;
        return Err(JobError::Cancelled);
    }
    tx.commit().await?;
    job.recorded.store(true, Ordering::Release);
    match outcome {
        Outcome::Succeeded(result) => Ok(result),
        Outcome::Failed(error) => Err(error),
    }
}
