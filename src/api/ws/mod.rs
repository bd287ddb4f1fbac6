//! `GET /v1/ws`: the live event stream over a WebSocket, for clients that change what they
//! follow without reconnecting. The caller is checked before the upgrade (a bearer token or
//! `?ticket=`, as for `/v1/events`); then small JSON messages select topics and resources
//! (`message`), and the same event objects as SSE's flow out. The server pings every
//! `events.keep_alive` and closes a client silent for twice that; one that does not read is
//! dropped as the SSE stream drops it (`slow_consumer`). Not in the OpenAPI spec, which cannot
//! describe WebSockets. Guide: docs/events.md, section WebSocket.

pub mod message;

use futures::{SinkExt, StreamExt};
use poem::http::header::{CONNECTION, UPGRADE};
use poem::http::{HeaderValue, StatusCode};
use poem::web::Data;
use poem::web::websocket::{CloseCode, Message, WebSocket, WebSocketConfig, WebSocketStream};
use poem::{IntoResponse, Request, Response, handler};
use tokio::time::{Instant, MissedTickBehavior, timeout};

use super::ApiState;
use super::auth;
use super::error::Problem;
use crate::domain::stream::Filter;
use crate::domain::users::Caller;
use crate::stream::{Frame, Subscription};
use crate::work::stream::Selection;
use message::{BadMessage, ClientMessage};

/// Largest message the socket reads at all; a larger one drops the connection. Up to this
/// size a message over `message::MAX_MESSAGE` is answered with an `error` instead.
const MAX_READ: usize = 1024 * 1024;

/// The upgrade: refused with problem+json before it happens (426 without `Upgrade:
/// websocket`, 401 without valid credentials).
#[handler]
pub async fn upgrade(
    req: &Request,
    socket: poem::Result<WebSocket>,
    state: Data<&ApiState>,
) -> Response {
    if !wants_websocket(req) {
        let mut response = Problem::new(
            StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            "GET /v1/ws is a WebSocket: open it with `Connection: Upgrade` and `Upgrade: \
             websocket` (any WebSocket client does); GET /v1/events streams the same events \
             as Server-Sent Events",
        )
        .into_http_response();
        let headers = response.headers_mut();
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        return response;
    }
    let socket = match socket {
        Ok(socket) => socket,
        Err(e) => {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!(
                    "not a WebSocket handshake ({e}): send `Sec-WebSocket-Version: 13` and a \
                     `Sec-WebSocket-Key`"
                ),
            )
            .into_http_response();
        }
    };
    let caller = match authenticate(req).await {
        Ok(caller) => caller,
        Err(e) => return refusal(e),
    };
    let state = state.0.clone();
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_READ))
        .max_frame_size(Some(MAX_READ));
    socket
        .config(config)
        .on_upgrade(move |socket| Connection::new(state, caller, socket).run())
        .into_response()
}

fn wants_websocket(req: &Request) -> bool {
    req.headers()
        .get_all(UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("websocket"))
}

/// The caller of a bearer token, else of `?ticket=`: the checks `/v1/events` runs.
async fn authenticate(req: &Request) -> poem::Result<Caller> {
    let bearer = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    if let Some(token) = bearer {
        return auth::caller_of_token(req, &token).await;
    }
    let query = req.uri().query().unwrap_or_default();
    let ticket = url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "ticket");
    if let Some((_, ticket)) = ticket {
        return auth::caller_of_ticket(req, &ticket).await;
    }
    Err(poem::Error::from_string(
        "send a bearer token (Authorization: Bearer wh_...) or a stream ticket \
         (?ticket=wht_..., from POST /v1/events/tickets)",
        StatusCode::UNAUTHORIZED,
    ))
}

/// A failed check as the API's problem+json, its detail kept.
fn refusal(error: poem::Error) -> Response {
    if error.is_from_response() {
        return error.into_response();
    }
    let status = error.status();
    let code = match status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        _ => "internal",
    };
    Problem::new(status, code, error.to_string()).into_http_response()
}

/// How a connection ends.
enum End {
    /// The client closed it or went away.
    Gone,
    /// The server closes it: a `close` message with this reason, then a Close frame.
    Closed(&'static str),
}

/// One upgraded connection.
struct Connection {
    state: ApiState,
    caller: Caller,
    socket: WebSocketStream,
    selection: Selection,
    /// What reaches the client now; `None`: nothing.
    filter: Option<Filter>,
    /// Opened by the first subscribe.
    subscription: Option<Subscription>,
    /// When the client last sent anything (a Pong included).
    heard: Instant,
}

impl Connection {
    fn new(state: ApiState, caller: Caller, socket: WebSocketStream) -> Self {
        Self {
            state,
            caller,
            socket,
            selection: Selection::default(),
            filter: None,
            subscription: None,
            heard: Instant::now(),
        }
    }

