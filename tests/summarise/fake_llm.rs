//! A local stand-in for an OpenAI-compatible API: answers POST /v1/chat/completions in the real
//! wire format with a scripted behaviour, and records every request it receives.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Request, Response, Route, handler, post};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// What the fake provider does with the next request.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// 200 with this text as the assistant's message.
    Answer(String),
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
    state
        .received
        .lock()
        .expect("the request log")
        .push(Received {
            authorization,
            body,
        });
    let behaviour = state.behaviour.lock().expect("the behaviour").clone();
    match behaviour {
        Behaviour::Answer(text) => completion(&model, &text, "stop"),
        Behaviour::Slow(pause) => {
            tokio::time::sleep(pause).await;
            completion(&model, "Too late to matter.", "stop")
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
        Behaviour::Empty => completion(&model, "", "stop"),
        Behaviour::Malformed => Response::builder()
            .status(StatusCode::OK)
            .content_type("application/json")
            .body(r#"{"choices": "not a list"}"#),
        Behaviour::Truncated(text) => completion(&model, &text, "length"),
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
        "usage": {"prompt_tokens": 120, "completion_tokens": 17, "total_tokens": 137},
    }))
    .into_response()
}

fn error(status: StatusCode, message: &str, kind: &str, code: &str) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    Json(body).with_status(status).into_response()
}
