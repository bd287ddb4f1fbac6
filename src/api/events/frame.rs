//! What an SSE stream sends, for poem-openapi: each frame becomes one SSE event (`id` = the
//! event's number, `event` = its type, `data` = its JSON, serialized once by the hub), and the
//! spec describes the data as [`EventOut`].

use std::borrow::Cow;
use std::marker::PhantomData;
use std::time::Duration;

use chrono::{DateTime, Utc};
use poem::web::sse::Event as SseEvent;
use poem_openapi::Object;
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::{ToJSON, Type};
use serde_json::Value;
use uuid::Uuid;

use crate::api::closed::{EventTypes, OneOf};
use crate::stream::Frame;

/// One event of a live stream. Which fields are present depends on `type`: job events carry
/// `job`, `kind`, `state`, `attempt` (and `error` when retrying or dead); published events
/// `event` and `payload`; delivery events `delivery`, `channel`, `status`; `summary.progress`
/// `chunks_done` and `chunks_total`; `hello` and `reset` carry `head`, `close` a `reason`.
#[derive(Object)]
#[oai(rename = "StreamEvent")]
pub struct EventOut {
    /// The event's number (also the SSE `id`): strictly increasing in the order changes
    /// committed; send the last one seen as `Last-Event-ID` to resume. Absent on the stream's
    /// own messages and on a resource's current state sent first.
    id: Option<i64>,
    /// What happened.
    #[oai(rename = "type")]
    ty: OneOf<EventTypes>,
    /// When it happened.
    at: Option<DateTime<Utc>>,
    /// The user it belongs to.
    owner: Option<Uuid>,
    /// The job (job events).
    job: Option<Uuid>,
    /// The job's kind.
    kind: Option<String>,
    /// The job's state after the change (job events), or the delivery's.
    state: Option<String>,
    /// The job's attempt count, or the delivery's.
    attempt: Option<i32>,
    /// The job's attempt limit.
    max_attempts: Option<i32>,
    /// The last error (a retrying or dead job, a failed delivery).
    error: Option<String>,
    /// The scrape the event is about.
    scrape: Option<Uuid>,
    /// The summary the event is about.
    summary: Option<Uuid>,
    /// The published event (`scrapes.finished`, …) or the event a delivery carries.
    event: Option<Uuid>,
    /// The published event's payload, as webhooks receive it.
    payload: Option<Value>,
    /// The delivery (delivery events).
    delivery: Option<Uuid>,
    /// The delivery's channel.
    channel: Option<Uuid>,
    /// The HTTP status of a delivery's last attempt.
    status: Option<i32>,
    /// Chunks of a long document summarised so far (`summary.progress`).
    chunks_done: Option<i32>,
    /// Chunks in all (`summary.progress`).
    chunks_total: Option<i32>,
    /// The last event number when the stream opened (`hello`), or to continue from (`reset`).
    head: Option<i64>,
    /// Why the server ended the stream (`close`): `slow_consumer` (the client did not read
    /// for `events.slow_after`), `job_ended`, `shutting_down`, `unavailable`.
    reason: Option<String>,
}

/// One SSE event whose data the spec describes as `S`: the data is serialized once (by the
/// hub, for every client), so the stream carries finished SSE events rather than objects.
pub struct Described<S> {
    event: SseEvent,
    _schema: PhantomData<fn() -> S>,
}

impl<S> Described<S> {
    /// An event with data `data` of type `event_type`, numbered `id` when it has a number.
    pub fn new(id: Option<i64>, event_type: &str, data: String) -> Self {
        let event = SseEvent::message(data).event_type(event_type);
        let event = match id {
            Some(id) => event.id(id.to_string()),
            None => event,
        };
        Self::from_event(event)
    }

    /// The reconnection delay for EventSource clients (`retry:`).
    pub fn retry(delay: Duration) -> Self {
        Self::from_event(SseEvent::retry(
            u64::try_from(delay.as_millis()).unwrap_or(2000),
        ))
    }

    fn from_event(event: SseEvent) -> Self {
        Self {
            event,
            _schema: PhantomData,
        }
    }

    /// A stream frame from the hub.
    pub fn frame(frame: Frame) -> Self {
        let (id, ty, data) = frame.parts();
        Self::new(id, ty, data)
    }

    /// The SSE event.
    pub fn into_sse(self) -> SseEvent {
        self.event
    }
}

impl<S: Type> Type for Described<S> {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        S::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        S::schema_ref()
    }

    fn register(registry: &mut Registry) {
        S::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl<S: Type> ToJSON for Described<S> {
    fn to_json(&self) -> Option<Value> {
        // Only reached without `to_event`, which every stream here sets.
        None
    }
}
