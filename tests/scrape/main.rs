//! Browser tests against real Chromium through chromedriver, on pages from a local site.

mod browser;
mod cancel;
mod helpers;
mod isolation;
mod slow_server;
mod spans;
