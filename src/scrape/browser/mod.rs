//! The browser side of scraping: a pool of WebDriver sessions on headless Chromium (through a
//! chromedriver this module starts and supervises, or an external WebDriver such as a Selenium
//! Grid) that loads a page, waits for it and extracts its content.
//!
//! - `driver`: the chromedriver child process, restarted when it dies, or the external URL.
//! - `pool`: sessions checked out per page, reused, recycled and closed when idle.
//! - `reset`: clearing cookies, storage and cache between the pages of a reused session.
//! - `session`: opening (capabilities, profile, viewport) and closing one session.
//! - `sandbox`: whether Chromium runs with its sandbox on this host.
//! - `page`: one page load on one session, and how WebDriver errors become [`PageError`]s.
//! - `emulation`: request headers, cookies and a phone's viewport, set before navigation.
//! - `actions`: clicks, typing, keys, waits, scrolls and screenshots before capture.
//! - `shots`: viewport and full-page screenshots; `devtools`: Chromium's DevTools commands.

pub mod actions;
mod devtools;
mod driver;
mod emulation;
mod page;
mod pool;
mod reset;
mod sandbox;
mod session;
mod shots;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::sync::OnceCell;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{Instrument, field};

use crate::egress::span::{Path, redacted_url};
use driver::Driver;
pub use emulation::{MOBILE_VIEWPORT, PageOptions, cookie_pairs};
use pool::Pool;
pub use sandbox::SandboxMode;
pub use shots::MAX_FULL_PAGE_HEIGHT;

/// Decide whether Chromium's sandbox can run for `config` on this host and say so in the log,
/// once per process: the daemon calls it at start so an operator learns it before any scrape.
pub fn announce_sandbox(config: &BrowserConfig) -> bool {
    sandbox::chosen(config)
}

/// Longest HTML, and longest text, kept from one page, in bytes; longer is cut on a character
/// boundary. Callers apply their own (smaller) limits on top.
pub const MAX_CONTENT_BYTES: usize = 5 * 1024 * 1024;

/// How pages are rendered: which WebDriver, how many sessions, and the browser's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserConfig {
    /// An external WebDriver (e.g. a Selenium Grid); `None`: start and supervise chromedriver.
    pub webdriver_url: Option<String>,
    /// The chromedriver binary, looked up in `PATH` when it has no directory.
    pub chromedriver: PathBuf,
    /// The Chromium binary (only passed to a chromedriver we start); `None`: its own lookup.
    pub chromium: Option<PathBuf>,
    /// Live sessions at most, busy or idle.
    pub pool_size: usize,
    /// A session is replaced after this many pages.
    pub max_pages_per_session: u32,
    /// Sessions idle this long are closed.
    pub idle_timeout: Duration,
    /// An HTTP proxy every browser request goes through, loopback included.
    pub proxy: Option<SocketAddr>,
    /// The viewport (and so the screenshot) in pixels, width and height.
    pub window: (u32, u32),
    /// Whether Chromium runs with its sandbox (`scrape.sandbox`).
    pub sandbox: SandboxMode,
}

impl Default for BrowserConfig {
    fn default() -> Self {
        let chromium = PathBuf::from("/usr/bin/chromium");
        Self {
            webdriver_url: None,
            chromedriver: PathBuf::from("chromedriver"),
            chromium: chromium.is_file().then_some(chromium),
            pool_size: 2,
            max_pages_per_session: 50,
            idle_timeout: Duration::from_secs(300),
            proxy: None,
            window: (1280, 800),
            sandbox: SandboxMode::Auto,
        }
    }
}

/// One page to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// The page's address.
    pub url: url::Url,
    /// A CSS selector to wait for after the page loaded.
    pub wait_for: Option<String>,
    /// Budget for navigation and the selector wait together.
    pub timeout: Duration,
    /// Take a PNG screenshot of the viewport.
    pub screenshot: bool,
    /// Bypass the pool: a fresh session, closed afterwards (for benchmarking).
    pub new_session: bool,
    /// Headers, emulation, a wait, actions before capture, a full-page screenshot.
    pub options: PageOptions,
}

impl PageRequest {
    /// A request for `url` with a 30 s budget, no selector, no screenshot, a pooled session.
    pub fn new(url: url::Url) -> Self {
        Self {
            url,
            wait_for: None,
            timeout: Duration::from_secs(30),
            screenshot: false,
            new_session: false,
            options: PageOptions::default(),
        }
    }
}

/// What a loaded page showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The address after redirects.
    pub final_url: String,
    /// The HTTP status of the main document, when the browser knows it.
    pub status: Option<u16>,
    /// The document's title.
    pub title: String,
    /// The rendered DOM, at most [`MAX_CONTENT_BYTES`].
    pub html: String,
    /// The body's visible text, at most [`MAX_CONTENT_BYTES`].
    pub text: String,
    /// A PNG of the viewport (or the whole page), when asked for.
    pub screenshot: Option<Vec<u8>>,
    /// The PNGs the actions' `screenshot` steps took, in order.
    pub action_screenshots: Vec<Vec<u8>>,
    /// Milliseconds until the page's load event.
    pub navigate_ms: u64,
    /// Milliseconds spent waiting for the selector.
    pub wait_ms: u64,
    /// Milliseconds spent extracting content and the screenshot.
    pub extract_ms: u64,
}

