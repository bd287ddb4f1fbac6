//! Configuration: built-in defaults < `config/default.toml` < `config/<profile>.toml` < `--config`
//! file < `WORKHORSE_*` environment (`__` nests), loaded with figment into typed structs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Tag, Value};
use figment::{Figment, Metadata};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Environment variables that configure the daemon start with this prefix.
pub const ENV_PREFIX: &str = "WORKHORSE_";

/// Everything the daemon can be told, with a default for every key.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the daemon keeps its state (the embedded PostgreSQL cluster, screenshots).
    pub data_dir: PathBuf,
    /// The HTTP listener and its limits.
    pub http: HttpConfig,
    /// Which PostgreSQL to use.
    pub database: DatabaseConfig,
    /// Log output.
    pub log: LogConfig,
    /// OpenTelemetry trace export.
    pub telemetry: TelemetryConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// The job engine: workers, retries, leases, pruning, schedules.
    pub jobs: JobsConfig,
    /// Plans by name: each plan's daily quotas and request-rate limit.
    pub plans: BTreeMap<String, PlanConfig>,
    /// How quotas are applied: default plan and time zone.
    pub quotas: QuotasConfig,
    /// Where outgoing requests (scraped pages, webhooks) may go.
    pub egress: EgressConfig,
    /// Scraping: the WebDriver and the browser session pool.
    pub scrape: ScrapeConfig,
    /// Summaries: the model providers and the built-in summariser.
    pub summarise: SummariseConfig,
    /// Notifications: retries, FCM and Web Push settings.
    pub notify: NotifyConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            http: HttpConfig::default(),
            database: DatabaseConfig::default(),
            log: LogConfig::default(),
            telemetry: TelemetryConfig::default(),
            shutdown: ShutdownConfig::default(),
            jobs: JobsConfig::default(),
            plans: default_plans(),
            quotas: QuotasConfig::default(),
            egress: EgressConfig::default(),
            scrape: ScrapeConfig::default(),
            summarise: SummariseConfig::default(),
            notify: NotifyConfig::default(),
        }
    }
}

/// Notifications: retries, FCM and Web Push settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Waits between a delivery's attempts: the first retry waits the first entry, and so on;
    /// the delivery is dead after the last.
    #[serde(with = "duration_list")]
    pub retry_schedule: Vec<Duration>,
    /// Fraction of each wait that is random, 0.0 to 1.0.
    pub retry_jitter: f64,
    /// Longest a webhook, FCM or push service request may take.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// A Google service-account JSON key file for FCM; empty: FCM channels cannot be created.
    pub fcm_service_account: PathBuf,
    /// The FCM API base URL.
    pub fcm_base: String,
    /// The OAuth2 token URL; empty: the one in the service-account key.
    pub fcm_token_uri: String,
    /// The VAPID `sub` claim: a mailto: or https: contact for push services.
    pub vapid_subject: String,
    /// How long push services keep an undelivered Web Push message, in seconds.
    pub webpush_ttl: u32,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        let secs = Duration::from_secs;
        Self {
            retry_schedule: vec![
                secs(5),
                secs(30),
                secs(120),
                secs(600),
                secs(3600),
                secs(4 * 3600),
            ],
            retry_jitter: 0.2,
            timeout: secs(10),
            fcm_service_account: PathBuf::new(),
            fcm_base: "https://fcm.googleapis.com".into(),
            fcm_token_uri: String::new(),
            vapid_subject: "mailto:admin@localhost".into(),
            webpush_ttl: 86_400,
        }
    }
}

/// A list of durations written like `["5s", "2m"]`.
mod duration_list {
    use std::time::Duration;

