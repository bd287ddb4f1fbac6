//! `workhorse status`: without a daemon, and with one holding a lease.

use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{Cli, echo_job, job_state};

#[sqlx::test]
async fn status_shows_queues_schedules_and_dead_deliveries_without_a_daemon(pool: PgPool) {
    let cli = Cli::new(&pool).await;
    let first = echo_job(&pool, json!({}), None).await;
    echo_job(&pool, json!({}), None).await;
    let later = echo_job(&pool, json!({}), None).await;
    sqlx::query("UPDATE jobs SET run_at = now() - interval '5 minutes' WHERE id = $1")
        .bind(first)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE jobs SET run_at = now() + interval '1 hour' WHERE id = $1")
        .bind(later)
        .execute(&pool)
        .await
        .unwrap();

    let status = cli.json(&["status"]);
    let table = cli.ok(&["status"]);

    let echo = &status["queues"][0];
    assert_eq!(echo["kind"], "echo");
    assert_eq!(echo["waiting"], 2);
    assert_eq!(echo["later"], 1);
    assert_eq!(echo["running"], 0);
    let oldest: chrono::DateTime<Utc> = echo["oldest_due"].as_str().unwrap().parse().unwrap();
    assert!(Utc::now() - oldest >= chrono::Duration::minutes(5));
    assert_eq!(status["instances"], json!([]));
    assert_eq!(status["schedules"][0]["name"], "echo-hourly");
    assert!(status["schedules"][0]["next_run_at"].is_string());
    assert_eq!(status["dead_deliveries"], 0);
    assert!(
        table.contains("5m ago") && table.contains("Dead deliveries: 0"),
        "{table}"
    );
}

#[sqlx::test]
async fn status_shows_the_live_instance_of_a_running_daemon(pool: PgPool) {
    let cli = Cli::new(&pool).await;
    let job = echo_job(&pool, json!({"sleep_ms": 60_000}), None).await;
    let mut daemon = cli
        .command(&["serve"])
        .env("WORKHORSE_HTTP__LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting workhorse serve");

    let deadline = Instant::now() + Duration::from_secs(60);
    while job_state(&pool, job).await != "running" {
        assert!(
            Instant::now() < deadline,
            "the daemon never picked the job up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = cli.json(&["status"]);
    let table = cli.ok(&["status"]);
    let _ = daemon.kill();
    let _ = daemon.wait();

    let locked_by: uuid::Uuid = sqlx::query_scalar("SELECT locked_by FROM jobs WHERE id = $1")
        .bind(job)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status["instances"][0]["instance"], locked_by.to_string());
    assert_eq!(status["instances"][0]["running"], 1);
    assert_eq!(status["running"], 1);
    assert!(table.contains(&locked_by.to_string()), "{table}");
}
