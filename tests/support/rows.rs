//! Rows the job-running test binaries arrange and wait for in PostgreSQL: a user, a job with
//! its quota unit, a job reaching a state, a quota charge's state, the events naming a row.
//! Each binary includes it with `#[path]`.

// Shared by the jobs, scrape and summarise test binaries; each uses part of it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;
use workhorse::store::jobs::{self, NewJob};
use workhorse::store::quotas::{self, Charge};

/// The states a job ends in.
pub const FINISHED: &[&str] = &["succeeded", "dead", "cancelled"];

/// A new user with the `user` role.
pub async fn user(pool: &PgPool) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO users (id, name, role) VALUES (gen_random_uuid(), 'u', 'user') RETURNING id",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Enqueue `kind` with `args` for `owner` on `conn` with one unit of the `kind` quota reserved,
/// as the use case starting such a job does: in one transaction, so no worker can claim (and
/// end) the job before its unit exists. A limit of 1000: never reached here. Returns the job's
/// id.
pub async fn enqueue_charged(
    conn: &mut PgConnection,
    kind: &str,
    args: Value,
    owner: Uuid,
    max_attempts: i32,
) -> Uuid {
    let mut job = NewJob::new(kind, args, max_attempts);
    job.owner_id = Some(owner);
    job.quota_action = Some(kind.into());
    let mut tx = conn.begin().await.unwrap();
    let id = jobs::enqueue(&mut tx, &job).await.unwrap().id();
    let charge = quotas::charge(&mut tx, id, owner, kind, Some(1000), "UTC").await;
    assert!(matches!(charge, Ok(Charge::Reserved(_))), "{charge:?}");
    tx.commit().await.unwrap();
    id
}

/// Wait until the job is in one of `states` (`within` at most) and return it.
pub async fn wait_for(pool: &PgPool, id: Uuid, states: &[&str], within: Duration) -> jobs::Job {
    let deadline = Instant::now() + within;
    loop {
        let job = jobs::find_job(pool, id, None).await.unwrap().expect("job");
        if states.contains(&job.state.as_str()) {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} is still {} (wanted {states:?}): {job:?}",
            job.state
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether the job has finished.
pub async fn has_ended(pool: &PgPool, id: Uuid) -> bool {
    let job = jobs::find_job(pool, id, None).await.unwrap().expect("job");
    FINISHED.contains(&job.state.as_str())
}

/// The state of the quota unit `job_id` reserved: `reserved`, `committed` or `refunded`.
pub async fn charge_state(pool: &PgPool, job_id: Uuid) -> String {
    sqlx::query_scalar("SELECT state FROM quota_charges WHERE job_id = $1")
        .bind(job_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// How many events name `id` under `field` of their payload (e.g. `scrape_id`).
pub async fn events_naming(pool: &PgPool, field: &str, id: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE payload->>$1 = $2")
        .bind(field)
        .bind(id.to_string())
        .fetch_one(pool)
        .await
        .unwrap()
}
