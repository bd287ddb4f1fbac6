//! The dashboard's pages in Chromium with real data: a scrape of a loopback page shows its
//! screenshot (the image loads), its summary (by the built-in summariser) is listed and shown
//! with its text and marks, and every main page renders without console errors at 1280×800
//! and fits a phone's screen (390×844) with its navigation in reach. With
//! `WORKHORSE_UI_SCREENSHOTS=<dir>` the pages are saved there as PNGs (`deploy/screenshots.sh`
//! refreshes docs/dashboard/ that way).

use std::time::Duration;

use fantoccini::{Client, Locator};
use poem::web::Html;
use poem::{Route, handler};
use serde_json::{Value, json};
use sqlx::PgPool;
use workhorse::domain::users::Role;

use crate::chromedriver::Chromedriver;
use crate::helpers::{Loopback, TestApp, echo_charges_scrape, eventually, spawn_app_with};
use crate::ui_support::{fit, phone, sign_in, source, visit};

const WITHIN: Duration = Duration::from_secs(60);

#[handler]
fn report() -> Html<&'static str> {
    Html(
        "<html><head><title>Quarterly report</title></head>\
         <body style=\"font-family: sans-serif; background: #eef3ff\">\
         <h1>Quarterly report</h1><p>Revenue grew by 12% while costs stayed flat.</p>\
         <p>The board expects the same next quarter.</p></body></html>",
    )
}

/// Every main page of a signed-in user, by screenshot name.
fn pages(scrape: &Value, summary: &str) -> Vec<(String, String)> {
    let job = scrape["job_id"].as_str().expect("the scrape's job");
    let id = scrape["id"].as_str().expect("the scrape's id");
    [
        ("/ui".to_string(), "overview"),
        ("/ui/jobs".into(), "jobs"),
        (format!("/ui/jobs/{job}"), "job"),
        ("/ui/scrapes".into(), "scrapes"),
        (format!("/ui/scrapes/{id}"), "scrape"),
        ("/ui/summaries".into(), "summaries"),
        (format!("/ui/summaries/{summary}"), "summary"),
        ("/ui/documents".into(), "documents"),
        ("/ui/schedules".into(), "schedules"),
        ("/ui/channels".into(), "channels"),
        ("/ui/deliveries".into(), "deliveries"),
    ]
    .into_iter()
    .map(|(path, name)| (path, name.to_string()))
    .collect()
}

/// On a phone's screen: each page fits its width (tables scroll inside their own box) and
/// every navigation link is shown.
async fn fits_a_phone(browser: &Client, app: &TestApp, paths: &[String]) {
    phone(browser).await;
    for path in paths {
        browser
            .goto(&app.url(path))
            .await
            .expect("opening the page");
        let (window, document, nav) = fit(browser).await;
        assert_eq!(window, 390, "the phone's width on {path}");
        assert!(
            document <= window,
            "{path} is {document} px wide on a {window} px screen"
        );
        assert!(nav, "the navigation is in reach on {path}");
    }
}