    use humantime_serde::re::humantime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(list: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            list.iter()
                .map(|d| humantime::format_duration(*d).to_string()),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        let list = Vec::<String>::deserialize(d)?;
        (list.iter())
            .map(|s| humantime::parse_duration(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// Summaries: the model providers, tried in order, and the built-in summariser.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SummariseConfig {
    /// OpenAI-compatible endpoints, tried in order; none: the built-in extractive summariser.
    pub providers: Vec<crate::summarise::providers::ProviderConfig>,
    /// A provider that failed (timeout, 5xx, 429) is skipped this long (429: its Retry-After).
    #[serde(with = "humantime_serde")]
    pub cool_down: Duration,
    /// When every provider is down, answer with the built-in summariser (marked as such)
    /// instead of waiting for one to come back.
    pub fallback_to_builtin: bool,
    /// Largest document text accepted, in bytes (413 above).
    pub max_document_bytes: usize,
}

impl Default for SummariseConfig {
    fn default() -> Self {
        Self {
            providers: Vec::new(),
            cool_down: Duration::from_secs(60),
            fallback_to_builtin: true,
            max_document_bytes: 512 * 1024,
        }
    }
}

/// Where outgoing requests may go. Private, loopback, link-local and metadata addresses are
/// refused unless listed here.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressConfig {
    /// Host names (`intranet.example.com`, `*.example.com`), IP addresses and CIDRs
    /// (`10.1.0.0/16`) allowed even though they are private.
    pub allow: Vec<String>,
}

/// Scraping: the WebDriver and the browser session pool.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScrapeConfig {
    /// An external WebDriver (e.g. a Selenium Grid at http://grid:4444); empty: the daemon
    /// starts and supervises chromedriver itself.
    pub webdriver_url: String,
    /// The chromedriver binary (looked up in PATH).
    pub chromedriver: PathBuf,
    /// The Chromium binary; empty: chromedriver's own lookup.
    pub chromium: PathBuf,
    /// Browser sessions at most; also the scrape jobs that run at once in this process unless
    /// `jobs.kinds.scrape.concurrency` says otherwise.
    pub pool_size: usize,
    /// A session is replaced after this many pages.
    pub max_pages_per_session: u32,
    /// Sessions idle this long are closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Page load timeout when a request gives none.
    #[serde(with = "humantime_serde")]
    pub default_timeout: Duration,
    /// Longest `timeout_ms` a request may ask for.
    #[serde(with = "humantime_serde")]
    pub max_timeout: Duration,
    /// Screenshot size in pixels, width and height.
    pub window_width: u32,
    /// Screenshot height in pixels.
    pub window_height: u32,
    /// Longest stored text, HTML or Markdown of one page, in bytes; longer is cut.
    pub max_content_bytes: usize,
    /// Chromium's sandbox: `auto` (where this host allows it), `on` or `off`.
    pub sandbox: crate::scrape::browser::SandboxMode,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        Self {
            webdriver_url: String::new(),
            chromedriver: PathBuf::from("chromedriver"),
            chromium: PathBuf::from("/usr/bin/chromium"),
            pool_size: 2,
            max_pages_per_session: 50,
            idle_timeout: Duration::from_secs(300),
            default_timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(120),
            window_width: 1280,
            window_height: 800,
            max_content_bytes: 2 * 1024 * 1024,
            sandbox: crate::scrape::browser::SandboxMode::Auto,
        }
    }
}

/// What a plan gives its users: units per day for each action, and a request rate.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlanConfig {
    /// Units per day (reset at the user's local midnight) by action, e.g. `scrape = 20`. An
    /// action missing here is not part of the plan.
    #[serde(default)]
    pub quotas: BTreeMap<String, u32>,
    /// Requests per token allowed in `rate_window`, in bursts of up to that many.
    pub rate_limit: u32,
    /// The window of `rate_limit`.
    #[serde(with = "humantime_serde", default = "one_minute")]
    pub rate_window: Duration,
    /// Unrevoked API tokens a user may hold.
    #[serde(default = "PlanConfig::default_max_tokens")]
    pub max_tokens: u32,
    /// Notification channels a user may have.
    #[serde(default = "PlanConfig::default_max_channels")]
    pub max_channels: u32,
    /// Documents a user may keep.
    #[serde(default = "PlanConfig::default_max_documents")]
    pub max_documents: u32,
    /// Live (pending, scheduled, running, retrying) jobs a user may have at once.
    #[serde(default = "PlanConfig::default_max_live_jobs")]
    pub max_live_jobs: u32,
    /// Highest `priority` a user may give a job (the lowest is its negative).
    #[serde(default)]
    pub max_priority: i16,
    /// Most attempts a user may ask for a job.
    #[serde(default = "PlanConfig::default_max_attempts")]
    pub max_attempts: i32,
}

