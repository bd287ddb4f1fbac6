//! Summaries under cancellation and across users, against the real engine and PostgreSQL with
//! a slow OpenAI-compatible server on loopback: a quota unit is refunded exactly when no
//! summary was kept, a cancelled model call is dropped, and a job naming another user's
//! summary touches nothing.

use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;
use workhorse::config::Config;
use workhorse::engine::Engine;
use workhorse::health::Health;
use workhorse::jobs::{Kinds, registry_for};
use workhorse::store::jobs;
use workhorse::store::{documents, summaries};
use workhorse::summarise::providers::ProviderConfig;

use super::cancel_run::{self, Planned};
use super::rows::{self, charge_state, user};
use super::slow_server::SlowServer;

async fn start(pool: &PgPool, llm: &SlowServer) -> (Engine, Kinds) {
    let mut config = Config::default();
    config.summarise.providers = vec![ProviderConfig {
        name: "slow".into(),
        base_url: llm.api_base(),
        model: "slow-model".into(),
        api_key_env: String::new(),
        context_window: 8192,
        timeout: Duration::from_secs(20),
        max_output_tokens: 256,
    }];
    config.summarise.fallback_to_builtin = false;
    let kinds = Kinds::new(&config).unwrap();
    let registry = registry_for(pool, &kinds);
    super::sequencer::start(pool);
    let engine = Engine::start(pool.clone(), &config.jobs, registry, Health::default());
    (engine.await.unwrap(), kinds)
}

/// A document of `owner` whose text starts with `doc-{n}` (the slow server's key for it).
async fn document(pool: &PgPool, owner: Uuid, n: usize) -> Uuid {
    let text = format!("doc-{n}\n\nThe harbour reopened on Monday after {n} days of repairs.");
    (documents::insert(pool, owner, &format!("Document {n}"), &text).await)
        .unwrap()
        .id
}

/// A summary of `document` for `owner`, its job and its reserved quota unit, as one
/// transaction. Returns the summary and job ids.
pub(crate) async fn request_summary(pool: &PgPool, owner: Uuid, document: Uuid) -> (Uuid, Uuid) {
    let mut tx = pool.begin().await.unwrap();
    let summary_id = Uuid::now_v7();
    let args = json!({ "summary_id": summary_id });
    let job_id = rows::enqueue_charged(&mut tx, "summarise", args, owner, 1).await;
    let options = json!({ "style": "paragraph", "length": "short" });
    summaries::insert(&mut tx, summary_id, owner, document, job_id, &options)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (summary_id, job_id)
}

/// The job once finished (60 s at most).
async fn wait_until_finished(pool: &PgPool, id: Uuid) -> jobs::Job {
    rows::wait_for(pool, id, rows::FINISHED, Duration::from_secs(60)).await
}

/// Whether anything of the summary was kept: its text, a success, or an event.
async fn kept_result(pool: &PgPool, summary_id: Uuid) -> bool {
    let (outcome, text): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT outcome, text FROM summaries WHERE id = $1")
            .bind(summary_id)
            .fetch_one(pool)
            .await
            .unwrap();
    let events = rows::events_naming(pool, "summary_id", summary_id).await;
    text.is_some() || outcome.as_deref() == Some("succeeded") || events > 0
}

/// A summary's text and the attempts made at it.
async fn text_and_attempts(pool: &PgPool, summary_id: Uuid) -> (Option<String>, i32) {
    sqlx::query_as("SELECT text, attempts FROM summaries WHERE id = $1")
        .bind(summary_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

// Regression: cancelling a running summary kept it and also gave back the unit.
#[sqlx::test]
async fn a_summary_cancelled_at_any_point_keeps_a_result_exactly_when_it_keeps_its_unit(
    pool: PgPool,
) {
    // Arrange: a model that answers after 600 ms, and 16 summaries of one user, most
    // cancelled at a random moment after their model call started (seeded: reproducible).
    let llm = Arc::new(SlowServer::start(Duration::from_millis(600)).await);
    let (engine, _kinds) = start(&pool, &llm).await;
    let owner = user(&pool).await;
    let mut rng = StdRng::seed_from_u64(4122026);
    let mut planned = Vec::new();
    for n in 0..16 {
        let doc = document(&pool, owner, n).await;
        let (summary_id, job_id) = request_summary(&pool, owner, doc).await;
        planned.push(Planned {
            job_id,
            row_id: summary_id,
            key: format!("doc-{n}"),
            cancel_after: cancel_run::cancel_moment(&mut rng, 900),
        });
    }

    // Act: cancel each at its moment after its model call arrived (at once under 100 ms).
    cancel_run::cancel_at_their_moments(&pool, &llm, owner, &planned).await;
    let finished = cancel_run::finished(&pool, &planned, Duration::from_secs(60)).await;

    // Assert: refunded ⇔ nothing kept, committed ⇔ kept, for every job.
    for (p, job) in planned.iter().zip(&finished) {
        let kept = kept_result(&pool, p.row_id).await;
        cancel_run::assert_settled(&pool, job, kept).await;
        assert!(
            matches!(job.state.as_str(), "succeeded" | "cancelled"),
            "{job:?}"
        );
    }
    let cancelled = cancel_run::cancelled_keys(&planned, &finished);
    assert!(
        cancelled.len() >= 3,
        "the run should cancel several summaries"
    );

    // Assert: no model call of a cancelled summary is still awaited: each was dropped (or had
    // been answered), and at least one cancel caught a call in flight.
    let dropped = cancel_run::dropped_calls(&llm, &cancelled).await;
    assert!(dropped >= 1, "no cancel caught a model call in flight");
    engine.shutdown(Duration::from_secs(5)).await;
}

#[sqlx::test]
async fn a_job_naming_another_users_summary_fails_and_touches_nothing(pool: PgPool) {
    // Arrange: A's summary, made; B enqueues a summarise job naming it (as POST /v1/jobs
    // with {"kind": "summarise", "args": {"summary_id": …}} would).
    let llm = SlowServer::start(Duration::ZERO).await;
    let (engine, _kinds) = start(&pool, &llm).await;
    let (a, b) = (user(&pool).await, user(&pool).await);
    let doc = document(&pool, a, 1).await;
    let (summary_of_a, job_of_a) = request_summary(&pool, a, doc).await;
    assert_eq!(
        wait_until_finished(&pool, job_of_a).await.state,
        "succeeded"
    );
    let calls_before = llm.fates("doc-1").len();
    let before = text_and_attempts(&pool, summary_of_a).await;
    let mut conn = pool.acquire().await.unwrap();
    let args = json!({ "summary_id": summary_of_a });
    let job_of_b = rows::enqueue_charged(&mut conn, "summarise", args, b, 3).await;

    // Act
    let finished = wait_until_finished(&pool, job_of_b).await;

    // Assert: dead at once (permanent), B's unit back, A's summary as it was, no model call.
    assert_eq!((finished.state.as_str(), finished.attempts), ("dead", 1));
    assert!(finished.errors.to_string().contains("not the job owner's"));
    assert_eq!(finished.result, None);
    assert_eq!(charge_state(&pool, job_of_b).await, "refunded");
    let after = text_and_attempts(&pool, summary_of_a).await;
    assert_eq!(after, before);
    assert_eq!(llm.fates("doc-1").len(), calls_before);
    engine.shutdown(Duration::from_secs(5)).await;
}
