//! `echo`: the diagnostic job. It waits, can fail or panic on request, can record each
//! execution in `echo_runs`, and returns what it was given. Operators use it to check a
//! deployment end to end; the chaos test and the benchmarks use it as their workload.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::engine::{Job, JobError, JobKind};

/// Longest `sleep_ms` accepted.
pub const MAX_SLEEP_MS: u64 = 10 * 60 * 1000;

/// What an echo job does.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EchoArgs {
    /// Wait this long (at most 10 minutes).
    #[serde(deserialize_with = "sleep_ms")]
    pub sleep_ms: u64,
    /// Fail the first this many attempts.
    pub fail_attempts: u32,
    /// Fail with a permanent error (no retries).
    pub fail_permanently: bool,
    /// Panic instead of returning.
    pub panic: bool,
    /// Record each execution in `echo_runs`.
    pub record: bool,
    /// Returned as the result.
    pub message: Option<Value>,
}

fn sleep_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let ms = u64::deserialize(d)?;
    if ms > MAX_SLEEP_MS {
        return Err(serde::de::Error::custom(format!(
            "sleep_ms must be at most {MAX_SLEEP_MS}"
        )));
    }
    Ok(ms)
}

/// The `echo` kind.
pub struct Echo {
    /// Where executions are recorded.
    pub pool: PgPool,
}

impl JobKind for Echo {
    const NAME: &'static str = crate::domain::jobs::kinds::ECHO;
    type Args = EchoArgs;

    async fn run(&self, job: Job<EchoArgs>) -> Result<Value, JobError> {
        let args = &job.args;
        if args.record {
            sqlx::query("INSERT INTO echo_runs (job_id, attempt, instance) VALUES ($1, $2, $3)")
                .bind(job.id)
                .bind(job.attempt)
                .bind(job.worker)
                .execute(&self.pool)
                .await?;
        }
        if args.sleep_ms > 0 {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(args.sleep_ms)) => {}
                _ = job.cancel.cancelled() => return Err(JobError::Cancelled),
            }
        }
        if args.panic {
            panic!("echo job {} was asked to panic", job.id);
        }
        if args.fail_permanently {
            return Err(JobError::permanent(anyhow::anyhow!(
                "echo was asked to fail permanently"
            )));
        }
        if job.attempt <= args.fail_attempts as i32 {
            return Err(JobError::Retry(anyhow::anyhow!(
                "echo was asked to fail attempt {} of the first {}",
                job.attempt,
                args.fail_attempts
            )));
        }
        Ok(json!({ "attempt": job.attempt, "message": args.message }))
    }
}