impl Default for PlanConfig {
    /// No quotas, 120 requests a minute, the free plan's bounds.
    fn default() -> Self {
        Self {
            quotas: BTreeMap::new(),
            rate_limit: 120,
            rate_window: one_minute(),
            max_tokens: Self::default_max_tokens(),
            max_channels: Self::default_max_channels(),
            max_documents: Self::default_max_documents(),
            max_live_jobs: Self::default_max_live_jobs(),
            max_priority: 0,
            max_attempts: Self::default_max_attempts(),
        }
    }
}

impl PlanConfig {
    fn default_max_tokens() -> u32 {
        10
    }
    fn default_max_channels() -> u32 {
        10
    }
    fn default_max_documents() -> u32 {
        1_000
    }
    fn default_max_live_jobs() -> u32 {
        100
    }
    fn default_max_attempts() -> i32 {
        5
    }
}

fn one_minute() -> Duration {
    Duration::from_secs(60)
}

/// The plans a fresh install has: `free` and `pro`.
fn default_plans() -> BTreeMap<String, PlanConfig> {
    let plan = |scrape, summarise, rate_limit| PlanConfig {
        quotas: BTreeMap::from([
            ("scrape".to_string(), scrape),
            ("summarise".to_string(), summarise),
        ]),
        rate_limit,
        ..PlanConfig::default()
    };
    let pro = PlanConfig {
        max_tokens: 50,
        max_channels: 100,
        max_documents: 100_000,
        max_live_jobs: 2_000,
        max_priority: 10,
        max_attempts: 10,
        ..plan(1000, 500, 1200)
    };
    BTreeMap::from([
        ("free".to_string(), plan(20, 10, 120)),
        ("pro".to_string(), pro),
    ])
}

/// How quotas are applied.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotasConfig {
    /// The plan of users created without one; must be one of `[plans]`.
    pub default_plan: String,
    /// IANA time zone whose midnight resets quotas of users without their own time zone.
    pub default_timezone: String,
}

impl Default for QuotasConfig {
    fn default() -> Self {
        Self {
            default_plan: "free".into(),
            default_timezone: "UTC".into(),
        }
    }
}

impl Config {
    /// The plan called `name`; an unknown name (a plan removed from the configuration) gets
    /// the default plan.
    pub fn plan(&self, name: &str) -> &PlanConfig {
        (self.plans.get(name))
            .or_else(|| self.plans.get(&self.quotas.default_plan))
            .expect("validation keeps quotas.default_plan among the plans")
    }
}

/// The HTTP listener and its limits.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address and port to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    pub body_limit_bytes: usize,
    /// Longest a request may take before it is answered with 503.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Origins allowed to call the API from a browser; empty disables CORS.
    pub cors_allow_origins: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            cors_allow_origins: Vec::new(),
        }
    }
}

/// Which PostgreSQL to use: a URL, or the embedded cluster under `data_dir` when none is given.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://` URL; empty means the embedded cluster.
    #[serde(serialize_with = "serialize_secret")]
    pub url: SecretString,
    /// Upper bound of the connection pool.
    pub max_connections: u32,
    /// How long to wait for a connection before a request fails.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// Directory holding `initdb` and `postgres` for the embedded cluster; empty searches.
    pub embedded_bin_dir: PathBuf,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from(String::new()),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            embedded_bin_dir: PathBuf::new(),
        }
    }
}

impl DatabaseConfig {
    /// The configured URL, if any.
    pub fn url(&self) -> Option<&str> {
        let url = self.url.expose_secret().trim();
        (!url.is_empty()).then_some(url)
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    Pretty,
    /// One JSON object a line, for the journal and log shippers.
    Json,
}

/// Log output.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `pretty` or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `workhorse=debug,sqlx=warn`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".into(),
        }
    }
}

/// OpenTelemetry trace export over OTLP HTTP/protobuf.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Base URL of an OTLP/HTTP receiver (`/v1/traces` is appended); empty turns export off.
    pub otlp_endpoint: String,
    /// Extra headers sent with each export, e.g. an API key.
    #[serde(serialize_with = "serialize_secret_map")]
    pub otlp_headers: BTreeMap<String, SecretString>,
    /// Fraction of new traces sampled, 0.0 to 1.0; a sampled parent is always followed.
    pub sample_ratio: f64,
    /// `service.name` of the exported spans.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: String::new(),
            otlp_headers: BTreeMap::new(),
            sample_ratio: 1.0,
            service_name: "workhorse".into(),
        }
    }
}

