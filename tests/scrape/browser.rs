//! The browser: page loads, failures, the session pool, chromedriver supervision.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use workhorse::scrape::browser::{BrowserConfig, PageError, PageRequest};

use crate::helpers::{
    Site, closed_port, config, eventually, is_running, request, running_in_group, start,
};

#[tokio::test]
async fn waits_for_content_that_javascript_adds_later() {
    let site = Site::start().await;
    let browser = start(config()).await;
    let req = PageRequest {
        wait_for: Some("#late".into()),
        ..request(site.url("/late"))
    };

    let page = browser.load(&req).await.expect("the late page");

    assert!(page.text.contains("Late content"), "text: {}", page.text);
    assert!(page.html.contains(r#"<div id="late">Late content</div>"#));
    assert_eq!(page.title, "Late");
    assert_eq!(page.status, Some(200));
    assert!(page.wait_ms > 0, "the div appears ~300 ms after load");
    assert!(page.screenshot.is_none());
    browser.shutdown().await;
}

#[tokio::test]
async fn redirect_reports_the_final_url() {
    let site = Site::start().await;
    let browser = start(config()).await;

    let page = browser
        .load(&request(site.url("/redirect")))
        .await
        .expect("the redirected page");

    assert_eq!(page.final_url, site.url("/target").to_string());
    assert_eq!(page.title, "Target");
    assert_eq!(page.status, Some(200));
    browser.shutdown().await;
}

#[tokio::test]
async fn slow_page_past_the_timeout_fails_with_timeout_and_its_session_is_replaced() {
    let site = Site::start().await;
    let browser = start(config()).await;
    let req = PageRequest {
        timeout: Duration::from_secs(1),
        ..request(site.url("/slow"))
    };

    // Opening the session (seconds when tests run in parallel) is not part of the budget.
    browser
        .load(&request(site.url("/")))
        .await
        .expect("a warm-up page");

    let started = Instant::now();
    let error = browser.load(&req).await.expect_err("the slow page");

    assert!(matches!(error, PageError::Timeout(_)), "{error:?}");
    assert_eq!(error.kind(), "timeout");
    assert!(error.transient());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // The timed-out session is closed, and the next page gets a new one.
    assert!(
        eventually(Duration::from_secs(5), || browser.stats().live_sessions
            == 0)
        .await
    );
    browser
        .load(&request(site.url("/")))
        .await
        .expect("a page after the timeout");
    assert_eq!(browser.stats().sessions_created, 2);
    browser.shutdown().await;
}

#[tokio::test]
async fn cancelled_load_closes_its_session() {
    let site = Site::start().await;
    let browser = start(config()).await;
    browser
        .load(&request(site.url("/")))
        .await
        .expect("a warm-up page");

    // A job timeout drops the load mid-navigation.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(500),
        browser.load(&request(site.url("/slow"))),
    )
    .await;

    assert!(cancelled.is_err(), "the slow page takes 5 s");
    // Closing waits behind the navigation chromedriver is still running (at most the
    // page-load timeout): here until the slow page answers.
    let closed = eventually(Duration::from_secs(10), || {
        browser.stats().live_sessions == 0
    });
    assert!(closed.await);
    let page = browser
        .load(&request(site.url("/")))
        .await
        .expect("a page after the cancel");
    assert_eq!(page.title, "Home");
    let started = Instant::now();
    browser.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn missing_selector_fails_with_selector_not_found_and_keeps_the_session() {
    let site = Site::start().await;
    let browser = start(config()).await;
    let req = PageRequest {
        wait_for: Some("#never".into()),
        timeout: Duration::from_secs(1),
        ..request(site.url("/"))
    };

    let error = browser
        .load(&req)
        .await
        .expect_err("a selector that never matches");

    assert!(matches!(error, PageError::SelectorNotFound(_)), "{error:?}");
    assert_eq!(error.kind(), "selector_not_found");
    assert!(!error.transient());
    let stats = browser.stats();
    assert_eq!((stats.live_sessions, stats.idle_sessions), (1, 1));
    browser.shutdown().await;
}

#[tokio::test]
async fn screenshot_is_a_png_of_the_configured_window() {
    let site = Site::start().await;
    let browser = start(BrowserConfig {
        window: (1024, 640),
        ..config()
    })
    .await;
    let req = PageRequest {
        screenshot: true,
        ..request(site.url("/"))
    };

    let page = browser.load(&req).await.expect("a page with a screenshot");

    let png = page.screenshot.expect("a screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&png[12..16], b"IHDR");
    let width = u32::from_be_bytes(png[16..20].try_into().expect("4 bytes"));
    let height = u32::from_be_bytes(png[20..24].try_into().expect("4 bytes"));
    assert_eq!((width, height), (1024, 640));
    browser.shutdown().await;
}

#[tokio::test]
async fn not_found_page_loads_with_status_404() {
    let site = Site::start().await;
    let browser = start(config()).await;

    let page = browser
        .load(&request(site.url("/missing")))
        .await
        .expect("the 404 page");

    assert_eq!(page.status, Some(404));
    assert_eq!(page.title, "Not here");
    assert!(page.text.contains("Nothing at this address."));
    browser.shutdown().await;
}

#[tokio::test]
async fn refused_connection_fails_with_a_transient_navigation_error() {
    let browser = start(config()).await;
    let url = format!("http://127.0.0.1:{}/", closed_port());

    let error = browser
        .load(&request(url.parse().expect("a URL")))
        .await
        .expect_err("nothing listens there");

    assert!(matches!(error, PageError::NavigationFailed(_)), "{error:?}");
    assert!(
        error.to_string().contains("ERR_CONNECTION_REFUSED"),
        "{error}"
    );
    assert!(error.transient());
    browser.shutdown().await;
}

#[tokio::test]
async fn sessions_are_reused_then_recycled_after_max_pages() {
    let site = Site::start().await;
    let browser = start(BrowserConfig {
        pool_size: 1,
        max_pages_per_session: 2,
        ..config()
    })
    .await;
    let req = request(site.url("/"));

    let started = Instant::now();
    browser.load(&req).await.expect("page 1");
    let first = started.elapsed();
    let started = Instant::now();
    browser.load(&req).await.expect("page 2");
    let reused = started.elapsed();
    assert_eq!(browser.stats().sessions_created, 1);

    browser.load(&req).await.expect("page 3");
    assert_eq!(
        browser.stats().sessions_created,
        2,
        "recycled after 2 pages"
    );

    let started = Instant::now();
    let fresh = PageRequest {
        new_session: true,
        ..req.clone()
    };
    browser
        .load(&fresh)
        .await
        .expect("a page on a fresh session");
    let fresh_elapsed = started.elapsed();
    let stats = browser.stats();
    assert_eq!(stats.sessions_created, 3);
    assert_eq!(stats.pages_served, 4);
    assert!(
        eventually(Duration::from_secs(5), || browser.stats().live_sessions
            == 0)
        .await
    );
    eprintln!("first load {first:?}, reused session {reused:?}, fresh session {fresh_elapsed:?}");
    browser.shutdown().await;
}

#[tokio::test]
async fn pool_opens_no_more_than_pool_size_sessions() {
    let site = Site::start().await;
    let browser = start(config()).await;
    let req = request(site.url("/late"));

    let loads = futures::future::join_all((0..4).map(|_| browser.load(&req))).await;

    assert!(loads.iter().all(Result::is_ok), "{loads:?}");
    let stats = browser.stats();
    assert!(stats.sessions_created <= 2, "{stats:?}");
    assert_eq!(stats.pages_served, 4);
    browser.shutdown().await;
}

#[tokio::test]
async fn idle_sessions_are_closed_after_the_idle_timeout() {
    let site = Site::start().await;
    let browser = start(BrowserConfig {
        idle_timeout: Duration::from_millis(800),
        ..config()
    })
    .await;

    browser.load(&request(site.url("/"))).await.expect("a page");
    assert_eq!(browser.stats().idle_sessions, 1);

    assert!(
        eventually(Duration::from_secs(5), || browser.stats().live_sessions
            == 0)
        .await
    );
    assert_eq!(browser.stats().idle_sessions, 0);
    browser.shutdown().await;
}

#[tokio::test]
async fn killed_chromedriver_is_restarted_and_loads_recover() {
    let site = Site::start().await;
    let browser = start(config()).await;
    let req = request(site.url("/"));
    browser.load(&req).await.expect("a page before the kill");
    let pid = browser.chromedriver_pid().expect("chromedriver runs");

    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("killing chromedriver");
    match browser.load(&req).await {
        Ok(_) | Err(PageError::DriverUnavailable(_)) => {}
        Err(e) => panic!("expected success or driver_unavailable, got {e:?}"),
    }

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match browser.load(&req).await {
            Ok(page) => {
                assert_eq!(page.title, "Home");
                break;
            }
            Err(e) if Instant::now() < deadline => {
                eprintln!("while chromedriver restarts: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("no page within 10 s of the kill: {e}"),
        }
    }
    assert_eq!(browser.stats().chromedriver_restarts, 1);
    let new_pid = browser.chromedriver_pid().expect("chromedriver runs again");
    assert_ne!(new_pid, pid);
    // The old chromedriver's Chromium does not linger.
    assert!(eventually(Duration::from_secs(3), || running_in_group(pid).is_empty()).await);
    browser.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_sessions_and_leaves_no_process_behind() {
    let site = Site::start().await;
    let browser = start(config()).await;
    let req = request(site.url("/late"));
    let loads = futures::future::join_all((0..2).map(|_| browser.load(&req))).await;
    assert!(loads.iter().all(Result::is_ok), "{loads:?}");
    let pid = browser.chromedriver_pid().expect("chromedriver runs");
    assert!(
        running_in_group(pid).len() > 1,
        "chromedriver and its Chromium"
    );

    browser.shutdown().await;

    assert!(!is_running(pid));
    assert_eq!(running_in_group(pid), Vec::<u32>::new());
    assert_eq!(browser.stats().live_sessions, 0);
    assert_eq!(browser.chromedriver_pid(), None);
    let error = browser.load(&req).await.expect_err("loads after shutdown");
    assert_eq!(error.kind(), "driver_unavailable");
    // A second shutdown is harmless.
    browser.shutdown().await;
}

#[tokio::test]
async fn proxy_carries_every_request_loopback_included() {
    // The site doubles as the proxy: a proxied request arrives in absolute form.
    let proxy = Site::start().await;
    let browser = start(BrowserConfig {
        proxy: Some(proxy.addr),
        ..config()
    })
    .await;
    let loopback = format!("http://127.0.0.1:{}/", closed_port());

    let page = browser
        .load(&request(loopback.parse().expect("a URL")))
        .await
        .expect("a loopback page through the proxy");
    let other = browser
        .load(&request(
            "http://site.invalid/target".parse().expect("a URL"),
        ))
        .await
        .expect("an unresolvable host through the proxy");

    assert_eq!(page.title, "Home");
    assert_eq!(other.title, "Target");
    let seen = proxy.seen();
    assert!(seen.contains(&loopback), "{seen:?}");
    assert!(
        seen.contains(&"http://site.invalid/target".to_string()),
        "{seen:?}"
    );
    browser.shutdown().await;
}
