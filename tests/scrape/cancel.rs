//! Cancelling scrapes while they run, against the real engine, PostgreSQL and Chromium: a
//! quota unit is refunded exactly when no result was kept, and a cancelled page load stops
//! (the slow site sees Chromium drop the connection).

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;
use workhorse::config::Config;
use workhorse::engine::Engine;
use workhorse::health::Health;
use workhorse::jobs::{Kinds, registry_for};
use workhorse::store::jobs::{self, NewJob};
use workhorse::store::scrapes::{self, NewScrape};

use super::cancel_run::{self, Planned};
use super::rows::{self, user};
use super::slow_server::SlowServer;

fn config() -> Config {
    let mut config = Config::default();
    config.egress.allow = vec!["127.0.0.1".into()];
    config.scrape.pool_size = 2;
    config
}

/// A scrape of `url` for `owner`, its job and its reserved quota unit, as one transaction.
async fn request_scrape(pool: &PgPool, owner: Uuid, url: &str) -> (Uuid, Uuid) {
    let mut tx = pool.begin().await.unwrap();
    let scrape_id = Uuid::now_v7();
    let args = json!({ "scrape_id": scrape_id });
    let job_id = rows::enqueue_charged(&mut tx, "scrape", args, owner, 1).await;
    let scrape = NewScrape {
        id: scrape_id,
        owner_id: owner,
        job_id,
        url: url.to_string(),
        wait_for: None,
        timeout_ms: 20_000,
        screenshot: false,
        formats: vec!["text".into()],
        chain_summary: false,
        notify_all: false,
        options: json!({}),
        cache_key: scrape_id.to_string(),
        crawl_id: None,
        batch_id: None,
    };
    scrapes::insert(&mut tx, &scrape).await.unwrap();
    tx.commit().await.unwrap();
    (scrape_id, job_id)
}

/// The job once finished (90 s at most: Chromium may still be starting).
async fn wait_until_finished(pool: &PgPool, id: Uuid) -> jobs::Job {
    rows::wait_for(pool, id, rows::FINISHED, Duration::from_secs(90)).await
}

/// Whether the scrape kept anything: a document, a success, or an event.
async fn kept_result(pool: &PgPool, scrape_id: Uuid) -> bool {
    let (document, outcome): (Option<Uuid>, Option<String>) =
        sqlx::query_as("SELECT document_id, outcome FROM scrapes WHERE id = $1")
            .bind(scrape_id)
            .fetch_one(pool)
            .await
            .unwrap();
    let events = rows::events_naming(pool, "scrape_id", scrape_id).await;
    document.is_some() || outcome.as_deref() == Some("succeeded") || events > 0
}

