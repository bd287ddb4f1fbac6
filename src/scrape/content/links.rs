//! The links of a page: absolute http(s) addresses without fragments, each once, in document
//! order, with the anchor text (the first non-empty one seen for that address).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use url::Url;

use super::{absolute, base_of, squash};

/// Links kept per page at most; a page with more (a sitemap-like index) keeps the first ones.
pub const MAX_LINKS: usize = 5_000;

/// One link of a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The absolute address, without the fragment.
    pub url: String,
    /// The anchor's text (or its `title` / image `alt` when it has none), trimmed; may be empty.
    pub text: String,
}

/// The links of the document `html` served at `page`.
pub fn links(html: &str, page: &Url) -> Vec<Link> {
    let doc = dom_query::Document::from(html);
    let base = base_of(&doc, page);
    let mut out: Vec<Link> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for anchor in doc.select("a[href], area[href]").iter() {
        let Some(url) = anchor.attr("href").and_then(|h| absolute(&base, &h)) else {
            continue;
        };
        let mut text = squash(&anchor.text());
        if text.is_empty() {
            let fallback = anchor
                .attr("title")
                .or_else(|| anchor.select("img[alt]").attr("alt"))
                .unwrap_or_default();
            text = squash(&fallback);
        }
        let url = String::from(url);
        match seen.get(&url) {
            Some(&at) => {
                if out[at].text.is_empty() {
                    out[at].text = text;
                }
            }
            None if out.len() < MAX_LINKS => {
                seen.insert(url.clone(), out.len());
                out.push(Link { url, text });
            }
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Url {
        Url::parse("https://example.com/docs/a.html").expect("a URL")
    }

    #[test]
    fn links_are_absolute_deduplicated_and_keep_their_text() {
        let html = r##"<html><body>
            <a href="b.html">Next page</a>
            <a href="/b.html">Root page</a>
            <a href="b.html#part">  Next
               again </a>
            <a href="https://other.org/x?q=1"><img alt="Other site"></a>
            <a href="#top">Top</a>
            <a href="mailto:me@example.com">Mail</a>
            <a href="javascript:void(0)">Nothing</a>
            <a href="">Empty</a>
        </body></html>"##;
        let found = links(html, &page());
        let urls: Vec<&str> = found.iter().map(|l| l.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://example.com/docs/b.html",
                "https://example.com/b.html",
                "https://other.org/x?q=1",
                "https://example.com/docs/a.html",
            ]
        );
        assert_eq!(found[0].text, "Next page");
        assert_eq!(found[2].text, "Other site");
        assert_eq!(found[3].text, "Top");
    }

    #[test]
    fn a_base_element_moves_relative_links() {
        let html = r#"<html><head><base href="https://cdn.example.net/v2/"></head>
            <body><a href="guide.html">Guide</a></body></html>"#;
        assert_eq!(
            links(html, &page())[0].url,
            "https://cdn.example.net/v2/guide.html"
        );
    }

    #[test]
    fn an_empty_text_is_filled_by_a_later_anchor_to_the_same_address() {
        let html = r#"<a href="/x"></a><a href="/x">Named</a>"#;
        let found = links(html, &page());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].text, "Named");
    }
}
