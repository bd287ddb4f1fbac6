//! One page load on one session: navigate, wait for the selector, extract; and how WebDriver
//! errors become [`PageError`]s (and whether the session survives them).

use std::time::{Duration, Instant};

use fantoccini::error::{CmdError, ErrorStatus};
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, Locator};
use serde_json::{Value, json};
use tracing::Instrument;

use super::session::Session;
use super::{MAX_CONTENT_BYTES, Page, PageError, PageRequest, actions, emulation, shots};
use crate::egress::span::{Path, redacted_url};

/// chromedriver enforces the page-load timeout itself; ours only catches a driver that hangs.
const DRIVER_GRACE: Duration = Duration::from_secs(5);
/// How often the selector is looked for (fantoccini's default is 250 ms).
const WAIT_POLL: Duration = Duration::from_millis(50);
/// The selector is looked for at least once, even when navigation used up the budget.
const MIN_WAIT: Duration = Duration::from_millis(10);
/// Title, content and screenshot of a loaded page take well under a second.
const EXTRACT_TIMEOUT: Duration = Duration::from_secs(20);

/// Returns the navigation entry's status (Chromium's WebDriver does not report it), the
/// address (an error page shows as `chrome-error://`), and the content cut to `arguments[0]`
/// UTF-16 units (never splitting a surrogate pair) so huge pages do not cross the wire whole.
const EXTRACT_JS: &str = r#"
const cap = arguments[0];
const clip = (s) => {
  if (s.length <= cap) return s;
  s = s.slice(0, cap);
  const last = s.charCodeAt(s.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? s.slice(0, -1) : s;
};
const nav = performance.getEntriesByType('navigation')[0];
return {
  href: location.href,
  status: nav && nav.responseStatus ? nav.responseStatus : null,
  html: clip(document.documentElement ? document.documentElement.outerHTML : ''),
  text: clip(document.body ? document.body.innerText : ''),
};
"#;

/// A failed load, and whether its session must be closed rather than reused.
#[derive(Debug)]
pub(super) struct Failure {
    pub error: PageError,
    pub discard: bool,
}

impl Failure {
    /// The browser answered normally: the session is fine.
    pub(super) fn keep(error: PageError) -> Self {
        Self {
            error,
            discard: false,
        }
    }

    /// The session may be dead, hung or mid-navigation.
    pub(super) fn discard(error: PageError) -> Self {
        Self {
            error,
            discard: true,
        }
    }
}

/// Navigate to the page, wait for its selector, and extract what it shows.
pub(super) async fn load(session: &mut Session, req: &PageRequest) -> Result<Page, Failure> {
    let deadline = Instant::now() + req.timeout;
    // Recorded first: whatever happens next, the origin's state gets cleared.
    session
        .touched
        .insert(req.url.origin().ascii_serialization());
    if session.page_load_timeout != Some(req.timeout) {
        let timeouts = TimeoutConfiguration::new(None, Some(req.timeout), None);
        session
            .client
            .update_timeouts(timeouts)
            .await
            .map_err(|e| classify(e, "setting the page-load timeout"))?;
        session.page_load_timeout = Some(req.timeout);
    }
    let client = &session.client;
    if req.options.alter_session() {
        emulation::apply(client, &req.url, &req.options).await?;
    }

    let started = Instant::now();
    // The query may carry a user's secrets (tokens, signed links): traces show the page only.
    let span = tracing::info_span!("navigate", url = %redacted_url(&req.url, Path::Shown));
    let navigation =
        tokio::time::timeout(req.timeout + DRIVER_GRACE, client.goto(req.url.as_str()))
            .instrument(span)
            .await;
    match navigation {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(classify(e, "navigating")),
        Err(_) => {
            return Err(Failure::discard(timed_out(
                req,
                "the driver did not answer",
            )));
        }
    }
    let navigate_ms = millis(started.elapsed());

    let started = Instant::now();
    if let Some(selector) = &req.wait_for {
        let remaining = deadline.saturating_duration_since(started).max(MIN_WAIT);
        let span = tracing::info_span!("wait for selector", selector = %selector);
        let wait = client
            .wait()
            .at_most(remaining)
            .every(WAIT_POLL)
            .for_element(Locator::Css(selector));
        match tokio::time::timeout(remaining + DRIVER_GRACE, wait)
            .instrument(span)
            .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(CmdError::WaitTimeout)) => {
                return Err(Failure::keep(PageError::SelectorNotFound(format!(
                    "`{selector}` did not appear within {} ms",
                    millis(req.timeout)
                ))));
            }
            Ok(Err(e)) if e.is_invalid_selector() => {
                return Err(Failure::keep(PageError::SelectorNotFound(format!(
                    "`{selector}` is not a valid CSS selector"
                ))));
            }
            Ok(Err(e)) => return Err(classify(e, "waiting for the selector")),
            Err(_) => return Err(Failure::discard(timed_out(req, "waiting for the selector"))),
        }
    }
    if !req.options.wait.is_zero() {
        tokio::time::sleep(req.options.wait).await;
    }
    let mut action_screenshots = Vec::new();
    if !req.options.actions.is_empty() {
        let span = tracing::info_span!("actions", steps = req.options.actions.len());
        actions::run(client, &req.options.actions, &mut action_screenshots)
            .instrument(span)
            .await?;
    }
    let wait_ms = millis(started.elapsed());

    let started = Instant::now();
    let span = tracing::info_span!("extract", screenshot = req.screenshot);
    let extracted = tokio::time::timeout(EXTRACT_TIMEOUT, extract(client, req))
        .instrument(span)
        .await
        .map_err(|_| {
            Failure::discard(PageError::Timeout(format!(
                "extracting the page took over {} s",
                EXTRACT_TIMEOUT.as_secs()
            )))
        })??;
    let current = tracing::Span::current();
    if let Ok(final_url) = url::Url::parse(&extracted.final_url) {
        current.record("final_url", redacted_url(&final_url, Path::Shown));
    }
    if let Some(status) = extracted.status {
        current.record("status", status);
    }
    Ok(Page {
        extract_ms: millis(started.elapsed()),
        navigate_ms,
        wait_ms,
        action_screenshots,
        ..extracted
    })
}