/// Graceful shutdown.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How long in-flight requests and jobs get to finish after SIGTERM.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
        }
    }
}

/// The job engine: workers, retries, leases, pruning, schedules.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Run workers (and schedules) in this process; `false` makes an API-only node.
    pub run_workers: bool,
    /// Jobs of one kind run at once in this process.
    pub concurrency: usize,
    /// Attempts before a job is dead.
    pub max_attempts: i32,
    /// Longest an attempt may run; a longer one is a failed attempt.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Delay after the first failed attempt; it doubles with each further one.
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    /// Longest delay between attempts.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Fraction of each delay that is randomised, 0.0 to 1.0.
    pub backoff_jitter: f64,
    /// How long a claimed job stays ours without a renewal; a killed process's jobs are back
    /// in work this long after its last renewal (renewed every third of it).
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// Workers a job may kill (lease expired) before it is quarantined as dead.
    pub max_crashes: i32,
    /// Safety-net poll for new jobs when no notification arrives.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Finished jobs are deleted this long after they finished.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Directory with one TOML file per cron schedule.
    pub schedules_dir: PathBuf,
    /// Per-kind overrides of `concurrency`, `max_attempts` and `timeout`.
    pub kinds: BTreeMap<String, KindConfig>,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            run_workers: true,
            concurrency: 8,
            max_attempts: 5,
            timeout: Duration::from_secs(300),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(3600),
            backoff_jitter: 0.25,
            lease: Duration::from_secs(6),
            max_crashes: 3,
            poll_interval: Duration::from_secs(1),
            retention: Duration::from_secs(7 * 24 * 3600),
            schedules_dir: PathBuf::from("jobs"),
            kinds: BTreeMap::new(),
        }
    }
}

/// Overrides for one job kind; absent keys take the `[jobs]` value.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct KindConfig {
    /// Jobs of this kind run at once in this process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// Attempts before a job of this kind is dead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<i32>,
    /// Longest an attempt of this kind may run.
    #[serde(
        default,
        with = "humantime_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// The quota action (see `[plans]`) each job of this kind charges one unit of; users may
    /// enqueue kinds that charge one through `POST /v1/jobs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<String>,
}

/// The effective settings of one job kind.
#[derive(Debug, Clone, Copy)]
pub struct KindSettings {
    /// Jobs of this kind run at once in this process.
    pub concurrency: usize,
    /// Attempts before a job is dead.
    pub max_attempts: i32,
    /// Longest an attempt may run.
    pub timeout: Duration,
}

impl JobsConfig {
    /// The settings of `kind`: its overrides over the `[jobs]` values.
    pub fn kind(&self, kind: &str) -> KindSettings {
        let o = self.kinds.get(kind).cloned().unwrap_or_default();
        KindSettings {
            concurrency: o.concurrency.unwrap_or(self.concurrency),
            max_attempts: o.max_attempts.unwrap_or(self.max_attempts),
            timeout: o.timeout.unwrap_or(self.timeout),
        }
    }
}

fn serialize_secret<S: serde::Serializer>(s: &SecretString, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.expose_secret())
}

fn serialize_secret_map<S: serde::Serializer>(
    map: &BTreeMap<String, SecretString>,
    ser: S,
) -> Result<S::Ok, S::Error> {
    ser.collect_map(map.iter().map(|(k, v)| (k, v.expose_secret())))
}

/// Where to look for configuration files.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Directory with `default.toml` and `<profile>.toml`.
    pub config_dir: PathBuf,
    /// Profile whose file is layered over `default.toml`.
    pub profile: String,
    /// An explicit file layered over both (the systemd unit's `/etc/workhorse/workhorse.toml`).
    pub file: Option<PathBuf>,
}

/// A bad configuration value, described in one line naming key, source and expectation.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

/// The loaded configuration together with the figment it came from, for provenance.
pub struct Loaded {
    /// The typed configuration.
    pub config: Config,
    figment: Figment,
}

