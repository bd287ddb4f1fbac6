//! The model providers behind summaries: OpenAI-compatible endpoints tried in order, each with
//! its own timeout and cool-down (a per-process circuit breaker), and answers checked before
//! anyone stores them.
//!
//! How a provider's failure is treated (one rule for every call):
//! - **Unavailable** (timeout, connection failure, 408, 409, 425, 429, 5xx): the provider cools
//!   down, for its `Retry-After` when it sends one, else for `cool_down`; the next one is tried.
//! - **Misconfigured** (401, 402, 403, 404 and any other 4xx not below: bad key, no credit,
//!   unknown model, wrong base URL): the provider's problem, not the request's. It cools down for
//!   `cool_down` and the next one is tried, since another provider can serve the same request.
//! - **Rejected** (400, 413, 422: input too long or invalid): no provider will take it, so the
//!   attempt fails for good ([`ProviderFailure::Permanent`]), without asking the others. The one
//!   exception is a provider whose context window is smaller than the one the request was sized
//!   for (the first provider tried): its refusal says nothing about the request, so it is skipped.
//! - **Bad answer** (not a chat completion, empty, too long, cut off, echoing the delimiters, a
//!   refusal): the next provider is tried; no cool-down, as the answer may be about this
//!   document rather than the provider.
//!
//! Streaming ([`Providers::complete_streaming`]) follows the same rule. Text is handed on as it
//! arrives; when the provider then fails (the connection drops, an error arrives in the stream,
//! the whole answer fails the checks) a [`Piece::Restart`] says to drop what came so far, and
//! the next provider starts over. A provider that fails before its first text needs none.
//!
//! async-openai 0.43 supplies the wire types and the endpoint's URL and headers
//! ([`OpenAIConfig`]). Its `Client` is not used: without the crate's `middleware` feature it
//! always retries 429s and 5xx itself (three times, sleeping for each `Retry-After`) and drops
//! the response headers, while fallback here needs one request per provider and `Retry-After`.

mod answer;
mod endpoint;
mod prompt;
mod streamed;

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_openai::types::chat::{
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    CreateChatCompletionRequest, ResponseFormat, ResponseFormatJsonSchema,
};

use endpoint::{CallError, Provider};
use prompt::{system_message, user_message};

use crate::metrics::{Metrics, ModelCall};

/// Longest cool-down a provider's `Retry-After` can ask for; a broken header must not switch a
/// provider off for days.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// One OpenAI-compatible endpoint, as configured under `[[summarise.providers]]` (defined in
/// `config`, which must not depend on this module).
pub use crate::config::ProviderConfig;

/// One summary to ask for.
#[derive(Debug, Clone)]
pub struct CompletionRequest {
    /// The caller's rules, sent after ours in the system message.
    pub system: String,
    /// The untrusted text, sent delimited as data.
    pub document: String,
    /// What to do with the document, e.g. "Summarise in five sentences."
    pub instruction: String,
    /// Longest acceptable answer in characters; answers above 1.2 times this are rejected.
    pub max_chars: usize,
    /// Name of the provider to try first; the others follow in configured order.
    pub preferred: Option<String>,
    /// A summary, or data extracted as JSON matching a schema.
    pub task: Task,
}

/// What a call asks of the model: the rules it gets and the answer's form.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// A summary, as plain text.
    Summary,
    /// One JSON value matching `schema` (sent as the call's `response_format`, so providers
    /// that constrain their output, llama.cpp among them, answer in the schema's shape).
    Extraction {
        /// The JSON Schema of the answer.
        schema: serde_json::Value,
    },
}

/// A checked answer and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The answer, trimmed.
    pub text: String,
    /// Name of the provider that answered.
    pub provider: String,
    /// Model that answered, as the provider reports it.
    pub model: String,
    /// Prompt tokens the provider reports (0 when it reports none).
    pub tokens_in: u32,
    /// Answer tokens the provider reports (0 when it reports none).
    pub tokens_out: u32,
    /// How long the answering call took.
    pub elapsed_ms: u64,
    /// Providers passed over before this answer, with the reason.
    pub skipped: Vec<(String, String)>,
}

