//! A slow HTTP/1.1 server on loopback, written on raw TCP so that it sees exactly when a client
//! gives up: it reads a request, waits before answering, and records whether the client closed
//! the connection during the wait. It serves pages (`GET /page/{n}?ms={wait}`) for Chromium and
//! chat completions (`POST /v1/chat/completions`, waiting `default_wait`) in the wire format
//! of OpenAI-compatible APIs for the summariser.

// Shared by the scrape and summarise test binaries; each uses part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What became of one request that reached the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// The server is still waiting.
    Waiting,
    /// The client closed the connection before the answer.
    Dropped,
    /// The answer was sent.
    Answered,
}

/// The running server; stops when dropped.
pub struct SlowServer {
    pub addr: SocketAddr,
    fates: Arc<Mutex<BTreeMap<String, Vec<Fate>>>>,
    server: JoinHandle<()>,
}

impl SlowServer {
    /// Start on 127.0.0.1 at a free port; chat completions wait `default_wait`.
    pub async fn start(default_wait: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
        let addr = listener.local_addr().expect("an address");
        let fates = Arc::new(Mutex::new(BTreeMap::new()));
        let shared = fates.clone();
        let server = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, shared.clone(), default_wait));
            }
        });
        Self {
            addr,
            fates,
            server,
        }
    }

    /// The address of page `n`, answered after `wait`.
    pub fn page(&self, n: usize, wait: Duration) -> String {
        format!("http://{}/page/{n}?ms={}", self.addr, wait.as_millis())
    }

    /// The API base for a provider, e.g. `http://127.0.0.1:40000/v1`.
    pub fn api_base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// What happened to each request of `key` (a page's path, or the chat document's marker).
    pub fn fates(&self, key: &str) -> Vec<Fate> {
        let fates = self.fates.lock().expect("the log");
        fates.get(key).cloned().unwrap_or_default()
    }
}

impl Drop for SlowServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(
    mut socket: TcpStream,
    fates: Arc<Mutex<BTreeMap<String, Vec<Fate>>>>,
    default_wait: Duration,
) {
    let Some((head, body)) = read_request(&mut socket).await else {
        return;
    };
    let line = head.lines().next().unwrap_or_default().to_string();
    let target = line.split(' ').nth(1).unwrap_or_default().to_string();
    let (key, wait, response) = if target.starts_with("/page/") {
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let ms: u64 = query
            .strip_prefix("ms=")
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(0);
        let html =
            format!("<html><head><title>{path}</title></head><body>Page {path}.</body></html>");
        let wait = Duration::from_millis(ms);
        (path.to_string(), wait, answer("text/html", &html))
    } else if target.starts_with("/v1/chat/completions") {
        // The document's first line names it (`doc-{n}`), so each summary has its own log.
        let key = body
            .split("doc-")
            .nth(1)
            .map(|rest| {
                format!(
                    "doc-{}",
                    rest.chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>()
                )
            })
            .unwrap_or_default();
        let completion = json!({
            "id": "chatcmpl-slow", "object": "chat.completion", "created": 1_700_000_000,
            "model": "slow",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": format!("Summary of {key}.")}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110},
        });
        (
            key,
            default_wait,
            answer("application/json", &completion.to_string()),
        )
    } else {
        let _ = socket
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        return;
    };
    let slot = {
        let mut fates = fates.lock().expect("the log");
        let list = fates.entry(key.clone()).or_default();
        list.push(Fate::Waiting);
        list.len() - 1
    };
    let mut probe = [0u8; 256];
    let fate = tokio::select! {
        _ = tokio::time::sleep(wait) => {
            let _ = socket.write_all(response.as_bytes()).await;
            Fate::Answered
        }
        // Clients do not half-close after a request: end of stream means they gave up.
        _ = closed(&mut socket, &mut probe) => Fate::Dropped,
    };
    fates.lock().expect("the log").entry(key).or_default()[slot] = fate;
}

/// Wait until the peer closes (reads return 0 or fail); stray bytes are ignored.
async fn closed(socket: &mut TcpStream, buf: &mut [u8]) {
    loop {
        match socket.read(buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => continue,
        }
    }
}

/// The head and body of one request, or `None` when the client left before sending one.
async fn read_request(socket: &mut TcpStream) -> Option<(String, String)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let end = loop {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..end]).to_string();
    let length: usize = (head.lines())
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < end + length {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    Some((head, String::from_utf8_lossy(&data[end..]).to_string()))
}

fn answer(content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}