impl Sources {
    fn figment(&self) -> Figment {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        let profile_file = self.config_dir.join(format!("{}.toml", self.profile));
        // Exactly these paths: `Toml::file` would also search parent directories, and
        // `file_exact` fails on a missing file, so absent layers are skipped here.
        for file in [self.config_dir.join("default.toml"), profile_file] {
            if file.is_file() {
                figment = figment.merge(Toml::file_exact(file));
            }
        }
        if let Some(file) = &self.file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment.merge(
            Env::prefixed(ENV_PREFIX)
                .split("__")
                .ignore(&["CONFIG_DIR", "PROFILE"]),
        )
    }

    /// Load and validate the configuration.
    pub fn load(&self) -> Result<Loaded, ConfigError> {
        if let Some(file) = &self.file
            && !file.is_file()
        {
            return Err(ConfigError(format!(
                "config file {} given with --config does not exist",
                file.display()
            )));
        }
        let figment = self.figment();
        let config: Config = figment.extract().map_err(|e| describe(&figment, e))?;
        validate(&config, &figment)?;
        Ok(Loaded { config, figment })
    }
}

fn validate(config: &Config, figment: &Figment) -> Result<(), ConfigError> {
    let bad = |key: &str| {
        // The URL may carry a password: name the key and source, not the value.
        let value = match figment.find_value(key) {
            Ok(v) if !SECRET_KEYS.contains(&key) => format!("= {} ", render(&v)),
            _ => String::new(),
        };
        ConfigError(format!(
            "config error: `{key}` {value}(from {}): expected {}",
            source_of(figment, key),
            expectation(key).unwrap_or("a valid value")
        ))
    };
    let is_http_url = |s: &str| s.starts_with("http://") || s.starts_with("https://");
    if !(0.0..=1.0).contains(&config.telemetry.sample_ratio) {
        return Err(bad("telemetry.sample_ratio"));
    }
    if config.database.max_connections == 0 {
        return Err(bad("database.max_connections"));
    }
    if config.http.body_limit_bytes == 0 {
        return Err(bad("http.body_limit_bytes"));
    }
    if let Some(url) = config.database.url()
        && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
    {
        return Err(bad("database.url"));
    }
    let endpoint = config.telemetry.otlp_endpoint.trim();
    if !endpoint.is_empty() && !is_http_url(endpoint) {
        return Err(bad("telemetry.otlp_endpoint"));
    }
    if (config.http.cors_allow_origins.iter()).any(|o| o != "*" && !is_http_url(o)) {
        return Err(bad("http.cors_allow_origins"));
    }
    let jobs = &config.jobs;
    if jobs.concurrency == 0 {
        return Err(bad("jobs.concurrency"));
    }
    if jobs.max_attempts < 1 {
        return Err(bad("jobs.max_attempts"));
    }
    if jobs.max_crashes < 1 {
        return Err(bad("jobs.max_crashes"));
    }
    if !(0.0..=1.0).contains(&jobs.backoff_jitter) {
        return Err(bad("jobs.backoff_jitter"));
    }
    for (key, zero) in [
        ("jobs.timeout", jobs.timeout.is_zero()),
        ("jobs.lease", jobs.lease < Duration::from_millis(300)),
        ("jobs.poll_interval", jobs.poll_interval.is_zero()),
        ("jobs.backoff_max", jobs.backoff_max < jobs.backoff_base),
    ] {
        if zero {
            return Err(bad(key));
        }
    }
    for (kind, o) in &jobs.kinds {
        if o.concurrency == Some(0) {
            return Err(bad(&format!("jobs.kinds.{kind}.concurrency")));
        }
        if o.max_attempts.is_some_and(|n| n < 1) {
            return Err(bad(&format!("jobs.kinds.{kind}.max_attempts")));
        }
        if o.timeout.is_some_and(|t| t.is_zero()) {
            return Err(bad(&format!("jobs.kinds.{kind}.timeout")));
        }
    }
    if let Err(e) = crate::egress::EgressPolicy::new(&config.egress.allow) {
        tracing::debug!(error = %e, "bad egress.allow");
        return Err(bad("egress.allow"));
    }
    let scrape = &config.scrape;
    let url = scrape.webdriver_url.trim();
    if !url.is_empty() && !is_http_url(url) {
        return Err(bad("scrape.webdriver_url"));
    }
    for (key, zero) in [
        ("scrape.pool_size", scrape.pool_size == 0),
        (
            "scrape.max_pages_per_session",
            scrape.max_pages_per_session == 0,
        ),
        ("scrape.idle_timeout", scrape.idle_timeout.is_zero()),
        ("scrape.default_timeout", scrape.default_timeout.is_zero()),
        (
            "scrape.max_timeout",
            scrape.max_timeout < scrape.default_timeout,
        ),
        (
            "scrape.window_width",
            !(100..=4096).contains(&scrape.window_width),
        ),
        (
            "scrape.window_height",
            !(100..=4096).contains(&scrape.window_height),
        ),
        ("scrape.max_content_bytes", scrape.max_content_bytes == 0),
    ] {
        if zero {
            return Err(bad(key));
        }
    }
    let notify = &config.notify;
    if notify.retry_schedule.is_empty() || notify.retry_schedule.len() > 30 {
        return Err(bad("notify.retry_schedule"));
    }
    if !(0.0..=1.0).contains(&notify.retry_jitter) {
        return Err(bad("notify.retry_jitter"));
    }
    if notify.timeout.is_zero() {
        return Err(bad("notify.timeout"));
    }
    if !is_http_url(&notify.fcm_base) {
        return Err(bad("notify.fcm_base"));
    }
    if !notify.fcm_token_uri.is_empty() && !is_http_url(&notify.fcm_token_uri) {
        return Err(bad("notify.fcm_token_uri"));
    }
    let subject = &notify.vapid_subject;
    if !(subject.starts_with("mailto:") || subject.starts_with("https://")) {
        return Err(bad("notify.vapid_subject"));
    }
    if config.summarise.max_document_bytes == 0 {
        return Err(bad("summarise.max_document_bytes"));
    }
    if config.summarise.cool_down.is_zero() {
        return Err(bad("summarise.cool_down"));
    }
    for (i, p) in config.summarise.providers.iter().enumerate() {
        let key = |field: &str| format!("summarise.providers.{i}.{field}");
        if p.name.trim().is_empty() {
            return Err(bad(&key("name")));
        }
        if !is_http_url(&p.base_url) {
            return Err(bad(&key("base_url")));
        }
        if p.model.trim().is_empty() {
            return Err(bad(&key("model")));
        }
        if p.context_window < 512 {
            return Err(bad(&key("context_window")));
        }
        if p.timeout.is_zero() {
            return Err(bad(&key("timeout")));
        }
    }
    if !config.plans.contains_key(&config.quotas.default_plan) {
        return Err(bad("quotas.default_plan"));
    }
    if config
        .quotas
        .default_timezone
        .parse::<chrono_tz::Tz>()
        .is_err()
    {
        return Err(bad("quotas.default_timezone"));
    }
    for (name, plan) in &config.plans {
        if !crate::domain::users::is_plan_name(name) {
            return Err(bad(&format!("plans.{name}")));
        }
        if plan.rate_limit == 0 {
            return Err(bad(&format!("plans.{name}.rate_limit")));
        }
        if plan.rate_window.is_zero() {
            return Err(bad(&format!("plans.{name}.rate_window")));
        }
    }
    Ok(())
}

