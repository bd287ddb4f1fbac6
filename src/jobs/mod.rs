//! The job kinds this daemon runs (stable names, see `../shared/DESIGN.md`).

pub mod echo;
pub mod quota_reset;
pub mod schedule;

use std::sync::Arc;

use sqlx::PgPool;

use crate::config::Config;
use crate::engine::Registry;
use crate::scrape::job::{ScrapeKind, Scraper};

/// Every job kind with its handler, configured by `config`; scrapes use `scraper`.
pub fn registry_for(pool: &PgPool, config: &Config, scraper: &Arc<Scraper>) -> Registry {
    let mut registry = Registry::default();
    registry.register(echo::Echo { pool: pool.clone() });
    registry.register(ScrapeKind {
        pool: pool.clone(),
        scraper: scraper.clone(),
    });
    registry.register(quota_reset::QuotaReset {
        pool: pool.clone(),
        default_timezone: config.quotas.default_timezone.clone(),
    });
    registry
}

/// Every job kind with the built-in settings (tests and benchmarks). The scraper's browser
/// starts only if a scrape runs.
pub fn registry(pool: &PgPool) -> Registry {
    let config = Config::default();
    match Scraper::new(&config) {
        Ok(scraper) => registry_for(pool, &config, &scraper),
        // The built-in egress allowlist is empty, so this does not happen.
        Err(_) => Registry::default(),
    }
}
