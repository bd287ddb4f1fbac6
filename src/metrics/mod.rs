//! Metrics: one OpenTelemetry `MeterProvider` per daemon with two readers, the Prometheus
//! registry behind `GET /metrics` and, when `telemetry.otlp_endpoint` is set, a periodic OTLP
//! export to `<endpoint>/v1/metrics`; the [`Metrics`] handle with every instrument; [`NAMES`],
//! the list the operator's page documents. Each app owns its provider (tests run several apps
//! in one process), and the parts of the daemon record through the handle they were given.

mod instruments;
mod jobs;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use anyhow::Context;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Meter, MeterProvider as _, ObservableGauge};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use prometheus::TextEncoder;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use tokio_util::task::AbortOnDropHandle;

use crate::config::Config;
pub use instruments::ModelCall;
pub use jobs::JobsGauge;

/// Every metric the daemon exposes, as Prometheus names it (histograms by their base name);
/// docs/operations.md has one table row for each, and a test holds the two together.
pub const NAMES: [&str; 16] = [
    "workhorse_build_info",
    "workhorse_jobs",
    "workhorse_job_attempts_total",
    "workhorse_job_attempt_duration_seconds",
    "workhorse_job_lateness_seconds",
    "workhorse_notify_deliveries_total",
    "workhorse_scrape_page_duration_seconds",
    "gen_ai_client_operation_duration_seconds",
    "gen_ai_client_token_usage",
    "workhorse_quota_refusals_total",
    "workhorse_db_pool_connections",
    "workhorse_browser_sessions",
    "workhorse_stream_clients",
    "workhorse_schedule_ticks_total",
    "http_server_request_duration_seconds",
    "target_info",
];

/// How an attempt can end, as `workhorse_job_attempts_total{outcome}` says it.
pub const ATTEMPT_OUTCOMES: [&str; 5] = ["succeeded", "failed", "dead", "cancelled", "crashed"];

/// The channel kinds a delivery goes to, and how a delivery attempt can end.
const DELIVERY_LABELS: ([&str; 3], [&str; 3]) = (
    ["webhook", "fcm", "webpush"],
    ["delivered", "failed", "dead"],
);

/// Seconds: from a fast request (5 ms) to a slow page or model call (5 min).
const SECONDS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Tokens per call, the buckets the gen_ai semantic conventions advise.
const TOKENS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

/// The daemon's instruments; cheap to clone. [`Metrics::default`] records nowhere.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    provider: SdkMeterProvider,
    /// What `GET /metrics` encodes; `None` for the handle that records nowhere.
    registry: Option<prometheus::Registry>,
    meter: Meter,
    i: instruments::Instruments,
    /// The jobs gauge's cached count, once [`Metrics::watch`] gave it a pool.
    jobs: OnceLock<Arc<JobsGauge>>,
    /// Observable gauges stay registered while their handles live.
    observed: Mutex<Vec<ObservableGauge<i64>>>,
    /// Keeps the gauge's count fresh for the OTLP export; stops with the handle.
    refresher: Mutex<Option<AbortOnDropHandle<()>>>,
    jobs_cache: Duration,
    export_interval: Option<Duration>,
}

/// What the observed gauges read, handed to [`Metrics::watch`] once the daemon is built.
pub struct Watched {
    /// The pool (connections in use and idle; the jobs count).
    pub pool: PgPool,
    /// The job kinds: the jobs gauge and the attempts counter show every one, zeros included.
    pub kinds: Vec<&'static str>,
    /// The cron schedules' names, for the ticks counter's zeros.
    pub schedules: Vec<String>,
    /// The quota actions of the plans, for the refusals counter's zeros.
    pub actions: Vec<String>,
    /// Browser sessions `(in use, idle)`; `None` before the browser starts. It must not hold
    /// anything that holds this `Metrics` (a reference cycle would outlive the app).
    pub browser: Box<dyn Fn() -> Option<(u64, u64)> + Send + Sync>,
    /// Clients of the live event stream connected to this process (the same rule as
    /// `browser`: it must not hold this `Metrics`).
    pub stream_clients: Box<dyn Fn() -> u64 + Send + Sync>,
}

impl Default for Metrics {
    fn default() -> Self {
        static DISABLED: OnceLock<Metrics> = OnceLock::new();
        DISABLED
            .get_or_init(|| Self::from_provider(SdkMeterProvider::builder().build(), None, None))
            .clone()
    }
}

