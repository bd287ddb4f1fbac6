//! Streamed summaries: the text of a summary being made, sent as it arrives to PostgreSQL's
//! [`TOKENS_CHANNEL`], where the stream endpoint's listener picks it up. At most one
//! notification per [`INTERVAL`] per summary (pieces are buffered meanwhile), each under
//! [`MAX_PAYLOAD`] bytes. Best effort: the stored summary is the truth, so a lost notification
//! is logged at debug and never fails the job.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use super::providers::Piece;
use crate::store;

/// The PostgreSQL channel the pieces of summaries being made are sent to.
pub const TOKENS_CHANNEL: &str = crate::store::stream::TOKENS_CHANNEL;

/// Longest payload sent, in bytes (PostgreSQL refuses more than 8000).
pub const MAX_PAYLOAD: usize = 7000;

/// Shortest time between two sends for one summary.
pub const INTERVAL: Duration = Duration::from_millis(50);

/// Room for a payload's text once escaped as JSON: the rest of the payload (two UUIDs, four
/// numbers, the keys) takes under 200 bytes.
const TEXT_BUDGET: usize = MAX_PAYLOAD - 300;

/// One notification on [`TOKENS_CHANNEL`], sent as compact JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPiece {
    /// The summary being made.
    pub summary: Uuid,
    /// Its owner: only they may see it.
    pub owner: Uuid,
    /// The job's attempt making it; a new attempt starts the text over.
    pub attempt: i32,
    /// 0, 1, 2… within the attempt, in the order sent.
    pub seq: u64,
    /// Characters of the current answer before this piece.
    pub offset: u64,
    /// The next piece of the text.
    pub text: String,
    /// Drop the text so far before applying this piece: a new provider starts over (`offset`
    /// is then 0).
    pub restart: bool,
}

/// Sends one summary's pieces as they come, coalesced; [`TokenPublisher::finish`] sends what
/// is left. Dropped without `finish` (the job was cancelled), it stops at once.
pub struct TokenPublisher {
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

struct Shared {
    // A std Mutex: held only to add a piece or take the buffer, never across an await.
    buffer: Mutex<Buffer>,
    wake: Notify,
    closed: AtomicBool,
}

impl TokenPublisher {
    /// Starts the publisher of `attempt` at `summary`, owned by `owner`.
    pub fn start(pool: PgPool, summary: Uuid, owner: Uuid, attempt: i32) -> Self {
        let shared = Arc::new(Shared {
            buffer: Mutex::new(Buffer::new(summary, owner, attempt)),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
        });
        let task = tokio::spawn(send_coalesced(pool, shared.clone()));
        Self {
            shared,
            task: Some(task),
        }
    }

    /// Where the pieces go: it only buffers them and wakes the sender, so it never blocks.
    pub fn sink(&self) -> impl FnMut(Piece) + Send + 'static {
        let shared = self.shared.clone();
        move |piece| {
            shared
                .buffer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(piece);
            shared.wake.notify_one();
        }
    }

    /// Sends what is still buffered and stops; call it before the job's outcome is committed,
    /// so the last piece goes out before the summary is stored.
    pub async fn finish(mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake.notify_one();
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            tracing::debug!(error = %e, "the summary's token sender ended badly");
        }
    }
}

impl Drop for TokenPublisher {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Waits for pieces, then sends them once [`INTERVAL`] has passed since the last send.
async fn send_coalesced(pool: PgPool, shared: Arc<Shared>) {
    let mut last: Option<Instant> = None;
    loop {
        shared.wake.notified().await;
        if let Some(last) = last {
            tokio::time::sleep_until(last + INTERVAL).await;
        }
        let closed = shared.closed.load(Ordering::Acquire);
        let batch = shared
            .buffer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if !batch.is_empty() {
            last = Some(Instant::now());
        }
        for piece in batch {
            send(&pool, &piece).await;
        }
        if closed {
            return;
        }
    }
}

async fn send(pool: &PgPool, piece: &TokenPiece) {
    let payload = match serde_json::to_string(piece) {
        Ok(payload) if payload.len() <= MAX_PAYLOAD => payload,
        Ok(payload) => {
            tracing::debug!(bytes = payload.len(), "a token payload too long, not sent");
            return;
        }
        Err(e) => {
            tracing::debug!(error = %e, "a token payload did not serialise");
            return;
        }
    };
    if let Err(e) = store::summaries::notify_tokens(pool, TOKENS_CHANNEL, &payload).await {
        tracing::debug!(summary = %piece.summary, error = format!("{e:#}"), "a summary's tokens were not sent");
    }
}

/// The pieces not sent yet, and where the sent text stands.
struct Buffer {
    summary: Uuid,
    owner: Uuid,
    attempt: i32,
    text: String,
    restart: bool,
    seq: u64,
    offset: u64,
}

impl Buffer {
    fn new(summary: Uuid, owner: Uuid, attempt: i32) -> Self {
        Self {
            summary,
            owner,
            attempt,
            text: String::new(),
            restart: false,
            seq: 0,
            offset: 0,
        }
    }

