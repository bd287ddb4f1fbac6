//! `inject`: the transactions injector. Each run reads a sample-transactions CSV (by default
//! `jobs/data/transactions.csv`, made by `jobs/data/make_transactions.py`), picks N random rows,
//! stamps them with `completed_at` (now) and `client_id`, and writes them into `records` with
//! one multi-row statement (`unnest` of column arrays), in one transaction with the run's
//! outcome and its `injector.runs` event. A run is keyed by its job: a retried or repeated
//! attempt finds the committed run and inserts nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, anyhow};
use chrono::Utc;
use rand::seq::IndexedRandom;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::domain::topics::Topic;
use crate::engine::{Job, JobError, JobKind};
use crate::notify::job::Notifier;
use crate::work::events::publish;

/// Most rows one run may insert.
pub const MAX_ROWS: u32 = 1_000_000;

/// The columns a dataset must have, in the order `records` stores them.
pub const COLUMNS: [&str; 11] = [
    "transaction_id",
    "customer_id",
    "customer_name",
    "merchant",
    "category",
    "amount",
    "currency",
    "payment_method",
    "country",
    "card_last4",
    "status",
];

/// The `inject` job's arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectArgs {
    /// Rows to insert (1 to 1,000,000).
    #[serde(deserialize_with = "rows")]
    pub rows: u32,
    /// Stamped on every row.
    pub client_id: String,
    /// A CSV file name in `jobs/data/` (default `transactions.csv`).
    #[serde(default)]
    pub dataset: Option<String>,
}

fn rows<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = u32::deserialize(d)?;
    if !(1..=MAX_ROWS).contains(&n) {
        return Err(serde::de::Error::custom(format!(
            "rows must be between 1 and {MAX_ROWS}"
        )));
    }
    Ok(n)
}

/// One sample transaction: the values of [`COLUMNS`], `amount` checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample(pub [String; 11]);

/// Parse a dataset: a header naming at least [`COLUMNS`] (any order, extra columns ignored),
/// then one transaction per line. Errors name the line.
pub fn parse_dataset(text: &str) -> Result<Vec<Sample>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err("the file is empty".into());
    };
    let header = split_csv(header).map_err(|e| format!("line 1: {e}"))?;
    let mut positions = [0usize; 11];
    for (i, column) in COLUMNS.iter().enumerate() {
        positions[i] = (header.iter().position(|h| h.trim() == *column))
            .ok_or_else(|| format!("line 1: the header has no column `{column}`"))?;
    }
    let mut samples = Vec::new();
    for (n, line) in lines {
        let line_no = n + 1;
        let fields = split_csv(line).map_err(|e| format!("line {line_no}: {e}"))?;
        if fields.len() < header.len() {
            return Err(format!(
                "line {line_no}: {} fields, the header has {}",
                fields.len(),
                header.len()
            ));
        }
        let values: [String; 11] = std::array::from_fn(|i| fields[positions[i]].trim().to_string());
        let amount = &values[5];
        if amount.parse::<f64>().map_or(true, |a| !a.is_finite()) {
            return Err(format!("line {line_no}: amount {amount:?} is not a number"));
        }
        samples.push(Sample(values));
    }
    if samples.is_empty() {
        return Err("the file has a header but no rows".into());
    }
    Ok(samples)
}

/// The fields of one CSV line (RFC 4180 quoting; no line breaks inside fields).
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (_, c) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    fields.push(field);
    Ok(fields)
}

/// The `inject` kind.
pub struct InjectKind {
    /// Where records go.
    pub pool: PgPool,
    /// Where datasets are (`jobs/data`).
    pub data_dir: PathBuf,
    /// Where `injector.runs` goes.
    pub notifier: Arc<Notifier>,
}

impl InjectKind {
    fn dataset_path(&self, name: &str) -> Result<PathBuf, String> {
        let ok = !name.is_empty()
            && !name.starts_with('.')
            && (name.chars()).all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !ok {
            return Err(format!(
                "dataset {name:?} must be a file name in {} (letters, digits, . _ -)",
                self.data_dir.display()
            ));
        }
        Ok(self.data_dir.join(name))
    }
}

/// Insert `picked` rows stamped with `client_id` and now, in one statement.
async fn insert_rows(
    conn: &mut sqlx::PgConnection,
    run_id: uuid::Uuid,
    client_id: &str,
    picked: &[&Sample],
) -> anyhow::Result<u64> {
    let column = |i: usize| {
        picked
            .iter()
            .map(|s| s.0[i].as_str())
            .collect::<Vec<&str>>()
    };
    let done = sqlx::query(
        "INSERT INTO records (run_id, client_id, completed_at, transaction_id, customer_id, \
             customer_name, merchant, category, amount, currency, payment_method, country, \
             card_last4, status) \
         SELECT $1, $2, clock_timestamp(), * FROM unnest($3::text[], $4::text[], $5::text[], \
             $6::text[], $7::text[], $8::numeric[], $9::text[], $10::text[], $11::text[], \
             $12::text[], $13::text[])",
    )
    .bind(run_id)
    .bind(client_id)
    .bind(column(0))
    .bind(column(1))
    .bind(column(2))
    .bind(column(3))
    .bind(column(4))
    .bind(column(5))
    .bind(column(6))
    .bind(column(7))
    .bind(column(8))
    .bind(column(9))
    .bind(column(10))
    .execute(conn)
    .await
    .context("inserting records")?;
    Ok(done.rows_affected())
}

