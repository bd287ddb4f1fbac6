//! `workhorse jobs`: list, show (args, every attempt's error, result, trace id), retry and
//! cancel, by id or (retry) in a batch by state and kind, through `work::jobs`.

use chrono::{DateTime, Utc};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::operator::{Operator, Usage, refused};
use super::output::{Outcome, Table, ago, ago_or_dash, print_json, report};
use crate::domain::jobs::JobState;
use crate::store;
use crate::store::jobs::{JobDetail, JobFilter};
use crate::work;

/// Jobs.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first.
    List {
        /// Only jobs of this kind.
        #[arg(long)]
        kind: Option<String>,
        /// Only jobs in this state.
        #[arg(long, value_parser = state_parser())]
        state: Option<JobState>,
        /// Only jobs of this user (id).
        #[arg(long, value_name = "USER_ID")]
        owner: Option<Uuid>,
        /// At most this many.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
    },
    /// A job with its arguments, every attempt's error, its result and trace id.
    Show {
        /// The job's id.
        id: Uuid,
    },
    /// Run dead or cancelled jobs again with fresh attempts: the ids given, or a batch with
    /// --state (and --kind). The owner's plan bounds and quotas apply as when an admin retries.
    Retry {
        /// The jobs' ids.
        #[arg(required_unless_present = "state", conflicts_with = "state")]
        ids: Vec<Uuid>,
        /// Retry the jobs in this state instead.
        #[arg(long, value_enum)]
        state: Option<RetryState>,
        /// With --state: only jobs of this kind.
        #[arg(long, requires = "state")]
        kind: Option<String>,
        /// With --state: at most this many, newest first.
        #[arg(long, default_value_t = 1000, requires = "state",
              value_parser = clap::value_parser!(i64).range(1..=100_000))]
        limit: i64,
    },
    /// Cancel jobs that have not finished; a running attempt stops and its result is discarded.
    Cancel {
        /// The jobs' ids.
        #[arg(required = true)]
        ids: Vec<Uuid>,
    },
}

/// `--state`: one of the API's job state names.
fn state_parser() -> impl TypedValueParser<Value = JobState> {
    PossibleValuesParser::new(JobState::ALL.map(JobState::as_str)).map(|name| {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == name)
            .unwrap_or(JobState::Pending)
    })
}

/// The states a batch retry takes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RetryState {
    /// Failed for good.
    Dead,
    /// Cancelled.
    Cancelled,
}

/// A job in a listing.
#[derive(Debug, Serialize)]
struct JobRow {
    id: Uuid,
    kind: String,
    state: &'static str,
    attempts: i32,
    max_attempts: i32,
    run_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

/// A job in full.
#[derive(Debug, Serialize)]
struct JobView {
    id: Uuid,
    kind: String,
    state: &'static str,
    priority: i16,
    owner_id: Option<Uuid>,
    attempts: i32,
    max_attempts: i32,
    crashes: i32,
    dedup_key: Option<String>,
    run_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    args: Value,
    errors: Value,
    result: Option<Value>,
    dead_reason: Option<String>,
    trace_id: Option<String>,
}

/// Run a `jobs` command.
pub async fn run(op: &Operator, command: JobsCommand) -> anyhow::Result<()> {
    match command {
        JobsCommand::List {
            kind,
            state,
            owner,
            limit,
        } => list(op, kind, state, owner, limit).await,
        JobsCommand::Show { id } => show(op, id).await,
        JobsCommand::Retry {
            ids,
            state,
            kind,
            limit,
        } => {
            let ids = match state {
                None => ids,
                Some(state) => batch(op, state, kind, limit).await?,
            };
            retry(op, ids).await
        }
        JobsCommand::Cancel { ids } => cancel(op, ids).await,
    }
}

fn known_kind(op: &Operator, kind: Option<String>) -> anyhow::Result<Option<&'static str>> {
    let Some(kind) = kind else { return Ok(None) };
    match op.work.catalog.name(&kind) {
        Some(name) => Ok(Some(name)),
        None => Err(Usage(format!(
            "unknown job kind {kind:?}; known kinds: {}",
            op.work.catalog.names().join(", ")
        ))
        .into()),
    }
}

fn state_of(stored: &str, run_at: DateTime<Utc>) -> &'static str {
    JobState::of(stored, run_at, Utc::now()).map_or("unknown", JobState::as_str)
}

async fn list(
    op: &Operator,
    kind: Option<String>,
    state: Option<JobState>,
    owner: Option<Uuid>,
    limit: i64,
) -> anyhow::Result<()> {
    let kind = known_kind(op, kind)?;
    let filter = JobFilter {
        owner,
        kind,
        state: state.map(JobState::as_str),
        before: None,
        limit,
    };
    let jobs = store::jobs::list_jobs(op.pool(), &filter).await?;
    let rows: Vec<JobRow> = (jobs.into_iter())
        .map(|j| JobRow {
            state: state_of(&j.state, j.run_at),
            id: j.id,
            kind: j.kind,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            run_at: j.run_at,
            created_at: j.created_at,
            finished_at: j.finished_at,
        })
        .collect();
    if op.json {
        return print_json(&rows);
    }
    let now = Utc::now();
    let mut table = Table::new(&["ID", "KIND", "STATE", "ATTEMPTS", "CREATED", "FINISHED"]);
    for r in rows {
        table.row(vec![
            r.id.to_string(),
            r.kind,
            r.state.into(),
            format!("{}/{}", r.attempts, r.max_attempts),
            ago(r.created_at, now),
            ago_or_dash(r.finished_at, now),
        ]);
    }
    table.print("no jobs");
    Ok(())
}

