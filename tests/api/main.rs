//! API tests: the real `App` on a free port over a fresh PostgreSQL database per test.

mod auth;
mod contract;
mod enums;
mod errors;
mod events;
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
mod scrapes;
mod sse;
mod summaries;
mod tenancy;
mod validation;
mod ws;
mod ws_client;
mod ws_ends;
