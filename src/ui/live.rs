//! `/ui/events`: the dashboard's live updates, from the same event stream as `/v1/events`,
//! coalesced: at most one `changed` message a second per browser, naming up to 100 jobs that
//! changed, so a burst of 10,000 jobs costs each open page one refresh, not 10,000.
//!
//! A page carries the stream's number from when it was read (`data-seq`) and opens its stream
//! with `?since=` that number, so a change made between the read and the stream's opening is
//! still announced; each message's SSE `id` is the last number it covers, so a browser's
//! reconnect (`Last-Event-ID`) resumes where it left off. When those events are no longer
//! kept, the page is told to refresh everything.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use poem::http::StatusCode;
use poem::web::Data;
use poem::web::sse::{Event as SseEvent, SSE};
use poem::{IntoResponse, Request, Response, handler};
use serde_json::json;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::session;
use crate::api::ApiState;
use crate::api::error::ApiError;
use crate::domain::stream::Filter;
use crate::stream::{Frame, subscription::Request as StreamRequest};

/// How long changes are gathered before one message goes out.
const GATHER: Duration = Duration::from_millis(300);
/// The shortest time between two messages.
const EVERY: Duration = Duration::from_secs(1);
/// Most job ids named in one message; beyond, the page refreshes everything.
const MAX_IDS: usize = 100;

#[handler]
pub async fn events(req: &Request, state: Data<&ApiState>) -> Response {
    let session = match session::current(req, &state).await {
        Ok(Some(s)) => s,
        Ok(None) => return StatusCode::UNAUTHORIZED.into_response(),
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "opening dashboard events failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    // A reconnect's Last-Event-ID is newer than the `since` in the URL the page opened with.
    let header = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok());
    let (name, resume) = match header {
        Some(value) => ("Last-Event-ID", Some(value)),
        None => ("since", since_param(req)),
    };
    let Ok(since) = crate::work::stream::since(resume) else {
        let detail = format!("{name} must be an event number (a whole number from 0)");
        return ApiError::bad_request(detail).into_response();
    };
    let owner = session.caller.owner_filter();
    let filter = Filter {
        owner,
        topics: vec!["job".into()],
        ..Filter::default()
    };
    let subscription = match state
        .hub
        .subscribe(StreamRequest {
            filter,
            scope: owner,
            since,
            ..Default::default()
        })
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "opening dashboard events failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(coalesce(subscription, tx));
    let messages =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    SSE::new(messages)
        .keep_alive(state.hub.config().keep_alive)
        .into_response()
}

/// The `since` query parameter, as given.
fn since_param(req: &Request) -> Option<&str> {
    req.uri()
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("since="))
}

async fn coalesce(mut frames: crate::stream::Subscription, tx: mpsc::Sender<SseEvent>) {
    let mut last_sent = tokio::time::Instant::now() - EVERY;
    loop {
        let mut changed = BTreeSet::<Uuid>::new();
        let mut count = 0usize;
        // Wait for the first change. `seq`: the last number this message covers; `everything`:
        // a reset (the missed events are gone) asks the page to refresh all it shows.
        let (mut seq, everything) = loop {
            tokio::select! {
                frame = frames.next() => match frame {
                    Some(Frame::Event(e)) => {
                        count += 1;
                        changed.extend(e.job);
                        break (e.seq, false);
                    }
                    Some(Frame::Reset { head }) => break (head, true),
                    Some(Frame::Close { .. }) | None => return,
                    Some(_) => {}
                },
                _ = tx.closed() => return,
            }
        };
        // Gather what follows, and keep to one message a second.
        let until = (tokio::time::Instant::now() + GATHER).max(last_sent + EVERY);
        loop {
            tokio::select! {
                frame = frames.next() => match frame {
                    Some(Frame::Event(e)) => {
                        count += 1;
                        seq = e.seq;
                        if changed.len() < MAX_IDS {
                            changed.extend(e.job);
                        }
                    }
                    Some(Frame::Close { .. }) | None => return,
                    Some(_) => {}
                },
                _ = tokio::time::sleep_until(until) => break,
            }
        }
        let data = json!({
            "jobs": changed,
            "count": count,
            "truncated": everything || changed.len() >= MAX_IDS,
        });
        let message = SseEvent::message(data.to_string())
            .event_type("changed")
            .id(seq.to_string());
        if tx.send(message).await.is_err() {
            return;
        }
        last_sent = tokio::time::Instant::now();
    }
}
