//! Job engine tests against a fresh PostgreSQL database per test.

mod connection;
mod engine;
mod quotas;
mod schedule;
mod store;
