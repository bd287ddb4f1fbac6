//! A fleet of Server-Sent Events clients for `bench_events`: each opens `GET /v1/events`,
//! waits for `hello`, then reads the stream chunk by chunk and counts its events (`id:`
//! lines). A sample of the clients also parses every event and times it from its `at` (the
//! changing transaction's `now()`) to the moment its last byte arrived. The other clients
//! only count, so that the load generator stays cheap next to the daemon on the same cores.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Streams opened at once (authentication takes a database connection each).
const OPENING: usize = 64;
/// How long every client may take to receive `hello`.
const OPEN_TIMEOUT: Duration = Duration::from_secs(120);
/// An event frame starts with its number; every frame but the first follows a blank line.
const EVENT: &[u8] = b"\nid: ";
/// The server's last frame when it ends a stream.
const CLOSE: &[u8] = b"\nevent: close\n";
/// Bytes kept from the previous chunk to find the patterns across chunk boundaries.
const CARRY: usize = 16;

/// What all clients of a fleet share: progress, for waiting until delivery settles.
#[derive(Default)]
pub struct Shared {
    /// Events received by all clients.
    pub events: AtomicU64,
    /// Microseconds from the fleet's start to the last chunk any client received.
    pub last_receipt_us: AtomicU64,
    /// The head each client's `hello` announced (-1 before it came), by client.
    pub hellos: Mutex<Vec<i64>>,
}

impl Shared {
    /// The heads the clients' `hello`s announced, by client.
    pub fn hellos(&self) -> Vec<i64> {
        self.hellos.lock().map(|h| h.clone()).unwrap_or_default()
    }
}

/// One client's figures when the fleet closes.
#[derive(Default)]
pub struct ClientStats {
    /// The head its `hello` announced.
    pub hello_head: i64,
    /// Events received.
    pub events: u64,
    /// Event `at` → receipt, in ms (timed clients only).
    pub latencies_ms: Vec<f64>,
    /// Why the server closed the stream (`close` frame), or how it ended otherwise.
    pub closed: Option<String>,
}

/// Open clients, each reading its stream until [`Fleet::close`].
pub struct Fleet {
    /// Progress of all clients.
    pub shared: Arc<Shared>,
    /// When the fleet started opening.
    pub epoch: Instant,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<ClientStats>>,
}

impl Fleet {
    /// Open `clients` streams at `url`, client `i` with `tokens[i % tokens.len()]`, the first
    /// `timed` of them timing every event; returns once every one has received `hello`.
    pub async fn open(
        url: &str,
        tokens: &[String],
        clients: usize,
        timed: usize,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(!tokens.is_empty(), "no token to open streams with");
        let http = reqwest::Client::builder()
            .http1_only()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(0)
            .build()
            .context("building the HTTP client")?;
        let shared = Arc::new(Shared {
            hellos: Mutex::new(vec![-1; clients]),
            ..Shared::default()
        });
        let stop = CancellationToken::new();
        let epoch = Instant::now();
        let opening = Arc::new(Semaphore::new(OPENING));
        let mut tasks = Vec::with_capacity(clients);
        let mut readies = Vec::with_capacity(clients);
        for i in 0..clients {
            let (ready, opened) = oneshot::channel();
            let client = Client {
                http: http.clone(),
                url: url.to_string(),
                index: i,
                token: tokens[i % tokens.len()].clone(),
                timed: i < timed,
                shared: shared.clone(),
                epoch,
                stop: stop.clone(),
            };
            tasks.push(tokio::spawn(client.run(opening.clone(), ready)));
            readies.push(opened);
        }
        let fleet = Self {
            shared,
            epoch,
            stop,
            tasks,
        };
        let all = async {
            for opened in readies {
                opened.await.context("a client task ended")??;
            }
            anyhow::Ok(())
        };
        match tokio::time::timeout(OPEN_TIMEOUT, all).await {
            Ok(Ok(())) => Ok(fleet),
            Ok(Err(e)) => {
                fleet.close().await;
                Err(e)
            }
            Err(_) => {
                fleet.close().await;
                bail!("{clients} streams did not all open within {OPEN_TIMEOUT:?}")
            }
        }
    }

