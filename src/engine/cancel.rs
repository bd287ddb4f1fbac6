//! Cancellation of running attempts: every attempt this process holds has a token, cancelled
//! when the job stops being the attempt's. Two paths lead there: a cancel NOTIFYs the job's id
//! on `store::jobs::CANCEL_CHANNEL` (a few milliseconds, any process), and the lease keeper,
//! which renews the leases of the jobs we hold, cancels every attempt whose lease it could not
//! renew (the safety net for a notification lost while the listener reconnected, and for a job
//! rescued away from a worker that hung). Decisions: docs/job-engine.md.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The attempts this process holds (claimed, running, or waiting for a worker slot).
#[derive(Default)]
pub(crate) struct Attempts {
    held: Mutex<HashMap<Uuid, (i32, CancellationToken)>>,
}

impl Attempts {
    fn held(&self) -> MutexGuard<'_, HashMap<Uuid, (i32, CancellationToken)>> {
        // The map stays consistent whatever panicked while holding it.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A token for attempt `attempt` of job `id`, cancelled when the job is no longer ours.
    pub(crate) fn register(&self, id: Uuid, attempt: i32) -> CancellationToken {
        let token = CancellationToken::new();
        self.held().insert(id, (attempt, token.clone()));
        token
    }

    /// Forget an attempt that ended (a later attempt of the same job may already be held).
    pub(crate) fn ended(&self, id: Uuid, attempt: i32) {
        let mut held = self.held();
        if held.get(&id).is_some_and(|(a, _)| *a == attempt) {
            held.remove(&id);
        }
    }

    /// The job was cancelled: stop its attempt, if we hold one.
    pub(crate) fn cancel(&self, id: Uuid) {
        if let Some((attempt, token)) = self.held().remove(&id) {
            tracing::info!(job.id = %id, attempt, "stopping the attempt of a cancelled job");
            token.cancel();
        }
    }

    /// The attempts held now, to compare with the leases renewed after this moment.
    pub(crate) fn snapshot(&self) -> Vec<(Uuid, i32)> {
        self.held().iter().map(|(id, (a, _))| (*id, *a)).collect()
    }

    /// Stop every attempt of `before` (a snapshot taken before the leases were renewed) whose
    /// lease was not renewed: its row is no longer running under our name. An attempt
    /// claimed after the snapshot is not judged, as the renewal may not have seen it.
    pub(crate) fn lost(&self, before: Vec<(Uuid, i32)>, renewed: &[Uuid]) {
        let renewed: HashSet<&Uuid> = renewed.iter().collect();
        let mut held = self.held();
        for (id, attempt) in before {
            if renewed.contains(&id) {
                continue;
            }
            if held.get(&id).is_some_and(|(a, _)| *a == attempt)
                && let Some((_, token)) = held.remove(&id)
            {
                tracing::info!(job.id = %id, attempt,
                    "stopping an attempt whose job is no longer ours (cancelled or taken over)");
                token.cancel();
            }
        }
    }
}
