//! Where the hub's batches go: one channel for streams that may carry anyone's events (an
//! admin's), and one per user with streams open, which gets only that user's events. A
//! thousand tenants' streams then each wake for their own events instead of each scanning
//! every event of the cluster, and a daemon with no stream open reads no events at all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;
use uuid::Uuid;

use super::Batch;

/// Batches kept for admins' streams that fell behind for a moment; a stream further behind
/// catches up from the database.
const ALL_BATCHES: usize = 1_024;
/// The same for one user's streams. Their batches are smaller and rarer, and a channel's
/// slots are allocated when it opens, so it is kept small.
const OWNER_BATCHES: usize = 64;

pub(crate) struct Channels {
    all: broadcast::Sender<Batch>,
    /// Also the lock that orders subscribing against [`Channels::advance_idle`].
    owners: Mutex<HashMap<Uuid, broadcast::Sender<Batch>>>,
}

impl Channels {
    pub(crate) fn new() -> Self {
        Self {
            all: broadcast::channel(ALL_BATCHES).0,
            owners: Mutex::new(HashMap::new()),
        }
    }

    fn owners(&self) -> MutexGuard<'_, HashMap<Uuid, broadcast::Sender<Batch>>> {
        // A panic while holding the lock leaves the map whole: keep using it.
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Receive `scope`'s batches (`None`: everyone's), and the head as it was when the
    /// receiver started: every batch past that head reaches the receiver.
    pub(crate) fn subscribe(
        &self,
        scope: Option<Uuid>,
        head: &AtomicI64,
    ) -> (broadcast::Receiver<Batch>, i64) {
        let mut owners = self.owners();
        let rx = match scope {
            None => self.all.subscribe(),
            Some(owner) => owners
                .entry(owner)
                .or_insert_with(|| broadcast::channel(OWNER_BATCHES).0)
                .subscribe(),
        };
        (rx, head.load(Ordering::Acquire))
    }

    /// Streams open in this process.
    pub(crate) fn receivers(&self) -> usize {
        let owners = self.owners();
        self.all.receiver_count() + owners.values().map(|tx| tx.receiver_count()).sum::<usize>()
    }

    /// Move `head` to `to` without broadcasting, when no stream is open; `false` when one
    /// is (or opened meanwhile): the batches must then be read and sent.
    pub(crate) fn advance_idle(&self, head: &AtomicI64, to: i64) -> bool {
        let mut owners = self.owners();
        owners.retain(|_, tx| tx.receiver_count() > 0);
        if !owners.is_empty() || self.all.receiver_count() > 0 {
            return false;
        }
        head.fetch_max(to, Ordering::AcqRel);
        true
    }

    /// Send `batch` to admins' streams whole and to each user with streams open as only
    /// their events.
    pub(crate) fn send(&self, batch: &Batch) {
        if self.all.receiver_count() > 0 {
            // No receiver left meanwhile is fine.
            let _ = self.all.send(batch.clone());
        }
        let mut owners = self.owners();
        owners.retain(|_, tx| tx.receiver_count() > 0);
        if owners.is_empty() {
            return;
        }
        let mut theirs: HashMap<Uuid, Vec<Arc<_>>> = HashMap::new();
        for event in batch.iter() {
            if let Some(owner) = event.owner
                && owners.contains_key(&owner)
            {
                theirs.entry(owner).or_default().push(event.clone());
            }
        }
        for (owner, events) in theirs {
            if let Some(tx) = owners.get(&owner) {
                let _ = tx.send(events.into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::stream::Event;

    fn event(seq: i64, owner: Option<Uuid>) -> Arc<Event> {
        let value = json!({"type": "job.queued", "owner": owner});
        Arc::new(Event::from_stored(seq, value).expect("an event"))
    }

    fn seqs(batch: &Batch) -> Vec<i64> {
        batch.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn users_get_only_their_events_and_admins_everything() {
        let channels = Channels::new();
        let head = AtomicI64::new(0);
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let (mut all, _) = channels.subscribe(None, &head);
        let (mut theirs, _) = channels.subscribe(Some(alice), &head);
        let batch: Batch = vec![event(1, Some(alice)), event(2, Some(bob)), event(3, None)].into();
        channels.send(&batch);
        assert_eq!(seqs(&all.try_recv().expect("the batch")), vec![1, 2, 3]);
        assert_eq!(seqs(&theirs.try_recv().expect("alice's")), vec![1]);
        // Nothing of bob's reached alice, and a batch without her events sends her nothing.
        channels.send(&vec![event(4, Some(bob))].into());
        assert!(theirs.try_recv().is_err());
        assert_eq!(channels.receivers(), 2);
    }

    #[test]
    fn the_head_moves_without_reading_only_while_nobody_follows() {
        let channels = Channels::new();
        let head = AtomicI64::new(5);
        assert!(channels.advance_idle(&head, 9));
        assert_eq!(head.load(Ordering::Acquire), 9);
        let (rx, at) = channels.subscribe(Some(Uuid::new_v4()), &head);
        assert_eq!(at, 9);
        assert!(!channels.advance_idle(&head, 12), "a stream is open");
        assert_eq!(head.load(Ordering::Acquire), 9);
        drop(rx);
        assert!(
            channels.advance_idle(&head, 12),
            "its channel is gone with it"
        );
        assert_eq!(channels.receivers(), 0);
    }
}
