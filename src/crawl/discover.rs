//! What a site says about itself before any page is rendered: its `robots.txt` and the URLs of
//! its sitemaps, read with plain GETs through the egress-checked client.

use url::Url;

use super::robots::Robots;
use super::sitemap;
use crate::egress::OutboundClient;

/// Longest robots.txt read (RFC 9309 asks crawlers to read at least 500 KiB).
const MAX_ROBOTS_BYTES: usize = 512 * 1024;
/// Longest sitemap read (the protocol's own limit is 50 MiB; this bounds memory).
const MAX_SITEMAP_BYTES: usize = 10 * 1024 * 1024;
/// Sitemaps read per site at most, index entries included.
const MAX_SITEMAPS: usize = 10;

/// The site's robots.txt rules for us. A missing file (4xx) allows everything; a server
/// error or no answer is an error (RFC 9309: assume complete disallow), saying why.
pub async fn robots(fetcher: &OutboundClient, start: &Url) -> Result<Robots, String> {
    let Ok(url) = start.join("/robots.txt") else {
        return Ok(Robots::default());
    };
    match fetcher.get_document(url.as_str(), MAX_ROBOTS_BYTES).await {
        Ok(f) if f.status.is_success() => Ok(Robots::parse(&f.body)),
        Ok(f) if f.status.is_client_error() => Ok(Robots::default()),
        Ok(f) => Err(format!(
            "robots.txt answered HTTP {}: the site may not be crawled now",
            f.status.as_u16()
        )),
        Err(e) => Err(format!(
            "robots.txt could not be read ({e}): the site may not be crawled now"
        )),
    }
}

/// The page URLs the site's sitemaps list: those robots.txt names, else `/sitemap.xml`, with
/// a sitemap index followed one level; unreadable sitemaps are skipped.
pub async fn sitemap_urls(fetcher: &OutboundClient, start: &Url, robots: &Robots) -> Vec<String> {
    let mut queue: Vec<String> = robots.sitemaps.clone();
    if queue.is_empty()
        && let Ok(default) = start.join("/sitemap.xml")
    {
        queue.push(default.to_string());
    }
    let mut pages = Vec::new();
    let mut read = 0;
    while let Some(next) = queue.first().cloned() {
        queue.remove(0);
        if read == MAX_SITEMAPS {
            break;
        }
        read += 1;
        let Ok(fetched) = fetcher.get_document(&next, MAX_SITEMAP_BYTES).await else {
            continue;
        };
        if !fetched.status.is_success() {
            continue;
        }
        let found = sitemap::parse(&fetched.body);
        pages.extend(found.pages);
        queue.extend(found.sitemaps);
        if pages.len() >= sitemap::MAX_URLS {
            pages.truncate(sitemap::MAX_URLS);
            break;
        }
    }
    pages
}
