//! The `jobs` table's guarantees at the storage level: transactional enqueue, dedup keys,
//! exclusive claims, fenced acks, retries with a stored backoff, rescue of crashed attempts
//! with quarantine, cancel, operator retry, pruning.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;
use workhorse::store::jobs::{self, Enqueued, Failed, NewJob};

const LEASE: Duration = Duration::from_secs(30);

fn job(kind: &str) -> NewJob {
    NewJob::new(kind, json!({"n": 1}), 3)
}

async fn state_of(pool: &PgPool, id: Uuid) -> jobs::Job {
    jobs::find_job(pool, id, None)
        .await
        .unwrap()
        .expect("job exists")
}

#[sqlx::test]
async fn a_rolled_back_transaction_leaves_no_job_and_a_committed_one_does(pool: PgPool) {
    let mut tx = pool.begin().await.unwrap();
    let rolled_back = jobs::enqueue(&mut tx, &job("noop")).await.unwrap().id();
    tx.rollback().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    let committed = jobs::enqueue(&mut tx, &job("noop")).await.unwrap().id();
    tx.commit().await.unwrap();

    assert!(
        jobs::find_job(&pool, rolled_back, None)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(state_of(&pool, committed).await.state, "pending");
}

#[sqlx::test]
async fn a_dedup_key_allows_one_live_job_and_a_new_one_once_it_finished(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let keyed = NewJob {
        dedup_key: Some("tick:2026-11-22T00:00".into()),
        ..job("noop")
    };
    let first = jobs::enqueue(&mut conn, &keyed).await.unwrap();
    let second = jobs::enqueue(&mut conn, &keyed).await.unwrap();
    assert!(matches!(first, Enqueued::Created(_)));
    assert_eq!(second, Enqueued::Duplicate(first.id()));

    let worker = Uuid::new_v4();
    let claimed = jobs::claim(&pool, "noop", worker, 10, LEASE).await.unwrap();
    assert!(
        jobs::complete(&pool, claimed[0].id, worker, 1, None)
            .await
            .unwrap()
    );
    let third = jobs::enqueue(&mut conn, &keyed).await.unwrap();

    assert!(matches!(third, Enqueued::Created(id) if id != first.id()));
}

#[sqlx::test]
async fn bulk_enqueue_skips_duplicate_keys_without_failing(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let args: Vec<_> = (0..5).map(|n| json!({ "n": n })).collect();
    let keys: Vec<_> = ["a", "b", "a", "c", "b"]
        .iter()
        .map(|k| Some(k.to_string()))
        .collect();

    let created = jobs::enqueue_many(&mut conn, "noop", 3, &args, &keys)
        .await
        .unwrap();

    assert_eq!(created, 3);
}

#[sqlx::test]
async fn concurrent_claimers_get_disjoint_jobs_and_each_attempt_is_counted(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let args: Vec<_> = (0..200).map(|n| json!({ "n": n })).collect();
    jobs::enqueue_many(&mut conn, "noop", 3, &args, &[])
        .await
        .unwrap();

    let claimers = (0..4).map(|_| {
        let pool = pool.clone();
        tokio::spawn(async move {
            let worker = Uuid::new_v4();
            let mut mine = Vec::new();
            loop {
                let batch = jobs::claim(&pool, "noop", worker, 7, LEASE).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch);
            }
        })
    });
    let claimed: Vec<_> = futures::future::join_all(claimers)
        .await
        .into_iter()
        .flat_map(Result::unwrap)
        .collect();

    let distinct: HashSet<Uuid> = claimed.iter().map(|j| j.id).collect();
    assert_eq!(claimed.len(), 200);
    assert_eq!(distinct.len(), 200, "a job was claimed twice");
    assert!(claimed.iter().all(|j| j.attempt == 1));
}

#[sqlx::test]
async fn a_scheduled_job_is_not_claimed_before_its_time(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let later = NewJob {
        run_at: Some(chrono::Utc::now() + chrono::Duration::milliseconds(400)),
        ..job("noop")
    };
    let id = jobs::enqueue(&mut conn, &later).await.unwrap().id();
    let worker = Uuid::new_v4();

    let early = jobs::claim(&pool, "noop", worker, 10, LEASE).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let on_time = jobs::claim(&pool, "noop", worker, 10, LEASE).await.unwrap();

    assert!(early.is_empty());
    assert_eq!(on_time.len(), 1);
    assert_eq!(on_time[0].id, id);
}