#[sqlx::test]
async fn every_page_shows_its_data_without_console_errors_and_fits_a_phone(pool: PgPool) {
    let site = Loopback::start(Route::new().at("/report", report)).await;
    let app = spawn_app_with(pool, |c| {
        c.egress.allow = vec!["127.0.0.1".into()];
        echo_charges_scrape(c, 100);
        c.jobs.backoff_base = Duration::from_millis(50);
        c.jobs.backoff_jitter = 0.0;
    })
    .await;
    let (_, token) = app.user_with_token("alice", Role::User).await;
    let body = json!({"url": site.url("/report"), "screenshot": true, "summarise": true});
    let resp = app.post_json("/v1/scrapes", Some(&token), &body).await;
    assert_eq!(resp.status().as_u16(), 202);
    let scrape: Value = resp.json().await.expect("a scrape");
    let id = scrape["id"].as_str().expect("id").to_owned();
    for args in [
        json!({}),
        json!({"fail_attempts": 1}),
        json!({"fail_permanently": true}),
    ] {
        app.enqueue(&token, json!({"kind": "echo", "args": args}))
            .await;
    }
    let scraped = eventually(WITHIN, || async {
        let s = app.get_json(&format!("/v1/scrapes/{id}"), &token).await;
        s["status"] == "succeeded" && s["summary_id"].is_string()
    })
    .await;
    assert!(scraped, "the scrape succeeded and chained its summary");
    let scraped = app.get_json(&format!("/v1/scrapes/{id}"), &token).await;
    let summary = scraped["summary_id"]
        .as_str()
        .expect("a summary")
        .to_owned();
    let summarised = eventually(WITHIN, || async {
        let s = app
            .get_json(&format!("/v1/summaries/{summary}"), &token)
            .await;
        s["status"] == "succeeded"
    })
    .await;
    assert!(summarised, "the summary succeeded");
    let made = app
        .get_json(&format!("/v1/summaries/{summary}"), &token)
        .await;
    let text = made["text"].as_str().expect("a summary's text");

    let driver = Chromedriver::start().await;
    let browser = driver.browser().await;
    sign_in(&browser, &app, &token).await;

    browser
        .goto(&app.url(&format!("/ui/scrapes/{id}")))
        .await
        .expect("the scrape page");
    let loaded = eventually(Duration::from_secs(10), || async {
        let width = browser
            .execute(
                "const i = document.querySelector('img.screenshot'); \
                 return i && i.complete ? i.naturalWidth : 0;",
                vec![],
            )
            .await
            .expect("a script result");
        width.as_u64().unwrap_or(0) > 100
    })
    .await;
    assert!(loaded, "the screenshot loaded in the page");
    assert!(source(&browser).await.contains("Revenue grew by 12%"));

    // The summary: listed under its document's title, then its page with text and marks.
    visit(&browser, &app, "/ui/summaries", "summaries").await;
    let row = format!("tr[data-id='{summary}']");
    let listed = browser
        .find(Locator::Css(&row))
        .await
        .expect("the summary's row");
    assert!(
        listed
            .text()
            .await
            .expect("its text")
            .contains("Quarterly report")
    );
    visit(
        &browser,
        &app,
        &format!("/ui/summaries/{summary}"),
        "summary",
    )
    .await;
    let shown = browser.find(Locator::Css("#summary-text")).await;
    assert_eq!(
        shown
            .expect("the text")
            .text()
            .await
            .expect("its text")
            .trim(),
        text.trim()
    );
    let page = source(&browser).await;
    for expected in ["builtin", "built-in", "Quarterly report", "Tokens in / out"] {
        assert!(page.contains(expected), "{expected} on the summary's page");
    }
    let document = made["document_id"].as_str().expect("its document");
    visit(
        &browser,
        &app,
        &format!("/ui/documents/{document}"),
        "document",
    )
    .await;
    assert!(
        source(&browser).await.contains(&summary),
        "the document lists its summary"
    );

    let paths = pages(&scrape, &summary);
    for (path, name) in &paths {
        visit(&browser, &app, path, name).await;
    }

    // An admin's overview (queues, instances, schedules) and users page.
    let admin = app.admin_token().await;
    browser.delete_all_cookies().await.expect("signed out");
    sign_in(&browser, &app, &admin).await;
    visit(&browser, &app, "/ui", "overview-admin").await;
    let html = source(&browser).await;
    for heading in ["Queues", "Schedules", "Finished in the last hour"] {
        assert!(html.contains(heading), "{heading} on the admin's overview");
    }
    visit(&browser, &app, "/ui/users", "users").await;

    let mut all: Vec<String> = paths.into_iter().map(|(path, _)| path).collect();
    all.push("/ui/users".into());
    fits_a_phone(&browser, &app, &all).await;
    visit(&browser, &app, "/ui/jobs", "jobs-phone").await;
    browser.close().await.expect("closing the browser");
}
