//! Storage: the embedded PostgreSQL cluster under the data dir, and a configured server.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::sys::stat::{Mode, umask};
use nix::unistd::{Uid, User, geteuid};

use crate::helpers::{
    CONFIGURED_START, Daemon, EMBEDDED_START, Sandbox, eventually, fresh_database, http,
};

/// Pids of processes that belong to the cluster in `cluster_dir`: the postmaster names it on its
/// command line, and every server process works inside it.
fn postgres_processes_in(cluster_dir: &Path) -> Vec<String> {
    let cluster = cluster_dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let cwd = std::fs::read_link(e.path().join("cwd")).unwrap_or_default();
            (cmdline.contains("postgres") && cmdline.contains(&cluster)) || cwd == cluster_dir
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// `workhorse admin create-token` in the sandbox; returns the printed token.
fn create_token(sandbox: &Sandbox) -> String {
    let output = sandbox
        .command(&["admin", "create-token"])
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

/// `workhorse serve` in the sandbox under umask 000, so every file it creates without explicit
/// permissions is open to everyone.
fn serve_with_open_umask(sandbox: &Sandbox) -> Daemon {
    let mut cmd = sandbox.command(&["serve"]);
    cmd.env("WORKHORSE_HTTP__LISTEN", "127.0.0.1:0")
        .env("WORKHORSE_LOG__FORMAT", "json");
    // SAFETY: umask(2) is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            umask(Mode::empty());
            Ok(())
        });
    }
    Daemon::spawn(cmd)
}

/// The user the embedded cluster runs as: `postgres` when the tests run as root, else us.
fn cluster_uid() -> Uid {
    if geteuid().is_root() {
        let user = User::from_name("postgres").expect("reading the user database");
        user.expect("a postgres user").uid
    } else {
        geteuid()
    }
}

/// Mode bits and owner of `dir`.
fn mode_and_owner(dir: &Path) -> (u32, Uid) {
    let meta = std::fs::metadata(dir).expect("stat of the socket dir");
    (meta.permissions().mode() & 0o777, Uid::from_raw(meta.uid()))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_socket_dir_is_private_to_the_cluster_user_under_an_open_umask() {
    // Regression: the socket dir followed the umask, so under umask 000 any local user could
    // reach a cluster that trusts every connection.
    // Arrange
    let sandbox = Sandbox::new();
    let socket_dir = sandbox.data_dir().join("postgres-run");

    // Act
    let mut daemon = serve_with_open_umask(&sandbox);
    daemon.wait_ready(EMBEDDED_START).await;
    let (mode, owner) = mode_and_owner(&socket_dir);

    // Assert
    assert_eq!(mode, 0o700, "socket dir mode {mode:o}");
    assert_eq!(owner, cluster_uid());
    assert!(socket_dir.join(".s.PGSQL.5432").exists(), "no socket in it");
    assert!(daemon.terminate(Duration::from_secs(30)).await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_world_open_socket_dir_left_from_before_is_closed_at_start() {
    // Arrange: a socket dir from an older daemon, open to everyone.
    let sandbox = Sandbox::new();
    let socket_dir = sandbox.data_dir().join("postgres-run");
    std::fs::create_dir(&socket_dir).expect("creating the old socket dir");
    std::fs::set_permissions(&socket_dir, std::fs::Permissions::from_mode(0o777))
        .expect("opening it to everyone");

    // Act
    let mut daemon = serve_with_open_umask(&sandbox);
    daemon.wait_ready(EMBEDDED_START).await;
    let (mode, owner) = mode_and_owner(&socket_dir);

    // Assert
    assert_eq!(mode, 0o700, "socket dir mode {mode:o}");
    assert_eq!(owner, cluster_uid());
    assert!(daemon.terminate(Duration::from_secs(30)).await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_storage_starts_in_the_data_dir_and_stops_with_the_daemon() {
    // Arrange
    let sandbox = Sandbox::new();
    let cluster = sandbox.data_dir().join("postgres");
    let mut daemon = sandbox.serve(&[]);

    // Act
    daemon.wait_ready(EMBEDDED_START).await;
    let running = postgres_processes_in(&cluster);
    let status = daemon.terminate(Duration::from_secs(30)).await;

    // Assert
    assert!(
        cluster.join("PG_VERSION").is_file(),
        "no cluster in {}",
        cluster.display()
    );
    assert!(
        !running.is_empty(),
        "no PostgreSQL ran in {}",
        cluster.display()
    );
    assert!(status.success(), "workhorse exited with {status}");
    let left = postgres_processes_in(&cluster);
    assert!(
        left.is_empty(),
        "PostgreSQL processes left running: {left:?}"
    );
    assert!(
        !cluster.join("postmaster.pid").exists(),
        "postmaster.pid is left behind"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_on_the_same_data_dir_reuses_the_cluster_and_keeps_its_data() {
    // Arrange: a token created while the first daemon runs (the admin command shares its
    // server).
    let sandbox = Sandbox::new();
    let mut first = sandbox.serve(&[]);
    first.wait_ready(EMBEDDED_START).await;
    let token = create_token(&sandbox);
    assert!(first.terminate(Duration::from_secs(30)).await.success());

    // Act
    let mut second = sandbox.serve(&[]);
    second.wait_ready(CONFIGURED_START).await;
    let me = http()
        .get(format!("{}/v1/me", second.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET /v1/me");

    // Assert
    assert_eq!(me.status(), 200, "{}", me.text().await.unwrap_or_default());
    assert!(
        !second
            .log()
            .contains("creating the embedded PostgreSQL cluster"),
        "the second start ran initdb again"
    );
    assert!(second.terminate(Duration::from_secs(30)).await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn configured_storage_migrates_that_database_and_starts_no_cluster() {
    // Arrange
    let db = fresh_database().await;
    let sandbox = Sandbox::new();
    let mut daemon = sandbox.serve(&[("WORKHORSE_DATABASE__URL", db.url())]);

    // Act
    daemon.wait_ready(CONFIGURED_START).await;
    let mut conn = db.connect().await;
    let users_table: bool = sqlx::query_scalar("SELECT to_regclass('public.users') IS NOT NULL")
        .fetch_one(&mut conn)
        .await
        .expect("looking for the users table");

    // Assert
    assert!(users_table, "no users table in {}", db.url());
    assert!(
        !sandbox.data_dir().join("postgres").exists(),
        "an embedded cluster was created although a URL is configured"
    );
    let _ = sqlx::Connection::close(conn).await;
    assert!(daemon.terminate(Duration::from_secs(30)).await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_daemon_takes_its_embedded_postgres_down_and_the_next_start_recovers() {
    // Arrange
    let sandbox = Sandbox::new();
    let cluster = sandbox.data_dir().join("postgres");
    let mut killed = sandbox.serve(&[]);
    killed.wait_ready(EMBEDDED_START).await;

    // Act: no chance to clean up; the server only hears of it through its parent-death signal.
    killed.signal(Signal::SIGKILL);
    killed.wait_exit(Duration::from_secs(10)).await;

    // Assert
    eventually(Duration::from_secs(30), "PostgreSQL stops", async || {
        postgres_processes_in(&cluster).is_empty().then_some(())
    })
    .await;
    let mut next = sandbox.serve(&[]);
    next.wait_ready(EMBEDDED_START).await;
    assert!(next.terminate(Duration::from_secs(30)).await.success());
    assert!(postgres_processes_in(&cluster).is_empty());
}
