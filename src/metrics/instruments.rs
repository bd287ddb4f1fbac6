//! The instruments and the methods the daemon records through: attempts, lateness,
//! deliveries, pages, model calls, quota refusals, cron ticks and HTTP requests; and the
//! observed gauges (jobs, pool connections, browser sessions, stream clients).

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, ObservableGauge};

use super::{JobsGauge, Metrics, SECONDS, TOKENS, Watched};

/// Every instrument recorded from the daemon's code.
pub(super) struct Instruments {
    attempts: Counter<u64>,
    attempt_duration: Histogram<f64>,
    lateness: Histogram<f64>,
    deliveries: Counter<u64>,
    scrape_page: Histogram<f64>,
    model_duration: Histogram<f64>,
    model_tokens: Histogram<u64>,
    quota_refusals: Counter<u64>,
    schedule_ticks: Counter<u64>,
    http_duration: Histogram<f64>,
}

impl Instruments {
    pub(super) fn new(meter: &Meter) -> Self {
        let seconds = |name: &'static str, description: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(SECONDS.to_vec())
                .build()
        };
        let counter = |name: &'static str, description: &'static str| {
            meter
                .u64_counter(name)
                .with_description(description)
                .build()
        };
        Self {
            attempts: counter(
                "workhorse.job.attempts",
                "Finished job attempts by kind and outcome.",
            ),
            attempt_duration: seconds(
                "workhorse.job.attempt.duration",
                "How long job attempts ran, by kind.",
            ),
            lateness: seconds(
                "workhorse.job.lateness",
                "How late attempts started after their job was due (claim time minus run_at), by kind.",
            ),
            deliveries: counter(
                "workhorse.notify.deliveries",
                "Notification delivery attempts by channel kind and outcome.",
            ),
            scrape_page: seconds(
                "workhorse.scrape.page.duration",
                "Time to load and extract one page in the browser, by outcome.",
            ),
            model_duration: seconds(
                "gen_ai.client.operation.duration",
                "Duration of model calls, by provider, model and outcome.",
            ),
            model_tokens: meter
                .u64_histogram("gen_ai.client.token.usage")
                .with_unit("{token}")
                .with_description("Tokens used per model call, by provider, model and token type.")
                .with_boundaries(TOKENS.to_vec())
                .build(),
            quota_refusals: counter(
                "workhorse.quota.refusals",
                "Work refused because the plan's quota for the action was used up.",
            ),
            schedule_ticks: counter(
                "workhorse.schedule.ticks",
                "Cron ticks by schedule: fired (by this daemon) or missed.",
            ),
            http_duration: seconds(
                "http.server.request.duration",
                "Duration of HTTP requests, by route template, method and status.",
            ),
        }
    }

    pub(super) fn zero_attempts(&self, kinds: &[&'static str]) {
        for kind in kinds {
            for outcome in super::ATTEMPT_OUTCOMES {
                let labels = [
                    KeyValue::new("kind", *kind),
                    KeyValue::new("outcome", outcome),
                ];
                self.attempts.add(0, &labels);
            }
        }
    }

    pub(super) fn zero_deliveries(&self, kinds: &[&'static str], outcomes: &[&'static str]) {
        for kind in kinds {
            for outcome in outcomes {
                let labels = [
                    KeyValue::new("channel_kind", *kind),
                    KeyValue::new("outcome", *outcome),
                ];
                self.deliveries.add(0, &labels);
            }
        }
    }

    pub(super) fn zero_ticks(&self, schedules: &[String]) {
        for schedule in schedules {
            for outcome in ["fired", "missed"] {
                let labels = [
                    KeyValue::new("schedule", schedule.clone()),
                    KeyValue::new("outcome", outcome),
                ];
                self.schedule_ticks.add(0, &labels);
            }
        }
    }

    pub(super) fn zero_refusals(&self, actions: &[String]) {
        for action in actions {
            (self.quota_refusals).add(0, &[KeyValue::new("action", action.clone())]);
        }
    }
}

/// Register the observed gauges; their callbacks run at each collection and only read memory
/// (the jobs count is refreshed by `render` or the OTLP refresher, never from a callback).
pub(super) fn observe(
    meter: &Meter,
    jobs: Arc<JobsGauge>,
    watched: Watched,
) -> Vec<ObservableGauge<i64>> {
    let pool = watched.pool;
    let browser = watched.browser;
    let stream_clients = watched.stream_clients;
    vec![
        meter
            .i64_observable_gauge("workhorse.jobs")
            .with_description(
                "Jobs by kind and state (pending, running, retrying, dead), counted at most once per metrics.jobs_cache.",
            )
            .with_callback(move |gauge| {
                for (kind, state, count) in jobs.snapshot() {
                    let labels = [KeyValue::new("kind", kind), KeyValue::new("state", state)];
                    gauge.observe(count, &labels);
                }
            })
            .build(),
        meter
            .i64_observable_gauge("workhorse.db.pool.connections")
            .with_description("Database pool connections by state (in_use, idle).")
            .with_callback(move |gauge| {
                let size = i64::from(pool.size());
                let idle = i64::try_from(pool.num_idle()).unwrap_or(i64::MAX);
                gauge.observe(size - idle, &[KeyValue::new("state", "in_use")]);
                gauge.observe(idle, &[KeyValue::new("state", "idle")]);
            })
            .build(),
        meter
            .i64_observable_gauge("workhorse.browser.sessions")
            .with_description("Browser (WebDriver) sessions by state (in_use, idle).")
            .with_callback(move |gauge| {
                let (busy, idle) = browser().unwrap_or((0, 0));
                let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                gauge.observe(count(busy), &[KeyValue::new("state", "in_use")]);
                gauge.observe(count(idle), &[KeyValue::new("state", "idle")]);
            })
            .build(),
        meter
            .i64_observable_gauge("workhorse.stream.clients")
            .with_description("Live event streams (SSE, WebSocket) open on this daemon.")
            .with_callback(move |gauge| {
                gauge.observe(i64::try_from(stream_clients()).unwrap_or(i64::MAX), &[]);
            })
            .build(),
    ]
}

