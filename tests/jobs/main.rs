//! Job engine tests against a fresh PostgreSQL database per test.

mod cancel;
mod connection;
mod engine;
mod quotas;
mod schedule;
mod store;
