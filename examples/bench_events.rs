//! `bench_events`: the live event stream under load, against a release daemon that
//! `bench/events.sh` starts (workers on) on a scratch database. Measures the daemon's RSS
//! without clients, with idle SSE clients and under load; the latency from each event's `at`
//! to its receipt and the events delivered per second while echo jobs are inserted at a fixed
//! rate; the daemon's CPU over the load; and the engine's drain rate without clients and with
//! them connected. Prints a Markdown table; progress goes to stderr.
//!
//! By default every client is a different user following their own events and the jobs
//! belong to those users at random (the many-tenants case: each event reaches one client);
//! `--tenants 0` opens every client on the admin's token with `--query` (by default
//! `all=true`: each event reaches every client).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

#[path = "support/queue.rs"]
mod queue;
#[path = "support/sse.rs"]
mod sse;
#[path = "support/mod.rs"]
mod support;

use queue::{
    SETTLE_TIMEOUT, cancel_live, drain, insert, settle_stream, stream_reads, succeeded, wait_jobs,
};
use sse::{ClientStats, Fleet};
use support::{ms, pct, thousands};

/// Delivery has settled when no client received anything for this long.
const QUIET: Duration = Duration::from_secs(2);

#[derive(Parser)]
#[command(about = "Benchmark the live event stream (see bench/events.sh)")]
struct Args {
    /// Small sizes for a smoke run; the figures mean nothing.
    #[arg(long)]
    quick: bool,
    /// The daemon's base URL.
    #[arg(long)]
    url: String,
    /// An admin token.
    #[arg(long, env = "BENCH_EVENTS_TOKEN")]
    token: String,
    /// The daemon's database, where the jobs are inserted.
    #[arg(long)]
    database_url: String,
    /// The daemon's process id, for its RSS and CPU time.
    #[arg(long)]
    daemon_pid: u32,
    /// Clock ticks per second of /proc/<pid>/stat (getconf CLK_TCK).
    #[arg(long, default_value_t = 100)]
    clk_tck: u64,
    /// Concurrent SSE clients [default: 1000, quick 50].
    #[arg(long)]
    clients: Option<usize>,
    /// Clients that time every event; the others only count [default: 50, quick 10].
    #[arg(long)]
    timed: Option<usize>,
    /// Jobs inserted per second during the load [default: 2000, quick 200].
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds of load [default: 20, quick 3].
    #[arg(long)]
    secs: Option<f64>,
    /// Users the clients are spread over, each following their own events, the jobs theirs
    /// at random [default: as many as clients]; 0: every client is the admin, with `--query`.
    #[arg(long)]
    tenants: Option<usize>,
    /// The admin's streams' query string with `--tenants 0`: everyone's events by default; a
    /// filter that matches nothing (`all=true&topic=delivery`) keeps the clients connected
    /// but silent.
    #[arg(long, default_value = "all=true")]
    query: String,
    /// Milliseconds between the load's inserts.
    #[arg(long, default_value_t = 10)]
    every_ms: u64,
    /// No-op jobs per drain [default: 20000, quick 2000].
    #[arg(long)]
    drain: Option<usize>,
}

impl Args {
    fn size<T>(&self, given: Option<T>, full: T, quick: T) -> T {
        given.unwrap_or(if self.quick { quick } else { full })
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    support::init_tracing();
    support::runtime()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let clients = args.size(args.clients, 1000, 50);
    let timed = args.size(args.timed, 50, 10).min(clients);
    let rate = args.size(args.rate, 2000.0, 200.0);
    let secs = args.size(args.secs, 20.0, 3.0);
    let drain_jobs = args.size(args.drain, 20_000, 2_000);
    let tenants = args.tenants.unwrap_or(clients);
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&args.database_url)
        .await
        .context("connecting to the daemon's database")?;
    let owner: Uuid =
        sqlx::query_scalar("SELECT id FROM users WHERE role = 'admin' ORDER BY created_at LIMIT 1")
            .fetch_one(&pool)
            .await
            .context("finding the admin user")?;
    ensure!(args.clk_tck > 0, "--clk-tck must be above 0");
    let audience = Audience::new(&pool, &args, owner, tenants, clients).await?;
    let url = format!(
        "{}/v1/events?{}",
        args.url.trim_end_matches('/'),
        audience.query
    );
    let daemon = Proc {
        pid: args.daemon_pid,
        clk_tck: args.clk_tck,
    };
    let mut rows = Vec::new();

