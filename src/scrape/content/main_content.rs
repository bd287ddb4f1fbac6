//! The part of a page a reader came for, as cleaned HTML, Markdown and text.
//!
//! Readability-style: the page is stripped of what is never content (scripts, styles, hidden
//! elements, navigation, cookie and consent dialogs, ad slots, share and newsletter widgets),
//! then `dom_smoothie` (a Rust port of Mozilla's Readability, the algorithm behind Firefox's
//! reader view) scores the remaining blocks by text length, punctuation, link density and
//! class names, and keeps the best one with its related siblings. Where Readability finds no
//! article (a page of short blocks), the stripped body is kept instead, so something always
//! comes back. `include_tags` replaces the scoring by exact selectors; `exclude_tags` strips
//! more first.

use dom_query::{Document, Matcher};
use url::Url;

use super::{Selection, absolute, base_of};

/// Never content, whatever the options: removed before anything else.
const NEVER_CONTENT: &str = "script, style, noscript, template, link, meta, object, embed, \
    iframe, canvas, svg, [hidden], [aria-hidden=\"true\"], [style*=\"display:none\" i], \
    [style*=\"display: none\" i], [style*=\"visibility:hidden\" i], \
    [style*=\"visibility: hidden\" i]";

/// Page chrome that readers skip: removed for `only_main_content`. Class and id patterns are
/// whole words or prefixes (`ad-`, not `ad`, which `header` and `thread` contain). Comments and
/// reviews are the readers', not the page's: their usual containers go too.
const CHROME: &str = "nav, [role=\"navigation\"], [role=\"banner\"], [role=\"contentinfo\"], \
    [role=\"dialog\"], [role=\"alertdialog\"], [aria-modal=\"true\"], [role=\"complementary\"], \
    body > header, body > footer, aside, \
    [id*=\"cookie\" i], [class*=\"cookie\" i], [id*=\"consent\" i], [class*=\"consent\" i], \
    [id*=\"gdpr\" i], [class*=\"gdpr\" i], [class*=\"newsletter\" i], [id*=\"newsletter\" i], \
    [class~=\"ad\"], [class~=\"ads\"], [class^=\"ad-\"], [class*=\" ad-\"], [id^=\"ad-\"], \
    [class*=\"advert\" i], [id*=\"advert\" i], [class*=\"sponsor\" i], [class*=\"adsbygoogle\"], \
    [class*=\"share\" i], [class*=\"social\" i], [class*=\"breadcrumb\" i], \
    [class*=\"skip-link\" i], [class*=\"popup\" i], [class*=\"modal\" i], \
    [class*=\"comments\" i], [id=\"comments\" i], [class*=\"related\" i], [id*=\"related\" i], \
    [id=\"reviews\" i], [id*=\"customer-review\" i], [class*=\"review-widget\" i]";

/// Readability found less text than this: a page of short blocks, keep the stripped body.
const MIN_ARTICLE_CHARS: usize = 140;

/// What `html`, `markdown` and `text` hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MainContent {
    /// Cleaned HTML: no scripts, styles or hidden elements; links and images absolute.
    pub html: String,
    /// The same as Markdown.
    pub markdown: String,
    /// The same as text: blocks separated by blank lines.
    pub text: String,
}

/// The content of the document `html` at `page` that `selection` asks for.
pub fn main_content(html: &str, page: &Url, selection: &Selection) -> MainContent {
    let doc = Document::from(html);
    let base = base_of(&doc, page);
    remove(&doc, NEVER_CONTENT);
    for selector in &selection.exclude_tags {
        remove(&doc, selector);
    }
    let kept = if !selection.include_tags.is_empty() {
        included(&doc, &selection.include_tags)
    } else if selection.only_main_content {
        remove(&doc, CHROME);
        article(&doc, &base).unwrap_or_else(|| body(&doc))
    } else {
        body(&doc)
    };
    finish(&kept, &base)
}

/// Remove every element `selector` matches (nothing when it is not valid CSS).
fn remove(doc: &Document, selector: &str) {
    if let Ok(matcher) = Matcher::new(selector) {
        doc.select_matcher(&matcher).remove();
    }
}

/// The outer HTML of every element the selectors match, outermost only, in document order.
fn included(doc: &Document, selectors: &[String]) -> String {
    let valid: Vec<&str> = (selectors.iter())
        .map(String::as_str)
        .filter(|s| Matcher::new(s).is_ok())
        .collect();
    let Ok(matcher) = Matcher::new(&valid.join(", ")) else {
        return String::new();
    };
    let matched = doc.select_matcher(&matcher);
    let ids: std::collections::HashSet<_> = matched.nodes().iter().map(|n| n.id).collect();
    let mut out = String::new();
    for node in matched.nodes() {
        let nested = node.ancestors_it(None).any(|a| ids.contains(&a.id));
        if !nested {
            out.push_str(&node.html());
            out.push('\n');
        }
    }
    out
}

