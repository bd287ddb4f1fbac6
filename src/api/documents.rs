//! `/v1/documents` and `/v1/summaries`: documents (pasted, or scraped pages) and their
//! summaries, made by `summarise` jobs.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use uuid::Uuid;

use super::ApiState;
use super::auth::BearerAuth;
use super::error::ApiError;
use super::idempotency::{FingerprintedJson, Idempotency, Idempotent};
use super::limits;
use crate::api::closed::{DocumentSources, OneOf, SummaryLengths, SummaryStyles, WorkStatuses};
use crate::domain::jobs::JobState;
use crate::store;
use crate::store::documents::Document;
use crate::store::summaries::Summary;
use crate::work::{self, summaries::SummaryRequest};

#[derive(Tags)]
enum DocumentTags {
    /// Documents and their summaries.
    Documents,
}

/// Documents and summaries.
pub struct DocumentsApi;

/// A document to store.
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct CreateDocument {
    /// Title, 1 to 500 characters.
    #[oai(validator(
        max_length = 500,
        pattern = r"^[^\u0000]*[^\t\n\x0B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\u0000][^\u0000]*$"
    ))]
    title: String,
    /// The text; at most `summarise.max_document_bytes` bytes (413 above).
    #[oai(validator(min_length = 1))]
    text: String,
}

/// A document.
#[derive(Object)]
struct DocumentOut {
    /// Id.
    id: Uuid,
    /// Title.
    title: String,
    /// `upload` or `scrape`.
    source: OneOf<DocumentSources>,
    /// The scraped page.
    #[oai(skip_serializing_if_is_none)]
    source_url: Option<String>,
    /// Length of the text in bytes.
    size: i32,
    /// The text (not in listings).
    #[oai(skip_serializing_if_is_none)]
    text: Option<String>,
    /// Created.
    created_at: DateTime<Utc>,
}

impl DocumentOut {
    fn of(d: Document, with_text: bool) -> Self {
        Self {
            id: d.id,
            title: d.title,
            source: d.source.into(),
            source_url: d.source_url,
            size: d.size,
            text: with_text.then_some(d.text),
            created_at: d.created_at,
        }
    }
}

