//! A page's metadata: title, description, language, canonical address, status, final address,
//! and every Open Graph (`og:*`) and Twitter card (`twitter:*`) property.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use url::Url;

use super::{absolute, base_of, squash};

/// Longest value kept for one property, in characters.
const MAX_VALUE_CHARS: usize = 2_000;
/// Properties kept per family (`og`, `twitter`) at most.
const MAX_PROPERTIES: usize = 100;

/// What a page says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// `<title>`, else `og:title`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `<meta name="description">`, else `og:description`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `<html lang>`, else `<meta http-equiv="content-language">`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// `<link rel="canonical">`, absolute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canonical_url: Option<String>,
    /// The HTTP status of the main document, when the browser could tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// The address after redirects.
    pub final_url: String,
    /// Every `og:*` property, by its full name (`og:title`); a repeated one keeps its first value.
    pub og: BTreeMap<String, String>,
    /// Every `twitter:*` property, by its full name (`twitter:card`).
    pub twitter: BTreeMap<String, String>,
}

/// The metadata of the document `html` whose address after redirects is `page`.
pub fn metadata(html: &str, page: &Url, status_code: Option<u16>) -> Metadata {
    let doc = dom_query::Document::from(html);
    let mut og = BTreeMap::new();
    let mut twitter = BTreeMap::new();
    for meta in doc.select("meta").iter() {
        let Some(name) = meta.attr("property").or_else(|| meta.attr("name")) else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        let family = match name.split(':').next() {
            Some("og") => &mut og,
            Some("twitter") => &mut twitter,
            _ => continue,
        };
        let value = clip(&squash(&meta.attr("content").unwrap_or_default()));
        if name.len() > 100 || value.is_empty() || family.len() >= MAX_PROPERTIES {
            continue;
        }
        family.entry(name).or_insert(value);
    }
    let meta = |selector: &str| {
        let value = clip(&squash(
            &doc.select(selector).attr("content").unwrap_or_default(),
        ));
        Some(value).filter(|v| !v.is_empty())
    };
    let title = Some(clip(&squash(&doc.select("head title").text())))
        .filter(|t| !t.is_empty())
        .or_else(|| og.get("og:title").cloned());
    let description =
        meta(r#"meta[name="description" i]"#).or_else(|| og.get("og:description").cloned());
    let language = doc
        .select("html[lang]")
        .attr("lang")
        .map(|l| clip(l.trim()))
        .filter(|l| !l.is_empty())
        .or_else(|| meta(r#"meta[http-equiv="content-language" i]"#));
    let base = base_of(&doc, page);
    let canonical_url = doc
        .select(r#"link[rel~="canonical" i][href]"#)
        .attr("href")
        .and_then(|href| absolute(&base, &href))
        .map(String::from);
    Metadata {
        title,
        description,
        language,
        canonical_url,
        status_code,
        final_url: page.to_string(),
        og,
        twitter,
    }
}

fn clip(s: &str) -> String {
    s.chars().take(MAX_VALUE_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_og_and_twitter_property_and_the_head_fields_are_read() {
        let html = r#"<html lang="en-GB"><head>
            <title> A  page </title>
            <meta name="description" content="What it is about">
            <link rel="canonical" href="/canonical">
            <meta property="og:title" content="OG title">
            <meta property="og:image" content="https://example.com/a.png">
            <meta property="og:image" content="https://example.com/b.png">
            <meta property="og:locale:alternate" content="fr_FR">
            <meta name="twitter:card" content="summary">
            <meta property="twitter:site" content="@example">
            <meta name="generator" content="ignored">
            </head><body></body></html>"#;
        let page = Url::parse("https://example.com/a?b=1").expect("a URL");
        let m = metadata(html, &page, Some(200));
        assert_eq!(m.title.as_deref(), Some("A page"));
        assert_eq!(m.description.as_deref(), Some("What it is about"));
        assert_eq!(m.language.as_deref(), Some("en-GB"));
        assert_eq!(
            m.canonical_url.as_deref(),
            Some("https://example.com/canonical")
        );
        assert_eq!(m.status_code, Some(200));
        assert_eq!(m.final_url, "https://example.com/a?b=1");
        assert_eq!(m.og["og:title"], "OG title");
        assert_eq!(m.og["og:image"], "https://example.com/a.png");
        assert_eq!(m.og["og:locale:alternate"], "fr_FR");
        assert_eq!(m.twitter["twitter:card"], "summary");
        assert_eq!(m.twitter["twitter:site"], "@example");
        assert_eq!(m.og.len() + m.twitter.len(), 5);
    }

    #[test]
    fn og_fills_in_for_a_missing_title_and_description() {
        let html =
            r#"<meta property="og:title" content="T"><meta property="og:description" content="D">"#;
        let page = Url::parse("https://example.com/").expect("a URL");
        let m = metadata(html, &page, None);
        assert_eq!(
            (m.title.as_deref(), m.description.as_deref()),
            (Some("T"), Some("D"))
        );
        assert_eq!(
            (m.language, m.canonical_url, m.status_code),
            (None, None, None)
        );
    }
}
