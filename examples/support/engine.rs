//! Starting what the job benchmarks run against: the stream's sequencer (which wakes the
//! workers, as in the daemon), the engine with the daemon's kinds and optional no-op kinds of
//! the benchmark's own, the real `App` on loopback; and waiting for, and timing, jobs on the
//! database's clock.

#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use workhorse::app::{App, Storage};
use workhorse::config::{Config, EventsConfig, JobsConfig};
use workhorse::engine::{Engine, Job, JobError, JobKind, Registry};
use workhorse::health::Health;
use workhorse::store::{self, jobs};
use workhorse::stream::Hub;

/// How long an engine may take to stop; every no-op job has finished by then.
pub const SHUTDOWN: Duration = Duration::from_secs(2);

/// A kind that does nothing, for load that must not share a kind with what is measured.
pub struct Busy;

impl JobKind for Busy {
    const NAME: &'static str = "bench_busy";
    type Args = Value;

    async fn run(&self, _job: Job<Value>) -> Result<Value, JobError> {
        Ok(Value::Null)
    }
}

/// The stream's sequencer as the daemon runs it (it also announces new pending jobs to the
/// workers); the hub's fetcher has no clients. Stops when the token is cancelled.
pub fn sequencer(pool: &PgPool) -> CancellationToken {
    let stop = CancellationToken::new();
    Hub::new(pool.clone(), EventsConfig::default()).start(&stop);
    stop
}

/// The daemon's kinds with the built-in settings, plus [`Busy`].
pub fn registry(pool: &PgPool) -> Registry {
    let mut registry = workhorse::jobs::registry(pool);
    registry.register(Busy);
    registry
}

/// The engine over `pool` with [`registry`]'s kinds.
pub async fn start(pool: &PgPool, config: &JobsConfig) -> anyhow::Result<Engine> {
    Engine::start(pool.clone(), config, registry(pool), Health::default())
        .await
        .context("starting the engine")
}

/// Insert `n` no-op jobs of `kind` with `enqueue_many`, 10,000 per statement.
pub async fn enqueue_noop(pool: &PgPool, kind: &str, n: usize) -> anyhow::Result<()> {
    let args = vec![json!({}); n.clamp(1, 10_000)];
    let mut conn = pool.acquire().await.context("acquiring a connection")?;
    let mut created = 0;
    while created < n {
        let k = args.len().min(n - created);
        jobs::enqueue_many(&mut conn, kind, 1, &args[..k], &[]).await?;
        created += k;
    }
    Ok(())
}

/// The database's clock.
pub async fn db_now(pool: &PgPool) -> anyhow::Result<DateTime<Utc>> {
    sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(pool)
        .await
        .context("reading the database clock")
}

/// Wait until no job is pending, retrying or running; fails at `deadline`.
pub async fn wait_idle(pool: &PgPool, deadline: Instant) -> anyhow::Result<()> {
    loop {
        // Both subqueries are answered by the partial indexes over live jobs.
        let live: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM jobs WHERE state IN ('pending', 'retrying')) \
                 OR EXISTS (SELECT 1 FROM jobs WHERE state = 'running')",
        )
        .fetch_one(pool)
        .await
        .context("polling for live jobs")?;
        if !live {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("jobs were still live at the deadline");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a drain measured.
pub struct Drained {
    /// Jobs per second from engine start to the last finish (database clock).
    pub rate: f64,
    /// Seconds from engine start to the last finish.
    pub secs: f64,
}

/// Enqueue `total` no-op echo jobs, start an engine with `config` and time until all have
/// succeeded: engine start → last finished_at. Jobs that finished before are not counted.
pub async fn drain(pool: &PgPool, config: &JobsConfig, total: usize) -> anyhow::Result<Drained> {
    enqueue_noop(pool, "echo", total).await?;
    let started = db_now(pool).await?;
    let engine = start(pool, config).await?;
    let deadline =
        Instant::now() + Duration::from_secs(60) + Duration::from_millis(5) * total as u32;
    let waited = wait_idle(pool, deadline).await;
    engine.shutdown(SHUTDOWN).await;
    waited?;
    let (succeeded, last): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE state = 'succeeded'), max(finished_at) FROM jobs \
         WHERE finished_at >= $1",
    )
    .bind(started)
    .fetch_one(pool)
    .await
    .context("reading the drain's outcome")?;
    ensure!(
        succeeded == total as i64,
        "{succeeded} of {total} jobs succeeded"
    );
    let secs = (last.context("no job finished")? - started).as_seconds_f64();
    Ok(Drained {
        rate: total as f64 / secs,
        secs,
    })
}

