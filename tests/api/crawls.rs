//! `/v1/crawls` and `/v1/map` end to end on the local site (tests/fixtures/site) through real
//! Chromium: a crawl with a limit visits exactly that many pages, each once, none that
//! robots.txt disallows, each a scrape charged to the owner; path patterns; cancel; map lists
//! the sitemap's URLs and the start page's links.

use std::collections::HashSet;
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

async fn start(app: &TestApp, token: &str, body: Value) -> Value {
    let resp = app.post_json("/v1/crawls", Some(token), &body).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let crawl: Value = resp.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/crawls/{}", crawl["id"].as_str().unwrap())
    );
    crawl
}

/// The crawl once it ended (120 s at most), with all its pages.
async fn finished(app: &TestApp, token: &str, id: &str) -> Value {
    for _ in 0..1200 {
        let crawl: Value = (app
            .get(&format!("/v1/crawls/{id}?limit=1000"), Some(token))
            .await)
            .json()
            .await
            .unwrap();
        if crawl["status"] != "running" {
            return crawl;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("crawl {id} never ended");
}

fn pages_in<'a>(crawl: &'a Value, state: &str) -> Vec<&'a Value> {
    (crawl["pages"].as_array().unwrap().iter())
        .filter(|p| p["state"] == state)
        .collect()
}

