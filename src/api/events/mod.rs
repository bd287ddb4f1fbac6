//! `/v1/events`: the caller's live event stream (Server-Sent Events), one job's stream
//! (`/v1/jobs/{id}/events`), and stream tickets for browsers. The hub and its rules are in
//! `stream` and `work::stream`; this module speaks HTTP. Guide: docs/events.md.

mod frame;
mod summary;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::{EventStream, Json};
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use uuid::Uuid;

use super::ApiState;
use super::auth::{BearerAuth, StreamAuth};
use super::closed::{EventTopics, OneOf};
use super::error::ApiError;
use crate::stream::{Frame, Subscription};
use crate::work;
use crate::work::stream::{JobStream, StreamQuery};
pub use frame::{Described, EventOut};
pub use summary::SummaryStreamEvent;

#[derive(Tags)]
enum EventTags {
    /// Live updates without polling: job state changes, finished scrapes and summaries,
    /// delivery outcomes, as Server-Sent Events (and over the WebSocket at `/v1/ws`).
    Events,
}

/// Live events.
pub struct EventsApi;

/// A live stream, or nothing more to send.
#[derive(ApiResponse)]
pub enum Streamed {
    /// `text/event-stream`: `hello` first (or `reset` when the events after `Last-Event-ID`
    /// are no longer kept), then events as they commit, a comment line every
    /// `events.keep_alive` while idle, and `close` with a reason when the server ends it.
    #[oai(status = 200)]
    Events(EventStream<BoxStream<'static, Described<EventOut>>>),
    /// The job had already ended when this reconnect came: nothing more will come (an
    /// EventSource stops reconnecting on 204).
    #[oai(status = 204)]
    Over,
}

/// A summary's live stream.
#[derive(ApiResponse)]
pub enum SummaryStreamed {
    /// `text/event-stream`: `hello`, then `delta` and `progress` events, then `summary` and
    /// `close`.
    #[oai(status = 200)]
    Events(EventStream<BoxStream<'static, Described<SummaryStreamEvent>>>),
}

/// A stream ticket: put it in `?ticket=` of a stream's URL.
#[derive(Object)]
struct TicketOut {
    /// The ticket (`wht_` and 43 characters); shown once.
    ticket: String,
    /// Until when it opens streams; streams opened with it go on after.
    expires_at: DateTime<Utc>,
}

#[derive(ApiResponse)]
enum TicketCreated {
    /// A new ticket.
    #[oai(status = 201)]
    Created(Json<TicketOut>),
}

/// The SSE response for a subscription: the reconnection delay, then its frames.
fn sse(state: &ApiState, frames: BoxStream<'static, Frame>) -> Streamed {
    Streamed::Events(described(state, frames.map(Described::frame).boxed()))
}

/// An SSE body: the reconnection delay, then `events`, with comment lines while idle.
pub fn described<S: poem_openapi::types::Type + 'static>(
    state: &ApiState,
    events: BoxStream<'static, Described<S>>,
) -> EventStream<BoxStream<'static, Described<S>>> {
    let config = state.hub.config();
    let retry = stream::once(std::future::ready(Described::retry(config.reconnect)));
    EventStream::new(retry.chain(events).boxed())
        .keep_alive(config.keep_alive)
        .to_event(Described::into_sse)
}

fn live(subscription: Subscription) -> BoxStream<'static, Frame> {
    subscription.boxed()
}

#[OpenApi(prefix_path = "/v1", tag = "EventTags::Events")]
impl EventsApi {
    /// Stream the caller's events as Server-Sent Events: every job state change, finished
    /// scrapes and summaries, summary progress and delivery outcomes; an admin's own, or
    /// everyone's with `all=true`. Filter by `topic` (a type like `job.succeeded` or a family
    /// like `job`) and by resource (`job`, `scrape`, `summary`, `crawl`; several values
    /// each repeated for several values). Reconnect with `Last-Event-ID` to get what was missed
    /// within `events.retention`. Browsers authenticate with `?ticket=`.
    #[oai(path = "/events", method = "get", operation_id = "events_stream")]
    #[allow(clippy::too_many_arguments)]
    async fn stream(
        &self,
        auth: StreamAuth,
        state: Data<&ApiState>,
        /// Event types or families to receive; default all.
        topic: Query<Vec<OneOf<EventTopics>>>,
        /// Only events about these jobs.
        job: Query<Vec<Uuid>>,
        /// Only events about these scrapes (their jobs included).
        scrape: Query<Vec<Uuid>>,
        /// Only events about these summaries (their jobs included).
        summary: Query<Vec<Uuid>>,
        /// Only events about these crawls.
        crawl: Query<Vec<Uuid>>,
        /// Everyone's events (admins only).
        all: Query<Option<bool>>,
        /// Resume after this event number (the SSE `id` last received); browsers send it
        /// themselves when they reconnect.
        #[oai(name = "Last-Event-ID", validator(pattern = "^[0-9]{1,18}$"))]
        last_event_id: Header<Option<String>>,
        /// Resume after this event number, for clients that cannot set headers.
        #[oai(validator(minimum(value = "0")))]
        since: Query<Option<i64>>,
    ) -> Result<Streamed, ApiError> {
        let query = StreamQuery {
            topics: topic.0.into_iter().map(OneOf::into_inner).collect(),
            jobs: job.0,
            scrapes: scrape.0,
            summaries: summary.0,
            crawls: crawl.0,
            all: all.0.unwrap_or(false),
        };
        let since = match since.0 {
            Some(n) => work::stream::since(Some(&n.to_string()))
                .map_err(|e| ApiError::from_parameters(e, "since"))?,
            None => work::stream::since(last_event_id.0.as_deref())
                .map_err(|e| ApiError::from_parameters(e, "Last-Event-ID"))?,
        };
        let subscription = work::stream::open(&state.hub, auth.caller(), query, since)
            .await
            .map_err(|e| ApiError::from_parameters(e, "topic"))?;
        Ok(sse(&state, live(subscription)))
    }

