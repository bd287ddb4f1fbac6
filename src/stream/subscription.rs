//! One client's stream: a task that replays what the client missed from the database, then
//! forwards the hub's live batches through the client's filter into a bounded buffer. A client
//! whose buffer stays full for `events.slow_after` is dropped with `close`, reason
//! `slow_consumer`; the task itself catching up after a burst reads the database instead of
//! growing memory. A WebSocket changes its stream's filter while it runs
//! ([`Subscription::set_filter`]).

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use futures::Stream;
use serde_json::json;
use tokio::sync::{broadcast, mpsc, watch};
use uuid::Uuid;

use super::{Batch, Hub, Inner, parse};
use crate::domain::stream::{Event, Filter, resume_from};
use crate::store::stream as store;

/// What a client receives.
#[derive(Debug, Clone)]
pub enum Frame {
    /// First: the number of the last event when the stream opened.
    Hello {
        /// See above.
        head: i64,
    },
    /// The events after `Last-Event-ID` / `since` are no longer kept: re-read state, then
    /// continue from `head`.
    Reset {
        /// See above.
        head: i64,
    },
    /// A numbered event.
    Event(Arc<Event>),
    /// The current state of the resource a stream is about (not numbered).
    Snapshot(String),
    /// The server ends the stream: `slow_consumer`, `job_ended`, `shutting_down`.
    Close {
        /// See above.
        reason: &'static str,
    },
}

impl Frame {
    /// The SSE `id`, `event` type and data of this frame.
    pub fn parts(&self) -> (Option<i64>, &str, String) {
        match self {
            Frame::Hello { head } => (
                None,
                "hello",
                json!({"type": "hello", "head": head}).to_string(),
            ),
            Frame::Reset { head } => (
                None,
                "reset",
                json!({"type": "reset", "head": head}).to_string(),
            ),
            Frame::Event(e) => (Some(e.seq), &e.event_type, e.json.clone()),
            Frame::Snapshot(json) => (None, "snapshot", json.clone()),
            Frame::Close { reason } => (
                None,
                "close",
                json!({"type": "close", "reason": reason}).to_string(),
            ),
        }
    }
}

/// What a client asks for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Whose events, of which types, about what.
    pub filter: Filter,
    /// The one user whose events this stream may ever carry, whatever its filter becomes (a
    /// user's streams); `None`: anyone's (an admin's). The hub sends such a stream only that
    /// user's events.
    pub scope: Option<Uuid>,
    /// Resume after this number (`Last-Event-ID`), replaying what was missed.
    pub since: Option<i64>,
    /// Sent first, after `hello`: the resource's current state.
    pub snapshot: Option<String>,
    /// End the stream after this job's final event.
    pub until_job_ends: Option<Uuid>,
}

/// A client's end of its stream: frames in order, then `close` when the server ended it.
pub struct Subscription {
    rx: mpsc::Receiver<Frame>,
    reason: Arc<OnceLock<&'static str>>,
    filter: watch::Sender<Option<Filter>>,
    done: bool,
}

impl Subscription {
    /// Filter the events forwarded from now on with `filter`; `None` forwards none. Events
    /// already forwarded stay in the buffer, so a caller that needs the change to be exact
    /// filters what it reads too.
    pub fn set_filter(&self, filter: Option<Filter>) {
        self.filter.send_replace(filter);
    }
}

