//! The HTTP API: one `#[OpenApi]` struct per resource, served under `/v1`, with Swagger UI at
//! `/docs` and the spec at `/openapi.json`. Only this module knows about HTTP.

// Handlers return `Result<_, ApiError>` whose variants carry the problem body inline, as
// poem-openapi's response derive needs; errors are the rare path, so the size does not matter.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod channels;
pub mod closed;
pub mod crawls;
pub mod documents;
pub mod error;
pub mod events;
pub mod health;
pub mod idempotency;
pub mod jobs;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod records;
pub mod route_table;
pub mod schedules;
pub mod scrapes;
pub mod spec;
pub mod token_cache;
pub mod tokens;
pub mod users;
pub mod validation;
pub mod ws;

use std::sync::Arc;

use poem::endpoint::make_sync;
use poem::middleware::Cors;
use poem::{Endpoint, EndpointExt, IntoEndpoint, Route, get};
use poem_openapi::OpenApiService;
use sqlx::PgPool;

use crate::config::{Config, HttpConfig, MetricsConfig};
use crate::domain::schedule::Schedule;
use crate::engine::Catalog;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::notify::job::Notifier;
use crate::scrape::job::Scraper;
use crate::summarise::summariser::Summariser;
use crate::work::Work;
use middleware::HttpLayer;
use route_table::RouteTable;
use validation::BodySchemas;

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    /// The shared pool.
    pub pool: PgPool,
    /// Component states for `/readyz`.
    pub health: Health,
    /// The job kinds and their argument checks, for enqueueing through the API.
    pub catalog: Catalog,
    /// The daemon's configuration: job defaults, plans and quotas.
    pub config: Arc<Config>,
    /// The cron schedules loaded from `jobs/*.toml`.
    pub schedules: Arc<Vec<Schedule>>,
    /// The egress policy for URLs users submit (and the browser, for the jobs).
    pub scraper: Arc<Scraper>,
    /// The summary providers (to check a preferred provider's name).
    pub summariser: Arc<Summariser>,
    /// The notification senders (the egress policy of webhooks, VAPID keys).
    pub notifier: Arc<Notifier>,
    /// The use cases every act goes through.
    pub work: Work,
    /// The instruments; `GET /metrics` renders them.
    pub metrics: Metrics,
    /// This process's live event stream.
    pub hub: crate::stream::Hub,
    /// Callers of recently seen tokens; `clear` it after changing a token or a user.
    pub tokens: token_cache::TokenCache,
}

type Apis = (
    health::HealthApi,
    users::UsersApi,
    tokens::TokensApi,
    jobs::JobsApi,
    schedules::SchedulesApi,
    scrapes::ScrapesApi,
    scrapes::ScrapeBatchesApi,
    crawls::CrawlsApi,
    documents::DocumentsApi,
    channels::ChannelsApi,
    records::RecordsApi,
    events::EventsApi,
);

/// The OpenAPI service with every resource; `workhorse openapi` prints its spec.
pub fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            health::HealthApi,
            users::UsersApi,
            tokens::TokensApi,
            jobs::JobsApi,
            schedules::SchedulesApi,
            scrapes::ScrapesApi,
            scrapes::ScrapeBatchesApi,
            crawls::CrawlsApi,
            documents::DocumentsApi,
            channels::ChannelsApi,
            records::RecordsApi,
            events::EventsApi,
        ),
        "Workhorse",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "One daemon for an HTTP API, durable PostgreSQL-backed jobs, cron schedules, scraping, \
         summaries and push notifications. Authenticate with a bearer token \
         (`workhorse admin create-token` prints the first one); every error is an RFC 9457 \
         `application/problem+json` document carrying the request id. The live event stream \
         is also a WebSocket at `GET /v1/ws` (JSON subscribe/unsubscribe messages, the same \
         event objects as `/v1/events`), which this spec cannot describe: see docs/events.md.",
    )
}

/// For a page read with `limit + 1` rows: drop the extra row and return the cursor of the page's
/// last row (`key` of it), or `None` when this is the last page.
pub fn next_cursor<T, K>(rows: &mut Vec<T>, limit: i64, key: impl FnOnce(&T) -> K) -> Option<K> {
    let limit = usize::try_from(limit).unwrap_or(0);
    if rows.len() <= limit {
        return None;
    }
    rows.truncate(limit);
    rows.last().map(key)
}

/// The OpenAPI document as JSON, as served at `/openapi.json` by a daemon with the built-in
/// configuration (`workhorse openapi`).
pub fn spec_json() -> String {
    spec::document(&service().spec(), &spec::Deployment::of(&Config::default()))
}

/// The complete HTTP application: API, docs, spec, and the outer layer.
pub fn routes(
    state: ApiState,
    http: &HttpConfig,
    metrics: &MetricsConfig,
) -> impl Endpoint + 'static {
    let service = service();
    let spec = spec::document(&service.spec(), &spec::Deployment::of(&state.config));
    let ui = service.swagger_ui();
    let spec_value: serde_json::Value = serde_json::from_str(&spec).unwrap_or_default();
    let table = RouteTable::from_spec(
        &spec_value,
        &["/docs", "/openapi.json", "/metrics", "/v1/ws"],
    )
    .with(crate::ui::ROUTES);
    let bodies = BodySchemas::from_spec(&spec_value);
    let recorder = state.metrics.clone();
    let cors = cors(&http.cors_allow_origins);

    let route = Route::new()
        .nest("/", service)
        // A WebSocket, which the OpenAPI service cannot describe.
        .at("/v1/ws", get(ws::upgrade))
        .nest("/docs", ui)
        .nest("/ui", crate::ui::routes())
        .at(
            "/metrics",
            get(metrics::MetricsEndpoint::new(metrics.networks())),
        )
        .at(
            "/openapi.json",
            get(make_sync(move |_| {
                poem::Response::builder()
                    .content_type("application/json")
                    .body(spec.clone())
            })),
        )
        .data(state);
    let layer = HttpLayer {
        body_limit: http.body_limit_bytes,
        timeout: http.request_timeout,
        routes: Arc::new(table),
        bodies: Arc::new(bodies),
        metrics: recorder,
    };
    route
        .with_if(cors.is_some(), cors.unwrap_or_default())
        .with(layer)
        .into_endpoint()
}

fn cors(origins: &[String]) -> Option<Cors> {
    if origins.is_empty() {
        return None;
    }
    let mut cors = Cors::new()
        .allow_methods(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
        .allow_headers([
            "authorization",
            "content-type",
            "idempotency-key",
            "x-request-id",
        ])
        .expose_headers([
            "location",
            "x-request-id",
            "retry-after",
            "idempotent-replayed",
            "ratelimit-policy",
            "ratelimit",
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        ])
        .max_age(600);
    if !origins.iter().any(|o| o == "*") {
        cors = cors.allow_origins(origins.iter().map(String::as_str));
    }
    Some(cors)
}
