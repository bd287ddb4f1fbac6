//! `POST /v1/scrapes`'s body: the page, what to keep of it, how to load it, and the actions
//! run before capture, each a closed object picked by its `type`.

use std::collections::BTreeMap;

use poem_openapi::{Enum, Object, Union};

use crate::api::closed::{OneOf, ScrapeFormats, strings};
use crate::scrape::browser::actions::{Action, Step};
use crate::scrape::extract::Extraction;
use crate::scrape::options::ScrapeOptions;
use crate::work::scrapes::ScrapeRequest;

/// A page to scrape.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(super) struct CreateScrape {
    /// An http or https URL, at most 2,048 characters. Private, loopback, link-local and
    /// metadata addresses are refused unless the operator allows them (`egress.allow`).
    url: String,
    /// What to keep: any of `markdown`, `html` (cleaned), `raw_html`, `text`, `links`,
    /// `metadata`, `screenshot`, `json` (with `json_options`) (default `text` and `markdown`).
    formats: Option<Vec<OneOf<ScrapeFormats>>>,
    /// Keep only the page's main content in `markdown`, `html` and `text`: no navigation,
    /// headers, footers, asides, cookie banners or ads (default true).
    only_main_content: Option<bool>,
    /// CSS selectors: keep exactly the elements they match (replaces the main-content search).
    #[oai(validator(max_items = 50))]
    include_tags: Option<Vec<String>>,
    /// CSS selectors of elements to remove before anything else.
    #[oai(validator(max_items = 50))]
    exclude_tags: Option<Vec<String>>,
    /// Wait until an element matching this CSS selector exists (at most 500 characters).
    /// Unlike Firecrawl's `waitFor` (milliseconds), this is a selector; see `wait_ms`.
    wait_for: Option<String>,
    /// Wait this many milliseconds after the page loaded (and `wait_for` matched), before the
    /// actions and the capture (at most 30,000).
    #[oai(validator(maximum(value = "30000")))]
    wait_ms: Option<u32>,
    /// Longest the page may take to load, selector included, in milliseconds (1,000 up to
    /// `scrape.max_timeout`; default `scrape.default_timeout`).
    timeout_ms: Option<u32>,
    /// Request headers sent with the page's requests, at most 50. A `Cookie` header sets
    /// cookies for the page's site only. Values are kept for the job but never shown again.
    headers: Option<BTreeMap<String, String>>,
    /// Load the page as a phone would: a 390 × 844 viewport at 3× pixels, touch, a mobile
    /// user agent.
    mobile: Option<bool>,
    /// Steps run in order after the load and before the capture (at most 50). A step that
    /// cannot be done fails the scrape with `action_failed`, naming the step.
    #[oai(validator(max_items = 50))]
    actions: Option<Vec<ScrapeAction>>,
    /// Keep a PNG screenshot (`GET /v1/scrapes/{id}/screenshot`); the same as the
    /// `screenshot` format.
    screenshot: Option<bool>,
    /// The screenshot covers the whole page (up to 16,384 pixels tall), not the viewport.
    full_page: Option<bool>,
    /// What the `json` format extracts (with a model provider configured).
    json_options: Option<JsonOptions>,
    /// Reuse your own successful scrape of the same URL with the same options if it finished
    /// less than this many milliseconds ago (at most 30 days): it comes back at once, with no
    /// browser and no charge.
    #[oai(validator(maximum(value = "2592000000")))]
    max_age: Option<u64>,
    /// When the scrape succeeds, summarise its document (a `summarise` job charging one unit
    /// of the `summarise` quota; skipped, saying why, when the quota is spent).
    summarise: Option<bool>,
    /// When the scrape finishes, tell every channel of the user, not only those subscribed to
    /// `scrapes.finished`.
    notify: Option<bool>,
}

impl CreateScrape {
    /// The request as the use case takes it.
    pub(super) fn into_request(self) -> ScrapeRequest {
        let options = ScrapeOptions {
            only_main_content: self.only_main_content.unwrap_or(true),
            include_tags: self.include_tags.unwrap_or_default(),
            exclude_tags: self.exclude_tags.unwrap_or_default(),
            headers: self.headers.unwrap_or_default(),
            mobile: self.mobile.unwrap_or(false),
            wait_ms: self.wait_ms.unwrap_or(0),
            actions: (self.actions.unwrap_or_default().into_iter())
                .map(ScrapeAction::into_step)
                .collect(),
            full_page: self.full_page.unwrap_or(false),
            extraction: self.json_options.map(JsonOptions::into_extraction),
        };
        ScrapeRequest {
            url: self.url,
            wait_for: self.wait_for,
            timeout_ms: self.timeout_ms,
            screenshot: self.screenshot.unwrap_or(false),
            formats: self.formats.map(strings),
            summarise: self.summarise.unwrap_or(false),
            notify: self.notify.unwrap_or(false),
            options,
            max_age_ms: self.max_age,
        }
    }
}