/// Turn figment's error into one line naming the key, where its value came from, and what is
/// expected.
fn describe(figment: &Figment, error: figment::Error) -> ConfigError {
    let key = error.path.join(".");
    let source = error
        .metadata
        .as_ref()
        .map(|m| describe_source(m, &key))
        .unwrap_or_else(|| "built-in defaults".into());
    let value = figment
        .find_value(&key)
        .map(|v| format!("= {} ", render(&v)))
        .unwrap_or_default();
    let expected = match &error.kind {
        figment::error::Kind::UnknownField(field, _) => {
            // figment's path already ends with the unknown field.
            let key = if key.is_empty() { field.clone() } else { key };
            return ConfigError(format!(
                "config error: unknown key `{key}` (from {source}): expected one of the keys \
                 `workhorse config` lists"
            ));
        }
        _ if let Some(expected) = expectation(&key) => expected.to_string(),
        figment::error::Kind::InvalidType(_, expected)
        | figment::error::Kind::InvalidValue(_, expected) => expected.clone(),
        other => other.to_string(),
    };
    let key = if key.is_empty() { "<root>".into() } else { key };
    ConfigError(format!(
        "config error: `{key}` {value}(from {source}): expected {expected}"
    ))
}

/// What a person should write for keys whose serde message is not helpful on its own.
fn expectation(key: &str) -> Option<&'static str> {
    Some(match key {
        "http.listen" => "an address and port like 127.0.0.1:8080",
        "log.format" => "\"pretty\" or \"json\"",
        k if k.ends_with("timeout") => "a duration like 30s, 500ms or 5m",
        "data_dir" | "database.embedded_bin_dir" => "a directory path",
        "database.max_connections" | "http.body_limit_bytes" => "a whole number above 0",
        "telemetry.sample_ratio" => "a number from 0.0 to 1.0",
        "http.cors_allow_origins" => {
            "a list of origins like [\"https://app.example.com\"], or [\"*\"]"
        }
        "database.url" => "a postgres:// URL, or empty for the embedded cluster",
        "telemetry.otlp_endpoint" => "an http:// or https:// URL, or empty",
        "telemetry.otlp_headers" => "a table of header names to values",
        "jobs.run_workers" => "true or false",
        k if k.starts_with("jobs.") && (k.ends_with("concurrency") || k.ends_with("attempts")) => {
            "a whole number above 0"
        }
        "jobs.max_crashes" => "a whole number above 0",
        "jobs.backoff_jitter" => "a number from 0.0 to 1.0",
        "jobs.lease" => "a duration of at least 300ms, like 6s",
        "jobs.backoff_max" => "a duration like 1h, not shorter than jobs.backoff_base",
        "jobs.backoff_base" | "jobs.poll_interval" | "jobs.retention" => {
            "a duration like 1s, 500ms or 7days"
        }
        "jobs.schedules_dir" => "a directory path",
        "jobs.kinds" => {
            "a table of job kinds, each with concurrency, max_attempts, timeout and quota"
        }
        "quotas.default_plan" => "the name of one of the [plans]",
        "summarise.max_document_bytes" => "a whole number above 0",
        "notify.retry_schedule" => {
            "a list of 1 to 30 durations like [\"5s\", \"30s\", \"2m\", \"1h\"]"
        }
        "notify.retry_jitter" => "a number from 0.0 to 1.0",
        "notify.fcm_base" | "notify.fcm_token_uri" => "an http:// or https:// URL",
        "notify.fcm_service_account" => "the path of a Google service-account JSON key, or empty",
        "notify.vapid_subject" => "a mailto: or https: contact, like mailto:ops@example.com",
        "notify.webpush_ttl" => "a number of seconds",
        "summarise.cool_down" => "a duration above 0, like 60s",
        "summarise.fallback_to_builtin" => "true or false",
        "summarise.providers" => {
            "a list of [[summarise.providers]] tables with name, base_url, model, api_key_env, \
             context_window, timeout and max_output_tokens"
        }
        k if k.starts_with("summarise.providers.") && k.ends_with(".base_url") => {
            "an http:// or https:// URL of an OpenAI-compatible API, like http://127.0.0.1:8081/v1"
        }
        k if k.starts_with("summarise.providers.") && k.ends_with(".context_window") => {
            "a number of tokens, at least 512"
        }
        k if k.starts_with("summarise.providers.") => "a non-empty value",
        "egress.allow" => {
            "a list of host names (example.com, *.example.com), IP addresses and CIDRs (10.0.0.0/8)"
        }
        "scrape.webdriver_url" => "an http:// URL of a WebDriver, or empty to run chromedriver",
        "scrape.chromedriver" | "scrape.chromium" => "a program path",
        "scrape.pool_size" | "scrape.max_pages_per_session" | "scrape.max_content_bytes" => {
            "a whole number above 0"
        }
        "scrape.idle_timeout" => "a duration above 0, like 5m",
        "scrape.max_timeout" => "a duration like 2m, not shorter than scrape.default_timeout",
        "scrape.window_width" | "scrape.window_height" => "a number of pixels from 100 to 4096",
        "quotas.default_timezone" => "an IANA time zone like UTC or Europe/Berlin",
        "plans" => "a table of plans, each with quotas, rate_limit and rate_window",
        k if k.starts_with("plans.") && k.ends_with(".rate_limit") => "a whole number above 0",
        k if k.starts_with("plans.") && k.ends_with(".rate_window") => {
            "a duration above 0, like 1m"
        }
        k if k.starts_with("plans.") && k.contains(".quotas") => {
            "a table of actions to units per day, like { scrape = 20 }"
        }
        k if k.starts_with("plans.") => {
            "a plan name of a-z, 0-9, _ and - with quotas, rate_limit and rate_window"
        }
        _ => return None,
    })
}

