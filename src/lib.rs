//! Workhorse: one daemon for an HTTP API, durable PostgreSQL-backed jobs, cron schedules,
//! scraping, summaries and push notifications.
//!
//! Map of the crate (imports point one way: api, ui, cli, job kinds → work → store, engine,
//! egress → domain):
//! - [`config`]: figment layers into typed structs; [`telemetry`]: logs (pretty, journal with
//!   syslog priorities, JSON), the panic hook, OTLP traces; [`metrics`]: the instruments,
//!   Prometheus's `/metrics` registry and their OTLP export.
//! - [`app`]: wires storage, API, workers; owns start-up and shutdown; [`lifecycle`]: signals
//!   and sd_notify; [`health`]: component states for `/readyz`.
//! - [`domain`]: validated types and pure rules; [`store`]: all SQL, the pool, migrations and
//!   the embedded PostgreSQL cluster.
//! - [`stream`]: the live event stream inside a process: the sequencer (numbers committed
//!   changes, one daemon at a time), the listener, the hub that broadcasts each batch once, each
//!   client's task (replay after `Last-Event-ID`, filters, slow clients dropped), summaries'
//!   text followers.
//! - [`engine`]: the job engine (apalis workers over our own queue backend, cancellation,
//!   leases, sweeper, pruning); [`egress`]: the outbound policy, the browser's filtering proxy
//!   and the checked, pooled client for webhooks and Web Push.
//! - Job kinds, each with the client it drives: [`scrape`] (Chromium through chromedriver;
//!   what is kept of a page: main content, links, metadata), [`crawl`] (a site page by page,
//!   each page a scrape; robots.txt, sitemaps, maps), [`summarise`] (OpenAI-compatible providers, the built-in summariser), [`notify`]
//!   (webhooks, FCM, Web Push); [`jobs`]: the small kinds (echo, inject, quota_reset) and the
//!   cron schedules from `jobs/*.toml`.
//! - [`work`]: the use cases, one function per act, each taking a [`work::Caller`]: the one
//!   place that decides who may do what and what it costs.
//! - [`api`]: the HTTP API (poem-openapi; every operation has a stable `resource_verb`
//!   operationId and one tag; closed sets are enums taken from the domain's constants),
//!   problem+json errors (naming each field at fault), the served spec (`api::spec`: shaped to
//!   say what the server does: per-operation statuses, closed request objects, stream frames,
//!   configured plans and providers, no `allOf` wrappers), the route table read from the spec
//!   (span names, `Allow` on 405), the check of JSON bodies against the spec, auth, and
//!   `GET /metrics`; the event streams (`api::events`: SSE, tickets; `api::ws`: `GET /v1/ws`,
//!   the same stream over a WebSocket, outside the spec); `api::token_cache`: who recently
//!   seen tokens belong to, serving only while it hears `workhorse_auth` (revocations);
//!   [`ui`]: the dashboard at `/ui` (sign-in with a token into a server-side session, CSRF on
//!   every form checked by one extractor, pages of jobs, scrapes, summaries, documents,
//!   schedules, deliveries and (admins) users' quotas over the same use cases, live refresh
//!   from the event stream);
//!   [`cli`]: the command line: the daemon's commands and the operator's (jobs, status,
//!   schedules, users, tokens, deliveries; straight on the database through [`work`]),
//!   completions and man pages.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod crawl;
pub mod domain;
pub mod egress;
pub mod engine;
pub mod health;
pub mod jobs;
pub mod lifecycle;
pub mod metrics;
pub mod notify;
pub mod scrape;
pub mod store;
pub mod stream;
pub mod summarise;
pub mod telemetry;
pub mod ui;
pub mod work;
