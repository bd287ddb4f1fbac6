//! The application: wires storage, the API, the job workers and schedules; runs migrations;
//! signals readiness; owns shutdown. Tests and production start the same way:
//! `App::build(config)`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use poem::Server;
use poem::listener::{Acceptor, Listener, TcpListener};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::api::token_cache::TokenCache;
use crate::api::{self, ApiState};
use crate::config::Config;
use crate::domain::schedule::Schedule;
use crate::engine::{Engine, Registry};
use crate::health::Health;
use crate::jobs::schedule::{self, Scheduler};
use crate::lifecycle;
use crate::metrics::{Metrics, Watched};
use crate::notify::job::Notifier;
use crate::scrape::job::Scraper;
use crate::store::{self, embedded::EmbeddedPostgres};
use crate::stream::Hub;
use crate::summarise::summariser::Summariser;
use crate::work::Work;

/// How long start-up waits for PostgreSQL before giving up.
const DATABASE_WAIT: Duration = Duration::from_secs(30);

/// The database the daemon uses: a configured server, or the embedded cluster it started.
pub struct Storage {
    /// The shared pool.
    pub pool: PgPool,
    embedded: Option<EmbeddedPostgres>,
}

impl Storage {
    /// Connect to `database.url`, or start the embedded cluster when none is configured; then
    /// apply migrations.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        let (url, embedded) = match config.database.url() {
            Some(url) => (url.to_string(), None),
            None => {
                let bin_dir = Some(config.database.embedded_bin_dir.as_path())
                    .filter(|p| !p.as_os_str().is_empty());
                let pg = EmbeddedPostgres::start(&config.data_dir, bin_dir).await?;
                (pg.url(), Some(pg))
            }
        };
        let pool = store::connect_lazy(&url, &config.database)?;
        store::migrate(&pool, DATABASE_WAIT).await?;
        Ok(Self { pool, embedded })
    }

    /// Use an existing pool (tests get one per test database); migrations are applied.
    pub async fn from_pool(pool: PgPool) -> anyhow::Result<Self> {
        store::migrate(&pool, DATABASE_WAIT).await?;
        Ok(Self {
            pool,
            embedded: None,
        })
    }

    /// Close the pool and stop the embedded cluster, if any.
    pub async fn close(mut self) {
        self.pool.close().await;
        if let Some(pg) = self.embedded.as_mut()
            && let Err(e) = pg.stop().await
        {
            tracing::error!(
                error = format!("{e:#}"),
                "stopping the embedded PostgreSQL failed"
            );
        }
    }
}

/// A built daemon: storage open, migrations applied, listener bound. `run` serves until shutdown.
pub struct App {
    config: Config,
    storage: Storage,
    acceptor: poem::listener::TcpAcceptor,
    addr: SocketAddr,
    health: Health,
    shutdown: CancellationToken,
    registry: Registry,
    schedules: Arc<Vec<Schedule>>,
    scraper: Arc<Scraper>,
    summariser: Arc<Summariser>,
    notifier: Arc<Notifier>,
    metrics: Metrics,
    hub: Hub,
}

