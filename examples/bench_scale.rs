//! `bench_scale`: how the job engine and its API hold up as the `jobs` table grows, in-process
//! against a fresh database: the drain rate and `GET /v1/jobs` latency (an admin's and a
//! user's default page) with 0, 1 and 10 million finished jobs in the table; pickup into an
//! idle worker with a million jobs waiting in another kind; this process's memory while the
//! engine serves a kind with a million pending jobs; pruning throughput while a drain runs;
//! and the table's and its indexes' size after a day of a million jobs with the default
//! retention. Prints a Markdown table; with `BENCH_FIGURES` set, also appends each figure
//! (`scale.*`) to that file. Run it through `bench/scale.sh` (release build); `--quick`
//! smoke-tests it with small sizes.
//!
//! The finished jobs are inserted with `INSERT … SELECT generate_series` (`bench_scale/fill.rs`)
//! with their triggers off; what is measured runs through the real engine and API.

use std::time::Duration;

use anyhow::ensure;
use clap::Parser;
use workhorse::config::{DatabaseConfig, JobsConfig};
use workhorse::store;

#[path = "bench_scale/fill.rs"]
mod fill;
#[path = "bench_scale/measures.rs"]
mod measures;
#[path = "support/mod.rs"]
mod support;

use support::figures::figure;
use support::{ms, thousands};

#[derive(Parser)]
#[command(about = "Benchmark the job engine at scale (see bench/scale.sh)")]
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
    /// Name of the database to create and drop [default: wh_bench_scale_<pid>].
    #[arg(long)]
    database: Option<String>,
    /// Finished jobs in the table for each drain and list measure, ascending
    /// [default: 0,1000000,10000000, quick 0,2000,20000].
    #[arg(long, value_delimiter = ',')]
    finished: Vec<u64>,
    /// No-op jobs each drain runs [default: 20000, quick 1000].
    #[arg(long)]
    drain: Option<usize>,
    /// Worker concurrency.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Requests to GET /v1/jobs per role [default: 1000, quick 40].
    #[arg(long)]
    requests: Option<usize>,
    /// Users owning the jobs; the user measured is one of them.
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// Pending jobs waiting in another kind during the pickup [default: 1000000, quick 5000].
    #[arg(long)]
    waiting: Option<u64>,
    /// Single jobs picked up [default: 300, quick 20].
    #[arg(long)]
    pickup: Option<usize>,
    /// Pending jobs of the served kind during the memory measure [default: 1000000, quick 5000].
    #[arg(long)]
    backlog: Option<u64>,
    /// Seconds the engine runs with the backlog before its memory is read [default: 10,
    /// quick 2].
    #[arg(long)]
    backlog_secs: Option<u64>,
    /// Finished jobs past retention to prune [default: 1000000, quick 5000].
    #[arg(long)]
    prune: Option<u64>,
    /// No-op jobs drained while pruning [default: 50000, quick 1000].
    #[arg(long)]
    prune_drain: Option<usize>,
    /// Jobs in the day whose table size is measured [default: 1000000, quick 2000].
    #[arg(long)]
    day: Option<usize>,
}

impl Args {
    fn size<T: Copy>(&self, given: Option<T>, full: T, quick: T) -> T {
        given.unwrap_or(if self.quick { quick } else { full })
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    support::init_tracing();
    support::runtime()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let (args, database) = (&args, args.database.clone());
    let (rows, notes) =
        support::with_scratch_database(&args.admin_url, database, "scale", |url| async move {
            measure(args, &url).await
        })
        .await?;
    support::warn_if_debug();
    println!("| measure | value |\n|---|---|");
    for row in rows {
        println!("{row}");
    }
    for note in notes {
        println!("\n{note}");
    }
    Ok(())
}

/// A count for figure names: 0, 2k, 1m, 10m.
fn short(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}m", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// A row and its figure.
fn record(rows: &mut Vec<String>, name: &str, value: f64, unit: &str, what: &str, shown: String) {
    figure(name, value, unit, what);
    rows.push(format!("| {what} | {shown} |"));
}

/// Every measure in turn on the database at `url`; returns the table rows and notes.
async fn measure(args: &Args, url: &str) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let pool = store::connect_lazy(url, &DatabaseConfig::default())?;
    store::migrate(&pool, Duration::from_secs(10)).await?;
    let stop = support::engine::sequencer(&pool);
    let measured = measures_on(args, url, &pool).await;
    stop.cancel();
    pool.close().await;
    measured
}

