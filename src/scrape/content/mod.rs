//! What a scrape keeps of a rendered page, made from its DOM after the browser is done with it:
//! the main content as cleaned HTML, Markdown and text (`main`), its links (`links`) and its
//! metadata (`metadata`). Pure functions of the HTML and the page's address, so they are tested
//! on saved pages without a browser.

mod links;
mod main_content;
mod metadata;

use serde::{Deserialize, Serialize};
use url::Url;

pub use links::{Link, links};
pub use main_content::{MainContent, main_content};
pub use metadata::{Metadata, metadata};

/// Which part of the page becomes `html`, `markdown` and `text`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// Only the main content, without navigation, headers, footers, asides, cookie banners and
    /// ads (the default); `false`: the whole body, without scripts and styles.
    pub only_main_content: bool,
    /// CSS selectors: when any is given, exactly the elements they match, in document order.
    pub include_tags: Vec<String>,
    /// CSS selectors of elements removed first (before the main content is looked for).
    pub exclude_tags: Vec<String>,
}

/// Whether `selector` is a CSS selector the extraction can use.
pub fn valid_selector(selector: &str) -> bool {
    dom_query::Matcher::new(selector).is_ok()
}

/// `url`'s form for a document whose address is `base`: absolute, http(s) only, without the
/// fragment; `None` for `javascript:`, `mailto:`, data and unparsable references.
pub(crate) fn absolute(base: &Url, href: &str) -> Option<Url> {
    let href = href.trim();
    if href.is_empty() {
        return None;
    }
    let mut url = base.join(href).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    url.set_fragment(None);
    Some(url)
}

/// The address relative references resolve against: the document's `<base href>` when it has
/// one, else the page's own address.
pub(crate) fn base_of(doc: &dom_query::Document, page: &Url) -> Url {
    doc.select("base[href]")
        .attr("href")
        .and_then(|href| page.join(href.trim()).ok())
        .filter(|url| matches!(url.scheme(), "http" | "https"))
        .unwrap_or_else(|| page.clone())
}

/// Text with runs of whitespace made one space, trimmed.
pub(crate) fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
