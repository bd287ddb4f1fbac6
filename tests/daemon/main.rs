//! Process-level tests of the `workhorse` binary: config, storage, lifecycle, telemetry, docs.

mod config;
mod docs;
mod helpers;
mod lifecycle;
mod logs;
mod storage;
mod telemetry;