    eprintln!("drain: {drain_jobs} jobs, no clients");
    let rss_start = daemon.rss_kib()?;
    let reads = stream_reads(&pool).await?;
    let cpu = daemon.cpu_ticks()?;
    let alone = drain(&pool, &audience.owners, drain_jobs, "drain-alone").await?;
    let alone_cpu = daemon.share(cpu, alone.secs)?;
    let alone_reads = stream_reads(&pool).await? - reads;
    settle_stream(&pool).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = daemon.rss_kib()?;

    eprintln!("load: opening {clients} clients");
    let fleet = Fleet::open(&url, &audience.tokens, clients, timed).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = daemon.rss_kib()?;
    eprintln!("load: {rate} jobs/s for {secs} s");
    let reads = stream_reads(&pool).await?;
    let load = load(
        &pool,
        &fleet,
        &daemon,
        &audience.owners,
        rate,
        secs,
        args.every_ms,
    )
    .await?;
    let since_load = Instant::now();
    let settled = settle(&pool, &fleet, &audience).await?;
    let load_reads = stream_reads(&pool).await? - reads;
    let stats = fleet.close().await;
    let load_end_us = settled.last_receipt_us.saturating_sub(load.started_us);
    let delivery_secs = (load_end_us as f64 / 1e6).max(load.secs);
    let head = settled.head;
    eprintln!(
        "load: delivery settled {:.1} s after the load",
        since_load.elapsed().as_secs_f64()
    );

