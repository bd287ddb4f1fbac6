//! `/healthz` and `/readyz`, including readiness following PostgreSQL going away and coming
//! back without a restart of the daemon.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use workhorse::app::App;
use workhorse::domain::users::Role;
use workhorse::store::embedded::EmbeddedPostgres;

use crate::helpers::{assert_problem, run, spawn_app, test_config};

#[sqlx::test]
async fn healthz_answers_ok(pool: PgPool) {
    let app = spawn_app(pool).await;

    let resp = app.get("/healthz", None).await;

    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().contains_key("x-request-id"));
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "ok");
}

#[sqlx::test]
async fn readyz_lists_passing_checks(pool: PgPool) {
    let app = spawn_app(pool).await;

    let resp = app.get("/readyz", None).await;

    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let names: Vec<&str> = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == true)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    let mut names = names;
    names.sort_unstable();
    assert_eq!(names, ["database", "http", "migrations", "workers"]);
}

#[tokio::test]
async fn readyz_is_503_while_postgres_is_down_and_200_after_it_returns() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut pg = EmbeddedPostgres::start(&data_dir.path().join("pg"), None)
        .await
        .expect("embedded PostgreSQL starts");
    let mut config = test_config(data_dir.path());
    config.database.url = pg.url().into();
    config.database.acquire_timeout = Duration::from_secs(1);
    let app = App::build(config).await.expect("app builds");
    let pool = app.pool().clone();
    let app = run(app, pool, tempfile::tempdir().unwrap());
    let (_, token) = app.user_with_token("ada", Role::User).await;
    assert_eq!(app.get("/readyz", None).await.status(), StatusCode::OK);

    pg.stop().await.expect("PostgreSQL stops");

    let problem = assert_problem(app.get("/readyz", None).await, 503, "not_ready").await;
    let database = problem["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "database")
        .unwrap()
        .clone();
    assert_eq!(database["ok"], false, "{problem}");
    // A request that needs the database is 503, not 500, while it is away.
    assert_problem(app.get("/v1/me", Some(&token)).await, 503, "unavailable").await;

    pg.restart().await.expect("PostgreSQL starts again");

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = app.get("/readyz", None).await.status();
        if status == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {status} 20 s after PostgreSQL came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        app.get("/v1/me", Some(&token)).await.status(),
        StatusCode::OK
    );
    pg.stop().await.unwrap();
}