#[derive(ApiResponse)]
enum DocumentCreated {
    /// Stored.
    #[oai(status = 201)]
    Created(Json<DocumentOut>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
enum Deleted {
    /// Deleted, with its summaries.
    #[oai(status = 204)]
    Done,
}

/// A page of documents.
#[derive(Object)]
struct DocumentPage {
    /// Newest first, without their text.
    items: Vec<DocumentOut>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    next_cursor: Option<Uuid>,
}

/// A summary to make.
#[derive(Object)]
#[oai(deny_unknown_fields)]
struct CreateSummary {
    /// `paragraph` (default), `bullets` or `tldr`.
    style: Option<OneOf<SummaryStyles>>,
    /// `short` (≤ 400 characters), `medium` (default, ≤ 1,200) or `long` (≤ 3,000).
    length: Option<OneOf<SummaryLengths>>,
    /// Language of the summary as an ISO 639-1 code (`en`, `de`, ...); default: the document's.
    #[oai(validator(pattern = "^[a-z]{2}$"))]
    language: Option<String>,
    /// Name of the configured provider to try first.
    provider: Option<String>,
}

/// A summary.
#[derive(Object)]
pub(crate) struct SummaryOut {
    /// Id.
    id: Uuid,
    /// The document summarised.
    document_id: Uuid,
    /// `pending`, `scheduled`, `running`, `retrying`, `succeeded`, `failed` or `cancelled`.
    status: OneOf<WorkStatuses>,
    /// The summary.
    #[oai(skip_serializing_if_is_none)]
    text: Option<String>,
    /// The provider that answered; `builtin` for the built-in extractive summariser.
    #[oai(skip_serializing_if_is_none)]
    provider: Option<String>,
    /// The model used.
    #[oai(skip_serializing_if_is_none)]
    model: Option<String>,
    /// Made by the built-in extractive summariser (no provider configured, or all down).
    builtin: bool,
    /// Answered from the cache of identical requests.
    cached: bool,
    /// Tokens sent to models, over all calls.
    tokens_in: i32,
    /// Tokens received from models.
    tokens_out: i32,
    /// Chunks the document was split into for the model's context (1: it fit).
    chunks: i32,
    /// Model calls made.
    model_calls: i32,
    /// Why the last attempt failed.
    #[oai(skip_serializing_if_is_none)]
    error: Option<String>,
    /// The job doing the work.
    job_id: Uuid,
    /// Attempts made.
    attempts: i32,
    /// What was asked.
    options: serde_json::Value,
    /// Created.
    created_at: DateTime<Utc>,
    /// The first attempt started.
    #[oai(skip_serializing_if_is_none)]
    started_at: Option<DateTime<Utc>>,
    /// Finished.
    #[oai(skip_serializing_if_is_none)]
    finished_at: Option<DateTime<Utc>>,
}

impl From<Summary> for SummaryOut {
    fn from(s: Summary) -> Self {
        let run_at = s.job_run_at.unwrap_or(s.created_at);
        let status = JobState::of_work(
            s.outcome.as_deref(),
            s.job_state.as_deref(),
            run_at,
            Utc::now(),
        );
        Self {
            id: s.id,
            document_id: s.document_id,
            status: status.into(),
            text: s.text,
            provider: s.provider,
            model: s.model,
            builtin: s.builtin,
            cached: s.cached,
            tokens_in: s.tokens_in,
            tokens_out: s.tokens_out,
            chunks: s.chunks,
            model_calls: s.model_calls,
            error: s.error,
            job_id: s.job_id,
            attempts: s.attempts,
            options: s.options,
            created_at: s.created_at,
            started_at: s.started_at,
            finished_at: s.finished_at,
        }
    }
}

#[derive(ApiResponse)]
enum SummaryStarted {
    /// The summary is queued; follow `Location`.
    #[oai(status = 202)]
    Accepted(Json<SummaryOut>, #[oai(header = "Location")] String),
}

#[OpenApi(prefix_path = "/v1", tag = "DocumentTags::Documents")]
impl DocumentsApi {
    /// Store a document to summarise.
    #[oai(
        path = "/documents",
        method = "post",
        operation_id = "documents_create"
    )]
    async fn create_document(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        body: Json<CreateDocument>,
    ) -> Result<DocumentCreated, ApiError> {
        let mut tx = state.pool.begin().await?;
        let doc =
            work::documents::create(&state.work, &mut tx, &auth.0, &body.0.title, &body.0.text)
                .await?;
        tx.commit().await?;
        let location = format!("/v1/documents/{}", doc.id);
        Ok(DocumentCreated::Created(
            Json(DocumentOut::of(doc, false)),
            location,
        ))
    }

    /// List documents, newest first: a user's own, or everyone's for admins.
    #[oai(path = "/documents", method = "get", operation_id = "documents_list")]
    async fn list_documents(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        /// Cursor from the previous page's `next_cursor`.
        cursor: Query<Option<Uuid>>,
        /// Page size, 1 to 200.
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<i64>,
    ) -> Result<Json<DocumentPage>, ApiError> {
        let mut docs =
            store::documents::list(&state.pool, auth.owner_filter(), cursor.0, limit.0 + 1).await?;
        let next_cursor = super::next_cursor(&mut docs, limit.0, |d| d.id);
        Ok(Json(DocumentPage {
            items: docs
                .into_iter()
                .map(|d| DocumentOut::of(d, false))
                .collect(),
            next_cursor,
        }))
    }

    /// A document with its text.
    #[oai(
        path = "/documents/:id",
        method = "get",
        operation_id = "documents_get"
    )]
    async fn get_document(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
    ) -> Result<Json<DocumentOut>, ApiError> {
        let doc = store::documents::find(&state.pool, id.0, auth.owner_filter())
            .await?
            .ok_or_else(|| ApiError::not_found(format_args!("document {}", id.0)))?;
        Ok(Json(DocumentOut::of(doc, true)))
    }

    /// Delete a document and its summaries.
    #[oai(
        path = "/documents/:id",
        method = "delete",
        operation_id = "documents_delete"
    )]
    async fn delete_document(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
    ) -> Result<Deleted, ApiError> {
        if !store::documents::delete(&state.pool, id.0, auth.owner_filter()).await? {
            return Err(ApiError::not_found(format_args!("document {}", id.0)));
        }
        Ok(Deleted::Done)
    }

    /// Summarise a document, as a `summarise` job: one unit of the `summarise` quota is
    /// reserved now and used only if the summary succeeds. Answers 202 with `Location`.
    #[oai(
        path = "/documents/:id/summaries",
        method = "post",
        operation_id = "summaries_create"
    )]
    async fn create_summary(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
        /// Makes retries safe: the same key with the same body returns the first answer again
        /// (with `Idempotent-Replayed: true`); the same key with another body is refused with
        /// 409. 1 to 255 printable ASCII characters, per user, honoured for 24 hours.
        // Read by `Idempotency::new` from the raw headers; declared here for the spec.
        #[oai(
            name = "Idempotency-Key",
            validator(pattern = r"^[!-~]([ -~]{0,253}[!-~])?$")
        )]
        _idempotency_key: Header<Option<String>>,
        body: FingerprintedJson<CreateSummary>,
        req: &Request,
    ) -> Result<Idempotent<SummaryStarted>, ApiError> {
        let idempotency = Idempotency::new(auth.user_id(), req, body.fingerprint)?;
        let body = body.value;
        let request = SummaryRequest {
            style: body.style.map(OneOf::into_inner),
            length: body.length.map(OneOf::into_inner),
            language: body.language,
            provider: body.provider,
        };
        let options = work::summaries::check(&state.work, request)?;
        let mut tx = state.pool.begin().await?;
        if let Some(replay) = idempotency.claim(&mut tx).await? {
            return Ok(replay);
        }
        let requested =
            work::summaries::request(&state.work, &mut tx, &auth.0, id.0, &options).await;
        let requested = limits::note(req, requested, |r| r.started.charged.as_ref())?;
        let summary_id = requested.id;
        let summary = store::summaries::find(&mut *tx, summary_id, None)
            .await?
            .ok_or_else(|| ApiError::not_found(format_args!("summary {summary_id}")))?;
        let response =
            SummaryStarted::Accepted(Json(summary.into()), format!("/v1/summaries/{summary_id}"));
        let response = idempotency.finish(&mut tx, response).await?;
        tx.commit().await?;
        Ok(response)
    }

    /// A summary: status, text, provider and model, tokens, chunks, timings.
    #[oai(
        path = "/summaries/:id",
        method = "get",
        operation_id = "summaries_get"
    )]
    async fn get_summary(
        &self,
        auth: BearerAuth,
        state: Data<&ApiState>,
        id: Path<Uuid>,
    ) -> Result<Json<SummaryOut>, ApiError> {
        let summary = store::summaries::find(&state.pool, id.0, auth.owner_filter())
            .await?
            .ok_or_else(|| ApiError::not_found(format_args!("summary {}", id.0)))?;
        Ok(Json(summary.into()))
    }
}

fn default_limit() -> i64 {
    50
}
