//! Storing a document to summarise: bounded title and text, and the plan's `max_documents`.

use sqlx::PgConnection;

use super::{Caller, Work, WorkError, WorkResult};
use crate::store;
use crate::store::bounds::Held;
use crate::store::documents::Document;

/// Store `text` under `title` for `caller`, on `conn` (a transaction, for the bound's lock).
pub async fn create(
    work: &Work,
    conn: &mut PgConnection,
    caller: &Caller,
    title: &str,
    text: &str,
) -> WorkResult<Document> {
    let title = title.trim();
    if title.is_empty() || title.chars().count() > 500 {
        return Err(WorkError::invalid(
            "title",
            "title must be 1 to 500 characters",
        ));
    }
    let limit = work.config.summarise.max_document_bytes;
    if text.len() > limit {
        return Err(WorkError::TooLarge(format!(
            "text is {} bytes; documents may have at most {limit}",
            text.len()
        )));
    }
    if text.trim().is_empty() {
        return Err(WorkError::invalid("text", "text must not be empty"));
    }
    if text.contains('\0') || title.contains('\0') {
        return Err(WorkError::invalid(
            "text",
            "text and title must not contain the character U+0000",
        ));
    }
    work.check_bound(conn, caller, Held::Documents).await?;
    Ok(store::documents::insert(&mut *conn, caller.user_id, title, text).await?)
}
