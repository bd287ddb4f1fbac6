//! Isolation between the pages of a reused session: what one page stored is gone for the next.

use std::time::Duration;

use workhorse::scrape::browser::{BrowserConfig, PageRequest};

use crate::helpers::{
    Site, WebDriverWithoutDevTools, closed_port, config, eventually, request, start,
};

#[tokio::test]
async fn reused_session_shows_no_cookie_or_storage_of_the_previous_page() {
    let site = Site::start().await;
    let browser = start(BrowserConfig {
        pool_size: 1,
        ..config()
    })
    .await;
    let store = PageRequest {
        wait_for: Some("#stored".into()),
        ..request(site.url("/store"))
    };
    let read = PageRequest {
        wait_for: Some("#read".into()),
        ..request(site.url("/read"))
    };

    let stored = browser.load(&store).await.expect("the page that stores");
    let next = browser
        .load(&read)
        .await
        .expect("the next page, same origin");

    // The browser kept what the first page stored, at least while it ran.
    assert!(
        stored
            .text
            .contains("cookie=[who=alice] local=[alice] session=[alice] databases=[alice]"),
        "{}",
        stored.text
    );
    assert!(
        next.text
            .contains("cookie=[] local=[null] session=[null] databases=[]"),
        "{}",
        next.text
    );
    assert_eq!(browser.stats().sessions_created, 1);
    browser.shutdown().await;
}

#[tokio::test]
async fn pages_that_leave_state_out_of_reach_do_not_pass_their_session_on() {
    let site = Site::start().await;
    let browser = start(BrowserConfig {
        pool_size: 1,
        ..config()
    })
    .await;
    let home = request(site.url("/"));

    // A cross-origin frame's storage is partitioned where clearing an origin does not reach.
    browser
        .load(&request(site.url("/framed")))
        .await
        .expect("a page with a cross-origin frame");
    browser.load(&home).await.expect("the page after it");
    assert_eq!(browser.stats().sessions_created, 2);

    // A window the page opened would keep running its scripts.
    browser
        .load(&request(site.url("/opener")))
        .await
        .expect("a page that opens a window");
    browser.load(&home).await.expect("the page after it");
    assert_eq!(browser.stats().sessions_created, 3);

    // Plain pages keep the session.
    browser.load(&home).await.expect("another plain page");
    assert_eq!(browser.stats().sessions_created, 3);
    browser.shutdown().await;
}

#[tokio::test]
async fn webdriver_without_devtools_passthrough_gets_a_new_session_for_every_page() {
    let site = Site::start().await;
    let webdriver = WebDriverWithoutDevTools::start().await;
    let browser = start(BrowserConfig {
        webdriver_url: Some(webdriver.url.clone()),
        chromium: None,
        ..config()
    })
    .await;
    let store = PageRequest {
        wait_for: Some("#stored".into()),
        ..request(site.url("/store"))
    };
    let read = PageRequest {
        wait_for: Some("#read".into()),
        ..request(site.url("/read"))
    };

    browser.load(&store).await.expect("the page that stores");
    let next = browser.load(&read).await.expect("the next page");
    browser.load(&read).await.expect("a third page");

    assert!(
        next.text
            .contains("cookie=[] local=[null] session=[null] databases=[]"),
        "{}",
        next.text
    );
    let stats = browser.stats();
    assert_eq!((stats.sessions_created, stats.pages_served), (3, 3));
    assert!(
        eventually(Duration::from_secs(5), || browser.stats().live_sessions
            == 0)
        .await
    );
    browser.shutdown().await;
}

#[tokio::test]
async fn error_page_and_not_found_page_keep_their_session() {
    let site = Site::start().await;
    let browser = start(BrowserConfig {
        pool_size: 1,
        ..config()
    })
    .await;
    let refused = format!("http://127.0.0.1:{}/", closed_port());

    browser
        .load(&request(refused.parse().expect("a URL")))
        .await
        .expect_err("nothing listens there");
    browser
        .load(&request(site.url("/missing")))
        .await
        .expect("the 404 page");
    let page = browser
        .load(&request(site.url("/")))
        .await
        .expect("a plain page");

    assert_eq!(page.title, "Home");
    assert_eq!(browser.stats().sessions_created, 1);
    browser.shutdown().await;
}
