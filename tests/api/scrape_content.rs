//! What a scrape keeps of a page and how it loads it, end to end through real Chromium on a
//! local site (tests/fixtures/site): the main content without the chrome, absolute links,
//! complete metadata, actions before capture, request headers and cookies, a phone's viewport,
//! full-page screenshots, and reuse of a fresh result with `max_age`.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use workhorse::domain::users::Role;

use crate::helpers::{TestApp, assert_problem, spawn_app_with};
use crate::site::Site;

/// A problem answer of `status` whose body names `named`.
async fn refused(resp: reqwest::Response, status: StatusCode, named: &str) {
    let body = assert_problem(resp, status.as_u16(), code(status)).await;
    assert!(
        body.to_string().contains(named),
        "{named} not named: {body}"
    );
}

fn code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::CONFLICT => "conflict",
        _ => "validation_failed",
    }
}

async fn site() -> Site {
    Site::start().await
}

async fn app(pool: PgPool) -> TestApp {
    spawn_app_with(pool, |c| {
        c.egress.allow = vec!["127.0.0.1".into()];
        c.scrape.pool_size = 2;
    })
    .await
}

async fn scrape(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    let resp = app
        .post_json("/v1/scrapes?wait=40s", Some(token), &body)
        .await;
    let status = resp.status();
    (status, resp.json().await.expect("a JSON answer"))
}

