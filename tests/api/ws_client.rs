//! A small WebSocket client for `/v1/ws` over tokio-tungstenite, reading JSON messages,
//! Pings and the Close frame as the server sends them.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::TestApp;

/// An open `/v1/ws`.
pub struct Ws {
    pub socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What a connection receives: JSON messages, Pings, and the Close frame.
#[derive(Debug)]
pub enum Got {
    Json(Value),
    Ping,
    Close(u16, String),
}

pub fn request(app: &TestApp, path: &str, token: Option<&str>) -> http::Request<()> {
    let mut req = format!("ws://{}{path}", app.addr)
        .into_client_request()
        .expect("a request");
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().expect("a header value");
        req.headers_mut().insert("authorization", value);
    }
    req
}

impl Ws {
    pub async fn open(app: &TestApp, token: &str) -> Self {
        Self::open_path(app, "/v1/ws", Some(token)).await
    }

    pub async fn open_path(app: &TestApp, path: &str, token: Option<&str>) -> Self {
        let (socket, resp) = tokio_tungstenite::connect_async(request(app, path, token))
            .await
            .expect("the upgrade");
        assert_eq!(resp.status().as_u16(), 101);
        Self { socket }
    }

    pub async fn send(&mut self, message: Value) {
        self.send_raw(Message::text(message.to_string())).await;
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.socket.send(message).await.expect("sent");
    }

    /// The next message, Pings and Pongs included, within `within`.
    pub async fn next_any(&mut self, within: Duration) -> Option<Got> {
        loop {
            let message = tokio::time::timeout(within, self.socket.next())
                .await
                .ok()??
                .expect("reading the socket");
            return Some(match message {
                Message::Text(text) => Got::Json(serde_json::from_str(&text).expect("JSON")),
                Message::Ping(_) => Got::Ping,
                Message::Close(frame) => {
                    let frame = frame.expect("a close frame with a code");
                    Got::Close(frame.code.into(), frame.reason.to_string())
                }
                Message::Pong(_) => continue,
                other => panic!("unexpected {other:?}"),
            });
        }
    }

    /// The next JSON message (Pings skipped) within `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Value> {
        loop {
            match self.next_any(within).await? {
                Got::Json(value) => return Some(value),
                Got::Ping => continue,
                Got::Close(code, reason) => panic!("closed: {code} {reason}"),
            }
        }
    }

    pub async fn expect(&mut self) -> Value {
        self.next(Duration::from_secs(10))
            .await
            .expect("a message within 10 s")
    }

    /// Send `message` and return the reply, which must be of type `kind`. Numbered events
    /// before it are skipped: changes committed just before a subscribe may be numbered after
    /// the stream opened, and so arrive as new.
    pub async fn ask(&mut self, message: Value, kind: &str) -> Value {
        self.send(message).await;
        loop {
            let reply = self.expect().await;
            if reply["id"].is_i64() {
                continue;
            }
            assert_eq!(reply["type"], kind, "{reply}");
            return reply;
        }
    }

    /// Messages until one satisfies `done` (included), within `within`.
    pub async fn until(&mut self, within: Duration, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self
                .next(left)
                .await
                .unwrap_or_else(|| panic!("no match within {within:?} after {seen:#?}"));
            let stop = done(&message);
            seen.push(message);
            if stop {
                return seen;
            }
        }
    }
}

/// The `hello` after the first subscribe's ack; returns its head.
pub async fn subscribed(ws: &mut Ws, message: Value) -> i64 {
    ws.ask(message, "subscribed").await;
    let hello = ws.expect().await;
    assert_eq!(hello["type"], "hello", "{hello}");
    hello["head"].as_i64().expect("a head")
}
