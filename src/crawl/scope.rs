//! Which URLs a crawl visits: the start host (and its subdomains when allowed), the path
//! patterns asked for, and `robots.txt`; each URL in one normal form, so it is visited once.

use regex::Regex;
use url::Url;

use super::robots::Robots;

/// Why a URL is left out of a crawl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outside {
    /// Another host (or a subdomain, when they are not allowed), or not http(s).
    Host,
    /// `include_paths` does not match, or `exclude_paths` does.
    Path,
    /// `robots.txt` disallows it for our user agent.
    Robots,
}

/// The bounds of one crawl.
#[derive(Debug, Clone)]
pub struct Scope {
    start: Url,
    host: String,
    allow_subdomains: bool,
    include: Vec<Regex>,
    exclude: Vec<Regex>,
    robots: Robots,
}

impl Scope {
    /// The scope of a crawl from `start`; patterns are regular expressions matched against
    /// the path (with its query), which the caller has checked compile.
    pub fn new(
        start: &Url,
        allow_subdomains: bool,
        include: &[String],
        exclude: &[String],
        robots: Robots,
    ) -> Self {
        let compile =
            |patterns: &[String]| patterns.iter().filter_map(|p| Regex::new(p).ok()).collect();
        Scope {
            start: start.clone(),
            host: host_of(start),
            allow_subdomains,
            include: compile(include),
            exclude: compile(exclude),
            robots,
        }
    }

    /// `url` in normal form, with the start page's scheme, host and port where it names the
    /// start host another way (`http:` for `https:`, with or without `www.`): one site, each page
    /// once.
    pub fn canonical(&self, url: &Url) -> Url {
        let mut url = normalise(url);
        if host_of(&url) == self.host && matches!(url.scheme(), "http" | "https") {
            // Both are http(s) URLs with a host: these cannot fail.
            let _ = url.set_scheme(self.start.scheme());
            let _ = url.set_host(self.start.host_str());
            let _ = url.set_port(self.start.port());
        }
        url
    }

    /// Whether the crawl visits its start page: its host and robots.txt decide, not the path
    /// patterns (they choose among the pages found from it).
    pub fn admits_start(&self, url: &Url) -> Result<(), Outside> {
        if !self.robots.allows(&path_and_query(url)) {
            return Err(Outside::Robots);
        }
        Ok(())
    }

    /// Whether the crawl visits `url` (in normal form), and if not, why.
    pub fn admits(&self, url: &Url) -> Result<(), Outside> {
        let host = host_of(url);
        let same = host == self.host;
        let sub = self.allow_subdomains && host.ends_with(&format!(".{}", self.host));
        if !matches!(url.scheme(), "http" | "https") || !(same || sub) {
            return Err(Outside::Host);
        }
        let path = path_and_query(url);
        if !self.include.is_empty() && !self.include.iter().any(|r| r.is_match(&path)) {
            return Err(Outside::Path);
        }
        if self.exclude.iter().any(|r| r.is_match(&path)) {
            return Err(Outside::Path);
        }
        if !self.robots.allows(&path) {
            return Err(Outside::Robots);
        }
        Ok(())
    }
}

/// A URL's form for visiting once: no fragment, no default port, no empty query, a lowercase
/// host (the `url` crate already lowercases scheme and host and drops default ports).
pub fn normalise(url: &Url) -> Url {
    let mut url = url.clone();
    url.set_fragment(None);
    if url.query() == Some("") {
        url.set_query(None);
    }
    url
}

fn host_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    host.strip_prefix("www.")
        .map(str::to_string)
        .unwrap_or(host)
}

fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("a URL")
    }

    #[test]
    fn the_start_host_paths_and_robots_bound_a_crawl() {
        let robots = Robots::parse("User-agent: *\nDisallow: /private/\n");
        let scope = Scope::new(
            &url("https://www.example.com/"),
            false,
            &["^/docs/".into(), "^/$".into()],
            &["\\.pdf$".into()],
            robots,
        );
        assert_eq!(scope.admits(&url("https://example.com/docs/a")), Ok(()));
        assert_eq!(scope.admits(&url("https://www.example.com/")), Ok(()));
        assert_eq!(
            scope.admits(&url("https://blog.example.com/docs/a")),
            Err(Outside::Host)
        );
        assert_eq!(
            scope.admits(&url("https://other.org/docs/a")),
            Err(Outside::Host)
        );
        assert_eq!(
            scope.admits(&url("https://example.com/about")),
            Err(Outside::Path)
        );
        assert_eq!(
            scope.admits(&url("https://example.com/docs/a.pdf")),
            Err(Outside::Path)
        );
        let open = Scope::new(
            &url("https://example.com/"),
            true,
            &[],
            &[],
            Robots::parse("User-agent: *\nDisallow: /private/\n"),
        );
        assert_eq!(open.admits(&url("https://blog.example.com/x")), Ok(()));
        assert_eq!(
            open.admits(&url("https://example.com/private/x")),
            Err(Outside::Robots)
        );
    }

    #[test]
    fn the_start_hosts_other_spellings_become_the_start_page_s() {
        let scope = Scope::new(
            &url("https://example.com/"),
            false,
            &[],
            &[],
            Robots::default(),
        );
        for variant in [
            "http://example.com/a#x",
            "https://www.example.com/a",
            "http://WWW.example.com:80/a",
        ] {
            assert_eq!(
                scope.canonical(&url(variant)).as_str(),
                "https://example.com/a",
                "{variant}"
            );
        }
        assert_eq!(
            scope.canonical(&url("https://blog.example.com/a")).as_str(),
            "https://blog.example.com/a"
        );
    }

    #[test]
    fn one_form_per_page() {
        assert_eq!(
            normalise(&url("HTTP://Example.COM:80/a?#top")).as_str(),
            "http://example.com/a"
        );
        assert_eq!(
            normalise(&url("https://example.com/a?b=1#x")).as_str(),
            "https://example.com/a?b=1"
        );
    }
}
