//! `/v1/scrapes` end to end: real Chromium through chromedriver, pages from a local server,
//! the egress policy before and after redirects, quota charges, the bounded wait, screenshots,
//! and chromedriver killed while scrapes run.

use std::time::Duration;

use poem::web::Redirect;
use poem::{Response, Route, handler};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use workhorse::domain::users::Role;

use crate::helpers::{Loopback, TestApp, assert_problem, spawn_app_with};

fn html(body: &'static str) -> Response {
    Response::builder()
        .content_type("text/html; charset=utf-8")
        .body(body)
}

#[handler]
fn article() -> Response {
    html(
        "<html><head><title>An article</title></head><body><h1>Heading</h1>\
         <p>First paragraph with <a href=\"/x\">a link</a>.</p><div id=\"slot\"></div>\
         <script>setTimeout(() => { const d = document.createElement('div'); d.id = 'late'; \
         d.textContent = 'late content from JavaScript'; \
         document.getElementById('slot').appendChild(d); }, 300);</script></body></html>",
    )
}

#[handler]
async fn slow() -> Response {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    html("<html><head><title>Slow</title></head><body><p>finally</p></body></html>")
}

#[handler]
fn to_article() -> Redirect {
    Redirect::see_other("/article")
}

async fn site() -> Loopback {
    Loopback::start_on(
        "127.0.0.1",
        Route::new()
            .at("/article", article)
            .at("/slow", slow)
            .at("/to-article", to_article),
    )
    .await
}

/// The app, with Chromium allowed to reach `allow`.
async fn app(pool: PgPool, allow: &[&str]) -> TestApp {
    let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
    spawn_app_with(pool, move |c| {
        c.egress.allow = allow;
        c.scrape.pool_size = 2;
        c.jobs.backoff_base = Duration::from_millis(200);
        c.jobs.backoff_jitter = 0.0;
    })
    .await
}

