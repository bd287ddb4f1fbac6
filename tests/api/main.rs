//! API tests: the real `App` on a free port over a fresh PostgreSQL database per test.

mod auth;
#[path = "../common/chromedriver.rs"]
mod chromedriver;
mod contract;
mod crawls;
mod enums;
mod errors;
mod events;
#[allow(dead_code)]
#[path = "../summarise/fake_llm.rs"]
mod fake_llm;
mod fan_out;
mod health;
mod helpers;
mod http;
mod idempotency;
mod jobs;
mod metrics;
mod notifications;
mod quotas;
mod records;
mod schedules;
mod scrape_batches;
mod scrape_content;
mod scrape_extract;
mod scrapes;
#[path = "../support/site.rs"]
mod site;
mod snapshot;
mod sse;
mod summaries;
mod summary_stream;
mod tenancy;
mod ui;
mod ui_access;
mod ui_live;
mod ui_pages;
mod ui_support;
mod ui_users;
mod validation;
mod ws;
mod ws_client;
mod ws_ends;
