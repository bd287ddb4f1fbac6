//! `inject`: the transactions injector. Each run reads a sample-transactions CSV (by default
//! `jobs/data/transactions.csv`, made by `jobs/data/make_transactions.py`), picks N random rows,
//! stamps them with `completed_at` (now) and `client_id`, and streams them into `records` with
//! `COPY ... FROM STDIN`, in one transaction with the run's outcome and its `injector.runs`
//! event. A dataset is parsed once (`dataset.rs`), again only when its file changes. A run is
//! keyed by its job: a retried or repeated attempt finds the committed run and inserts nothing.

mod dataset;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, anyhow};
use chrono::Utc;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::domain::topics::Topic;
use crate::engine::{Job, JobError, JobKind};
use crate::notify::job::Notifier;
use crate::work::events::publish;

use dataset::{Dataset, Datasets, copy_escape};
pub use dataset::{Sample, parse_dataset};

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

/// The `inject` kind.
pub struct InjectKind {
    /// Where records go.
    pool: PgPool,
    /// Where datasets are (`jobs/data`).
    data_dir: PathBuf,
    /// Where `injector.runs` goes.
    notifier: Arc<Notifier>,
    /// The datasets parsed so far.
    datasets: Datasets,
}

impl InjectKind {
    /// The kind, reading datasets from `data_dir`.
    pub fn new(pool: PgPool, data_dir: PathBuf, notifier: Arc<Notifier>) -> Self {
        Self {
            pool,
            data_dir,
            notifier,
            datasets: Datasets::default(),
        }
    }

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

/// Bytes of `COPY` data sent at a time.
const COPY_CHUNK: usize = 1 << 20;

/// Copy `rows` random samples of `dataset` into `records`, stamped with `run_id`, `client_id`
/// and now.
async fn insert_rows(
    conn: &mut sqlx::PgConnection,
    run_id: uuid::Uuid,
    client_id: &str,
    dataset: &Dataset,
    rows: u32,
) -> anyhow::Result<u64> {
    let mut stamp = String::new();
    stamp.push_str(&run_id.to_string());
    stamp.push('\t');
    copy_escape(&mut stamp, client_id);
    stamp.push('\t');
    stamp.push_str(&Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    stamp.push('\t');
    let mut copy = conn
        .copy_in_raw(
            "COPY records (run_id, client_id, completed_at, transaction_id, customer_id, \
                 customer_name, merchant, category, amount, currency, payment_method, country, \
                 card_last4, status) FROM STDIN",
        )
        .await
        .context("starting to copy records")?;
    let sent: sqlx::Result<()> = async {
        // Not the thread's generator: this one is held across the awaits.
        let mut rng = StdRng::from_rng(&mut rand::rng());
        let mut buf = String::with_capacity(COPY_CHUNK + 1024);
        for _ in 0..rows {
            let Some(row) = dataset.rows.choose(&mut rng) else {
                break;
            };
            buf.push_str(&stamp);
            buf.push_str(row);
            if buf.len() >= COPY_CHUNK {
                copy.send(buf.as_bytes()).await?;
                buf.clear();
            }
        }
        if !buf.is_empty() {
            copy.send(buf.as_bytes()).await?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = sent {
        let _ = copy.abort(e.to_string()).await;
        return Err(e).context("copying records");
    }
    copy.finish().await.context("copying records")
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
            Ok(path) => self.datasets.load(&path).await,
            Err(e) => Err(e),
        };
        let mut tx = self.pool.begin().await?;
        let (inserted, error) = match &loaded {
            Ok(dataset) => {
                let n = insert_rows(&mut tx, job.id, &args.client_id, dataset, args.rows).await?;
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
