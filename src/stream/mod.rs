//! The live event stream inside a process: the sequencer (numbers committed changes, one
//! daemon at a time), one listener on the database's notifications, and the hub that fetches
//! each new batch of numbered events once and broadcasts it to this process's clients. A
//! client's own task ([`subscription`]) filters, replays what it missed from the database, and
//! drops it when it cannot keep up. Decisions: docs/events.md.

mod channels;
mod listener;
mod sequencer;
pub mod subscription;
pub mod summary;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use crate::config::EventsConfig;
use crate::domain::stream::Event;
use crate::store::stream as store;

pub use subscription::{Frame, Subscription};

/// Summary text pieces waiting for slow readers; older ones are skipped.
const BROADCAST_TOKENS: usize = 4_096;
/// How often the hub looks for new events without being told (a lost notification).
const POLL_EVERY: Duration = Duration::from_secs(1);
/// Batches read per query.
const FETCH_BATCHES: i64 = 64;

/// One batch of numbered events, in order.
pub type Batch = Arc<[Arc<Event>]>;

/// This process's hub. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pool: PgPool,
    config: EventsConfig,
    channels: channels::Channels,
    tokens: broadcast::Sender<Arc<Value>>,
    /// The last number broadcast.
    head: AtomicI64,
    /// The last number the sequencer announced (-1: none yet): an idle hub takes the head
    /// from here instead of asking the database at every announcement.
    announced: AtomicI64,
    /// Wakes the fetcher.
    fetch: Notify,
    /// Cancelled at shutdown: every client's stream closes (`shutting_down`).
    stop: CancellationToken,
}

impl Hub {
    /// A hub whose tasks do not run yet: [`Hub::start`] starts them.
    pub fn new(pool: PgPool, config: EventsConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                config,
                channels: channels::Channels::new(),
                tokens: broadcast::channel(BROADCAST_TOKENS).0,
                head: AtomicI64::new(-1),
                announced: AtomicI64::new(-1),
                fetch: Notify::new(),
                stop: CancellationToken::new(),
            }),
        }
    }

    /// Start the sequencer, the listener and the fetcher; they stop, and every client's stream
    /// closes (`shutting_down`), when `stop` is cancelled.
    pub fn start(&self, stop: &CancellationToken) {
        let inner = &self.inner;
        let own = inner.stop.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            own.cancel();
        });
        let stop = inner.stop.clone();
        tokio::spawn(sequencer::run(
            inner.clone(),
            inner.pool.clone(),
            stop.clone(),
        ));
        tokio::spawn(listener::run(inner.clone(), stop.clone()));
        tokio::spawn(fetch(inner.clone(), stop));
    }

    /// The stream's settings.
    pub fn config(&self) -> &EventsConfig {
        &self.inner.config
    }

    /// The pool the hub reads from.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Summary text pieces as they arrive (payloads of `workhorse_tokens`).
    pub fn tokens(&self) -> broadcast::Receiver<Arc<Value>> {
        self.inner.tokens.subscribe()
    }

    /// Cancelled when the daemon shuts down: a connection not subscribed yet closes too.
    pub fn stopping(&self) -> CancellationToken {
        self.inner.stop.clone()
    }

    /// Clients connected to this process.
    pub fn clients(&self) -> usize {
        self.inner.channels.receivers()
    }
}

/// Fetch new batches whenever woken (a notification, the local sequencer) or every second,
/// and broadcast them in order.
async fn fetch(hub: Arc<Inner>, stop: CancellationToken) {
    loop {
        if hub.head.load(Ordering::Acquire) < 0 {
            match store::head(&hub.pool).await {
                Ok(head) => hub.head.store(head, Ordering::Release),
                Err(e) => tracing::debug!(error = %e, "reading the stream's head failed"),
            }
        } else if let Err(e) = fetch_new(&hub).await {
            tracing::debug!(error = %e, "reading new stream events failed");
        }
        tokio::select! {
            _ = hub.fetch.notified() => {}
            _ = tokio::time::sleep(POLL_EVERY) => {}
            _ = stop.cancelled() => return,
        }
    }
}

impl Inner {
    /// The sequencer numbered events up to `last`: note it and wake the fetcher.
    pub(crate) fn announce(&self, last: i64) {
        self.announced.fetch_max(last, Ordering::AcqRel);
        self.fetch.notify_one();
    }
}

async fn fetch_new(hub: &Inner) -> sqlx::Result<()> {
    if hub.channels.receivers() == 0 {
        // Nobody here follows the stream: keep up with its head only, as announced when it
        // is newer than ours (a notice may be lost, so the poll still asks the database).
        let announced = hub.announced.load(Ordering::Acquire);
        let head = if announced > hub.head.load(Ordering::Acquire) {
            announced
        } else {
            store::head(&hub.pool).await?
        };
        if hub.channels.advance_idle(&hub.head, head) {
            return Ok(());
        }
    }
    loop {
        let head = hub.head.load(Ordering::Acquire);
        let batches = store::after(&hub.pool, head, FETCH_BATCHES).await?;
        let full = batches.len() as i64 == FETCH_BATCHES;
        for batch in batches {
            let events = parse(batch, head);
            let Some(last) = events.last().map(|e| e.seq) else {
                continue;
            };
            hub.head.store(last, Ordering::Release);
            hub.channels.send(&events);
        }
        if !full {
            return Ok(());
        }
    }
}

/// The events of a stored batch numbered above `after`.
pub(crate) fn parse(batch: store::Batch, after: i64) -> Batch {
    let Value::Array(items) = batch.events else {
        return Arc::from(Vec::new());
    };
    items
        .into_iter()
        .zip(batch.first_seq..)
        .filter(|(_, seq)| *seq > after)
        .filter_map(|(value, seq)| Event::from_stored(seq, value).map(Arc::new))
        .collect::<Vec<_>>()
        .into()
}
