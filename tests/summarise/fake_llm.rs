//! A local stand-in for an OpenAI-compatible API: answers POST /v1/chat/completions in the real
//! wire format with a scripted behaviour, and records every request it receives. A request
//! with `stream: true` gets server-sent events (`data: {chunk}` … `data: [DONE]`) and must ask
//! for the usage (`stream_options.include_usage`), as OpenAI's API would be asked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::SinkExt;
use futures::channel::mpsc;
use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Json};
use poem::{Body, EndpointExt, IntoResponse, Request, Response, Route, handler, post};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// What the fake provider does with the next request.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// 200 with this text as the assistant's message.
    Answer(String),
    /// 200 with these texts in turn, one per request received (the last one repeats).
    // Used by the extraction tests in tests/api, which share this file.
    #[allow(dead_code)]
    Answers(Vec<String>),
    /// 200 after this long (beyond the provider's timeout in tests).
    Slow(Duration),
    /// 500 with a plain-text body.
    ServerError,
    /// 429 with `Retry-After` in seconds.
    RateLimited(u64),
    /// 401 invalid_api_key.
    BadKey,
    /// 400 context_length_exceeded.
    ContextTooLong,
    /// 200 whose message content is empty.
    Empty,
    /// 200 whose body is not a chat completion.
    Malformed,
    /// 200 with this text, stopped at the token limit (`finish_reason: "length"`).
    Truncated(String),
    /// Streamed (only to `stream: true`): these pieces with a pause between them, then
    /// `finish_reason: "stop"`, the usage and `[DONE]`.
    Stream {
        /// The answer's text, piece by piece.
        pieces: Vec<String>,
        /// The pause before each piece after the first.
        gap: Duration,
    },
    /// Streamed: these pieces, then the connection is dropped mid-stream.
    StreamThenDrop(Vec<String>),
    /// Streamed: `before`, then nothing until [`FakeLlm::release`], then `after` and the end;
    /// `gap` before each piece after the first.
    StreamHeld {
        /// Sent before the hold.
        before: Vec<String>,
        /// Sent once released.
        after: Vec<String>,
        /// The pause before each piece after the first.
        gap: Duration,
    },
}

/// One request as the fake provider received it.
#[derive(Clone, Debug)]
pub struct Received {
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The JSON body.
    pub body: Value,
}

impl Received {
    /// The content of the message with this role.
    pub fn message(&self, role: &str) -> String {
        let messages = self.body["messages"].as_array().expect("a messages array");
        let message = messages
            .iter()
            .find(|m| m["role"] == role)
            .unwrap_or_else(|| panic!("no {role} message in {messages:?}"));
        message["content"]
            .as_str()
            .expect("text content")
            .to_owned()
    }
}

struct State {
    behaviour: Mutex<Behaviour>,
    received: Mutex<Vec<Received>>,
    gate: Arc<Semaphore>,
}

/// The running fake provider; stops when dropped.
pub struct FakeLlm {
    state: Arc<State>,
    base_url: String,
    server: JoinHandle<()>,
}

impl FakeLlm {
    /// Starts a fake provider on 127.0.0.1 at a free port.
    pub async fn start(behaviour: Behaviour) -> Self {
        let state = Arc::new(State {
            behaviour: Mutex::new(behaviour),
            received: Mutex::new(Vec::new()),
            gate: Arc::new(Semaphore::new(0)),
        });
        let app = Route::new()
            .at("/v1/chat/completions", post(chat))
            .data(state.clone());
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("binding the fake provider");
        let addr = *acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("a TCP address");
        let server = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Self {
            state,
            base_url: format!("http://{addr}/v1"),
            server,
        }
    }

    /// The API base to configure, e.g. `http://127.0.0.1:40000/v1`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Changes what the next requests get.
    pub fn set(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().expect("the behaviour") = behaviour;
    }

    /// Lets one held stream ([`Behaviour::StreamHeld`]) go on.
    pub fn release(&self) {
        self.state.gate.add_permits(1);
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("the request log").clone()
    }

