//! PostgreSQL restarting under a running daemon: the attempts it interrupts fail or wait, and the
//! same daemon process finishes every job once the server is back, without being restarted.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{Connection, PgConnection};
use tempfile::TempDir;
use workhorse::store::embedded::EmbeddedPostgres;
use workhorse::store::jobs;

use crate::helpers::{CONFIGURED_START, Sandbox, eventually, http};

/// Jobs in the run.
const JOBS: usize = 300;
/// Handler time of each job, so that a full set of them is in flight at the restart.
const SLEEP_MS: u64 = 50;
/// PostgreSQL restarts once this many jobs have succeeded.
const RESTART_AT: i64 = 60;
/// Everything left must be done this soon after PostgreSQL is back: a job interrupted by the
/// outage waits out its backoff (1 s, then 2 s, ...) before its next attempt.
const FINISH_WITHIN: Duration = Duration::from_secs(60);
/// How long PostgreSQL stays stopped: longer than an attempt, shorter than a lease (6 s).
const DOWN_FOR: Duration = Duration::from_secs(2);
/// `/readyz` must be 200 again this soon after PostgreSQL is back.
const READY_WITHIN: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn every_job_finishes_when_postgres_restarts_under_the_running_daemon() {
    // Arrange: a PostgreSQL of the test's own, a daemon using it, jobs in flight.
    let pg_dir = TempDir::new().expect("creating the PostgreSQL dir");
    let mut pg = EmbeddedPostgres::start(pg_dir.path(), None)
        .await
        .expect("starting the embedded PostgreSQL");
    let url = pg.url();
    let sandbox = Sandbox::new();
    let mut daemon = sandbox.serve(&[
        ("WORKHORSE_DATABASE__URL", url.as_str()),
        ("WORKHORSE_JOBS__CONCURRENCY", "8"),
    ]);
    daemon.wait_ready(CONFIGURED_START).await;
    let pid = daemon.pid();
    let mut conn = connect(&url).await;
    let args = vec![json!({"sleep_ms": SLEEP_MS, "record": true}); JOBS];
    jobs::enqueue_many(&mut conn, "echo", 5, &args, &[])
        .await
        .expect("enqueueing the jobs");
    eventually(
        Duration::from_secs(30),
        "jobs run before the restart",
        async || (count_succeeded(&mut conn).await >= RESTART_AT).then_some(()),
    )
    .await;
    let _ = conn.close().await;

    // Act: down long enough that attempts finish while it is away and their results wait.
    let stopping = Instant::now();
    pg.stop().await.expect("stopping PostgreSQL");
    tokio::time::sleep(DOWN_FOR).await;
    pg.restart().await.expect("starting PostgreSQL again");
    let (back, back_at) = (Instant::now(), Utc::now());
    let away = back - stopping;

    // Assert: the daemon serves and works again, and finishes everything.
    let ready_after = readyz_ok_after(&daemon.base_url(), back).await;
    let mut conn = connect(&url).await;
    let first_start: DateTime<Utc> = eventually(
        Duration::from_secs(30),
        "a job starts after PostgreSQL is back",
        async || {
            sqlx::query_scalar("SELECT min(started_at) FROM echo_runs WHERE started_at >= $1")
                .bind(back_at)
                .fetch_one(&mut conn)
                .await
                .expect("looking for executions after the restart")
        },
    )
    .await;
    let worked_after = (first_start - back_at).to_std().unwrap_or_default();
    eventually(FINISH_WITHIN, "every job succeeds", async || {
        (count_succeeded(&mut conn).await == JOBS as i64).then_some(())
    })
    .await;
    let finished_after = back.elapsed();
    assert!(
        daemon.is_running(),
        "the daemon exited while PostgreSQL restarted"
    );
    assert_eq!(daemon.pid(), pid);
    let log = daemon.log();
    let errors: Vec<&str> = (log.lines())
        .filter(|line| line.contains(r#""level":"ERROR""#))
        .collect();
    assert!(errors.is_empty(), "the daemon logged errors: {errors:#?}");
    let readyz = http()
        .get(format!("{}/readyz", daemon.base_url()))
        .send()
        .await
        .expect("GET /readyz");
    assert_eq!(readyz.status(), 200);
    let (retried, executions): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM jobs WHERE attempts > 1), \
                (SELECT count(*) FROM echo_runs)",
    )
    .fetch_one(&mut conn)
    .await
    .expect("counting attempts");
    eprintln!(
        "pg_restart: PostgreSQL was away {:.2} s; after it was back, the daemon answered \
         /readyz 200 in {:.2} s, started a job in {:.2} s and finished all {JOBS} jobs in \
         {:.2} s ({retried} jobs needed another attempt, {executions} recorded executions)",
        away.as_secs_f64(),
        ready_after.as_secs_f64(),
        worked_after.as_secs_f64(),
        finished_after.as_secs_f64(),
    );
    let _ = conn.close().await;
    let status = daemon.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "workhorse exited with {status}");
    pg.stop().await.expect("stopping PostgreSQL");
}

async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url)
        .await
        .expect("connecting to the embedded PostgreSQL")
}

async fn count_succeeded(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'succeeded'")
        .fetch_one(conn)
        .await
        .expect("counting succeeded jobs")
}

/// Poll `/readyz` until it answers 200; returns the time since `since`.
async fn readyz_ok_after(base_url: &str, since: Instant) -> Duration {
    let url = format!("{base_url}/readyz");
    let client = http();
    eventually(READY_WITHIN, "GET /readyz answers 200 again", async || {
        let response = client.get(&url).send().await.ok()?;
        (response.status() == 200).then(|| since.elapsed())
    })
    .await
}