impl App {
    /// Open storage as configured and bind the listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let storage = Storage::open(&config).await?;
        Self::with_storage(config, storage).await
    }

    /// Load the cron schedules and bind the listener over already opened storage.
    pub async fn with_storage(mut config: Config, storage: Storage) -> anyhow::Result<Self> {
        // Scrape jobs run at once as many as there are browser sessions, unless configured.
        let scrape = config.jobs.kinds.entry("scrape".into()).or_default();
        scrape.concurrency.get_or_insert(config.scrape.pool_size);
        // Deliveries wait on their receivers: `notify.concurrency` of them at once, unless set.
        let notify = config.jobs.kinds.entry("notify".into()).or_default();
        notify.concurrency.get_or_insert(config.notify.concurrency);
        let metrics = Metrics::new(&config)?;
        let kinds = crate::jobs::Kinds::measured(&config, metrics.clone())?;
        let registry = crate::jobs::registry_for(&storage.pool, &kinds);
        let crate::jobs::Kinds {
            scraper,
            summariser,
            notifier,
            ..
        } = kinds;
        let schedules = schedule::load(&config.jobs.schedules_dir, &registry.catalog())?;
        // Weak: the scraper holds the metrics, whose callbacks must not keep it (and through
        // it the pool) alive after the app is gone.
        let browser = Arc::downgrade(&scraper);
        let hub = Hub::new(storage.pool.clone(), config.events.clone());
        let clients = hub.clone();
        metrics.watch(Watched {
            pool: storage.pool.clone(),
            kinds: registry.catalog().names(),
            schedules: schedules.iter().map(|s| s.name.clone()).collect(),
            actions: (config.plans.values())
                .flat_map(|p| p.quotas.keys().cloned())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            browser: Box::new(move || browser.upgrade()?.sessions()),
            stream_clients: Box::new(move || clients.clients() as u64),
        });
        // Bind first, then read the port back: that is how `listen = "127.0.0.1:0"` works.
        let acceptor = TcpListener::bind(config.http.listen)
            .into_acceptor()
            .await
            .with_context(|| format!("listening on {}", config.http.listen))?;
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .context("reading back the bound address")?;
        Ok(Self {
            config,
            storage,
            acceptor,
            addr,
            health: Health::default(),
            shutdown: CancellationToken::new(),
            registry,
            schedules: Arc::new(schedules),
            scraper,
            summariser,
            notifier,
            metrics,
            hub,
        })
    }

    /// The address the API listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared pool.
    pub fn pool(&self) -> &PgPool {
        &self.storage.pool
    }

    /// The scraper (its browser starts with the first scrape).
    pub fn scraper(&self) -> Arc<Scraper> {
        self.scraper.clone()
    }

    /// Cancelling this token starts a graceful shutdown.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serve until the shutdown token is cancelled, let in-flight work finish within
    /// `shutdown.timeout`, then release storage.
    pub async fn run(self) -> anyhow::Result<()> {
        let config = Arc::new(self.config.clone());
        let hub = self.hub.clone();
        hub.start(&self.shutdown);
        let tokens = TokenCache::new();
        let (pool, shutdown) = (&self.storage.pool, &self.shutdown);
        tokio::spawn(tokens.clone().listen(pool.clone(), shutdown.clone()));
        tokio::spawn(tokens.clone().mark_used(pool.clone(), shutdown.clone()));
        let state = ApiState {
            pool: self.storage.pool.clone(),
            health: self.health.clone(),
            catalog: self.registry.catalog(),
            config: config.clone(),
            schedules: self.schedules.clone(),
            scraper: self.scraper.clone(),
            summariser: self.summariser.clone(),
            notifier: self.notifier.clone(),
            work: Work {
                pool: self.storage.pool.clone(),
                config: config.clone(),
                catalog: self.registry.catalog(),
                policy: self.scraper.policy_handle(),
                metrics: self.metrics.clone(),
            },
            metrics: self.metrics.clone(),
            hub,
            tokens,
        };
        let routes = api::routes(state, &self.config.http, &self.config.metrics);
        tracing::info!(addr = %self.addr, "listening; API docs at http://{}/docs", self.addr);

        // Workers and schedules run where `jobs.run_workers` is on; an API-only node enqueues.
        let (engine, scheduler) = match self.config.jobs.run_workers {
            true => {
                let pool = self.storage.pool.clone();
                let jobs = &self.config.jobs;
                let engine =
                    Engine::start(pool.clone(), jobs, self.registry, self.health.clone()).await?;
                let scheduler = Scheduler::start_measured(
                    pool,
                    self.schedules.clone(),
                    jobs,
                    self.metrics.clone(),
                )
                .await?;
                (Some(engine), Some(scheduler))
            }
            false => (None, None),
        };
        let timeout = self.config.shutdown.timeout;
        let stopping = self.shutdown.clone();
        let scraper = self.scraper.clone();
        let engine_stopped = async move {
            stopping.cancelled().await;
            if let Some(scheduler) = scheduler {
                scheduler.shutdown().await;
            }
            if let Some(engine) = engine {
                engine.shutdown(timeout).await;
            }
            // Browser sessions and chromedriver go before the daemon exits.
            scraper.shutdown().await;
        };

        self.health.up("http");
        lifecycle::notify_ready(&self.shutdown);
        let shutdown = self.shutdown.clone();
        let health = self.health.clone();
        let signal = async move {
            shutdown.cancelled().await;
            lifecycle::notify_stopping();
            health.down("http", "shutting down");
        };
        let server = Server::new_with_acceptor(self.acceptor).run_with_graceful_shutdown(
            routes,
            signal,
            Some(self.config.shutdown.timeout),
        );
        let (served, ()) = tokio::join!(server, engine_stopped);
        self.storage.close().await;
        // The last OTLP export blocks on its HTTP call.
        let metrics = self.metrics.clone();
        let _ = tokio::task::spawn_blocking(move || metrics.shutdown()).await;
        tracing::info!("stopped");
        served.context("serving HTTP")
    }
}
