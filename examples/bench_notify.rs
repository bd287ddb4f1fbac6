//! `bench_notify`: webhook deliveries per second on this machine, in-process against a fresh
//! database: events are published in batches through `store::notifications::publish` while the
//! real `App` delivers them to a local receiver that answers 200 at once (live), or all before
//! the `App` starts (backlog). One channel, and a fan-out to several, each at the `notify`
//! kind's default concurrency and at a higher one. Prints a Markdown table. Run it through
//! `bench/notify.sh` (release build); `--quick` smoke-tests it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use clap::Parser;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, Route, handler, http::StatusCode};
use serde_json::json;
use sqlx::{Connection, PgPool};
use uuid::Uuid;
use workhorse::app::{App, Storage};
use workhorse::config::{Config, DatabaseConfig, JobsConfig, KindConfig};
use workhorse::domain::users::{NewUser, Role};
use workhorse::notify::webhook;
use workhorse::store::{self, notifications};

/// The topic the benchmark's channels subscribe to and its events carry.
const TOPIC: &str = "scrapes.finished";

/// Sizes and connection; every size has a full and a `--quick` default.
#[path = "support/mod.rs"]
mod support;

use support::{ms, pct, thousands};

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
    /// `jobs.kinds.notify.concurrency` values to measure [default: jobs.concurrency's
    /// default, and 32].
    #[arg(long, value_delimiter = ',')]
    concurrency: Vec<usize>,
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
    let rows =
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