    /// How many requests arrived.
    pub fn count(&self) -> usize {
        self.state.received.lock().expect("the request log").len()
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[handler]
async fn chat(req: &Request, Json(body): Json<Value>, state: Data<&Arc<State>>) -> Response {
    let authorization = req.header("authorization").map(str::to_owned);
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    let streamed = body["stream"] == true;
    // What a real provider needs to send the usage at the end of a stream.
    let usage_asked = body["stream_options"]["include_usage"] == true;
    state
        .received
        .lock()
        .expect("the request log")
        .push(Received {
            authorization,
            body,
        });
    let nth = state.received.lock().expect("the request log").len() - 1;
    let behaviour = state.behaviour.lock().expect("the behaviour").clone();
    if streamed && !usage_asked {
        return error(
            StatusCode::BAD_REQUEST,
            "stream_options.include_usage is not set",
            "invalid_request_error",
            "fake_check_failed",
        );
    }
    let answer = |text: &str, finish_reason: &'static str| match streamed {
        true => stream(
            &model,
            vec![text.to_owned()],
            Duration::ZERO,
            None,
            End::Finish(finish_reason),
        ),
        false => completion(&model, text, finish_reason),
    };
    match behaviour {
        Behaviour::Answer(text) => answer(&text, "stop"),
        Behaviour::Answers(texts) => {
            let text = texts.get(nth).or(texts.last()).cloned().unwrap_or_default();
            answer(&text, "stop")
        }
        Behaviour::Slow(pause) => {
            tokio::time::sleep(pause).await;
            answer("Too late to matter.", "stop")
        }
        Behaviour::Stream { .. } | Behaviour::StreamThenDrop(_) | Behaviour::StreamHeld { .. }
            if !streamed =>
        {
            error(
                StatusCode::BAD_REQUEST,
                "this fake streams only when asked to",
                "invalid_request_error",
                "fake_check_failed",
            )
        }
        Behaviour::Stream { pieces, gap } => stream(&model, pieces, gap, None, End::Finish("stop")),
        Behaviour::StreamThenDrop(pieces) => {
            stream(&model, pieces, Duration::ZERO, None, End::Drop)
        }
        Behaviour::StreamHeld { before, after, gap } => {
            let held = Some((before.len(), state.gate.clone()));
            let pieces = before.into_iter().chain(after).collect();
            stream(&model, pieces, gap, held, End::Finish("stop"))
        }
        Behaviour::ServerError => Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body("upstream exploded"),
        Behaviour::RateLimited(seconds) => error(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit reached for requests",
            "requests",
            "rate_limit_exceeded",
        )
        .with_header("retry-after", seconds.to_string())
        .into_response(),
        Behaviour::BadKey => error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided",
            "invalid_request_error",
            "invalid_api_key",
        ),
        Behaviour::ContextTooLong => error(
            StatusCode::BAD_REQUEST,
            "This model's maximum context length is 8192 tokens",
            "invalid_request_error",
            "context_length_exceeded",
        ),
        Behaviour::Empty => answer("", "stop"),
        Behaviour::Malformed => Response::builder()
            .status(StatusCode::OK)
            .content_type("application/json")
            .body(r#"{"choices": "not a list"}"#),
        Behaviour::Truncated(text) => answer(&text, "length"),
    }
}

fn completion(model: &str, text: &str, finish_reason: &str) -> Response {
    Json(json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": finish_reason,
        }],
        "usage": usage(),
    }))
    .into_response()
}

fn error(status: StatusCode, message: &str, kind: &str, code: &str) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    Json(body).with_status(status).into_response()
}

/// How a streamed answer ends.
enum End {
    /// A last chunk with this finish reason, the usage, then `[DONE]`.
    Finish(&'static str),
    /// The connection breaks.
    Drop,
}

/// A streamed answer: one chunk per piece, `gap` before each after the first, waiting after
/// the first `held.0` pieces until `held.1` gives a permit.
fn stream(
    model: &str,
    pieces: Vec<String>,
    gap: Duration,
    held: Option<(usize, Arc<Semaphore>)>,
    end: End,
) -> Response {
    let (mut events, body) = mpsc::channel::<Result<String, std::io::Error>>(16);
    let model = model.to_owned();
    tokio::spawn(async move {
        let chunk = |delta: Value, finish_reason: Value, usage: Value| {
            let choices = match delta {
                Value::Null => json!([]),
                delta => json!([{"index": 0, "delta": delta, "finish_reason": finish_reason}]),
            };
            let chunk = json!({
                "id": "chatcmpl-test", "object": "chat.completion.chunk",
                "created": 1_700_000_000, "model": model, "choices": choices, "usage": usage,
            });
            Ok(format!("data: {chunk}\n\n"))
        };
        for (i, piece) in pieces.iter().enumerate() {
            if let Some((at, gate)) = &held
                && *at == i
            {
                let Ok(permit) = gate.acquire().await else {
                    return;
                };
                permit.forget();
            }
            if i > 0 {
                tokio::time::sleep(gap).await;
            }
            let delta = json!({"role": "assistant", "content": piece});
            // A closed channel: the client went away, as a dropped call does.
            if events
                .send(chunk(delta, Value::Null, Value::Null))
                .await
                .is_err()
            {
                return;
            }
        }
        let tail = match end {
            End::Finish(reason) => vec![
                chunk(json!({}), json!(reason), Value::Null),
                chunk(Value::Null, Value::Null, usage()),
                Ok("data: [DONE]\n\n".to_owned()),
            ],
            End::Drop => vec![Err(std::io::Error::other("the fake drops the stream"))],
        };
        for event in tail {
            if events.send(event).await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .content_type("text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_bytes_stream(body))
}

fn usage() -> Value {
    json!({"prompt_tokens": 120, "completion_tokens": 17, "total_tokens": 137})
}
