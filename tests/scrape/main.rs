//! Browser tests against real Chromium through chromedriver, on pages from a local site.

mod browser;
mod cancel;
#[path = "../support/cancel_run.rs"]
mod cancel_run;
mod helpers;
mod isolation;
mod main_content;
#[path = "../support/rows.rs"]
mod rows;
#[path = "../support/sequencer.rs"]
mod sequencer;
mod slow_server;
mod spans;