fn describe_source(meta: &Metadata, key: &str) -> String {
    if matches!(meta.source, Some(figment::Source::Code(_))) {
        return "built-in defaults".into();
    }
    if meta.name.contains("environment") {
        let var = key
            .split('.')
            .map(str::to_uppercase)
            .collect::<Vec<_>>()
            .join("__");
        return format!("environment variable {ENV_PREFIX}{var}");
    }
    match &meta.source {
        // figment shows files relative to the working directory; operators want the real path.
        Some(figment::Source::File(path)) => format!("{} {}", meta.name, absolute(path).display()),
        Some(source) => format!("{} {source}", meta.name),
        None => meta.name.to_string(),
    }
}

fn source_of(figment: &Figment, key: &str) -> String {
    figment
        .find_metadata(key)
        .map(|m| describe_source(m, key))
        .unwrap_or_else(|| "built-in defaults".into())
}

fn render(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| format!("{value:?}"))
}

/// Keys whose values are secrets and are shown redacted.
const SECRET_KEYS: [&str; 2] = ["database.url", "telemetry.otlp_headers"];

impl Loaded {
    /// Every effective key with its value (secrets redacted) and the source it came from, one per
    /// line, as `workhorse config` prints them.
    pub fn explain(&self) -> Vec<(String, String, String)> {
        let mut rows = Vec::new();
        let top_keys = match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        };
        for key in top_keys {
            if let Ok(value) = self.figment.find_value(&key) {
                walk(&self.figment, &key, &value, &mut rows);
            }
        }
        rows
    }
}

