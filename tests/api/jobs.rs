//! `/v1/jobs`: enqueue with dedup keys, list with filters and cursors, get, cancel and retry;
//! who sees which job.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;
use workhorse::domain::users::Role;
use workhorse::store;
use workhorse::store::jobs::NewJob;

use crate::helpers::{TestApp, assert_problem, spawn_app, spawn_app_without_workers};

/// Enqueue an echo job owned by `owner` straight in the database.
async fn insert_job(pool: &PgPool, owner: Uuid, dedup_key: Option<&str>) -> Uuid {
    let mut job = NewJob::new("echo", json!({}), 5);
    job.owner_id = Some(owner);
    job.dedup_key = dedup_key.map(str::to_string);
    let mut conn = pool.acquire().await.unwrap();
    store::jobs::enqueue(&mut conn, &job).await.unwrap().id()
}

/// Poll a job until it is in `state`.
async fn wait_for_state(app: &TestApp, token: &str, id: &str, state: &str) -> Value {
    let path = format!("/v1/jobs/{id}");
    for _ in 0..200 {
        let job: Value = app.get(&path, Some(token)).await.json().await.unwrap();
        if job["state"] == state {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} never became {state}");
}

/// Every id of a listing, following `next_cursor` with pages of `limit`.
async fn all_pages(app: &TestApp, token: &str, query: &str, limit: u32) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/jobs?limit={limit}{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let resp = app.get(&path, Some(token)).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let page: Value = resp.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit as usize);
        ids.extend(items.iter().map(|j| j["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return ids,
        }
    }
}

#[sqlx::test]
async fn enqueueing_a_job_returns_202_with_its_location_and_the_job(pool: PgPool) {
    let app = spawn_app_without_workers(pool).await;
    let (admin_id, admin) = app.user_with_token("root", Role::Admin).await;

    let resp = app
        .post_json(
            "/v1/jobs",
            Some(&admin),
            &json!({"kind": "echo", "args": {"message": "hi"}, "priority": 3}),
        )
        .await;

    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let job: Value = resp.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/jobs/{}", job["id"].as_str().unwrap())
    );
    assert_eq!(job["kind"], "echo");
    assert_eq!(job["args"], json!({"message": "hi"}));
    assert_eq!(job["state"], "pending");
    assert_eq!(job["priority"], 3);
    assert_eq!(job["attempts"], 0);
    assert_eq!(job["max_attempts"], 5, "the [jobs] default");
    assert_eq!(job["crashes"], 0);
    assert_eq!(job["owner_id"], admin_id.to_string());
    assert_eq!(job["errors"], json!([]));
    assert!(job.get("dedup_key").is_none() && job.get("result").is_none());
    let fetched: Value = app.get(&location, Some(&admin)).await.json().await.unwrap();
    assert_eq!(fetched, job);
}

#[sqlx::test]
async fn an_enqueued_echo_job_runs_and_shows_its_result_and_timings(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin_token().await;

    let job = app
        .enqueue(&admin, json!({"kind": "echo", "args": {"message": "hi"}}))
        .await;
    let done = wait_for_state(&app, &admin, job["id"].as_str().unwrap(), "succeeded").await;

    assert_eq!(done["attempts"], 1);
    assert_eq!(done["result"], json!({"attempt": 1, "message": "hi"}));
    assert!(done["started_at"].is_string() && done["finished_at"].is_string());
}

#[sqlx::test]
async fn a_failed_job_shows_its_errors_and_runs_again_after_a_retry(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin_token().await;
    let job = app
        .enqueue(
            &admin,
            json!({"kind": "echo", "args": {"fail_permanently": true}}),
        )
        .await;
    let id = job["id"].as_str().unwrap();

    let dead = wait_for_state(&app, &admin, id, "dead").await;
    let resp = app
        .post(&format!("/v1/jobs/{id}/retry"), Some(&admin))
        .await;

    assert_eq!(dead["dead_reason"], "permanent error");
    let errors = dead["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["attempt"], 1);
    assert_eq!(errors[0]["permanent"], true);
    assert!(errors[0]["at"].is_string());
    assert!(errors[0]["error"].as_str().unwrap().contains("permanently"));
    assert_eq!(resp.status(), StatusCode::OK);
    let retried: Value = resp.json().await.unwrap();
    assert!(["pending", "running", "dead"].contains(&retried["state"].as_str().unwrap()));
    let dead_again = wait_for_state(&app, &admin, id, "dead").await;
    assert_eq!(dead_again["errors"].as_array().unwrap().len(), 2);
}

#[sqlx::test]
async fn an_unknown_kind_is_a_422_naming_the_known_kinds(pool: PgPool) {
    let app = spawn_app_without_workers(pool).await;
    let admin = app.admin_token().await;

    let resp = app
        .post_json("/v1/jobs", Some(&admin), &json!({"kind": "nope"}))
        .await;

    let problem = assert_problem(resp, 422, "validation_failed").await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("nope") && detail.contains("echo"),
        "{detail}"
    );
}