    /// Stream one job's changes: its current state first (event `snapshot`), then each state
    /// change, ending after it succeeds, dies or is cancelled (`close`, reason `job_ended`).
    #[oai(
        path = "/jobs/:id/events",
        method = "get",
        operation_id = "jobs_events"
    )]
    async fn job_events(
        &self,
        auth: StreamAuth,
        state: Data<&ApiState>,
        /// The job.
        id: Path<Uuid>,
        /// Resume after this event number.
        #[oai(name = "Last-Event-ID", validator(pattern = "^[0-9]{1,18}$"))]
        last_event_id: Header<Option<String>>,
    ) -> Result<Streamed, ApiError> {
        let since = work::stream::since(last_event_id.0.as_deref())
            .map_err(|e| ApiError::from_parameters(e, "Last-Event-ID"))?;
        let opened = work::stream::open_job(&state.hub, auth.caller(), id.0, since).await?;
        Ok(match opened {
            JobStream::Live(subscription) => sse(&state, live(subscription)),
            JobStream::Ended { head, snapshot } => {
                let frames = [
                    Frame::Hello { head },
                    Frame::Snapshot(snapshot.to_string()),
                    Frame::Close {
                        reason: "job_ended",
                    },
                ];
                sse(&state, stream::iter(frames).boxed())
            }
            JobStream::Over => Streamed::Over,
        })
    }

    /// Stream a summary as the model writes it: `delta` events with pieces of text (a
    /// `restart` means a new provider or attempt starts over), `progress` over the chunks of a
    /// long document, then `summary` with the stored summary and `close`. A summary that has
    /// finished sends `summary` at once. Disconnecting does not stop the summary. A client that
    /// connects mid-way gets the text from that point on (`offset` says where it goes), and the
    /// whole text in `summary`.
    #[oai(
        path = "/summaries/:id/stream",
        method = "get",
        operation_id = "summaries_stream"
    )]
    async fn summary_stream(
        &self,
        auth: StreamAuth,
        state: Data<&ApiState>,
        /// The summary.
        id: Path<Uuid>,
    ) -> Result<SummaryStreamed, ApiError> {
        let caller = auth.caller();
        let owner = (!caller.is_admin()).then_some(caller.user_id);
        // Follow first, then look: an end between the two is not missed.
        let items = state.hub.follow_summary(id.0, owner).await?;
        let found = crate::store::summaries::find(&state.pool, id.0, owner)
            .await?
            .ok_or_else(|| ApiError::not_found(format_args!("summary {}", id.0)))?;
        let state = state.0.clone();
        let events = match found.outcome {
            Some(_) => {
                let head = crate::store::stream::head(&state.pool).await?;
                summary::already_finished(state.clone(), id.0, owner, head)
            }
            None => summary::live(state.clone(), id.0, owner, items),
        };
        Ok(SummaryStreamed::Events(described(&state, events)))
    }

    /// Mint a stream ticket for a browser: `?ticket=` opens the caller's streams for
    /// `events.ticket_lifetime` (5 minutes by default), and stops working when the token that
    /// minted it is revoked. It cannot call any other operation.
    #[oai(
        path = "/events/tickets",
        method = "post",
        operation_id = "events_tickets_create"
    )]
    async fn create_ticket(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
    ) -> Result<TicketCreated, ApiError> {
        let (ticket, expires_at) = work::stream::ticket(&state.hub, &auth.0).await?;
        Ok(TicketCreated::Created(Json(TicketOut {
            ticket,
            expires_at,
        })))
    }
}
