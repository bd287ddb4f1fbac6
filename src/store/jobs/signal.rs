//! The process's enqueue signals. Every enqueue in this process counts once its insert ran
//! (committed already without a transaction, or soon with one): the stream's sequencer, which
//! wakes the workers of every process once it numbers the new jobs (docs/job-engine.md,
//! "Waking workers"), watches the count to look again within a millisecond instead of at its
//! usual pace, so a job enqueued here is picked up within a few milliseconds even though no
//! enqueue sends a NOTIFY. An enqueue known to be committed also names its kind, for this
//! process's engine to wake that kind's workers at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use tokio::sync::futures::Notified;
use tokio::sync::{Notify, broadcast};

struct Signal {
    count: AtomicU64,
    notify: Notify,
}

static SIGNAL: LazyLock<Signal> = LazyLock::new(|| Signal {
    count: AtomicU64::new(0),
    notify: Notify::new(),
});

/// Count an enqueue of this process whose insert ran (its commit follows soon, or a
/// rollback).
pub fn signal_enqueued() {
    SIGNAL.count.fetch_add(1, Ordering::Release);
    SIGNAL.notify.notify_waiters();
}

/// Enqueues counted so far by this process.
pub fn enqueues() -> u64 {
    SIGNAL.count.load(Ordering::Acquire)
}

/// Resolves at the next enqueue of this process; it counts every enqueue from its creation
/// on, so create it before checking [`enqueues`] to miss none.
pub fn enqueued() -> Notified<'static> {
    SIGNAL.notify.notified()
}

/// Kinds of this process's enqueues that are committed already (made outside a transaction),
/// for this process's engine to wake that kind's workers at once, without waiting for the
/// sequencer's NOTIFY (which still wakes every process, this one too). The capacity bounds a
/// slow listener: it loses the oldest names, and the NOTIFY covers them.
static COMMITTED: LazyLock<broadcast::Sender<Arc<str>>> =
    LazyLock::new(|| broadcast::channel(1024).0);

/// Announce a committed enqueue of `kind`.
pub fn signal_committed(kind: &str) {
    if COMMITTED.receiver_count() > 0 {
        let _ = COMMITTED.send(Arc::from(kind));
    }
}

/// Every committed enqueue's kind from now on (see [`signal_committed`]).
pub fn committed() -> broadcast::Receiver<Arc<str>> {
    COMMITTED.subscribe()
}
