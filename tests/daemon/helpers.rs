//! Shared helpers: a sandbox of temp dirs per test, the `workhorse serve` process guard, throwaway
//! databases on the machine's PostgreSQL, and polling with deadlines.

use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sqlx::Connection;
use tempfile::TempDir;

/// The binary under test.
pub const WORKHORSE: &str = env!("CARGO_BIN_EXE_workhorse");

/// Long enough for `initdb` on a slow, busy machine.
pub const EMBEDDED_START: Duration = Duration::from_secs(60);
/// Start-up against an already running PostgreSQL.
pub const CONFIGURED_START: Duration = Duration::from_secs(30);

/// Variables of the test process that would change how the daemon behaves; children never
/// inherit them (a test run from a systemd unit has `JOURNAL_STREAM` set, which would turn
/// `auto` logs into the journal format wherever stderr is that stream).
const FOREIGN_VARS: [&str; 6] = [
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "DATABASE_URL",
    "RUST_LOG",
    "JOURNAL_STREAM",
];

/// A config dir and a data dir of one test, both empty and removed at the end.
pub struct Sandbox {
    config_dir: TempDir,
    data_dir: TempDir,
}

impl Sandbox {
    /// Fresh, empty directories. The data dir is a temp dir of its own because the embedded
    /// PostgreSQL (running as `postgres`) must be able to reach it.
    pub fn new() -> Self {
        Self {
            config_dir: TempDir::new().expect("creating the config dir"),
            data_dir: TempDir::new().expect("creating the data dir"),
        }
    }

    /// The directory passed as `WORKHORSE_CONFIG_DIR`; empty unless a test writes files.
    pub fn config_dir(&self) -> &Path {
        self.config_dir.path()
    }

    /// The directory passed as `WORKHORSE_DATA_DIR`.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// Write a file into the config dir and return its path.
    pub fn write_config(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.config_dir().join(name);
        std::fs::write(&path, contents).expect("writing a config file");
        path
    }

    /// `workhorse <args>` with a clean environment: no inherited `WORKHORSE_*`, `OTEL_*` or
    /// systemd variables, config from the sandbox's config dir only (never the repo's
    /// `config/local.toml`), state in the sandbox's data dir, working directory the data dir.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(WORKHORSE);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("WORKHORSE_")
                || key.starts_with("OTEL_")
                || FOREIGN_VARS.contains(&key.as_ref())
            {
                cmd.env_remove(key.as_ref());
            }
        }
        cmd.args(args)
            .env("WORKHORSE_CONFIG_DIR", self.config_dir())
            .env("WORKHORSE_DATA_DIR", self.data_dir())
            // All traffic stays on loopback, whatever proxy the machine has configured.
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .current_dir(self.data_dir())
            .stdin(Stdio::null());
        cmd
    }

    /// Start `workhorse serve` on a free loopback port with JSON logs, plus `env`.
    pub fn serve(&self, env: &[(&str, &str)]) -> Daemon {
        let mut cmd = self.command(&["serve"]);
        cmd.env("WORKHORSE_HTTP__LISTEN", "127.0.0.1:0")
            .env("WORKHORSE_LOG__FORMAT", "json");
        cmd.envs(env.iter().copied());
        Daemon::spawn(cmd)
    }
}

/// A running `workhorse` process. Its stderr goes to a file that is printed when the test
/// fails; dropping the guard kills the process if it still runs.
pub struct Daemon {
    child: Child,
    log: PathBuf,
    _log_dir: TempDir,
    addr: Option<SocketAddr>,
    exit: Option<ExitStatus>,
}

impl Daemon {
    /// Spawn `cmd` with stdout discarded and stderr captured.
    pub fn spawn(cmd: Command) -> Self {
        Self::spawn_logging(cmd, false)
    }

    /// Spawn `cmd` as systemd does with `StandardError=journal`: `JOURNAL_STREAM` names the
    /// device and inode of its stderr (here the capture file).
    pub fn spawn_into_journal(cmd: Command) -> Self {
        Self::spawn_logging(cmd, true)
    }

