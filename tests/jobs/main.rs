//! Job engine tests against a fresh PostgreSQL database per test.

mod cancel;
mod connection;
mod engine;
mod plans;
mod quotas;
#[path = "../support/rows.rs"]
mod rows;
mod schedule;
#[path = "../support/sequencer.rs"]
mod sequencer;
mod store;