#[sqlx::test]
async fn a_failed_attempt_is_kept_and_retried_after_its_backoff_until_attempts_run_out(
    pool: PgPool,
) {
    let mut conn = pool.acquire().await.unwrap();
    let id = jobs::enqueue(&mut conn, &job("flaky")).await.unwrap().id();
    let worker = Uuid::new_v4();

    let mut outcomes = Vec::new();
    for attempt in 1..=3 {
        // Make the retry due now so the next claim finds it.
        sqlx::query("UPDATE jobs SET run_at = now() WHERE id = $1")
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
        let claimed = jobs::claim(&pool, "flaky", worker, 1, LEASE).await.unwrap();
        assert_eq!(claimed[0].attempt, attempt);
        let delay = Duration::from_secs(10 * attempt as u64);
        let before = chrono::Utc::now();
        let outcome = jobs::fail(
            &pool,
            id,
            worker,
            attempt,
            &format!("boom {attempt}"),
            false,
            delay,
        )
        .await
        .unwrap();
        if let Failed::Retrying(at) = outcome {
            let waited = (at - before).num_milliseconds();
            assert!(
                (9_000..=11_000).contains(&(waited / attempt as i64)),
                "{waited} ms"
            );
        }
        outcomes.push(outcome);
    }

    assert!(matches!(outcomes[0], Failed::Retrying(_)));
    assert!(matches!(outcomes[1], Failed::Retrying(_)));
    assert_eq!(outcomes[2], Failed::Dead);
    let stored = state_of(&pool, id).await;
    assert_eq!(stored.state, "dead");
    assert_eq!(stored.dead_reason.as_deref(), Some("attempts used up"));
    let errors: Vec<&str> = stored
        .errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["error"].as_str().unwrap())
        .collect();
    assert_eq!(errors, ["boom 1", "boom 2", "boom 3"]);
}

#[sqlx::test]
async fn a_permanent_error_skips_the_remaining_attempts(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let id = jobs::enqueue(&mut conn, &job("strict")).await.unwrap().id();
    let worker = Uuid::new_v4();
    jobs::claim(&pool, "strict", worker, 1, LEASE)
        .await
        .unwrap();

    let outcome = jobs::fail(&pool, id, worker, 1, "400 bad input", true, LEASE)
        .await
        .unwrap();

    assert_eq!(outcome, Failed::Dead);
    assert_eq!(
        state_of(&pool, id).await.dead_reason.as_deref(),
        Some("permanent error")
    );
}

#[sqlx::test]
async fn a_stale_worker_cannot_finish_a_job_it_no_longer_holds(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let id = jobs::enqueue(&mut conn, &job("noop")).await.unwrap().id();
    let worker = Uuid::new_v4();
    jobs::claim(&pool, "noop", worker, 1, LEASE).await.unwrap();

    let wrong_attempt = jobs::complete(&pool, id, worker, 2, None).await.unwrap();
    let wrong_worker = jobs::complete(&pool, id, Uuid::new_v4(), 1, None)
        .await
        .unwrap();
    let failed = jobs::fail(&pool, id, Uuid::new_v4(), 1, "x", false, LEASE)
        .await
        .unwrap();

    assert!(!wrong_attempt && !wrong_worker);
    assert_eq!(failed, Failed::Stale);
    assert_eq!(state_of(&pool, id).await.state, "running");
}

#[sqlx::test]
async fn an_expired_lease_is_rescued_with_the_crash_counted_and_quarantined_at_the_limit(
    pool: PgPool,
) {
    let mut conn = pool.acquire().await.unwrap();
    let id = jobs::enqueue(&mut conn, &NewJob::new("crashy", json!({}), 10))
        .await
        .unwrap()
        .id();

    let mut rescues = Vec::new();
    for _ in 0..3 {
        sqlx::query("UPDATE jobs SET run_at = now() WHERE id = $1")
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
        // The worker claims with a short lease and dies (never extends it).
        let claimed = jobs::claim(
            &pool,
            "crashy",
            Uuid::new_v4(),
            1,
            Duration::from_millis(50),
        )
        .await
        .unwrap();
        assert_eq!(claimed.len(), 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
        rescues.push(jobs::rescue_expired(&pool, 3).await.unwrap());
    }

    assert_eq!(rescues[0], (vec![id], vec![]));
    assert_eq!(rescues[1], (vec![id], vec![]));
    assert_eq!(rescues[2], (vec![], vec![id]));
    let stored = state_of(&pool, id).await;
    assert_eq!(stored.state, "dead");
    assert_eq!(stored.attempts, 3, "every crashed attempt counts");
    assert_eq!(
        stored.dead_reason.as_deref(),
        Some("quarantined: killed its worker 3 times")
    );
}

#[sqlx::test]
async fn extending_leases_keeps_a_live_workers_jobs_from_being_rescued(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let id = jobs::enqueue(&mut conn, &job("slow")).await.unwrap().id();
    let worker = Uuid::new_v4();
    jobs::claim(&pool, "slow", worker, 1, Duration::from_millis(100))
        .await
        .unwrap();

    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(
            jobs::extend_leases(&pool, worker, Duration::from_millis(100))
                .await
                .unwrap(),
            vec![id]
        );
        assert_eq!(
            jobs::rescue_expired(&pool, 3).await.unwrap(),
            (vec![], vec![])
        );
    }

    assert_eq!(state_of(&pool, id).await.state, "running");
}

