//! `bench_quotas`: what quota charging costs `POST /v1/jobs`, in-process against a fresh
//! database: charging enqueues by many users, the same load refused because every quota is
//! spent, and uncharged admin enqueues for comparison (requests/s, p50/p99). Checks that the
//! counters reserved exactly one unit per accepted request. Run it through `bench/quotas.sh`
//! (release build); `--quick` smoke-tests it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use reqwest::StatusCode;
use sqlx::{PgConnection, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use workhorse::app::{App, Storage};
use workhorse::config::{Config, DatabaseConfig, KindConfig, PlanConfig};
use workhorse::domain::tokens;
use workhorse::domain::users::{NewUser, Role};
use workhorse::store;

/// The plan of every benchmark user.
const PLAN: &str = "bench";
/// The plan's daily `scrape` units and requests per minute per token: far more than the
/// benchmark sends, so nothing is refused unless a phase means it to be.
const ROOMY: u32 = 1_000_000;
const ENQUEUE_BODY: &str = r#"{"kind":"echo","args":{}}"#;

/// Sizes and connection; each size has a full and a `--quick` default.
#[path = "support/mod.rs"]
mod support;

use support::{ms, pct, thousands};

#[derive(Parser)]
#[command(about = "Benchmark quota-charging requests (see bench/quotas.sh)")]
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
    /// Name of the database to create and drop [default: wh_bench_quotas_<pid>].
    #[arg(long)]
    database: Option<String>,
    /// Users, each with a token, that the requests are spread over [default: 1000, quick 50].
    #[arg(long)]
    users: Option<usize>,
    /// Measured requests per phase, at least --users [default: 10000, quick 500].
    #[arg(long)]
    requests: Option<usize>,
    /// Concurrent keep-alive HTTP clients.
    #[arg(long, default_value_t = 32)]
    clients: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    support::init_tracing();
    support::runtime()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let (args, database) = (&args, args.database.clone());
    let lines =
        support::with_scratch_database(&args.admin_url, database, "quotas", |url| async move {
            measure(args, &url).await
        })
        .await?;
    support::warn_if_debug();
    for line in lines {
        println!("{line}");
    }
    Ok(())
}

/// The three phases and the final check on the database at `url`; returns the table and the
/// check's line.
async fn measure(args: &Args, url: &str) -> anyhow::Result<Vec<String>> {
    let pool = store::connect_lazy(url, &DatabaseConfig::default())?;
    store::migrate(&pool, Duration::from_secs(10)).await?;
    let users = (args.users).unwrap_or(if args.quick { 50 } else { 1_000 });
    let requests = (args.requests).unwrap_or(if args.quick { 500 } else { 10_000 });
    let clients = args.clients;
    ensure!(
        users > 0 && clients > 0,
        "--users and --clients must be >= 1"
    );
    // Round-robin over the users, so every user has a counter before the quotas are spent.
    ensure!(requests >= users, "--requests must be at least --users");
    eprintln!("creating {users} users on the {PLAN} plan, a token each");
    let (user_tokens, admin_token) = create_users(&pool, users).await?;

    let server = Server::start(url, true).await?;
    let phases = async {
        eprintln!("charging: {requests} requests, each charging one scrape unit");
        let charged = load(&server.endpoint, &user_tokens, requests, clients, 202).await?;
        spend_quotas(&pool, users).await?;
        eprintln!("refusing: {requests} requests, every user's quota spent");
        let refused = load(&server.endpoint, &user_tokens, requests, clients, 429).await?;
        anyhow::Ok((charged, refused))
    }
    .await;
    server.stop().await?;
    let (charged, refused) = phases?;
    let check = check_reserved(&pool, charged.answered, clients).await?;
    sqlx::query("TRUNCATE jobs, quota_charges")
        .execute(&pool)
        .await
        .context("truncating jobs")?;

    let server = Server::start(url, false).await?;
    eprintln!("uncharged: {requests} admin requests");
    let uncharged = load(&server.endpoint, &admin_token, requests, clients, 202).await;
    server.stop().await?;
    pool.close().await;
    let uncharged = uncharged?;
    let posts = format!(
        "{} × POST /v1/jobs (echo), {clients} keep-alive clients",
        thousands(requests as f64)
    );
    let by_users = format!("{posts}, {} users", thousands(users as f64));
    charged.record("charged", &format!("{by_users}, charging 1 each (202)"));
    refused.record("refused", &format!("{by_users}, every quota spent (429)"));
    uncharged.record("uncharged", &format!("{posts}, one admin, uncharged (202)"));
    Ok(vec![
        format!(
            "| {} × `POST /v1/jobs` (echo), {} users, {clients} keep-alive clients \
             | answers | requests/s | p50 | p99 |",
            thousands(requests as f64),
            thousands(users as f64)
        ),
        "|---|---|---|---|---|".to_string(),
        charged.row("users, each request charges 1 `scrape` unit", 202),
        refused.row("users, every quota spent (the refusal)", 429),
        uncharged.row("one admin, uncharged (echo charges no quota)", 202),
        String::new(),
        format!("Check: {check}."),
    ])
}

