//! Requesting a summary of a document: the options bounded, the document the caller's (or any
//! for admins), the summary row and its `summarise` job written in the caller's transaction
//! with one unit of the `summarise` quota reserved from the caller. A scrape with
//! `summarise: true` chains its summary through the same function, acting as its owner.

use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::jobs::{self, Requested};
use super::{Caller, Work, WorkError, WorkResult};
use crate::domain::jobs::kinds;
use crate::store;
use crate::summarise::summariser::{LENGTHS, STYLES, SummaryOptions};

/// A summary as a caller asks for it; `None` takes the default.
#[derive(Debug, Clone, Default)]
pub struct SummaryRequest {
    /// `paragraph` (default), `bullets` or `tldr`.
    pub style: Option<String>,
    /// `short`, `medium` (default) or `long`.
    pub length: Option<String>,
    /// ISO 639-1 code of the summary's language.
    pub language: Option<String>,
    /// A configured provider to try first.
    pub provider: Option<String>,
}

/// Check the options: known style, length and provider, a two-letter language.
pub fn check(work: &Work, request: SummaryRequest) -> WorkResult<SummaryOptions> {
    let style = request.style.unwrap_or_else(|| "paragraph".into());
    if !STYLES.contains(&style.as_str()) {
        return Err(WorkError::invalid(
            "style",
            format!(
                "unknown style {style:?}; style must be one of {}",
                STYLES.join(", ")
            ),
        ));
    }
    let length = request.length.unwrap_or_else(|| "medium".into());
    if !LENGTHS.contains(&length.as_str()) {
        return Err(WorkError::invalid(
            "length",
            format!(
                "unknown length {length:?}; length must be one of {}",
                LENGTHS.join(", ")
            ),
        ));
    }
    if let Some(l) = &request.language
        && !(l.len() == 2 && l.chars().all(|c| c.is_ascii_lowercase()))
    {
        return Err(WorkError::invalid(
            "language",
            "language must be an ISO 639-1 code of two lower-case letters, like en or de",
        ));
    }
    if let Some(p) = &request.provider
        && !work.config.summarise.providers.iter().any(|c| &c.name == p)
    {
        return Err(WorkError::invalid(
            "provider",
            format!("provider {p:?} is not configured"),
        ));
    }
    Ok(SummaryOptions {
        style,
        length,
        language: request.language,
        provider: request.provider,
    })
}

/// Summarise `document_id` for `caller` on `conn` (the caller's transaction). The summary
/// belongs to the document's owner; the caller pays the unit.
pub async fn request(
    work: &Work,
    conn: &mut PgConnection,
    caller: &Caller,
    document_id: Uuid,
    options: &SummaryOptions,
) -> WorkResult<Requested> {
    let doc = store::documents::find(&mut *conn, document_id, caller.owner_filter())
        .await?
        .ok_or_else(|| WorkError::not_found(format_args!("document {document_id}")))?;
    let summary_id = Uuid::now_v7();
    let mut job = jobs::new_job(
        work,
        caller,
        kinds::SUMMARISE,
        json!({ "summary_id": summary_id }),
    );
    job.owner_id = Some(doc.owner_id);
    job.quota_action = Some("summarise".into());
    let started = jobs::start(work, conn, caller, &job).await?;
    let options = serde_json::to_value(options).map_err(anyhow::Error::from)?;
    let job_id = started.enqueued.id();
    store::summaries::insert(conn, summary_id, doc.owner_id, doc.id, job_id, &options).await?;
    Ok(Requested {
        id: summary_id,
        started,
    })
}