    fn spawn_logging(mut cmd: Command, journal: bool) -> Self {
        let log_dir = TempDir::new().expect("creating the log dir");
        let log = log_dir.path().join("workhorse.log");
        let stderr = File::create(&log).expect("creating the daemon log");
        if journal {
            let meta = stderr.metadata().expect("stat of the daemon log");
            cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawning workhorse");
        Self {
            child,
            log,
            _log_dir: log_dir,
            addr: None,
            exit: None,
        }
    }

    /// The process id, for signals.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Everything the daemon wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until the daemon logs the address it bound, and return it.
    pub async fn wait_listening(&mut self, within: Duration) -> SocketAddr {
        let deadline = Instant::now() + within;
        loop {
            if let Some(addr) = bound_addr(&self.log()) {
                self.addr = Some(addr);
                return addr;
            }
            if let Some(status) = self.child.try_wait().expect("polling workhorse") {
                self.exit = Some(status);
                panic!("workhorse exited with {status} before listening");
            }
            assert!(
                Instant::now() < deadline,
                "workhorse did not log a bound address within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:<port>` of the API; only after [`Daemon::wait_listening`].
    pub fn base_url(&self) -> String {
        let addr = self
            .addr
            .expect("the daemon's address is known after wait_listening");
        format!("http://{addr}")
    }

    /// Wait until the daemon listens and `GET /readyz` answers 200.
    pub async fn wait_ready(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        self.wait_listening(within).await;
        let url = format!("{}/readyz", self.base_url());
        let client = http();
        loop {
            if let Ok(response) = client.get(&url).send().await
                && response.status() == 200
            {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("polling workhorse") {
                self.exit = Some(status);
                panic!("workhorse exited with {status} before it was ready");
            }
            assert!(
                Instant::now() < deadline,
                "GET /readyz did not answer 200 within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Send `signal` to the daemon.
    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).expect("signalling workhorse");
    }

    /// Wait for the process to exit and return its status; fails the test after `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exit {
                return status;
            }
            if let Some(status) = self.child.try_wait().expect("polling workhorse") {
                self.exit = Some(status);
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "workhorse did not exit within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then wait for the exit status.
    pub async fn terminate(&mut self, within: Duration) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        self.wait_exit(within).await
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- workhorse stderr ({}) ----\n{}---- end ----",
                self.log.display(),
                self.log()
            );
        }
    }
}

/// The address from the daemon's `listening` line (poem logs one too, as `socket://...`): JSON,
/// or the text of the pretty and journal formats (`workhorse::app: listening; ... addr=...`).
fn bound_addr(log: &str) -> Option<SocketAddr> {
    let json = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| {
            event["target"] == "workhorse::app"
                && event["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("listening"))
        })
        .find_map(|event| event["addr"].as_str()?.parse().ok());
    json.or_else(|| {
        log.lines()
            .filter(|line| line.contains("workhorse::app: listening"))
            .find_map(|line| line.split_once(" addr=")?.1.split(' ').next()?.parse().ok())
    })
}

/// `workhorse admin create-token` against `db_url`; returns the printed token.
pub fn create_token(sandbox: &Sandbox, db_url: &str) -> String {
    let output = sandbox
        .command(&["admin", "create-token"])
        .env("WORKHORSE_DATABASE__URL", db_url)
        .env("WORKHORSE_LOG__FORMAT", "json")
        .output()
        .expect("running workhorse admin create-token");
    assert!(
        output.status.success(),
        "admin create-token failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout.lines().last().unwrap_or_default().trim().to_string()
}

/// An HTTP client for loopback servers: no proxy, bounded per request.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("building the HTTP client")
}

/// Call `probe` until it returns `Some`, failing the test with `what` after `within`.
pub async fn eventually<T>(
    within: Duration,
    what: &str,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A database of its own on the machine's PostgreSQL, dropped with the guard.
pub struct TestDatabase {
    name: String,
    url: String,
}

/// The server tests create their databases on (`DATABASE_URL`, set by `.cargo/config.toml`).
fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Create an empty database named `wh_daemon_<uuid>`.
pub async fn fresh_database() -> TestDatabase {
    let name = format!("wh_daemon_{}", uuid::Uuid::new_v4().simple());
    let admin = admin_url();
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connecting to the test PostgreSQL (DATABASE_URL)");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("creating the test database");
    let _ = conn.close().await;
    let server = admin.split('?').next().unwrap_or_default();
    let base = server.rsplit_once('/').map_or(server, |(base, _)| base);
    TestDatabase {
        url: format!("{base}/{name}"),
        name,
    }
}

impl TestDatabase {
    /// URL of the database, for `WORKHORSE_DATABASE__URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A connection to inspect what the daemon wrote.
    pub async fn connect(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.url)
            .await
            .expect("connecting to the test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop may run inside a runtime, so the async clean-up gets a thread of its own.
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin_url()).await?;
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            })?;
            anyhow::Ok(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

impl Daemon {
    /// Whether the process is still running (not exited, not yet reaped).
    pub fn is_running(&mut self) -> bool {
        if self.exit.is_some() {
            return false;
        }
        match self.child.try_wait().expect("polling workhorse") {
            Some(status) => {
                self.exit = Some(status);
                false
            }
            None => true,
        }
    }

    /// The job engine's instance id (the `locked_by` of the jobs this process runs), from its
    /// JSON `job workers started` line, once it has been logged.
    pub fn instance(&self) -> Option<uuid::Uuid> {
        self.log()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|event| event["message"] == "job workers started")
            .find_map(|event| event["instance"].as_str()?.parse().ok())
    }
}
