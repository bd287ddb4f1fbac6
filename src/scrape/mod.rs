//! Scraping: the browser that renders pages, and the `scrape` job kind.

pub mod browser;
pub mod job;
