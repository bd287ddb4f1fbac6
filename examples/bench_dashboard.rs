//! `bench_dashboard`: the web dashboard's costs, against a release daemon that
//! `bench/dashboard.sh` starts (workers on) on a scratch database. Measures the overview's page
//! weight (every byte a fresh Chromium fetches for `/ui`), the time to first render of the
//! jobs page with 100,000 of the signed-in user's jobs in the table (the server's time through
//! curl, and navigation timing and first contentful paint in Chromium; as that user, as the
//! admin, and filtered), and the cost of the live stream `/ui/events` with browsers open while
//! echo jobs run at a fixed rate (the daemon's CPU with none and with them, what each browser
//! received, the daemon's RSS). Prints a Markdown table; progress goes to stderr.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use clap::Parser;
use sqlx::ConnectOptions;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

#[path = "support/chromium.rs"]
mod chromium;
#[path = "bench_dashboard/fanout.rs"]
mod fanout;
#[path = "bench_dashboard/render.rs"]
mod render;
// Only the inserts and the waits are used here; the drains are bench_events'.
#[allow(dead_code)]
#[path = "support/queue.rs"]
mod queue;
#[path = "support/mod.rs"]
mod support;
#[path = "support/ui_sse.rs"]
mod ui_sse;

use support::{ms, pct, thousands};

#[derive(Parser)]
#[command(about = "Benchmark the web dashboard (see bench/dashboard.sh)")]
pub struct Args {
    /// Small sizes for a smoke run; the figures mean nothing.
    #[arg(long)]
    quick: bool,
    /// The daemon's base URL.
    #[arg(long)]
    url: String,
    /// An admin token.
    #[arg(long, env = "BENCH_DASHBOARD_TOKEN")]
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
    /// Finished jobs of the signed-in user in the table [default: 100000, quick 5000].
    #[arg(long)]
    jobs: Option<u64>,
    /// Finished jobs of others (another user, the admin) [default: 20000, quick 1000].
    #[arg(long)]
    others: Option<u64>,
    /// Requests per page through curl [default: 20, quick 5].
    #[arg(long)]
    requests: Option<usize>,
    /// Loads per page in Chromium [default: 10, quick 3].
    #[arg(long)]
    loads: Option<usize>,
    /// Browsers holding `/ui/events` open during the load [default: 20, quick 5].
    #[arg(long)]
    browsers: Option<usize>,
    /// Echo jobs inserted per second during the load [default: 1000, quick 200].
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds of load [default: 20, quick 3].
    #[arg(long)]
    secs: Option<f64>,
    /// Milliseconds between the load's inserts.
    #[arg(long, default_value_t = 10)]
    every_ms: u64,
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

/// Someone signed in to the dashboard.
pub struct Person {
    /// Their user id.
    pub id: Uuid,
    /// Their API token.
    pub token: String,
    /// A session cookie of theirs (`wh_session=…`).
    pub cookie: String,
}

/// The people the pages are shown to.
pub struct People {
    /// The daemon's base URL.
    pub base: String,
    /// The admin.
    pub admin: Person,
    /// The user who owns the jobs.
    pub user: Person,
}

async fn run(args: Args) -> anyhow::Result<()> {
    let jobs = args.size(args.jobs, 100_000, 5_000);
    let others = args.size(args.others, 20_000, 1_000);
    let requests = args.size(args.requests, 20, 5).max(1);
    let loads = args.size(args.loads, 10, 3).max(1);
    ensure!(args.clk_tck > 0, "--clk-tck must be above 0");
    // The seeding statement takes seconds; no need to log it as slow.
    let options = (args.database_url.parse::<PgConnectOptions>())
        .context("parsing --database-url")?
        .disable_statement_logging();
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .context("connecting to the daemon's database")?;
    let admin: Uuid =
        sqlx::query_scalar("SELECT id FROM users WHERE role = 'admin' ORDER BY created_at LIMIT 1")
            .fetch_one(&pool)
            .await
            .context("finding the admin user")?;
    let users = support::user_tokens(&pool, 2).await?;
    let [(user, user_token), (other, _)] = &users[..] else {
        bail!("expected two users");
    };
    eprintln!(
        "seeding {} jobs of the user and {} of others",
        thousands(jobs as f64),
        thousands(others as f64)
    );
    seed(&pool, *user, &[*other, admin], jobs, others).await?;
    let base = args.url.trim_end_matches('/').to_owned();
    let http = ui_sse::client()?;
    let people = People {
        admin: Person {
            id: admin,
            cookie: ui_sse::session_cookie(&http, &base, &args.token).await?,
            token: args.token.clone(),
        },
        user: Person {
            id: *user,
            cookie: ui_sse::session_cookie(&http, &base, user_token).await?,
            token: user_token.clone(),
        },
        base,
    };
    let mut rows = Vec::new();

    eprintln!("server time: {requests} requests per page through curl");
    for (who, path) in pages() {
        let timed = curl(
            &format!("{}{path}", people.base),
            &people.by(who).cookie,
            requests,
        )?;
        rows.push(row(
            &format!("server: `GET {path}` as {}", who.describe(jobs, others)),
            timed,
        ));
    }

    eprintln!("Chromium: page weight and {loads} loads per page");
    rows.extend(render::in_chromium(&people, loads, jobs, others).await?);

    rows.extend(fanout::measure(&args, &pool, &people).await?);
    pool.close().await;
    support::warn_if_debug();
    println!(
        "{} finished jobs of the signed-in user and {} of others in `jobs`; medians unless \
         said otherwise.\n",
        thousands(jobs as f64),
        thousands(others as f64)
    );
    println!("| measure | value |\n|---|---|");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}

/// Whose session loads a page.
#[derive(Clone, Copy)]
pub enum Who {
    /// The user who owns the jobs.
    User,
    /// The admin, who sees everyone's.
    Admin,
}

impl People {
    /// The person `who` is.
    pub fn by(&self, who: Who) -> &Person {
        match who {
            Who::User => &self.user,
            Who::Admin => &self.admin,
        }
    }
}

impl Who {
    fn describe(self, jobs: u64, others: u64) -> String {
        match self {
            Who::User => format!("the user ({} jobs)", thousands(jobs as f64)),
            Who::Admin => format!("the admin ({} jobs)", thousands((jobs + others) as f64)),
        }
    }
}

/// The pages timed, and whose session loads each.
pub fn pages() -> [(Who, &'static str); 8] {
    [
        (Who::User, "/ui/jobs"),
        (Who::User, "/ui/jobs?state=dead"),
        (Who::User, "/ui/jobs?kind=scrape&state=succeeded"),
        (Who::User, "/ui/jobs?state=running"),
        (Who::Admin, "/ui/jobs"),
        (Who::Admin, "/ui/jobs?kind=scrape&state=dead"),
        (Who::User, "/ui"),
        (Who::Admin, "/ui"),
    ]
}

/// Insert `jobs` finished jobs of `user` and `others` of `owners` in turn, interleaved, in one
/// statement: one every 40 ms back from now (so the last hour's chart is full), with UUIDv7
/// ids of their creation time (as the daemon makes them, so "newest first" is by id). Every
/// eleventh is a `scrape` job, the rest `echo`; one in 47 is dead, one in 53 cancelled, the
/// rest succeeded (none is left for the workers).
async fn seed(
    pool: &PgPool,
    user: Uuid,
    owners: &[Uuid],
    jobs: u64,
    others: u64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO jobs (id, kind, args, state, run_at, attempts, max_attempts, owner_id, \
                           errors, dead_reason, result, created_at, started_at, finished_at) \
         SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) \
                    PLACING substring(int8send((extract(epoch FROM t.at) * 1000)::int8) FROM 3) \
                    FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid, \
                CASE WHEN g % 11 = 0 THEN 'scrape' ELSE 'echo' END, \
                jsonb_build_object('message', 'seed'), s.state, \
                t.at, 1, 1, \
                CASE WHEN (g * $4) / ($3 + $4) > ((g - 1) * $4) / ($3 + $4) \
                     THEN $2[1 + g % cardinality($2)] ELSE $1 END, \
                CASE WHEN s.state = 'dead' THEN jsonb_build_array(jsonb_build_object( \
                    'attempt', 1, 'at', t.at, 'error', 'boom', 'permanent', false)) \
                    ELSE '[]' END, \
                CASE WHEN s.state = 'dead' THEN 'attempts' END, \
                CASE WHEN s.state = 'succeeded' THEN jsonb_build_object('message', 'seed') END, \
                t.at, t.at, t.at + interval '20 milliseconds' \
         FROM generate_series(1, $3 + $4) AS g, \
              LATERAL (SELECT now() - ($3 + $4 - g) * interval '40 milliseconds' AS at) AS t, \
              LATERAL (SELECT CASE WHEN g % 47 = 7 THEN 'dead' WHEN g % 53 = 13 THEN 'cancelled' \
                                   ELSE 'succeeded' END \
                              AS state) AS s",
    )
    .bind(user)
    .bind(owners)
    .bind(jobs as i64)
    .bind(others as i64)
    .execute(pool)
    .await
    .context("seeding the jobs")?;
    // As autovacuum would soon: the planner should know the table's size.
    sqlx::query("ANALYZE jobs")
        .execute(pool)
        .await
        .context("analysing jobs")?;
    queue::settle_stream(pool).await?;
    Ok(())
}

