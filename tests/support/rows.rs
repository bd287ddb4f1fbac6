//! Rows the job-running test binaries arrange and wait for in PostgreSQL: a user, a job
//! reaching a state, a quota charge's state. Each binary includes it with `#[path]`.

// Shared by the jobs, scrape and summarise test binaries; each uses part of it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use sqlx::PgPool;
use uuid::Uuid;
use workhorse::store::jobs;

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
