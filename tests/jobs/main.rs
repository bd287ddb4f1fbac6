//! Job engine tests against a fresh PostgreSQL database per test.

mod engine;
mod schedule;
mod store;