impl JobKind for InjectKind {
    const NAME: &'static str = crate::domain::jobs::kinds::INJECT;
    type Args = InjectArgs;

    async fn run(&self, job: Job<InjectArgs>) -> Result<Value, JobError> {
        let started = Instant::now();
        let args = &job.args;
        let dataset = args
            .dataset
            .clone()
            .unwrap_or_else(|| "transactions.csv".into());
        let done: Option<(i32, String)> =
            sqlx::query_as("SELECT rows_inserted, status FROM injector_runs WHERE job_id = $1")
                .bind(job.id)
                .fetch_optional(&self.pool)
                .await?;
        if let Some((rows, status)) = done {
            return Ok(json!({ "rows": rows, "status": status, "repeated": true }));
        }
        let loaded = match self.dataset_path(&dataset) {
            Ok(path) => load(&path).await,
            Err(e) => Err(e),
        };
        let mut tx = self.pool.begin().await?;
        let (inserted, error) = match &loaded {
            Ok(samples) => {
                let picked: Vec<&Sample> = {
                    let mut rng = rand::rng();
                    (0..args.rows)
                        .filter_map(|_| samples.choose(&mut rng))
                        .collect()
                };
                let n = insert_rows(&mut tx, job.id, &args.client_id, &picked).await?;
                (n as i32, None)
            }
            Err(e) => (0, Some(e.clone())),
        };
        let status = if error.is_some() {
            "failed"
        } else {
            "succeeded"
        };
        let duration_ms = started.elapsed().as_millis() as i32;
        sqlx::query(
            "INSERT INTO injector_runs (job_id, client_id, dataset, rows_requested, \
                                        rows_inserted, status, error, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(job.id)
        .bind(&args.client_id)
        .bind(&dataset)
        .bind(args.rows as i32)
        .bind(inserted)
        .bind(status)
        .bind(&error)
        .bind(duration_ms)
        .execute(&mut *tx)
        .await?;
        let outcome = json!({
            "run": job.id, "status": status, "rows": inserted, "requested": args.rows,
            "client_id": args.client_id, "dataset": dataset, "duration_ms": duration_ms,
            "error": error, "at": Utc::now(),
            "message": match &error {
                None => format!("Injected {inserted} records for {}", args.client_id),
                Some(e) => format!("Injector run failed: {e}"),
            },
        });
        publish(
            &mut tx,
            self.notifier.config(),
            Topic::InjectorRuns,
            None,
            outcome.clone(),
        )
        .await?;
        tx.commit().await?;
        match error {
            // A bad dataset fails the same way every time: no retries.
            Some(e) => Err(JobError::permanent(anyhow!(e))),
            None => Ok(outcome),
        }
    }
}

/// Read and parse a dataset file.
async fn load(path: &Path) -> Result<Vec<Sample>, String> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    parse_dataset(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "transaction_id,customer_id,customer_name,merchant,category,amount,\
                          currency,payment_method,country,card_last4,status";

    #[test]
    fn the_shipped_dataset_parses() {
        let text = include_str!("../../jobs/data/transactions.csv");
        let samples = parse_dataset(text).unwrap();
        assert!(samples.len() >= 1000, "{}", samples.len());
    }

    #[test]
    fn quoted_fields_and_reordered_columns_parse() {
        let text = format!(
            "extra,{HEADER}\nx,t1,c1,\"Doe, Jane\",\"Bob \"\"s\"\"\",food,1.50,EUR,card,DE,1234,ok\n"
        );
        let samples = parse_dataset(&text).unwrap();
        assert_eq!(samples[0].0[2], "Doe, Jane");
        assert_eq!(samples[0].0[3], "Bob \"s\"");
        assert_eq!(samples[0].0[5], "1.50");
    }

    #[test]
    fn errors_name_the_line() {
        let bad_amount = format!(
            "{HEADER}\nt,c,n,m,cat,1.00,EUR,card,DE,1,ok\nt,c,n,m,cat,ten,EUR,card,DE,1,ok\n"
        );
        assert_eq!(
            parse_dataset(&bad_amount).unwrap_err(),
            "line 3: amount \"ten\" is not a number"
        );
        let missing = "transaction_id,amount\nt,1\n";
        assert!(
            parse_dataset(missing)
                .unwrap_err()
                .contains("line 1: the header has no column `customer_id`")
        );
        let short = format!("{HEADER}\nt,c\n");
        assert!(parse_dataset(&short).unwrap_err().starts_with("line 2:"));
        assert!(parse_dataset("").is_err());
        assert!(parse_dataset(&format!("{HEADER}\n")).is_err());
    }
}