    eprintln!("drain: {drain_jobs} jobs, {clients} clients");
    let fleet = Fleet::open(&url, &audience.tokens, clients, 0).await?;
    let reads = stream_reads(&pool).await?;
    let cpu = daemon.cpu_ticks()?;
    let crowded = drain(&pool, &audience.owners, drain_jobs, "drain-crowded").await?;
    let crowded_cpu = daemon.share(cpu, crowded.secs)?;
    let crowded_settled = settle(&pool, &fleet, &audience).await?;
    let crowded_reads = stream_reads(&pool).await? - reads;
    let crowded_stats = fleet.close().await;

    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    let per_client = (rss_idle as f64 - rss_before as f64) / clients as f64;
    rows.push(row(
        "daemon RSS, no clients: after start / after a drain",
        format!("{} / {}", mib(rss_start), mib(rss_before)),
    ));
    rows.push(row(
        &format!("daemon RSS, {} idle SSE clients", thousands(clients as f64)),
        format!("{} ({per_client:.1} KiB per client)", mib(rss_idle)),
    ));
    rows.push(row(
        "daemon RSS during the load, peak",
        mib(load.rss_peak_kib),
    ));
    rows.push(row(
        &format!("load: echo jobs inserted every {} ms", args.every_ms),
        format!(
            "{} in {:.1} s = {} jobs/s (asked {}); {} succeeded during the load; {}",
            thousands(load.jobs as f64),
            load.secs,
            thousands(load.jobs as f64 / load.secs),
            thousands(rate),
            thousands(load.done as f64),
            match settled.jobs_done_after {
                Some(after) => format!("all {:.1} s after it", after.as_secs_f64()),
                None => format!(
                    "**not all within {} s**: {} succeeded, the rest cancelled",
                    SETTLE_TIMEOUT.as_secs(),
                    thousands(settled.load_done as f64)
                ),
            },
        ),
    ));
    let hellos: Vec<i64> = stats.iter().map(|s| s.hello_head).collect();
    let expected = audience.expected(&pool, &hellos, head).await?;
    let received: u64 = stats.iter().map(|s| s.events).sum();
    rows.push(row(
        "events delivered (all clients)",
        format!(
            "{} of {} ({:.1}%) in {:.1} s from the load's start = {} events/s",
            thousands(received as f64),
            thousands(expected as f64),
            100.0 * received as f64 / expected.max(1) as f64,
            delivery_secs,
            thousands(received as f64 / delivery_secs),
        ),
    ));
    let mut lat: Vec<f64> = stats
        .iter()
        .flat_map(|s| s.latencies_ms.iter().copied())
        .collect();
    lat.sort_by(f64::total_cmp);
    rows.push(row(
        &format!(
            "latency `at` → received, {timed} timed clients ({} events)",
            thousands(lat.len() as f64)
        ),
        format!(
            "p50 {}, p95 {}, p99 {}, max {}",
            ms(pct(&lat, 50.0)),
            ms(pct(&lat, 95.0)),
            ms(pct(&lat, 99.0)),
            ms(pct(&lat, 100.0))
        ),
    ));
    rows.push(row(
        "reads of stream_changes from the load's start until delivery settled",
        thousands(load_reads as f64),
    ));
    rows.push(row(
        "streams the server closed during the load",
        closes(&stats),
    ));
    rows.push(row(
        &format!("daemon CPU over the {:.0} s load", load.secs),
        format!(
            "{:.0}% of one core (load generator {:.0}%)",
            load.daemon_cpu * 100.0,
            load.own_cpu * 100.0
        ),
    ));
    rows.push(row(
        &format!(
            "drain {} no-op jobs, no clients",
            thousands(drain_jobs as f64)
        ),
        format!(
            "{}; daemon CPU {:.0}%; {} reads of stream_changes",
            alone.describe(),
            alone_cpu * 100.0,
            thousands(alone_reads as f64)
        ),
    ));
    let got: u64 = crowded_stats.iter().map(|s| s.events).sum();
    let hellos: Vec<i64> = crowded_stats.iter().map(|s| s.hello_head).collect();
    let want = (audience.expected(&pool, &hellos, crowded_settled.head)).await?;
    rows.push(row(
        &format!(
            "drain {} no-op jobs, {} clients connected",
            thousands(drain_jobs as f64),
            thousands(clients as f64)
        ),
        format!(
            "{}; daemon CPU {:.0}%; {} reads of stream_changes; {} of {} events delivered; \
             closed: {}",
            crowded.describe(),
            crowded_cpu * 100.0,
            thousands(crowded_reads as f64),
            thousands(got as f64),
            thousands(want as f64),
            closes(&crowded_stats)
        ),
    ));
    pool.close().await;
    support::warn_if_debug();
    println!("{}\n", audience.describe(clients));
    println!("| measure | value |\n|---|---|");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}

/// The daemon process's /proc figures.
#[derive(Clone, Copy)]
struct Proc {
    pid: u32,
    /// Clock ticks per second.
    clk_tck: u64,
}

impl Proc {
    fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .context("reading the daemon's /proc status")?;
        let line = (status.lines().find(|l| l.starts_with("VmRSS:"))).context("no VmRSS")?;
        let kib = line.split_whitespace().nth(1).context("an empty VmRSS")?;
        kib.parse().context("parsing VmRSS")
    }

    /// The share of one core the daemon used since `ticks` (utime + stime) over `secs`.
    fn share(&self, ticks: u64, secs: f64) -> anyhow::Result<f64> {
        let spent = self.cpu_ticks()?.saturating_sub(ticks);
        Ok(spent as f64 / self.clk_tck as f64 / secs.max(0.001))
    }

    /// utime + stime in clock ticks.
    fn cpu_ticks(&self) -> anyhow::Result<u64> {
        cpu_ticks(&format!("/proc/{}/stat", self.pid))
    }
}