/// The recording side, called where each event happens.
impl Metrics {
    /// One job attempt ended with `outcome` (one of [`super::ATTEMPT_OUTCOMES`]) after
    /// `ran` (`None` for an attempt whose worker died: its duration is unknown).
    pub fn attempt(&self, kind: &str, outcome: &'static str, ran: Option<Duration>) {
        let i = self.instruments();
        let kind = KeyValue::new("kind", kind.to_string());
        i.attempts
            .add(1, &[kind.clone(), KeyValue::new("outcome", outcome)]);
        if let Some(ran) = ran {
            i.attempt_duration.record(ran.as_secs_f64(), &[kind]);
        }
    }

    /// An attempt of `kind` started `seconds` after its job was due.
    pub fn lateness(&self, kind: &str, seconds: f64) {
        let kind = KeyValue::new("kind", kind.to_string());
        self.instruments()
            .lateness
            .record(seconds.max(0.0), &[kind]);
    }

    /// A delivery attempt to a channel of `channel_kind` ended: `delivered`, `failed` (will
    /// be retried) or `dead`.
    pub fn delivery(&self, channel_kind: &str, outcome: &'static str) {
        let labels = [
            KeyValue::new("channel_kind", channel_kind.to_string()),
            KeyValue::new("outcome", outcome),
        ];
        self.instruments().deliveries.add(1, &labels);
    }

    /// The browser loaded a page (`ok`) or failed (the failure's kind) after `took`.
    pub fn scrape_page(&self, outcome: &'static str, took: Duration) {
        let labels = [KeyValue::new("outcome", outcome)];
        (self.instruments().scrape_page).record(took.as_secs_f64(), &labels);
    }

    /// A call to a model provider ended (`ok`, or why not) after `took`; `tokens` are the
    /// input and output tokens the provider reported, for a call that answered.
    pub fn model_call(&self, call: ModelCall<'_>, took: Duration, tokens: Option<(u32, u32)>) {
        let i = self.instruments();
        let mut labels = vec![
            KeyValue::new("gen_ai.operation.name", "chat"),
            KeyValue::new("gen_ai.provider.name", call.provider.to_string()),
            KeyValue::new("gen_ai.request.model", call.model.to_string()),
        ];
        let mut with_outcome = labels.clone();
        with_outcome.push(KeyValue::new("outcome", call.outcome));
        if call.outcome != "ok" {
            with_outcome.push(KeyValue::new("error.type", call.outcome));
        }
        i.model_duration.record(took.as_secs_f64(), &with_outcome);
        if let Some((input, output)) = tokens {
            labels.push(KeyValue::new("gen_ai.token.type", "input"));
            i.model_tokens.record(u64::from(input), &labels);
            labels.pop();
            labels.push(KeyValue::new("gen_ai.token.type", "output"));
            i.model_tokens.record(u64::from(output), &labels);
        }
    }

    /// Work was refused because the caller's quota for `action` was used up.
    pub fn quota_refused(&self, action: &str) {
        let labels = [KeyValue::new("action", action.to_string())];
        self.instruments().quota_refusals.add(1, &labels);
    }

    /// A cron tick of `schedule` was `fired` by this daemon or `missed`.
    pub fn schedule_tick(&self, schedule: &str, outcome: &'static str) {
        let labels = [
            KeyValue::new("schedule", schedule.to_string()),
            KeyValue::new("outcome", outcome),
        ];
        self.instruments().schedule_ticks.add(1, &labels);
    }

    /// An HTTP request to `route` (a template such as `/v1/jobs/{id}`, never the raw path)
    /// was answered with `status` after `took`.
    pub fn http_request(&self, route: &str, method: &str, status: u16, took: Duration) {
        let labels = [
            KeyValue::new("http.route", route.to_string()),
            KeyValue::new("http.request.method", method.to_string()),
            KeyValue::new("http.response.status_code", i64::from(status)),
        ];
        (self.instruments().http_duration).record(took.as_secs_f64(), &labels);
    }
}

/// Which model call ended, and how.
#[derive(Debug, Clone, Copy)]
pub struct ModelCall<'a> {
    /// The configured provider's name.
    pub provider: &'a str,
    /// The model asked for.
    pub model: &'a str,
    /// `ok`, or why the call failed: `unavailable`, `misconfigured`, `rejected`, `bad_answer`.
    pub outcome: &'static str,
}