/// `requests` GETs of `url` with `cookie` through curl, after one to warm up: the medians of
/// time to the first byte and to the last, and the body's size.
fn curl(url: &str, cookie: &str, requests: usize) -> anyhow::Result<String> {
    let mut first = Vec::with_capacity(requests);
    let mut total = Vec::with_capacity(requests);
    let mut size = 0.0;
    for i in 0..=requests {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-H"])
            .arg(format!("cookie: {cookie}"))
            .args([
                "-w",
                "%{http_code} %{time_starttransfer} %{time_total} %{size_download}",
            ])
            .arg(url)
            .output()
            .context("running curl")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [status, start, end, bytes] = fields[..] else {
            bail!("curl printed {text:?}");
        };
        ensure!(status == "200", "GET {url} answered {status}");
        if i == 0 {
            continue;
        }
        first.push(start.parse::<f64>().context("curl's time_starttransfer")? * 1000.0);
        total.push(end.parse::<f64>().context("curl's time_total")? * 1000.0);
        size = bytes.parse().context("curl's size_download")?;
    }
    first.sort_by(f64::total_cmp);
    total.sort_by(f64::total_cmp);
    Ok(format!(
        "first byte {}, complete {} (p95 {}); {} bytes",
        ms(pct(&first, 50.0)),
        ms(pct(&total, 50.0)),
        ms(pct(&total, 95.0)),
        thousands(size)
    ))
}

/// A table row.
pub fn row(what: &str, value: String) -> String {
    format!("| {what} | {value} |")
}

/// Wait a moment for the daemon to finish what a phase started.
pub async fn pause() {
    tokio::time::sleep(Duration::from_secs(2)).await;
}
