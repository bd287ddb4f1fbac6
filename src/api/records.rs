//! `/v1/records`: the sample transactions the injector writes, newest first, and statistics
//! by category. Any authenticated caller may read them (they are demo data).

use std::time::Duration;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};

use super::ApiState;
use super::auth::BearerAuth;
use super::error::ApiError;
use crate::store;
use crate::store::records::{Record, RecordFilter};

#[derive(Tags)]
enum RecordTags {
    /// Sample transactions written by the injector.
    Records,
}

/// Records.
pub struct RecordsApi;

/// One transaction.
#[derive(Object)]
struct RecordOut {
    /// Id.
    id: i64,
    /// The client it was injected for.
    client_id: String,
    /// When the injector stamped it.
    completed_at: DateTime<Utc>,
    /// The sample's id.
    transaction_id: String,
    /// Customer id.
    customer_id: String,
    /// Customer name.
    customer_name: String,
    /// Merchant.
    merchant: String,
    /// Category.
    category: String,
    /// Amount as a decimal string, e.g. `"12.50"`.
    amount: String,
    /// ISO 4217 currency.
    currency: String,
    /// Payment method.
    payment_method: String,
    /// ISO 3166 country.
    country: String,
    /// Last four card digits (empty when no card was used).
    card_last4: String,
    /// `approved`, `declined` or `refunded`.
    status: String,
}

impl From<Record> for RecordOut {
    fn from(r: Record) -> Self {
        Self {
            id: r.id,
            client_id: r.client_id,
            completed_at: r.completed_at,
            transaction_id: r.transaction_id,
            customer_id: r.customer_id,
            customer_name: r.customer_name,
            merchant: r.merchant,
            category: r.category,
            amount: r.amount,
            currency: r.currency,
            payment_method: r.payment_method,
            country: r.country,
            card_last4: r.card_last4,
            status: r.status,
        }
    }
}

/// A page of records.
#[derive(Object)]
struct RecordPage {
    /// Newest first.
    items: Vec<RecordOut>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    next_cursor: Option<String>,
}

/// Totals of one category.
#[derive(Object)]
struct CategoryStats {
    /// The category.
    category: String,
    /// Records.
    count: i64,
    /// Sum of their amounts, as a decimal string (currencies are not converted).
    sum: String,
}

/// Statistics over a window.
#[derive(Object)]
struct RecordStats {
    /// Start of the window.
    from: DateTime<Utc>,
    /// End of the window.
    to: DateTime<Utc>,
    /// Records in the window.
    count: i64,
    /// By category.
    categories: Vec<CategoryStats>,
}

fn cursor_of(r: &Record) -> String {
    format!("{}_{}", r.completed_at.timestamp_micros(), r.id)
}

fn parse_cursor(cursor: &str) -> Result<(DateTime<Utc>, i64), ApiError> {
    let bad = || ApiError::invalid_parameter("cursor", "cursor is not one this API returned");
    let (micros, id) = cursor.split_once('_').ok_or_else(bad)?;
    let at = DateTime::from_timestamp_micros(micros.parse().map_err(|_| bad())?).ok_or_else(bad)?;
    Ok((at, id.parse().map_err(|_| bad())?))
}

/// `window` as the spec's pattern allows it: a whole number from 1 with `s`, `m`, `h` or `d`.
fn parse_window(window: &str) -> Result<Duration, ApiError> {
    let (number, unit) = window.split_at(window.len().saturating_sub(1));
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => 0,
    };
    number
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0 && seconds > 0)
        .map(|n| Duration::from_secs(n * seconds))
        .ok_or_else(|| {
            ApiError::invalid_parameter("window", "window must be a duration like 15m, 1h or 7d")
        })
}

#[OpenApi(prefix_path = "/v1", tag = "RecordTags::Records")]
impl RecordsApi {
    /// Records, newest first, optionally of one client and within a time range.
    // Each query parameter is an argument of the handler: that is how poem-openapi documents
    // them.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/records", method = "get", operation_id = "records_list")]
    async fn list_records(
        &self,
        _auth: BearerAuth,
        state: Data<&ApiState>,
        /// Only this client's records.
        #[oai(validator(max_length = 200, pattern = r"^[^\u0000]*$"))]
        client_id: Query<Option<String>>,
        /// Completed at or after (RFC 3339).
        from: Query<Option<DateTime<Utc>>>,
        /// Completed before (RFC 3339).
        to: Query<Option<DateTime<Utc>>>,
        /// Cursor from the previous page's `next_cursor`.
        #[oai(validator(pattern = r"^[0-9]{1,16}_[0-9]{1,18}$"))]
        cursor: Query<Option<String>>,
        /// Page size, 1 to 500.
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "500"))
        )]
        limit: Query<i64>,
    ) -> Result<Json<RecordPage>, ApiError> {
        let filter = RecordFilter {
            client_id: client_id.0,
            from: from.0,
            to: to.0,
            after: cursor.0.as_deref().map(parse_cursor).transpose()?,
        };
        let mut rows = store::records::list(&state.pool, &filter, limit.0 + 1).await?;
        let next_cursor = super::next_cursor(&mut rows, limit.0, cursor_of);
        Ok(Json(RecordPage {
            items: rows.into_iter().map(RecordOut::from).collect(),
            next_cursor,
        }))
    }

    /// Count and sum of amounts by category over a window ending now (or between `from` and
    /// `to`).
    #[oai(
        path = "/records/stats",
        method = "get",
        operation_id = "records_stats_get"
    )]
    async fn record_stats(
        &self,
        _auth: BearerAuth,
        state: Data<&ApiState>,
        /// Only this client's records.
        #[oai(validator(max_length = 200, pattern = r"^[^\u0000]*$"))]
        client_id: Query<Option<String>>,
        /// The window ending now, e.g. `15m`, `1h` (default) or `7d`, when `from` is not given.
        #[oai(validator(pattern = "^[1-9][0-9]{0,5}[smhd]$"))]
        window: Query<Option<String>>,
        /// Start (RFC 3339); overrides `window`. After `to`, the window is empty.
        from: Query<Option<DateTime<Utc>>>,
        /// End (RFC 3339); default now.
        to: Query<Option<DateTime<Utc>>>,
    ) -> Result<Json<RecordStats>, ApiError> {
        let to = to.0.unwrap_or_else(Utc::now);
        let from = match from.0 {
            Some(from) => from,
            None => {
                let window = parse_window(window.0.as_deref().unwrap_or("1h"))?;
                chrono::TimeDelta::from_std(window)
                    .ok()
                    .and_then(|window| to.checked_sub_signed(window))
                    .unwrap_or(DateTime::<Utc>::MIN_UTC)
            }
        };
        // `from` after `to` is an empty window: nothing is counted.
        let filter = RecordFilter {
            client_id: client_id.0,
            from: Some(from),
            to: Some(to),
            after: None,
        };
        let rows = store::records::stats(&state.pool, &filter).await?;
        Ok(Json(RecordStats {
            from,
            to,
            count: rows.iter().map(|r| r.1).sum(),
            categories: (rows.into_iter())
                .map(|(category, count, sum)| CategoryStats {
                    category,
                    count,
                    sum,
                })
                .collect(),
        }))
    }
}

fn default_limit() -> i64 {
    100
}
