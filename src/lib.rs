//! Workhorse: one daemon for an HTTP API, durable PostgreSQL-backed jobs, cron schedules,
//! scraping, summaries and push notifications.
//!
//! Map of the crate (imports point one way: api, cli, job kinds → work → store, engine,
//! egress → domain):
//! - [`config`]: figment layers into typed structs; [`telemetry`]: logs and OTLP traces.
//! - [`app`]: wires storage, API, workers; owns start-up and shutdown; [`lifecycle`]: signals
//!   and sd_notify; [`health`]: component states for `/readyz`.
//! - [`domain`]: validated types and pure rules; [`store`]: all SQL, the pool, migrations and
//!   the embedded PostgreSQL cluster.
//! - [`engine`]: the job engine (apalis workers over our own queue backend, leases, sweeper,
//!   pruning); [`jobs`]: the job kinds and their handlers.
//! - [`work`]: the use cases, one function per act, each taking a [`work::Caller`]: the one
//!   place that decides who may do what and what it costs.
//! - [`api`]: the HTTP API (poem-openapi), problem+json errors, auth; [`cli`]: the commands.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod egress;
pub mod engine;
pub mod health;
pub mod jobs;
pub mod lifecycle;
pub mod notify;
pub mod scrape;
pub mod store;
pub mod summarise;
pub mod telemetry;
pub mod work;