#[sqlx::test]
async fn values_that_do_not_fit_are_a_422_saying_why(pool: PgPool) {
    let app = spawn_app_without_workers(pool).await;
    let admin = app.admin_token().await;

    let cases = [
        (
            json!({"kind": "echo", "args": {"sleep_ms": "x"}}),
            "`/args/sleep_ms` must be an integer",
        ),
        (json!({"kind": "echo", "args": {"bogus": 1}}), "bogus"),
        (
            json!({"kind": "echo", "args": {"sleep_ms": 3_600_000}}),
            "at most",
        ),
        (json!({"kind": "echo", "args": [1]}), "object"),
        (
            json!({"kind": "echo", "args": {"message": "a\u{0}b"}}),
            "U+0000",
        ),
        (
            json!({"kind": "echo", "args": {"message": {"k\u{0}": 1}}}),
            "U+0000",
        ),
        (json!({"kind": "echo", "dedup_key": "a\u{0}"}), "dedup_key"),
        (json!({"kind": "echo", "max_attempts": 0}), "max_attempts"),
        (json!({"kind": "echo", "max_attempts": 101}), "max_attempts"),
        (json!({"kind": "echo", "dedup_key": ""}), "dedup_key"),
        (
            json!({"kind": "echo", "dedup_key": "k".repeat(201)}),
            "dedup_key",
        ),
    ];
    for (body, says) in cases {
        let resp = app.post_json("/v1/jobs", Some(&admin), &body).await;
        let problem = assert_problem(resp, 422, "validation_failed").await;
        assert!(
            problem["detail"].as_str().unwrap().contains(says),
            "{problem}"
        );
    }
    assert_eq!(app.job_count().await, 0);
}

#[sqlx::test]
async fn bodies_that_do_not_fit_the_schema_are_a_422_naming_the_field(pool: PgPool) {
    let app = spawn_app_without_workers(pool).await;
    let admin = app.admin_token().await;

    for (body, pointer) in [
        (json!({"kind": "echo", "priority": 40000}), "/priority"),
        (json!({"kind": "echo", "run_at": "tomorrow"}), "/run_at"),
        (json!({"args": {}}), "/kind"),
        (json!({"kind": "scrape"}), "/args"),
        (
            json!({"kind": "inject", "args": {"rows": 0, "client_id": "c"}}),
            "/args/rows",
        ),
        (
            json!({"kind": "echo", "args": {"scrape_id": "x"}}),
            "/args/scrape_id",
        ),
    ] {
        let resp = app.post_json("/v1/jobs", Some(&admin), &body).await;
        let problem = assert_problem(resp, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["pointer"], pointer, "{problem}");
    }
}

#[sqlx::test]
async fn an_unknown_field_is_a_422_naming_it(pool: PgPool) {
    let app = spawn_app_without_workers(pool).await;
    let admin = app.admin_token().await;
    let body = json!({"kind": "echo", "surprise": true});

    let resp = app.post_json("/v1/jobs", Some(&admin), &body).await;

    let problem = assert_problem(resp, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["pointer"], "/surprise", "{problem}");
}

#[sqlx::test]
async fn only_admins_may_enqueue_jobs(pool: PgPool) {
    let app = spawn_app_without_workers(pool).await;
    let (_, user) = app.user_with_token("ada", Role::User).await;
    let body = json!({"kind": "echo"});

    let as_user = app.post_json("/v1/jobs", Some(&user), &body).await;
    let anonymous = app.post_json("/v1/jobs", None, &body).await;

    assert_problem(as_user, 403, "forbidden").await;
    assert_problem(anonymous, 401, "unauthorized").await;
}

