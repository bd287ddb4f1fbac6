//! The scraper: the browser, the egress proxy every browser request goes through, and the
//! plain-GET client; one attempt at a page (load, capture, keep what was asked) and why an
//! attempt failed. The `scrape` kind (`job`) runs it and records the outcome.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::{Mutex, OnceCell};

use super::browser::{Browser, BrowserConfig, Page, PageError, PageRequest};
use super::content;
use super::extract::ExtractError;
use super::options::ScrapeOptions;
use crate::config::Config;
use crate::egress::proxy::EgressProxy;
use crate::egress::{EgressError, EgressPolicy, OutboundClient};
use crate::metrics::Metrics;
use crate::store::scrapes::{Found, Scrape};

/// The formats a scrape can keep.
pub const FORMATS: [&str; 8] = [
    "markdown",
    "html",
    "raw_html",
    "text",
    "links",
    "metadata",
    "screenshot",
    "json",
];

/// How long a document read without the browser may take, redirects included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(20);

/// The browser, the egress proxy every browser request goes through, and the policy.
pub struct Scraper {
    config: BrowserConfig,
    max_content_bytes: usize,
    policy: Arc<EgressPolicy>,
    browser: OnceCell<Browser>,
    proxy: Mutex<Option<EgressProxy>>,
    fetcher: OutboundClient,
    metrics: Metrics,
}

impl Scraper {
    /// A scraper as configured; nothing starts until the first page.
    pub fn new(config: &Config, metrics: Metrics) -> anyhow::Result<Arc<Self>> {
        let policy = EgressPolicy::new(&config.egress.allow).map_err(anyhow::Error::msg)?;
        let s = &config.scrape;
        let optional_path =
            |p: &std::path::Path| Some(p.to_path_buf()).filter(|p| !p.as_os_str().is_empty());
        let config = BrowserConfig {
            webdriver_url: Some(s.webdriver_url.trim().to_string()).filter(|u| !u.is_empty()),
            chromedriver: s.chromedriver.clone(),
            chromium: optional_path(&s.chromium),
            pool_size: s.pool_size,
            max_pages_per_session: s.max_pages_per_session,
            idle_timeout: s.idle_timeout,
            proxy: None,
            window: (s.window_width, s.window_height),
            sandbox: s.sandbox,
        };
        super::browser::announce_sandbox(&config);
        let policy = Arc::new(policy);
        // robots.txt, sitemaps and pages to map: plain GETs, no browser.
        let fetcher = OutboundClient::new(policy.clone(), FETCH_TIMEOUT)?;
        Ok(Arc::new(Self {
            config,
            max_content_bytes: s.max_content_bytes,
            policy,
            browser: OnceCell::new(),
            proxy: Mutex::new(None),
            fetcher,
            metrics,
        }))
    }

    /// Browser sessions `(in use, idle)`; `None` before the first scrape started the browser.
    pub fn sessions(&self) -> Option<(u64, u64)> {
        let stats = self.browser.get()?.stats();
        let (live, idle) = (stats.live_sessions as u64, stats.idle_sessions as u64);
        Some((live.saturating_sub(idle), idle))
    }

    /// The egress-checked HTTP client for documents read without the browser (robots.txt,
    /// sitemaps, pages to map).
    pub fn fetcher(&self) -> &OutboundClient {
        &self.fetcher
    }

    /// The egress policy.
    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// The egress policy, shared (the use cases check users' URLs with it).
    pub fn policy_handle(&self) -> Arc<EgressPolicy> {
        self.policy.clone()
    }

    /// The browser, started on first use behind the egress proxy.
    pub async fn browser(&self) -> Result<&Browser, PageError> {
        self.browser
            .get_or_try_init(|| async {
                let proxy = EgressProxy::start(self.policy.clone()).await.map_err(|e| {
                    PageError::DriverUnavailable(format!("starting the egress proxy: {e}"))
                })?;
                let config = BrowserConfig {
                    proxy: Some(proxy.addr()),
                    ..self.config.clone()
                };
                *self.proxy.lock().await = Some(proxy);
                Browser::start(config)
                    .await
                    .map_err(|e| PageError::DriverUnavailable(format!("{e:#}")))
            })
            .await
    }

    /// Close the browser sessions, chromedriver and the proxy, if they were started.
    pub async fn shutdown(&self) {
        if let Some(browser) = self.browser.get() {
            browser.shutdown().await;
        }
        if let Some(proxy) = self.proxy.lock().await.take() {
            proxy.shutdown().await;
        }
    }

    /// Load `scrape`'s page and keep what it asked for.
    pub(super) async fn attempt(&self, scrape: &Scrape) -> Result<Found, Failure> {
        let url = self
            .policy
            .check_url(&scrape.url)
            .map_err(Failure::egress)?;
        self.policy.resolve(&url).await.map_err(Failure::egress)?;
        let options = stored_options(scrape);
        let request = PageRequest {
            url,
            wait_for: scrape.wait_for.clone(),
            timeout: Duration::from_millis(scrape.timeout_ms.max(0) as u64),
            screenshot: scrape.screenshot,
            new_session: false,
            options: options.page_options(),
        };
        let browser = self.browser().await.map_err(Failure::page)?;
        let started = std::time::Instant::now();
        let loaded = browser.load(&request).await;
        let outcome = loaded.as_ref().map_or_else(PageError::kind, |_| "ok");
        self.metrics.scrape_page(outcome, started.elapsed());
        let page = loaded.map_err(Failure::page)?;
        // The proxy refused every request to a forbidden address; a redirect that led to one
        // ends on the refusal, which is the scrape's outcome too.
        let landed = self
            .policy
            .check_url(&page.final_url)
            .map_err(Failure::egress)?;
        if matches!(landed.scheme(), "http" | "https") {
            self.policy
                .resolve(&landed)
                .await
                .map_err(Failure::egress)?;
        }
        // Parsing a large page takes tens of milliseconds of CPU: off the async workers.
        let (formats, limit) = (scrape.formats.clone(), self.max_content_bytes);
        let (fallback, crawled) = (landed.clone(), scrape.crawl_id.is_some());
        tokio::task::spawn_blocking(move || {
            keep(&formats, &options, &fallback, page, limit, crawled)
        })
        .await
        .map_err(|e| Failure {
            kind: "navigation_failed",
            message: format!("extracting the content: {e}"),
            transient: true,
        })
    }
}

