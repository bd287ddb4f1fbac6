//! `bench_notify`: webhook deliveries per second on this machine, in-process against a fresh
//! database: events are published in batches through `store::notifications::publish` while the
//! real `App` delivers them to a local receiver that answers 200 at once (live), or all before
//! the `App` starts (backlog). One channel, and a fan-out to several, each at the `notify`
//! kind's default concurrency (`notify.concurrency`) and at the engine's (`jobs.concurrency`); then one event fanned out to 10,000 channels
//! (`bench_notify/fanout.rs`). Prints a Markdown table; with `BENCH_FIGURES` set, also appends
//! each figure to that file. Run it through `bench/notify.sh` (release build); `--quick`
//! smoke-tests it.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chrono::{DateTime, Utc};
use clap::Parser;
use serde_json::json;
use sqlx::{Connection, PgPool};
use uuid::Uuid;
use workhorse::config::{Config, DatabaseConfig, JobsConfig, KindConfig, NotifyConfig};
use workhorse::domain::users::{NewUser, Role};
use workhorse::notify::webhook;
use workhorse::store::{self, notifications};

/// The topic the benchmark's channels subscribe to and its events carry.
const TOPIC: &str = "scrapes.finished";

/// Sizes and connection; every size has a full and a `--quick` default.
#[path = "support/mod.rs"]
mod support;

#[path = "bench_notify/fanout.rs"]
mod fanout;
#[path = "bench_notify/outcome.rs"]
mod outcome;
#[path = "bench_notify/receiver.rs"]
mod receiver;

use outcome::{Figures, figures, wait_delivered};
use receiver::Receiver;
use support::engine::RunningApp;
use support::figures::figure;
use support::{ms, thousands};

#[derive(Parser)]
#[command(about = "Benchmark webhook deliveries (see bench/notify.sh)")]
struct Args {
    /// Small sizes for a smoke run; the figures mean nothing.
    #[arg(long)]
    quick: bool,
    /// Server to create the benchmark database on.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    admin_url: String,
    /// Name of the database to create and drop [default: wh_bench_notify_<pid>].
    #[arg(long)]
    database: Option<String>,
    /// Events to the single channel [default: 2000, quick 200].
    #[arg(long)]
    events: Option<usize>,
    /// Events of the fan-out [default: 200, quick 20].
    #[arg(long)]
    fanout_events: Option<usize>,
    /// Channels each fan-out event goes to.
    #[arg(long, default_value_t = 10)]
    fanout_channels: usize,
    /// Events published per transaction.
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// Tasks publishing at once, each on its own connection: one publisher (about a
    /// millisecond per event) capped the live one-channel rows below the delivery rate.
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// `jobs.kinds.notify.concurrency` values to measure [default: notify.concurrency's
    /// default, and jobs.concurrency's].
    #[arg(long, value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// Channels of the wide fan-out: one event to this many [default: 10000, quick 200].
    #[arg(long)]
    fanout_wide: Option<usize>,
    /// `jobs.kinds.notify.concurrency` of the wide fan-out.
    #[arg(long, default_value_t = 32)]
    fanout_concurrency: usize,
}

