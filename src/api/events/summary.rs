//! `GET /v1/summaries/{id}/stream`: a summary's text as the model writes it, its progress over
//! chunks, then the stored summary.

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use poem_openapi::Object;
use poem_openapi::types::ToJSON;
use serde_json::json;
use uuid::Uuid;

use super::Described;
use crate::api::ApiState;
use crate::api::documents::SummaryOut;
use crate::store;
use crate::stream::summary::SummaryItem;

/// One event of a summary's stream: `hello`; `delta` (a piece of text: append it at `offset`,
/// after dropping what you have when `restart` is true, which a new provider or attempt
/// starting over sends); `progress` (chunks of a long document done); `summary` (the stored
/// summary, the truth); `close` with a `reason` (`finished`, `slow_consumer`,
/// `shutting_down`).
#[derive(Object)]
pub struct SummaryStreamEvent {
    /// `hello`, `delta`, `progress`, `summary` or `close`.
    #[oai(rename = "type")]
    ty: String,
    /// The next piece of text (`delta`).
    text: Option<String>,
    /// Characters of the answer before this piece (`delta`).
    offset: Option<u64>,
    /// Drop the text so far first (`delta`).
    restart: Option<bool>,
    /// The attempt making the text (`delta`).
    attempt: Option<i32>,
    /// Chunks summarised so far (`progress`).
    chunks_done: Option<i32>,
    /// Chunks in all (`progress`).
    chunks_total: Option<i32>,
    /// The stored summary (`summary`).
    summary: Option<SummaryOut>,
    /// Why the stream ends (`close`).
    reason: Option<String>,
    /// The event stream's head when it opened (`hello`).
    head: Option<i64>,
}

type Events = BoxStream<'static, Described<SummaryStreamEvent>>;

fn event(ty: &str, data: serde_json::Value) -> Described<SummaryStreamEvent> {
    Described::new(None, ty, data.to_string())
}

/// The stored summary, then `close`.
async fn finished(state: ApiState, id: Uuid, owner: Option<Uuid>) -> Events {
    let stored = store::summaries::find(&state.pool, id, owner).await;
    let mut out = Vec::new();
    match stored {
        Ok(Some(summary)) => {
            let summary = SummaryOut::from(summary).to_json();
            out.push(event(
                "summary",
                json!({"type": "summary", "summary": summary}),
            ));
            out.push(event(
                "close",
                json!({"type": "close", "reason": "finished"}),
            ));
        }
        Ok(None) => out.push(event(
            "close",
            json!({"type": "close", "reason": "deleted"}),
        )),
        Err(e) => {
            tracing::warn!(error = %e, "reading a finished summary failed");
            out.push(event(
                "close",
                json!({"type": "close", "reason": "unavailable"}),
            ));
        }
    }
    stream::iter(out).boxed()
}

/// The events of a summary still being made, from its follower's items.
pub fn live(
    state: ApiState,
    id: Uuid,
    owner: Option<Uuid>,
    items: tokio::sync::mpsc::Receiver<SummaryItem>,
) -> Events {
    stream::unfold(items, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .flat_map(move |item| match item {
        SummaryItem::Hello(head) => {
            stream::iter([event("hello", json!({"type": "hello", "head": head}))]).boxed()
        }
        SummaryItem::Delta(delta) => stream::iter([event("delta", delta)]).boxed(),
        SummaryItem::Progress(e) => {
            let mut data: serde_json::Value = serde_json::from_str(&e.json).unwrap_or_default();
            data["type"] = json!("progress");
            stream::iter([event("progress", data)]).boxed()
        }
        SummaryItem::Finished => stream::once(finished(state.clone(), id, owner))
            .flatten()
            .boxed(),
        SummaryItem::Close(reason) => {
            stream::iter([event("close", json!({"type": "close", "reason": reason}))]).boxed()
        }
    })
    .boxed()
}

/// A summary that had finished when asked: hello, the stored summary, close.
pub fn already_finished(state: ApiState, id: Uuid, owner: Option<Uuid>, head: i64) -> Events {
    let hello = event("hello", json!({"type": "hello", "head": head}));
    stream::once(std::future::ready(hello))
        .chain(stream::once(finished(state, id, owner)).flatten())
        .boxed()
}
