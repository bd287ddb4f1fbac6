//! The job kinds this daemon runs (stable names, see `../shared/DESIGN.md`).

pub mod echo;
pub mod quota_reset;
pub mod schedule;

use sqlx::PgPool;

use crate::config::Config;
use crate::engine::Registry;

/// Every job kind with its handler, configured by `config`.
pub fn registry_for(pool: &PgPool, config: &Config) -> Registry {
    let mut registry = Registry::default();
    registry.register(echo::Echo { pool: pool.clone() });
    registry.register(quota_reset::QuotaReset {
        pool: pool.clone(),
        default_timezone: config.quotas.default_timezone.clone(),
    });
    registry
}

/// Every job kind with the built-in settings (tests and benchmarks).
pub fn registry(pool: &PgPool) -> Registry {
    registry_for(pool, &Config::default())
}
