//! Validated types and pure rules. Nothing here does I/O or imports from the rest of the crate.

pub mod http;
pub mod jobs;
pub mod quotas;
pub mod schedule;
pub mod stream;
pub mod tokens;
pub mod topics;
pub mod users;