/// Every scenario in turn on the database at `url`, emptying the outbox between them;
/// returns the table rows.
async fn measure(args: &Args, url: &str) -> anyhow::Result<Vec<String>> {
    let pool = store::connect_lazy(url, &DatabaseConfig::default())?;
    store::migrate(&pool, Duration::from_secs(10)).await?;
    let owner = bench_user(&pool).await?;
    let receiver = Receiver::start().await?;
    let default_concurrency = JobsConfig::default().concurrency;
    let levels = match args.concurrency.is_empty() {
        true => vec![default_concurrency, 32],
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
    pool.close().await;
    Ok(rows)
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
    let f = deliver(url, pool, receiver, owner, scenario, args.batch).await?;
    let label = match concurrency == JobsConfig::default().concurrency {
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

/// What one scenario measured.
struct Figures {
    deliveries: usize,
    /// Deliveries/s from the first publish (a backlog: from its first delivery) until the
    /// last delivery, on the database clock.
    rate: f64,
    /// Event created → delivery delivered, ms.
    p50: f64,
    p95: f64,
    /// Wall time of publishing every batch.
    publish_secs: f64,
    /// Requests the receiver got (more than the deliveries if any was repeated).
    requests: u64,
}

/// Start the daemon with `scenario`'s concurrency, publish its events in batches while it
/// runs, and wait until every delivery is delivered.
async fn deliver(
    url: &str,
    pool: &PgPool,
    receiver: &Receiver,
    owner: Uuid,
    scenario: &Scenario,
    batch: usize,
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
            let publishing = Instant::now();
            publish_events(&mut conn, owner, scenario.events, batch).await?;
            publish_secs = publishing.elapsed().as_secs_f64();
        }
        app = Some(start_app(url, data_dir.path(), scenario.concurrency).await?);
        // Live events are timed from the first publish; a backlog from its first delivery, so
        // that the daemon's start-up is left out.
        let mut started = None;
        if !scenario.backlog {
            started = Some(db_clock(&mut conn).await?);
            let publishing = Instant::now();
            publish_events(&mut conn, owner, scenario.events, batch).await?;
            publish_secs = publishing.elapsed().as_secs_f64();
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

/// Publish `events` events for `owner`, `batch` per transaction.
async fn publish_events(
    conn: &mut sqlx::PgConnection,
    owner: Uuid,
    events: usize,
    batch: usize,
) -> anyhow::Result<()> {
    for first in (0..events).step_by(batch) {
        let mut tx = conn.begin().await.context("beginning a transaction")?;
        for n in first..(first + batch).min(events) {
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
        tx.commit().await.context("committing a batch of events")?;
    }
    Ok(())
}

/// Wait until `expected` deliveries are delivered; fails on a dead one or at `deadline`.
async fn wait_delivered(pool: &PgPool, expected: usize, deadline: Instant) -> anyhow::Result<()> {
    loop {
        let (delivered, dead): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE state = 'delivered'), \
                    count(*) FILTER (WHERE state = 'dead') FROM deliveries",
        )
        .fetch_one(pool)
        .await
        .context("polling the deliveries")?;
        ensure!(dead == 0, "{dead} deliveries are dead");
        if delivered == expected as i64 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {delivered} of {expected} deliveries were delivered at the deadline");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Rate and latencies from the rows, after checking that each delivery took one attempt.
async fn figures(
    pool: &PgPool,
    started: Option<DateTime<Utc>>,
    expected: usize,
    publish_secs: f64,
    requests: u64,
) -> anyhow::Result<Figures> {
    type Outcome = (i64, Option<DateTime<Utc>>, Option<DateTime<Utc>>, i64);
    let (count, first, last, retried): Outcome = sqlx::query_as(
        "SELECT count(*), min(delivered_at), max(delivered_at), \
                count(*) FILTER (WHERE attempts <> 1) \
         FROM deliveries",
    )
    .fetch_one(pool)
    .await
    .context("reading the outcome")?;
    ensure!(
        count == expected as i64,
        "{count} deliveries, not {expected}"
    );
    ensure!(
        retried == 0,
        "{retried} deliveries needed more than one attempt"
    );
    let (first, last) = first.zip(last).context("nothing was delivered")?;
    // From the first delivery on, one delivery fewer was timed.
    let (secs, timed) = match started {
        Some(started) => ((last - started).as_seconds_f64(), expected),
        None => ((last - first).as_seconds_f64(), expected - 1),
    };
    let mut latencies: Vec<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM d.delivered_at - e.created_at)::float8 * 1000 \
         FROM deliveries d JOIN events e ON e.id = d.event_id",
    )
    .fetch_all(pool)
    .await
    .context("reading the latencies")?;
    latencies.sort_by(f64::total_cmp);
    Ok(Figures {
        deliveries: expected,
        rate: timed as f64 / secs,
        p50: pct(&latencies, 50.0),
        p95: pct(&latencies, 95.0),
        publish_secs,
        requests,
    })
}

/// The daemon, running in this process.
struct RunningApp {
    shutdown: tokio_util::sync::CancellationToken,
    served: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningApp {
    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.served.await.context("the app task")?
    }
}

/// The real `App` over a pool of its own (it closes the pool when it stops), allowed to reach
/// loopback, with `concurrency` notify slots; returns once `/readyz` answers 200.
async fn start_app(
    url: &str,
    data_dir: &std::path::Path,
    concurrency: usize,
) -> anyhow::Result<RunningApp> {
    let mut config = Config::default();
    config.http.listen = "127.0.0.1:0"
        .parse()
        .context("parsing the listen address")?;
    config.data_dir = data_dir.to_path_buf();
    config.jobs.schedules_dir = data_dir.to_path_buf();
    config.egress.allow = vec!["127.0.0.1".into()];
    config.jobs.kinds.insert(
        "notify".into(),
        KindConfig {
            concurrency: Some(concurrency),
            ..KindConfig::default()
        },
    );
    let pool = store::connect_lazy(url, &config.database)?;
    let app = App::with_storage(config, Storage::from_pool(pool).await?).await?;
    let ready = format!("http://{}/readyz", app.local_addr());
    let shutdown = app.shutdown_token();
    let served = tokio::spawn(app.run());
    let running = RunningApp { shutdown, served };
    let client = reqwest::Client::builder().no_proxy().build()?;
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

/// A webhook receiver on loopback that answers 200 at once and counts requests.
struct Receiver {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[handler]
async fn receive(requests: Data<&Arc<AtomicU64>>) -> StatusCode {
    requests.fetch_add(1, Ordering::Relaxed);
    StatusCode::OK
}

impl Receiver {
    async fn start() -> anyhow::Result<Self> {
        let requests = Arc::new(AtomicU64::new(0));
        let app = Route::new()
            .at("/hook", poem::post(receive))
            .data(requests.clone());
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .context("binding the receiver")?;
        let addr = *(acceptor.local_addr().first())
            .and_then(|a| a.as_socket_addr())
            .context("reading the receiver's address")?;
        let server = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Ok(Self {
            addr,
            requests,
            server,
        })
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn reset(&self) {
        self.requests.store(0, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
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