fn view(d: JobDetail) -> JobView {
    let trace_id = (d.trace_context.get("traceparent"))
        .and_then(Value::as_str)
        .and_then(|tp| tp.split('-').nth(1))
        .map(str::to_string);
    let j = d.job;
    JobView {
        state: state_of(&j.state, j.run_at),
        id: j.id,
        kind: j.kind,
        priority: d.priority,
        owner_id: j.owner_id,
        attempts: j.attempts,
        max_attempts: j.max_attempts,
        crashes: j.crashes,
        dedup_key: j.dedup_key,
        run_at: j.run_at,
        created_at: j.created_at,
        started_at: j.started_at,
        finished_at: j.finished_at,
        args: j.args,
        errors: j.errors,
        result: j.result,
        dead_reason: j.dead_reason,
        trace_id,
    }
}

async fn show(op: &Operator, id: Uuid) -> anyhow::Result<()> {
    let job = store::jobs::find_job_detail(op.pool(), id, None)
        .await?
        .ok_or_else(|| anyhow::anyhow!("job {id} not found"))?;
    let v = view(job);
    if op.json {
        return print_json(&v);
    }
    let now = Utc::now();
    let dash = |s: Option<String>| s.unwrap_or_else(|| "-".into());
    println!("id:           {}", v.id);
    println!("kind:         {}", v.kind);
    println!("state:        {}", v.state);
    println!("priority:     {}", v.priority);
    println!("owner:        {}", dash(v.owner_id.map(|o| o.to_string())));
    println!(
        "attempts:     {}/{} ({} crashed)",
        v.attempts, v.max_attempts, v.crashes
    );
    println!("dedup key:    {}", dash(v.dedup_key));
    println!("run at:       {} ({})", v.run_at, ago(v.run_at, now));
    println!(
        "created:      {} ({})",
        v.created_at,
        ago(v.created_at, now)
    );
    println!("started:      {}", ago_or_dash(v.started_at, now));
    println!("finished:     {}", ago_or_dash(v.finished_at, now));
    println!("trace id:     {}", dash(v.trace_id));
    println!("dead reason:  {}", dash(v.dead_reason));
    println!("args:         {}", v.args);
    match v.result {
        Some(result) => println!("result:       {result}"),
        None => println!("result:       -"),
    }
    let errors = v.errors.as_array().cloned().unwrap_or_default();
    println!("errors:       {}", errors.len());
    for e in errors {
        let permanent = e["permanent"].as_bool().unwrap_or(false);
        println!(
            "  attempt {} at {}{}: {}",
            e["attempt"],
            e["at"].as_str().unwrap_or("?"),
            if permanent { " (permanent)" } else { "" },
            e["error"].as_str().unwrap_or("?"),
        );
    }
    Ok(())
}

async fn batch(
    op: &Operator,
    state: RetryState,
    kind: Option<String>,
    limit: i64,
) -> anyhow::Result<Vec<Uuid>> {
    let kind = known_kind(op, kind)?;
    let filter = JobFilter {
        owner: None,
        kind,
        state: Some(match state {
            RetryState::Dead => "dead",
            RetryState::Cancelled => "cancelled",
        }),
        before: None,
        limit,
    };
    let jobs = store::jobs::list_jobs(op.pool(), &filter).await?;
    Ok(jobs.into_iter().map(|j| j.id).collect())
}

async fn retry(op: &Operator, ids: Vec<Uuid>) -> anyhow::Result<()> {
    let mut outcomes = Vec::with_capacity(ids.len());
    // One transaction per job: one job refused (its owner's plan, a dedup key) leaves the
    // others retried.
    for id in ids {
        let mut tx = op.pool().begin().await?;
        let outcome = match work::jobs::retry(&op.work, &mut tx, &op.caller, id).await {
            Ok(_) => {
                let state = store::jobs::find_job(&mut *tx, id, None)
                    .await?
                    .map_or("gone", |j| state_of(&j.state, j.run_at));
                tx.commit().await?;
                Outcome::done(id, state)
            }
            Err(e) => Outcome::failed(id, refused(e)),
        };
        outcomes.push(outcome);
    }
    report(&outcomes, "job", "retried", op.json)
}

async fn cancel(op: &Operator, ids: Vec<Uuid>) -> anyhow::Result<()> {
    let mut conn = op.pool().acquire().await?;
    let mut outcomes = Vec::with_capacity(ids.len());
    for id in ids {
        let mut tx = sqlx::Acquire::begin(&mut *conn).await?;
        let outcome = match work::jobs::cancel(&op.work, &mut tx, &op.caller, id).await {
            Ok(()) => {
                tx.commit().await?;
                Outcome::done(id, "cancelled")
            }
            Err(e) => Outcome::failed(id, refused(e)),
        };
        outcomes.push(outcome);
    }
    report(&outcomes, "job", "cancelled", op.json)
}
