//! Job engine tests against a fresh PostgreSQL database per test.

mod store;
