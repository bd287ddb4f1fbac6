//! What a crawl was asked to do, kept with it (`crawls.options`) so every step, in whichever
//! process, follows the same bounds.

use serde::{Deserialize, Serialize};

use crate::scrape::options::{Invalid, ScrapeOptions};

/// Pages a crawl visits unless told otherwise.
pub const DEFAULT_LIMIT: u32 = 100;
/// How deep a crawl follows links unless told otherwise.
pub const DEFAULT_DEPTH: u32 = 10;
/// The politeness delay unless told otherwise, in milliseconds.
pub const DEFAULT_DELAY_MS: u64 = 250;
/// Most pages a crawl may visit.
pub const MAX_LIMIT: u32 = 10_000;
/// Deepest a crawl may follow links.
pub const MAX_DEPTH: u32 = 50;
/// Most pages of one crawl loading at once.
pub const MAX_CONCURRENCY: u32 = 10;
/// The longest delay between two pages of a crawl, in milliseconds.
pub const MAX_DELAY_MS: u64 = 60_000;
/// Patterns per list at most, and their length.
const MAX_PATTERNS: usize = 50;
const MAX_PATTERN_CHARS: usize = 500;

/// A crawl's bounds and each page's scrape options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrawlOptions {
    /// Pages visited at most (succeeded or failed).
    pub limit: u32,
    /// Links followed this many steps from the start page (sitemap pages count as one).
    pub max_depth: u32,
    /// Regular expressions; when given, only paths (with query) matching one are visited.
    #[serde(default)]
    pub include_paths: Vec<String>,
    /// Regular expressions; paths matching one are not visited.
    #[serde(default)]
    pub exclude_paths: Vec<String>,
    /// Visit subdomains of the start host too.
    #[serde(default)]
    pub allow_subdomains: bool,
    /// Skip `sitemap.xml`: follow links only.
    #[serde(default)]
    pub ignore_sitemap: bool,
    /// Pages loading at once (per crawl, so per host).
    pub max_concurrency: u32,
    /// Milliseconds between one page's end and the next page's start (robots.txt's
    /// `Crawl-delay` wins when longer).
    pub delay_ms: u64,
    /// Each page's formats.
    pub formats: Vec<String>,
    /// Each page's selector to wait for.
    #[serde(default)]
    pub wait_for: Option<String>,
    /// Each page's load budget.
    #[serde(default)]
    pub timeout_ms: Option<u32>,
    /// Each page's other scrape options.
    #[serde(default)]
    pub scrape: ScrapeOptions,
}

impl CrawlOptions {
    /// Every bound checked; the first fault, naming its field.
    pub fn check(&self) -> Result<(), Invalid> {
        if !(1..=MAX_LIMIT).contains(&self.limit) {
            return Err(Invalid(
                "limit",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ));
        }
        if self.max_depth > MAX_DEPTH {
            return Err(Invalid(
                "max_depth",
                format!("max_depth must be at most {MAX_DEPTH}"),
            ));
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.max_concurrency) {
            return Err(Invalid(
                "max_concurrency",
                format!("max_concurrency must be between 1 and {MAX_CONCURRENCY}"),
            ));
        }
        if self.delay_ms > MAX_DELAY_MS {
            return Err(Invalid(
                "delay_ms",
                format!("delay_ms must be at most {MAX_DELAY_MS}"),
            ));
        }
        for (field, patterns) in [
            ("include_paths", &self.include_paths),
            ("exclude_paths", &self.exclude_paths),
        ] {
            if patterns.len() > MAX_PATTERNS {
                return Err(Invalid(
                    field,
                    format!("{field} takes at most {MAX_PATTERNS} patterns"),
                ));
            }
            for pattern in patterns {
                let fits = !pattern.is_empty() && pattern.chars().count() <= MAX_PATTERN_CHARS;
                if let Err(e) = regex::Regex::new(pattern)
                    .map_err(|e| e.to_string())
                    .and_then(|r| match fits {
                        true => Ok(r),
                        false => Err(format!("a pattern has 1 to {MAX_PATTERN_CHARS} characters")),
                    })
                {
                    let first = e.lines().last().unwrap_or_default().trim().to_string();
                    return Err(Invalid(
                        field,
                        format!("{pattern:?} is not a usable regular expression: {first}"),
                    ));
                }
            }
        }
        self.scrape.check()
    }
}
