//! What the benchmark programs share: logging and the runtime, a scratch database created for
//! the run and dropped after it, an admin token, and the figures' formatting. Each program
//! includes it with `#[path = "support/mod.rs"] mod support;` and uses the parts it needs.

#![allow(dead_code)]

pub mod engine;
pub mod figures;

use std::future::Future;

use anyhow::{Context, ensure};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgPool};
use workhorse::domain::tokens;
use workhorse::domain::users::{NewUser, Role};
use workhorse::store;

/// Log warnings (or `RUST_LOG`) to stderr, where progress goes; stdout carries the table.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// The multi-threaded runtime (one worker per core: the machine's cores are shared by the load
/// generator and the daemon under test).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")
}

/// Create the database `name` (default `wh_bench_<prefix>_<pid>`) on the server of
/// `admin_url`, run `work` with its URL, and drop it again, also when `work` fails.
pub async fn with_scratch_database<T, F, Fut>(
    admin_url: &str,
    name: Option<String>,
    prefix: &str,
    work: F,
) -> anyhow::Result<T>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let admin: PgConnectOptions = admin_url.parse().context("parsing the admin URL")?;
    let name = name.unwrap_or_else(|| format!("wh_bench_{prefix}_{}", std::process::id()));
    ensure!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "database name {name:?} must be letters, digits and underscores"
    );
    let mut conn = admin.connect().await.context("connecting to PostgreSQL")?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .with_context(|| format!("creating database {name}"))?;
    let mut url = reqwest::Url::parse(admin_url).context("parsing the admin URL")?;
    url.set_path(&format!("/{name}"));
    let done = work(url.to_string()).await;
    let dropped = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .with_context(|| format!("dropping database {name}"));
    let done = done?;
    dropped?;
    Ok(done)
}

/// Print a note when the figures come from a debug build.
pub fn warn_if_debug() {
    if cfg!(debug_assertions) {
        println!("(debug build: these figures are not representative)\n");
    }
}

/// A new admin user `bench` and a token of theirs.
pub async fn admin_token(pool: &PgPool) -> anyhow::Result<String> {
    let mut conn = pool.acquire().await.context("acquiring a connection")?;
    let user = NewUser::parse("bench", None, Role::Admin, None).map_err(anyhow::Error::msg)?;
    let user = store::users::insert_user(&mut conn, &user)
        .await
        .context("creating the admin user")?;
    let minted = tokens::mint();
    store::tokens::insert_token(&mut conn, user.id, "bench", &minted).await?;
    Ok(minted.secret)
}

/// `n` users of role `user`, each with a token: their ids and tokens.
pub async fn user_tokens(pool: &PgPool, n: usize) -> anyhow::Result<Vec<(uuid::Uuid, String)>> {
    let mut conn = pool.acquire().await.context("acquiring a connection")?;
    let mut users = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("tenant {i}");
        let user = NewUser::parse(&name, None, Role::User, None).map_err(anyhow::Error::msg)?;
        let user = store::users::insert_user(&mut conn, &user)
            .await
            .context("creating a user")?;
        let minted = tokens::mint();
        store::tokens::insert_token(&mut conn, user.id, "bench", &minted).await?;
        users.push((user.id, minted.secret));
    }
    Ok(users)
}

/// The `p`th percentile (nearest rank) of sorted `values`; NaN when there are none.
pub fn pct(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// Milliseconds: two decimals below 10 ms, whole ones above.
pub fn ms(value: f64) -> String {
    match value {
        v if v < 10.0 => format!("{v:.2} ms"),
        v => format!("{v:.0} ms"),
    }
}

/// A whole number with thousands separators: 12,345.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// CPU time (user + system, in clock ticks of 1/100 s) of this process and of each PostgreSQL
/// backend serving the current database of a pool, from /proc: the server must run on this
/// machine. Background processes (WAL writer, checkpointer) are not counted.
pub struct CpuSnapshot {
    own: u64,
    backends: std::collections::HashMap<i32, u64>,
}

/// Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux).
const USER_HZ: f64 = 100.0;

impl CpuSnapshot {
    /// Now, or `None` when /proc does not show the backends (another machine).
    pub async fn take(pool: &PgPool) -> anyhow::Result<Option<Self>> {
        let pids: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()",
        )
        .fetch_all(pool)
        .await
        .context("listing the database's backends")?;
        let Some(own) = proc_ticks("self") else {
            return Ok(None);
        };
        let mut backends = std::collections::HashMap::new();
        for pid in pids {
            match proc_ticks(&pid.to_string()) {
                Some(ticks) => backends.insert(pid, ticks),
                None => return Ok(None),
            };
        }
        Ok(Some(Self { own, backends }))
    }

    /// Seconds of CPU since `earlier` (this process, the backends); backends that started
    /// meanwhile count from zero.
    pub fn since(&self, earlier: &Self) -> (f64, f64) {
        let own = self.own.saturating_sub(earlier.own) as f64 / USER_HZ;
        let backends: u64 = (self.backends.iter())
            .map(|(pid, now)| now.saturating_sub(earlier.backends.get(pid).copied().unwrap_or(0)))
            .sum();
        (own, backends as f64 / USER_HZ)
    }
}

/// utime + stime of /proc/<pid>/stat, in clock ticks; `None` when it cannot be read.
pub fn proc_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's closing parenthesis: state is the first field, utime the 12th.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The resident set of process `pid` in KiB, from /proc/<pid>/status.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let line = (status.lines().find(|l| l.starts_with("VmRSS:"))).context("no VmRSS")?;
    let kib = line.split_whitespace().nth(1).context("an empty VmRSS")?;
    kib.parse().context("parsing VmRSS")
}