/// Address, status, title, content and (if asked) a screenshot of the loaded page.
async fn extract(client: &Client, req: &PageRequest) -> Result<Page, Failure> {
    let final_url = client
        .current_url()
        .await
        .map_err(|e| classify(e, "reading the address"))?;
    let content = client
        .execute(EXTRACT_JS, vec![json!(MAX_CONTENT_BYTES)])
        .await
        .map_err(|e| classify(e, "extracting the content"))?;
    let field = |name: &str| {
        content
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let text = cut(field("text"), MAX_CONTENT_BYTES);
    if field("href").starts_with("chrome-error:") {
        return Err(Failure::keep(PageError::NavigationFailed(error_page(
            &text, &req.url,
        ))));
    }
    let html = cut(field("html"), MAX_CONTENT_BYTES);
    let status = content
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| *s != 0);
    let title = client
        .title()
        .await
        .map_err(|e| classify(e, "reading the title"))?;
    let screenshot = if req.screenshot {
        let png = shots::capture(client, req.options.full_page)
            .await
            .map_err(|e| match e {
                shots::ShotError::Driver(e) => classify(e, "taking the screenshot"),
                other => Failure::keep(PageError::NavigationFailed(other.to_string())),
            })?;
        Some(png)
    } else {
        None
    };
    Ok(Page {
        final_url: final_url.to_string(),
        status,
        title,
        html,
        text,
        screenshot,
        action_screenshots: Vec::new(),
        navigate_ms: 0,
        wait_ms: 0,
        extract_ms: 0,
    })
}

fn timed_out(req: &PageRequest, what: &str) -> PageError {
    PageError::Timeout(format!(
        "{} not loaded within {} ms ({what})",
        req.url,
        millis(req.timeout)
    ))
}

/// Chromium's error page names the network error (`ERR_CONNECTION_REFUSED`) in its text.
fn error_page(text: &str, url: &url::Url) -> String {
    let code = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find(|word| word.starts_with("ERR_"));
    match code {
        Some(code) => format!("net::{code} loading {url}"),
        None => format!("Chromium showed an error page for {url}"),
    }
}

/// What a WebDriver error means for the page, and for the session that produced it.
pub(super) fn classify(e: CmdError, doing: &str) -> Failure {
    let CmdError::Standard(w) = &e else {
        return match e {
            CmdError::Failed(_) | CmdError::FailedC(_) | CmdError::Lost(_) => {
                Failure::discard(PageError::DriverUnavailable(format!("{doing}: {e}")))
            }
            CmdError::NotJson(_) | CmdError::NotW3C(_) | CmdError::Json(_) => {
                Failure::discard(PageError::DriverUnavailable(format!("{doing}: {e}")))
            }
            _ => Failure::discard(PageError::NavigationFailed(format!("{doing}: {e}"))),
        };
    };
    // chromedriver appends "(Session info: chrome=…)" and more on further lines.
    let message = w.message.lines().next().unwrap_or_default().trim();
    if w.error == ErrorStatus::Timeout || w.error == ErrorStatus::ScriptTimeout {
        return Failure::discard(PageError::Timeout(format!("{doing}: {message}")));
    }
    if session_is_dead(&w.error, message) {
        return Failure::discard(PageError::DriverUnavailable(format!("{doing}: {message}")));
    }
    if let Some(at) = message.find("net::ERR_") {
        return Failure::keep(PageError::NavigationFailed(message[at..].to_string()));
    }
    if w.error == ErrorStatus::InvalidArgument {
        return Failure::keep(PageError::NavigationFailed(format!("{doing}: {message}")));
    }
    // Unknown trouble: report it, but do not trust the session with another page.
    Failure::discard(PageError::NavigationFailed(format!("{doing}: {message}")))
}