fn walk(figment: &Figment, key: &str, value: &Value, rows: &mut Vec<(String, String, String)>) {
    if let Value::Dict(_, dict) = value
        && !dict.is_empty()
        && !SECRET_KEYS.contains(&key)
    {
        for (k, v) in dict {
            let child = if key.is_empty() {
                k.clone()
            } else {
                format!("{key}.{k}")
            };
            walk(figment, &child, v, rows);
        }
        return;
    }
    let shown = if SECRET_KEYS.contains(&key) {
        redact(key, value)
    } else {
        render(value)
    };
    rows.push((
        key.to_string(),
        shown,
        provenance(figment, key, value.tag()),
    ));
}

fn provenance(figment: &Figment, key: &str, tag: Tag) -> String {
    figment
        .get_metadata(tag)
        .map(|m| describe_source(m, key))
        .unwrap_or_else(|| "built-in defaults".into())
}

fn redact(key: &str, value: &Value) -> String {
    match value {
        Value::String(_, s) if s.is_empty() => "\"\"".into(),
        Value::String(_, s) if key == "database.url" => format!("{:?}", redact_url(s)),
        Value::Dict(_, d) if d.is_empty() => "{}".into(),
        Value::Dict(_, d) => format!(
            "{{ {} }}",
            d.keys()
                .map(|k| format!("{k} = \"<redacted>\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => "\"<redacted>\"".into(),
    }
}

/// Hide the password of a `postgres://user:password@host/db` URL.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<redacted>".into();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:<redacted>@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Resolve a path from the config relative to the working directory, for messages and children.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_default_toml_matches_built_in_defaults() {
        let shipped: Config = Figment::from(Toml::file_exact(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml"),
        ))
        .extract()
        .expect("config/default.toml parses");
        let built_in = Config::default();
        assert_eq!(
            serde_json::to_value(&shipped).unwrap(),
            serde_json::to_value(&built_in).unwrap()
        );
    }

    #[test]
    fn redact_url_hides_only_the_password() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db:5432/x"),
            "postgres://app:<redacted>@db:5432/x"
        );
        assert_eq!(redact_url("postgres://app@db/x"), "postgres://app@db/x");
    }
}