/// Fails unless the counters hold exactly one reserved unit per request answered 202 (the
/// refusals none); returns what it compared.
async fn check_reserved(pool: &PgPool, accepted: usize, warm_ups: usize) -> anyhow::Result<String> {
    let reserved: i64 = sqlx::query_scalar("SELECT coalesce(sum(reserved), 0) FROM quota_counters")
        .fetch_one(pool)
        .await
        .context("summing reserved units")?;
    let check = format!(
        "sum of quota_counters.reserved = {}; requests answered 202 = {} (incl. {warm_ups} \
         warm-ups)",
        thousands(reserved as f64),
        thousands(accepted as f64),
    );
    eprintln!("{check}");
    ensure!(
        reserved == accepted as i64,
        "MISMATCH, the charges do not add up: {check}"
    );
    Ok(check)
}

/// The real `App` on a free loopback port, workers off, every user on the roomy `bench` plan.
struct Server {
    endpoint: String,
    shutdown: CancellationToken,
    served: JoinHandle<anyhow::Result<()>>,
    _data_dir: tempfile::TempDir,
}

impl Server {
    /// Start the app; with `charging`, each echo job charges one `scrape` unit.
    async fn start(url: &str, charging: bool) -> anyhow::Result<Self> {
        // Its own pool: the app closes the pool it was given when it stops.
        let pool = store::connect_lazy(url, &DatabaseConfig::default())?;
        let data_dir = tempfile::tempdir().context("creating a data dir")?;
        let mut config = Config::default();
        config.http.listen = "127.0.0.1:0"
            .parse()
            .context("parsing the listen address")?;
        config.data_dir = data_dir.path().to_path_buf();
        config.jobs.run_workers = false;
        config.jobs.schedules_dir = data_dir.path().to_path_buf();
        let plan = PlanConfig {
            quotas: BTreeMap::from([("scrape".to_string(), ROOMY)]),
            rate_limit: ROOMY,
            rate_window: Duration::from_secs(60),
            ..PlanConfig::default()
        };
        config.plans.insert(PLAN.to_string(), plan);
        if charging {
            let echo = KindConfig {
                quota: Some("scrape".to_string()),
                ..KindConfig::default()
            };
            config.jobs.kinds.insert("echo".to_string(), echo);
        }
        let app = App::with_storage(config, Storage::from_pool(pool).await?).await?;
        Ok(Self {
            endpoint: format!("http://{}/v1/jobs", app.local_addr()),
            shutdown: app.shutdown_token(),
            served: tokio::spawn(app.run()),
            _data_dir: data_dir,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.served.await.context("the app task")?
    }
}

/// `n` users and an admin on the bench plan with a token each, in one transaction; returns
/// the users' tokens and the admin's (alone in a list).
async fn create_users(pool: &PgPool, n: usize) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let mut tx = pool.begin().await.context("beginning a transaction")?;
    let mut secrets = Vec::with_capacity(n);
    for i in 0..n {
        secrets.push(create_token(&mut tx, &format!("bench user {i}"), Role::User).await?);
    }
    let admin = create_token(&mut tx, "bench admin", Role::Admin).await?;
    tx.commit().await.context("committing the users")?;
    Ok((secrets, vec![admin]))
}

/// A user on the bench plan, created straight in the database; returns its bearer token.
async fn create_token(conn: &mut PgConnection, name: &str, role: Role) -> anyhow::Result<String> {
    let user = NewUser::parse(name, None, role, Some(PLAN)).map_err(anyhow::Error::msg)?;
    let user = store::users::insert_user(conn, &user)
        .await
        .with_context(|| format!("creating user {name}"))?;
    let minted = tokens::mint();
    store::tokens::insert_token(conn, user.id, "bench", &minted).await?;
    Ok(minted.secret)
}

/// Use up every bench user's `scrape` quota, as if that many jobs had succeeded today.
async fn spend_quotas(pool: &PgPool, users: usize) -> anyhow::Result<()> {
    let spent = sqlx::query(
        "UPDATE quota_counters SET used = $1 \
         WHERE action = 'scrape' AND user_id IN (SELECT id FROM users WHERE role = 'user')",
    )
    .bind(ROOMY as i32)
    .execute(pool)
    .await
    .context("spending the quotas")?;
    ensure!(
        spent.rows_affected() == users as u64,
        "only {} of {users} users had a scrape counter",
        spent.rows_affected()
    );
    Ok(())
}

/// Throughput and latency of one phase.
struct Figures {
    rate: f64,
    p50: f64,
    p99: f64,
    /// Requests answered, warm-ups included; every one with the expected status.
    answered: usize,
}

impl Figures {
    fn row(&self, what: &str, status: u16) -> String {
        format!(
            "| {what} | all {status} | {} | {} | {} |",
            thousands(self.rate),
            ms(self.p50),
            ms(self.p99)
        )
    }