fn text(s: &Value, format: &str) -> String {
    s["content"][format]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[sqlx::test]
async fn formats_keep_the_main_content_absolute_links_and_complete_metadata(pool: PgPool) {
    let site = site().await;
    let app = app(pool).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;
    let formats = [
        "markdown",
        "html",
        "raw_html",
        "text",
        "links",
        "metadata",
        "screenshot",
    ];

    let (status, s) = scrape(
        &app,
        &token,
        json!({ "url": site.url("/"), "formats": formats }),
    )
    .await;

    assert_eq!(
        (status, s["status"].as_str()),
        (StatusCode::OK, Some("succeeded")),
        "{s}"
    );
    let sentence = "The cooperative bakes four hundred loaves before sunrise.";
    for format in ["markdown", "text", "html"] {
        let kept = text(&s, format);
        assert!(kept.contains(sentence), "{format}: {kept}");
        for chrome in [
            "We use cookies",
            "Buy SuperWidget now",
            "2026 Test Site Footer",
            "Related links",
            "Private area",
        ] {
            assert!(!kept.contains(chrome), "{format} kept {chrome:?}: {kept}");
        }
    }
    assert!(!text(&s, "html").contains("<script"));
    let raw = text(&s, "raw_html");
    assert!(
        raw.contains("cookie-banner") && raw.contains("<script"),
        "raw_html is the page"
    );

    let links: Vec<&str> = (s["content"]["links"].as_array().expect("links").iter())
        .map(|l| l["url"].as_str().expect("a URL"))
        .collect();
    let base = site.url("/");
    assert!(
        links.iter().all(|l| l.starts_with(&base)),
        "not all absolute: {links:?}"
    );
    let page_01 = site.url("/docs/page-01.html");
    assert_eq!(
        links.iter().filter(|l| **l == page_01).count(),
        1,
        "{links:?}"
    );
    let home = site.url("/index.html");
    assert_eq!(links.iter().filter(|l| **l == home).count(), 1, "{links:?}");
    assert!(
        !links
            .iter()
            .any(|l| l.contains('#') || l.starts_with("mailto:"))
    );
    let named = &s["content"]["links"].as_array().expect("links")[..];
    assert!(
        named
            .iter()
            .any(|l| l["url"] == site.url("/about.html") && l["text"] == "About"),
        "{named:?}"
    );

    let m = &s["content"]["metadata"];
    assert_eq!(m["title"], "Workhorse Test Site");
    assert_eq!(m["description"], "A small site for testing scrapes.");
    assert_eq!(m["language"], "en");
    assert_eq!(m["canonical_url"], site.url("/index.html"));
    assert_eq!(m["status_code"], 200);
    assert_eq!(m["final_url"], site.url("/"));
    for og in [
        "og:title",
        "og:description",
        "og:type",
        "og:image",
        "og:url",
        "og:site_name",
    ] {
        assert!(m["og"][og].is_string(), "{og} missing: {m}");
    }
    assert_eq!(m["og"]["og:site_name"], "Workhorse");
    assert_eq!(m["twitter"]["twitter:card"], "summary_large_image");
    assert_eq!(m["twitter"].as_object().map(|t| t.len()), Some(3), "{m}");
    assert!(
        s["screenshot_url"].is_string(),
        "the screenshot format keeps one: {s}"
    );
}

#[sqlx::test]
async fn the_whole_page_or_exactly_the_tags_asked_for(pool: PgPool) {
    let site = site().await;
    let app = app(pool).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;

    let whole = json!({ "url": site.url("/index.html"), "only_main_content": false });
    let (_, s) = scrape(&app, &token, whole).await;
    let kept = text(&s, "markdown");
    assert!(
        kept.contains("2026 Test Site Footer") && kept.contains("We use cookies"),
        "{kept}"
    );

    let tags = json!({
        "url": site.url("/index.html"), "formats": ["text"],
        "include_tags": ["footer", "h1"], "exclude_tags": ["footer a"],
    });
    let (_, s) = scrape(&app, &token, tags).await;
    let kept = text(&s, "text");
    assert!(
        kept.contains("Workhorse Test Site") && kept.contains("2026 Test Site Footer"),
        "{kept}"
    );
    assert!(
        !kept.contains("loaves") && !kept.contains("About"),
        "{kept}"
    );
}

#[sqlx::test]
async fn a_click_and_a_typed_search_change_what_is_captured(pool: PgPool) {
    let site = site().await;
    let app = app(pool).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;
    let hidden = "Hidden details: the sourdough starter is forty years old.";

    let plain = json!({ "url": site.url("/index.html"), "only_main_content": false });
    let (_, before) = scrape(&app, &token, plain).await;
    assert!(!text(&before, "text").contains(hidden));

    let body = json!({
        "url": site.url("/index.html"),
        "formats": ["text", "markdown"],
        "include_tags": ["article", "#results"],
        "actions": [
            {"type": "click", "selector": "#reveal"},
            {"type": "wait", "selector": "#hidden-details", "timeout_ms": 3000},
            {"type": "type", "selector": "#q", "text": "rye bread"},
            {"type": "press", "key": "Enter"},
            {"type": "scroll", "direction": "down"},
            {"type": "screenshot"},
            {"type": "wait", "ms": 100},
        ],
    });
    let (status, s) = scrape(&app, &token, body).await;

    assert_eq!(
        (status, s["status"].as_str()),
        (StatusCode::OK, Some("succeeded")),
        "{s}"
    );
    let kept = text(&s, "text");
    assert!(
        kept.contains(hidden),
        "the click's content is missing: {kept}"
    );
    assert!(
        kept.contains("Results for: rye bread"),
        "the search's result is missing: {kept}"
    );
    let shots = s["action_screenshot_urls"]
        .as_array()
        .expect("the action's screenshot");
    assert_eq!(shots.len(), 1, "{s}");
    let shot = app.get(shots[0].as_str().unwrap(), Some(&token)).await;
    assert_eq!(shot.status(), StatusCode::OK);
    assert_eq!(&shot.bytes().await.unwrap()[..4], b"\x89PNG");
    let id = s["id"].as_str().unwrap();
    let missing = app
        .get(&format!("/v1/scrapes/{id}/screenshots/2"), Some(&token))
        .await;
    refused(missing, StatusCode::CONFLICT, "screenshot 2").await;
}

#[sqlx::test]
async fn an_action_that_cannot_be_done_fails_the_scrape_naming_the_step(pool: PgPool) {
    let site = site().await;
    let app = app(pool).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;

    let body = json!({
        "url": site.url("/index.html"),
        "actions": [
            {"type": "click", "selector": "#reveal"},
            {"type": "click", "selector": "#no-such-button", "timeout_ms": 500},
        ],
    });
    let (_, s) = scrape(&app, &token, body).await;

    assert_eq!(s["status"], "failed", "{s}");
    assert_eq!(s["error_kind"], "action_failed");
    let error = s["error"].as_str().unwrap();
    assert!(
        error.contains("step 2") && error.contains("#no-such-button"),
        "{error}"
    );
    assert_eq!(s["attempts"], 1, "not retried");
    let quota = app.settled_quota(&token, "scrape").await;
    assert_eq!(quota["used"], 0, "the unit is given back: {quota}");
}

#[sqlx::test]
async fn headers_cookies_and_a_phone_reach_the_page_and_values_are_not_shown(pool: PgPool) {
    let site = site().await;
    let app = app(pool).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;

    let body = json!({
        "url": site.url("/echo"),
        "formats": ["text"],
        "headers": {"X-Test": "hello", "Cookie": "session=s3cret"},
        "mobile": true,
        "wait_ms": 200,
        "screenshot": true,
        "full_page": true,
    });
    let (_, s) = scrape(&app, &token, body).await;

    assert_eq!(s["status"], "succeeded", "{s}");
    let kept = text(&s, "text");
    assert!(kept.contains("x-test=hello"), "{kept}");
    assert!(kept.contains("cookie=session=s3cret"), "{kept}");
    assert!(
        kept.contains("width=390") && kept.contains("Mobile"),
        "{kept}"
    );
    assert!(
        !s["options"].to_string().contains("s3cret"),
        "{}",
        s["options"]
    );
    assert!(s["options"]["headers"]["Cookie"].is_string());
    let shot = app
        .get(s["screenshot_url"].as_str().unwrap(), Some(&token))
        .await;
    let png = shot.bytes().await.unwrap();
    let (width, height) = png_size(&png);
    assert!(
        height > 3000 && height > width,
        "not the whole page: {width}×{height}"
    );

    // A page with headers that fails is not reused either.
    let failing = json!({
        "url": site.url("/echo"), "headers": {"X-Test": "leaked"},
        "wait_for": "#never", "timeout_ms": 1000,
    });
    let (_, s) = scrape(&app, &token, failing).await;
    assert_eq!(s["error_kind"], "selector_not_found", "{s}");

    // The sessions with the phone's settings and the headers are not reused: the next page is
    // a desktop's, without them.
    let (_, s) = scrape(
        &app,
        &token,
        json!({ "url": site.url("/echo"), "formats": ["text"] }),
    )
    .await;
    let kept = text(&s, "text");
    assert!(
        kept.contains("x-test=none") && kept.contains("cookie=none"),
        "{kept}"
    );
    assert!(
        !kept.contains("width=390") && !kept.contains("Mobile"),
        "{kept}"
    );
}

#[sqlx::test]
async fn max_age_reuses_a_fresh_scrape_of_the_same_request_without_a_charge(pool: PgPool) {
    let site = site().await;
    let app = app(pool).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;
    let (_, other) = app.user_with_token("bob", Role::User).await;
    let url = site.url("/docs/page-07.html");

    let (_, first) = scrape(&app, &token, json!({ "url": url, "formats": ["markdown"] })).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let hits = site.total_hits();

    let again = json!({ "url": url, "formats": ["markdown"], "max_age": 600_000 });
    let (status, reused) = scrape(&app, &token, again.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reused["id"], first["id"], "{reused}");
    assert_eq!(site.total_hits(), hits, "no browser went to the site");
    assert_eq!(
        app.settled_quota(&token, "scrape").await["used"],
        1,
        "no charge"
    );

    // Other options, or another user, make a new scrape.
    let other_options = json!({ "url": url, "formats": ["text"], "max_age": 600_000 });
    let (_, fresh) = scrape(&app, &token, other_options).await;
    assert_ne!(fresh["id"], first["id"]);
    let (_, theirs) = scrape(&app, &other, again).await;
    assert_ne!(
        theirs["id"], first["id"],
        "another user's scrape is never shared"
    );
}

#[sqlx::test]
async fn options_that_cannot_work_are_refused_naming_the_field(pool: PgPool) {
    let app = app(pool).await;
    let (_, token) = app.user_with_token("ann", Role::User).await;
    let url = "http://127.0.0.1:9/";
    let cases = [
        (
            json!({"url": url, "include_tags": ["div["]}),
            "include_tags",
        ),
        (
            json!({"url": url, "headers": {"Host": "elsewhere"}}),
            "Host",
        ),
        (
            json!({"url": url, "actions": [{"type": "press", "key": "Hyper"}]}),
            "step 1",
        ),
        (
            json!({"url": url, "actions": [{"type": "wait"}]}),
            "ms or selector",
        ),
        (
            json!({"url": url, "actions": [{"type": "hover", "selector": "a"}]}),
            "type",
        ),
        (
            json!({"url": url, "actions": [{"type": "click"}]}),
            "selector",
        ),
        (json!({"url": url, "formats": ["pdf"]}), "formats"),
    ];
    for (body, named) in cases {
        let resp = app.post_json("/v1/scrapes", Some(&token), &body).await;
        refused(resp, StatusCode::UNPROCESSABLE_ENTITY, named).await;
    }
    assert_eq!(app.settled_quota(&token, "scrape").await["used"], 0);
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}