    /// Stop every client and collect its figures.
    pub async fn close(self) -> Vec<ClientStats> {
        self.stop.cancel();
        let mut stats = Vec::with_capacity(self.tasks.len());
        for task in self.tasks {
            stats.push(task.await.unwrap_or_else(|e| ClientStats {
                closed: Some(format!("task failed: {e}")),
                ..ClientStats::default()
            }));
        }
        stats
    }
}

struct Client {
    http: reqwest::Client,
    url: String,
    index: usize,
    token: String,
    timed: bool,
    shared: Arc<Shared>,
    epoch: Instant,
    stop: CancellationToken,
}

impl Client {
    async fn run(
        self,
        opening: Arc<Semaphore>,
        ready: oneshot::Sender<anyhow::Result<()>>,
    ) -> ClientStats {
        let mut stats = ClientStats::default();
        let permit = opening.acquire_owned().await;
        let (mut resp, rest) = match self.hello(&mut stats).await {
            Ok(opened) => opened,
            Err(e) => {
                stats.closed = Some(format!("opening failed: {e:#}"));
                let _ = ready.send(Err(e));
                return stats;
            }
        };
        drop(permit);
        if let Ok(mut hellos) = self.shared.hellos.lock() {
            hellos[self.index] = stats.hello_head;
        }
        let _ = ready.send(Ok(()));
        let mut reader = Reader::default();
        self.take(&mut reader, &mut stats, &rest);
        loop {
            let chunk = tokio::select! {
                chunk = resp.chunk() => chunk,
                _ = self.stop.cancelled() => break,
            };
            match chunk {
                Ok(Some(bytes)) => self.take(&mut reader, &mut stats, &bytes),
                Ok(None) => {
                    stats
                        .closed
                        .get_or_insert_with(|| "ended without close".into());
                    break;
                }
                Err(e) => {
                    stats
                        .closed
                        .get_or_insert_with(|| format!("read failed: {e}"));
                    break;
                }
            }
        }
        stats
    }