#[sqlx::test]
async fn a_dedup_key_returns_the_live_job_with_200_until_it_finishes(pool: PgPool) {
    let app = spawn_app_without_workers(pool).await;
    let admin = app.admin_token().await;
    let body = json!({"kind": "echo", "dedup_key": "daily-report"});
    let first = app.enqueue(&admin, body.clone()).await;
    let id = first["id"].as_str().unwrap();

    let resp = app.post_json("/v1/jobs", Some(&admin), &body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["location"],
        format!("/v1/jobs/{id}").as_str()
    );
    let again: Value = resp.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["dedup_key"], "daily-report");

    let cancel = app
        .post(&format!("/v1/jobs/{id}/cancel"), Some(&admin))
        .await;
    assert_eq!(cancel.status(), StatusCode::OK);
    let after = app.enqueue(&admin, body).await;
    assert_ne!(after["id"], first["id"]);
}

#[sqlx::test]
async fn a_job_with_a_future_run_at_shows_as_scheduled(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin_token().await;
    let run_at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();

    let job = app
        .enqueue(&admin, json!({"kind": "echo", "run_at": run_at}))
        .await;

    assert_eq!(job["state"], "scheduled");
    let page: Value = app
        .get("/v1/jobs?state=scheduled", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["id"], job["id"]);
    assert_eq!(page["items"][0]["state"], "scheduled");
}

