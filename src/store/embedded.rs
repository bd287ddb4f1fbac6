//! The embedded PostgreSQL cluster: with no `database.url`, the daemon runs a private cluster
//! under `<data_dir>/postgres` from the machine's installed server binaries, Unix socket only,
//! and stops it on shutdown.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, User, chown};
use tokio::process::{Child, Command};

/// Superuser and database created by `initdb` for the daemon.
const ROLE: &str = "workhorse";
/// The socket is `<run_dir>/.s.PGSQL.<PORT>`; no TCP port is opened, so any number works.
const PORT: u16 = 5432;
/// Long enough for initdb plus crash recovery on a slow disk.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running private PostgreSQL server, stopped by [`EmbeddedPostgres::stop`] (or, as a last
/// resort, when the daemon dies: the server gets SIGINT from the kernel).
pub struct EmbeddedPostgres {
    cluster_dir: PathBuf,
    run_dir: PathBuf,
    bin_dir: PathBuf,
    run_as: Option<User>,
    child: Option<Child>,
}

impl EmbeddedPostgres {
    /// Initialise the cluster under `data_dir/postgres` on first use, start the server and wait
    /// until it accepts connections.
    pub async fn start(data_dir: &Path, bin_dir: Option<&Path>) -> anyhow::Result<Self> {
        let bin_dir = match bin_dir {
            Some(dir) => dir.to_path_buf(),
            None => find_bin_dir().context(
                "no database.url is configured and no PostgreSQL server binaries were found: \
                 install them (apt-get install postgresql) or set WORKHORSE_DATABASE__URL",
            )?,
        };
        for tool in ["initdb", "postgres"] {
            if !bin_dir.join(tool).is_file() {
                bail!(
                    "{} has no `{tool}`: set database.embedded_bin_dir to the directory of the \
                     PostgreSQL server binaries, or set WORKHORSE_DATABASE__URL",
                    bin_dir.display()
                );
            }
        }
        // initdb and postgres refuse to run as root: then the cluster belongs to `postgres`.
        let run_as = if nix::unistd::geteuid().is_root() {
            Some(User::from_name("postgres")?.context(
                "running as root, the embedded PostgreSQL needs an unprivileged `postgres` user \
                 to own it (useradd --system postgres), or set WORKHORSE_DATABASE__URL",
            )?)
        } else {
            None
        };
        let data_dir = std::path::absolute(data_dir)?;
        let mut pg = Self {
            cluster_dir: data_dir.join("postgres"),
            run_dir: data_dir.join("postgres-run"),
            bin_dir,
            run_as,
            child: None,
        };
        pg.prepare_dirs(&data_dir)?;
        if !pg.cluster_dir.join("PG_VERSION").is_file() {
            pg.initdb().await?;
        }
        match pg.running_server() {
            // Another daemon (or `workhorse serve` while an operator runs `admin`) owns it: share
            // it and leave stopping it to its owner.
            Some(pid) if !is_orphan(pid) => {
                tracing::info!(%pid, "using the embedded PostgreSQL started by another workhorse");
                pg.wait_until_accepting().await?;
            }
            Some(pid) => {
                pg.stop_orphan(pid).await;
                pg.spawn_server().await?;
            }
            None => pg.spawn_server().await?,
        }
        Ok(pg)
    }

    /// The URL the pool connects with (over the Unix socket).
    pub fn url(&self) -> String {
        format!(
            "postgres://{ROLE}@localhost/{ROLE}?host={}&port={PORT}",
            self.run_dir.display()
        )
    }

