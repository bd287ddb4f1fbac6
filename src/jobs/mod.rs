//! The job kinds this daemon runs (stable names, never renamed: see docs/job-engine.md).

pub mod echo;
pub mod inject;
pub mod quota_reset;
pub mod schedule;

use std::sync::Arc;

use sqlx::PgPool;

use crate::config::Config;
use crate::crawl::job::CrawlKind;
use crate::engine::{JobKind, Registry};
use crate::metrics::Metrics;
use crate::notify::job::{Notifier, NotifyKind};
use crate::scrape::job::{ScrapeKind, Scraper};
use crate::summarise::job::SummariseKind;
use crate::summarise::summariser::Summariser;
use crate::work::Work;

/// What the job kinds use besides the database.
pub struct Kinds {
    /// The browser (scrape).
    pub scraper: Arc<Scraper>,
    /// The model providers (summarise).
    pub summariser: Arc<Summariser>,
    /// The notification senders (notify).
    pub notifier: Arc<Notifier>,
    /// The time zone of users without their own (quota_reset).
    pub default_timezone: String,
    /// Where the injector's datasets are: `data/` in the schedules directory.
    pub data_dir: std::path::PathBuf,
    /// The whole configuration (plans, for summaries chained after scrapes).
    pub config: Arc<Config>,
    /// Where the kinds and the engine record what happens.
    pub metrics: Metrics,
}

impl Kinds {
    /// As `config` says; nothing starts until a job needs it. Records no metrics.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        Self::measured(config, Metrics::default())
    }

    /// As `config` says, recording in `metrics`.
    pub fn measured(config: &Config, metrics: Metrics) -> anyhow::Result<Self> {
        Ok(Self {
            scraper: Scraper::new(config, metrics.clone())?,
            summariser: Summariser::new(&config.summarise, metrics.clone())?,
            notifier: Notifier::new(&config.notify, &config.egress.allow, metrics.clone())?,
            default_timezone: config.quotas.default_timezone.clone(),
            data_dir: config.jobs.schedules_dir.join("data"),
            config: Arc::new(config.clone()),
            metrics,
        })
    }
}

/// The name of every job kind [`registry_for`] registers, sorted: the closed set the API lists.
pub const NAMES: [&str; 7] = [
    CrawlKind::NAME,
    echo::Echo::NAME,
    inject::InjectKind::NAME,
    NotifyKind::NAME,
    quota_reset::QuotaReset::NAME,
    ScrapeKind::NAME,
    SummariseKind::NAME,
];

/// Every job kind with its handler.
pub fn registry_for(pool: &PgPool, kinds: &Kinds) -> Registry {
    let mut registry = Registry::measured(kinds.metrics.clone());
    let work = Work {
        pool: pool.clone(),
        config: kinds.config.clone(),
        catalog: registry.catalog_handle(),
        policy: kinds.scraper.policy_handle(),
        metrics: kinds.metrics.clone(),
    };
    registry.register(echo::Echo { pool: pool.clone() });
    registry.register(CrawlKind {
        pool: pool.clone(),
        fetcher: kinds.scraper.fetcher().clone(),
        notifier: kinds.notifier.clone(),
        work: work.clone(),
    });
    registry.register(ScrapeKind {
        pool: pool.clone(),
        scraper: kinds.scraper.clone(),
        notifier: kinds.notifier.clone(),
        work,
        summariser: kinds.summariser.clone(),
    });
    registry.register(SummariseKind {
        pool: pool.clone(),
        summariser: kinds.summariser.clone(),
        notifier: kinds.notifier.clone(),
    });
    registry.register(NotifyKind::new(pool.clone(), kinds.notifier.clone()));
    registry.register(inject::InjectKind::new(
        pool.clone(),
        kinds.data_dir.clone(),
        kinds.notifier.clone(),
    ));
    registry.register(quota_reset::QuotaReset {
        pool: pool.clone(),
        default_timezone: kinds.default_timezone.clone(),
    });
    // Fill the catalog the kinds' use cases hold, now that every kind is in.
    registry.catalog();
    registry
}

/// Every job kind with the built-in settings (tests and benchmarks). The browser starts only
/// if a scrape runs.
pub fn registry(pool: &PgPool) -> Registry {
    match Kinds::new(&Config::default()) {
        Ok(kinds) => registry_for(pool, &kinds),
        // The built-in settings have no allowlist, providers or FCM key, so this does not
        // happen.
        Err(_) => Registry::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_lists_every_registered_kind_in_order() {
        let pool = sqlx::PgPool::connect_lazy("postgres://nobody@127.0.0.1:1/none").unwrap();

        let names = registry(&pool).catalog().names();

        assert_eq!(names, NAMES);
    }
}
