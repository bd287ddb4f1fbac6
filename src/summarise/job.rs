//! `summarise`: summarise a document through the configured OpenAI-compatible providers, or the
//! built-in extractive summariser when none is configured (or all are down and
//! `summarise.fallback_to_builtin` is on). A document too long for the model's context is split
//! into chunks that are summarised one by one (each result kept, so a restarted job resumes
//! after the last one), then the chunk summaries are summarised (map-reduce). Identical
//! requests are answered from the cache. The final answer's text is streamed as it is made
//! (`stream.rs`), the built-in summary's sentence by sentence.

use std::sync::Arc;

use anyhow::anyhow;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::providers::{CompletionRequest, Piece, ProviderFailure, Task};
use super::stream::TokenPublisher;
use crate::domain::topics::Topic;
use crate::engine::{Job, JobError, JobKind};
use crate::notify::job::Notifier;
use crate::store;
use crate::store::documents::Document;
use crate::store::summaries::{Chunk, Done, Summary};
use crate::work::events::{publish, publish_failed};
use crate::work::finish::{self, Outcome};

use super::summariser::{SYSTEM, Summariser, SummaryOptions, builtin_streaming, split};

/// Most reduce rounds before giving up (each round shrinks the text several times).
const MAX_ROUNDS: i32 = 6;

/// Running totals of one summary's model calls.
#[derive(Default)]
struct Tally {
    tokens_in: i32,
    tokens_out: i32,
    calls: i32,
}

impl Tally {
    fn add(&mut self, tokens_in: i32, tokens_out: i32) {
        self.tokens_in += tokens_in;
        self.tokens_out += tokens_out;
        self.calls += 1;
    }
}

/// Why the providers could not make a summary.
enum Failure {
    Unavailable(String),
    Permanent(String),
    Store(anyhow::Error),
}

