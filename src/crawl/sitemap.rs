//! `sitemap.xml`: the `<loc>` of a `urlset`, or of a `sitemapindex` (its sitemaps, to fetch in
//! turn). Parsed leniently (an HTML parser reads unknown elements fine), capped in count.

/// URLs kept from one sitemap at most (the protocol's own limit).
pub const MAX_URLS: usize = 50_000;

/// What a sitemap lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sitemap {
    /// Page URLs (`urlset`).
    pub pages: Vec<String>,
    /// Further sitemaps (`sitemapindex`).
    pub sitemaps: Vec<String>,
}

/// The URLs `xml` lists.
pub fn parse(xml: &str) -> Sitemap {
    let doc = dom_query::Document::from(xml);
    let locs = |selector: &str| -> Vec<String> {
        doc.select(selector)
            .iter()
            .map(|loc| loc.text().trim().to_string())
            .filter(|loc| !loc.is_empty())
            .take(MAX_URLS)
            .collect()
    };
    Sitemap {
        pages: locs("url > loc"),
        sitemaps: locs("sitemap > loc"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_urlset_and_an_index_are_read() {
        let set = parse(
            r#"<?xml version="1.0" encoding="UTF-8"?>
            <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
              <url><loc> https://example.com/a </loc><lastmod>2026-01-01</lastmod></url>
              <url><loc>https://example.com/b?x=1&amp;y=2</loc></url>
            </urlset>"#,
        );
        assert_eq!(
            set.pages,
            ["https://example.com/a", "https://example.com/b?x=1&y=2"]
        );
        let index = parse(
            "<sitemapindex><sitemap><loc>https://example.com/s1.xml</loc></sitemap></sitemapindex>",
        );
        assert_eq!(index.sitemaps, ["https://example.com/s1.xml"]);
        assert!(index.pages.is_empty());
    }
}
