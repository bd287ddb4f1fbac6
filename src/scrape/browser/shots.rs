//! Screenshots: the viewport through WebDriver, the whole page through DevTools.

use base64::Engine;
use fantoccini::Client;
use serde_json::{Value, json};

use super::devtools;

/// A full-page screenshot is cut at this height in CSS pixels (an endless feed would make a
/// PNG of hundreds of megabytes).
pub const MAX_FULL_PAGE_HEIGHT: u64 = 16_384;
/// ... and at this width (a page can declare itself a million pixels wide).
pub const MAX_FULL_PAGE_WIDTH: u64 = 4_096;

/// Why a screenshot could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ShotError {
    /// The WebDriver failed.
    #[error("taking the screenshot: {0}")]
    Driver(#[from] fantoccini::error::CmdError),
    /// The WebDriver has no DevTools (full-page screenshots need Chromium's).
    #[error("a full-page screenshot needs Chromium's DevTools, which this WebDriver lacks")]
    NoDevTools,
    /// DevTools answered something else than a PNG.
    #[error("the browser returned no image")]
    NoImage,
}

/// A PNG of the viewport, or of the whole page (up to [`MAX_FULL_PAGE_HEIGHT`]).
pub(super) async fn capture(client: &Client, full_page: bool) -> Result<Vec<u8>, ShotError> {
    if !full_page {
        return Ok(client.screenshot().await?);
    }
    let cdp = |cmd, params| async move {
        devtools::execute(client, cmd, params)
            .await
            .map_err(|e| match devtools::unsupported(&e) {
                true => ShotError::NoDevTools,
                false => ShotError::Driver(e),
            })
    };
    let metrics = cdp("Page.getLayoutMetrics", json!({})).await?;
    let size = |name: &str| {
        let content = metrics.get("cssContentSize").unwrap_or(&Value::Null);
        content
            .get(name)
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
            .ceil() as u64
    };
    let (width, height) = (
        size("width").clamp(1, MAX_FULL_PAGE_WIDTH),
        size("height").clamp(1, MAX_FULL_PAGE_HEIGHT),
    );
    let params = json!({
        "format": "png",
        "captureBeyondViewport": true,
        "clip": { "x": 0, "y": 0, "width": width, "height": height, "scale": 1 },
    });
    let shot = cdp("Page.captureScreenshot", params).await?;
    let data = shot
        .get("data")
        .and_then(Value::as_str)
        .ok_or(ShotError::NoImage)?;
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| ShotError::NoImage)
}
