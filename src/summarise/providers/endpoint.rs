//! One provider's endpoint: its HTTP client and key, its cool-down, and one chat completion
//! call sorted into an answer or the kind of failure (the rule is in the parent module's docs).
//! The streamed variant of the exchange is in `streamed.rs`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_openai::config::{Config, OpenAIConfig};
use async_openai::error::WrappedError;
use async_openai::types::chat::{
    CompletionUsage, CreateChatCompletionRequest, CreateChatCompletionResponse,
};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;
use tracing::field::Empty;

use super::ProviderConfig;
use super::answer::check_answer;
use crate::domain;

pub(super) struct Provider {
    pub(super) config: ProviderConfig,
    pub(super) url: String,
    pub(super) headers: HeaderMap,
    pub(super) http: reqwest::Client,
    // A std Mutex: it is only held to read or set an instant, never across an await.
    cooling_until: Mutex<Option<Instant>>,
}

/// Why one call gave no usable answer (see the module docs for the rule).
pub(super) enum CallError {
    Unavailable {
        why: String,
        retry_after: Option<Duration>,
    },
    Misconfigured(String),
    Rejected(String),
    BadAnswer(String),
}

/// A checked answer from one call.
pub(super) struct Answer {
    pub(super) text: String,
    pub(super) model: String,
    pub(super) tokens_in: u32,
    pub(super) tokens_out: u32,
}

impl Provider {
    pub(super) fn new(config: ProviderConfig) -> anyhow::Result<Self> {
        if config.max_output_tokens == 0 {
            bail!("max_output_tokens must be above 0");
        }
        let key = read_key(&config.api_key_env)?;
        let openai = OpenAIConfig::new()
            .with_api_base(config.base_url.trim_end_matches('/'))
            // OpenAIConfig picks these up from OPENAI_* variables; none of them is ours to send.
            .with_org_id("")
            .with_project_id("")
            .with_api_key(key.as_ref().map_or("", |k| k.expose_secret()));
        let mut headers = HeaderMap::new();
        if let Some(key) = &key {
            // OpenAIConfig::headers() panics on a key that is not a valid header value.
            let mut bearer = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
                .with_context(|| format!("{} holds characters a key cannot", config.api_key_env))?;
            bearer.set_sensitive(true);
            headers = openai.headers();
            headers.insert(AUTHORIZATION, bearer);
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("workhorse/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            url: openai.url("/chat/completions"),
            config,
            headers,
            http,
            cooling_until: Mutex::new(None),
        })
    }

    /// How much longer this provider is skipped, if it is cooling down.
    pub(super) fn cooling_for(&self) -> Option<Duration> {
        let until = *self.cooling_until.lock().unwrap_or_else(|e| e.into_inner());
        until.and_then(|t| t.checked_duration_since(Instant::now()))
    }

