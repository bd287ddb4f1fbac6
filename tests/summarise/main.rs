//! Summaries: the provider layer against local OpenAI-compatible servers, streamed or not.

mod cancel;
#[path = "../support/cancel_run.rs"]
mod cancel_run;
mod fake_llm;
mod providers;
#[path = "../support/rows.rs"]
mod rows;
#[path = "../support/sequencer.rs"]
mod sequencer;
#[path = "../scrape/slow_server.rs"]
mod slow_server;
mod streaming;
