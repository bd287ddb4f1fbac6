//! Cancellation and fencing against a real PostgreSQL: a cancel stops the running attempt in
//! whichever engine runs it (by notification, or by the lease keeper when the notification is
//! missed); an attempt that no longer owns its job cannot record anything; dedup keys are
//! scoped to the owner.

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;
use workhorse::config::{JobsConfig, KindConfig};
use workhorse::engine::Engine;
use workhorse::health::Health;
use workhorse::store::jobs::{self, Enqueued, NewJob};

use super::rows::{user, wait_for};

/// Echo jobs one at a time: a second job only runs once the first attempt has stopped.
fn one_at_a_time() -> JobsConfig {
    let mut config = JobsConfig {
        poll_interval: Duration::from_secs(60),
        lease: Duration::from_millis(600),
        ..JobsConfig::default()
    };
    let echo = KindConfig {
        concurrency: Some(1),
        ..KindConfig::default()
    };
    config.kinds.insert("echo".into(), echo);
    config
}

async fn start(pool: &PgPool, config: &JobsConfig) -> Engine {
    super::sequencer::start(pool);
    let registry = workhorse::jobs::registry(pool);
    (Engine::start(pool.clone(), config, registry, Health::default()).await).expect("engine starts")
}

async fn enqueue(pool: &PgPool, job: NewJob) -> Enqueued {
    let mut conn = pool.acquire().await.unwrap();
    jobs::enqueue(&mut conn, &job).await.unwrap()
}

fn echo(sleep_ms: u64) -> NewJob {
    NewJob::new("echo", json!({ "sleep_ms": sleep_ms }), 1)
}

/// An echo job claimed by a worker whose attempt holds the job's row in a transaction that
/// passed the fence, as an attempt recording its end does. Returns the job, the worker and the
/// transaction.
async fn an_attempt_recording_its_end(pool: &PgPool) -> (Uuid, Uuid, Transaction<'_, Postgres>) {
    let id = enqueue(pool, echo(0)).await.id();
    let worker = Uuid::now_v7();
    jobs::claim(pool, "echo", worker, 1, Duration::from_secs(5))
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    assert!(jobs::fence(&mut tx, id, worker, 1).await.unwrap());
    (id, worker, tx)
}

#[sqlx::test]
async fn cancelling_a_running_job_stops_its_attempt_in_the_engine_that_runs_it(pool: PgPool) {
    // Arrange: a 60 s echo runs in an engine that runs one echo at a time; a quick one waits.
    let engine = start(&pool, &one_at_a_time()).await;
    let long = enqueue(&pool, echo(60_000)).await.id();
    wait_for(&pool, long, &["running"], Duration::from_secs(10)).await;
    let quick = enqueue(&pool, echo(0)).await.id();

    // Act: cancel the long one from outside the engine (as another daemon's API would).
    let mut conn = pool.acquire().await.unwrap();
    assert!(jobs::cancel(&mut conn, long, None).await.unwrap());

    // Assert: its slot frees at once (the notification reached the attempt), the quick job
    // runs, and the cancelled job stays cancelled with no result.
    let started = Instant::now();
    wait_for(&pool, quick, &["succeeded"], Duration::from_secs(3)).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let cancelled = wait_for(&pool, long, &["cancelled"], Duration::ZERO).await;
    assert_eq!(cancelled.result, None);
    engine.shutdown(Duration::from_secs(5)).await;
}

#[sqlx::test]
async fn an_attempt_whose_job_was_cancelled_without_a_notification_stops_at_the_next_lease(
    pool: PgPool,
) {
    // Arrange: as above, with a lease of 600 ms (renewed every 200 ms).
    let engine = start(&pool, &one_at_a_time()).await;
    let long = enqueue(&pool, echo(60_000)).await.id();
    wait_for(&pool, long, &["running"], Duration::from_secs(10)).await;
    let quick = enqueue(&pool, echo(0)).await.id();

    // Act: cancel behind the engine's back: the row changes, no notification is sent.
    sqlx::query("UPDATE jobs SET state = 'cancelled', locked_by = NULL WHERE id = $1")
        .bind(long)
        .execute(&pool)
        .await
        .unwrap();

    // Assert: the lease keeper finds the job no longer ours and stops the attempt.
    wait_for(&pool, quick, &["succeeded"], Duration::from_secs(3)).await;
    engine.shutdown(Duration::from_secs(5)).await;
}