/// How each page is scraped, shared by the pages of a batch or a crawl: the fields of
/// `POST /v1/scrapes` besides `url`.
#[derive(Object, Default)]
#[oai(deny_unknown_fields)]
pub(crate) struct ScrapeOptionsBody {
    /// Formats kept per page: any of `markdown`, `html`, `raw_html`, `text`, `links`,
    /// `metadata`, `screenshot` (default `markdown`).
    formats: Option<Vec<OneOf<ScrapeFormats>>>,
    /// Only the main content (default true).
    only_main_content: Option<bool>,
    /// CSS selectors of exactly what to keep.
    #[oai(validator(max_items = 50))]
    include_tags: Option<Vec<String>>,
    /// CSS selectors of what to remove first.
    #[oai(validator(max_items = 50))]
    exclude_tags: Option<Vec<String>>,
    /// A CSS selector to wait for on each page.
    wait_for: Option<String>,
    /// Milliseconds to wait after each page loaded (at most 30,000).
    #[oai(validator(maximum(value = "30000")))]
    wait_ms: Option<u32>,
    /// Each page's load budget in milliseconds (1,000 up to `scrape.max_timeout`).
    timeout_ms: Option<u32>,
    /// Request headers for every page (a `Cookie` header sets cookies for the page's site).
    headers: Option<BTreeMap<String, String>>,
    /// Load pages as a phone would.
    mobile: Option<bool>,
    /// Steps run on every page before its capture (at most 50).
    #[oai(validator(max_items = 50))]
    actions: Option<Vec<ScrapeAction>>,
    /// Keep a screenshot of every page.
    screenshot: Option<bool>,
    /// Screenshots cover the whole page.
    full_page: Option<bool>,
    /// What the `json` format extracts from each page.
    json_options: Option<JsonOptions>,
}

/// Structured extraction: the page's main content goes to the configured model providers
/// with this schema and prompt; the answer is held to the schema (one retry with its faults,
/// then `extraction_invalid`).
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct JsonOptions {
    /// The answer's JSON Schema: `type`, `properties`, `required`, `additionalProperties`,
    /// `items`, `enum`, `const`, `minimum`/`maximum`, `minLength`/`maxLength`,
    /// `minItems`/`maxItems` and annotations (at most 32 KiB).
    schema: BTreeMap<String, serde_json::Value>,
    /// What to extract, in words (at most 4,000 characters).
    #[oai(validator(max_length = 4000))]
    prompt: Option<String>,
}

impl JsonOptions {
    fn into_extraction(self) -> Extraction {
        Extraction {
            schema: serde_json::Value::Object(self.schema.into_iter().collect()),
            prompt: self.prompt,
        }
    }
}

/// A page's scrape settings from [`ScrapeOptionsBody`].
pub(crate) struct PageSettings {
    /// Formats kept.
    pub formats: Vec<String>,
    /// Selector waited for.
    pub wait_for: Option<String>,
    /// Load budget.
    pub timeout_ms: Option<u32>,
    /// Keep a screenshot.
    pub screenshot: bool,
    /// The other options.
    pub options: ScrapeOptions,
}

impl ScrapeOptionsBody {
    /// The settings each page gets.
    pub(crate) fn into_settings(self) -> PageSettings {
        PageSettings {
            formats: self
                .formats
                .map(strings)
                .unwrap_or_else(|| vec!["markdown".into()]),
            wait_for: self.wait_for,
            timeout_ms: self.timeout_ms,
            screenshot: self.screenshot.unwrap_or(false),
            options: ScrapeOptions {
                only_main_content: self.only_main_content.unwrap_or(true),
                include_tags: self.include_tags.unwrap_or_default(),
                exclude_tags: self.exclude_tags.unwrap_or_default(),
                headers: self.headers.unwrap_or_default(),
                mobile: self.mobile.unwrap_or(false),
                wait_ms: self.wait_ms.unwrap_or(0),
                actions: (self.actions.unwrap_or_default().into_iter())
                    .map(ScrapeAction::into_step)
                    .collect(),
                full_page: self.full_page.unwrap_or(false),
                extraction: self.json_options.map(JsonOptions::into_extraction),
            },
        }
    }
}

/// One step before capture, picked by `type`.
#[derive(Union)]
#[oai(discriminator_name = "type", one_of)]
pub(crate) enum ScrapeAction {
    /// Click an element.
    #[oai(mapping = "click")]
    Click(ClickAction),
    /// Type into an element.
    #[oai(mapping = "type")]
    Type(TypeAction),
    /// Press a key.
    #[oai(mapping = "press")]
    Press(PressAction),
    /// Wait a while, or for an element.
    #[oai(mapping = "wait")]
    Wait(WaitAction),
    /// Scroll.
    #[oai(mapping = "scroll")]
    Scroll(ScrollAction),
    /// Take a screenshot.
    #[oai(mapping = "screenshot")]
    Screenshot(ScreenshotAction),
}

