//! The worker runtime against a real PostgreSQL: jobs run once and their outcome is stored;
//! retries follow the stored backoff; permanent errors, panics, timeouts and undecodable
//! arguments are recorded; wake-ups come from the sequencer's NOTIFY and from the next due
//! time, not from the poll; two engines share one queue; shutdown gives back unfinished jobs;
//! a dead process's jobs are rescued.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;
use workhorse::config::{JobsConfig, KindConfig};
use workhorse::engine::Engine;
use workhorse::health::Health;
use workhorse::store::jobs::{self, NewJob};

use super::rows;

/// A poll so slow that a test finishing in time proves the wake-up came from elsewhere.
const NO_POLL: Duration = Duration::from_secs(60);

fn config() -> JobsConfig {
    JobsConfig {
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        backoff_jitter: 0.0,
        poll_interval: NO_POLL,
        ..JobsConfig::default()
    }
}

async fn start(pool: &PgPool, config: &JobsConfig) -> Engine {
    super::sequencer::start(pool);
    Engine::start(
        pool.clone(),
        config,
        workhorse::jobs::registry(pool),
        Health::default(),
    )
    .await
    .expect("engine starts")
}

async fn enqueue(pool: &PgPool, args: Value) -> Uuid {
    enqueue_job(pool, NewJob::new("echo", args, 5)).await
}

async fn enqueue_job(pool: &PgPool, job: NewJob) -> Uuid {
    let mut conn = pool.acquire().await.unwrap();
    jobs::enqueue(&mut conn, &job).await.unwrap().id()
}

/// Wait until the job is in one of `states` (10 s at most) and return it.
async fn wait_for(pool: &PgPool, id: Uuid, states: &[&str]) -> jobs::Job {
    rows::wait_for(pool, id, states, Duration::from_secs(10)).await
}

fn error_texts(job: &jobs::Job) -> Vec<String> {
    (job.errors.as_array().unwrap().iter())
        .map(|e| e["error"].as_str().unwrap().to_string())
        .collect()
}

#[sqlx::test]
async fn a_job_enqueued_while_idle_is_woken_by_the_sequencer_and_its_result_stored(pool: PgPool) {
    let engine = start(&pool, &config()).await;
    tokio::time::sleep(Duration::from_millis(200)).await; // the dispatcher is asleep now
    // In a transaction, so that only the sequencer's NOTIFY can wake the worker (a committed
    // enqueue outside one also wakes this process's workers directly).
    let mut tx = pool.begin().await.unwrap();
    let job = NewJob::new("echo", json!({"message": "hello"}), 5);
    let id = jobs::enqueue(&mut tx, &job).await.unwrap().id();
    tx.commit().await.unwrap();
    let job = wait_for(&pool, id, &["succeeded"]).await;
    assert_eq!(job.attempts, 1);
    assert_eq!(job.result, Some(json!({"attempt": 1, "message": "hello"})));
    assert!(job.finished_at.is_some());
    // An idle engine stops at once, not at the end of the shutdown timeout.
    let stopping = Instant::now();
    engine.shutdown(Duration::from_secs(60)).await;
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "{:?}",
        stopping.elapsed()
    );
}

#[sqlx::test]
async fn a_committed_enqueue_wakes_this_processs_workers_without_the_sequencer(pool: PgPool) {
    // No sequencer runs and the poll is a minute away: only the process's own signal of the
    // committed enqueue can wake the sleeping worker in time.
    let engine = Engine::start(
        pool.clone(),
        &config(),
        workhorse::jobs::registry(&pool),
        Health::default(),
    )
    .await
    .expect("engine starts");
    tokio::time::sleep(Duration::from_millis(200)).await; // the dispatcher is asleep now
    let id = enqueue(&pool, json!({"message": "direct"})).await;
    let job = wait_for(&pool, id, &["succeeded"]).await;
    assert_eq!(job.attempts, 1);
    engine.shutdown(Duration::from_secs(5)).await;
}

#[sqlx::test]
async fn failed_attempts_wait_out_the_backoff_and_keep_each_error(pool: PgPool) {
    let engine = start(&pool, &config()).await;
    let id = enqueue(&pool, json!({"fail_attempts": 2})).await;
    let job = wait_for(&pool, id, &["succeeded"]).await;
    assert_eq!(job.attempts, 3);
    let errors = error_texts(&job);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("fail attempt 1"), "{errors:?}");
    // Backoff 50 ms then 100 ms: the retries cannot have run back to back.
    let at = |i: usize| {
        chrono::DateTime::parse_from_rfc3339(job.errors[i]["at"].as_str().unwrap()).unwrap()
    };
    assert!(at(1) - at(0) >= chrono::Duration::milliseconds(50));
    assert!(job.finished_at.unwrap().fixed_offset() - at(1) >= chrono::Duration::milliseconds(100));
    engine.shutdown(Duration::from_secs(5)).await;
}