    fn push(&mut self, piece: Piece) {
        match piece {
            Piece::Text(text) => self.text.push_str(&text),
            Piece::Restart => {
                self.text.clear();
                // Nothing sent since the last restart: the listener has nothing to drop.
                if self.offset > 0 {
                    self.restart = true;
                }
            }
        }
    }

    /// The notifications to send for what is buffered, in order.
    fn take(&mut self) -> Vec<TokenPiece> {
        let restart = std::mem::take(&mut self.restart);
        let text = std::mem::take(&mut self.text);
        if restart {
            self.offset = 0;
        }
        let mut parts = split_for_payload(&text, TEXT_BUDGET);
        if restart && parts.is_empty() {
            parts.push(String::new());
        }
        let mut out = Vec::with_capacity(parts.len());
        for (i, text) in parts.into_iter().enumerate() {
            let chars = text.chars().count() as u64;
            out.push(TokenPiece {
                summary: self.summary,
                owner: self.owner,
                attempt: self.attempt,
                seq: self.seq,
                offset: self.offset,
                text,
                restart: restart && i == 0,
            });
            self.seq += 1;
            self.offset += chars;
        }
        out
    }
}

/// `text` cut at character boundaries into parts of at most `budget` bytes once escaped as a
/// JSON string.
fn split_for_payload(text: &str, budget: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut part = String::new();
    let mut used = 0;
    for c in text.chars() {
        let cost = match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if u32::from(c) < 0x20 => 6,
            c => c.len_utf8(),
        };
        if used + cost > budget && !part.is_empty() {
            parts.push(std::mem::take(&mut part));
            used = 0;
        }
        part.push(c);
        used += cost;
    }
    if !part.is_empty() {
        parts.push(part);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer() -> Buffer {
        Buffer::new(Uuid::now_v7(), Uuid::now_v7(), 2)
    }

    #[test]
    fn buffered_pieces_go_out_as_one_with_offsets_and_sequence_numbers() {
        let mut buffer = buffer();
        buffer.push(Piece::Text("The cat".into()));
        buffer.push(Piece::Text(" sat.".into()));

        let first = buffer.take();
        buffer.push(Piece::Text(" Then it left.".into()));
        let second = buffer.take();

        assert_eq!(first.len(), 1);
        assert_eq!((first[0].seq, first[0].offset), (0, 0));
        assert_eq!(first[0].text, "The cat sat.");
        assert_eq!((second[0].seq, second[0].offset), (1, 12));
        assert!(buffer.take().is_empty(), "nothing new, nothing sent");
    }

    #[test]
    fn a_restart_is_sent_only_when_text_was_sent_and_starts_offsets_over() {
        let mut buffer = buffer();
        buffer.push(Piece::Text("unsent".into()));
        buffer.push(Piece::Restart);
        buffer.push(Piece::Text("Fresh".into()));
        let quiet = buffer.take();
        buffer.push(Piece::Restart);
        buffer.push(Piece::Text("Again".into()));

        let restarted = buffer.take();

        assert_eq!(quiet.len(), 1);
        assert_eq!((quiet[0].text.as_str(), quiet[0].restart), ("Fresh", false));
        assert_eq!(restarted.len(), 1);
        assert_eq!(restarted[0].text, "Again");
        assert!(restarted[0].restart);
        assert_eq!((restarted[0].seq, restarted[0].offset), (1, 0));
    }

    #[test]
    fn long_text_is_split_at_char_boundaries_into_payloads_under_the_limit() {
        let text = "é\"\n\u{1}😀 ".repeat(2000);
        let mut buffer = buffer();
        buffer.push(Piece::Text(text.clone()));

        let pieces = buffer.take();

        assert!(pieces.len() > 1);
        for piece in &pieces {
            let payload = serde_json::to_string(piece).unwrap();
            assert!(payload.len() <= MAX_PAYLOAD, "{}", payload.len());
        }
        let joined: String = pieces.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(joined, text);
        let last = pieces.last().unwrap();
        assert_eq!(
            last.offset as usize + last.text.chars().count(),
            text.chars().count()
        );
    }
}
