//! A small Server-Sent Events client over reqwest, reading frames as the server flushes them.

use std::time::Duration;

use reqwest::Response;
use serde_json::Value;

/// One SSE event as received.
#[derive(Debug, Clone)]
pub struct Sse {
    pub id: Option<i64>,
    pub event: String,
    pub data: Value,
}

/// An open stream.
pub struct SseStream {
    resp: Response,
    buf: String,
}

impl SseStream {
    /// Wrap a response that must be a 200 `text/event-stream`.
    pub fn new(resp: Response) -> Self {
        assert_eq!(resp.status().as_u16(), 200, "stream status");
        let ct = resp.headers()["content-type"].to_str().unwrap_or_default();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Self {
            resp,
            buf: String::new(),
        }
    }

    /// The next event with data (comments and `retry:` skipped), or `None` at the end of the
    /// stream or after `within` without one.
    pub async fn next(&mut self, within: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(event) = self.take() {
                return Some(event);
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk())
                .await
                .ok()?;
            match chunk.expect("reading the stream") {
                Some(bytes) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                None => return self.take(),
            }
        }
    }

    /// The next event, which must come within 10 s.
    pub async fn expect(&mut self) -> Sse {
        self.next(Duration::from_secs(10))
            .await
            .expect("an event within 10 s")
    }

    /// Events until one satisfies `done` (included), within `within`.
    pub async fn until(&mut self, within: Duration, done: impl Fn(&Sse) -> bool) -> Vec<Sse> {
        let deadline = tokio::time::Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self
                .next(left)
                .await
                .unwrap_or_else(|| panic!("stream ended or timed out after {seen:#?}"));
            let stop = done(&event);
            seen.push(event);
            if stop {
                return seen;
            }
        }
    }

    fn take(&mut self) -> Option<Sse> {
        loop {
            let end = self.buf.find("\n\n")?;
            let block: String = self.buf.drain(..end + 2).collect();
            let (mut id, mut event, mut data) = (None, String::from("message"), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            if data.is_empty() {
                continue;
            }
            let data = serde_json::from_str(&data).expect("event data is JSON");
            return Some(Sse { id, event, data });
        }
    }
}
