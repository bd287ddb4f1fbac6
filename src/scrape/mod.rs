//! Scraping: the browser that renders pages (`browser`), one attempt at a page (`scraper`),
//! what a scrape keeps of it (`content`: main content, links, metadata; `extract`: data as
//! JSON by the model providers), the options kept with a scrape (`options`), and the `scrape`
//! job kind (`job`).

pub mod browser;
pub mod content;
pub mod extract;
pub mod job;
pub mod options;
pub mod scraper;
