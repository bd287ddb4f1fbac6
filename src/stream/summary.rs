//! Following one summary as it is made: its text pieces (from any daemon, through
//! `workhorse_tokens`), its progress over chunks, and its end, merged into one ordered feed for
//! `GET /v1/summaries/{id}/stream`.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

use super::Hub;
use super::subscription::{Frame, Request};
use crate::domain::stream::{Event, Filter};

/// What the follower of a summary receives.
#[derive(Debug, Clone)]
pub enum SummaryItem {
    /// The first message, with the stream's head.
    Hello(i64),
    /// A piece of text: `{summary, attempt, offset, text, restart}`; `restart` also when a new
    /// attempt starts over.
    Delta(Value),
    /// `summary.progress`: chunks done of the total.
    Progress(Arc<Event>),
    /// The summary finished (succeeded or failed) or its job ended: read the stored one.
    Finished,
    /// The server ends the feed first, with this reason.
    Close(&'static str),
}

impl Hub {
    /// Follow summary `id` of `owner` (`None`: an admin). Subscribes before returning, so the
    /// caller may check the stored summary afterwards without missing its end.
    pub async fn follow_summary(
        &self,
        id: Uuid,
        owner: Option<Uuid>,
    ) -> sqlx::Result<mpsc::Receiver<SummaryItem>> {
        let tokens = self.tokens();
        let mut events = self
            .subscribe(Request {
                filter: Filter {
                    owner,
                    summaries: vec![id],
                    ..Filter::default()
                },
                scope: owner,
                ..Request::default()
            })
            .await?;
        let (tx, rx) = mpsc::channel(self.config().client_buffer);
        let slow_after = self.config().slow_after;
        tokio::spawn(async move {
            let mut tokens = tokens;
            let mut attempt = None;
            loop {
                let item = tokio::select! {
                    piece = tokens.recv() => match piece {
                        Ok(piece) => match delta(&piece, id, owner, &mut attempt) {
                            Some(item) => item,
                            None => continue,
                        },
                        // Text is best effort; the stored summary follows at the end.
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => SummaryItem::Close("shutting_down"),
                    },
                    frame = futures::StreamExt::next(&mut events) => match frame {
                        Some(Frame::Hello { head }) => SummaryItem::Hello(head),
                        Some(Frame::Event(e)) if e.event_type == "summary.progress" => {
                            SummaryItem::Progress(e)
                        }
                        Some(Frame::Event(e))
                            if e.event_type == "summaries.finished" || e.ends_job() =>
                        {
                            SummaryItem::Finished
                        }
                        Some(Frame::Close { reason }) => SummaryItem::Close(reason),
                        Some(_) => continue,
                        None => SummaryItem::Close("shutting_down"),
                    },
                    _ = tx.closed() => return,
                };
                let last = matches!(item, SummaryItem::Finished | SummaryItem::Close(_));
                match tokio::time::timeout(slow_after, tx.send(item)).await {
                    Ok(Ok(())) if !last => {}
                    _ => return,
                }
            }
        });
        Ok(rx)
    }
}

/// The delta a token piece makes for this follower, if it is about the summary it follows.
fn delta(
    piece: &Value,
    id: Uuid,
    owner: Option<Uuid>,
    attempt: &mut Option<i64>,
) -> Option<SummaryItem> {
    let uuid = |key: &str| piece.get(key)?.as_str()?.parse::<Uuid>().ok();
    if uuid("summary") != Some(id) || owner.is_some_and(|o| uuid("owner") != Some(o)) {
        return None;
    }
    let this = piece.get("attempt").and_then(Value::as_i64);
    let new_attempt = attempt.is_some() && *attempt != this;
    *attempt = this;
    let restart = new_attempt || piece.get("restart").and_then(Value::as_bool) == Some(true);
    Some(SummaryItem::Delta(serde_json::json!({
        "type": "delta",
        "summary": id,
        "attempt": this,
        "offset": piece.get("offset"),
        "text": piece.get("text"),
        "restart": restart,
    })))
}