impl Args {
    fn size(&self, given: Option<usize>, full: usize, quick: usize) -> usize {
        given.unwrap_or(if self.quick { quick } else { full })
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    support::init_tracing();
    // The machine's cores, shared by the publisher, the receiver and the daemon.
    support::runtime()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let (args, database) = (&args, args.database.clone());
    let (rows, note) =
        support::with_scratch_database(&args.admin_url, database, "notify", |url| async move {
            measure(args, &url).await
        })
        .await?;
    support::warn_if_debug();
    println!(
        "| deliveries | notify concurrency | deliveries/s | event → delivered p50 | p95 | \
         publishing took | receiver requests |\n|---|---|---|---|---|---|---|"
    );
    for row in rows {
        println!("{row}");
    }
    println!("\n{note}");
    Ok(())
}

/// One measured run: `events` events, each to `channels` channels, at `concurrency`; published
/// while the daemon runs, or as a `backlog` before it starts.
struct Scenario {
    events: usize,
    channels: usize,
    concurrency: usize,
    backlog: bool,
}

/// Every scenario in turn on the database at `url`, emptying the outbox between them, then
/// the wide fan-out; returns the table rows and a note on the fan-out's times.
async fn measure(args: &Args, url: &str) -> anyhow::Result<(Vec<String>, String)> {
    let pool = store::connect_lazy(url, &DatabaseConfig::default())?;
    store::migrate(&pool, Duration::from_secs(10)).await?;
    let owner = bench_user(&pool).await?;
    let receiver = Receiver::start().await?;
    let default_concurrency = NotifyConfig::default().concurrency;
    let levels = match args.concurrency.is_empty() {
        true => vec![default_concurrency, JobsConfig::default().concurrency],
        false => args.concurrency.clone(),
    };
    ensure!(
        levels.iter().all(|&c| c > 0),
        "--concurrency values must be at least 1"
    );
    ensure!(args.batch > 0, "--batch must be at least 1");
    let shapes = [
        (args.size(args.events, 2_000, 200), 1),
        (
            args.size(args.fanout_events, 200, 20),
            args.fanout_channels.max(1),
        ),
    ];
    let mut rows = Vec::new();
    for backlog in [false, true] {
        for (events, channels) in shapes {
            for &concurrency in &levels {
                let scenario = Scenario {
                    events,
                    channels,
                    concurrency,
                    backlog,
                };
                rows.push(measure_one(url, &pool, &receiver, owner, &scenario, args).await?);
            }
        }
    }
    let (row, note) = fanout::fanout(url, &pool, &receiver, owner, args).await?;
    rows.push(row);
    pool.close().await;
    Ok((rows, note))
}

/// Run `scenario` on an emptied outbox; returns its table row.
async fn measure_one(
    url: &str,
    pool: &PgPool,
    receiver: &Receiver,
    owner: Uuid,
    scenario: &Scenario,
    args: &Args,
) -> anyhow::Result<String> {
    let (events, channels, concurrency) =
        (scenario.events, scenario.channels, scenario.concurrency);
    let how = match scenario.backlog {
        true => "backlog",
        false => "live",
    };
    eprintln!("{how}: {events} events × {channels} channels, notify concurrency {concurrency}");
    reset(pool).await?;
    let publishing = Publishing {
        batch: args.batch,
        publishers: args.publishers.max(1),
    };
    let f = deliver(url, pool, receiver, owner, scenario, publishing).await?;
    let variant = format!(
        "{how}, {events} events × {channels} channel{}, notify concurrency {concurrency}",
        if channels == 1 { "" } else { "s" }
    );
    figure(
        &format!("notify.{how}_{channels}ch_c{concurrency}"),
        f.rate,
        "deliveries/s",
        &format!("webhook deliveries/s, {variant}"),
    );
    if !scenario.backlog {
        figure(
            &format!("notify.{how}_{channels}ch_c{concurrency}_p50"),
            f.p50,
            "ms",
            &format!("event → delivered p50, {variant}"),
        );
    }
    let label = match concurrency == NotifyConfig::default().concurrency {
        true => format!("{concurrency} (default)"),
        false => concurrency.to_string(),
    };
    // A backlog's deliveries waited in the queue by design: no latency to report.
    let (p50, p95) = match scenario.backlog {
        true => ("—".to_string(), "—".to_string()),
        false => (ms(f.p50), ms(f.p95)),
    };
    Ok(format!(
        "| {how}: {} events × {channels} channel{} = {} | {label} | {} | {p50} | {p95} | {:.2} s | {} |",
        thousands(events as f64),
        if channels == 1 { "" } else { "s" },
        thousands(f.deliveries as f64),
        thousands(f.rate),
        f.publish_secs,
        thousands(f.requests as f64),
    ))
}

/// Start the daemon with `scenario`'s concurrency, publish its events in batches while it
/// runs, and wait until every delivery is delivered.
async fn deliver(
    url: &str,
    pool: &PgPool,
    receiver: &Receiver,
    owner: Uuid,
    scenario: &Scenario,
    publishing: Publishing,
) -> anyhow::Result<Figures> {
    let mut conn = pool.acquire().await.context("acquiring a connection")?;
    for n in 0..scenario.channels {
        let target = json!({ "url": receiver.url() });
        let secret = webhook::new_secret();
        let topics = [TOPIC.to_string()];
        let name = format!("bench {n}");
        notifications::insert_channel(
            &mut conn,
            owner,
            "webhook",
            &name,
            &target,
            Some(&secret),
            &topics,
        )
        .await?;
    }
    let data_dir = tempfile::tempdir().context("creating a data dir")?;
    receiver.reset();
    let expected = scenario.events * scenario.channels;
    let mut app = None;
    let outcome = async {
        let mut publish_secs = 0.0;
        if scenario.backlog {
            let clock = Instant::now();
            publish_events(pool, owner, scenario.events, publishing).await?;
            publish_secs = clock.elapsed().as_secs_f64();
        }
        app = Some(start_app(url, data_dir.path(), scenario.concurrency).await?);
        // Live events are timed from the first publish; a backlog from its first delivery, so
        // that the daemon's start-up is left out.
        let mut started = None;
        if !scenario.backlog {
            started = Some(db_clock(&mut conn).await?);
            let clock = Instant::now();
            publish_events(pool, owner, scenario.events, publishing).await?;
            publish_secs = clock.elapsed().as_secs_f64();
        }
        let deadline = Instant::now() + Duration::from_secs(60) + expected as u32 * MS_EACH;
        wait_delivered(pool, expected, deadline).await?;
        figures(pool, started, expected, publish_secs, receiver.count()).await
    }
    .await;
    if let Some(app) = app {
        app.stop().await?;
    }
    outcome
}

async fn db_clock(conn: &mut sqlx::PgConnection) -> anyhow::Result<DateTime<Utc>> {
    sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(conn)
        .await
        .context("reading the database clock")
}

/// The longest a single delivery may add to a scenario's deadline.
const MS_EACH: Duration = Duration::from_millis(20);

/// How events are published.
#[derive(Clone, Copy)]
struct Publishing {
    /// Events per transaction.
    batch: usize,
    /// Tasks publishing at once, each on its own connection.
    publishers: usize,
}

/// Publish `events` events for `owner`, `batch` per transaction, from `publishers` tasks that
/// take turns by batch.
async fn publish_events(
    pool: &PgPool,
    owner: Uuid,
    events: usize,
    publishing: Publishing,
) -> anyhow::Result<()> {
    let batch = publishing.batch.max(1);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..publishing.publishers)
        .map(|_| {
            let (pool, next) = (pool.clone(), next.clone());
            tokio::spawn(async move {
                let mut conn = pool.acquire().await.context("acquiring a connection")?;
                loop {
                    let first = next.fetch_add(batch, std::sync::atomic::Ordering::Relaxed);
                    if first >= events {
                        return anyhow::Ok(());
                    }
                    publish_batch(&mut conn, owner, first..(first + batch).min(events)).await?;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.context("a publishing task")??;
    }
    Ok(())
}

/// Publish the events numbered `numbers` for `owner` in one transaction.
async fn publish_batch(
    conn: &mut sqlx::PgConnection,
    owner: Uuid,
    numbers: std::ops::Range<usize>,
) -> anyhow::Result<()> {
    let mut tx = conn.begin().await.context("beginning a transaction")?;
    for n in numbers {
        let event = notifications::NewEvent {
            topic: TOPIC.into(),
            owner_id: Some(owner),
            payload: json!({ "scrape_id": Uuid::now_v7(), "n": n, "status": "succeeded" }),
            only_channel: None,
            all_owner_channels: false,
            max_attempts: 7,
        };
        notifications::publish(&mut tx, &event).await?;
    }
    tx.commit().await.context("committing a batch of events")
}

/// The real `App` allowed to reach loopback, with `concurrency` notify slots.
async fn start_app(
    url: &str,
    data_dir: &std::path::Path,
    concurrency: usize,
) -> anyhow::Result<RunningApp> {
    let mut config = Config::default();
    config.egress.allow = vec!["127.0.0.1".into()];
    config.jobs.kinds.insert(
        "notify".into(),
        KindConfig {
            concurrency: Some(concurrency),
            ..KindConfig::default()
        },
    );
    RunningApp::start(url, config, data_dir).await
}

/// The user whose channels the benchmark uses.
async fn bench_user(pool: &PgPool) -> anyhow::Result<Uuid> {
    let mut conn = pool.acquire().await.context("acquiring a connection")?;
    let user = NewUser::parse("bench", None, Role::User, None).map_err(anyhow::Error::msg)?;
    let user = store::users::insert_user(&mut conn, &user)
        .await
        .context("creating the benchmark user")?;
    Ok(user.id)
}

/// Empty the outbox, the channels and the queue (with what refers to jobs, all empty here).
async fn reset(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query("TRUNCATE deliveries, events, channel_topics, channels, jobs CASCADE")
        .execute(pool)
        .await
        .context("emptying the outbox")?;
    Ok(())
}
