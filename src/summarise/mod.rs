//! Summaries: the model providers with fallback, and the `summarise` job kind.

pub mod extractive;
pub mod job;
pub mod providers;
