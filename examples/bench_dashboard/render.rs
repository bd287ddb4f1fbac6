//! The dashboard in Chromium for `bench_dashboard`: the overview's page weight from a fresh
//! cache (the document and every resource it loads, as the browser's Resource Timing counts
//! them), whether the daemon compresses, and each page's navigation timing and first
//! contentful paint over repeated loads.

use anyhow::Context;
use fantoccini::Client;
use serde_json::json;

use super::chromium::{self, Chromedriver};
use super::support::{ms, pct, thousands};
use super::{People, Who, pages, row};

/// The page's navigation entry and resource entries: name, bytes on the wire with headers,
/// body on the wire, body decoded.
const ENTRIES: &str = "return performance.getEntriesByType('navigation') \
    .concat(performance.getEntriesByType('resource')) \
    .map(e => [e.name, e.transferSize, e.encodedBodySize, e.decodedBodySize]);";

/// Navigation timing and first contentful paint of the open page, in ms from its start. The
/// paint entry may be recorded after the load event, so this waits for it (2 s at most).
const TIMING: &str = "const done = arguments[arguments.length - 1]; \
    const n = performance.getEntriesByType('navigation')[0]; \
    const report = (p) => done([n.responseStart, n.domContentLoadedEventEnd, p]); \
    new PerformanceObserver((list) => { \
      const p = list.getEntriesByName('first-contentful-paint')[0]; \
      if (p) report(p.startTime); \
    }).observe({type: 'paint', buffered: true}); \
    setTimeout(() => report(null), 2000);";

/// Page weight of the overview for the user and the admin, then `loads` loads of every page.
pub async fn in_chromium(
    people: &People,
    loads: usize,
    jobs: u64,
    others: u64,
) -> anyhow::Result<Vec<String>> {
    let driver = Chromedriver::start().await?;
    let mut rows = Vec::new();
    let user = driver.browser("user").await?;
    let admin = driver.browser("admin").await?;
    let measured = async {
        chromium::sign_in(&user, &people.base, &people.user.token).await?;
        chromium::sign_in(&admin, &people.base, &people.admin.token).await?;
        for (who, browser) in [(Who::User, &user), (Who::Admin, &admin)] {
            let weight = page_weight(browser, &people.base).await?;
            rows.push(row(
                &format!(
                    "page weight: `/ui` as {}, empty cache",
                    who.describe(jobs, others)
                ),
                weight,
            ));
        }
        rows.push(row(
            "compression",
            compression(&people.base, &people.admin.cookie).await?,
        ));
        for (who, path) in pages() {
            let browser = match who {
                Who::User => &user,
                Who::Admin => &admin,
            };
            let timed = timing(browser, &format!("{}{path}", people.base), loads).await?;
            rows.push(row(
                &format!(
                    "Chromium: `{path}` as {}, {loads} loads",
                    who.describe(jobs, others)
                ),
                timed,
            ));
        }
        anyhow::Ok(())
    }
    .await;
    let _ = user.close().await;
    let _ = admin.close().await;
    measured?;
    Ok(rows)
}

/// Load `/ui` with an empty cache and add up what came over the wire.
async fn page_weight(browser: &Client, base: &str) -> anyhow::Result<String> {
    chromium::cdp(browser, "Network.clearBrowserCache", json!({})).await?;
    browser
        .goto(&format!("{base}/ui"))
        .await
        .context("opening /ui")?;
    let entries = browser.execute(ENTRIES, vec![]).await?;
    let entries = entries.as_array().context("no entries")?;
    let (mut wire, mut body, mut decoded) = (0.0, 0.0, 0.0);
    let mut parts = Vec::new();
    for entry in entries {
        let number = |i: usize| entry[i].as_f64().unwrap_or(0.0);
        let name = entry[0].as_str().unwrap_or("?");
        let path = name.strip_prefix(base).unwrap_or(name);
        wire += number(1);
        body += number(2);
        decoded += number(3);
        parts.push(format!("`{path}` {}", thousands(number(2))));
    }
    Ok(format!(
        "{} requests, {} bytes on the wire ({} of bodies: {}; decoded {})",
        entries.len(),
        thousands(wire),
        thousands(body),
        parts.join(" + "),
        thousands(decoded)
    ))
}

/// Whether the daemon compresses the overview and the script for a browser that accepts it.
async fn compression(base: &str, cookie: &str) -> anyhow::Result<String> {
    let http = super::ui_sse::client()?;
    let mut seen = Vec::new();
    for path in ["/ui", "/ui/assets/ui.js"] {
        let resp = (http.get(format!("{base}{path}")))
            .header("cookie", cookie)
            .header("accept-encoding", "gzip, deflate, br, zstd")
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let encoding = resp.headers().get("content-encoding");
        let encoding = encoding.and_then(|e| e.to_str().ok()).unwrap_or("none");
        seen.push(format!("`{path}` Content-Encoding: {encoding}"));
    }
    let none = seen.iter().all(|s| s.ends_with(": none"));
    Ok(match none {
        true => format!("{}: not compressed, the sizes are raw", seen.join(", ")),
        false => seen.join(", "),
    })
}

/// `loads` loads of `url` after one to warm up: medians of `responseStart`,
/// `domContentLoadedEventEnd` and `first-contentful-paint`.
async fn timing(browser: &Client, url: &str, loads: usize) -> anyhow::Result<String> {
    let (mut response, mut loaded, mut paint) = (Vec::new(), Vec::new(), Vec::new());
    let mut unpainted = 0;
    for i in 0..=loads {
        browser
            .goto(url)
            .await
            .with_context(|| format!("opening {url}"))?;
        let timed = browser.execute_async(TIMING, vec![]).await?;
        if i == 0 {
            continue;
        }
        let at = |i: usize| timed[i].as_f64();
        response.push(at(0).context("no responseStart")?);
        loaded.push(at(1).context("no domContentLoadedEventEnd")?);
        match at(2) {
            Some(p) => paint.push(p),
            None => unpainted += 1,
        }
    }
    for values in [&mut response, &mut loaded, &mut paint] {
        values.sort_by(f64::total_cmp);
    }
    let mut text = format!(
        "responseStart {}, DOMContentLoaded end {}, first contentful paint {} (max {})",
        ms(pct(&response, 50.0)),
        ms(pct(&loaded, 50.0)),
        ms(pct(&paint, 50.0)),
        ms(pct(&paint, 100.0)),
    );
    if unpainted > 0 {
        text += &format!("; {unpainted} loads without a paint entry");
    }
    Ok(text)
}
