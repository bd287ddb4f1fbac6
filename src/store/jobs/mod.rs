//! The `jobs` table: enqueue inside the caller's transaction (with dedup keys scoped to the
//! owner), claim with leases, finish (fenced by the attempt that owns the job), fail with a
//! backoff schedule stored in the row, rescue the jobs of workers that died, cancel, retry by
//! an operator, prune, read.

mod claim;
mod enqueue;
mod manage;
mod read;
mod signal;

pub use claim::*;
pub use enqueue::*;
pub use manage::*;
pub use read::*;
pub use signal::{committed, enqueued, enqueues, signal_committed, signal_enqueued};

/// A `debug` client span for one statement of the queue on the `jobs` table (database client
/// semantic conventions), named `{operation} jobs`, with `step` saying which (claim, complete,
/// fail, rescue). At the default `info` level it is never built.
fn statement_span(step: &'static str, operation: &'static str) -> tracing::Span {
    tracing::debug_span!(
        "db",
        otel.name = format!("{operation} jobs"),
        otel.kind = "client",
        db.system.name = "postgresql",
        db.operation.name = operation,
        db.collection.name = "jobs",
        workhorse.queue.step = step,
    )
}
