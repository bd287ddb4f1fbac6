//! Process-level tests of the `workhorse` binary: config, storage, lifecycle, telemetry, docs.

mod chaos;
#[path = "../common/chromedriver.rs"]
mod chromedriver;
mod clients;
mod config;
mod crawl_kill;
mod docs;
mod fuzz;
mod helpers;
mod journal;
mod lifecycle;
mod logs;
mod metrics;
mod metrics_otlp;
mod notify_kill;
mod otlp;
mod pg_restart;
#[allow(dead_code)]
#[path = "../support/site.rs"]
mod site;
mod storage;
mod telemetry;
mod traces;