async fn measures_on(
    args: &Args,
    url: &str,
    pool: &sqlx::PgPool,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let config = JobsConfig {
        concurrency: args.concurrency,
        ..JobsConfig::default()
    };
    let levels = match args.finished.is_empty() {
        true if args.quick => vec![0, 2_000, 20_000],
        true => vec![0, 1_000_000, 10_000_000],
        false => args.finished.clone(),
    };
    ensure!(
        levels.windows(2).all(|w| w[0] <= w[1]),
        "--finished must be ascending"
    );
    ensure!(args.users > 0, "--users must be at least 1");
    let admin = support::admin_token(pool).await?;
    let users = support::user_tokens(pool, args.users).await?;
    let owners: Vec<_> = users.iter().map(|(id, _)| *id).collect();
    let user_token = users[0].1.clone();
    let drain = args.size(args.drain, 20_000, 1_000);
    let requests = args.size(args.requests, 1_000, 40);
    let mut rows = Vec::new();
    let mut notes = Vec::new();

    // The finished jobs spread over the retention window, minus an hour at its old end so
    // that none passes retention while the measures run.
    let window = JobsConfig::default().retention.as_secs_f64() - 3600.0;
    let mut filled = 0;
    for &level in &levels {
        if level > filled {
            eprintln!(
                "fill: {} more finished jobs",
                thousands((level - filled) as f64)
            );
            let more = fill::Finished {
                n: level - filled,
                from_secs: window,
                to_secs: 0.0,
            };
            fill::finished(pool, &owners, &more).await?;
            filled = level;
        }
        let (tag, count) = (short(level), thousands(level as f64));
        eprintln!("drain: {drain} jobs with {count} finished");
        let d = support::engine::drain(pool, &config, drain).await?;
        let what = format!(
            "drain {} no-op jobs, concurrency {}, {count} finished",
            thousands(drain as f64),
            args.concurrency
        );
        let shown = format!("{} jobs/s", thousands(d.rate));
        record(
            &mut rows,
            &format!("scale.drain_{tag}"),
            d.rate,
            "jobs/s",
            &what,
            shown,
        );
        eprintln!("GET /v1/jobs: {requests} requests per role with {count} finished");
        let lists = measures::list_latency(url, &[&admin, &user_token], requests).await?;
        for ((role, name), (p50, p99)) in [("an admin", "admin"), ("a user", "user")]
            .into_iter()
            .zip(lists)
        {
            let what = format!("GET /v1/jobs p99, {role}'s default page, {count} finished");
            let shown = format!("{} (p50 {})", ms(p99), ms(p50));
            let figure_name = format!("scale.list_{name}_p99_{tag}");
            record(&mut rows, &figure_name, p99, "ms", &what, shown);
        }
    }

    let (waiting, samples) = (
        args.size(args.waiting, 1_000_000, 5_000),
        args.size(args.pickup, 300, 20),
    );
    eprintln!("pickup: {samples} jobs with {waiting} waiting in another kind");
    let (p50, p95) =
        measures::pickup_with_waiting(pool, &owners, &config, waiting, samples).await?;
    let what = format!(
        "pickup p95 into an idle worker, {} jobs waiting in another kind, {} finished",
        thousands(waiting as f64),
        thousands(filled as f64)
    );
    let shown = format!("{} (p50 {})", ms(p95), ms(p50));
    record(
        &mut rows,
        "scale.pickup_waiting_p95",
        p95,
        "ms",
        &what,
        shown,
    );

    let (backlog, secs) = (
        args.size(args.backlog, 1_000_000, 5_000),
        args.size(args.backlog_secs, 10, 2),
    );
    eprintln!("memory: engine with {backlog} pending jobs for {secs} s");
    let m = measures::memory(pool, &owners, &config, backlog, secs).await?;
    let what = format!(
        "RSS of this process (engine and load generator) with {} pending jobs in a served \
         kind, after {secs} s",
        thousands(backlog as f64)
    );
    let shown = format!(
        "{:.1} MiB ({:+.1} MiB from before the engine started; {} jobs held, claimed or running)",
        m.after,
        m.after - m.before,
        m.held
    );
    record(
        &mut rows,
        "scale.backlog_rss_mib",
        m.after,
        "MiB",
        &what,
        shown,
    );
    figure(
        "scale.backlog_rss_delta_mib",
        m.after - m.before,
        "MiB",
        &format!("{what}: growth since before the engine started"),
    );

    let (prune, prune_drain) = (
        args.size(args.prune, 1_000_000, 5_000),
        args.size(args.prune_drain, 50_000, 1_000),
    );
    eprintln!("pruning: {prune} jobs past retention while {prune_drain} jobs drain");
    let p = measures::prune_while_draining(pool, &owners, &config, prune, prune_drain).await?;
    let what = format!(
        "pruning {} finished jobs past retention while {} no-op jobs drain",
        thousands(prune as f64),
        thousands(prune_drain as f64)
    );
    let shown = format!(
        "{} jobs/s deleted ({:.2} s); the drain meanwhile {} jobs/s",
        thousands(p.rate),
        p.secs,
        thousands(p.drain_rate)
    );
    record(&mut rows, "scale.prune", p.rate, "jobs/s", &what, shown);
    figure(
        "scale.prune_drain",
        p.drain_rate,
        "jobs/s",
        &format!("{what}: the drain's rate"),
    );

    let day = args.size(args.day, 1_000_000, 2_000);
    eprintln!("day: {day} jobs enqueued and run on an empty table");
    let (table, indexes, each, d) = measures::day(pool, &config, day).await?;
    let what = format!(
        "jobs table after a day of {} jobs run (default retention: all kept), vacuumed",
        thousands(day as f64)
    );
    let shown = format!("table {table:.1} MiB, indexes {indexes:.1} MiB");
    record(&mut rows, "scale.day_table_mib", table, "MiB", &what, shown);
    figure(
        "scale.day_indexes_mib",
        indexes,
        "MiB",
        &format!("{what}: its indexes"),
    );
    let listed: Vec<String> = (each.iter())
        .map(|(n, m)| format!("{n} {m:.1} MiB"))
        .collect();
    notes.push(format!(
        "The day's indexes: {}. Its {} jobs drained at {} jobs/s.",
        listed.join(", "),
        thousands(day as f64),
        thousands(d.rate)
    ));
    Ok((rows, notes))
}
