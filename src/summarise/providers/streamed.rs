//! One chat completion asked for with `stream: true`: the server-sent events are read as they
//! come and each text delta is handed on at once, trimmed at both ends of the whole answer so
//! the pieces add up to exactly the checked text; the assembled answer is then checked like a
//! whole one. The call's timeout (the client's) covers the whole stream.

use async_openai::error::WrappedError;
use async_openai::types::chat::{
    ChatCompletionStreamOptions, CompletionUsage, CreateChatCompletionRequest,
    CreateChatCompletionStreamResponse, FinishReason,
};
use eventsource_stream::{EventStreamError, Eventsource};
use futures::StreamExt;
use reqwest::header::CONTENT_TYPE;

use super::answer::{answer_limit, check_text};
use super::endpoint::{Answer, CallError, Provider, classify, record_usage, retry_after};

impl Provider {
    /// The streamed exchange: `on_text` gets each new piece of the answer's text.
    pub(super) async fn exchange_streamed(
        &self,
        body: &CreateChatCompletionRequest,
        max_chars: usize,
        on_text: &mut (dyn FnMut(String) + Send),
        span: &tracing::Span,
    ) -> Result<Answer, CallError> {
        let body = CreateChatCompletionRequest {
            stream: Some(true),
            // The usage arrives in a last chunk only when asked for.
            stream_options: Some(ChatCompletionStreamOptions {
                include_usage: Some(true),
                ..Default::default()
            }),
            ..body.clone()
        };
        let sent = self
            .http
            .post(&self.url)
            .headers(self.headers.clone())
            .json(&body)
            .send();
        let response = sent.await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        span.record("http.response.status_code", i64::from(status.as_u16()));
        let retry_after = retry_after(response.headers());
        let is_stream = (response.headers().get(CONTENT_TYPE))
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        if !status.is_success() || !is_stream {
            let bytes = response
                .bytes()
                .await
                .map_err(|e| self.transport_error(&e))?;
            if !status.is_success() {
                return Err(classify(status, retry_after, &bytes));
            }
            // A provider that ignores `stream: true` sends one whole completion: checked as
            // usual, then handed on in one piece.
            let answer = self.read_answer(&bytes, max_chars, span)?;
            on_text(answer.text.clone());
            return Ok(answer);
        }

        let limit = answer_limit(max_chars);
        let mut events = response.bytes_stream().eventsource();
        let mut answer = Assembly::default();
        let mut trimmed = Trimmed::default();
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| match e {
                EventStreamError::Transport(e) => self.transport_error(&e),
                other => CallError::BadAnswer(format!("not an event stream: {other}")),
            })?;
            let data = event.data.trim();
            if data == "[DONE]" {
                answer.done = true;
                break;
            }
            if data.is_empty() {
                continue;
            }
            let delta = answer.add(parse_chunk(data)?);
            if let Some(piece) = trimmed.push(&delta) {
                on_text(piece);
            }
            // No need to wait for the rest of an answer that is already too long.
            if trimmed.chars > limit {
                return Err(CallError::BadAnswer(format!(
                    "{} characters, more than {limit}",
                    trimmed.chars
                )));
            }
        }
        if !answer.done && answer.finish_reason.is_none() {
            return Err(CallError::Unavailable {
                why: "the stream ended before the answer did".to_owned(),
                retry_after: None,
            });
        }
        let (tokens_in, tokens_out) = record_usage(span, &answer.model, answer.usage.as_ref());
        let text = check_text(
            Some(answer.refusal.as_str()),
            answer.finish_reason,
            &answer.text,
            max_chars,
        )
        .map_err(CallError::BadAnswer)?;
        Ok(Answer {
            text,
            model: self.model_or_configured(answer.model),
            tokens_in,
            tokens_out,
        })
    }
}

/// One `data:` line: a chunk, or an error the provider reports mid-stream.
fn parse_chunk(data: &str) -> Result<CreateChatCompletionStreamResponse, CallError> {
    serde_json::from_str(data).map_err(|e| match serde_json::from_str::<WrappedError>(data) {
        Ok(wrapped) => CallError::Unavailable {
            why: format!("an error in the stream: {}", wrapped.error),
            retry_after: None,
        },
        Err(_) => CallError::BadAnswer(format!("not a chat completion chunk: {e}")),
    })
}

/// The answer as its chunks arrive (the first choice only: one is asked for).
#[derive(Default)]
struct Assembly {
    text: String,
    refusal: String,
    model: String,
    finish_reason: Option<FinishReason>,
    usage: Option<CompletionUsage>,
    done: bool,
}

impl Assembly {
    /// Adds a chunk; returns its new text.
    fn add(&mut self, chunk: CreateChatCompletionStreamResponse) -> String {
        if self.model.is_empty() {
            self.model = chunk.model;
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        let Some(choice) = chunk.choices.into_iter().find(|c| c.index == 0) else {
            return String::new();
        };
        if let Some(refusal) = choice.delta.refusal {
            self.refusal.push_str(&refusal);
        }
        if choice.finish_reason.is_some() {
            self.finish_reason = choice.finish_reason;
        }
        let delta = choice.delta.content.unwrap_or_default();
        self.text.push_str(&delta);
        delta
    }
}

/// The answer's text handed on without its leading and trailing whitespace (as the checked
/// answer is trimmed): whitespace is held back until text follows it.
#[derive(Default)]
struct Trimmed {
    started: bool,
    held: String,
    /// Characters handed on so far.
    chars: usize,
}

impl Trimmed {
    /// The piece to hand on for this delta, if any.
    fn push(&mut self, delta: &str) -> Option<String> {
        let delta = if self.started {
            delta
        } else {
            delta.trim_start()
        };
        let body = delta.trim_end();
        if body.is_empty() {
            self.held.push_str(delta);
            return None;
        }
        self.started = true;
        let mut piece = std::mem::take(&mut self.held);
        piece.push_str(body);
        self.held.push_str(&delta[body.len()..]);
        self.chars += piece.chars().count();
        Some(piece)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimmed_pieces_add_up_to_the_trimmed_answer() {
        let deltas = ["", " \n ", "The", " cat ", "\n", " sat.", "  ", "\n"];
        let mut trimmed = Trimmed::default();

        let pieces: Vec<String> = deltas.iter().filter_map(|d| trimmed.push(d)).collect();

        assert_eq!(pieces, ["The", " cat", " \n sat."]);
        assert_eq!(pieces.concat(), deltas.concat().trim());
        assert_eq!(trimmed.chars, deltas.concat().trim().chars().count());
    }

    #[test]
    fn an_error_in_the_stream_is_told_apart_from_garbage() {
        let error = r#"{"error": {"message": "overloaded", "type": "server_error"}}"#;

        assert!(matches!(
            parse_chunk(error),
            Err(CallError::Unavailable { why, .. }) if why.contains("overloaded")
        ));
        assert!(matches!(
            parse_chunk("{\"nonsense\": 1}"),
            Err(CallError::BadAnswer(_))
        ));
    }
}
