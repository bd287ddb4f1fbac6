//! Summaries: the provider layer against local OpenAI-compatible servers.

mod fake_llm;
mod providers;
