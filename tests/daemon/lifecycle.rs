//! Process lifecycle: sd_notify `READY=1`, `WATCHDOG=1` and `STOPPING=1`, and graceful exit on
//! SIGTERM and SIGINT.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tempfile::TempDir;
use tokio::net::UnixDatagram;

use crate::helpers::{CONFIGURED_START, Daemon, Sandbox, TestDatabase, fresh_database, http};

const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Process exit after the HTTP server stopped: closing the pool, flushing, runtime teardown.
const EXIT_MARGIN: Duration = Duration::from_secs(3);

/// A systemd-style notification socket the daemon sends its state to.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    _dir: TempDir,
}

impl NotifySocket {
    fn bind() -> Self {
        let dir = TempDir::new().expect("creating the socket dir");
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("binding the notify socket");
        Self {
            socket,
            path,
            _dir: dir,
        }
    }

    /// Receive messages until one has all of `lines`; returns every message received.
    async fn wait_for(&self, lines: &[&str], within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut received = Vec::new();
        let mut buf = vec![0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(read) = tokio::time::timeout(left, self.socket.recv(&mut buf)).await else {
                panic!("no {lines:?} within {within:?}; received {received:?}");
            };
            let n = read.expect("reading the notify socket");
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = lines.iter().all(|l| message.lines().any(|m| m == *l));
            received.push(message);
            if done {
                return received;
            }
        }
    }
}

/// A daemon on a fresh database that talks to `notify` with a 200 ms watchdog.
/// The daemon comes last so it is dropped (killed) before its data dir and database.
async fn notifying_daemon(notify: &NotifySocket) -> (TestDatabase, Sandbox, Daemon) {
    let db = fresh_database().await;
    let sandbox = Sandbox::new();
    let socket = notify.path.to_str().expect("a UTF-8 socket path");
    let daemon = sandbox.serve(&[
        ("WORKHORSE_DATABASE__URL", db.url()),
        ("WORKHORSE_SHUTDOWN__TIMEOUT", "5s"),
        ("NOTIFY_SOCKET", socket),
        ("WATCHDOG_USEC", "200000"),
    ]);
    (db, sandbox, daemon)
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_sends_ready_once_listening_and_answers_healthz_right_after() {
    // Arrange
    let notify = NotifySocket::bind();
    let (_db, _sandbox, mut daemon) = notifying_daemon(&notify).await;

    // Act
    let received = notify
        .wait_for(&["READY=1", "STATUS=serving"], CONFIGURED_START)
        .await;
    daemon.wait_listening(Duration::from_secs(1)).await;
    let health = http()
        .get(format!("{}/healthz", daemon.base_url()))
        .send()
        .await
        .expect("GET /healthz");

    // Assert
    assert_eq!(
        received.last().map(String::as_str),
        Some("READY=1\nSTATUS=serving\n")
    );
    assert_eq!(health.status(), 200);
    assert!(health.headers().contains_key("x-request-id"));
    let body: serde_json::Value = health.json().await.expect("a JSON body");
    assert_eq!(body, serde_json::json!({"status": "ok"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_feeds_the_watchdog_after_ready() {
    // Arrange
    let notify = NotifySocket::bind();
    let (_db, _sandbox, _daemon) = notifying_daemon(&notify).await;
    notify.wait_for(&["READY=1"], CONFIGURED_START).await;

    // Act: half of the 200 ms period means a ping every 100 ms; 2 s allows for a busy machine.
    let first = notify
        .wait_for(&["WATCHDOG=1"], Duration::from_secs(2))
        .await;
    let second = notify
        .wait_for(&["WATCHDOG=1"], Duration::from_secs(2))
        .await;

    // Assert
    assert_eq!(first, ["WATCHDOG=1\n"]);
    assert_eq!(second, ["WATCHDOG=1\n"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_sends_stopping_and_exits_0_within_the_shutdown_timeout() {
    // Arrange
    let notify = NotifySocket::bind();
    let (_db, _sandbox, mut daemon) = notifying_daemon(&notify).await;
    notify.wait_for(&["READY=1"], CONFIGURED_START).await;

    // Act
    let signalled = Instant::now();
    daemon.signal(Signal::SIGTERM);
    let received = notify
        .wait_for(&["STOPPING=1", "STATUS=stopping"], SHUTDOWN_TIMEOUT)
        .await;
    let status = daemon.wait_exit(SHUTDOWN_TIMEOUT + EXIT_MARGIN).await;

    // Assert
    assert_eq!(
        received.last().map(String::as_str),
        Some("STOPPING=1\nSTATUS=stopping\n")
    );
    assert!(status.success(), "workhorse exited with {status}");
    assert!(signalled.elapsed() < SHUTDOWN_TIMEOUT + EXIT_MARGIN);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_stops_the_daemon_like_sigterm() {
    // Arrange
    let notify = NotifySocket::bind();
    let (_db, _sandbox, mut daemon) = notifying_daemon(&notify).await;
    notify.wait_for(&["READY=1"], CONFIGURED_START).await;

    // Act
    daemon.signal(Signal::SIGINT);
    notify.wait_for(&["STOPPING=1"], SHUTDOWN_TIMEOUT).await;
    let status = daemon.wait_exit(SHUTDOWN_TIMEOUT + EXIT_MARGIN).await;

    // Assert
    assert!(status.success(), "workhorse exited with {status}");
    assert!(
        daemon.log().contains("\"signal\":\"SIGINT\""),
        "no SIGINT in the log"
    );
}
