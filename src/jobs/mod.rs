//! The job kinds this daemon runs (stable names, see `../shared/DESIGN.md`).

pub mod echo;
pub mod quota_reset;
pub mod schedule;

use std::sync::Arc;

use sqlx::PgPool;

use crate::config::Config;
use crate::engine::Registry;
use crate::scrape::job::{ScrapeKind, Scraper};
use crate::summarise::job::{SummariseKind, Summariser};

/// Every job kind with its handler, configured by `config`; scrapes use `scraper`, summaries
/// `summariser`.
pub fn registry_for(
    pool: &PgPool,
    config: &Config,
    scraper: &Arc<Scraper>,
    summariser: &Arc<Summariser>,
) -> Registry {
    let mut registry = Registry::default();
    registry.register(echo::Echo { pool: pool.clone() });
    registry.register(ScrapeKind {
        pool: pool.clone(),
        scraper: scraper.clone(),
    });
    registry.register(SummariseKind {
        pool: pool.clone(),
        summariser: summariser.clone(),
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
    match (Scraper::new(&config), Summariser::new(&config.summarise)) {
        (Ok(scraper), Ok(summariser)) => registry_for(pool, &config, &scraper, &summariser),
        // The built-in settings have no allowlist and no providers, so this does not happen.
        _ => Registry::default(),
    }
}
