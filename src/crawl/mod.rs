//! Crawls and maps: following a site's pages from a start URL, each page a scrape.
//!
//! - `options`: a crawl's bounds and each page's scrape options.
//! - `robots`, `sitemap`: reading `robots.txt` and `sitemap.xml`; `discover` fetches them.
//! - `scope`: which URLs a crawl visits, and each URL's one normal form.
//! - `job`: the `crawl` kind, one step of a crawl: start the next pages' scrapes within the
//!   crawl's concurrency and limit, or end it. Pages finishing (in `work::crawls`) queue the
//!   links they found and schedule the next step after the crawl's delay.
//! - `map`: a site's URLs from its sitemap and one page's links, without the browser.

pub mod discover;
pub mod job;
pub mod map;
pub mod options;
pub mod robots;
pub mod scope;
pub mod sitemap;