impl Stream for Subscription {
    type Item = Frame;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(frame)) => Poll::Ready(Some(frame)),
            Poll::Ready(None) => {
                self.done = true;
                let reason = self.reason.get().copied();
                Poll::Ready(reason.map(|reason| Frame::Close { reason }))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Hub {
    /// Open a stream for `request`; its task ends when the client goes away.
    pub async fn subscribe(&self, request: Request) -> sqlx::Result<Subscription> {
        let hub = self.inner.clone();
        // Subscribe before reading the head: every batch broadcast after the head was read is
        // in `live`, and the ones before it are in the database.
        let (live, mut head) = hub.channels.subscribe(request.scope, &hub.head);
        if head < 0 {
            head = store::head(&hub.pool).await?;
        }
        let (cursor, first) = match request.since {
            None => (head, Frame::Hello { head }),
            Some(since) => {
                let db_head = store::head(&hub.pool).await?;
                let oldest = store::oldest(&hub.pool).await?;
                match resume_from(since, oldest, db_head) {
                    Some(cursor) => (cursor, Frame::Hello { head: db_head }),
                    None => (db_head, Frame::Reset { head: db_head }),
                }
            }
        };
        let (tx, rx) = mpsc::channel(hub.config.client_buffer);
        let reason = Arc::new(OnceLock::new());
        let (filter, filter_rx) = watch::channel(Some(request.filter));
        let client = Client {
            hub,
            tx,
            reason: reason.clone(),
            filter: filter_rx,
            until_job_ends: request.until_job_ends,
            cursor,
        };
        let mut opening = vec![first];
        opening.extend(request.snapshot.map(Frame::Snapshot));
        tokio::spawn(client.run(live, opening));
        Ok(Subscription {
            rx,
            reason,
            filter,
            done: false,
        })
    }
}

/// Why a client's task stopped forwarding.
enum Stop {
    /// The client went away, or its stream ended normally.
    Gone,
    /// The server closed it, with this reason.
    Closed(&'static str),
}

struct Client {
    hub: Arc<Inner>,
    tx: mpsc::Sender<Frame>,
    reason: Arc<OnceLock<&'static str>>,
    /// `None`: forward nothing.
    filter: watch::Receiver<Option<Filter>>,
    until_job_ends: Option<Uuid>,
    /// The last number this client has been given or skipped.
    cursor: i64,
}

impl Client {
    async fn run(mut self, mut live: broadcast::Receiver<Batch>, opening: Vec<Frame>) {
        let stopped: Result<(), Stop> = async {
            for frame in opening {
                self.send(frame).await?;
            }
            self.catch_up().await?;
            loop {
                let next = tokio::select! {
                    next = live.recv() => next,
                    _ = self.tx.closed() => return Err(Stop::Gone),
                    _ = self.hub.stop.cancelled() => return Err(Stop::Closed("shutting_down")),
                };
                match next {
                    Ok(batch) => self.forward(&batch).await?,
                    Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up().await?,
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(Stop::Closed("shutting_down"));
                    }
                }
            }
        }
        .await;
        if let Err(Stop::Closed(reason)) = stopped {
            let _ = self.reason.set(reason);
        }
    }

    /// Read from the database everything after the cursor.
    async fn catch_up(&mut self) -> Result<(), Stop> {
        loop {
            let batches =
                match store::after(&self.hub.pool, self.cursor, super::FETCH_BATCHES).await {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(error = %e, "replaying stream events failed");
                        return Err(Stop::Closed("unavailable"));
                    }
                };
            if batches.is_empty() {
                return Ok(());
            }
            for batch in batches {
                let events = parse(batch, self.cursor);
                self.forward(&events).await?;
            }
        }
    }

    async fn forward(&mut self, batch: &[Arc<Event>]) -> Result<(), Stop> {
        for event in batch {
            if event.seq <= self.cursor {
                continue;
            }
            self.cursor = event.seq;
            let wanted = self
                .filter
                .borrow()
                .as_ref()
                .is_some_and(|f| f.matches(event));
            if !wanted {
                continue;
            }
            self.send(Frame::Event(event.clone())).await?;
            if let Some(job) = self.until_job_ends
                && event.job == Some(job)
                && event.ends_job()
            {
                return Err(Stop::Closed("job_ended"));
            }
        }
        Ok(())
    }

    async fn send(&self, frame: Frame) -> Result<(), Stop> {
        match tokio::time::timeout(self.hub.config.slow_after, self.tx.send(frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Stop::Gone),
            Err(_) => Err(Stop::Closed("slow_consumer")),
        }
    }
}
