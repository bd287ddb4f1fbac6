//! Cron schedules from `jobs/*.toml`: loaded and checked at start-up, and fired by
//! tokio-cron-scheduler. Each schedule is armed as a one-shot timer at its next tick, computed
//! by croner in the schedule's time zone (tokio-cron-scheduler's own cron jobs freeze the UTC
//! offset when created, so they drift by an hour across daylight-saving changes, and they do
//! not tell the callback which tick fired). Firing records the tick in `schedule_ticks` and
//! enqueues the job in one transaction, so each tick fires once across all daemons.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio_cron_scheduler::{Job as TimerJob, JobScheduler};
use tracing::Instrument;
use uuid::Uuid;

use crate::config::JobsConfig;
use crate::domain::schedule::{Schedule, ScheduleFile};
use crate::engine::Catalog;
use crate::metrics::Metrics;
use crate::store::jobs::NewJob;
use crate::store::schedules;

/// Read every `*.toml` in `dir` (a missing directory means no schedules). Each file must be a
/// valid schedule of a known job kind with fitting arguments, and names must be unique; the
/// error names the file and what is wrong.
pub fn load(dir: &Path, catalog: &Catalog) -> anyhow::Result<Vec<Schedule>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading schedules from {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut schedules: Vec<Schedule> = Vec::new();
    for file in files {
        let shown = crate::config::absolute(&file);
        let bad = |why: String| anyhow::anyhow!("schedule file {}: {why}", shown.display());
        let text = std::fs::read_to_string(&file).map_err(|e| bad(e.to_string()))?;
        let raw: ScheduleFile = toml::from_str(&text).map_err(|e| bad(e.message().into()))?;
        let schedule = Schedule::parse(raw).map_err(bad)?;
        match catalog.check(&schedule.kind, &schedule.args) {
            None => {
                return Err(bad(format!(
                    "`kind` = {:?}: expected one of {:?}",
                    schedule.kind,
                    catalog.names()
                )));
            }
            Some(Err(why)) => {
                return Err(bad(format!(
                    "`args` do not fit job kind `{}`: {why}",
                    schedule.kind
                )));
            }
            Some(Ok(())) => {}
        }
        if schedules.iter().any(|s| s.name == schedule.name) {
            return Err(bad(format!("`name` = {:?} is used twice", schedule.name)));
        }
        schedules.push(schedule);
    }
    Ok(schedules)
}

/// The job a tick of `schedule` enqueues.
pub fn job_for(schedule: &Schedule, key: String, config: &JobsConfig) -> NewJob {
    NewJob {
        dedup_key: Some(key),
        trace_context: crate::telemetry::current_trace_context(),
        ..NewJob::new(
            schedule.kind.clone(),
            schedule.args.clone(),
            config.kind(&schedule.kind).max_attempts,
        )
    }
}

/// Enqueue a run of `schedule` now, outside its ticks (an admin's trigger).
pub async fn trigger(
    pool: &PgPool,
    schedule: &Schedule,
    config: &JobsConfig,
) -> anyhow::Result<Uuid> {
    let now = Utc::now();
    let key = format!("cron:{}:manual:{}", schedule.name, Uuid::now_v7());
    let job = job_for(schedule, key, config);
    schedules::fire(pool, &schedule.name, now, true, &job)
        .await?
        .context("a manual trigger collided with a tick at the same microsecond")
}

struct Ticker {
    pool: PgPool,
    config: JobsConfig,
    metrics: Metrics,
}

/// The running schedules of this process.
pub struct Scheduler {
    timers: JobScheduler,
}

impl Scheduler {
    /// Arm every enabled schedule at its next tick; records no metrics.
    pub async fn start(
        pool: PgPool,
        schedules: Arc<Vec<Schedule>>,
        config: &JobsConfig,
    ) -> anyhow::Result<Self> {
        Self::start_measured(pool, schedules, config, Metrics::default()).await
    }

    /// [`Scheduler::start`], counting ticks fired and missed in `metrics`.
    pub async fn start_measured(
        pool: PgPool,
        schedules: Arc<Vec<Schedule>>,
        config: &JobsConfig,
        metrics: Metrics,
    ) -> anyhow::Result<Self> {
        let timers = JobScheduler::new()
            .await
            .context("creating the cron scheduler")?;
        let ticker = Arc::new(Ticker {
            pool,
            config: config.clone(),
            metrics,
        });
        let now = Utc::now();
        for schedule in schedules.iter().filter(|s| s.enabled) {
            if schedule.catch_up {
                catch_up(&ticker, schedule, now).await?;
            }
            arm(
                timers.clone(),
                ticker.clone(),
                Arc::new(schedule.clone()),
                now,
            )
            .await;
        }
        timers
            .start()
            .await
            .context("starting the cron scheduler")?;
        let enabled = schedules.iter().filter(|s| s.enabled).count();
        tracing::info!(enabled, total = schedules.len(), "cron schedules armed");
        Ok(Self { timers })
    }