// Regression: cancelling a running scrape kept its document and also gave back the unit.
#[sqlx::test]
async fn a_scrape_cancelled_at_any_point_keeps_a_result_exactly_when_it_keeps_its_unit(
    pool: PgPool,
) {
    // Arrange: a slow site, the engine with Chromium, and 14 scrapes of one user, each page
    // answered after 0.2–1.2 s and most cancelled at a random moment (seeded: reproducible).
    let site = Arc::new(SlowServer::start(Duration::ZERO).await);
    let config = config();
    let kinds = Kinds::new(&config).unwrap();
    super::sequencer::start(&pool);
    let engine = Engine::start(
        pool.clone(),
        &config.jobs,
        registry_for(&pool, &kinds),
        Health::default(),
    )
    .await
    .unwrap();
    let owner = user(&pool).await;
    // Chromium starts with the first page: warm it up so cancels meet page loads.
    let (_, warm_up) = request_scrape(&pool, owner, &site.page(99, Duration::ZERO)).await;
    assert_eq!(wait_until_finished(&pool, warm_up).await.state, "succeeded");
    let mut rng = StdRng::seed_from_u64(20261204);
    let mut planned = Vec::new();
    for n in 0..14 {
        let page = site.page(n, Duration::from_millis(rng.random_range(300..1500)));
        let cancel_after = cancel_run::cancel_moment(&mut rng, 1800);
        let (scrape_id, job_id) = request_scrape(&pool, owner, &page).await;
        planned.push(Planned {
            job_id,
            row_id: scrape_id,
            key: format!("/page/{n}"),
            cancel_after,
        });
    }

    // Act: cancel each at its moment after its page was requested (or at once, for a moment
    // under 100 ms: mostly still queued), as its owner would.
    cancel_run::cancel_at_their_moments(&pool, &site, owner, &planned).await;
    let finished = cancel_run::finished(&pool, &planned, Duration::from_secs(90)).await;

    // Assert: refunded ⇔ nothing kept, committed ⇔ kept, for every job.
    for (p, job) in planned.iter().zip(&finished) {
        let kept = kept_result(&pool, p.row_id).await;
        cancel_run::assert_settled(&pool, job, kept).await;
        assert!(
            matches!(job.state.as_str(), "succeeded" | "cancelled"),
            "{job:?}"
        );
    }
    let (used, reserved): (i32, i32) = sqlx::query_as(
        "SELECT used, reserved FROM quota_counters WHERE user_id = $1 AND action = 'scrape'",
    )
    .bind(owner)
    .fetch_one(&pool)
    .await
    .unwrap();
    let succeeded = finished.iter().filter(|j| j.state == "succeeded").count();
    assert_eq!((used as usize, reserved), (succeeded + 1, 0)); // and the warm-up
    let cancelled = cancel_run::cancelled_keys(&planned, &finished);
    assert!(
        cancelled.len() >= 3,
        "the run should cancel several scrapes"
    );

    // Assert: no page of a cancelled scrape is still being waited for: Chromium gave up on
    // it when its attempt stopped; and that happened at least once.
    let dropped = cancel_run::dropped_calls(&site, &cancelled).await;
    assert!(
        dropped >= 1,
        "no cancel caught a page load in flight: {:?}",
        (planned.iter().zip(&finished))
            .map(|(p, j)| (&p.key, p.cancel_after, &j.state, site.fates(&p.key)))
            .collect::<Vec<_>>()
    );

    engine.shutdown(Duration::from_secs(5)).await;
    kinds.scraper.shutdown().await;
}

#[sqlx::test]
async fn a_job_naming_another_users_scrape_fails_and_touches_nothing(pool: PgPool) {
    // Arrange: A's scrape, not yet run (its job cancelled); B enqueues a scrape job naming it.
    // (Before the engine starts, so A's job never runs.)
    let site = SlowServer::start(Duration::ZERO).await;
    let (a, b) = (user(&pool).await, user(&pool).await);
    let (scrape_of_a, job_of_a) = request_scrape(&pool, a, &site.page(1, Duration::ZERO)).await;
    let mut conn = pool.acquire().await.unwrap();
    jobs::cancel(&mut conn, job_of_a, Some(a)).await.unwrap();
    let mut job = NewJob::new("scrape", json!({ "scrape_id": scrape_of_a }), 3);
    job.owner_id = Some(b);
    let job_of_b = jobs::enqueue(&mut conn, &job).await.unwrap().id();
    let config = config();
    let kinds = Kinds::new(&config).unwrap();
    let registry = registry_for(&pool, &kinds);
    super::sequencer::start(&pool);
    let engine = Engine::start(pool.clone(), &config.jobs, registry, Health::default());
    let engine = engine.await.unwrap();

    // Act
    let finished = wait_until_finished(&pool, job_of_b).await;

    // Assert: dead at once, nothing of A's scrape changed, the page never requested.
    assert_eq!((finished.state.as_str(), finished.attempts), ("dead", 1));
    assert!(finished.errors.to_string().contains("not the job owner's"));
    let (attempts, outcome): (i32, Option<String>) =
        sqlx::query_as("SELECT attempts, outcome FROM scrapes WHERE id = $1")
            .bind(scrape_of_a)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((attempts, outcome), (0, None));
    assert!(site.fates("/page/1").is_empty());
    engine.shutdown(Duration::from_secs(5)).await;
}