#[sqlx::test]
async fn listing_filters_by_kind_and_state_and_pages_newest_first_without_duplicates(pool: PgPool) {
    let app = spawn_app_without_workers(pool).await;
    let admin = app.admin_token().await;
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let mut created = Vec::new();
    for i in 0..7 {
        let body = match i % 3 {
            0 => json!({"kind": "echo", "run_at": later}),
            _ => json!({"kind": "echo"}),
        };
        created.push(
            app.enqueue(&admin, body).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let cancelled = &created[1];
    app.post(&format!("/v1/jobs/{cancelled}/cancel"), Some(&admin))
        .await;

    let all = all_pages(&app, &admin, "", 3).await;
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();
    assert_eq!(all, newest_first);
    assert_eq!(all_pages(&app, &admin, "&kind=echo", 2).await.len(), 7);
    assert_eq!(
        all_pages(&app, &admin, "&state=scheduled", 2).await.len(),
        3
    );
    assert_eq!(all_pages(&app, &admin, "&state=pending", 1).await.len(), 3);
    assert_eq!(
        all_pages(&app, &admin, "&state=cancelled&kind=echo", 5).await,
        vec![cancelled.clone()]
    );
    assert!(all_pages(&app, &admin, "&state=dead", 5).await.is_empty());
}

#[sqlx::test]
async fn bad_list_parameters_are_problems(pool: PgPool) {
    let app = spawn_app_without_workers(pool).await;
    let admin = app.admin_token().await;

    let unknown_state = app.get("/v1/jobs?state=exploded", Some(&admin)).await;
    let unknown_kind = app.get("/v1/jobs?kind=nope", Some(&admin)).await;
    let bad_cursor = app.get("/v1/jobs?cursor=garbage", Some(&admin)).await;
    let bad_limit = app.get("/v1/jobs?limit=0", Some(&admin)).await;
    let anonymous = app.get("/v1/jobs", None).await;

    let problem = assert_problem(unknown_state, 422, "validation_failed").await;
    assert!(problem["detail"].as_str().unwrap().contains("scheduled"));
    assert_problem(unknown_kind, 422, "validation_failed").await;
    assert_problem(bad_cursor, 400, "invalid_request").await;
    assert_problem(bad_limit, 400, "invalid_request").await;
    assert_problem(anonymous, 401, "unauthorized").await;
}

#[sqlx::test]
async fn users_see_only_their_own_jobs_and_admins_see_all(pool: PgPool) {
    let app = spawn_app_without_workers(pool).await;
    let admin = app.admin_token().await;
    let (ada_id, ada) = app.user_with_token("ada", Role::User).await;
    let (bob_id, bob) = app.user_with_token("bob", Role::User).await;
    let adas = insert_job(&app.pool, ada_id, None).await;
    let bobs = insert_job(&app.pool, bob_id, None).await;

    let ada_sees = all_pages(&app, &ada, "", 10).await;
    let admin_sees = all_pages(&app, &admin, "", 10).await;
    let own: Value = app
        .get(&format!("/v1/jobs/{adas}"), Some(&ada))
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(ada_sees, vec![adas.to_string()]);
    assert_eq!(admin_sees, vec![bobs.to_string(), adas.to_string()]);
    assert_eq!(own["owner_id"], ada_id.to_string());
    let get = app.get(&format!("/v1/jobs/{adas}"), Some(&bob)).await;
    assert_problem(get, 404, "not_found").await;
    for action in ["cancel", "retry"] {
        let resp = app
            .post(&format!("/v1/jobs/{adas}/{action}"), Some(&bob))
            .await;
        assert_problem(resp, 404, "not_found").await;
    }
    let still: Value = app
        .get(&format!("/v1/jobs/{adas}"), Some(&ada))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(still["state"], "pending");
}

#[sqlx::test]
async fn cancel_then_retry_and_the_conflicts_on_the_way(pool: PgPool) {
    let app = spawn_app_without_workers(pool).await;
    let admin = app.admin_token().await;
    let (ada_id, ada) = app.user_with_token("ada", Role::User).await;
    let id = insert_job(&app.pool, ada_id, Some("nightly")).await;
    let (app_ref, ada_ref) = (&app, ada.as_str());
    let post = |action: &str| {
        let path = format!("/v1/jobs/{id}/{action}");
        async move { app_ref.post(&path, Some(ada_ref)).await }
    };

    let early_retry = post("retry").await;
    assert_problem(early_retry, 409, "conflict").await;

    let cancel = post("cancel").await;
    assert_eq!(cancel.status(), StatusCode::OK);
    let cancelled: Value = cancel.json().await.unwrap();
    assert_eq!(cancelled["state"], "cancelled");
    assert!(cancelled["finished_at"].is_string());
    assert_problem(post("cancel").await, 409, "conflict").await;

    // Another live job took the dedup key meanwhile: retrying would make two.
    let other = insert_job(&app.pool, ada_id, Some("nightly")).await;
    assert_problem(post("retry").await, 409, "conflict").await;
    app.post(&format!("/v1/jobs/{other}/cancel"), Some(&admin))
        .await;

    let retry = post("retry").await;
    assert_eq!(retry.status(), StatusCode::OK);
    let retried: Value = retry.json().await.unwrap();
    assert_eq!(retried["state"], "pending");
    assert_eq!(retried["attempts"], 0);
    assert!(retried.get("finished_at").is_none());
    assert_problem(post("retry").await, 409, "conflict").await;

    let missing = app
        .post(&format!("/v1/jobs/{}/cancel", Uuid::now_v7()), Some(&admin))
        .await;
    assert_problem(missing, 404, "not_found").await;
}

#[sqlx::test]
async fn the_spec_documents_the_jobs_api_and_idempotency_headers(pool: PgPool) {
    let app = spawn_app_without_workers(pool).await;

    let spec: Value = app.get("/openapi.json", None).await.json().await.unwrap();

    let post = &spec["paths"]["/v1/jobs"]["post"];
    let params = post["parameters"].as_array().unwrap();
    assert!(
        params
            .iter()
            .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
        "{post}"
    );
    for status in ["200", "202"] {
        let headers = &post["responses"][status]["headers"];
        assert!(headers["Idempotent-Replayed"].is_object(), "{post}");
        assert!(headers["LOCATION"].is_object(), "{post}");
    }
    for status in ["400", "401", "403", "422"] {
        assert!(post["responses"][status].is_object(), "{status}: {post}");
    }
    for path in [
        "/v1/jobs/{id}",
        "/v1/jobs/{id}/cancel",
        "/v1/jobs/{id}/retry",
    ] {
        assert!(spec["paths"][path].is_object(), "{path}");
    }
    let states = &spec["components"]["schemas"]["JobStateOut"]["enum"];
    assert_eq!(states.as_array().unwrap().len(), 7, "{states}");
}
