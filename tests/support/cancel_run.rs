//! A cancel run, shared by the scrape and summarise test binaries (each includes it with
//! `#[path]`): jobs cancelled by their owner at random moments after their call reached the
//! slow server, and the checks that hold whatever the moment: a job's quota unit is refunded
//! exactly when nothing was kept, and no cancelled call is still awaited.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use sqlx::PgPool;
use uuid::Uuid;
use workhorse::store::jobs;

use super::rows;
use super::slow_server::{Fate, SlowServer};

/// One job of the run: its row (the scrape or the summary), the key the slow server files its
/// call under, and when (if ever) it is cancelled.
pub struct Planned {
    /// The job.
    pub job_id: Uuid,
    /// The scrape or summary it works on.
    pub row_id: Uuid,
    /// What the slow server files the job's call under (`/page/{n}`, `doc-{n}`).
    pub key: String,
    /// How long after its call arrives the job is cancelled; `None`: never.
    pub cancel_after: Option<Duration>,
}

/// A cancel moment for three jobs in four: up to `max_ms` after the job's call arrives.
pub fn cancel_moment(rng: &mut impl Rng, max_ms: u64) -> Option<Duration> {
    rng.random_bool(0.75)
        .then(|| Duration::from_millis(rng.random_range(0..max_ms)))
}

/// Cancel each planned job as `owner` would, at its moment after its call reached `server`
/// (at once for a moment under 100 ms: mostly still queued), and wait for every cancel.
pub async fn cancel_at_their_moments(
    pool: &PgPool,
    server: &Arc<SlowServer>,
    owner: Uuid,
    planned: &[Planned],
) {
    let cancels: Vec<_> = (planned.iter())
        .filter_map(|p| p.cancel_after.map(|after| (p.job_id, p.key.clone(), after)))
        .map(|(id, key, after)| {
            let (pool, server) = (pool.clone(), server.clone());
            tokio::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(20);
                while after >= Duration::from_millis(100)
                    && server.fates(&key).is_empty()
                    && Instant::now() < deadline
                    && !rows::has_ended(&pool, id).await
                {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                tokio::time::sleep(after).await;
                let mut conn = pool.acquire().await.unwrap();
                jobs::cancel(&mut conn, id, Some(owner)).await.unwrap()
            })
        })
        .collect();
    for cancel in cancels {
        cancel.await.unwrap();
    }
}

/// Every planned job once finished (`within` each), in the plan's order.
pub async fn finished(pool: &PgPool, planned: &[Planned], within: Duration) -> Vec<jobs::Job> {
    let mut finished = Vec::new();
    for p in planned {
        finished.push(rows::wait_for(pool, p.job_id, rows::FINISHED, within).await);
    }
    finished
}

/// The run's invariant for one job: its unit is refunded exactly when nothing was `kept`, and
/// committed exactly when a success kept something.
pub async fn assert_settled(pool: &PgPool, job: &jobs::Job, kept: bool) {
    let charge = rows::charge_state(pool, job.id).await;
    assert_eq!(
        charge == "refunded",
        !kept,
        "job {} is {} with its unit {charge} but kept={kept}",
        job.id,
        job.state
    );
    assert_eq!(charge == "committed", kept && job.state == "succeeded");
}

/// The keys of the planned jobs that ended cancelled.
pub fn cancelled_keys<'a>(planned: &'a [Planned], finished: &[jobs::Job]) -> Vec<&'a str> {
    (planned.iter().zip(finished))
        .filter(|(_, job)| job.state == "cancelled")
        .map(|(p, _)| p.key.as_str())
        .collect()
}

/// Wait (5 s at most) until the server awaits no call of the `cancelled` keys any more, and
/// count the keys whose call the client dropped while it waited.
pub async fn dropped_calls(server: &SlowServer, cancelled: &[&str]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    while (cancelled.iter()).any(|key| server.fates(key).contains(&Fate::Waiting)) {
        assert!(
            Instant::now() < deadline,
            "a cancelled job's call went on: {:?}",
            (cancelled.iter())
                .map(|key| (key, server.fates(key)))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (cancelled.iter())
        .filter(|key| server.fates(key).contains(&Fate::Dropped))
        .count()
}
