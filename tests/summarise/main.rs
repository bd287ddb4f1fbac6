//! Summaries: the provider layer against local OpenAI-compatible servers.

mod cancel;
mod fake_llm;
mod providers;
#[path = "../scrape/slow_server.rs"]
mod slow_server;
