//! How a page is scraped besides its URL, kept with the scrape (`scrapes.options`) so the job
//! does what was asked whichever process runs it: which part of the page to keep, request
//! headers, a phone's viewport, a wait, actions before capture, a full-page screenshot.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::browser::PageOptions;
use super::browser::actions::{Action, MAX_ACTIONS, MAX_STEP_TIMEOUT, Step, key_code};
use super::content::{self, Selection};
use super::extract::Extraction;

/// Headers per scrape at most, and their total size in bytes.
pub const MAX_HEADERS: usize = 50;
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Selectors in `include_tags` and `exclude_tags` at most, each.
pub const MAX_TAGS: usize = 50;
/// The longest `wait_ms`.
pub const MAX_WAIT_MS: u32 = 30_000;
/// Headers the browser sets itself, or that would change where the request goes.
const FORBIDDEN_HEADERS: [&str; 12] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
    "expect",
    "http2-settings",
];

fn yes() -> bool {
    true
}

/// A scrape's options beyond URL, selector, timeout, screenshot and formats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrapeOptions {
    /// Keep only the page's main content (default true).
    #[serde(default = "yes")]
    pub only_main_content: bool,
    /// CSS selectors of exactly what to keep.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_tags: Vec<String>,
    /// CSS selectors of what to remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_tags: Vec<String>,
    /// Request headers (a `Cookie` header sets cookies for the page's site).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Emulate a phone.
    #[serde(default)]
    pub mobile: bool,
    /// Milliseconds to wait after the load, before actions and capture.
    #[serde(default)]
    pub wait_ms: u32,
    /// Steps before capture.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Step>,
    /// The screenshot covers the whole page.
    #[serde(default)]
    pub full_page: bool,
    /// What the `json` format extracts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extraction: Option<Extraction>,
}

impl Default for ScrapeOptions {
    fn default() -> Self {
        Self {
            only_main_content: true,
            include_tags: Vec::new(),
            exclude_tags: Vec::new(),
            headers: BTreeMap::new(),
            mobile: false,
            wait_ms: 0,
            actions: Vec::new(),
            full_page: false,
            extraction: None,
        }
    }
}

/// A value a caller sent that cannot be used: the field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub &'static str, pub String);

impl ScrapeOptions {
    /// Every value checked; the first fault found, naming its field.
    pub fn check(&self) -> Result<(), Invalid> {
        for (field, tags) in [
            ("include_tags", &self.include_tags),
            ("exclude_tags", &self.exclude_tags),
        ] {
            if tags.len() > MAX_TAGS {
                return Err(Invalid(
                    field,
                    format!("{field} takes at most {MAX_TAGS} selectors"),
                ));
            }
            if let Some(bad) = tags.iter().find(|s| !selector_ok(s)) {
                return Err(Invalid(
                    field,
                    format!("{bad:?} is not a CSS selector of 1 to 500 characters"),
                ));
            }
        }
        self.check_headers()?;
        if self.wait_ms > MAX_WAIT_MS {
            return Err(Invalid(
                "wait_ms",
                format!("wait_ms must be at most {MAX_WAIT_MS}"),
            ));
        }
        if self.actions.len() > MAX_ACTIONS {
            return Err(Invalid("actions", format!("at most {MAX_ACTIONS} actions")));
        }
        if let Some(extraction) = &self.extraction {
            extraction.check()?;
        }
        for (i, step) in self.actions.iter().enumerate() {
            check_step(step).map_err(|why| Invalid("actions", format!("step {}: {why}", i + 1)))?;
        }
        Ok(())
    }

    fn check_headers(&self) -> Result<(), Invalid> {
        let bad = |why: String| Err(Invalid("headers", why));
        if self.headers.len() > MAX_HEADERS {
            return bad(format!("at most {MAX_HEADERS} headers"));
        }
        let size: usize = self.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
        if size > MAX_HEADER_BYTES {
            return bad(format!(
                "headers must total at most {MAX_HEADER_BYTES} bytes"
            ));
        }
        for (name, value) in &self.headers {
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                return bad(format!("{name:?} is not a header name"));
            }
            let lower = name.to_ascii_lowercase();
            if FORBIDDEN_HEADERS.contains(&lower.as_str())
                || lower.starts_with("proxy-")
                || lower.starts_with("sec-")
            {
                return bad(format!("{name} is set by the browser and cannot be given"));
            }
            if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return bad(format!("the value of {name} has a line break or NUL"));
            }
        }
        Ok(())
    }

    /// Which part of the page becomes `html`, `markdown` and `text`.
    pub fn selection(&self) -> Selection {
        Selection {
            only_main_content: self.only_main_content,
            include_tags: self.include_tags.clone(),
            exclude_tags: self.exclude_tags.clone(),
        }
    }

    /// What the browser does with the page.
    pub fn page_options(&self) -> PageOptions {
        PageOptions {
            headers: self.headers.clone().into_iter().collect(),
            mobile: self.mobile,
            wait: Duration::from_millis(self.wait_ms.into()),
            actions: self.actions.clone(),
            full_page: self.full_page,
        }
    }

    /// The options as a caller may see them again: header names without their values (they
    /// may hold cookies and tokens), and `type` steps without their text.
    pub fn shown(&self) -> serde_json::Value {
        let mut shown = serde_json::to_value(self).unwrap_or_default();
        // What a `type` step types may be a password.
        for step in (shown.get_mut("actions").and_then(|a| a.as_array_mut()))
            .into_iter()
            .flatten()
        {
            if let Some(text) = step.get_mut("text") {
                *text = "…".into();
            }
        }
        if let Some(headers) = shown.get_mut("headers") {
            let names = self
                .headers
                .keys()
                .map(|k| (k.clone(), serde_json::Value::from("…")));
            *headers = serde_json::Value::Object(names.collect());
        }
        shown
    }
}