/// What a streamed call hands on as the answer arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// The next piece of the answer's text; the pieces since the last restart add up to the
    /// final answer exactly (it is trimmed at both ends as it streams).
    Text(String),
    /// Drop the text so far: the provider failed and the next one starts over.
    Restart,
}

/// Why no answer came back.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderFailure {
    /// Transient: every provider failed, answered badly or is cooling down, listed with the
    /// reason (a cooling one with the time it has left, see also [`Providers::back_in`]); try
    /// again later.
    #[error("no provider could answer: {}", reasons(.0))]
    AllUnavailable(Vec<(String, String)>),
    /// The request will never succeed (input too long or invalid); do not retry it.
    #[error("the request was refused for good: {0}")]
    Permanent(String),
}

fn reasons(skipped: &[(String, String)]) -> String {
    let all: Vec<String> = skipped
        .iter()
        .map(|(p, why)| format!("{p}: {why}"))
        .collect();
    if all.is_empty() {
        "no providers".to_owned()
    } else {
        all.join("; ")
    }
}

/// The configured providers and their cool-downs.
pub struct Providers {
    providers: Vec<Provider>,
    cool_down: Duration,
    metrics: Metrics,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hand-written so the request headers, which hold the keys, never reach a log.
        let names: Vec<&str> = self
            .providers
            .iter()
            .map(|p| p.config.name.as_str())
            .collect();
        f.debug_struct("Providers")
            .field("providers", &names)
            .field("cool_down", &self.cool_down)
            .finish()
    }
}

impl Providers {
    /// Builds the providers, reading each key from its environment variable now; fails naming
    /// a variable that is missing or empty.
    pub fn new(configs: Vec<ProviderConfig>, cool_down: Duration) -> anyhow::Result<Self> {
        // reqwest's rustls needs a process-wide provider when two are compiled in (DESIGN.md).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut providers: Vec<Provider> = Vec::with_capacity(configs.len());
        for config in configs {
            if providers.iter().any(|p| p.config.name == config.name) {
                bail!("two summarise providers are named {:?}", config.name);
            }
            let provider = Provider::new(config.clone())
                .with_context(|| format!("setting up the summarise provider {:?}", config.name))?;
            providers.push(provider);
        }
        Ok(Self {
            providers,
            cool_down,
            metrics: Metrics::default(),
        })
    }

    /// Record each call's duration and tokens in `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Whether no provider is configured (summaries then come from the built-in summariser).
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// The context window, in tokens, of the provider that would be tried first right now.
    pub fn context_window(&self, preferred: Option<&str>) -> Option<u32> {
        self.first_tried(preferred).map(|p| p.config.context_window)
    }

    /// Asks the providers in turn until one gives an answer that passes the checks.
    pub async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderFailure> {
        self.ask(req, None).await
    }

    /// As [`Providers::complete`], with the answer streamed (`stream: true`): `sink` gets its
    /// text piece by piece as the model produces it, and a [`Piece::Restart`] when a provider
    /// fails after some of its text was handed on. The returned text is the pieces since the
    /// last restart, joined.
    pub async fn complete_streaming(
        &self,
        req: &CompletionRequest,
        sink: &mut (dyn FnMut(Piece) + Send),
    ) -> Result<Completion, ProviderFailure> {
        self.ask(req, Some(sink)).await
    }

