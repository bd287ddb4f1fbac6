//! Browser tests against real Chromium through chromedriver, on pages from a local site.

mod browser;
mod helpers;
mod isolation;
mod spans;