async fn scrape(app: &TestApp, token: &str, body: Value, wait: &str) -> (StatusCode, Value) {
    let path = format!("/v1/scrapes{wait}");
    let resp = app.post_json(&path, Some(token), &body).await;
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

async fn wait_until_finished(app: &TestApp, token: &str, id: &str) -> Value {
    for _ in 0..600 {
        let s: Value = (app.get(&format!("/v1/scrapes/{id}"), Some(token)).await)
            .json()
            .await
            .unwrap();
        if matches!(
            s["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        ) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("scrape {id} never finished");
}

/// The caller's `scrape` quota (used, reserved) once no unit is held any more (5 s at most).
async fn scrape_quota_settled(app: &TestApp, token: &str) -> (Value, Value) {
    let mut quota = Value::Null;
    for _ in 0..100 {
        let me: Value = app.get("/v1/me", Some(token)).await.json().await.unwrap();
        quota = (me["quotas"].as_array().unwrap().iter())
            .find(|q| q["action"] == "scrape")
            .unwrap()
            .clone();
        if quota["reserved"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (quota["used"].clone(), quota["reserved"].clone())
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&png[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

#[sqlx::test]
async fn a_scrape_renders_javascript_and_keeps_text_markdown_and_a_screenshot(pool: PgPool) {
    let site = site().await;
    let app = app(pool, &["127.0.0.1"]).await;
    let (user_id, token) = app.user_with_token("ann", Role::User).await;

    // A channel subscribed to nothing: `notify: true` reaches it anyway.
    let hooks = Loopback::start_on(
        "127.0.0.1",
        Route::new().at("/hook", poem::post(poem::endpoint::make_sync(|_| "ok"))),
    )
    .await;
    let channel = json!({ "kind": "webhook", "name": "hook", "url": hooks.url("/hook") });
    let resp = app.post_json("/v1/channels", Some(&token), &channel).await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    let body = json!({
        "url": site.url("/to-article"),
        "wait_for": "#late",
        "screenshot": true,
        "formats": ["text", "html", "markdown"],
        "summarise": true,
        "notify": true,
    });
    let (status, s) = scrape(&app, &token, body, "?wait=25s").await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["status"], "succeeded", "{s}");
    assert_eq!(
        s["final_url"],
        site.url("/article"),
        "redirects are followed"
    );
    assert_eq!(s["http_status"], 200);
    assert_eq!(s["title"], "An article");
    let text = s["content"]["text"].as_str().unwrap();
    assert!(text.contains("late content from JavaScript"), "{text}");
    let markdown = s["content"]["markdown"].as_str().unwrap();
    assert!(markdown.contains("# Heading"), "{markdown}");
    let link = format!("[a link]({})", site.url("/x"));
    assert!(markdown.contains(&link), "links are absolute: {markdown}");
    assert!(
        s["content"]["html"]
            .as_str()
            .unwrap()
            .contains("<h1>Heading</h1>")
    );
    assert!(s["timings"]["navigate_ms"].is_number(), "{s}");
    assert_eq!(s["attempts"], 1);

    // The screenshot is a PNG of the window.
    let shot = app
        .get(s["screenshot_url"].as_str().unwrap(), Some(&token))
        .await;
    assert_eq!(shot.status(), StatusCode::OK);
    assert_eq!(shot.headers()["content-type"], "image/png");
    let png = shot.bytes().await.unwrap();
    assert_eq!(png_size(&png), (1280, 800));

    // The page became a document, and the unit of `scrape` is used.
    let document: (String, String, String) = sqlx::query_as(
        "SELECT title, text, source FROM documents WHERE id = $1::uuid AND owner_id = $2",
    )
    .bind(s["document_id"].as_str().unwrap())
    .bind(user_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(document.0, "An article");
    assert!(document.1.contains("First paragraph"));
    assert_eq!(document.2, "scrape");
    // The unit is committed with the job's final state, which the engine writes just after
    // the scrape's own result.
    assert_eq!(
        scrape_quota_settled(&app, &token).await,
        (json!(1), json!(0))
    );

    // The chained summary of the page's document, and the notification.
    let summary_path = format!("/v1/summaries/{}", s["summary_id"].as_str().unwrap());
    let mut summary = Value::Null;
    for _ in 0..200 {
        summary = app
            .get(&summary_path, Some(&token))
            .await
            .json()
            .await
            .unwrap();
        if summary["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(summary["status"], "succeeded", "{summary}");
    assert_eq!(summary["document_id"], s["document_id"]);
    assert_eq!(summary["builtin"], true);
    for _ in 0..200 {
        if hooks.hits() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(hooks.hits(), 1, "the channel was told once");

    // Another user sees none of it.
    let (_, other) = app.user_with_token("bob", Role::User).await;
    let path = format!("/v1/scrapes/{}", s["id"].as_str().unwrap());
    assert_problem(app.get(&path, Some(&other)).await, 404, "not_found").await;
    let list: Value = app
        .get("/v1/scrapes", Some(&other))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"], json!([]));
}

#[sqlx::test]
async fn without_wait_the_answer_is_202_and_a_missing_selector_or_timeout_fails(pool: PgPool) {
    let site = site().await;
    let app = app(pool, &["127.0.0.1"]).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;

    let body = json!({ "url": site.url("/article"), "wait_for": "#never", "timeout_ms": 1500 });
    let resp = app.post_json("/v1/scrapes", Some(&token), &body).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let s: Value = resp.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/scrapes/{}", s["id"].as_str().unwrap())
    );
    assert!(
        matches!(s["status"].as_str(), Some("pending" | "running")),
        "{s}"
    );
    let s = wait_until_finished(&app, &token, s["id"].as_str().unwrap()).await;
    assert_eq!(s["status"], "failed", "{s}");
    assert_eq!(s["error_kind"], "selector_not_found", "{s}");
    assert_eq!(s["attempts"], 1, "a missing selector is not retried");

    // A page slower than the timeout: a transient error, retried, failing each time.
    let body = json!({ "url": site.url("/slow"), "timeout_ms": 1000 });
    let (_, s) = scrape(&app, &token, body, "").await;
    let id = s["id"].as_str().unwrap().to_string();
    let job_id = s["job_id"].as_str().unwrap().to_string();
    // Two attempts are enough to see the retry; then stop it.
    for _ in 0..300 {
        let s: Value = app
            .get(&location_of(&id), Some(&token))
            .await
            .json()
            .await
            .unwrap();
        if s["attempts"].as_i64() >= Some(2) {
            assert_eq!(s["error_kind"], "timeout", "{s}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.post(&format!("/v1/jobs/{job_id}/cancel"), Some(&token))
        .await;
    let s = wait_until_finished(&app, &token, &id).await;
    assert_eq!(s["status"], "cancelled", "{s}");
    assert!(s["attempts"].as_i64() >= Some(2), "{s}");
}

fn location_of(id: &str) -> String {
    format!("/v1/scrapes/{id}")
}

#[sqlx::test]
async fn private_addresses_are_refused_before_and_after_redirects(pool: PgPool) {
    // A server on another loopback address that must never be reached, and an allowed site
    // that redirects there.
    let secret = Loopback::start_on(
        "127.0.0.2",
        Route::new().at("/", poem::get(poem::endpoint::make_sync(|_| "secret"))),
    )
    .await;
    let target = secret.url("/");
    let redirecting = Loopback::start_on(
        "127.0.0.1",
        Route::new().at(
            "/go",
            poem::get(poem::endpoint::make_sync(move |_| {
                Redirect::temporary(target.clone())
            })),
        ),
    )
    .await;
    let app = app(pool, &["127.0.0.1/32"]).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;

    for url in [
        secret.url("/"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://10.1.2.3/".to_string(),
        "http://[::1]:8080/".to_string(),
        "http://[::ffff:10.0.0.1]/".to_string(),
        "file:///etc/passwd".to_string(),
        "ftp://example.com/".to_string(),
        "not a url".to_string(),
    ] {
        let resp = app
            .post_json("/v1/scrapes", Some(&token), &json!({ "url": url }))
            .await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        let problem = assert_problem(resp, 422, "validation_failed").await;
        assert!(!problem["detail"].as_str().unwrap().is_empty(), "{url}");
    }

    let body = json!({ "url": redirecting.url("/go") });
    let (status, s) = scrape(&app, &token, body, "?wait=25s").await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["status"], "failed", "{s}");
    assert_eq!(s["error_kind"], "blocked_by_policy", "{s}");
    assert_eq!(secret.hits(), 0, "the private server was reached");
    assert!(redirecting.hits() >= 1);
    // A scrape that failed for good gives its unit back.
    assert_eq!(
        scrape_quota_settled(&app, &token).await,
        (json!(0), json!(0))
    );

    // Bad options are refused with the reason.
    for (body, needle) in [
        (
            json!({ "url": redirecting.url("/go"), "timeout_ms": 10 }),
            "timeout_ms",
        ),
        (
            json!({ "url": redirecting.url("/go"), "formats": ["pdf"] }),
            "pdf",
        ),
        (
            json!({ "url": redirecting.url("/go"), "wait_for": "" }),
            "wait_for",
        ),
    ] {
        let resp = app.post_json("/v1/scrapes", Some(&token), &body).await;
        let problem = assert_problem(resp, 422, "validation_failed").await;
        assert!(
            problem["detail"].as_str().unwrap().contains(needle),
            "{problem}"
        );
    }
    let resp = app
        .post_json(
            "/v1/scrapes?wait=2h",
            Some(&token),
            &json!({ "url": redirecting.url("/go") }),
        )
        .await;
    assert_problem(resp, 400, "invalid_request").await;
}

#[sqlx::test]
async fn scrapes_finish_when_chromedriver_is_killed_during_a_run(pool: PgPool) {
    let site = site().await;
    let app = app(pool, &["127.0.0.1"]).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;

    let mut ids = Vec::new();
    for _ in 0..6 {
        let (status, s) = scrape(&app, &token, json!({ "url": site.url("/slow") }), "").await;
        assert_eq!(status, StatusCode::ACCEPTED, "{s}");
        ids.push(s["id"].as_str().unwrap().to_string());
    }
    // Once the browser is up and a page is loading, kill chromedriver.
    let browser = app.scraper.browser().await.expect("the browser starts");
    let mut pid = None;
    for _ in 0..200 {
        pid = browser.chromedriver_pid();
        let running: i64 =
            sqlx::query_scalar("SELECT count(*) FROM scrapes WHERE started_at IS NOT NULL")
                .fetch_one(&app.pool)
                .await
                .unwrap();
        if pid.is_some() && running > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = pid.expect("chromedriver runs") as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();

    for id in &ids {
        let s = wait_until_finished(&app, &token, id).await;
        assert_eq!(s["status"], "succeeded", "{s}");
    }
    assert!(browser.stats().chromedriver_restarts >= 1);
}