    pub(super) fn cool_down(&self, pause: Duration) {
        *self.cooling_until.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Instant::now() + pause);
    }

    /// One chat completion, in its own span, with the answer checked. With `on_text` the answer
    /// is streamed and each piece of text handed to it as it arrives (see `streamed.rs`).
    pub(super) async fn call(
        &self,
        body: &CreateChatCompletionRequest,
        max_chars: usize,
        on_text: Option<&mut (dyn FnMut(String) + Send)>,
    ) -> Result<Answer, CallError> {
        // GenAI semantic conventions: a client span `chat {model}`; every provider speaks
        // OpenAI's wire format, hence the system name, and `provider` is the configured name.
        let target = url::Url::parse(&self.url).ok();
        let span = tracing::info_span!(
            "llm call",
            otel.name = format!("chat {}", self.config.model),
            otel.kind = "client",
            otel.status_code = Empty,
            provider = %self.config.name,
            model = %self.config.model,
            gen_ai.system = "openai",
            gen_ai.provider.name = "openai",
            gen_ai.operation.name = "chat",
            server.address = target.as_ref().and_then(|u| u.host_str()).unwrap_or_default(),
            server.port = target.as_ref().and_then(|u| u.port_or_known_default()).map_or(0, i64::from),
            gen_ai.request.model = %self.config.model,
            gen_ai.response.model = Empty,
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
            http.response.status_code = Empty,
            error.type = Empty,
        );
        let result = match on_text {
            None => {
                self.exchange(body, max_chars, &span)
                    .instrument(span.clone())
                    .await
            }
            Some(on_text) => {
                self.exchange_streamed(body, max_chars, on_text, &span)
                    .instrument(span.clone())
                    .await
            }
        };
        if let Err(e) = &result {
            let kind = match e {
                CallError::Unavailable { .. } => "unavailable",
                CallError::Misconfigured(_) => "misconfigured",
                CallError::Rejected(_) => "rejected",
                CallError::BadAnswer(_) => "bad_answer",
            };
            span.record("error.type", kind);
            span.record("otel.status_code", "ERROR");
        }
        result
    }

    async fn exchange(
        &self,
        body: &CreateChatCompletionRequest,
        max_chars: usize,
        span: &tracing::Span,
    ) -> Result<Answer, CallError> {
        let sent = self
            .http
            .post(&self.url)
            .headers(self.headers.clone())
            .json(body)
            .send();
        let response = sent.await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        span.record("http.response.status_code", i64::from(status.as_u16()));
        let retry_after = retry_after(response.headers());
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        if !status.is_success() {
            return Err(classify(status, retry_after, &bytes));
        }
        self.read_answer(&bytes, max_chars, span)
    }

    /// A whole (not streamed) chat completion's body, checked.
    pub(super) fn read_answer(
        &self,
        bytes: &[u8],
        max_chars: usize,
        span: &tracing::Span,
    ) -> Result<Answer, CallError> {
        let parsed: CreateChatCompletionResponse = serde_json::from_slice(bytes)
            .map_err(|e| CallError::BadAnswer(format!("not a chat completion: {e}")))?;
        let (tokens_in, tokens_out) = record_usage(span, &parsed.model, parsed.usage.as_ref());
        let text = check_answer(&parsed, max_chars).map_err(CallError::BadAnswer)?;
        Ok(Answer {
            text,
            model: self.model_or_configured(parsed.model),
            tokens_in,
            tokens_out,
        })
    }

    /// The model the provider names, else the configured one.
    pub(super) fn model_or_configured(&self, reported: String) -> String {
        if reported.is_empty() {
            self.config.model.clone()
        } else {
            reported
        }
    }

    pub(super) fn transport_error(&self, e: &reqwest::Error) -> CallError {
        let why = if e.is_timeout() {
            format!("no answer within {:?}", self.config.timeout)
        } else {
            let mut why = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                why.push_str(": ");
                why.push_str(&cause.to_string());
                source = cause.source();
            }
            why
        };
        CallError::Unavailable {
            why,
            retry_after: None,
        }
    }
}

/// Records the answering model and the usage (when reported) on the call's span; returns the
/// prompt and answer tokens, 0 each when not reported.
pub(super) fn record_usage(
    span: &tracing::Span,
    model: &str,
    usage: Option<&CompletionUsage>,
) -> (u32, u32) {
    span.record("gen_ai.response.model", model);
    let Some(usage) = usage else {
        return (0, 0);
    };
    span.record("gen_ai.usage.input_tokens", i64::from(usage.prompt_tokens));
    span.record(
        "gen_ai.usage.output_tokens",
        i64::from(usage.completion_tokens),
    );
    (usage.prompt_tokens, usage.completion_tokens)
}

fn read_key(env: &str) -> anyhow::Result<Option<SecretString>> {
    if env.trim().is_empty() {
        return Ok(None);
    }
    let key = std::env::var(env)
        .with_context(|| format!("the environment variable {env} (its API key) is not set"))?;
    if key.trim().is_empty() {
        bail!("the environment variable {env} (its API key) is empty");
    }
    Ok(Some(SecretString::from(key.trim().to_owned())))
}

/// Sorts a non-2xx reply by the rule in the module docs.
pub(super) fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> CallError {
    let detail = match serde_json::from_slice::<WrappedError>(body) {
        Ok(wrapped) => wrapped.error.to_string(),
        Err(_) => String::from_utf8_lossy(body).chars().take(300).collect(),
    };
    let why = format!("{status}: {}", detail.trim());
    match status.as_u16() {
        400 | 413 | 422 => CallError::Rejected(why),
        408 | 409 | 425 | 429 | 500..=599 => CallError::Unavailable { why, retry_after },
        _ => CallError::Misconfigured(why),
    }
}

/// `retry-after-ms` (OpenAI's), else `Retry-After` as seconds or an HTTP date.
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    domain::http::retry_after(header(RETRY_AFTER.as_str())?, chrono::Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_prefers_milliseconds_then_reads_retry_after() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));

        headers.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
    }
}
