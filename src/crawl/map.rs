//! A site's URLs without rendering its pages: what its sitemaps list and the links of its start
//! page (read with a plain GET), in scope of the start host, allowed by robots.txt, each once.

use std::collections::HashSet;

use url::Url;

use super::discover;
use super::scope::{Scope, normalise};
use crate::egress::OutboundClient;
use crate::scrape::content;

/// Longest start page read.
const MAX_PAGE_BYTES: usize = 5 * 1024 * 1024;
/// The most URLs a map returns.
pub const MAX_URLS: usize = 5_000;

/// What to map.
#[derive(Debug, Clone)]
pub struct MapRequest {
    /// The start page (checked against the egress policy by the caller).
    pub url: Url,
    /// URLs returned at most.
    pub limit: usize,
    /// Include subdomains of the start host.
    pub include_subdomains: bool,
    /// Only URLs containing this text (case-insensitive).
    pub search: Option<String>,
}

/// One URL of a map, and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// The normalised URL.
    pub url: String,
    /// `sitemap` or `page`.
    pub source: &'static str,
}

/// The site's URLs: the start page, then the sitemaps' pages, then the start page's links.
pub async fn map(fetcher: &OutboundClient, request: &MapRequest) -> Vec<Mapped> {
    let start = normalise(&request.url);
    // A site whose robots.txt cannot be read is mapped without its rules: a map reads two
    // documents, not the site.
    let robots = (discover::robots(fetcher, &start).await).unwrap_or_default();
    let listed = discover::sitemap_urls(fetcher, &start, &robots).await;
    let links = match fetcher.get_document(start.as_str(), MAX_PAGE_BYTES).await {
        Ok(page) if page.status.is_success() => content::links(&page.body, &page.url)
            .into_iter()
            .map(|l| l.url)
            .collect(),
        _ => Vec::new(),
    };
    let scope = Scope::new(&start, request.include_subdomains, &[], &[], robots);
    let search = request.search.as_deref().map(str::to_lowercase);
    let mut seen = HashSet::new();
    let candidates = std::iter::once((start.to_string(), "page"))
        .chain(listed.into_iter().map(|u| (u, "sitemap")))
        .chain(links.into_iter().map(|u| (u, "page")));
    let mut out = Vec::new();
    for (url, source) in candidates {
        let Ok(parsed) = Url::parse(url.trim()) else {
            continue;
        };
        let url = scope.canonical(&parsed);
        if scope.admits(&url).is_err() {
            continue;
        }
        let text = url.to_string();
        if search
            .as_ref()
            .is_some_and(|s| !text.to_lowercase().contains(s))
        {
            continue;
        }
        if seen.insert(text.clone()) {
            out.push(Mapped { url: text, source });
            if out.len() >= request.limit.min(MAX_URLS) {
                break;
            }
        }
    }
    out
}