impl From<ProviderFailure> for Failure {
    fn from(f: ProviderFailure) -> Self {
        match f {
            ProviderFailure::AllUnavailable(reasons) => Failure::Unavailable(
                (reasons.iter())
                    .map(|(p, why)| format!("{p}: {why}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            ProviderFailure::Permanent(why) => Failure::Permanent(why),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Store(e)
    }
}

/// The `summarise` job's arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummariseArgs {
    /// The summary to make.
    pub summary_id: Uuid,
}

/// The `summarise` kind.
pub struct SummariseKind {
    /// Where documents and summaries are.
    pub pool: PgPool,
    /// The providers.
    pub summariser: Arc<Summariser>,
    /// Where `summaries.finished` and `jobs.failed` go.
    pub notifier: Arc<Notifier>,
}

impl SummariseKind {
    /// Summarise with the providers: one call when the text fits the context, else
    /// map-reduce with every chunk result kept. The last call's answer streams into `sink`.
    async fn with_models(
        &self,
        (id, owner): (Uuid, Uuid),
        text: &str,
        options: &SummaryOptions,
        sink: &mut (dyn FnMut(Piece) + Send),
    ) -> Result<Done, Failure> {
        let providers = &self.summariser.providers;
        let preferred = options.provider.clone();
        // A token is about 4 characters of English and fewer of other scripts: 3 is safe. Keep
        // 40% of the context for the prompt and the answer.
        let context = providers
            .context_window(preferred.as_deref())
            .unwrap_or(4096) as usize;
        let piece_chars = context * 3 * 6 / 10;
        let mut tally = Tally::default();
        let mut source = text.to_string();
        let mut chunks = 1;
        for round in 0..MAX_ROUNDS {
            let pieces = split(&source, piece_chars);
            if pieces.len() <= 1 {
                break;
            }
            if round == 0 {
                chunks = pieces.len() as i32;
            }
            let kept = store::summaries::chunks(&self.pool, id, round).await?;
            let part_chars = (piece_chars / pieces.len()).clamp(300, 2000);
            let mut results = Vec::with_capacity(pieces.len());
            for (idx, piece) in pieces.iter().enumerate() {
                let idx = idx as i32;
                if let Some((_, chunk)) = kept.iter().find(|(i, _)| *i == idx) {
                    tally.add(chunk.tokens_in, chunk.tokens_out);
                    results.push(chunk.text.clone());
                    continue;
                }
                let answer = providers
                    .complete(&CompletionRequest {
                        system: SYSTEM.into(),
                        document: piece.clone(),
                        instruction: format!(
                            "This is part {} of {} of a longer document. Summarise this part, \
                             keeping names, numbers and conclusions, in at most {part_chars} \
                             characters.",
                            idx + 1,
                            pieces.len()
                        ),
                        max_chars: part_chars,
                        preferred: preferred.clone(),
                        task: Task::Summary,
                    })
                    .await?;
                let chunk = Chunk {
                    text: answer.text,
                    tokens_in: answer.tokens_in as i32,
                    tokens_out: answer.tokens_out as i32,
                    provider: answer.provider,
                    model: answer.model,
                };
                store::summaries::save_chunk(&self.pool, id, round, idx, &chunk).await?;
                // Live progress for the summary's stream; losing it loses nothing stored.
                let progress = json!({
                    "type": "summary.progress", "owner": owner, "summary": id, "round": round,
                    "chunks_done": idx + 1, "chunks_total": pieces.len(),
                });
                if let Err(e) = store::stream::emit(&self.pool, &[progress]).await {
                    tracing::debug!(error = %e, "publishing summary progress failed");
                }
                tally.add(chunk.tokens_in, chunk.tokens_out);
                results.push(chunk.text);
            }
            source = results.join("\n\n");
        }
        let request = CompletionRequest {
            system: SYSTEM.into(),
            document: source,
            instruction: match chunks {
                1 => options.instruction(),
                _ => format!(
                    "The document consists of summaries of consecutive parts of a longer \
                     document. {}",
                    options.instruction()
                ),
            },
            max_chars: options.max_chars(),
            preferred,
            task: Task::Summary,
        };
        let answer = providers.complete_streaming(&request, sink).await?;
        tally.add(answer.tokens_in as i32, answer.tokens_out as i32);
        Ok(Done {
            text: answer.text,
            provider: answer.provider,
            model: answer.model,
            builtin: false,
            tokens_in: tally.tokens_in,
            tokens_out: tally.tokens_out,
            chunks,
            model_calls: tally.calls,
        })
    }
}

impl JobKind for SummariseKind {
    const NAME: &'static str = crate::domain::jobs::kinds::SUMMARISE;
    const QUOTA: Option<&'static str> = Some("summarise");
    type Args = SummariseArgs;

    async fn run(&self, job: Job<SummariseArgs>) -> Result<Value, JobError> {
        let id = job.args.summary_id;
        // By id and the job's owner: a job naming another user's summary touches nothing.
        let Some(summary) = store::summaries::find(&self.pool, id, job.owner_id).await? else {
            return Err(JobError::permanent(anyhow!(
                "summary {id} does not exist or is not the job owner's"
            )));
        };
        if let Some(outcome) = &summary.outcome {
            return Ok(json!({ "summary_id": id, "outcome": outcome }));
        }
        let owner = Some(summary.owner_id);
        let Some(document) = store::documents::find(&self.pool, summary.document_id, owner).await?
        else {
            return Err(JobError::permanent(anyhow!("the document was deleted")));
        };
        let options: SummaryOptions = serde_json::from_value(summary.options.clone())
            .map_err(|e| JobError::permanent(anyhow!("stored options do not parse: {e}")))?;
        store::summaries::started(&self.pool, id, job.attempt).await?;

        let key = self.summariser.cache_key(&document.text, &options);
        if let Some(done) = store::summaries::cached(&self.pool, &key).await? {
            return self
                .succeeded(&job, &summary, &document, &done, true, None)
                .await;
        }
        // Dropped on cancel, which stops it at once; finished before the outcome is committed.
        let publisher = TokenPublisher::start(self.pool.clone(), id, summary.owner_id, job.attempt);
        let mut sink = publisher.sink();
        let answer = if self.summariser.providers.is_empty() {
            Ok(builtin_streaming(&document.text, &options, &mut sink))
        } else {
            // Dropping the model calls closes their connections: the provider sees the
            // request cancelled and no further call starts.
            let answer = tokio::select! {
                answer = self.with_models((id, summary.owner_id), &document.text, &options, &mut sink) => answer,
                _ = job.cancel.cancelled() => return Err(JobError::Cancelled),
            };
            match answer {
                Err(Failure::Unavailable(why)) if self.summariser.fallback_to_builtin => {
                    tracing::warn!(summary = %id, reasons = why, "every provider is down; using the built-in summariser");
                    Ok(builtin_streaming(&document.text, &options, &mut sink))
                }
                answer => answer,
            }
        };
        publisher.finish().await;
        let done = match answer {
            Ok(done) => done,
            Err(Failure::Unavailable(why)) => {
                let last = job.attempt >= job.max_attempts;
                let error = format!("every provider is unavailable: {why}");
                let mut tx = finish::begin(&self.pool, &job).await?;
                store::summaries::failed(&mut *tx, id, &error, last).await?;
                let failed = Outcome::Failed(JobError::Retry(anyhow!(error)));
                return finish::finish(tx, &job, failed).await;
            }
            Err(Failure::Permanent(why)) => {
                let mut tx = finish::begin(&self.pool, &job).await?;
                store::summaries::failed(&mut *tx, id, &why, true).await?;
                let payload = json!({
                    "summary_id": id, "document_id": document.id, "status": "failed",
                    "error": why, "message": format!("Summary of {} failed", document.title),
                });
                let (notify, topic) = (self.notifier.config(), Topic::SummariesFinished);
                publish_failed(&mut tx, notify, topic, owner, payload, false).await?;
                let failed = Outcome::Failed(JobError::permanent(anyhow!(why)));
                return finish::finish(tx, &job, failed).await;
            }
            Err(Failure::Store(e)) => return Err(JobError::Retry(e)),
        };
        // A built-in answer that stands in for down providers is not cached: the next identical
        // request should get a model's summary.
        let cache = (!done.builtin || self.summariser.providers.is_empty()).then_some(key.as_str());
        self.succeeded(&job, &summary, &document, &done, false, cache)
            .await
    }
}

impl SummariseKind {
    /// Keep the summary and its event together with the job's end, in one transaction fenced
    /// by the attempt.
    async fn succeeded(
        &self,
        job: &Job<SummariseArgs>,
        summary: &Summary,
        document: &Document,
        done: &Done,
        cached: bool,
        cache: Option<&str>,
    ) -> Result<Value, JobError> {
        let id = summary.id;
        let mut tx = finish::begin(&self.pool, job).await?;
        store::summaries::succeeded(&mut tx, id, done, cached, cache).await?;
        let mut payload = json!({
            "summary_id": id, "document_id": document.id, "status": "succeeded",
            "provider": done.provider, "builtin": done.builtin,
            "message": format!("Summary of {} is ready", document.title),
        });
        if cached {
            payload["cached"] = Value::Bool(true);
        }
        let owner = Some(summary.owner_id);
        publish(
            &mut tx,
            self.notifier.config(),
            Topic::SummariesFinished,
            owner,
            payload,
        )
        .await?;
        let result = match cached {
            true => json!({ "summary_id": id, "cached": true, "provider": done.provider }),
            false => json!({
                "summary_id": id,
                "provider": done.provider,
                "builtin": done.builtin,
                "chunks": done.chunks,
            }),
        };
        finish::finish(tx, job, Outcome::Succeeded(result)).await
    }
}
