//! `[scrape]`: the WebDriver and the browser session pool, with their validation.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, is_http_url};

/// Scraping: the WebDriver and the browser session pool.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScrapeConfig {
    /// An external WebDriver (e.g. a Selenium Grid at http://grid:4444); empty: the daemon
    /// starts and supervises chromedriver itself.
    pub webdriver_url: String,
    /// The chromedriver binary (looked up in PATH).
    pub chromedriver: PathBuf,
    /// The Chromium binary; empty: chromedriver's own lookup.
    pub chromium: PathBuf,
    /// Browser sessions at most; also the scrape jobs that run at once in this process unless
    /// `jobs.kinds.scrape.concurrency` says otherwise.
    pub pool_size: usize,
    /// A session is replaced after this many pages.
    pub max_pages_per_session: u32,
    /// Sessions idle this long are closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Page load timeout when a request gives none.
    #[serde(with = "humantime_serde")]
    pub default_timeout: Duration,
    /// Longest `timeout_ms` a request may ask for.
    #[serde(with = "humantime_serde")]
    pub max_timeout: Duration,
    /// Screenshot size in pixels, width and height.
    pub window_width: u32,
    /// Screenshot height in pixels.
    pub window_height: u32,
    /// Longest stored text, HTML or Markdown of one page, in bytes; longer is cut.
    pub max_content_bytes: usize,
    /// Chromium's sandbox: `auto` (where this host allows it), `on` or `off`.
    pub sandbox: SandboxMode,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        Self {
            webdriver_url: String::new(),
            chromedriver: PathBuf::from("chromedriver"),
            chromium: PathBuf::from("/usr/bin/chromium"),
            pool_size: 2,
            max_pages_per_session: 50,
            idle_timeout: Duration::from_secs(300),
            default_timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(120),
            window_width: 1280,
            window_height: 800,
            max_content_bytes: 2 * 1024 * 1024,
            sandbox: SandboxMode::Auto,
        }
    }
}

impl ScrapeConfig {
    pub(super) fn validate(&self, bad: &dyn Fn(&str) -> ConfigError) -> Result<(), ConfigError> {
        let url = self.webdriver_url.trim();
        if !url.is_empty() && !is_http_url(url) {
            return Err(bad("scrape.webdriver_url"));
        }
        for (key, zero) in [
            ("scrape.pool_size", self.pool_size == 0),
            (
                "scrape.max_pages_per_session",
                self.max_pages_per_session == 0,
            ),
            ("scrape.idle_timeout", self.idle_timeout.is_zero()),
            ("scrape.default_timeout", self.default_timeout.is_zero()),
            (
                "scrape.max_timeout",
                self.max_timeout < self.default_timeout,
            ),
            (
                "scrape.window_width",
                !(100..=4096).contains(&self.window_width),
            ),
            (
                "scrape.window_height",
                !(100..=4096).contains(&self.window_height),
            ),
            ("scrape.max_content_bytes", self.max_content_bytes == 0),
        ] {
            if zero {
                return Err(bad(key));
            }
        }
        Ok(())
    }
}

/// What a person should write for `scrape.*` keys.
pub(super) fn expectation(key: &str) -> Option<&'static str> {
    Some(match key {
        "scrape.webdriver_url" => "an http:// URL of a WebDriver, or empty to run chromedriver",
        "scrape.chromedriver" | "scrape.chromium" => "a program path",
        "scrape.pool_size" | "scrape.max_pages_per_session" | "scrape.max_content_bytes" => {
            "a whole number above 0"
        }
        "scrape.idle_timeout" => "a duration above 0, like 5m",
        "scrape.max_timeout" => "a duration like 2m, not shorter than scrape.default_timeout",
        "scrape.window_width" | "scrape.window_height" => "a number of pixels from 100 to 4096",
        _ => return None,
    })
}

/// What `scrape.sandbox` asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxMode {
    /// The sandbox runs when this host allows it, for a chromedriver the daemon starts; an
    /// external WebDriver's host cannot be checked from here, so it gets `--no-sandbox`.
    #[default]
    Auto,
    /// The sandbox always runs; sessions fail where the host cannot give it.
    On,
    /// Chromium always gets `--no-sandbox`.
    Off,
}
