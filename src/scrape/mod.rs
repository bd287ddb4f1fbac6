//! Scraping: the browser that renders pages, what a scrape keeps of a page, and the `scrape`
//! job kind.

pub mod browser;
pub mod content;
pub mod extract;
pub mod job;
pub mod options;
