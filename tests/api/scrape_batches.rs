//! `/v1/scrapes/batch` end to end on the local site through real Chromium: one scrape per
//! URL with the shared options, progress until every scrape finished, all-or-nothing checks.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use workhorse::domain::users::Role;

use crate::helpers::{TestApp, spawn_app_with};
use crate::site::Site;

async fn app(pool: PgPool) -> TestApp {
    spawn_app_with(pool, |c| {
        c.egress.allow = vec!["127.0.0.1".into()];
        c.scrape.pool_size = 2;
    })
    .await
}

#[sqlx::test]
async fn a_batch_scrapes_each_url_with_the_shared_options(pool: PgPool) {
    let site = Site::start().await;
    let app = app(pool).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;
    let (_, other) = app.user_with_token("bob", Role::User).await;
    let urls: Vec<String> = (1..=5)
        .map(|n| site.url(&format!("/docs/page-{n:02}.html")))
        .collect();

    let body = json!({ "urls": urls, "scrape_options": {"formats": ["markdown", "links"]} });
    let resp = app
        .post_json("/v1/scrapes/batch", Some(&token), &body)
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let started: Value = resp.json().await.unwrap();
    assert_eq!(
        (started["total"].as_i64(), started["status"].as_str()),
        (Some(5), Some("running"))
    );

    let mut batch = Value::Null;
    for _ in 0..600 {
        batch = app.get(&location, Some(&token)).await.json().await.unwrap();
        if batch["status"] == "finished" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(batch["status"], "finished", "{batch}");
    assert_eq!(
        (batch["succeeded"].as_i64(), batch["failed"].as_i64()),
        (Some(5), Some(0))
    );
    let scrapes = batch["scrapes"].as_array().unwrap();
    for (n, scrape) in scrapes.iter().enumerate() {
        assert_eq!(scrape["url"], urls[n], "in the order of the URLs");
        let markdown = scrape["content"]["markdown"].as_str().unwrap();
        assert!(
            markdown.contains(&format!("This is documentation page {:02}.", n + 1)),
            "{markdown}"
        );
        assert!(scrape["content"]["links"].is_array());
    }
    assert_eq!(
        app.settled_quota(&token, "scrape").await["used"],
        5,
        "a unit per URL"
    );
    let theirs = app.get(&location, Some(&other)).await;
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
}

#[sqlx::test]
async fn a_batch_with_one_bad_url_is_refused_whole_naming_it(pool: PgPool) {
    let app = app(pool.clone()).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;

    let body =
        json!({ "urls": ["http://127.0.0.1:9/a", "ftp://example.com/", "http://127.0.0.1:9/b"] });
    let resp = app
        .post_json("/v1/scrapes/batch", Some(&token), &body)
        .await;

    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = resp.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("urls[1]"),
        "{problem}"
    );
    let (scrapes,): (i64,) = sqlx::query_as("SELECT count(*) FROM scrapes")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(scrapes, 0, "nothing was requested");
    let too_many = json!({ "urls": vec!["http://127.0.0.1:9/"; 101] });
    let resp = app
        .post_json("/v1/scrapes/batch", Some(&token), &too_many)
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