/// The session (or its browser) is gone: chromedriver's wording for a crashed or closed tab
/// or browser, besides the standard codes.
fn session_is_dead(status: &ErrorStatus, message: &str) -> bool {
    const DEAD: [&str; 7] = [
        "session deleted",
        "not connected to devtools",
        "chrome not reachable",
        "disconnected",
        "tab crashed",
        "target frame detached",
        "cannot connect to chrome",
    ];
    let message = message.to_ascii_lowercase();
    matches!(
        status,
        ErrorStatus::InvalidSessionId | ErrorStatus::NoSuchWindow | ErrorStatus::SessionNotCreated
    ) || DEAD.iter().any(|phrase| message.contains(phrase))
}

/// Network trouble that may pass: refused, reset or timed-out connections, a lost network, a
/// proxy that is down. DNS names that do not exist, certificates and blocked tunnels are not.
pub(super) fn looks_like_network_error(message: &str) -> bool {
    const TRANSIENT: [&str; 9] = [
        "ERR_CONNECTION_",
        "ERR_TIMED_OUT",
        "ERR_NETWORK_",
        "ERR_INTERNET_DISCONNECTED",
        "ERR_ADDRESS_UNREACHABLE",
        "ERR_EMPTY_RESPONSE",
        "ERR_NAME_RESOLUTION_FAILED",
        "ERR_PROXY_CONNECTION_FAILED",
        "ERR_SOCKET_NOT_CONNECTED",
    ];
    TRANSIENT.iter().any(|code| message.contains(code))
}

/// At most `max` bytes of `s`, cut on a character boundary.
fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_short_text_and_cuts_long_text_on_a_char_boundary() {
        assert_eq!(cut("hello", 10), "hello");
        assert_eq!(cut("hello", 3), "hel");
        // "é" is two bytes: a cut in its middle drops it whole.
        assert_eq!(cut("aé", 2), "a");
        assert_eq!(cut("😀x", 3), "");
    }

    #[test]
    fn network_errors_are_transient_and_dns_or_tls_errors_are_not() {
        for message in [
            "net::ERR_CONNECTION_REFUSED",
            "net::ERR_CONNECTION_RESET",
            "net::ERR_TIMED_OUT",
            "net::ERR_PROXY_CONNECTION_FAILED",
        ] {
            assert!(
                PageError::NavigationFailed(message.into()).transient(),
                "{message}"
            );
        }
        for message in [
            "net::ERR_NAME_NOT_RESOLVED",
            "net::ERR_CERT_AUTHORITY_INVALID",
            "net::ERR_TUNNEL_CONNECTION_FAILED",
        ] {
            assert!(
                !PageError::NavigationFailed(message.into()).transient(),
                "{message}"
            );
        }
        assert!(PageError::Timeout(String::new()).transient());
        assert!(PageError::DriverUnavailable(String::new()).transient());
        assert!(!PageError::SelectorNotFound(String::new()).transient());
    }

    #[test]
    fn kinds_are_stable_snake_case_names() {
        let kinds = [
            PageError::Timeout(String::new()).kind(),
            PageError::SelectorNotFound(String::new()).kind(),
            PageError::NavigationFailed(String::new()).kind(),
            PageError::DriverUnavailable(String::new()).kind(),
        ];
        assert_eq!(
            kinds,
            [
                "timeout",
                "selector_not_found",
                "navigation_failed",
                "driver_unavailable"
            ]
        );
    }

    #[test]
    fn connection_errors_mean_the_driver_is_unavailable() {
        let lost = CmdError::Lost(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let failure = classify(lost, "navigating");
        assert!(failure.discard);
        assert_eq!(failure.error.kind(), "driver_unavailable");
    }

    #[test]
    fn error_page_names_the_network_error() {
        let url = url::Url::parse("http://127.0.0.1:9/").expect("a URL");
        let text =
            "This site can’t be reached\n\n127.0.0.1 refused to connect.\n\nERR_CONNECTION_REFUSED";
        assert_eq!(
            error_page(text, &url),
            "net::ERR_CONNECTION_REFUSED loading http://127.0.0.1:9/"
        );
        assert_eq!(
            error_page("nothing", &url),
            "Chromium showed an error page for http://127.0.0.1:9/"
        );
    }
}