    async fn run(mut self) {
        let keep_alive = self.state.hub.config().keep_alive;
        let mut beat = tokio::time::interval_at(Instant::now() + keep_alive, keep_alive);
        beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let stopping = self.state.hub.stopping();
        let end = loop {
            let step = tokio::select! {
                incoming = self.socket.next() => match incoming {
                    Some(Ok(message)) => {
                        self.heard = Instant::now();
                        self.receive(message).await
                    }
                    Some(Err(_)) | None => Err(End::Gone),
                },
                frame = next_frame(&mut self.subscription) => match frame {
                    Some(Frame::Close { reason }) => Err(End::Closed(reason)),
                    Some(frame) => self.forward(frame).await,
                    // The stream's task ended without a reason: it failed.
                    None => Err(End::Closed("unavailable")),
                },
                _ = beat.tick() => {
                    if self.heard.elapsed() > keep_alive * 2 {
                        Err(End::Closed("heartbeat_timeout"))
                    } else {
                        self.send(Message::Ping(Vec::new())).await
                    }
                }
                _ = stopping.cancelled() => Err(End::Closed("shutting_down")),
            };
            if let Err(end) = step {
                break end;
            }
        };
        if let End::Closed(reason) = end {
            self.close(reason).await;
        }
    }

    /// Answer one message from the client.
    async fn receive(&mut self, message: Message) -> Result<(), End> {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                let bad = BadMessage {
                    detail: "send JSON text messages; binary ones are not read".into(),
                    field: None,
                };
                return self.send(Message::Text(bad.to_json())).await;
            }
            Message::Close(_) => return Err(End::Gone),
            // Pongs only tell the client is there; tungstenite answers pings itself.
            Message::Ping(_) | Message::Pong(_) => return Ok(()),
        };
        let reply = match message::parse(&text) {
            Ok(ClientMessage::Ping) => message::pong(),
            Ok(ClientMessage::Subscribe { query, since }) => {
                match self.selection.subscribe(&self.caller, query) {
                    Ok(filter) => {
                        self.filter = Some(filter);
                        self.open(since).await?;
                        message::ack("subscribed", self.selection.query())
                    }
                    Err(e) => BadMessage::from_work(e).to_json(),
                }
            }
            Ok(ClientMessage::Unsubscribe(query)) => {
                match self.selection.unsubscribe(&self.caller, query) {
                    Ok(filter) => {
                        self.filter = filter;
                        if let Some(subscription) = &self.subscription {
                            subscription.set_filter(self.filter.clone());
                        }
                        message::ack("unsubscribed", self.selection.query())
                    }
                    Err(e) => BadMessage::from_work(e).to_json(),
                }
            }
            Err(bad) => bad.to_json(),
        };
        self.send(Message::Text(reply)).await
    }

    /// Open the hub's stream at the first subscribe (resuming after `since`), or give the
    /// open one the new filter. A later `since` is ignored: the stream is already going.
    async fn open(&mut self, since: Option<i64>) -> Result<(), End> {
        if let Some(subscription) = &self.subscription {
            subscription.set_filter(self.filter.clone());
            return Ok(());
        }
        let Some(query) = self.selection.query().cloned() else {
            return Ok(());
        };
        match crate::work::stream::open(&self.state.hub, &self.caller, query, since).await {
            Ok(subscription) => {
                self.subscription = Some(subscription);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "opening a WebSocket's stream failed");
                Err(End::Closed("unavailable"))
            }
        }
    }

    /// Send a frame of the hub's stream, unless the filter changed since it was forwarded.
    async fn forward(&mut self, frame: Frame) -> Result<(), End> {
        if let Frame::Event(event) = &frame
            && !self.filter.as_ref().is_some_and(|f| f.matches(event))
        {
            return Ok(());
        }
        self.send(Message::Text(frame.parts().2)).await
    }

    /// Send one message; a client that does not take it within `events.slow_after` is slow.
    async fn send(&mut self, message: Message) -> Result<(), End> {
        let slow_after = self.state.hub.config().slow_after;
        match timeout(slow_after, self.socket.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Gone),
            Err(_) => Err(End::Closed("slow_consumer")),
        }
    }

    /// Say why in a `close` message, then close with the matching code; bounded, since a slow
    /// client may not take even that.
    async fn close(mut self, reason: &'static str) {
        let code = match reason {
            "slow_consumer" => CloseCode::Again,
            "shutting_down" | "heartbeat_timeout" => CloseCode::Away,
            _ => CloseCode::Error,
        };
        let slow_after = self.state.hub.config().slow_after;
        let text = Frame::Close { reason }.parts().2;
        let goodbye = async {
            self.socket.send(Message::Text(text)).await?;
            self.socket
                .send(Message::Close(Some((code, reason.to_owned()))))
                .await
        };
        let _ = timeout(slow_after, goodbye).await;
    }
}

/// The next frame of the stream, or never before the first subscribe.
async fn next_frame(subscription: &mut Option<Subscription>) -> Option<Frame> {
    match subscription {
        Some(subscription) => subscription.next().await,
        None => std::future::pending().await,
    }
}
