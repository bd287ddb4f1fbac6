//! A crawl across a crash: the daemon is SIGKILLed in the middle of a crawl of the local site
//! and started again; the crawl resumes from its stored frontier and finishes with exactly its
//! limit of pages, each page once. The one page loading at the kill may be loaded again by its
//! scrape's next attempt (at-least-once), and no other.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use crate::helpers::{
    CONFIGURED_START, Daemon, Sandbox, create_token, eventually, fresh_database, http,
};
use crate::site::Site;

/// A short lease: the killed daemon's jobs are rescued about a second after the kill.
const LEASE: &str = "1s";
const LIMIT: usize = 20;

async fn crawl(daemon: &Daemon, token: &str, id: &str) -> Option<Value> {
    let url = format!("{}/v1/crawls/{id}?limit=1000", daemon.base_url());
    let resp = http().get(&url).bearer_auth(token).send().await.ok()?;
    (resp.status() == 200).then_some(())?;
    resp.json().await.ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crawl_killed_midway_resumes_and_finishes_without_repeats() {
    // Arrange: the site, a daemon that may reach loopback, and a crawl of 20 pages.
    let site = Site::start().await;
    let db = fresh_database().await;
    let sandbox = Sandbox::new();
    let env = [
        ("WORKHORSE_DATABASE__URL", db.url()),
        ("WORKHORSE_JOBS__LEASE", LEASE),
        ("WORKHORSE_EGRESS__ALLOW", r#"["127.0.0.1"]"#),
    ];
    let mut daemon = sandbox.serve(&env);
    daemon.wait_ready(CONFIGURED_START).await;
    let token = create_token(&sandbox, db.url());
    let body = json!({ "url": site.url("/index.html"), "limit": LIMIT, "delay_ms": 200 });
    let resp = (http().post(format!("{}/v1/crawls", daemon.base_url())))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .expect("POST /v1/crawls");
    assert_eq!(resp.status(), 202, "POST /v1/crawls");
    let started: Value = resp.json().await.expect("the crawl");
    let id = started["id"].as_str().expect("the crawl's id").to_string();

    // Act: kill the daemon once a few pages are done, and start it again.
    let before = eventually(
        Duration::from_secs(90),
        "five pages were done",
        async || {
            crawl(&daemon, &token, &id)
                .await
                .filter(|c| c["pages_done"].as_i64() >= Some(5))
        },
    )
    .await;
    let killed_at = Instant::now();
    daemon.signal(Signal::SIGKILL);
    daemon.wait_exit(Duration::from_secs(10)).await;
    let _killed = std::mem::replace(&mut daemon, sandbox.serve(&env));
    daemon.wait_ready(CONFIGURED_START).await;
    let ended = eventually(Duration::from_secs(180), "the crawl ended", async || {
        crawl(&daemon, &token, &id)
            .await
            .filter(|c| c["status"] != "running")
    })
    .await;

    // Assert: the figures first, so that a failing run still shows them.
    let hits = site.hits();
    // Pages only: every page loads the logo again (the cache is cleared between pages).
    let repeated: Vec<(&String, &usize)> = (hits.iter())
        .filter(|(p, n)| p.ends_with(".html") && **n > 1)
        .collect();
    eprintln!(
        "crawl_kill: killed after {} pages, ended {} after {:.1} s more with {} pages; \
         pages loaded twice: {repeated:?}",
        before["pages_done"],
        ended["status"],
        killed_at.elapsed().as_secs_f64(),
        ended["pages_done"],
    );
    assert_eq!(ended["status"], "succeeded", "{ended}");
    assert_eq!(ended["pages_done"].as_u64(), Some(LIMIT as u64), "{ended}");
    let done: Vec<&str> = (ended["pages"].as_array().expect("pages").iter())
        .filter(|p| p["state"] == "done")
        .map(|p| p["url"].as_str().expect("a URL"))
        .collect();
    assert_eq!(done.len(), LIMIT);
    assert_eq!(
        done.iter().collect::<HashSet<_>>().len(),
        LIMIT,
        "a page counted twice"
    );
    assert!(done.iter().all(|u| !u.contains("/private/")));
    // One page at a time: only the page loading at the kill may have been loaded twice.
    let pages_repeated = repeated
        .iter()
        .filter(|(p, _)| p.ends_with(".html"))
        .count();
    assert!(
        pages_repeated <= 1,
        "pages loaded more than once: {repeated:?}"
    );
    assert!(repeated.iter().all(|(_, n)| **n <= 2), "{repeated:?}");
}