#[sqlx::test]
async fn permanent_errors_panics_timeouts_and_bad_arguments_are_recorded(pool: PgPool) {
    let mut config = config();
    config.kinds.insert(
        "echo".into(),
        KindConfig {
            timeout: Some(Duration::from_millis(300)),
            ..KindConfig::default()
        },
    );
    let engine = start(&pool, &config).await;
    let permanent = enqueue(&pool, json!({"fail_permanently": true})).await;
    let panics = enqueue_job(&pool, NewJob::new("echo", json!({"panic": true}), 2)).await;
    let slow = enqueue_job(&pool, NewJob::new("echo", json!({"sleep_ms": 5000}), 1)).await;
    let bad = enqueue(&pool, json!({"sleep_ms": "soon"})).await;

    let job = wait_for(&pool, permanent, &["dead"]).await;
    assert_eq!(
        (job.attempts, job.dead_reason.as_deref()),
        (1, Some("permanent error"))
    );

    let job = wait_for(&pool, panics, &["dead"]).await;
    assert_eq!(job.attempts, 2, "a panic is an ordinary failed attempt");
    assert!(
        error_texts(&job)[0].contains("panicked"),
        "{:?}",
        job.errors
    );

    let job = wait_for(&pool, slow, &["dead"]).await;
    assert!(
        error_texts(&job)[0].contains("timed out"),
        "{:?}",
        job.errors
    );

    let job = wait_for(&pool, bad, &["dead"]).await;
    assert_eq!(job.attempts, 1);
    assert!(
        error_texts(&job)[0].contains("do not fit job kind `echo`"),
        "{:?}",
        job.errors
    );
    engine.shutdown(Duration::from_secs(5)).await;
}

#[sqlx::test]
async fn a_scheduled_job_wakes_its_worker_at_its_time_not_before(pool: PgPool) {
    let engine = start(&pool, &config()).await;
    let run_at = Utc::now() + chrono::Duration::milliseconds(1500);
    let id = enqueue_job(
        &pool,
        NewJob {
            run_at: Some(run_at),
            ..NewJob::new("echo", json!({}), 1)
        },
    )
    .await;
    let job = wait_for(&pool, id, &["succeeded"]).await;
    let started = job.started_at.unwrap();
    assert!(started >= run_at, "started {started} before {run_at}");
    // Only the timer set to the job's time can have woken the worker (the poll is 60 s).
    assert!(started - run_at < chrono::Duration::seconds(5));
    engine.shutdown(Duration::from_secs(5)).await;
}

#[sqlx::test]
async fn two_engines_on_one_database_run_each_job_once(pool: PgPool) {
    let a = start(&pool, &config()).await;
    let b = start(&pool, &config()).await;
    let args: Vec<Value> = (0..300).map(|_| json!({"record": true})).collect();
    let mut conn = pool.acquire().await.unwrap();
    jobs::enqueue_many(&mut conn, "echo", 5, &args, &[])
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'succeeded'")
            .fetch_one(&pool)
            .await
            .unwrap();
        if done == 300 {
            break;
        }
        assert!(Instant::now() < deadline, "only {done} of 300 finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (runs, jobs_run, instances): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT job_id), count(DISTINCT instance) FROM echo_runs",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((runs, jobs_run), (300, 300), "each job ran exactly once");
    assert!(instances <= 2);
    a.shutdown(Duration::from_secs(5)).await;
    b.shutdown(Duration::from_secs(5)).await;
}

#[sqlx::test]
async fn shutdown_gives_back_unfinished_jobs_without_counting_the_attempt(pool: PgPool) {
    let engine = start(&pool, &config()).await;
    let id = enqueue(&pool, json!({"sleep_ms": 60000})).await;
    wait_for(&pool, id, &["running"]).await;
    engine.shutdown(Duration::from_millis(200)).await;
    let job = wait_for(&pool, id, &["pending"]).await;
    assert_eq!(job.attempts, 0);
    assert!(job.errors.as_array().unwrap().is_empty());
}

#[sqlx::test]
async fn a_job_held_by_a_dead_process_is_rescued_and_runs_again(pool: PgPool) {
    let id = enqueue(&pool, json!({"record": true})).await;
    // A process claims it and dies: its lease runs out and nobody renews it.
    let dead_process = Uuid::now_v7();
    let claimed = jobs::claim(&pool, "echo", dead_process, 1, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);

    let engine = start(&pool, &config()).await;
    let job = wait_for(&pool, id, &["succeeded"]).await;
    assert_eq!(
        (job.attempts, job.crashes),
        (2, 1),
        "the lost attempt is counted"
    );
    assert!(error_texts(&job)[0].contains("stopped responding"));
    engine.shutdown(Duration::from_secs(5)).await;
}

#[sqlx::test]
async fn pruning_keeps_the_table_bounded_in_a_long_run(pool: PgPool) {
    // Retention of half a second: the pruner runs every quarter second.
    let config = JobsConfig {
        retention: Duration::from_millis(500),
        poll_interval: Duration::from_millis(200),
        ..config()
    };
    let engine = start(&pool, &config).await;
    let count = |pool: PgPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM jobs")
            .fetch_one(&pool)
            .await
            .unwrap()
    };

    // 3,000 jobs in batches of 200 every 300 ms; the table never holds them all.
    let mut largest = 0;
    for _ in 0..15 {
        let mut conn = pool.acquire().await.unwrap();
        jobs::enqueue_many(&mut conn, "echo", 5, &vec![json!({}); 200], &[])
            .await
            .unwrap();
        drop(conn);
        tokio::time::sleep(Duration::from_millis(300)).await;
        largest = largest.max(count(pool.clone()).await);
    }
    assert!(largest < 2_600, "the table held {largest} of 3,000 jobs");

    // Once the work is done, everything is pruned after the retention.
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(pool.clone()).await > 0 {
        assert!(Instant::now() < deadline, "finished jobs were never pruned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    engine.shutdown(Duration::from_secs(10)).await;
}
