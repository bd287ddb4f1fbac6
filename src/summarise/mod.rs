//! Summaries: the model providers with fallback, the built-in extractive summariser, and the
//! `summarise` job kind, whose text is streamed as it is made (`stream`).

pub mod extractive;
pub mod job;
pub mod providers;
pub mod stream;
pub mod summariser;