/// The scrape's stored options; a row written before they existed has the defaults.
pub(super) fn stored_options(scrape: &Scrape) -> ScrapeOptions {
    serde_json::from_value(scrape.options.clone()).unwrap_or_default()
}

/// What the scrape keeps of `page`: each asked-for format, the text its document gets (the
/// main content's, as summaries want it), and for a crawl's page the links its crawl follows.
fn keep(
    formats: &[String],
    options: &ScrapeOptions,
    landed: &url::Url,
    page: Page,
    limit: usize,
    crawled: bool,
) -> Found {
    let base = landed.clone();
    let selection = options.selection();
    let main = content::main_content(&page.html, &base, &selection);
    // The whole page's text is the browser's (it knows what CSS hides); a part's is ours.
    let whole = !selection.only_main_content && selection.include_tags.is_empty();
    let text = match whole {
        true => page.text.clone(),
        false => main.text.clone(),
    };
    // Parsed once, for the format and the crawl alike.
    let links = match crawled || formats.iter().any(|f| f == "links") {
        true => content::links(&page.html, &base),
        false => Vec::new(),
    };
    let mut kept = Map::new();
    for format in formats {
        let value = match format.as_str() {
            "markdown" => json!(cut(&main.markdown, limit)),
            "html" => json!(cut(&main.html, limit)),
            "raw_html" => json!(cut(&page.html, limit)),
            "text" => json!(cut(&text, limit)),
            "links" => json!(links),
            "metadata" => json!(content::metadata(&page.html, &base, page.status)),
            _ => continue,
        };
        kept.insert(format.clone(), value);
    }
    let ms = |v: u64| i32::try_from(v).unwrap_or(i32::MAX);
    Found {
        final_url: page.final_url,
        http_status: page.status.map(i32::from),
        title: cut(&page.title, 1000),
        content: Value::Object(kept),
        text: cut(&text, limit),
        screenshot: page.screenshot,
        action_screenshots: page.action_screenshots,
        links: match crawled {
            true => links.into_iter().map(|l| l.url).collect(),
            false => Vec::new(),
        },
        timings: (ms(page.navigate_ms), ms(page.wait_ms), ms(page.extract_ms)),
    }
}

/// `s` cut to at most `limit` bytes, on a character boundary.
fn cut(s: &str, limit: usize) -> String {
    if s.len() <= limit {
        return s.to_string();
    }
    let mut end = limit;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Every kind of failure a scrape records as its `error_kind`: the browser's
/// ([`PageError::kind`]) and the egress policy's.
pub const ERROR_KINDS: [&str; 10] = [
    "timeout",
    "selector_not_found",
    "navigation_failed",
    "driver_unavailable",
    "action_failed",
    "extraction_invalid",
    "extraction_unavailable",
    "extraction_refused",
    "blocked_by_policy",
    "invalid_url",
];

/// Why an attempt failed: a stable kind, a message, and whether another attempt may help.
pub(super) struct Failure {
    pub kind: &'static str,
    pub message: String,
    pub transient: bool,
}

impl Failure {
    pub(super) fn egress(e: EgressError) -> Self {
        let (kind, transient) = match &e {
            EgressError::Blocked { .. } => ("blocked_by_policy", false),
            EgressError::Resolve { .. } => ("navigation_failed", true),
            _ => ("invalid_url", false),
        };
        Self {
            kind,
            message: e.to_string(),
            transient,
        }
    }

    pub(super) fn extraction(e: ExtractError) -> Self {
        let (kind, transient) = match &e {
            ExtractError::Invalid(_) => ("extraction_invalid", false),
            ExtractError::Unavailable(_) => ("extraction_unavailable", true),
            ExtractError::Refused(_) => ("extraction_refused", false),
        };
        Self {
            kind,
            message: e.to_string(),
            transient,
        }
    }

    pub(super) fn page(e: PageError) -> Self {
        Self {
            kind: e.kind(),
            transient: e.transient(),
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_a_failure_can_record_is_in_error_kinds() {
        let pages = [
            PageError::Timeout(String::new()),
            PageError::SelectorNotFound(String::new()),
            PageError::NavigationFailed(String::new()),
            PageError::DriverUnavailable(String::new()),
            PageError::ActionFailed(String::new()),
        ];
        let egress = EgressError::BadUrl {
            target: "nope".into(),
            reason: "relative URL without a base".into(),
        };
        let kinds = pages
            .into_iter()
            .map(|e| Failure::page(e).kind)
            .chain([Failure::egress(egress).kind]);
        for kind in kinds {
            assert!(ERROR_KINDS.contains(&kind), "{kind} is missing");
        }
    }
}
