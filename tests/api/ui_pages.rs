//! The dashboard's pages in Chromium with real data: a scrape of a loopback page shows its
//! screenshot (the image loads), and every main page renders at 1280×800. With
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

const WITHIN: Duration = Duration::from_secs(60);

#[handler]
fn page() -> Html<&'static str> {
    Html(
        "<html><head><title>Quarterly report</title></head>\
         <body style=\"font-family: sans-serif; background: #eef3ff\">\
         <h1>Quarterly report</h1><p>Revenue grew by 12% while costs stayed flat.</p>\
         </body></html>",
    )
}

async fn sign_in(browser: &Client, app: &TestApp, token: &str) {
    browser
        .goto(&app.url("/ui/login"))
        .await
        .expect("the sign-in page");
    let field = browser
        .find(Locator::Css("input[name=token]"))
        .await
        .expect("a token field");
    field.send_keys(token).await.expect("typing");
    let submit = browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("a button");
    submit.click().await.expect("signing in");
    let signed_in = eventually(Duration::from_secs(10), || async {
        browser.current_url().await.is_ok_and(|u| u.path() == "/ui")
    })
    .await;
    assert!(signed_in, "signed in");
}

/// Open `path`, check it rendered (its `h1`), and keep a screenshot when asked to.
async fn visit(browser: &Client, app: &TestApp, path: &str, name: &str) {
    browser
        .goto(&app.url(path))
        .await
        .expect("opening the page");
    browser
        .find(Locator::Css("main h1"))
        .await
        .expect("a heading");
    let png = browser.screenshot().await.expect("a screenshot");
    assert_eq!(&png[..4], b"\x89PNG");
    if let Ok(dir) = std::env::var("WORKHORSE_UI_SCREENSHOTS") {
        std::fs::write(format!("{dir}/{name}.png"), png).expect("saving the screenshot");
    }
}

#[sqlx::test]
async fn the_scrape_page_shows_its_screenshot_and_every_main_page_renders(pool: PgPool) {
    let site = Loopback::start(Route::new().at("/report", page)).await;
    let app = spawn_app_with(pool, |c| {
        c.egress.allow = vec!["127.0.0.1".into()];
        echo_charges_scrape(c, 100);
        c.jobs.backoff_base = Duration::from_millis(50);
        c.jobs.backoff_jitter = 0.0;
    })
    .await;
    let (_, token) = app.user_with_token("alice", Role::User).await;
    let body = json!({"url": site.url("/report"), "screenshot": true});
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
    let finished = eventually(WITHIN, || async {
        let s = app.get_json(&format!("/v1/scrapes/{id}"), &token).await;
        s["status"] == "succeeded"
    })
    .await;
    assert!(finished, "the scrape succeeded");

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
    assert!(
        browser
            .source()
            .await
            .expect("source")
            .contains("Revenue grew by 12%")
    );

    visit(&browser, &app, "/ui", "overview").await;
    visit(&browser, &app, "/ui/jobs", "jobs").await;
    let job = scrape["job_id"].as_str().expect("the scrape's job");
    visit(&browser, &app, &format!("/ui/jobs/{job}"), "job").await;
    visit(&browser, &app, "/ui/scrapes", "scrapes").await;
    visit(&browser, &app, &format!("/ui/scrapes/{id}"), "scrape").await;

    // An admin's overview: queues, instances, schedules.
    let admin = app.admin_token().await;
    browser.delete_all_cookies().await.expect("signed out");
    sign_in(&browser, &app, &admin).await;
    visit(&browser, &app, "/ui", "overview-admin").await;
    let html = browser.source().await.expect("source");
    for heading in ["Queues", "Schedules", "Finished in the last hour"] {
        assert!(html.contains(heading), "{heading} on the admin's overview");
    }
    browser.close().await.expect("closing the browser");
}
