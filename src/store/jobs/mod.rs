//! The `jobs` table: enqueue inside the caller's transaction (with dedup keys scoped to the
//! owner), claim with leases, finish (fenced by the attempt that owns the job), fail with a
//! backoff schedule stored in the row, rescue the jobs of workers that died, cancel, retry by
//! an operator, prune, read.

mod claim;
mod enqueue;
mod manage;
mod read;

pub use claim::*;
pub use enqueue::*;
pub use manage::*;
pub use read::*;
