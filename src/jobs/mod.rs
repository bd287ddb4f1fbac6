//! The job kinds this daemon runs (stable names, see `../shared/DESIGN.md`).

pub mod echo;
pub mod schedule;

use sqlx::PgPool;

use crate::engine::Registry;

/// Every job kind with its handler.
pub fn registry(pool: &PgPool) -> Registry {
    let mut registry = Registry::default();
    registry.register(echo::Echo { pool: pool.clone() });
    registry
}
