//! Clearing what a page left in its session (cookies, storage, cache, service workers) before
//! the pool hands the session to the next page, which may be another user's, through
//! chromedriver's Chrome DevTools passthrough (`POST /session/{id}/goog/cdp/execute`).

use std::time::Duration;

use fantoccini::Client;
use fantoccini::error::CmdError;
use serde_json::{Value, json};

use super::devtools;
use super::session::Session;

/// Clearing takes ~0.1 s here (~0.2 s on busy cores, see `leave_page`); this only bounds a
/// browser that hangs.
const CLEAR_TIMEOUT: Duration = Duration::from_secs(10);

/// The top document's origin, and the origins of its frames: those present now (reading a
/// cross-origin frame's location throws) and those that loaded and may have gone since
/// (resource timing). Run before leaving the page.
const ORIGINS_JS: &str = r#"
const frames = [];
for (let i = 0; i < window.frames.length; i++) {
  try { frames.push(window.frames[i].location.origin); } catch (e) { frames.push('opaque'); }
}
for (const entry of performance.getEntriesByType('resource')) {
  if (['iframe', 'frame', 'object', 'embed'].includes(entry.initiatorType)) {
    try { frames.push(new URL(entry.name).origin); } catch (e) { frames.push('opaque'); }
  }
}
return { origin: location.origin, frames };
"#;

/// Why a session's state could not be cleared; the session must not serve another page.
#[derive(Debug, thiserror::Error)]
pub(super) enum Unclearable {
    /// The WebDriver has no DevTools passthrough (e.g. a Selenium Grid).
    #[error("the WebDriver has no DevTools passthrough: {0}")]
    NoDevTools(String),
    /// The page left state that clearing cannot reach.
    #[error("{0}")]
    Unreachable(&'static str),
    /// A WebDriver or DevTools command failed, or the browser did not answer.
    #[error("{0}")]
    Failed(String),
}

/// Leave the page and clear the browser's cookies and cache, and all storage (local, session,
/// IndexedDB, Cache Storage, service workers) of the origins the session's pages used.
///
/// Storage of a cross-origin frame is partitioned under the top-level site, and
/// `Storage.clearDataForOrigin` does not reach it (as measured on Chromium 156): a page with
/// such a frame, or that opened a window, fails with [`Unclearable::Unreachable`].
pub(super) async fn clear(session: &mut Session) -> Result<(), Unclearable> {
    let cleared = tokio::time::timeout(CLEAR_TIMEOUT, clear_state(session)).await;
    let result = cleared.unwrap_or_else(|_| {
        Err(Unclearable::Failed(format!(
            "not done within {} s",
            CLEAR_TIMEOUT.as_secs()
        )))
    });
    if result.is_ok() {
        session.touched.clear();
    }
    result
}

async fn clear_state(session: &Session) -> Result<(), Unclearable> {
    let client = &session.client;
    let found = client
        .execute(ORIGINS_JS, vec![])
        .await
        .map_err(|e| failed("listing the page's origins", e))?;
    let top = found.get("origin").and_then(Value::as_str).unwrap_or("");
    let frames = found.get("frames").and_then(Value::as_array);
    if frames.is_some_and(|frames| frames.iter().any(|f| f.as_str() != Some(top))) {
        return Err(Unclearable::Unreachable(
            "the page had a cross-origin frame",
        ));
    }
    let windows = client
        .windows()
        .await
        .map_err(|e| failed("listing the windows", e))?;
    if windows.len() > 1 {
        return Err(Unclearable::Unreachable("the page opened another window"));
    }
    leave_page(client).await?;
    command(client, "Network.clearBrowserCookies", json!({})).await?;
    let mut origins: Vec<&str> = session.touched.iter().map(String::as_str).collect();
    origins.push(top);
    origins.sort_unstable();
    origins.dedup();
    // Opaque ("null") and non-web origins have no storage to clear.
    for origin in origins.into_iter().filter(|o| o.starts_with("http")) {
        let params = json!({ "origin": origin, "storageTypes": "all" });
        command(client, "Storage.clearDataForOrigin", params).await?;
    }
    command(client, "Network.clearBrowserCache", json!({})).await?;
    Ok(())
}

/// Replace the page with about:blank: left open, its scripts (timers, pagehide handlers)
/// could store things again after the clearing.
///
/// Measured per page on two busy cores (medians): clearing alone ~90 ms; with about:blank
/// from the page's own script (it stays in the page's renderer) ~90 ms more; with WebDriver's
/// navigation (browser-initiated, so Chromium swaps the renderer process) ~165 ms more.
async fn leave_page(client: &Client) -> Result<(), Unclearable> {
    client
        .execute("location.replace('about:blank');", vec![])
        .await
        .map_err(|e| failed("leaving the page", e))?;
    // chromedriver answers once the navigation it sees pending is done.
    let url = client
        .current_url()
        .await
        .map_err(|e| failed("leaving the page", e))?;
    if url.as_str() != "about:blank" {
        // The page held on (or could not navigate itself): the browser navigates instead.
        client
            .goto("about:blank")
            .await
            .map_err(|e| failed("leaving the page", e))?;
    }
    Ok(())
}

/// One DevTools command through chromedriver.
async fn command(client: &Client, cmd: &'static str, params: Value) -> Result<(), Unclearable> {
    match devtools::execute(client, cmd, params).await {
        Ok(_) => Ok(()),
        Err(e) if devtools::unsupported(&e) => Err(Unclearable::NoDevTools(first_line(&e))),
        Err(e) => Err(failed(cmd, e)),
    }
}

fn failed(doing: &str, e: CmdError) -> Unclearable {
    Unclearable::Failed(format!("{doing}: {}", first_line(&e)))
}

/// chromedriver appends "(Session info: chrome=…)" and more on further lines.
fn first_line(e: &CmdError) -> String {
    let message = e.to_string();
    message
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}