#[sqlx::test]
async fn a_fence_refuses_an_attempt_whose_job_was_cancelled(pool: PgPool) {
    // Arrange: a claimed job, then cancelled.
    let (id, worker, tx) = an_attempt_recording_its_end(&pool).await;
    tx.rollback().await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    assert!(jobs::cancel(&mut conn, id, None).await.unwrap());

    // Act: the attempt tries to record its end.
    let mut tx = pool.begin().await.unwrap();
    let fenced = jobs::fence(&mut tx, id, worker, 1).await.unwrap();

    // Assert: refused; the job stays cancelled.
    assert!(!fenced);
    tx.rollback().await.unwrap();
    let job = jobs::find_job(&pool, id, None).await.unwrap().unwrap();
    assert_eq!(job.state, "cancelled");
}

#[sqlx::test]
async fn a_cancel_waits_for_an_attempt_recording_its_end_and_then_finds_it_finished(pool: PgPool) {
    // Arrange: an attempt holds its job's row in its finishing transaction.
    let (id, worker, mut tx) = an_attempt_recording_its_end(&pool).await;

    // Act: a cancel arrives meanwhile; then the attempt commits its success.
    let cancel = tokio::spawn({
        let pool = pool.clone();
        async move {
            let mut conn = pool.acquire().await.unwrap();
            jobs::cancel(&mut conn, id, None).await.unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!cancel.is_finished(), "the cancel must wait for the row");
    let result = json!({ "kept": true });
    assert!(
        jobs::complete(&mut *tx, id, worker, 1, Some(&result))
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();

    // Assert: the cancel changed nothing; the result stands.
    assert!(!cancel.await.unwrap());
    let job = jobs::find_job(&pool, id, None).await.unwrap().unwrap();
    assert_eq!(
        (job.state.as_str(), job.result),
        ("succeeded", Some(result))
    );
}

#[sqlx::test]
async fn two_users_with_the_same_dedup_key_each_get_their_own_job(pool: PgPool) {
    // Arrange
    let (a, b) = (user(&pool).await, user(&pool).await);
    let keyed = |owner| NewJob {
        owner_id: Some(owner),
        dedup_key: Some("report-2026-12".into()),
        ..echo(0)
    };

    // Act
    let first_a = enqueue(&pool, keyed(a)).await;
    let first_b = enqueue(&pool, keyed(b)).await;
    let again_a = enqueue(&pool, keyed(a)).await;

    // Assert
    let (Enqueued::Created(job_a), Enqueued::Created(job_b)) = (first_a, first_b) else {
        panic!("each user gets a job: {first_a:?} {first_b:?}");
    };
    assert_ne!(job_a, job_b);
    assert_eq!(again_a, Enqueued::Duplicate(job_a));
}

#[sqlx::test]
async fn jobs_without_an_owner_share_one_dedup_scope(pool: PgPool) {
    // Arrange: two daemons enqueue the same schedule tick.
    let tick = || NewJob {
        dedup_key: Some("tick:inject:2026-12-04T16:00".into()),
        ..echo(0)
    };

    // Act
    let first = enqueue(&pool, tick()).await;
    let second = enqueue(&pool, tick()).await;

    // Assert: it fires once.
    assert_eq!(second, Enqueued::Duplicate(first.id()));
    let user_job = NewJob {
        owner_id: Some(user(&pool).await),
        ..tick()
    };
    assert!(matches!(
        enqueue(&pool, user_job).await,
        Enqueued::Created(_)
    ));
}