    /// Stop firing.
    pub async fn shutdown(mut self) {
        if let Err(e) = self.timers.shutdown().await {
            tracing::warn!(error = %e, "stopping the cron scheduler failed");
        }
    }
}

/// Arm a one-shot timer at the first tick of `schedule` after `after`; when it fires, fire the
/// tick and arm the next one.
fn arm(
    timers: JobScheduler,
    ticker: Arc<Ticker>,
    schedule: Arc<Schedule>,
    after: DateTime<Utc>,
) -> Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(async move {
        let Some(tick) = schedule.next_tick(after) else {
            tracing::info!(
                schedule = schedule.name,
                "the schedule has no further ticks"
            );
            return;
        };
        let wait = (tick - Utc::now()).to_std().unwrap_or_default();
        let timer = TimerJob::new_one_shot_at_instant_async(Instant::now() + wait, {
            let (ticker, schedule) = (ticker.clone(), schedule.clone());
            move |_, timers| {
                let (ticker, schedule) = (ticker.clone(), schedule.clone());
                Box::pin(async move {
                    // The timer runs on the monotonic clock and may wake a little before the
                    // wall-clock tick; a job must never see a time before its tick.
                    if let Ok(early) = (tick - Utc::now()).to_std() {
                        tokio::time::sleep(early).await;
                    }
                    fire(&ticker, &schedule, tick, false).await;
                    arm(timers, ticker, schedule, tick).await;
                })
            }
        });
        let added = match timer {
            Ok(timer) => timers.add(timer).await.map(drop),
            Err(e) => Err(e),
        };
        if let Err(e) = added {
            tracing::error!(schedule = schedule.name, error = %e, "arming a cron tick failed");
        }
    })
}

/// Fire the latest tick of `schedule` in (its last scheduled tick, `now`], missed while no
/// daemon ran. A schedule that has never fired has missed nothing (a fresh install). The tick
/// and its key are those of a normal tick, so daemons starting together fire it once.
async fn catch_up(ticker: &Ticker, schedule: &Schedule, now: DateTime<Utc>) -> anyhow::Result<()> {
    let last = schedules::last_scheduled_tick(&ticker.pool, &schedule.name)
        .await
        .with_context(|| format!("reading the last tick of schedule {}", schedule.name))?;
    if let Some(tick) = last.and_then(|last| schedule.latest_tick_between(last, now)) {
        fire(ticker, schedule, tick, true).await;
    }
    Ok(())
}

/// Fire one tick (`catch_up`: one missed while no daemon ran): record it and enqueue its job,
/// unless another daemon did. A database error is retried for a while; a tick that still
/// cannot be recorded is logged as missed.
async fn fire(ticker: &Ticker, schedule: &Schedule, tick: DateTime<Utc>, catch_up: bool) {
    let span = tracing::info_span!("cron tick", schedule = schedule.name, %tick, catch_up, job.id = tracing::field::Empty);
    async {
        let key = format!("cron:{}:{}", schedule.name, tick.to_rfc3339());
        let job = job_for(schedule, key, &ticker.config);
        for attempt in 1..=10u32 {
            match schedules::fire(&ticker.pool, &schedule.name, tick, false, &job).await {
                Ok(Some(id)) => {
                    tracing::Span::current().record("job.id", tracing::field::display(id));
                    ticker.metrics.schedule_tick(&schedule.name, "fired");
                    if catch_up {
                        tracing::info!(schedule = schedule.name, %tick, job.id = %id,
                            "missed cron tick caught up");
                    } else {
                        tracing::info!(schedule = schedule.name, %tick, job.id = %id, "cron tick fired");
                    }
                    return;
                }
                Ok(None) => {
                    tracing::debug!(schedule = schedule.name, %tick, "tick fired by another daemon");
                    return;
                }
                Err(e) => {
                    tracing::warn!(schedule = schedule.name, %tick, attempt,
                        error = format!("{e:#}"), "firing a cron tick failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(200 * attempt as u64))
                        .await;
                }
            }
        }
        ticker.metrics.schedule_tick(&schedule.name, "missed");
        tracing::error!(schedule = schedule.name, %tick, "cron tick missed: the database stayed unreachable");
    }
    .instrument(span)
    .await
}