/// Readability's article, when it finds one worth the name.
fn article(doc: &Document, base: &Url) -> Option<String> {
    let config = dom_smoothie::Config {
        max_elements_to_parse: 200_000,
        ..Default::default()
    };
    let copy = Document::from(doc.html());
    let mut readability =
        dom_smoothie::Readability::with_document(copy, Some(base.as_str()), Some(config)).ok()?;
    let article = readability.parse().ok()?;
    let chars = article
        .text_content
        .split_whitespace()
        .map(str::len)
        .sum::<usize>();
    (chars >= MIN_ARTICLE_CHARS).then(|| article.content.to_string())
}

fn body(doc: &Document) -> String {
    let body = doc.select("body");
    match body.exists() {
        true => body.inner_html().to_string(),
        false => doc.html().to_string(),
    }
}

/// Links and images made absolute, then the three forms.
fn finish(html: &str, base: &Url) -> MainContent {
    let fragment = Document::fragment(html);
    for (selector, attribute) in [("a[href]", "href"), ("img[src]", "src")] {
        for node in fragment.select(selector).iter() {
            let value = node.attr(attribute).unwrap_or_default();
            match absolute(base, &value) {
                Some(url) => node.set_attr(attribute, url.as_str()),
                None if attribute == "href" && !value.trim_start().starts_with('#') => {
                    node.remove_attr(attribute)
                }
                None => {}
            }
        }
    }
    fragment
        .select("img[srcset], source[srcset]")
        .remove_attr("srcset");
    let html = fragment.html().to_string();
    let markdown = htmd::convert(&html).unwrap_or_default();
    let text = fragment.formatted_text().trim().to_string();
    MainContent {
        html,
        markdown,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<html><head><title>T</title><style>p{}</style></head><body>
        <header><a href="/">Logo</a><nav><a href="/a">Menu entry</a></nav></header>
        <div id="cookie-banner">We use cookies. <button>Accept</button></div>
        <div class="ad-slot">Buy things now</div>
        <main><article><h1>The heading</h1>
        <p>First paragraph of the article, long enough to count as real prose, with a
        <a href="more.html">relative link</a> and some more words, commas, and sentences.</p>
        <p>Second paragraph, also of some length, so that the article is clearly the largest
        block of text on the page, which is what a reader came for, after all, isn't it.</p>
        <p hidden>Hidden text</p>
        <script>var tracking = 1;</script>
        </article></main>
        <aside>Related links</aside>
        <footer>Copyright footer</footer></body></html>"#;

    fn page() -> Url {
        Url::parse("https://example.com/blog/post").expect("a URL")
    }

    fn main_only() -> Selection {
        Selection {
            only_main_content: true,
            ..Default::default()
        }
    }

    #[test]
    fn main_content_drops_the_chrome_and_keeps_the_article() {
        let got = main_content(PAGE, &page(), &main_only());
        for kept in ["First paragraph", "Second paragraph", "The heading"] {
            assert!(
                got.text.contains(kept),
                "{kept} missing from {:?}",
                got.text
            );
            assert!(
                got.markdown.contains(kept),
                "{kept} missing from the Markdown"
            );
        }
        for dropped in [
            "Menu entry",
            "We use cookies",
            "Buy things",
            "Related links",
            "Copyright",
            "Hidden text",
            "tracking",
        ] {
            assert!(
                !got.text.contains(dropped),
                "{dropped} kept in {:?}",
                got.text
            );
            assert!(!got.html.contains(dropped), "{dropped} kept in the HTML");
        }
        assert!(
            got.html
                .contains(r#"href="https://example.com/blog/more.html""#),
            "{}",
            got.html
        );
    }

    #[test]
    fn the_whole_body_is_kept_without_scripts_when_asked() {
        let got = main_content(PAGE, &page(), &Selection::default());
        for kept in [
            "Menu entry",
            "We use cookies",
            "Copyright footer",
            "First paragraph",
        ] {
            assert!(got.text.contains(kept), "{kept} missing");
        }
        assert!(!got.html.contains("tracking") && !got.html.contains("Hidden text"));
    }

    #[test]
    fn include_and_exclude_tags_override_the_scoring() {
        let selection = Selection {
            only_main_content: true,
            include_tags: vec!["article".into(), "h1".into(), "footer".into()],
            exclude_tags: vec!["p:first-of-type".into()],
        };
        let got = main_content(PAGE, &page(), &selection);
        assert!(got.text.contains("Copyright footer"));
        assert!(!got.text.contains("First paragraph"));
        assert_eq!(
            got.text.matches("The heading").count(),
            1,
            "nested matches kept twice"
        );
    }

    #[test]
    fn a_page_without_an_article_keeps_its_stripped_body() {
        let html = "<body><nav>Menu</nav><div>Short</div><div>Blocks</div></body>";
        let got = main_content(html, &page(), &main_only());
        assert!(got.text.contains("Short") && got.text.contains("Blocks"));
        assert!(!got.text.contains("Menu"));
    }
}
