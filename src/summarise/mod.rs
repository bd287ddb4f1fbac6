//! Summaries: the model providers with fallback, the built-in extractive summariser, and the
//! `summarise` job kind.

pub mod extractive;
pub mod job;
pub mod providers;
pub mod summariser;