#[sqlx::test]
async fn a_crawl_visits_exactly_its_limit_each_page_once_and_nothing_disallowed(pool: PgPool) {
    let site = Site::start().await;
    let app = app(pool.clone()).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;

    let body = json!({ "url": site.url("/index.html"), "limit": 10 });
    let crawl = start(&app, &token, body).await;
    let id = crawl["id"].as_str().unwrap();
    let crawl = finished(&app, &token, id).await;

    assert_eq!(crawl["status"], "succeeded", "{crawl}");
    assert_eq!(
        (crawl["pages_done"].as_i64(), crawl["pages_failed"].as_i64()),
        (Some(10), Some(0))
    );
    let done = pages_in(&crawl, "done");
    assert_eq!(done.len(), 10, "{crawl}");
    let urls: HashSet<&str> = done.iter().map(|p| p["url"].as_str().unwrap()).collect();
    assert_eq!(urls.len(), 10, "a page visited twice: {urls:?}");
    assert!(
        urls.iter().all(|u| !u.contains("/private/")),
        "robots.txt ignored: {urls:?}"
    );
    assert!(urls.contains(site.url("/index.html").as_str()));
    // Each page is one scrape of the owner, and the site saw each page once.
    let scrapes: Vec<(String, String)> =
        sqlx::query_as("SELECT url, outcome FROM scrapes WHERE crawl_id = $1::uuid")
            .bind(id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(scrapes.len(), 10);
    assert!(scrapes.iter().all(|(_, outcome)| outcome == "succeeded"));
    let hits = site.hits();
    for url in &urls {
        let path = url.trim_start_matches(&site.url(""));
        assert_eq!(
            hits.get(path),
            Some(&1),
            "{path} was loaded {:?} times",
            hits.get(path)
        );
    }
    assert_eq!(
        hits.keys().filter(|p| p.starts_with("/private/")).count(),
        0
    );
    assert_eq!(
        app.settled_quota(&token, "scrape").await["used"],
        10,
        "a unit per page"
    );
    let scrape = done[0]["scrape_id"].as_str().unwrap();
    let s = app
        .get(&format!("/v1/scrapes/{scrape}"), Some(&token))
        .await;
    assert_eq!(s.status(), StatusCode::OK);
}

#[sqlx::test]
async fn path_patterns_choose_the_pages_and_another_user_sees_no_crawl(pool: PgPool) {
    let site = Site::start().await;
    let app = app(pool).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;
    let (_, other) = app.user_with_token("bob", Role::User).await;

    let body = json!({
        "url": site.url("/index.html"), "limit": 4, "delay_ms": 0, "max_concurrency": 2,
        "include_paths": ["^/docs/page-0[1-3]\\.html$"], "ignore_sitemap": true,
        "scrape_options": {"formats": ["text"]},
    });
    let crawl = start(&app, &token, body).await;
    let id = crawl["id"].as_str().unwrap();
    let crawl = finished(&app, &token, id).await;

    let mut urls: Vec<String> = pages_in(&crawl, "done")
        .iter()
        .map(|p| {
            p["url"]
                .as_str()
                .unwrap()
                .trim_start_matches(&site.url(""))
                .to_string()
        })
        .collect();
    urls.sort();
    assert_eq!(
        urls,
        [
            "/docs/page-01.html",
            "/docs/page-02.html",
            "/docs/page-03.html",
            "/index.html"
        ]
    );
    let theirs = app.get(&format!("/v1/crawls/{id}"), Some(&other)).await;
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
    let cancel = app
        .post(&format!("/v1/crawls/{id}/cancel"), Some(&token))
        .await;
    assert_eq!(
        cancel.status(),
        StatusCode::CONFLICT,
        "an ended crawl cannot be cancelled"
    );
}

#[sqlx::test]
async fn a_cancelled_crawl_starts_no_more_pages(pool: PgPool) {
    let site = Site::start().await;
    let app = app(pool).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;

    let body = json!({ "url": site.url("/index.html"), "limit": 30, "delay_ms": 3000 });
    let crawl = start(&app, &token, body).await;
    let id = crawl["id"].as_str().unwrap();
    for _ in 0..300 {
        let c: Value = app
            .get(&format!("/v1/crawls/{id}"), Some(&token))
            .await
            .json()
            .await
            .unwrap();
        if c["pages_done"].as_i64() >= Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resp = app
        .post(&format!("/v1/crawls/{id}/cancel"), Some(&token))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let cancelled: Value = resp.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    let loaded = site.total_hits();
    tokio::time::sleep(Duration::from_secs(4)).await;

    let crawl = finished(&app, &token, id).await;
    assert_eq!(crawl["status"], "cancelled");
    assert!(pages_in(&crawl, "queued").is_empty(), "{crawl}");
    let pages_loaded = site
        .hits()
        .iter()
        .filter(|(p, _)| p.ends_with(".html"))
        .count();
    assert!(pages_loaded <= 2, "pages kept loading: {:?}", site.hits());
    assert!(
        site.total_hits() <= loaded + 2,
        "the site kept being crawled"
    );
}

#[sqlx::test]
async fn a_page_whose_scrape_is_cancelled_counts_as_failed_and_the_crawl_goes_on(pool: PgPool) {
    let site = Site::start().await;
    let app = app(pool).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;

    let body =
        json!({ "url": site.url("/slow"), "limit": 2, "ignore_sitemap": true, "delay_ms": 0 });
    let crawl = start(&app, &token, body).await;
    let id = crawl["id"].as_str().unwrap();
    let mut scrape = Value::Null;
    for _ in 0..300 {
        let c: Value = app
            .get(&format!("/v1/crawls/{id}"), Some(&token))
            .await
            .json()
            .await
            .unwrap();
        if let Some(page) = pages_in(&c, "scraping").first() {
            scrape = page["scrape_id"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let scrape: Value = (app
        .get(
            &format!("/v1/scrapes/{}", scrape.as_str().unwrap()),
            Some(&token),
        )
        .await)
        .json()
        .await
        .unwrap();
    let job = scrape["job_id"].as_str().unwrap();
    let resp = app
        .post(&format!("/v1/jobs/{job}/cancel"), Some(&token))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);

    let crawl = finished(&app, &token, id).await;
    assert_eq!(
        crawl["status"], "succeeded",
        "the crawl does not hang: {crawl}"
    );
    assert_eq!(crawl["pages_failed"], 1, "{crawl}");
    assert_eq!(pages_in(&crawl, "failed").len(), 1);
}

#[sqlx::test]
async fn map_lists_the_sitemaps_urls_and_the_start_pages_links(pool: PgPool) {
    let site = Site::start().await;
    let app = app(pool).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;

    let resp = app
        .post_json(
            "/v1/map",
            Some(&token),
            &json!({ "url": site.url("/index.html") }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let map: Value = resp.json().await.unwrap();

    let links = map["links"].as_array().unwrap();
    let find = |path: &str| links.iter().find(|l| l["url"] == site.url(path));
    for n in 1..=30 {
        assert!(
            find(&format!("/docs/page-{n:02}.html")).is_some(),
            "page {n} missing"
        );
    }
    assert_eq!(
        find("/blog/post-1.html").unwrap()["source"],
        "sitemap",
        "{map}"
    );
    assert!(find("/blog/post-2.html").is_some());
    assert_eq!(find("/about.html").unwrap()["source"], "page");
    assert!(
        links
            .iter()
            .all(|l| !l["url"].as_str().unwrap().contains("/private/"))
    );
    let unique: HashSet<&str> = links.iter().map(|l| l["url"].as_str().unwrap()).collect();
    assert_eq!(unique.len(), links.len(), "a URL listed twice");
    assert!(
        !site.hits().keys().any(|p| p.starts_with("/docs/page")),
        "pages were loaded"
    );

    let searched = json!({ "url": site.url("/index.html"), "search": "POST-2" });
    let map: Value = app
        .post_json("/v1/map", Some(&token), &searched)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(map["links"].as_array().unwrap().len(), 1, "{map}");
}

#[sqlx::test]
async fn crawl_options_that_cannot_work_are_refused_naming_the_field(pool: PgPool) {
    let app = app(pool).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;
    let url = "http://127.0.0.1:9/";
    for (body, named) in [
        (
            json!({"url": url, "include_paths": ["(unclosed"]}),
            "include_paths",
        ),
        (json!({"url": url, "limit": 0}), "limit"),
        (json!({"url": "http://169.254.169.254/"}), "url"),
        (
            json!({"url": url, "scrape_options": {"formats": ["pdf"]}}),
            "formats",
        ),
        (
            json!({"url": url, "scrape_options": {"timeout_ms": 500}}),
            "timeout_ms",
        ),
    ] {
        let resp = app.post_json("/v1/crawls", Some(&token), &body).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let problem: Value = resp.json().await.unwrap();
        assert!(
            problem.to_string().contains(named),
            "{named} not named: {problem}"
        );
    }
}
