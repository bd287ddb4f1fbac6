//! Logging (`tracing`: pretty, journal or JSON on stderr), the panic hook, and OpenTelemetry
//! trace export over OTLP HTTP/protobuf; the journal format is in [`journal`].

pub mod journal;

use std::io::IsTerminal;

use anyhow::Context;
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use secrecy::ExposeSecret;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogConfig, LogFormat, TelemetryConfig};

/// Keeps the trace exporter alive; `shutdown` flushes what is still buffered.
#[must_use = "dropping the guard without shutdown() may lose the last spans"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flush buffered spans and stop the exporter.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            eprintln!("workhorse: flushing traces failed: {e}");
        }
    }
}

/// Install the global subscriber: logs to stderr, and spans to OTLP when an endpoint is set.
///
/// Call before the tokio runtime starts: the blocking HTTP exporter runs on its own thread and
/// must not be created inside an async context.
pub fn init(log: &LogConfig, telemetry: &TelemetryConfig) -> anyhow::Result<Telemetry> {
    let filter = filter(log, std::env::var_os("RUST_LOG"))?;
    let format = resolve_format(log.format, std::env::var("JOURNAL_STREAM").ok().as_deref());
    let fmt = match format {
        LogFormat::Journal => journal::layer(std::io::stderr).boxed(),
        LogFormat::Pretty | LogFormat::Auto => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .with_target(true)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
    };

    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]));

    let provider = build_provider(telemetry)?;
    let otel = provider.as_ref().map(|p| {
        let tracer = p.tracer("workhorse");
        opentelemetry::global::set_tracer_provider(p.clone());
        tracing_opentelemetry::layer().with_tracer(tracer)
    });

    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .context("installing the tracing subscriber")?;
    log_panics();
    Ok(Telemetry { provider })
}

/// The filter: `RUST_LOG` when set (and not empty), else `log.level`. A bad filter is an error
/// naming where it came from.
fn filter(log: &LogConfig, rust_log: Option<std::ffi::OsString>) -> anyhow::Result<EnvFilter> {
    match rust_log.filter(|v| !v.is_empty()) {
        Some(value) => {
            let text = value.to_str().with_context(|| {
                format!("RUST_LOG {value:?} is not valid UTF-8, so not a tracing filter")
            })?;
            // The parse error's own text only: its source repeats it.
            EnvFilter::try_new(text).map_err(|e| {
                anyhow::anyhow!("RUST_LOG {text:?} is not a valid tracing filter: {e}")
            })
        }
        None => EnvFilter::try_new(&log.level).map_err(|e| {
            anyhow::anyhow!(
                "log.level {:?} is not a valid tracing filter: {e}",
                log.level
            )
        }),
    }
}

/// The format to write: an explicit one as configured; `auto` is `journal` when `JOURNAL_STREAM`
/// names stderr, else `pretty`.
pub fn resolve_format(configured: LogFormat, journal_stream: Option<&str>) -> LogFormat {
    match configured {
        LogFormat::Auto if journal::stderr_is_journal(journal_stream) => LogFormat::Journal,
        LogFormat::Auto => LogFormat::Pretty,
        explicit => explicit,
    }
}

/// Log panics as `error` events (so the journal files them under priority 3 and JSON shippers
/// see them) instead of the default hook's bare stderr text. The engine and the HTTP layer still
/// catch the unwinding; this only changes how the panic is reported.
fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("<unnamed>");
        let backtrace = std::backtrace::Backtrace::capture();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            tracing::error!(target: "panic", thread, location, %backtrace, "panicked: {message}");
        } else {
            tracing::error!(target: "panic", thread, location, "panicked: {message}");
        }
    }));
}

fn build_provider(config: &TelemetryConfig) -> anyhow::Result<Option<SdkTracerProvider>> {
    let endpoint = config.otlp_endpoint.trim().trim_end_matches('/');
    if endpoint.is_empty() {
        return Ok(None);
    }
    let headers = config
        .otlp_headers
        .iter()
        .map(|(k, v)| (k.clone(), v.expose_secret().to_string()))
        .collect();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{endpoint}/v1/traces"))
        .with_headers(headers)
        .build()
        .context("building the OTLP span exporter")?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(config.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sample_ratio)));
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(sampler)
            .with_resource(resource)
            .build(),
    ))
}

/// The current span's W3C trace context (`traceparent`, `tracestate`) as a JSON object, to be
/// stored with a job so that its attempts join the enqueuing request's trace.
pub fn current_trace_context() -> serde_json::Value {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let context = tracing::Span::current().context();
    let mut carrier = std::collections::HashMap::<String, String>::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut carrier));
    serde_json::to_value(carrier).unwrap_or_default()
}

/// The trace context stored by [`current_trace_context`], as a parent for a span.
pub fn trace_context_from(stored: &serde_json::Value) -> opentelemetry::Context {
    let carrier: std::collections::HashMap<String, String> =
        serde_json::from_value(stored.clone()).unwrap_or_default();
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_format_wins_over_a_journal_stream() {
        // Arrange: whatever stderr is, a stream that does not name it is no journal.
        let stream = Some("1:2");

        // Act + Assert
        assert_eq!(resolve_format(LogFormat::Json, stream), LogFormat::Json);
        assert_eq!(resolve_format(LogFormat::Pretty, stream), LogFormat::Pretty);
        assert_eq!(resolve_format(LogFormat::Auto, stream), LogFormat::Pretty);
        assert_eq!(resolve_format(LogFormat::Auto, None), LogFormat::Pretty);
    }

    #[test]
    fn rust_log_replaces_log_level_and_a_bad_one_names_rust_log() {
        // Arrange
        let log = LogConfig::default();

        // Act
        let from_env = filter(&log, Some("workhorse=debug".into())).expect("a valid filter");
        let empty = filter(&log, Some("".into())).expect("log.level");
        let bad = filter(&log, Some("workhorse=loud".into())).expect_err("an invalid filter");

        // Assert
        assert_eq!(from_env.to_string(), "workhorse=debug");
        assert_eq!(empty.to_string(), "info");
        assert!(
            format!("{bad:#}").starts_with("RUST_LOG \"workhorse=loud\""),
            "{bad:#}"
        );
    }
}