fn cpu_ticks(path: &str) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    // Fields after the command's closing parenthesis: state is the first, utime the 12th.
    let after = &stat[stat.rfind(')').context("a stat without a command")? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    ensure!(fields.len() > 12, "a short {path}");
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

/// What a load run measured.
struct Load {
    jobs: u64,
    /// Jobs that had succeeded when the load ended.
    done: i64,
    secs: f64,
    /// Microseconds from the fleet's epoch to the first insert.
    started_us: u64,
    rss_peak_kib: u64,
    daemon_cpu: f64,
    own_cpu: f64,
}

/// Insert echo jobs at `rate` per second for `secs`, every `every_ms`, on one connection.
async fn load(
    pool: &PgPool,
    fleet: &Fleet,
    daemon: &Proc,
    owners: &[Uuid],
    rate: f64,
    secs: f64,
    every_ms: u64,
) -> anyhow::Result<Load> {
    let mut conn = pool.acquire().await.context("acquiring a connection")?;
    let peak = Arc::new(AtomicU64::new(daemon.rss_kib()?));
    let sampling = {
        let (peak, daemon) = (peak.clone(), *daemon);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Ok(kib) = daemon.rss_kib() {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
            }
        })
    };
    let (cpu0, own0) = (daemon.cpu_ticks()?, cpu_ticks("/proc/self/stat")?);
    let started = Instant::now();
    let started_us = fleet.epoch.elapsed().as_micros() as u64;
    let mut tick = tokio::time::interval(Duration::from_millis(every_ms));
    let mut inserted = 0u64;
    while started.elapsed().as_secs_f64() < secs {
        tick.tick().await;
        let due = (started.elapsed().as_secs_f64().min(secs) * rate) as u64;
        if due > inserted {
            insert(&mut conn, owners, due - inserted, "load").await?;
            inserted = due;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let (cpu1, own1) = (daemon.cpu_ticks()?, cpu_ticks("/proc/self/stat")?);
    let done = succeeded(pool, "load").await?.0;
    sampling.abort();
    let tck = daemon.clk_tck as f64;
    Ok(Load {
        jobs: inserted,
        done,
        secs: wall,
        started_us,
        rss_peak_kib: peak.load(Ordering::Relaxed),
        daemon_cpu: (cpu1 - cpu0) as f64 / tck / wall,
        own_cpu: (own1 - own0) as f64 / tck / wall,
    })
}

struct Settled {
    head: i64,
    /// `None`: jobs were still live after [`SETTLE_TIMEOUT`] and were cancelled.
    jobs_done_after: Option<Duration>,
    /// Load jobs that succeeded.
    load_done: i64,
    last_receipt_us: u64,
}

/// Wait until every job finished, every change is numbered and the clients have either all
/// received everything or stopped receiving for [`QUIET`] (or [`SETTLE_TIMEOUT`]).
async fn settle(pool: &PgPool, fleet: &Fleet, audience: &Audience) -> anyhow::Result<Settled> {
    let jobs_done_after = wait_jobs(pool, SETTLE_TIMEOUT).await?;
    let done = succeeded(pool, "load").await?.0;
    if jobs_done_after.is_none() {
        eprintln!("{done} load jobs had succeeded; cancelling the rest");
        cancel_live(pool).await?;
    }
    let head = settle_stream(pool).await?;
    let expected = audience
        .expected(pool, &fleet.shared.hellos(), head)
        .await?;
    let started = Instant::now();
    let mut seen = fleet.shared.events.load(Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    while started.elapsed() < SETTLE_TIMEOUT {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = fleet.shared.events.load(Ordering::Relaxed);
        // Every client has everything it follows from its hello to the head.
        if now >= expected {
            break;
        }
        if now != seen {
            (seen, quiet_since) = (now, Instant::now());
        } else if quiet_since.elapsed() >= QUIET {
            break;
        }
    }
    Ok(Settled {
        head,
        jobs_done_after,
        load_done: done,
        last_receipt_us: fleet.shared.last_receipt_us.load(Ordering::Relaxed),
    })
}

/// The close reasons, counted.
fn closes(stats: &[ClientStats]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for reason in stats.iter().filter_map(|s| s.closed.clone()) {
        match counts.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => counts.push((reason, 1)),
        }
    }
    if counts.is_empty() {
        return "none".into();
    }
    (counts.iter())
        .map(|(r, n)| format!("{n} × {r}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn row(what: &str, value: String) -> String {
    format!("| {what} | {value} |")
}

/// Who the clients are and whose the jobs are.
struct Audience {
    /// Client `i` streams with `tokens[i % len]`.
    tokens: Vec<String>,
    /// Whose events client `i` follows: `follows[i % len]`; `None`: everyone's.
    follows: Vec<Option<Uuid>>,
    /// The jobs' owners, one at random for each job.
    owners: Vec<Uuid>,
    /// The streams' query string.
    query: String,
}

impl Audience {
    async fn new(
        pool: &PgPool,
        args: &Args,
        admin: Uuid,
        tenants: usize,
        clients: usize,
    ) -> anyhow::Result<Self> {
        if tenants == 0 {
            let all = args.query.split('&').any(|p| p == "all=true");
            return Ok(Self {
                tokens: vec![args.token.clone()],
                follows: vec![(!all).then_some(admin)],
                owners: vec![admin],
                query: args.query.clone(),
            });
        }
        eprintln!("creating {tenants} users with a token each");
        let users = support::user_tokens(pool, tenants.min(clients)).await?;
        Ok(Self {
            tokens: users.iter().map(|u| u.1.clone()).collect(),
            follows: users.iter().map(|u| Some(u.0)).collect(),
            owners: users.iter().map(|u| u.0).collect(),
            query: String::new(),
        })
    }

    fn describe(&self, clients: usize) -> String {
        match self.follows.as_slice() {
            [None] => format!(
                "{clients} clients on the admin's token, each following everyone's events \
                 (`{}`): each event reaches every client.",
                self.query
            ),
            _ => format!(
                "{clients} clients of {} users, each following their own events; the jobs \
                 belong to those users at random, so each event reaches {} client(s).",
                self.tokens.len(),
                clients.div_ceil(self.tokens.len())
            ),
        }
    }

    /// Events the clients should have received from their `hellos` up to `head`.
    async fn expected(&self, pool: &PgPool, hellos: &[i64], head: i64) -> anyhow::Result<u64> {
        let from = hellos
            .iter()
            .copied()
            .filter(|h| *h >= 0)
            .min()
            .unwrap_or(head);
        // Each followed user's event numbers in (from, head], in order.
        let rows: Vec<(Option<Uuid>, i64)> = sqlx::query_as(
            "SELECT o.owner, b.first_seq + o.i - 1 \
             FROM stream_changes b, \
                  unnest(coalesce(b.owner, ARRAY(SELECT (e ->> 'owner')::uuid \
                      FROM jsonb_array_elements(b.events) AS e))) WITH ORDINALITY AS o(owner, i) \
             WHERE b.last_seq > $1 AND b.first_seq + o.i - 1 BETWEEN $1 + 1 AND $2 \
             ORDER BY 2",
        )
        .bind(from)
        .bind(head)
        .fetch_all(pool)
        .await
        .context("counting the followed events")?;
        let mut by_owner: std::collections::HashMap<Uuid, Vec<i64>> = Default::default();
        for (owner, seq) in rows {
            if let Some(owner) = owner {
                by_owner.entry(owner).or_default().push(seq);
            }
        }
        let mut expected = 0;
        for (i, hello) in hellos.iter().enumerate() {
            let hello = (*hello).max(from);
            expected += match self.follows[i % self.follows.len()] {
                None => (head - hello).max(0) as u64,
                Some(owner) => by_owner.get(&owner).map_or(0, |seqs| {
                    (seqs.partition_point(|s| *s <= head) - seqs.partition_point(|s| *s <= hello))
                        as u64
                }),
            };
        }
        Ok(expected)
    }
}