/// Wait until every job of `ids` has finished.
pub async fn wait_finished(pool: &PgPool, ids: &[Uuid], deadline: Instant) -> anyhow::Result<()> {
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE id = ANY($1) AND finished_at IS NULL",
        )
        .bind(ids)
        .fetch_one(pool)
        .await
        .context("polling for finished jobs")?;
        if waiting == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{waiting} jobs had not finished at the deadline");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The milliseconds `sql` computes for the jobs `ids` ($1), sorted.
pub async fn millis(pool: &PgPool, sql: &'static str, ids: &[Uuid]) -> anyhow::Result<Vec<f64>> {
    let mut values: Vec<f64> = sqlx::query_scalar(sql)
        .bind(ids)
        .fetch_all(pool)
        .await
        .context("reading the timings")?;
    values.sort_by(f64::total_cmp);
    Ok(values)
}

/// Enqueue `samples` single echo jobs 10–20 ms apart; returns each job's created_at →
/// started_at in ms (database clock: insert, commit, wake-up, claim), sorted.
pub async fn pickup(pool: &PgPool, samples: usize) -> anyhow::Result<Vec<f64>> {
    Ok(pickup_parts(pool, samples).await?.total)
}

/// Pickup times, and where they went.
pub struct Pickups {
    /// created_at → started_at, ms, sorted.
    pub total: Vec<f64>,
    /// created_at → the enqueue's return to its caller (insert and commit), ms, sorted.
    pub committed: Vec<f64>,
    /// The enqueue's return → started_at (wake-up and claim), ms, sorted.
    pub woken: Vec<f64>,
}

/// [`pickup`], split at the moment each enqueue returned (this machine's clock, which is the
/// database's: both run here).
pub async fn pickup_parts(pool: &PgPool, samples: usize) -> anyhow::Result<Pickups> {
    let mut conn = pool.acquire().await.context("acquiring a connection")?;
    let mut returned = std::collections::HashMap::with_capacity(samples);
    for _ in 0..samples {
        let job = jobs::NewJob::new("echo", json!({}), 1);
        let id = jobs::enqueue(&mut conn, &job).await?.id();
        returned.insert(id, Utc::now());
        // Jittered, so the gaps do not line up with any periodic task.
        tokio::time::sleep(Duration::from_millis(10 + rand::random_range(0..=10))).await;
    }
    drop(conn);
    let ids: Vec<Uuid> = returned.keys().copied().collect();
    wait_finished(pool, &ids, Instant::now() + Duration::from_secs(30)).await?;
    let rows: Vec<(Uuid, DateTime<Utc>, Option<DateTime<Utc>>)> =
        sqlx::query_as("SELECT id, created_at, started_at FROM jobs WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(pool)
            .await
            .context("reading the timings")?;
    let ms = |from: DateTime<Utc>, to: DateTime<Utc>| (to - from).as_seconds_f64() * 1000.0;
    let (mut total, mut committed, mut woken) = (Vec::new(), Vec::new(), Vec::new());
    for (id, created, started) in rows {
        let (Some(started), Some(back)) = (started, returned.get(&id)) else {
            bail!("job {id} finished without a start time");
        };
        total.push(ms(created, started));
        committed.push(ms(created, *back));
        woken.push(ms(*back, started));
    }
    for values in [&mut total, &mut committed, &mut woken] {
        values.sort_by(f64::total_cmp);
    }
    Ok(Pickups {
        total,
        committed,
        woken,
    })
}

/// The daemon, running in this process.
pub struct RunningApp {
    /// Where it listens, `http://127.0.0.1:port`.
    pub base: String,
    shutdown: CancellationToken,
    served: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningApp {
    /// The real `App` with `config` (listening on a free loopback port, its data and schedules
    /// in `data_dir`) over a pool of its own, as it closes the pool when it stops; returns once
    /// `/readyz` answers 200.
    pub async fn start(url: &str, mut config: Config, data_dir: &Path) -> anyhow::Result<Self> {
        config.http.listen = "127.0.0.1:0"
            .parse()
            .context("parsing the listen address")?;
        config.data_dir = data_dir.to_path_buf();
        config.jobs.schedules_dir = data_dir.to_path_buf();
        let pool = store::connect_lazy(url, &config.database)?;
        let app = App::with_storage(config, Storage::from_pool(pool).await?).await?;
        let base = format!("http://{}", app.local_addr());
        let shutdown = app.shutdown_token();
        let served = tokio::spawn(app.run());
        let running = Self {
            base,
            shutdown,
            served,
        };
        let client = reqwest::Client::builder().no_proxy().build()?;
        let ready = format!("{}/readyz", running.base);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(resp) = client.get(&ready).send().await
                && resp.status() == 200
            {
                return Ok(running);
            }
            if Instant::now() > deadline {
                running.stop().await?;
                bail!("the app was not ready within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Shut it down and wait until it has stopped.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.served.await.context("the app task")?
    }
}