    /// Append `quotas.<name>` (requests/s) and `quotas.<name>_p99` (ms) to `BENCH_FIGURES`.
    fn record(&self, name: &str, what: &str) {
        support::figures::figure(&format!("quotas.{name}"), self.rate, "req/s", what);
        let p99 = format!("quotas.{name}_p99");
        support::figures::figure(&p99, self.p99, "ms", &format!("p99 latency, {what}"));
    }
}

/// `requests` enqueues from `clients` concurrent keep-alive clients, request `i` with token
/// `i % tokens.len()`, so consecutive requests come from different users. Fails unless every
/// answer is `expect`.
async fn load(
    endpoint: &str,
    tokens: &[String],
    requests: usize,
    clients: usize,
    expect: u16,
) -> anyhow::Result<Figures> {
    let expect = StatusCode::from_u16(expect).context("an HTTP status")?;
    // One untimed request per client, all at once: opens the keep-alive connections and
    // fills the app's pool, so no phase pays for connecting.
    let conns: Vec<_> = (0..clients).map(|_| reqwest::Client::new()).collect();
    let warm = (conns.iter().enumerate())
        .map(|(c, client)| post_job(client, endpoint, &tokens[c % tokens.len()], expect));
    futures::future::try_join_all(warm).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let tokens: Arc<[String]> = tokens.into();
    let started = Instant::now();
    let tasks: Vec<_> = (conns.into_iter())
        .map(|client| {
            let (next, tokens, endpoint) = (next.clone(), tokens.clone(), endpoint.to_string());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        break;
                    }
                    let sent = Instant::now();
                    post_job(&client, &endpoint, &tokens[i % tokens.len()], expect).await?;
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(requests);
    for task in tasks {
        latencies.extend(task.await.context("an HTTP client task")??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    Ok(Figures {
        rate: requests as f64 / elapsed,
        p50: pct(&latencies, 50.0),
        p99: pct(&latencies, 99.0),
        answered: clients + latencies.len(),
    })
}

/// One `POST /v1/jobs` of echo, read to the end; fails unless it answers `expect`, and a 429
/// must be the quota's (not the rate limit's).
async fn post_job(
    client: &reqwest::Client,
    endpoint: &str,
    token: &str,
    expect: StatusCode,
) -> anyhow::Result<()> {
    let resp = client
        .post(endpoint)
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(ENQUEUE_BODY)
        .send()
        .await
        .context("sending POST /v1/jobs")?;
    let status = resp.status();
    let body = resp.bytes().await.context("reading the answer")?;
    let body = String::from_utf8_lossy(&body);
    let wrong_refusal =
        status == StatusCode::TOO_MANY_REQUESTS && !body.contains(r#""code":"quota_exhausted""#);
    if status != expect || wrong_refusal {
        bail!("POST /v1/jobs answered {status} (expected {expect}): {body}");
    }
    Ok(())
}