fn selector_ok(s: &str) -> bool {
    let n = s.chars().count();
    (1..=500).contains(&n) && !s.contains('\0') && content::valid_selector(s)
}

fn check_step(step: &Step) -> Result<(), String> {
    if let Some(ms) = step.timeout_ms
        && !(100..=MAX_STEP_TIMEOUT.as_millis() as u32).contains(&ms)
    {
        return Err(format!(
            "timeout_ms must be between 100 and {}",
            MAX_STEP_TIMEOUT.as_millis()
        ));
    }
    let selector = |s: &str| match selector_ok(s) {
        true => Ok(()),
        false => Err(format!(
            "{s:?} is not a CSS selector of 1 to 500 characters"
        )),
    };
    match &step.action {
        Action::Click { selector: s } => selector(s),
        Action::Type { selector: s, text } => {
            selector(s)?;
            match text.chars().count() {
                0..=10_000 => Ok(()),
                _ => Err("text must be at most 10,000 characters".into()),
            }
        }
        Action::Press { key } => key_code(key)
            .map(|_| ())
            .ok_or_else(|| format!("{key:?} is not a key: one character, or Enter, Tab, Escape, Backspace, Delete, Space, ArrowUp, ArrowDown, ArrowLeft, ArrowRight, PageUp, PageDown, Home, End, Insert")),
        Action::Wait { ms, selector: s } => match (ms, s) {
            (Some(_), Some(_)) | (None, None) => Err("wait takes either ms or selector".into()),
            (Some(ms), None) if *ms > MAX_STEP_TIMEOUT.as_millis() as u32 => {
                Err(format!("ms must be at most {}", MAX_STEP_TIMEOUT.as_millis()))
            }
            (Some(_), None) => Ok(()),
            (None, Some(s)) => selector(s),
        },
        Action::Scroll { direction, selector: s } => {
            if let Some(s) = s {
                selector(s)?;
            }
            match direction.as_deref() {
                None | Some("up") | Some("down") => Ok(()),
                Some(other) => Err(format!("direction {other:?} is neither up nor down")),
            }
        }
        Action::Screenshot { .. } => Ok(()),
    }
}

/// The key under which equal requests for a URL share a result (`max_age`): everything that
/// changes what a scrape finds.
pub fn cache_key(
    url: &str,
    wait_for: Option<&str>,
    screenshot: bool,
    formats: &[String],
    options: &ScrapeOptions,
) -> String {
    let described = serde_json::json!({
        "url": url, "wait_for": wait_for, "screenshot": screenshot, "formats": formats,
        "options": options,
    });
    hex::encode(Sha256::digest(described.to_string().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn options(value: serde_json::Value) -> ScrapeOptions {
        serde_json::from_value(value).expect("options")
    }

    #[test]
    fn stored_options_default_to_the_main_content() {
        assert_eq!(options(json!({})), ScrapeOptions::default());
        assert!(ScrapeOptions::default().only_main_content);
    }

    #[test]
    fn faults_name_the_field_and_the_step() {
        let cases = [
            (json!({"include_tags": ["div["]}), "include_tags"),
            (json!({"exclude_tags": [""]}), "exclude_tags"),
            (json!({"headers": {"Host": "evil"}}), "headers"),
            (json!({"headers": {"X-A": "a\r\nb: c"}}), "headers"),
            (json!({"headers": {"bad name": "x"}}), "headers"),
            (json!({"wait_ms": 30_001}), "wait_ms"),
            (
                json!({"actions": [{"type": "press", "key": "Hyper"}]}),
                "actions",
            ),
            (json!({"actions": [{"type": "wait"}]}), "actions"),
            (
                json!({"actions": [{"type": "click", "selector": "a", "timeout_ms": 99}]}),
                "actions",
            ),
        ];
        for (value, field) in cases {
            let got = options(value.clone()).check();
            assert_eq!(got.as_ref().map_err(|e| e.0), Err(field), "{value}");
        }
        let step = options(json!({"actions": [
            {"type": "click", "selector": "#ok"}, {"type": "scroll", "direction": "left"}
        ]}));
        let Err(Invalid(_, why)) = step.check() else {
            panic!("accepted")
        };
        assert!(why.starts_with("step 2:"), "{why}");
    }

    #[test]
    fn header_values_are_not_shown_again() {
        let o = options(json!({"headers": {"Cookie": "session=secret"}}));
        assert!(o.check().is_ok());
        assert!(!o.shown().to_string().contains("secret"));
    }

    #[test]
    fn the_cache_key_changes_with_what_changes_the_result() {
        let base = ScrapeOptions::default();
        let key = |o: &ScrapeOptions| cache_key("https://a/", None, false, &["markdown".into()], o);
        let mobile = ScrapeOptions {
            mobile: true,
            ..base.clone()
        };
        assert_eq!(key(&base), key(&base.clone()));
        assert_ne!(key(&base), key(&mobile));
    }
}