#[sqlx::test]
async fn cancel_stops_a_live_job_and_an_operator_retry_brings_it_back(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let id = jobs::enqueue(&mut conn, &job("noop")).await.unwrap().id();
    let worker = Uuid::new_v4();
    jobs::claim(&pool, "noop", worker, 1, LEASE).await.unwrap();

    assert!(jobs::cancel(&mut conn, id, None).await.unwrap());
    assert!(
        !jobs::complete(&pool, id, worker, 1, None).await.unwrap(),
        "result discarded"
    );
    assert!(
        !jobs::cancel(&mut conn, id, None).await.unwrap(),
        "already cancelled"
    );
    assert!(
        jobs::retry(&mut conn, id, None, &serde_json::json!({}))
            .await
            .unwrap()
    );

    let stored = state_of(&pool, id).await;
    assert_eq!((stored.state.as_str(), stored.attempts), ("pending", 0));
    assert_eq!(
        jobs::claim(&pool, "noop", worker, 1, LEASE).await.unwrap()[0].id,
        id
    );
}

#[sqlx::test]
async fn cancel_and_retry_respect_the_owner(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let id = jobs::enqueue(&mut conn, &job("noop")).await.unwrap().id();

    assert!(
        !jobs::cancel(&mut conn, id, Some(Uuid::new_v4()))
            .await
            .unwrap()
    );
    assert_eq!(state_of(&pool, id).await.state, "pending");
}

#[sqlx::test]
async fn pruning_deletes_only_finished_jobs_past_retention(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let old = jobs::enqueue(&mut conn, &job("noop")).await.unwrap().id();
    let fresh = jobs::enqueue(&mut conn, &job("noop")).await.unwrap().id();
    let live = jobs::enqueue(&mut conn, &job("other")).await.unwrap().id();
    let worker = Uuid::new_v4();
    for claimed in jobs::claim(&pool, "noop", worker, 2, LEASE).await.unwrap() {
        jobs::complete(&pool, claimed.id, worker, 1, None)
            .await
            .unwrap();
    }
    sqlx::query("UPDATE jobs SET finished_at = now() - interval '2 days' WHERE id = $1")
        .bind(old)
        .execute(&pool)
        .await
        .unwrap();

    let pruned = jobs::prune(&pool, Duration::from_secs(86_400), 1000)
        .await
        .unwrap();

    assert_eq!(pruned, 1);
    assert!(jobs::find_job(&pool, old, None).await.unwrap().is_none());
    assert!(jobs::find_job(&pool, fresh, None).await.unwrap().is_some());
    assert!(jobs::find_job(&pool, live, None).await.unwrap().is_some());
}

/// An enqueue's commit sends no NOTIFY (it would serialise every enqueue's commit on the
/// database's notification lock); the sequencer announces the kinds of the pending jobs it
/// numbers, once per kind and pass.
#[sqlx::test]
async fn a_committed_insert_wakes_listeners_through_the_sequencer_not_itself(pool: PgPool) {
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool)
        .await
        .unwrap();
    listener.listen("workhorse_jobs").await.unwrap();
    let mut conn = pool.acquire().await.unwrap();

    jobs::enqueue(&mut conn, &job("wake")).await.unwrap();
    jobs::enqueue(&mut conn, &job("wake")).await.unwrap();
    let own = tokio::time::timeout(Duration::from_millis(300), listener.recv()).await;
    assert!(own.is_err(), "the insert notified by itself: {own:?}");
    let (numbered, _) = workhorse::store::stream::sequence(&mut conn, 1_000)
        .await
        .unwrap();

    assert_eq!(numbered, 2);
    let note = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("a notification within 5 s")
        .unwrap();
    assert_eq!(note.payload(), "wake");
    let again = tokio::time::timeout(Duration::from_millis(300), listener.recv()).await;
    assert!(again.is_err(), "one notice per kind and pass: {again:?}");
}