    async fn ask(
        &self,
        req: &CompletionRequest,
        mut sink: Option<&mut (dyn FnMut(Piece) + Send)>,
    ) -> Result<Completion, ProviderFailure> {
        let messages = vec![
            ChatCompletionRequestSystemMessage::from(system_message(&req.task, &req.system)).into(),
            ChatCompletionRequestUserMessage::from(user_message(req)).into(),
        ];
        let sized_for = self.context_window(req.preferred.as_deref());
        let mut skipped = Vec::new();
        for provider in self.in_order(req.preferred.as_deref()) {
            let name = &provider.config.name;
            if let Some(left) = provider.cooling_for() {
                tracing::debug!(provider = %name, ?left, "provider cooling down, skipped");
                skipped.push((name.clone(), format!("cooling down for {left:?}")));
                continue;
            }
            let body = CreateChatCompletionRequest {
                model: provider.config.model.clone(),
                messages: messages.clone(),
                max_completion_tokens: Some(provider.config.max_output_tokens),
                response_format: match &req.task {
                    Task::Summary => None,
                    Task::Extraction { schema } => Some(ResponseFormat::JsonSchema {
                        json_schema: ResponseFormatJsonSchema {
                            name: "extraction".into(),
                            schema: schema.clone(),
                            description: None,
                            strict: None,
                        },
                    }),
                },
                ..Default::default()
            };
            let started = Instant::now();
            let mut handed_on = false;
            let called = match sink.as_deref_mut() {
                None => provider.call(&body, req.max_chars, None).await,
                Some(sink) => {
                    let mut on_text = |text: String| {
                        handed_on = true;
                        sink(Piece::Text(text));
                    };
                    provider
                        .call(&body, req.max_chars, Some(&mut on_text))
                        .await
                }
            };
            if let (true, Err(_), Some(sink)) = (handed_on, &called, sink.as_deref_mut()) {
                sink(Piece::Restart);
            }
            let call = ModelCall {
                provider: name,
                model: &provider.config.model,
                outcome: match &called {
                    Ok(_) => "ok",
                    Err(CallError::Unavailable { .. }) => "unavailable",
                    Err(CallError::Misconfigured(_)) => "misconfigured",
                    Err(CallError::Rejected(_)) => "rejected",
                    Err(CallError::BadAnswer(_)) => "bad_answer",
                },
            };
            let tokens = called.as_ref().ok().map(|a| (a.tokens_in, a.tokens_out));
            self.metrics.model_call(call, started.elapsed(), tokens);
            let why = match called {
                Ok(answer) => {
                    return Ok(Completion {
                        text: answer.text,
                        provider: name.clone(),
                        model: answer.model,
                        tokens_in: answer.tokens_in,
                        tokens_out: answer.tokens_out,
                        elapsed_ms: u64::try_from(started.elapsed().as_millis())
                            .unwrap_or(u64::MAX),
                        skipped,
                    });
                }
                Err(CallError::Unavailable { why, retry_after }) => {
                    let pause = retry_after.unwrap_or(self.cool_down).min(MAX_RETRY_AFTER);
                    provider.cool_down(pause);
                    format!("{why}; cooling down for {pause:?}")
                }
                Err(CallError::Misconfigured(why)) => {
                    provider.cool_down(self.cool_down);
                    format!("{why}; cooling down for {:?}", self.cool_down)
                }
                Err(CallError::Rejected(why))
                    if sized_for.is_some_and(|w| provider.config.context_window < w) =>
                {
                    format!("refused by a smaller context window: {why}")
                }
                Err(CallError::Rejected(why)) => {
                    tracing::warn!(provider = %name, %why, "the request was refused for good");
                    return Err(ProviderFailure::Permanent(format!("{name}: {why}")));
                }
                Err(CallError::BadAnswer(why)) => format!("bad answer: {why}"),
            };
            tracing::warn!(provider = %name, %why, "provider skipped");
            skipped.push((name.clone(), why));
        }
        Err(ProviderFailure::AllUnavailable(skipped))
    }

    /// How long until the first cooling provider is tried again; `None` when none is cooling.
    /// After [`ProviderFailure::AllUnavailable`] this is when a retry can first succeed.
    pub fn back_in(&self) -> Option<Duration> {
        self.providers
            .iter()
            .filter_map(Provider::cooling_for)
            .min()
    }

    /// The providers in the order they are tried: `preferred` first, then configured order.
    fn in_order<'a>(&'a self, preferred: Option<&str>) -> impl Iterator<Item = &'a Provider> {
        let first = preferred.and_then(|n| self.providers.iter().position(|p| p.config.name == n));
        let rest = self.providers.iter().enumerate();
        first
            .map(|i| &self.providers[i])
            .into_iter()
            .chain(rest.filter(move |(i, _)| Some(*i) != first).map(|(_, p)| p))
    }

    fn first_tried(&self, preferred: Option<&str>) -> Option<&Provider> {
        self.in_order(preferred)
            .find(|p| p.cooling_for().is_none())
            .or_else(|| self.in_order(preferred).next())
    }
}