    /// Stop the server with a fast shutdown and wait for it to exit.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Some(pid) = child.id() {
            // SIGINT = fast shutdown: clients are disconnected, the cluster is checkpointed.
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGINT);
        }
        match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
            Ok(status) => {
                status.context("waiting for the embedded PostgreSQL to stop")?;
            }
            Err(_) => {
                tracing::warn!("embedded PostgreSQL did not stop within 30 s; killing it");
                child
                    .kill()
                    .await
                    .context("killing the embedded PostgreSQL")?;
            }
        }
        tracing::info!(dir = %self.cluster_dir.display(), "embedded PostgreSQL stopped");
        Ok(())
    }

    /// Start the server again after [`EmbeddedPostgres::stop`].
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await?;
        self.spawn_server().await
    }

    fn prepare_dirs(&self, data_dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        // The run dir holds the socket of a cluster that trusts every local connection: only
        // the cluster's user may enter it (and the daemon, which is that user or root).
        for dir in [&self.cluster_dir, &self.run_dir] {
            private_dir(dir, self.run_as.as_ref())?;
        }
        if let Some(user) = &self.run_as {
            // The unprivileged owner must be able to reach its directories.
            let mode = std::fs::metadata(data_dir)?.permissions().mode();
            if mode & 0o001 == 0 {
                std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(mode | 0o711))?;
            }
            if let Some(blocked) = data_dir.ancestors().find(|dir| {
                std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 == 0)
            }) {
                bail!(
                    "the embedded PostgreSQL runs as `{}` (the daemon runs as root) and cannot \
                     reach {}: {} is not searchable by other users; choose a data_dir whose \
                     parents are (chmod o+x), run the daemon as a non-root user, or set \
                     WORKHORSE_DATABASE__URL",
                    user.name,
                    self.cluster_dir.display(),
                    blocked.display()
                );
            }
        }
        Ok(())
    }

    fn command(&self, tool: &str) -> Command {
        let mut cmd = std::process::Command::new(self.bin_dir.join(tool));
        // Children must not talk to systemd in our name.
        cmd.env_remove("PGDATA")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env("LC_ALL", "C.UTF-8");
        if let Some(user) = &self.run_as {
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
            cmd.env("HOME", &user.dir).env("USER", &user.name);
        }
        let mut cmd = Command::from(cmd);
        cmd.kill_on_drop(false);
        cmd
    }

    async fn initdb(&self) -> anyhow::Result<()> {
        tracing::info!(dir = %self.cluster_dir.display(), "creating the embedded PostgreSQL cluster");
        let output = self
            .command("initdb")
            .arg("-D")
            .arg(&self.cluster_dir)
            .args([
                "-U",
                ROLE,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ])
            .output()
            .await
            .context("running initdb")?;
        if !output.status.success() {
            bail!(
                "initdb failed for {}: {}",
                self.cluster_dir.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// The pid of a live server already running on this cluster, from its lock file.
    fn running_server(&self) -> Option<Pid> {
        let pidfile = std::fs::read_to_string(self.cluster_dir.join("postmaster.pid")).ok()?;
        let pid = pidfile.lines().next()?.trim().parse::<i32>().ok()?;
        let pid = Pid::from_raw(pid);
        kill(pid, None).is_ok().then_some(pid)
    }

    /// A server whose daemon was killed before it could stop it holds the lock file: stop it.
    async fn stop_orphan(&self, pid: Pid) {
        tracing::warn!(%pid, "stopping an embedded PostgreSQL left running by a previous daemon");
        let _ = kill(pid, Signal::SIGINT);
        for _ in 0..300 {
            if kill(pid, None).is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn spawn_server(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.run_dir.join("postgres.log"))
            .context("opening the embedded PostgreSQL log")?;
        if let Some(user) = &self.run_as {
            let _ = chown(
                &self.run_dir.join("postgres.log"),
                Some(user.uid),
                Some(user.gid),
            );
        }
        let mut cmd = self.command("postgres");
        cmd.arg("-D")
            .arg(&self.cluster_dir)
            .arg("-k")
            .arg(&self.run_dir)
            .args(["-p", &PORT.to_string(), "-c", "listen_addresses="])
            .args(["-c", "max_connections=200", "-c", "fsync=on"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // If the daemon is killed, the kernel tells the server to shut down too.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGINT).map_err(std::io::Error::from)
            });
        }
        let child = cmd.spawn().context("starting the embedded PostgreSQL")?;
        self.child = Some(child);
        self.wait_until_accepting().await
    }

    async fn wait_until_accepting(&mut self) -> anyhow::Result<()> {
        let owned = self.child.is_some();
        let socket = self.run_dir.join(format!(".s.PGSQL.{PORT}"));
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "the embedded PostgreSQL exited with {status} during start-up; see {}",
                    self.run_dir.join("postgres.log").display()
                );
            }
            if socket.exists() && self.create_database().await.is_ok() {
                tracing::info!(socket = %socket.display(), "embedded PostgreSQL is accepting connections");
                return Ok(());
            }
            if !owned && self.running_server().is_none() {
                bail!(
                    "the embedded PostgreSQL of another workhorse stopped while we waited for it"
                );
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "the embedded PostgreSQL did not accept connections within {START_TIMEOUT:?}; \
                     see {}",
                    self.run_dir.join("postgres.log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Create the daemon's database on first start (`initdb` only makes `postgres`).
    async fn create_database(&self) -> anyhow::Result<()> {
        use sqlx::Connection;
        let admin_url = format!(
            "postgres://{ROLE}@localhost/postgres?host={}&port={PORT}",
            self.run_dir.display()
        );
        let mut conn = sqlx::PgConnection::connect(&admin_url).await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(ROLE)
                .fetch_one(&mut conn)
                .await?;
        if !exists {
            sqlx::query("CREATE DATABASE workhorse")
                .execute(&mut conn)
                .await?;
        }
        conn.close().await?;
        Ok(())
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if let Some(pid) = self.child.as_ref().and_then(Child::id) {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGINT);
        }
    }
}

/// Create `dir` if it is missing and make it `0700`, owned by `owner` (the daemon's own user
/// when `None`), whatever the umask and whatever it was before.
fn private_dir(dir: &Path, owner: Option<&User>) -> anyhow::Result<()> {
    // Created without group or other bits, so there is no moment at which it is open; an
    // existing directory is fixed below.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    if let Some(user) = owner {
        chown(dir, Some(user.uid), Some(user.gid))
            .with_context(|| format!("giving {} to {}", dir.display(), user.name))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making {} private (mode 0700)", dir.display()))
}

/// Whether a server's parent (the daemon that started it) is gone: it was re-parented to init
/// or a subreaper that is not a workhorse.
fn is_orphan(pid: Pid) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // The command name may contain spaces; fields after the closing parenthesis are fixed.
    let ppid = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
        .and_then(|p| p.parse::<i32>().ok());
    let Some(ppid) = ppid else { return true };
    let parent = std::fs::read_to_string(format!("/proc/{ppid}/comm")).unwrap_or_default();
    ppid == 1 || !parent.trim().starts_with("workhorse")
}

/// The newest `/usr/lib/postgresql/<version>/bin`, else the directory of `postgres` on PATH.
fn find_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .find(|dir| dir.join("postgres").is_file() && dir.join("initdb").is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dir_closes_an_existing_world_open_directory() {
        let parent = tempfile::tempdir().expect("a temp dir");
        let dir = parent.path().join("postgres-run");
        std::fs::create_dir(&dir).expect("creating the dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");

        private_dir(&dir, None).expect("making it private");

        let mode = std::fs::metadata(&dir).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "mode {mode:o}");
    }
}