    /// Send the request and read up to the end of `hello`; returns the response and the bytes
    /// after `hello`.
    async fn hello(&self, stats: &mut ClientStats) -> anyhow::Result<(reqwest::Response, Vec<u8>)> {
        let mut resp = (self.http.get(&self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .context("sending GET /v1/events")?;
        if resp.status() != reqwest::StatusCode::OK {
            bail!("GET /v1/events answered {}", resp.status());
        }
        let mut buf = Vec::new();
        loop {
            let chunk = (resp.chunk().await).context("reading the stream")?;
            let chunk = chunk.context("the stream ended before hello")?;
            buf.extend_from_slice(&chunk);
            let text = String::from_utf8_lossy(&buf);
            let Some(start) = text.find("event: hello\ndata: ") else {
                continue;
            };
            let data = &text[start + "event: hello\ndata: ".len()..];
            let Some(end) = data.find("\n\n") else {
                continue;
            };
            let hello: serde_json::Value =
                serde_json::from_str(&data[..end]).context("parsing hello")?;
            stats.hello_head = hello["head"].as_i64().context("hello without a head")?;
            // Keep the blank line: the next frame's `id:` follows it.
            let rest = buf[buf.len() - (data.len() - end)..].to_vec();
            return Ok((resp, rest));
        }
    }

    /// Count (and, timed, time) the events in `bytes`.
    fn take(&self, reader: &mut Reader, stats: &mut ClientStats, bytes: &[u8]) {
        let received = Utc::now();
        let events = if self.timed {
            reader.timed(bytes, received, stats)
        } else {
            let n = reader.count(EVENT, bytes);
            if reader.count(CLOSE, bytes) > 0 {
                stats.closed = Some(close_reason(bytes));
            }
            reader.carry(bytes);
            n
        };
        stats.events += events;
        self.shared.events.fetch_add(events, Ordering::Relaxed);
        let us = self.epoch.elapsed().as_micros() as u64;
        self.shared.last_receipt_us.fetch_max(us, Ordering::Relaxed);
    }
}

/// A stream's unread tail: the last bytes (counting) or the incomplete frame (timing).
#[derive(Default)]
struct Reader {
    tail: Vec<u8>,
}

impl Reader {
    /// Occurrences of `pattern` ending in `bytes`, including those begun in the carried tail.
    fn count(&self, pattern: &[u8], bytes: &[u8]) -> u64 {
        let mut n = occurrences(pattern, bytes);
        let kept = &self.tail[self.tail.len().saturating_sub(pattern.len() - 1)..];
        let mut edge = kept.to_vec();
        edge.extend_from_slice(&bytes[..bytes.len().min(pattern.len() - 1)]);
        n += (0..kept.len())
            .filter(|&i| edge[i..].starts_with(pattern))
            .count() as u64;
        n
    }

    fn carry(&mut self, bytes: &[u8]) {
        self.tail
            .extend_from_slice(&bytes[bytes.len().saturating_sub(CARRY)..]);
        let excess = self.tail.len().saturating_sub(CARRY);
        self.tail.drain(..excess);
    }

    /// Parse every complete frame; returns the events among them.
    fn timed(&mut self, bytes: &[u8], received: DateTime<Utc>, stats: &mut ClientStats) -> u64 {
        self.tail.extend_from_slice(bytes);
        let mut events = 0;
        let mut start = 0;
        while let Some(len) = find(b"\n\n", &self.tail[start..]) {
            let frame = &self.tail[start..start + len];
            start += len + 2;
            let frame = frame.strip_prefix(b"\n").unwrap_or(frame);
            if frame.starts_with(b"id: ") {
                events += 1;
                if let Some(at) = event_at(frame) {
                    let ms = (received - at).num_microseconds().unwrap_or(0) as f64 / 1000.0;
                    stats.latencies_ms.push(ms);
                }
            } else if frame.starts_with(b"event: close\n") {
                stats.closed = Some(close_reason(frame));
            }
        }
        // Keep the blank line's first byte: the next frame's pattern begins with it.
        self.tail
            .drain(..start.saturating_sub(1).min(self.tail.len()));
        events
    }
}

/// The `at` of an event frame's JSON (`"at":"2026-12-05T08:00:00.123456+00:00"`).
fn event_at(frame: &[u8]) -> Option<DateTime<Utc>> {
    const KEY: &[u8] = b"\"at\":\"";
    let from = find(KEY, frame)? + KEY.len();
    let len = find(b"\"", &frame[from..])?;
    let text = std::str::from_utf8(&frame[from..from + len]).ok()?;
    Some(DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc))
}

/// The reason of a `close` frame in `bytes`, or `close` when it is cut.
fn close_reason(bytes: &[u8]) -> String {
    const KEY: &[u8] = b"\"reason\":\"";
    find(KEY, bytes)
        .and_then(|at| {
            let rest = &bytes[at + KEY.len()..];
            let len = find(b"\"", rest)?;
            Some(String::from_utf8_lossy(&rest[..len]).into_owned())
        })
        .unwrap_or_else(|| "close".into())
}

/// The first position of `pattern` in `bytes`.
fn find(pattern: &[u8], bytes: &[u8]) -> Option<usize> {
    let first = *pattern.first()?;
    let mut from = 0;
    while let Some(pos) = bytes[from..].iter().position(|&b| b == first) {
        let at = from + pos;
        if bytes[at..].starts_with(pattern) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// How many times `pattern` occurs in `bytes`.
fn occurrences(pattern: &[u8], bytes: &[u8]) -> u64 {
    let mut n = 0;
    let mut from = 0;
    while let Some(at) = find(pattern, &bytes[from..]) {
        n += 1;
        from += at + pattern.len();
    }
    n
}