/// Why a page could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// Navigation and the selector wait did not finish within the request's timeout.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The page loaded but the selector never matched (or is not valid CSS).
    #[error("selector not found: {0}")]
    SelectorNotFound(String),
    /// The browser could not load the page (network error, error page, refused scheme).
    #[error("navigation failed: {0}")]
    NavigationFailed(String),
    /// No WebDriver session could be had, or it died during the load.
    #[error("webdriver unavailable: {0}")]
    DriverUnavailable(String),
    /// An action before capture could not be done; the message names the step.
    #[error("action failed: {0}")]
    ActionFailed(String),
}

impl PageError {
    /// A stable snake_case name for the failure.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::SelectorNotFound(_) => "selector_not_found",
            Self::NavigationFailed(_) => "navigation_failed",
            Self::DriverUnavailable(_) => "driver_unavailable",
            Self::ActionFailed(_) => "action_failed",
        }
    }

    /// Whether trying again later may succeed.
    pub fn transient(&self) -> bool {
        match self {
            Self::Timeout(_) | Self::DriverUnavailable(_) => true,
            Self::SelectorNotFound(_) | Self::ActionFailed(_) => false,
            Self::NavigationFailed(message) => page::looks_like_network_error(message),
        }
    }
}

/// Counters of the session pool and the chromedriver it uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Sessions open now, busy, idle or closing.
    pub live_sessions: usize,
    /// Sessions waiting in the pool for a page.
    pub idle_sessions: usize,
    /// Pages loaded successfully.
    pub pages_served: u64,
    /// Sessions opened since start.
    pub sessions_created: u64,
    /// Times chromedriver was started again after it died.
    pub chromedriver_restarts: u64,
}

/// Headless Chromium behind WebDriver, shared by every scrape of the process; cheap to clone.
#[derive(Clone)]
pub struct Browser {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("chromedriver_pid", &self.chromedriver_pid())
            .field("stats", &self.stats())
            .finish()
    }
}

struct Inner {
    driver: Driver,
    pool: Arc<Pool>,
    shut_down: OnceCell<()>,
    // Stops the supervisor and the idle reaper when the last handle is dropped.
    _stop: DropGuard,
}

impl Browser {
    /// Start chromedriver (unless a WebDriver URL is configured) and the idle reaper; sessions
    /// are opened on first use.
    pub async fn start(config: BrowserConfig) -> anyhow::Result<Browser> {
        if config.pool_size == 0 || config.max_pages_per_session == 0 {
            bail!("the browser needs a pool_size and max_pages_per_session above 0");
        }
        if let Some(chromium) = &config.chromium
            && config.webdriver_url.is_none()
            && !chromium.is_file()
        {
            bail!(
                "the Chromium binary {} does not exist: install chromium or configure its path",
                chromium.display()
            );
        }
        // fantoccini's rustls connector panics when two providers are compiled in and none is
        // installed; the daemon installs one too, this keeps tests and tools safe.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let stop = CancellationToken::new();
        // Armed before anything starts, so a failure below stops what already runs.
        let guard = stop.clone().drop_guard();
        let pool = Arc::new(Pool::new(&config)?);
        let driver = Driver::start(&config, stop.child_token())
            .await
            .context("starting the WebDriver")?;
        tokio::spawn(pool::reap_idle(
            pool.clone(),
            driver.endpoints(),
            stop.child_token(),
        ));
        Ok(Browser {
            inner: Arc::new(Inner {
                driver,
                pool,
                shut_down: OnceCell::new(),
                _stop: guard,
            }),
        })
    }

    /// Load one page on a pooled session (or a fresh one for `new_session`), wait for the
    /// selector, extract its content, then clear the cookies, storage and cache it left; a
    /// session that failed, or whose state could not be cleared, is closed rather than reused.
    pub async fn load(&self, req: &PageRequest) -> Result<Page, PageError> {
        let span = tracing::info_span!(
            "webdriver session",
            url = %redacted_url(&req.url, Path::Shown),
            session_id = field::Empty,
            reused = field::Empty,
            pages = field::Empty,
            final_url = field::Empty,
            status = field::Empty,
        );
        async {
            let mut lease = self
                .inner
                .pool
                .checkout(&self.inner.driver, req.new_session)
                .await?;
            let span = tracing::Span::current();
            span.record("reused", lease.reused());
            let Some(session) = lease.session() else {
                return Err(PageError::DriverUnavailable(
                    "no session was checked out".into(),
                ));
            };
            session.pages += 1;
            span.record("session_id", session.id.as_str());
            span.record("pages", session.pages);
            match page::load(session, req).await {
                Ok(page) => {
                    lease.checkin(!req.options.alter_session(), true).await;
                    Ok(page)
                }
                Err(failure) => {
                    // A session with another page's headers or phone settings is never reused,
                    // whatever ended the page: clearing does not undo them.
                    let reusable = !failure.discard && !req.options.alter_session();
                    lease.checkin(reusable, false).await;
                    Err(failure.error)
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Close every session, then stop chromedriver; later loads fail with
    /// [`PageError::DriverUnavailable`]. Safe to call more than once.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner
            .shut_down
            .get_or_init(|| async {
                inner.pool.shutdown().await;
                inner.driver.stop().await;
                inner.pool.remove_profiles().await;
            })
            .await;
    }

    /// Counters of the pool and chromedriver.
    pub fn stats(&self) -> PoolStats {
        let mut stats = self.inner.pool.stats();
        stats.chromedriver_restarts = self.inner.driver.restarts();
        stats
    }

    /// The process id of the chromedriver we run, while it runs.
    pub fn chromedriver_pid(&self) -> Option<u32> {
        self.inner.driver.pid()
    }
}