macro_rules! tag {
    ($name:ident, $value:ident) => {
        /// The step's type.
        #[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
        #[oai(rename_all = "lowercase")]
        pub(crate) enum $name {
            /// The only value.
            $value,
        }
    };
}
tag!(ClickTag, Click);
tag!(TypeTag, Type);
tag!(PressTag, Press);
tag!(WaitTag, Wait);
tag!(ScrollTag, Scroll);
tag!(ScreenshotTag, Screenshot);

/// Click the first element matching `selector`, waiting for it to appear.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct ClickAction {
    #[oai(rename = "type")]
    _kind: ClickTag,
    /// CSS selector.
    #[oai(validator(min_length = 1, max_length = 500))]
    selector: String,
    /// Longest the step may take, 100 to 30,000 ms (default 5,000).
    #[oai(validator(minimum(value = "100"), maximum(value = "30000")))]
    timeout_ms: Option<u32>,
}

/// Click the first element matching `selector`, then type `text` into it.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct TypeAction {
    #[oai(rename = "type")]
    _kind: TypeTag,
    /// CSS selector.
    #[oai(validator(min_length = 1, max_length = 500))]
    selector: String,
    /// What to type, at most 10,000 characters.
    #[oai(validator(max_length = 10000))]
    text: String,
    /// Longest the step may take, 100 to 30,000 ms (default 5,000).
    #[oai(validator(minimum(value = "100"), maximum(value = "30000")))]
    timeout_ms: Option<u32>,
}

/// Press a key in the focused element: `Enter`, `Tab`, `Escape`, `Backspace`, `Delete`,
/// `Space`, `ArrowUp`, `ArrowDown`, `ArrowLeft`, `ArrowRight`, `PageUp`, `PageDown`, `Home`,
/// `End`, `Insert`, or one character.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct PressAction {
    #[oai(rename = "type")]
    _kind: PressTag,
    /// The key.
    #[oai(validator(min_length = 1, max_length = 20))]
    key: String,
    /// Longest the step may take, 100 to 30,000 ms (default 5,000).
    #[oai(validator(minimum(value = "100"), maximum(value = "30000")))]
    timeout_ms: Option<u32>,
}

/// Wait `ms` milliseconds, or until an element matches `selector` (one of the two).
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct WaitAction {
    #[oai(rename = "type")]
    _kind: WaitTag,
    /// Milliseconds, at most 30,000.
    #[oai(validator(maximum(value = "30000")))]
    ms: Option<u32>,
    /// CSS selector to wait for.
    #[oai(validator(min_length = 1, max_length = 500))]
    selector: Option<String>,
    /// Longest a wait for `selector` may take, 100 to 30,000 ms (default 5,000).
    #[oai(validator(minimum(value = "100"), maximum(value = "30000")))]
    timeout_ms: Option<u32>,
}

/// Which way `scroll` goes.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub(crate) enum ScrollDirection {
    /// One screen down.
    Down,
    /// One screen up.
    Up,
}

/// Scroll one screen `down` (default) or `up`, or bring the element matching `selector`
/// into view.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct ScrollAction {
    #[oai(rename = "type")]
    _kind: ScrollTag,
    /// `down` or `up`.
    direction: Option<ScrollDirection>,
    /// CSS selector to scroll into view.
    #[oai(validator(min_length = 1, max_length = 500))]
    selector: Option<String>,
    /// Longest the step may take, 100 to 30,000 ms (default 5,000).
    #[oai(validator(minimum(value = "100"), maximum(value = "30000")))]
    timeout_ms: Option<u32>,
}

/// Keep a screenshot of the page as it is at this step
/// (`GET /v1/scrapes/{id}/screenshots/{n}`, `n` counting from 1).
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct ScreenshotAction {
    #[oai(rename = "type")]
    _kind: ScreenshotTag,
    /// The whole page rather than the viewport.
    full_page: Option<bool>,
    /// Longest the step may take, 100 to 30,000 ms (default 5,000).
    #[oai(validator(minimum(value = "100"), maximum(value = "30000")))]
    timeout_ms: Option<u32>,
}

impl ScrapeAction {
    fn into_step(self) -> Step {
        let (action, timeout_ms) = match self {
            Self::Click(a) => (
                Action::Click {
                    selector: a.selector,
                },
                a.timeout_ms,
            ),
            Self::Type(a) => (
                Action::Type {
                    selector: a.selector,
                    text: a.text,
                },
                a.timeout_ms,
            ),
            Self::Press(a) => (Action::Press { key: a.key }, a.timeout_ms),
            Self::Wait(a) => (
                Action::Wait {
                    ms: a.ms,
                    selector: a.selector,
                },
                a.timeout_ms,
            ),
            Self::Scroll(a) => {
                let direction = a.direction.map(|d| match d {
                    ScrollDirection::Down => "down".to_string(),
                    ScrollDirection::Up => "up".to_string(),
                });
                let selector = a.selector;
                (
                    Action::Scroll {
                        direction,
                        selector,
                    },
                    a.timeout_ms,
                )
            }
            Self::Screenshot(a) => (
                Action::Screenshot {
                    full_page: a.full_page.unwrap_or(false),
                },
                a.timeout_ms,
            ),
        };
        Step { action, timeout_ms }
    }
}