impl Metrics {
    /// The provider as configured: the Prometheus registry always, OTLP when an endpoint is
    /// set. The OTLP exporter's blocking HTTP client is built on a thread of its own, as it
    /// must not be made inside the async runtime.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            // One scope only: its name on every series would say nothing.
            .scope_info_enabled(false)
            .build()
            .context("building the Prometheus exporter")?;
        let resource = Resource::builder()
            .with_service_name(config.telemetry.service_name.clone())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let mut builder = SdkMeterProvider::builder()
            .with_resource(resource)
            .with_reader(exporter);
        let endpoint = config.telemetry.otlp_endpoint.trim().trim_end_matches('/');
        let export_interval = (!endpoint.is_empty()).then_some(config.metrics.export_interval);
        if let Some(interval) = export_interval {
            let headers: HashMap<String, String> = (config.telemetry.otlp_headers.iter())
                .map(|(k, v)| (k.clone(), v.expose_secret().to_string()))
                .collect();
            let url = format!("{endpoint}/v1/metrics");
            let exporter = std::thread::scope(|s| {
                s.spawn(|| {
                    opentelemetry_otlp::MetricExporter::builder()
                        .with_http()
                        .with_endpoint(url)
                        .with_headers(headers)
                        .build()
                })
                .join()
            })
            .map_err(|_| anyhow::anyhow!("building the OTLP metric exporter panicked"))?
            .context("building the OTLP metric exporter")?;
            let reader = PeriodicReader::builder(exporter)
                .with_interval(interval)
                .build();
            builder = builder.with_reader(reader);
        }
        let metrics = Self::from_provider(
            builder.build(),
            Some(registry),
            Some((config.metrics.jobs_cache, export_interval)),
        );
        Ok(metrics)
    }

    fn from_provider(
        provider: SdkMeterProvider,
        registry: Option<prometheus::Registry>,
        cache: Option<(Duration, Option<Duration>)>,
    ) -> Self {
        let meter = provider.meter("workhorse");
        let i = instruments::Instruments::new(&meter);
        let (jobs_cache, export_interval) = cache.unwrap_or((Duration::from_secs(5), None));
        if registry.is_some() {
            i.zero_deliveries(&DELIVERY_LABELS.0, &DELIVERY_LABELS.1);
            meter
                .u64_gauge("workhorse.build.info")
                .with_description("Always 1; the labels say which build is running.")
                .build()
                .record(1, &[KeyValue::new("version", env!("CARGO_PKG_VERSION"))]);
        }
        Self(Arc::new(Inner {
            provider,
            registry,
            meter,
            i,
            jobs: OnceLock::new(),
            observed: Mutex::new(Vec::new()),
            refresher: Mutex::new(None),
            jobs_cache,
            export_interval,
        }))
    }

    /// Start observing the pool, the jobs table and the browser, and show every kind,
    /// schedule and quota action with zeros until something happens. Call once, inside the
    /// runtime; later calls change nothing.
    pub fn watch(&self, watched: Watched) {
        let inner = &self.0;
        if inner.registry.is_none() {
            return;
        }
        let gauge = Arc::new(JobsGauge::new(
            watched.pool.clone(),
            inner.jobs_cache,
            watched.kinds.clone(),
        ));
        if inner.jobs.set(gauge.clone()).is_err() {
            return;
        }
        inner.i.zero_attempts(&watched.kinds);
        inner.i.zero_ticks(&watched.schedules);
        inner.i.zero_refusals(&watched.actions);
        let observed = instruments::observe(&inner.meter, gauge.clone(), watched);
        inner
            .observed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(observed);
        // The pull endpoint refreshes the count itself; the OTLP export reads whatever the
        // gauge holds, so keep it fresh at the export's pace.
        if let Some(every) = inner.export_interval {
            let every = every.min(inner.jobs_cache.max(Duration::from_secs(1)));
            let task = tokio::spawn(async move {
                loop {
                    gauge.refresh().await;
                    tokio::time::sleep(every).await;
                }
            });
            *inner
                .refresher
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(AbortOnDropHandle::new(task));
        }
    }

    /// The Prometheus text exposition of every metric, the jobs count refreshed if its
    /// window passed.
    pub async fn render(&self) -> anyhow::Result<String> {
        if let Some(jobs) = self.0.jobs.get() {
            jobs.refresh().await;
        }
        let Some(registry) = &self.0.registry else {
            return Ok(String::new());
        };
        TextEncoder::new()
            .encode_to_string(&registry.gather())
            .context("encoding the metrics")
    }

    /// Push what is buffered to the OTLP receiver and stop the readers (blocking: call from a
    /// blocking thread).
    pub fn shutdown(&self) {
        if self.0.export_interval.is_some()
            && let Err(e) = self.0.provider.shutdown()
        {
            tracing::warn!(error = %e, "flushing metrics to the OTLP receiver failed");
        }
    }

    fn instruments(&self) -> &instruments::Instruments {
        &self.0.i
    }
}
